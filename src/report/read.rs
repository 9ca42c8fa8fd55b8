//! Reading a published run folder for the report: the parts of
//! `control.json` that the header shows (input digests, control totals,
//! receivables), and one pass over each settlement, journal and rejects
//! file that sums what the charts need.
//!
//! It owns the parsing of those files; the folder and chain checks are
//! `statement::read`'s (`read_run`, `check_chain`), reused, not copied. It
//! must not combine files into the report's figures (that is `mod.rs`) nor
//! format anything for people, and it never writes. Every amount is parsed
//! exactly into integer fen and summed in `i128`.

use std::collections::HashMap;
use std::path::Path;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::journal::{self, JOURNAL_HEADER, PostingKind};
use crate::ledger::AMOUNT_COLUMNS;
use crate::money;
use crate::output::csv::SETTLEMENT_HEADER;
use crate::statement::read::read_file_with_header;

/// Fields of a settlement line.
const SETTLEMENT_FIELDS: usize = 15;

/// The header of `rejects.csv` (RULES.md 4).
pub const REJECTS_HEADER: &str = "file,line,txn_id,reason,detail\n";

/// The totals of control.json (RULES.md 3.7), in the order it lists them.
pub use crate::output::control::TOTAL_KEYS;

/// The totals of `TOTAL_KEYS` that are plain sums of a settlement column
/// over a run, with that column (`AMOUNT_COLUMNS`); the two carried totals
/// are per-merchant first and last figures, not sums.
pub const SUMMED_TOTALS: [(&str, &str); 9] = [
    ("purchases", "purchases"),
    ("refunds", "refunds"),
    ("fees", "fees"),
    ("adjustments", "adjustments"),
    ("payouts", "payout"),
    ("deposit_held", "deposit_held"),
    ("deposit_released", "deposit_released"),
    ("deposit_forfeited", "deposit_forfeited"),
    ("deactivation_fees", "deactivation_fee"),
];

/// One input file as control.json lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDigest {
    /// `config`, `merchants`, `transactions` or `adjustments`.
    pub role: &'static str,
    pub path: String,
    pub sha256: String,
    /// Rows read, accepted and rejected (the merchants file has only rows).
    pub rows_read: Option<u64>,
    pub rows_accepted: Option<u64>,
    pub rows_rejected: Option<u64>,
}

/// What the report takes from one run's control.json besides its dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub version: String,
    pub inputs: Vec<InputDigest>,
    /// In the order of `TOTAL_KEYS`.
    pub totals: [i128; 11],
    /// What merchants owe at the end of the run (positive).
    pub receivables_fen: i128,
    pub balanced: bool,
}

/// Reads `dir/control.json` for the header. `read_run` has already read
/// its dates, so a missing file is not expected here; a missing or
/// malformed total or digest names the key.
pub fn read_control(dir: &Path) -> Result<Control> {
    let path = dir.join("control.json");
    let bytes =
        std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let control: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let bad =
        |key: &str, problem: &str| Error::Usage(format!("{}: {key} {problem}", path.display()));
    let fen = |value: &serde_json::Value, key: &str| -> Result<i128> {
        let text = value
            .as_str()
            .ok_or_else(|| bad(key, "is missing or not a string"))?;
        money::parse_amount_fen(text.as_bytes(), true)
            .map(i128::from)
            .map_err(|e| bad(key, e.describe()))
    };
    let mut totals = [0i128; 11];
    for (total, key) in totals.iter_mut().zip(TOTAL_KEYS) {
        *total = fen(&control["totals"][key], &format!("totals.{key}"))?;
    }
    let receivables_fen = fen(&control["receivables"]["total"], "receivables.total")?;
    let inputs_json = &control["inputs"];
    let mut inputs = Vec::new();
    let mut input = |role: &'static str, value: &serde_json::Value, key: String| -> Result<()> {
        let text = |field: &str| -> Result<String> {
            value[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("{key}.{field}"), "is missing or not a string"))
        };
        let count = |field: &str| value[field].as_u64().or_else(|| value["rows"].as_u64());
        inputs.push(InputDigest {
            role,
            path: text("path")?,
            sha256: text("sha256")?,
            rows_read: count("rows_read"),
            rows_accepted: value["rows_accepted"].as_u64(),
            rows_rejected: value["rows_rejected"].as_u64(),
        });
        Ok(())
    };
    input("config", &inputs_json["config"], "inputs.config".into())?;
    input(
        "merchants",
        &inputs_json["merchants"],
        "inputs.merchants".into(),
    )?;
    let transactions = inputs_json["transactions"]
        .as_array()
        .ok_or_else(|| bad("inputs.transactions", "is missing or not a list"))?;
    for (k, file) in transactions.iter().enumerate() {
        input("transactions", file, format!("inputs.transactions.{k}"))?;
    }
    if !inputs_json["adjustments"].is_null() {
        input(
            "adjustments",
            &inputs_json["adjustments"],
            "inputs.adjustments".into(),
        )?;
    }
    Ok(Control {
        version: control["version"].as_str().unwrap_or_default().to_string(),
        inputs,
        totals,
        receivables_fen,
        balanced: control["balanced"].as_bool() == Some(true),
    })
}

