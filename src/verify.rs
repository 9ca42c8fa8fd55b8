//! `settle verify DIR`: re-reads a published folder and checks it against
//! its own `control.json`: the SHA-256 of every output file, the
//! arithmetic of every settlement row, and the conservation totals
//! recomputed from the settlement files, and the state's index segments
//! against the state manifest, and each journal file against its
//! settlement file (docs/JOURNAL.md). Parquet runs (`--format parquet`)
//! are read back the same way, through `output::parquet::read`.
//!
//! It reads only the published folder, never the inputs, so an operator can
//! check a folder received from elsewhere.

use std::collections::BTreeMap;
use std::path::Path;

use crate::calendar;
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::journal::{self, Check, JOURNAL_HEADER};
use crate::ledger::Row;
use crate::money::{self, format_fen};
use crate::output::control::sha256_hex;
use crate::output::csv::SETTLEMENT_HEADER;
use crate::output::parquet;

/// The names of a settlement file's amount columns (after
/// `settlement_date,merchant_id,txn_count`), from the header the writer uses.
fn amount_columns() -> Vec<&'static str> {
    SETTLEMENT_HEADER.trim_end().split(',').skip(3).collect()
}

/// Checks `dir`. Returns one sentence per inconsistency; empty means the
/// folder is consistent. A folder without a readable control.json is an
/// error.
pub fn verify(dir: &Path) -> Result<Vec<String>> {
    let control_path = dir.join("control.json");
    let control_text = std::fs::read(&control_path)
        .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", control_path.display())))?;
    let control: serde_json::Value = serde_json::from_slice(&control_text).map_err(|e| {
        Error::input(
            control_path.display().to_string(),
            format!("is not JSON: {e}"),
        )
    })?;
    let mut problems = Vec::new();

    // Every listed output must be there with its digest, and every
    // settlement file must be listed.
    let outputs = control["outputs"].as_object().cloned().unwrap_or_default();
    if outputs.is_empty() {
        problems.push("control.json lists no output files".to_string());
    }
    for (name, digest) in &outputs {
        match std::fs::read(dir.join(name)) {
            Ok(bytes) if Some(sha256_hex(&bytes).as_str()) == digest.as_str() => {}
            Ok(_) => problems.push(format!(
                "{name}: its SHA-256 differs from the one control.json lists"
            )),
            Err(e) => problems.push(format!(
                "{name}: listed in control.json but cannot be read ({e})"
            )),
        }
    }
    // The state's index segments are listed in its manifest (itself listed
    // above) with their sizes and CRC-32s.
    problems.extend(crate::state::verify_segments(dir));
    // A run's settlement files are all CSV or all Parquet (`--format`).
    let mut settlement_names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::Usage(format!("{}: cannot list: {e}", dir.display())))?
        .filter_map(|entry| {
            entry
                .ok()
                .map(|e| e.file_name().to_string_lossy().into_owned())
        })
        .filter(|name| {
            name.starts_with("settlement-")
                && (name.ends_with(".csv") || name.ends_with(".parquet"))
        })
        .collect();
    settlement_names.sort();
    for name in &settlement_names {
        if !outputs.contains_key(name) {
            problems.push(format!("{name}: present but not listed in control.json"));
        }
    }

    // Recompute the totals from the settlement files, in date order.
    let mut sums = [0i128; 12];
    let mut first_carried_in: BTreeMap<String, i128> = BTreeMap::new();
    let mut last_carried_out: BTreeMap<String, i128> = BTreeMap::new();
    for name in &settlement_names {
        let parquet = name.ends_with(".parquet");
        let records = if parquet {
            settlement_parquet(dir, name, &mut problems)
        } else {
            settlement_csv(dir, name, &mut problems)?
        };
        let mut file_rows: Vec<(String, Row)> = Vec::new();
        for SettlementLine {
            at,
            merchant,
            txn_count,
            amounts,
        } in records
        {
            check_row(name, &at, &merchant, &amounts, &mut problems);
            for (sum, amount) in sums.iter_mut().zip(amounts) {
                *sum += amount;
            }
            first_carried_in
                .entry(merchant.clone())
                .or_insert(amounts[4]);
            last_carried_out.insert(merchant.clone(), amounts[11]);
            match txn_count {
                Some(txn_count) => {
                    let narrow = amounts.map(|amount| amount as i64);
                    file_rows.push((merchant, Row::with_amounts(0, 0, txn_count, narrow)));
                }
                None => problems.push(format!("{name} {at}: txn_count is not a count")),
            }
        }
        let journal_name = name.replacen("settlement-", "journal-", 1);
        if !outputs.contains_key(&journal_name) {
            problems.push(format!(
                "{journal_name}: the journal of {name} is not listed in control.json"
            ));
        }
        let postings = if parquet {
            journal_parquet(dir, &journal_name, &mut problems)
        } else {
            match std::fs::read(dir.join(&journal_name)) {
                Ok(journal) => journal_csv(&journal_name, &journal, &mut problems),
                Err(e) => {
                    problems.push(format!("{journal_name}: cannot be read ({e})"));
                    Vec::new()
                }
            }
        };
        check_journal(&journal_name, &postings, &file_rows, &mut problems);
    }

    let totals = &control["totals"];
    let recomputed = [
        ("purchases", sums[0]),
        ("refunds", sums[1]),
        ("fees", sums[2]),
        ("adjustments", sums[3]),
        ("carried_in_first", first_carried_in.values().sum::<i128>()),
        ("payouts", sums[10]),
        ("deposit_held", sums[6]),
        ("deposit_released", sums[7]),
        ("deposit_forfeited", sums[8]),
        ("deactivation_fees", sums[9]),
        ("carried_out_last", last_carried_out.values().sum::<i128>()),
    ];
    for (key, value) in recomputed {
        let listed = totals[key].as_str().unwrap_or("(missing)");
        if listed != format_fen(value) {
            problems.push(format!(
                "total {key}: the settlement files give {} but control.json says {listed}",
                format_fen(value)
            ));
        }
    }
    let left = sums[0] - sums[1] - sums[2] + sums[3] + first_carried_in.values().sum::<i128>();
    let right = sums[10] + sums[6] - sums[7] + sums[9] + last_carried_out.values().sum::<i128>();
    if left != right {
        problems.push(format!(
            "conservation does not hold: inputs side {} but outputs side {}",
            format_fen(left),
            format_fen(right)
        ));
    }
    if control["balanced"] != serde_json::Value::Bool(true) {
        problems.push("control.json does not say \"balanced\": true".to_string());
    }
    Ok(problems)
}

