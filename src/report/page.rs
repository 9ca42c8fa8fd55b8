//! The report's page: its sections as plain data (`Page`, `Section`,
//! `Chart`, `Table`), built from `ReportData`, and the HTML they render to
//! through minijinja (`templates/report.html`, HTML auto-escaped).
//!
//! It owns words, number formatting for people and layout. It must not
//! compute money: every amount it prints is a figure of `ReportData`
//! written by `crate::money` (shares are integer basis points rounded half
//! up). A new section is a function from its figures to a `Section`,
//! pushed onto `Page::sections`; the template needs no change.

use minijinja::{AutoEscape, Environment};
use serde_json::{Value, json};

use super::charts::{self, Layout, Unit};
use super::read::TOTAL_KEYS;
use super::{Column, DayFigures, ReportData, conservation};
use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::money::{self, Rounding, format_fen_grouped};

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("templates/report.html");

/// Tables with more rows than this start folded (`<details>`).
const OPEN_ROWS_MAX: usize = 31;

/// The whole page.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub title: String,
    /// Under the title: the runs' settlement dates.
    pub subtitle: String,
    pub sections: Vec<Section>,
}

/// One section: a title, sentences, key facts, headline figures, charts
/// and tables, each optional.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// The HTML id (an anchor of the page's contents).
    pub id: String,
    pub title: String,
    pub lead: Vec<String>,
    pub facts: Vec<(String, String)>,
    pub figures: Vec<(String, String)>,
    pub charts: Vec<Chart>,
    pub tables: Vec<Table>,
}

/// One chart: its SVG (from `charts`) and a legend in the page's text.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub svg: String,
    pub legend: Vec<LegendItem>,
}

#[derive(Clone, Debug, Default)]
pub struct LegendItem {
    pub name: String,
    /// CSS colour.
    pub colour: String,
}

/// One table; `foot` is a totals row when not empty.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub title: String,
    pub head: Vec<Cell>,
    pub rows: Vec<Vec<Cell>>,
    pub foot: Vec<Cell>,
    /// Shown folded, with its title as the summary.
    pub folded: bool,
}

/// A table cell: text and how it is aligned or set.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub text: String,
    /// `num` (right-aligned figures), `code` (digests, ids) or empty.
    pub class: &'static str,
}

fn text(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "",
    }
}

fn num(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "num",
    }
}

fn code(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: "code",
    }
}

fn fen(amount_fen: i128) -> Cell {
    num(format_fen_grouped(amount_fen))
}

fn date(day: Day) -> String {
    calendar::format_date(day)
}

/// `part` as a share of `whole`, in whole basis points rounded half up:
/// `12.35%`; a dash where no share can be given (a negative part or
/// nothing to share).
pub fn share(part: i128, whole: i128) -> String {
    if part < 0 || whole <= 0 || part > whole {
        return "–".into();
    }
    let basis_points = money::div_round(part * 10_000, whole, Rounding::HalfUp);
    // format_percent takes millionths: a basis point is 100 of them.
    let ppm = u32::try_from(basis_points * 100).expect("a share is at most 100%");
    money::format_percent(ppm)
}

impl Table {
    fn to_value(&self) -> Value {
        let cells = |row: &[Cell]| -> Vec<Value> {
            row.iter()
                .map(|c| json!({"text": c.text, "class": c.class}))
                .collect()
        };
        json!({
            "title": self.title,
            "head": cells(&self.head),
            "rows": self.rows.iter().map(|r| cells(r)).collect::<Vec<_>>(),
            "foot": cells(&self.foot),
            "folded": self.folded,
        })
    }
}

impl Section {
    fn to_value(&self) -> Value {
        let pairs = |pairs: &[(String, String)]| -> Vec<Value> {
            pairs
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        };
        json!({
            "id": self.id,
            "title": self.title,
            "lead": self.lead,
            "facts": pairs(&self.facts),
            "figures": pairs(&self.figures),
            "charts": self.charts.iter().map(|c| json!({
                "title": c.title,
                "svg": c.svg,
                "legend": c.legend.iter().map(|l| json!({"name": l.name, "colour": l.colour})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "tables": self.tables.iter().map(Table::to_value).collect::<Vec<_>>(),
        })
    }
}

/// The page as one self-contained HTML document.
pub fn html(page: &Page) -> Result<Vec<u8>> {
    let mut env = Environment::new();
    // Escaping on whatever the template's name; the charts' SVG is the one
    // value marked safe in the template (the SVG backend escapes its text).
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template(TEMPLATE_NAME, TEMPLATE)
        .map_err(|e| Error::Usage(format!("the report template is broken: {e}")))?;
    let template = env.get_template(TEMPLATE_NAME).expect("just added");
    let view = json!({
        "title": page.title,
        "subtitle": page.subtitle,
        "sections": page.sections.iter().map(Section::to_value).collect::<Vec<_>>(),
    });
    let html = template
        .render(minijinja::value::Serde(view))
        .map_err(|e| Error::Usage(format!("rendering the report failed: {e}")))?;
    Ok(html.into_bytes())
}

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
            summary(data),
            fees(data, &dates)?,
            payouts(data, &dates)?,
            deposits(data, &dates)?,
            deactivations(data, &dates)?,
            rejects(data)?,
            merchants(data),
        ],
    })
}

