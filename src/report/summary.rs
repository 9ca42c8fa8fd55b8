//! The report's first section: the runs, their period, their inputs'
//! digests and their control totals, with both sides of the conservation
//! equation (RULES.md 3.7).
//!
//! It owns that section's words and tables. It must not compute money:
//! every amount is a control.json total (summed over the runs) or a figure
//! of `ReportData`, printed by `page`'s cells.

use super::page::{
    Cell, OPEN_ROWS_MAX, Section, Table, code, date, fen, grouped_count, num, text, whole,
};
use super::read::TOTAL_KEYS;
use super::{InputDigest, ReportData, conservation};
use crate::money::format_fen_grouped;

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

pub fn summary(data: &ReportData) -> Section {
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
        ("Settlement files".into(), grouped_count(files as u64)),
        ("Settlement rows".into(), grouped_count(rows)),
        (
            "Merchants with a row".into(),
            grouped_count(data.merchants_with_rows),
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
        if several {
            ", summed over the runs"
        } else {
            ""
        },
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
            let count = |get: fn(&InputDigest) -> Option<u64>| {
                whole(transactions.clone().filter_map(get).sum())
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
                count(|i| i.rows_accepted),
                count(|i| i.rows_rejected),
                fen(run.control.totals[total_at("purchases")]),
                fen(run.control.totals[total_at("payouts")]),
                fen(run.control.receivables_fen),
            ]
        })
        .collect();
    let runs_table = Table {
        title: "Runs".into(),
        head: vec![
            text("Folder"),
            text("Business dates"),
            text("Settlement dates"),
            num("Rows accepted"),
            num("Rows rejected"),
            num("Purchases"),
            num("Payouts"),
            num("Receivables at end"),
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
                    format!(
                        "{} read, {} accepted, {} rejected",
                        grouped_count(read),
                        grouped_count(accepted),
                        grouped_count(rejected)
                    )
                }
                (Some(read), _, _) => format!("{} rows", grouped_count(read)),
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