/// One settlement row as read from its file: where it is (`line 5`, `row
/// 4`), its merchant, its count (`None` when unreadable) and its amounts in
/// the order of `AMOUNT_COLUMNS`.
struct SettlementLine {
    at: String,
    merchant: String,
    txn_count: Option<u64>,
    amounts: [i128; 12],
}

/// The readable rows of a CSV settlement file; a row that is not is a
/// problem and is left out.
fn settlement_csv(
    dir: &Path,
    name: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<SettlementLine>> {
    let bytes =
        std::fs::read(dir.join(name)).map_err(|e| Error::io(format!("reading {name}"), e))?;
    if !bytes.starts_with(SETTLEMENT_HEADER.as_bytes()) {
        problems.push(format!("{name}: the header is not the settlement header"));
        return Ok(Vec::new());
    }
    let columns = amount_columns();
    assert_eq!(columns.len(), 12, "a settlement row has 12 amounts");
    let mut lines = Vec::new();
    let mut tokenizer = Tokenizer::new(&bytes, SETTLEMENT_HEADER.len());
    let mut record = Record::default();
    while tokenizer.next_record(&mut record) {
        let line = record.lines_before + 2;
        if record.field_count() != 15 {
            problems.push(format!(
                "{name} line {line}: {} fields, not 15",
                record.field_count()
            ));
            continue;
        }
        let mut amounts = [0i128; 12];
        let mut readable = true;
        for (k, column) in columns.iter().enumerate() {
            match money::parse_amount_fen(record.field(3 + k), true) {
                Ok(fen) => amounts[k] = i128::from(fen),
                Err(e) => {
                    problems.push(format!("{name} line {line}: {column} {}", e.describe()));
                    readable = false;
                }
            }
        }
        if readable {
            lines.push(SettlementLine {
                at: format!("line {line}"),
                merchant: String::from_utf8_lossy(record.field(1)).into_owned(),
                txn_count: std::str::from_utf8(record.field(2))
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok()),
                amounts,
            });
        }
    }
    Ok(lines)
}