/// One merchant's figures summed over settlement rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MerchantSums {
    /// Settlement rows (dates) of the merchant.
    pub rows: u64,
    pub txn_count: u64,
    pub purchases_fen: i128,
    pub refunds_fen: i128,
    pub fees_fen: i128,
    pub payout_fen: i128,
}

impl MerchantSums {
    pub fn add(&mut self, other: &MerchantSums) {
        self.rows += other.rows;
        self.txn_count += other.txn_count;
        self.purchases_fen += other.purchases_fen;
        self.refunds_fen += other.refunds_fen;
        self.fees_fen += other.fees_fen;
        self.payout_fen += other.payout_fen;
    }
}

/// The sums of one settlement file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementSums {
    pub rows: u64,
    pub txn_count: u64,
    /// Column sums in the order of `AMOUNT_COLUMNS`.
    pub columns: [i128; 12],
    /// Per merchant, in the file's order (bytewise by merchant_id).
    pub merchants: Vec<(Box<str>, MerchantSums)>,
}

fn bad_line(path: &Path, line: u64, problem: impl std::fmt::Display) -> Error {
    Error::input(
        path.display().to_string(),
        format!("line {line}: {problem}"),
    )
}

/// Sums a settlement file of settlement date `date`: every row's columns,
/// and each merchant's figures for the busiest-merchants table.
pub fn read_settlement(path: &Path, date: Day) -> Result<SettlementSums> {
    let bytes = read_file_with_header(path, SETTLEMENT_HEADER)?;
    let mut tokenizer = Tokenizer::new(&bytes, SETTLEMENT_HEADER.len());
    let mut record = Record::default();
    let mut sums = SettlementSums::default();
    while tokenizer.next_record(&mut record) {
        let line = record.lines_before + 2;
        if record.field_count() != SETTLEMENT_FIELDS {
            return Err(bad_line(
                path,
                line,
                format_args!("{} fields, not {SETTLEMENT_FIELDS}", record.field_count()),
            ));
        }
        if calendar::parse_date(record.field(0)) != Some(date) {
            return Err(bad_line(
                path,
                line,
                "settlement_date is not the file's date",
            ));
        }
        let merchant = std::str::from_utf8(record.field(1))
            .map_err(|_| bad_line(path, line, "merchant_id is not UTF-8"))?;
        let txn_count = std::str::from_utf8(record.field(2))
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(|| bad_line(path, line, "txn_count is not a count"))?;
        let mut amounts = [0i128; 12];
        for (k, (figure, column)) in amounts.iter_mut().zip(AMOUNT_COLUMNS).enumerate() {
            let fen = money::parse_amount_fen(record.field(3 + k), true)
                .map_err(|e| bad_line(path, line, format_args!("{column} {}", e.describe())))?;
            *figure = i128::from(fen);
        }
        sums.rows += 1;
        sums.txn_count += txn_count;
        for (sum, amount) in sums.columns.iter_mut().zip(amounts) {
            *sum += amount;
        }
        let [purchases_fen, refunds_fen, fees_fen, .., payout_fen, _] = amounts;
        sums.merchants.push((
            merchant.into(),
            MerchantSums {
                rows: 1,
                txn_count,
                purchases_fen,
                refunds_fen,
                fees_fen,
                payout_fen,
            },
        ));
    }
    Ok(sums)
}

/// Fees of one (category, card): the postings' net charge and the
/// purchases they were charged on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeeSums {
    /// `fee` postings negated, less `fee_returned`: what the `fees` column
    /// sums (docs/JOURNAL.md, "What the journal proves").
    pub net_fen: i128,
    /// The `count` of the `fee` postings: purchases charged.
    pub purchases: u64,
}

