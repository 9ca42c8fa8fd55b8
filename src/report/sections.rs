//! The report's sections after the header: fees by category, payouts and
//! receivables, deposits, deactivation fees and waivers, rejects by reason
//! and the busiest merchants, each a `Section` of charts and tables.
//!
//! It owns their words and which figures each chart and table shows. It
//! must not compute money beyond sums of `ReportData`'s exact figures (a
//! total row, a series folded into "other categories"): every amount is
//! printed by `page`'s cells and every chart drawn by `charts`.

use super::charts::{self, Layout, Unit};
use super::page::{
    Cell, Chart, LegendItem, OPEN_ROWS_MAX, Page, Section, Table, code, date, fen, num, share,
    text, whole,
};
use super::{CategoryTotal, Column, DayFigures, ReportData, summary};
use crate::calendar::Day;
use crate::error::Result;

/// The page of a report: the header, then one section per subject.
pub fn page(data: &ReportData) -> Result<Page> {
    let dates: Vec<Day> = data.days.iter().map(|d| d.date).collect();
    let subtitle = match (dates.first(), dates.last()) {
        (Some(first), Some(last)) => format!(
            "Settlement dates {} – {} · {} run folder{}",
            date(*first),
            date(*last),
            data.runs.len(),
            if data.runs.len() == 1 { "" } else { "s" }
        ),
        _ => "No settlement file in the runs".into(),
    };
    Ok(Page {
        title: "Settlement report".into(),
        subtitle,
        sections: vec![
            summary::summary(data),
            fees(data, &dates)?,
            payouts(data, &dates)?,
            deposits(data, &dates)?,
            deactivations(data, &dates)?,
            rejects(data)?,
            merchants(data),
        ],
    })
}

/// The category series of the fee chart: the largest categories, the rest
/// folded into one "other categories" series so that colours stay apart.
fn category_series(data: &ReportData) -> Vec<(String, Vec<i128>)> {
    let shown = if data.categories.len() > charts::SERIES_MAX {
        charts::SERIES_MAX - 1
    } else {
        data.categories.len()
    };
    let mut series: Vec<(String, Vec<i128>)> = data.categories[..shown]
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let values = data.days.iter().map(|d| d.category_fees_fen[k]).collect();
            (c.name.clone(), values)
        })
        .collect();
    if shown < data.categories.len() {
        let values = data
            .days
            .iter()
            .map(|d| d.category_fees_fen[shown..].iter().sum())
            .collect();
        series.push((
            format!("{} other categories", data.categories.len() - shown),
            values,
        ));
    }
    series
}

fn legend(names: &[&str]) -> Vec<LegendItem> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| LegendItem {
            name: name.to_string(),
            colour: charts::css_colour(k),
        })
        .collect()
}

fn fees(data: &ReportData, dates: &[Day]) -> Result<Section> {
    let series = category_series(data);
    let values: Vec<&[i128]> = series.iter().map(|(_, v)| v.as_slice()).collect();
    let names: Vec<&str> = series.iter().map(|(n, _)| n.as_str()).collect();
    let total: i128 = data.categories.iter().map(|c| c.net_fen()).sum();
    let mut charts_ = Vec::new();
    if !dates.is_empty() && !series.is_empty() {
        charts_.push(Chart {
            title: "Net fees per settlement date, by category (CNY)".into(),
            svg: charts::bars_over_time(dates, &values, Layout::Stacked, Unit::Fen)?,
            legend: legend(&names),
        });
    }
    let rows = data
        .categories
        .iter()
        .map(|c| {
            vec![
                text(&c.name),
                fen(c.debit_fen),
                fen(c.credit_fen),
                fen(c.net_fen()),
                whole(c.purchases),
                num(share(c.net_fen(), total)),
            ]
        })
        .collect();
    let sum = |f: fn(&CategoryTotal) -> i128| data.categories.iter().map(f).sum::<i128>();
    let purchases: u64 = data.categories.iter().map(|c| c.purchases).sum();
    Ok(Section {
        id: "fees".into(),
        title: "Fees by category".into(),
        lead: vec![
            "Fees charged less fees returned by refunds, from the journals' fee and fee_returned postings (docs/JOURNAL.md), by the category and card each posting carries.".into(),
        ],
        charts: charts_,
        tables: vec![Table {
            title: "Fees by category and card".into(),
            head: vec![
                text("Category"),
                num("Debit cards"),
                num("Credit cards"),
                num("Net fees"),
                num("Purchases charged"),
                num("Share"),
            ],
            rows,
            foot: vec![
                text("All categories"),
                fen(sum(|c| c.debit_fen)),
                fen(sum(|c| c.credit_fen)),
                fen(total),
                whole(purchases),
                num(share(total, total)),
            ],
            folded: false,
        }],
        ..Section::default()
    })
}

fn day_values(days: &[DayFigures], f: impl Fn(&DayFigures) -> i128) -> Vec<i128> {
    days.iter().map(f).collect()
}

