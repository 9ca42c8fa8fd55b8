//! `control.json`: the run's inputs with their digests, row counts per
//! file, the conservation totals, receivables, and the digest of every
//! other output file.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::calendar::{self, Day};
use crate::ingest::Merchants;
use crate::money::format_fen;
use crate::pipeline::{FileCounts, Settled};

/// The totals of control.json (RULES.md 3.7), in the order it lists them:
/// the keys that readers of control.json (`settle report`, `settle merge`)
/// walk.
pub const TOTAL_KEYS: [&str; 11] = [
    "purchases",
    "refunds",
    "fees",
    "adjustments",
    "carried_in_first",
    "payouts",
    "deposit_held",
    "deposit_released",
    "deposit_forfeited",
    "deactivation_fees",
    "carried_out_last",
];
/// One input file as the run saw it.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// The path as given on the command line (`-` for stdin).
    pub path: String,
    /// The digest of the CSV it holds (uncompressed).
    pub sha256: String,
    /// How a compressed file was stored; `None` for a plain one.
    pub stored: Option<Stored>,
}

/// A compressed input as stored: its format (`gzip`, `zstd`) and the
/// digest of its stored bytes.
#[derive(Clone, Debug)]
pub struct Stored {
    pub compression: &'static str,
    pub sha256: String,
}

/// What the run was asked to do.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub config: InputFile,
    pub merchants: InputFile,
    pub transactions: Vec<InputFile>,
    pub adjustments: Option<InputFile>,
    pub through: Option<Day>,
    pub detail: bool,
    /// Whether the run publishes its end state (not with `--no-state`).
    pub state: bool,
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::ingest::source::hex(&Sha256::digest(bytes))
}

fn counted(file: &InputFile, counts: FileCounts) -> Value {
    let mut entry = serde_json::Map::new();
    entry.insert("path".into(), json!(file.path));
    entry.insert("sha256".into(), json!(file.sha256));
    // Only a compressed input has these, so a plain one's entry keeps the
    // bytes it always had.
    if let Some(stored) = &file.stored {
        entry.insert("compression".into(), json!(stored.compression));
        entry.insert("file_sha256".into(), json!(stored.sha256));
    }
    entry.insert("rows_read".into(), json!(counts.rows_read));
    entry.insert("rows_accepted".into(), json!(counts.rows_accepted));
    entry.insert("rows_rejected".into(), json!(counts.rows_rejected));
    Value::Object(entry)
}

fn date(day: Option<Day>) -> Value {
    day.map_or(Value::Null, |d| Value::String(calendar::format_date(d)))
}

/// Renders control.json; `files` are the outputs written before it, by
/// name with their SHA-256.
pub fn render(
    settled: &Settled,
    merchants: &Merchants,
    info: &RunInfo,
    settlement_names: &[String],
    files: &[(String, String)],
    timings: Option<Value>,
) -> String {
    let totals = &settled.totals;
    let transactions: Vec<Value> = info
        .transactions
        .iter()
        .zip(&settled.txn_counts)
        .map(|(file, counts)| counted(file, *counts))
        .collect();
    let adjustments = match (&info.adjustments, settled.adjustment_counts) {
        (Some(file), Some(counts)) => counted(file, counts),
        _ => Value::Null,
    };
    // What every merchant still owes at the end of the run: its balance
    // carried forward, whether or not it had a row in this run (a balance
    // from the starting state included).
    let mut receivables = Vec::new();
    let mut receivables_fen = 0i128;
    for (id, state) in crate::pipeline::carry::closing_merchants(settled, merchants) {
        if state.carried_fen < 0 {
            receivables_fen -= state.carried_fen;
            receivables.push(json!({"merchant_id": id, "amount": format_fen(-state.carried_fen)}));
        }
    }
    let outputs: serde_json::Map<String, Value> = files
        .iter()
        .map(|(name, sha256)| (name.clone(), Value::String(sha256.clone())))
        .collect();
    let mut run = json!({"start": date(settled.start), "horizon": date(settled.horizon), "through": date(info.through)});
    // Only a run published without its end state says so, so that every
    // other run's control.json keeps the bytes it always had.
    if let (false, Some(object)) = (info.state, run.as_object_mut()) {
        object.insert("state".into(), Value::Bool(false));
    }
    let control = json!({
        "engine": "settle",
        "version": env!("CARGO_PKG_VERSION"),
        "inputs": {
            "config": {"path": info.config.path, "sha256": info.config.sha256},
            "merchants": {"path": info.merchants.path, "sha256": info.merchants.sha256, "rows": merchants.len()},
            "transactions": transactions,
            "adjustments": adjustments,
        },
        "run": run,
        "totals": {
            "purchases": format_fen(totals.purchases_fen),
            "refunds": format_fen(totals.refunds_fen),
            "fees": format_fen(totals.fees_fen),
            "adjustments": format_fen(totals.adjustments_fen),
            "carried_in_first": format_fen(totals.carried_in_first_fen),
            "payouts": format_fen(totals.payouts_fen),
            "deposit_held": format_fen(totals.deposit_held_fen),
            "deposit_released": format_fen(totals.deposit_released_fen),
            "deposit_forfeited": format_fen(totals.deposit_forfeited_fen),
            "deactivation_fees": format_fen(totals.deactivation_fees_fen),
            "carried_out_last": format_fen(totals.carried_out_last_fen),
        },
        "receivables": {"total": format_fen(receivables_fen), "merchants": receivables},
        "settlement_files": settlement_names,
        "outputs": outputs,
        "balanced": true,
    });
    let mut control = control;
    if let (Some(timings), Some(object)) = (timings, control.as_object_mut()) {
        object.insert("timings".into(), timings);
    }
    let mut text = serde_json::to_string_pretty(&control).unwrap_or_default();
    text.push('\n');
    text
}