/// A fee group of the report: (category, card).
pub type FeeKey = (Box<str>, Box<str>);

/// The sums of one journal file that the report shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalSums {
    /// By (category, card), sorted.
    pub fees: Vec<(FeeKey, FeeSums)>,
    /// Deactivation fees taken: postings and their amount (positive).
    pub deactivations_taken: u64,
    pub deactivation_fees_fen: i128,
    /// Deactivation fees waived (退机).
    pub deactivations_waived: u64,
    /// Deposit postings: holds, releases (volume and final), forfeits.
    pub deposit_holds: u64,
    pub deposit_releases: u64,
    pub deposit_forfeits: u64,
}

/// Whether a journal line of this kind matters to the report. The check
/// reads only the `kind` field's bytes, so the lines the report skips
/// (purchases, payouts, …: most of a journal) cost one comparison.
fn wanted(kind: &[u8]) -> bool {
    matches!(
        kind,
        b"fee"
            | b"fee_returned"
            | b"deactivation_fee"
            | b"deactivation_fee_waived"
            | b"deposit_hold"
            | b"deposit_release"
            | b"deposit_release_final"
            | b"deposit_forfeit"
    )
}

/// Sums a journal file of settlement date `date`: fees by category and
/// card, the deactivation fees and waivers, and the deposit events.
pub fn read_journal(path: &Path, date: Day) -> Result<JournalSums> {
    let bytes = read_file_with_header(path, JOURNAL_HEADER)?;
    let mut tokenizer = Tokenizer::new(&bytes, JOURNAL_HEADER.len());
    let mut record = Record::default();
    let mut sums = JournalSums::default();
    let mut fees: HashMap<FeeKey, FeeSums> = HashMap::new();
    while tokenizer.next_record(&mut record) {
        let line = record.lines_before + 2;
        if record.field_count() != journal::JOURNAL_FIELDS {
            return Err(bad_line(
                path,
                line,
                format_args!(
                    "{} fields, not {}",
                    record.field_count(),
                    journal::JOURNAL_FIELDS
                ),
            ));
        }
        if !wanted(record.field(3)) {
            continue;
        }
        let read = journal::read_line(&record).map_err(|problem| bad_line(path, line, problem))?;
        if calendar::parse_date(record.field(0)) != Some(date) {
            return Err(bad_line(
                path,
                line,
                "settlement_date is not the file's date",
            ));
        }
        let amount_fen = i128::from(read.amount_fen);
        match read.kind {
            PostingKind::Fee | PostingKind::FeeReturned => {
                let text =
                    |k: usize| -> Box<str> { String::from_utf8_lossy(record.field(k)).into() };
                let entry = fees.entry((text(5), text(6))).or_default();
                entry.net_fen -= amount_fen;
                if read.kind == PostingKind::Fee {
                    entry.purchases += read.count.unwrap_or(0);
                }
            }
            PostingKind::DeactivationFee => {
                sums.deactivations_taken += 1;
                sums.deactivation_fees_fen -= amount_fen;
            }
            PostingKind::DeactivationFeeWaived => sums.deactivations_waived += 1,
            PostingKind::DepositHold => sums.deposit_holds += 1,
            PostingKind::DepositRelease | PostingKind::DepositReleaseFinal => {
                sums.deposit_releases += 1;
            }
            PostingKind::DepositForfeit => sums.deposit_forfeits += 1,
            _ => unreachable!("`wanted` lets only these kinds through"),
        }
    }
    let mut fees: Vec<_> = fees.into_iter().collect();
    fees.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    sums.fees = fees;
    Ok(sums)
}