/// Labels of the totals of `TOTAL_KEYS`.
fn total_label(key: &str) -> &'static str {
    match key {
        "purchases" => "Purchases",
        "refunds" => "Refunds",
        "fees" => "Fees",
        "adjustments" => "Adjustments",
        "carried_in_first" => "Carried in (first rows)",
        "payouts" => "Payouts",
        "deposit_held" => "Deposits held",
        "deposit_released" => "Deposits released",
        "deposit_forfeited" => "Deposits forfeited",
        "deactivation_fees" => "Deactivation fees",
        "carried_out_last" => "Carried out (last rows)",
        _ => "Total",
    }
}

fn summary(data: &ReportData) -> Section {
    let runs = &data.runs;
    let (first, last) = (runs.first(), runs.last());
    let business = match (first, last) {
        (Some(a), Some(b)) => format!("{} – {}", date(a.folder.start), date(b.folder.horizon)),
        _ => String::new(),
    };
    let rows: u64 = runs.iter().map(|r| r.rows).sum();
    let files: usize = runs.iter().map(|r| r.folder.settlement_dates.len()).sum();
    let mut versions: Vec<&str> = runs.iter().map(|r| r.control.version.as_str()).collect();
    versions.dedup();
    let facts = vec![
        ("Business dates".into(), business),
        ("Settlement lag".into(), format!("T+{}", data.lag)),
        ("Settlement files".into(), files.to_string()),
        ("Settlement rows".into(), rows.to_string()),
        (
            "Merchants with a row".into(),
            data.merchants_with_rows.to_string(),
        ),
        ("Engine".into(), format!("settle {}", versions.join(", "))),
        ("Amounts".into(), "CNY".into()),
    ];
    let t = &data.totals;
    let figure = |key: &str| {
        let at = TOTAL_KEYS.iter().position(|k| *k == key).expect("a key");
        (total_label(key).to_string(), format_fen_grouped(t[at]))
    };
    let mut figures: Vec<(String, String)> = [
        "purchases",
        "refunds",
        "fees",
        "adjustments",
        "payouts",
        "deposit_held",
        "deposit_released",
        "deposit_forfeited",
        "deactivation_fees",
    ]
    .into_iter()
    .map(figure)
    .collect();
    figures.push((
        "Receivables at the end".into(),
        format_fen_grouped(data.receivables_fen),
    ));
    let (came_in, went_out) = conservation(t);
    let several = runs.len() > 1;
    let lead = vec![format!(
        "Conservation (RULES.md 3.7){}: purchases − refunds − fees + adjustments + carried in = {} = payouts + deposits held − released + deactivation fees + carried out = {}. Every run's control.json says balanced, and its totals are the sums of its settlement files; the fee postings of every journal sum to its settlement file's fees.",
        if several { ", summed over the runs" } else { "" },
        format_fen_grouped(came_in),
        format_fen_grouped(went_out)
    )];

    let totals = Table {
        title: if several {
            "Control totals (control.json), summed over the runs".into()
        } else {
            "Control totals (control.json)".into()
        },
        head: vec![text("Total"), text("Key"), num("Amount")],
        rows: TOTAL_KEYS
            .iter()
            .zip(t)
            .map(|(key, value)| vec![text(total_label(key)), code(*key), fen(*value)])
            .collect(),
        foot: Vec::new(),
        folded: false,
    };
    let total_at = |key: &str| TOTAL_KEYS.iter().position(|k| *k == key).expect("a key");
    let run_rows: Vec<Vec<Cell>> = runs
        .iter()
        .map(|run| {
            let f = &run.folder;
            let transactions = run
                .control
                .inputs
                .iter()
                .filter(|i| i.role == "transactions");
            let count = |get: fn(&super::InputDigest) -> Option<u64>| {
                transactions.clone().filter_map(get).sum::<u64>().to_string()
            };
            let settled = match (f.settlement_dates.first(), f.settlement_dates.last()) {
                (Some(a), Some(b)) if a == b => date(*a),
                (Some(a), Some(b)) => format!("{} – {}", date(*a), date(*b)),
                _ => "none".into(),
            };
            vec![
                code(f.name()),
                text(format!("{} – {}", date(f.start), date(f.horizon))),
                text(settled),
                num(count(|i| i.rows_read)),
                num(count(|i| i.rows_accepted)),
                num(count(|i| i.rows_rejected)),
                fen(run.control.totals[total_at("purchases")]),
                fen(run.control.totals[total_at("fees")]),
                fen(run.control.totals[total_at("payouts")]),
                fen(run.control.receivables_fen),
                text(if run.control.balanced { "yes" } else { "no" }),
            ]
        })
        .collect();
    let runs_table = Table {
        title: "Runs".into(),
        head: vec![
            text("Folder"),
            text("Business dates"),
            text("Settlement dates"),
            num("Rows read"),
            num("Accepted"),
            num("Rejected"),
            num("Purchases"),
            num("Fees"),
            num("Payouts"),
            num("Receivables at end"),
            text("Balanced"),
        ],
        folded: run_rows.len() > OPEN_ROWS_MAX,
        rows: run_rows,
        foot: Vec::new(),
    };
    let mut input_rows = Vec::new();
    for run in runs {
        for input in &run.control.inputs {
            let rows = match (input.rows_read, input.rows_accepted, input.rows_rejected) {
                (Some(read), Some(accepted), Some(rejected)) => {
                    format!("{read} read, {accepted} accepted, {rejected} rejected")
                }
                (Some(read), _, _) => format!("{read} rows"),
                _ => String::new(),
            };
            input_rows.push(vec![
                code(run.folder.name()),
                text(input.role),
                code(&input.path),
                code(&input.sha256),
                text(rows),
            ]);
        }
    }
    let inputs_table = Table {
        title: "Inputs and their SHA-256 digests".into(),
        head: vec![
            text("Run"),
            text("Input"),
            text("Path"),
            text("SHA-256"),
            text("Rows"),
        ],
        folded: runs.len() > 3,
        rows: input_rows,
        foot: Vec::new(),
    };
    Section {
        id: "summary".into(),
        title: "Runs and control totals".into(),
        lead,
        facts,
        figures,
        charts: Vec::new(),
        tables: vec![totals, runs_table, inputs_table],
    }
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
                num(c.purchases.to_string()),
                num(share(c.net_fen(), total)),
            ]
        })
        .collect();
    let sum = |f: fn(&super::CategoryTotal) -> i128| data.categories.iter().map(f).sum::<i128>();
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
                num(purchases.to_string()),
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
                num(d.rows.to_string()),
                num(d.txn_count.to_string()),
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
                num(days.iter().map(|d| d.rows).sum::<u64>().to_string()),
                num(days.iter().map(|d| d.txn_count).sum::<u64>().to_string()),
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
                num(d.deposit_holds.to_string()),
                fen(d.column(Column::DepositReleased)),
                num(d.deposit_releases.to_string()),
                fen(d.column(Column::DepositForfeited)),
                num(d.deposit_forfeits.to_string()),
            ]
        })
        .collect();
    let sum = |c: Column| days.iter().map(|d| d.column(c)).sum::<i128>();
    let count = |f: fn(&DayFigures) -> u64| days.iter().map(f).sum::<u64>().to_string();
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
                num(count(|d| d.deposit_holds)),
                fen(sum(Column::DepositReleased)),
                num(count(|d| d.deposit_releases)),
                fen(sum(Column::DepositForfeited)),
                num(count(|d| d.deposit_forfeits)),
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
                num(d.deactivations_taken.to_string()),
                fen(d.column(Column::DeactivationFee)),
                num(d.deactivations_waived.to_string()),
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
                num(days.iter().map(|d| d.deactivations_taken).sum::<u64>().to_string()),
                fen(days.iter().map(|d| d.column(Column::DeactivationFee)).sum()),
                num(days.iter().map(|d| d.deactivations_waived).sum::<u64>().to_string()),
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
                num(n.to_string()),
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
                num(total.to_string()),
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
                num(m.txn_count.to_string()),
                num(m.rows.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_basis_points_rounded_half_up() {
        assert_eq!(share(1, 3), "33.33%");
        assert_eq!(share(2, 3), "66.67%");
        assert_eq!(share(1, 8), "12.5%");
        // 1/20000 = 0.005%, half a basis point: rounds up to 0.01%.
        assert_eq!(share(1, 20_000), "0.01%");
        // 1/80000 = 0.00125%, an eighth of one: rounds down to 0%.
        assert_eq!(share(1, 80_000), "0%");
        assert_eq!(share(5, 5), "100%");
        assert_eq!(share(0, 5), "0%");
        assert_eq!(share(-1, 5), "–");
        assert_eq!(share(1, 0), "–");
    }
}