fn payouts(data: &ReportData, dates: &[Day]) -> Result<Section> {
    let days = &data.days;
    let paid = day_values(days, |d| d.column(Column::Payout));
    let owed = day_values(days, |d| d.receivables_fen);
    let mut charts_ = Vec::new();
    if !dates.is_empty() {
        charts_.push(Chart {
            title: "Payouts per settlement date (CNY)".into(),
            svg: charts::bars_over_time(dates, &[&paid], Layout::Stacked, Unit::Fen)?,
            legend: legend(&["Payouts"]),
        });
        charts_.push(Chart {
            title: "Receivables: what merchants owe at the end of each date (CNY)".into(),
            svg: charts::lines_over_time(dates, &[&owed], Unit::Fen)?,
            legend: legend(&["Receivables"]),
        });
    }
    let rows: Vec<Vec<Cell>> = days
        .iter()
        .map(|d| {
            vec![
                text(date(d.date)),
                whole(d.rows),
                whole(d.txn_count),
                fen(d.column(Column::Purchases)),
                fen(d.column(Column::Refunds)),
                fen(d.column(Column::Fees)),
                fen(d.column(Column::Payout)),
                fen(-d.column(Column::CarriedOut)),
                fen(d.receivables_fen),
            ]
        })
        .collect();
    let sum = |c: Column| days.iter().map(|d| d.column(c)).sum::<i128>();
    Ok(Section {
        id: "payouts".into(),
        title: "Payouts and receivables".into(),
        lead: vec![
            "Payouts are the settlement files' payout column. A shortfall is carried to the merchant's next settlement (RULES.md 3.4); receivables are what merchants still owe after each date, anchored on each run's control.json.".into(),
        ],
        charts: charts_,
        tables: vec![Table {
            title: "Per settlement date".into(),
            head: vec![
                text("Date"),
                num("Rows"),
                num("Transactions"),
                num("Purchases"),
                num("Refunds"),
                num("Fees"),
                num("Payouts"),
                num("Shortfall carried"),
                num("Receivables"),
            ],
            folded: rows.len() > OPEN_ROWS_MAX,
            rows,
            foot: vec![
                text("All dates"),
                whole(days.iter().map(|d| d.rows).sum()),
                whole(days.iter().map(|d| d.txn_count).sum()),
                fen(sum(Column::Purchases)),
                fen(sum(Column::Refunds)),
                fen(sum(Column::Fees)),
                fen(sum(Column::Payout)),
                fen(-sum(Column::CarriedOut)),
                fen(data.receivables_fen),
            ],
        }],
        ..Section::default()
    })
}

fn deposits(data: &ReportData, dates: &[Day]) -> Result<Section> {
    let days = &data.days;
    let held = day_values(days, |d| d.column(Column::DepositHeld));
    let released = day_values(days, |d| d.column(Column::DepositReleased));
    let forfeited = day_values(days, |d| d.column(Column::DepositForfeited));
    let any = days
        .iter()
        .any(|d| d.deposit_holds + d.deposit_releases + d.deposit_forfeits > 0);
    let mut charts_ = Vec::new();
    let mut lead = vec!["The settlement files' deposit_held, deposit_released and deposit_forfeited columns (RULES.md 3.5, 3.6); the counts are the journals' deposit postings.".to_string()];
    if any {
        charts_.push(Chart {
            title: "Deposits per settlement date (CNY)".into(),
            svg: charts::bars_over_time(
                dates,
                &[&held, &released, &forfeited],
                Layout::Grouped,
                Unit::Fen,
            )?,
            legend: legend(&["Held", "Released", "Forfeited"]),
        });
    } else {
        lead.push("No deposit was held, released or forfeited in these runs.".into());
    }
    let rows: Vec<Vec<Cell>> = days
        .iter()
        .filter(|d| d.deposit_holds + d.deposit_releases + d.deposit_forfeits > 0)
        .map(|d| {
            vec![
                text(date(d.date)),
                fen(d.column(Column::DepositHeld)),
                whole(d.deposit_holds),
                fen(d.column(Column::DepositReleased)),
                whole(d.deposit_releases),
                fen(d.column(Column::DepositForfeited)),
                whole(d.deposit_forfeits),
            ]
        })
        .collect();
    let sum = |c: Column| days.iter().map(|d| d.column(c)).sum::<i128>();
    let count = |f: fn(&DayFigures) -> u64| whole(days.iter().map(f).sum());
    Ok(Section {
        id: "deposits".into(),
        title: "Deposits (押金)".into(),
        lead,
        charts: charts_,
        tables: vec![Table {
            title: "Settlement dates with a deposit event".into(),
            head: vec![
                text("Date"),
                num("Held"),
                num("Holds"),
                num("Released"),
                num("Releases"),
                num("Forfeited"),
                num("Forfeits"),
            ],
            folded: rows.len() > OPEN_ROWS_MAX,
            rows,
            foot: vec![
                text("All dates"),
                fen(sum(Column::DepositHeld)),
                count(|d| d.deposit_holds),
                fen(sum(Column::DepositReleased)),
                count(|d| d.deposit_releases),
                fen(sum(Column::DepositForfeited)),
                count(|d| d.deposit_forfeits),
            ],
        }],
        ..Section::default()
    })
}