/// Counts a run's `rejects.csv` by `reason`, sorted by reason.
pub fn read_rejects(path: &Path) -> Result<Vec<(Box<str>, u64)>> {
    let bytes = read_file_with_header(path, REJECTS_HEADER)?;
    let mut tokenizer = Tokenizer::new(&bytes, REJECTS_HEADER.len());
    let mut record = Record::default();
    let mut counts: HashMap<Box<str>, u64> = HashMap::new();
    while tokenizer.next_record(&mut record) {
        if record.field_count() != 5 {
            let line = record.lines_before + 2;
            return Err(bad_line(
                path,
                line,
                format_args!("{} fields, not 5", record.field_count()),
            ));
        }
        let reason = String::from_utf8_lossy(record.field(3));
        *counts.entry(reason.into()).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_unstable();
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Two rows worked by hand: the column sums and each merchant's figures.
    #[test]
    fn a_settlement_file_is_summed_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "s.csv",
            &format!(
                "{SETTLEMENT_HEADER}\
                 2026-11-02,M1,3,100.00,20.00,0.38,0.00,0.00,79.62,0.00,0.00,0.00,0.00,79.62,0.00\n\
                 2026-11-02,M2,1,0.01,0.00,0.00,-5.00,0.00,-4.99,0.00,0.00,0.00,0.00,0.00,-4.99\n"
            ),
        );
        let day = calendar::parse_date(b"2026-11-02").unwrap();
        let sums = read_settlement(&path, day).unwrap();
        assert_eq!(sums.rows, 2);
        assert_eq!(sums.txn_count, 4);
        assert_eq!(sums.columns[0], 10_001);
        assert_eq!(sums.columns[3], -500);
        assert_eq!(sums.columns[10], 7_962);
        assert_eq!(sums.columns[11], -499);
        assert_eq!(&*sums.merchants[1].0, "M2");
        assert_eq!(sums.merchants[1].1.purchases_fen, 1);
        assert_eq!(sums.merchants[0].1.fees_fen, 38);
        // A row of another date is refused, naming the line.
        let err = read_settlement(&path, day + 1).unwrap_err().to_string();
        assert!(err.contains("line 2: settlement_date"), "{err}");
    }

    /// Fees net of fees returned by (category, card); the other kinds
    /// counted; a purchase line skipped without being parsed further.
    #[test]
    fn a_journal_file_gives_fees_by_category_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "j.csv",
            &format!(
                "{JOURNAL_HEADER}\
                 2026-11-02,M1,1,purchase,100.00,dining,credit,0.0049,,2,,2 purchases\n\
                 2026-11-02,M1,2,fee,-0.49,dining,credit,0.0049,no,2,,fee\n\
                 2026-11-02,M1,3,refund,-50.00,dining,credit,0.0049,,1,,refund\n\
                 2026-11-02,M1,4,fee_returned,0.25,dining,credit,0.0049,,1,,back\n\
                 2026-11-02,M1,5,deposit_forfeit,10.00,,,,,,deposit=10.00,kept\n\
                 2026-11-02,M1,6,deactivation_fee,-199.00,,,,,,days=40,fee\n\
                 2026-11-02,M1,7,payout,0.00,,,,,,,nothing\n\
                 2026-11-02,M2,1,fee,-1.00,general,debit,0.0038,yes,3,,fee\n\
                 2026-11-02,M2,2,deactivation_fee_waived,0.00,,,,,,days=3,waived\n"
            ),
        );
        let day = calendar::parse_date(b"2026-11-02").unwrap();
        let sums = read_journal(&path, day).unwrap();
        let fee = |category: &str, card: &str| {
            sums.fees
                .iter()
                .find(|((c, k), _)| &**c == category && &**k == card)
                .map(|(_, f)| *f)
                .unwrap()
        };
        // 0.49 charged, 0.25 returned: 0.24 net on 2 purchases.
        assert_eq!(
            fee("dining", "credit"),
            FeeSums {
                net_fen: 24,
                purchases: 2
            }
        );
        assert_eq!(
            fee("general", "debit"),
            FeeSums {
                net_fen: 100,
                purchases: 3
            }
        );
        assert_eq!(sums.deactivations_taken, 1);
        assert_eq!(sums.deactivation_fees_fen, 19_900);
        assert_eq!(sums.deactivations_waived, 1);
        assert_eq!(sums.deposit_forfeits, 1);
        assert_eq!(sums.deposit_holds, 0);
    }

    #[test]
    fn an_unknown_kind_of_a_wanted_line_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "j.csv",
            &format!("{JOURNAL_HEADER}2026-11-02,M1,1,fee,-0.4x,dining,credit,0.0049,no,2,,fee\n"),
        );
        let day = calendar::parse_date(b"2026-11-02").unwrap();
        let err = read_journal(&path, day).unwrap_err().to_string();
        assert!(err.contains("j.csv: line 2: amount"), "{err}");
    }

    #[test]
    fn rejects_are_counted_by_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "rejects.csv",
            &format!(
                "{REJECTS_HEADER}a.csv,2,T1,bad_amount,x\na.csv,3,T2,duplicate_txn,\"y,\nz\"\na.csv,5,T3,bad_amount,x\n"
            ),
        );
        assert_eq!(
            read_rejects(&path).unwrap(),
            vec![("bad_amount".into(), 2), ("duplicate_txn".into(), 1)]
        );
    }
}
