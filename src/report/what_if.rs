//! The what-if page (`settle diff RUN_A RUN_B --report FILE.html`): the
//! same kind of page as `settle report`, built from a `diff::Diff` — the
//! configuration keys that differ, the totals side by side, fee changes by
//! category and card and by settlement date as charts and tables, and the
//! merchants that changed most.
//!
//! It lays out what the diff found; it must not compute a figure the
//! `Diff` does not hold, beyond B − A and its percentage.

use std::path::Path;

use super::charts::{self, Layout, Unit};
use super::page::{self, Cell, Chart, LegendItem, Page, Section, Table, code, num, text};
use crate::calendar;
use crate::diff::{self, Diff, Pair};
use crate::error::Result;
use crate::money::format_fen_grouped;

/// Where `fees` and `payout` lie among a settlement row's amounts
/// (`ledger::AMOUNT_COLUMNS`).
const FEES_AT: usize = 2;
const PAYOUT_AT: usize = 10;
const _: () = {
    let columns = crate::ledger::AMOUNT_COLUMNS;
    assert!(columns[FEES_AT].len() == 4 && columns[PAYOUT_AT].len() == 6);
};

/// Writes the what-if page of `diff` to `out` (`*.html`), whole or not at
/// all, listing at most `top` merchants.
pub fn write(diff: &Diff, top: usize, out: &Path) -> Result<usize> {
    check(out)?;
    let bytes = page::html(&what_if_page(diff, top)?)?;
    crate::statement::write_atomically(out, &bytes)?;
    Ok(bytes.len())
}

/// Refuses a page path that is not `*.html` or is a folder (exit 2),
/// before anything is compared or written.
pub fn check(out: &Path) -> Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("html") {
        return Err(crate::Error::Usage(format!(
            "--report {} must end in .html",
            out.display()
        )));
    }
    super::check_out(out)
}

fn fen(amount_fen: i128) -> Cell {
    num(format_fen_grouped(amount_fen))
}

fn percent(pair: &Pair) -> Cell {
    // Basis points are hundredths of a percent: two decimals, as fen are.
    match pair.delta_basis_points() {
        Some(points) => num(format!("{}%", crate::money::format_fen(points))),
        None => num("–"),
    }
}

/// A, B, B − A and the change of a pair of amounts.
fn amounts(pair: &Pair) -> [Cell; 4] {
    [fen(pair.a), fen(pair.b), fen(pair.delta()), percent(pair)]
}

fn head(names: &[&str]) -> Vec<Cell> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| if k == 0 { text(*name) } else { num(*name) })
        .collect()
}

/// The page of a what-if: the sections in reading order.
pub fn what_if_page(diff: &Diff, top: usize) -> Result<Page> {
    let side = |run: &diff::RunSide| format!("{} ({})", run.dir.display(), run.config_path);
    let subtitle = format!(
        "A: {} · B: {} · settlement dates {} – {}",
        side(&diff.a),
        side(&diff.b),
        diff.by_date
            .first()
            .map_or("–".into(), |d| calendar::format_date(d.date)),
        diff.by_date
            .last()
            .map_or("–".into(), |d| calendar::format_date(d.date)),
    );
    Ok(Page {
        title: "What-if".into(),
        subtitle,
        sections: vec![
            changes(diff),
            totals(diff),
            categories(diff)?,
            dates(diff)?,
            merchants(diff, top),
        ],
    })
}

fn changes(diff: &Diff) -> Section {
    let mut lead = vec![
        "B − A everywhere: a negative fee change is revenue the acquirer gives up, a positive payout change is money merchants receive on top.".to_string(),
    ];
    lead.extend(
        diff.input_differences
            .iter()
            .map(|difference| format!("The inputs differ: {difference}.")),
    );
    lead.extend(diff.config.notes.iter().cloned());
    let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "(absent)".into());
    Section {
        id: "changes".into(),
        title: "What changed".into(),
        lead,
        tables: vec![Table {
            title: "Configuration keys that differ".into(),
            head: vec![text("Key"), text("A"), text("B")],
            rows: diff
                .config
                .keys
                .iter()
                .map(|key| vec![code(&key.key), code(shown(&key.a)), code(shown(&key.b))])
                .collect(),
            ..Table::default()
        }],
        ..Section::default()
    }
}

fn totals(diff: &Diff) -> Section {
    let rows = diff
        .totals
        .iter()
        .map(|total| {
            let pair = &total.pair;
            let mut row = vec![text(total.name)];
            match total.unit {
                diff::Unit::Fen => row.extend(amounts(pair)),
                diff::Unit::Count => row.extend([
                    num(pair.a.to_string()),
                    num(pair.b.to_string()),
                    num(pair.delta().to_string()),
                    percent(pair),
                ]),
            }
            row
        })
        .collect();
    let figure = |name: &str| {
        diff.totals
            .iter()
            .find(|total| total.name == name)
            .map(|total| total.pair.delta())
            .unwrap_or_default()
    };
    Section {
        id: "totals".into(),
        title: "Totals".into(),
        figures: vec![
            ("Fees, B − A".into(), format_fen_grouped(figure("fees"))),
            (
                "Payouts, B − A".into(),
                format_fen_grouped(figure("payouts")),
            ),
            (
                "Merchants changed".into(),
                format!("{} of {}", diff.merchants.len(), diff.merchants_compared),
            ),
        ],
        tables: vec![Table {
            title: "Totals of the two runs".into(),
            head: head(&["Total", "A", "B", "B − A", "Change"]),
            rows,
            ..Table::default()
        }],
        ..Section::default()
    }
}