/// The rows of a Parquet settlement file; one whose schema is not the
/// run's, or that cannot be read, is a problem and gives no rows.
fn settlement_parquet(dir: &Path, name: &str, problems: &mut Vec<String>) -> Vec<SettlementLine> {
    let records = match parquet::read::settlement(&dir.join(name)) {
        Ok(records) => records,
        Err(problem) => {
            problems.push(format!("{name}: {problem}"));
            return Vec::new();
        }
    };
    let date = name
        .strip_prefix("settlement-")
        .and_then(|n| n.strip_suffix(".parquet"))
        .unwrap_or_default();
    records
        .into_iter()
        .enumerate()
        .map(|(k, record)| {
            let at = format!("row {}", k + 1);
            if calendar::format_date(record.settlement_day) != date {
                problems.push(format!(
                    "{name} {at}: settlement_date {} is not the file's date",
                    calendar::format_date(record.settlement_day)
                ));
            }
            SettlementLine {
                at,
                merchant: record.merchant,
                txn_count: u64::try_from(record.txn_count).ok(),
                amounts: record.amounts_fen,
            }
        })
        .collect()
}

/// A journal posting as read from its file: where it is, its merchant and
/// the columns the checks read.
type JournalLine = (String, String, journal::Line);

/// The readable postings of a CSV journal file.
fn journal_csv(name: &str, bytes: &[u8], problems: &mut Vec<String>) -> Vec<JournalLine> {
    if !bytes.starts_with(JOURNAL_HEADER.as_bytes()) {
        problems.push(format!("{name}: the header is not the journal header"));
        return Vec::new();
    }
    let mut postings = Vec::new();
    let mut tokenizer = Tokenizer::new(bytes, JOURNAL_HEADER.len());
    let mut record = Record::default();
    while tokenizer.next_record(&mut record) {
        let line = record.lines_before + 2;
        match journal::read_line(&record) {
            Ok(posting) => postings.push((
                format!("line {line}"),
                String::from_utf8_lossy(record.field(1)).into_owned(),
                posting,
            )),
            Err(problem) => problems.push(format!("{name} line {line}: {problem}")),
        }
    }
    postings
}

/// The postings of a Parquet journal file.
fn journal_parquet(dir: &Path, name: &str, problems: &mut Vec<String>) -> Vec<JournalLine> {
    match parquet::read::journal(&dir.join(name)) {
        Ok(postings) => postings
            .into_iter()
            .enumerate()
            .map(|(k, posting)| (format!("row {}", k + 1), posting.merchant, posting.line))
            .collect(),
        Err(problem) => {
            problems.push(format!("{name}: {problem}"));
            Vec::new()
        }
    }
}

/// A journal file's postings against its settlement file's rows
/// (docs/JOURNAL.md): every row's postings sum to its columns and balance,
/// each posting has its row, and `seq` counts 1, 2, 3 … inside each row.
fn check_journal(
    name: &str,
    postings: &[JournalLine],
    rows: &[(String, Row)],
    problems: &mut Vec<String>,
) {
    let mut checks: BTreeMap<&str, (Check, u64)> = BTreeMap::new();
    for (at, merchant, posting) in postings {
        let (check, last_seq) = checks.entry(merchant).or_default();
        if posting.seq != *last_seq + 1 {
            problems.push(format!(
                "{name} {at}: seq {} follows {last_seq} for {merchant}",
                posting.seq,
            ));
        }
        *last_seq = posting.seq;
        check.add(
            posting.kind,
            posting.amount_fen.into(),
            posting.count.unwrap_or(0),
        );
    }
    for (merchant, row) in rows {
        let check = checks.remove(merchant.as_str()).map(|(check, _)| check);
        if let Err(problem) = check.unwrap_or_default().against(row) {
            problems.push(format!("{name} ({merchant}): {problem}"));
        }
    }
    for merchant in checks.keys() {
        problems.push(format!(
            "{name} ({merchant}): postings for a merchant without a settlement row"
        ));
    }
}

/// The arithmetic of one settlement row (RULES.md 3.4).
fn check_row(name: &str, at: &str, merchant: &str, a: &[i128; 12], problems: &mut Vec<String>) {
    let [
        purchases,
        refunds,
        fees,
        adjustments,
        carried_in,
        proceeds,
        held,
        released,
        _,
        fee,
        payout,
        carried_out,
    ] = *a;
    let expected_proceeds = purchases - refunds - fees + adjustments + carried_in;
    if proceeds != expected_proceeds {
        problems.push(format!(
            "{name} {at} ({merchant}): proceeds {} should be {}",
            format_fen(proceeds),
            format_fen(expected_proceeds)
        ));
    }
    let net = proceeds - held + released - fee;
    if payout != net.max(0) || carried_out != net.min(0) {
        problems.push(format!(
            "{name} {at} ({merchant}): payout {} and carried_out {} do not split {}",
            format_fen(payout),
            format_fen(carried_out),
            format_fen(net)
        ));
    }
    if carried_in > 0 {
        problems.push(format!(
            "{name} {at} ({merchant}): carried_in {} is positive",
            format_fen(carried_in)
        ));
    }
}