fn deactivations(data: &ReportData, dates: &[Day]) -> Result<Section> {
    let days = &data.days;
    let taken = day_values(days, |d| i128::from(d.deactivations_taken));
    let waived = day_values(days, |d| i128::from(d.deactivations_waived));
    let happened = |d: &&DayFigures| d.deactivations_taken + d.deactivations_waived > 0;
    let mut charts_ = Vec::new();
    let mut lead = vec!["Final settlements of deactivated merchants (RULES.md 3.6): the journals' deactivation_fee postings (the fee taken) and deactivation_fee_waived postings (returned within the return window with no purchase, 退机).".to_string()];
    if days.iter().any(|d| happened(&d)) {
        charts_.push(Chart {
            title: "Final settlements per settlement date: fee taken or waived (count)".into(),
            svg: charts::bars_over_time(dates, &[&taken, &waived], Layout::Grouped, Unit::Count)?,
            legend: legend(&["Fee taken", "Fee waived"]),
        });
    } else {
        lead.push("No merchant was finally settled in these runs.".into());
    }
    let rows: Vec<Vec<Cell>> = days
        .iter()
        .filter(happened)
        .map(|d| {
            vec![
                text(date(d.date)),
                whole(d.deactivations_taken),
                fen(d.column(Column::DeactivationFee)),
                whole(d.deactivations_waived),
            ]
        })
        .collect();
    Ok(Section {
        id: "deactivations".into(),
        title: "Deactivation fees and waivers (注销 / 退机)".into(),
        lead,
        charts: charts_,
        tables: vec![Table {
            title: "Settlement dates with a final settlement".into(),
            head: vec![
                text("Date"),
                num("Fees taken"),
                num("Deactivation fees"),
                num("Fees waived"),
            ],
            folded: rows.len() > OPEN_ROWS_MAX,
            rows,
            foot: vec![
                text("All dates"),
                whole(days.iter().map(|d| d.deactivations_taken).sum()),
                fen(days.iter().map(|d| d.column(Column::DeactivationFee)).sum()),
                whole(days.iter().map(|d| d.deactivations_waived).sum()),
            ],
        }],
        ..Section::default()
    })
}

fn rejects(data: &ReportData) -> Result<Section> {
    let total: u64 = data.rejects.iter().map(|(_, n)| n).sum();
    let mut lead = vec!["Rows of the runs' rejects.csv by reason (RULES.md 3.3): transactions and adjustments the runs refused.".to_string()];
    let mut charts_ = Vec::new();
    if data.rejects.is_empty() {
        lead.push("No row was rejected.".into());
    } else {
        let labels: Vec<String> = data.rejects.iter().map(|(r, _)| r.clone()).collect();
        let counts: Vec<i128> = data.rejects.iter().map(|(_, n)| i128::from(*n)).collect();
        charts_.push(Chart {
            title: "Rejected rows by reason".into(),
            svg: charts::bars_by_label(&labels, &counts, Unit::Count)?,
            legend: Vec::new(),
        });
    }
    let rows = data
        .rejects
        .iter()
        .map(|(reason, n)| {
            vec![
                code(reason),
                whole(*n),
                num(share(i128::from(*n), i128::from(total))),
            ]
        })
        .collect();
    Ok(Section {
        id: "rejects".into(),
        title: "Rejects by reason".into(),
        lead,
        charts: charts_,
        tables: vec![Table {
            title: "Rejected rows".into(),
            head: vec![text("Reason"), num("Rows"), num("Share")],
            rows,
            foot: vec![
                text("All reasons"),
                whole(total),
                num(share(i128::from(total), i128::from(total))),
            ],
            folded: false,
        }],
        ..Section::default()
    })
}

fn merchants(data: &ReportData) -> Section {
    let rows = data
        .top_merchants
        .iter()
        .enumerate()
        .map(|(k, (id, m))| {
            vec![
                num((k + 1).to_string()),
                code(id),
                fen(m.purchases_fen),
                fen(m.refunds_fen),
                fen(m.fees_fen),
                fen(m.payout_fen),
                whole(m.txn_count),
                whole(m.rows),
            ]
        })
        .collect();
    Section {
        id: "merchants".into(),
        title: "Busiest merchants".into(),
        lead: vec![format!(
            "The {} merchants with the most purchases of the {} with a settlement row, summed over the settlement files (ties by merchant id).",
            data.top_merchants.len(),
            data.merchants_with_rows
        )],
        tables: vec![Table {
            title: "By purchases".into(),
            head: vec![
                num("#"),
                text("Merchant"),
                num("Purchases"),
                num("Refunds"),
                num("Fees"),
                num("Payouts"),
                num("Transactions"),
                num("Settlement dates"),
            ],
            rows,
            foot: Vec::new(),
            folded: false,
        }],
        ..Section::default()
    }
}