fn categories(diff: &Diff) -> Result<Section> {
    let labels: Vec<String> = diff
        .by_category
        .iter()
        .map(|row| format!("{} {}", row.category, row.card))
        .collect();
    let deltas: Vec<i128> = diff
        .by_category
        .iter()
        .map(|row| row.fees_fen.delta())
        .collect();
    let rows = diff
        .by_category
        .iter()
        .map(|row| {
            let mut cells = vec![text(&row.category), text(&row.card)];
            cells.push(num(row.purchases_count.a.to_string()));
            cells.extend(amounts(&row.fees_fen));
            cells
        })
        .collect();
    Ok(Section {
        id: "categories".into(),
        title: "Fees by category and card".into(),
        lead: vec![
            "Fees charged less fees returned by refunds, from the journals of both runs.".into(),
        ],
        charts: vec![Chart {
            title: "Fee change (B − A) by category and card (CNY)".into(),
            svg: charts::bars_by_label(&labels, &deltas, Unit::Fen)?,
            legend: Vec::new(),
        }],
        tables: vec![Table {
            title: "Fees by category and card".into(),
            head: vec![
                text("Category"),
                text("Card"),
                num("Purchases"),
                num("Fees A"),
                num("Fees B"),
                num("B − A"),
                num("Change"),
            ],
            rows,
            ..Table::default()
        }],
        ..Section::default()
    })
}

fn dates(diff: &Diff) -> Result<Section> {
    let days: Vec<_> = diff.by_date.iter().map(|d| d.date).collect();
    let pair = |d: &diff::DateDelta, at: usize| Pair {
        a: d.a.amounts[at],
        b: d.b.amounts[at],
    };
    let fees: Vec<i128> = diff
        .by_date
        .iter()
        .map(|d| pair(d, FEES_AT).delta())
        .collect();
    let payouts: Vec<i128> = diff
        .by_date
        .iter()
        .map(|d| pair(d, PAYOUT_AT).delta())
        .collect();
    let rows = diff
        .by_date
        .iter()
        .map(|d| {
            let mut cells = vec![text(calendar::format_date(d.date))];
            cells.extend(amounts(&pair(d, FEES_AT)));
            cells.extend(amounts(&pair(d, PAYOUT_AT)).into_iter().take(3));
            cells
        })
        .collect();
    Ok(Section {
        id: "dates".into(),
        title: "By settlement date".into(),
        charts: vec![Chart {
            title: "Fee and payout change (B − A) per settlement date (CNY)".into(),
            svg: charts::bars_over_time(&days, &[&fees, &payouts], Layout::Grouped, Unit::Fen)?,
            legend: ["Fees", "Payouts"]
                .iter()
                .enumerate()
                .map(|(k, name)| LegendItem {
                    name: (*name).into(),
                    colour: charts::css_colour(k),
                })
                .collect(),
        }],
        tables: vec![Table {
            title: "Fees and payouts per settlement date".into(),
            head: head(&[
                "Date", "Fees A", "Fees B", "B − A", "Change", "Payout A", "Payout B", "B − A",
            ]),
            rows,
            folded: diff.by_date.len() > 16,
            ..Table::default()
        }],
        ..Section::default()
    })
}

fn merchants(diff: &Diff, top: usize) -> Section {
    let rows = diff
        .merchants
        .iter()
        .take(top)
        .enumerate()
        .map(|(k, m)| {
            let pair = |at: usize| Pair {
                a: m.a.amounts[at],
                b: m.b.amounts[at],
            };
            vec![
                num((k + 1).to_string()),
                code(&m.merchant_id),
                fen(pair(FEES_AT).a),
                fen(pair(FEES_AT).b),
                fen(pair(FEES_AT).delta()),
                fen(pair(PAYOUT_AT).a),
                fen(pair(PAYOUT_AT).b),
                fen(pair(PAYOUT_AT).delta()),
            ]
        })
        .collect();
    Section {
        id: "merchants".into(),
        title: "Merchants that changed most".into(),
        lead: vec![format!(
            "{} of {} merchants changed; ranked by the size of their payout change, then of their fee change, then by id (the top {}).",
            diff.merchants.len(),
            diff.merchants_compared,
            top.min(diff.merchants.len())
        )],
        tables: vec![Table {
            title: "Top merchants by change".into(),
            head: vec![
                num("#"),
                text("Merchant"),
                num("Fees A"),
                num("Fees B"),
                num("B − A"),
                num("Payout A"),
                num("Payout B"),
                num("B − A"),
            ],
            rows,
            ..Table::default()
        }],
        ..Section::default()
    }
}
