//! Reading published run folders for a statement: each folder's
//! `control.json` (start, horizon, settlement files), the chain check, and
//! one merchant's settlement rows and journal postings (docs/JOURNAL.md).
//!
//! It owns the parsing of those files and the checks that make a set of
//! folders a chain. It must not compute statement figures or format
//! anything for people (that is `statement` and `render`), and it never
//! writes.

use std::path::{Path, PathBuf};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::journal::{self, Check, JOURNAL_HEADER};
use crate::ledger::{AMOUNT_COLUMNS, Row};
use crate::money;
use crate::output::csv::SETTLEMENT_HEADER;

pub use crate::journal::PostingKind as Kind;

/// Fields of a settlement line.
const SETTLEMENT_FIELDS: usize = 15;

/// One published run folder, as its control.json describes it.
#[derive(Clone, Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// The first business date the run covers.
    pub start: Day,
    /// The last business date the run covers.
    pub horizon: Day,
    /// The dates of `settlement_files`, ascending.
    pub settlement_dates: Vec<Day>,
}

impl RunFolder {
    pub fn name(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Reads `dir/control.json`. A missing or unreadable control.json, or one
/// without `run.start`/`run.horizon`, is a usage error (exit 2).
pub fn read_run(dir: &Path) -> Result<RunFolder> {
    let path = dir.join("control.json");
    let name = dir.display();
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::Usage(format!(
            "{name} is not a run folder: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let control: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let date = |key: &str| -> Result<Day> {
        let text = control["run"][key].as_str().ok_or_else(|| {
            Error::Usage(format!(
                "{}: run.{key} is missing: the run covers no dates",
                path.display()
            ))
        })?;
        calendar::parse_date(text.as_bytes()).ok_or_else(|| {
            Error::Usage(format!(
                "{}: run.{key} {text:?} is not a date",
                path.display()
            ))
        })
    };
    let start = date("start")?;
    let horizon = date("horizon")?;
    let files = control["settlement_files"].as_array().ok_or_else(|| {
        Error::Usage(format!(
            "{}: settlement_files is missing or not a list",
            path.display()
        ))
    })?;
    let mut settlement_dates = Vec::with_capacity(files.len());
    for file in files {
        // A statement reads CSV journals only (docs/PARQUET.md, D63).
        if file.as_str().is_some_and(|n| n.ends_with(".parquet")) {
            return Err(Error::Usage(format!(
                "{name} is a Parquet run (settle run --format parquet): settle statement reads CSV runs only; settle the same inputs with --format csv for a statement"
            )));
        }
        let day = file
            .as_str()
            .and_then(|n| n.strip_prefix("settlement-"))
            .and_then(|n| n.strip_suffix(".csv"))
            .and_then(|d| calendar::parse_date(d.as_bytes()))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: settlement_files lists {file}, not settlement-YYYY-MM-DD.csv",
                    path.display()
                ))
            })?;
        settlement_dates.push(day);
    }
    settlement_dates.sort_unstable();
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        start,
        horizon,
        settlement_dates,
    })
}

/// Sorts runs by start and checks that they chain: each start is the
/// previous horizon + 1. A gap or an overlap names both folders.
pub fn check_chain(runs: &mut [RunFolder]) -> Result<()> {
    runs.sort_by_key(|run| run.start);
    for pair in runs.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let expected = before.horizon + 1;
        if after.start != expected {
            let what = if after.start > expected {
                "a gap"
            } else {
                "an overlap"
            };
            return Err(Error::Usage(format!(
                "run folders {} and {} do not chain ({what}): {} ends on {} but {} starts on {}, not {}",
                before.name(),
                after.name(),
                before.name(),
                calendar::format_date(before.horizon),
                after.name(),
                calendar::format_date(after.start),
                calendar::format_date(expected)
            )));
        }
    }
    Ok(())
}

/// The settlement lag of a chain of runs. A run owns the settlement dates
/// start + lag through horizon + lag (RULES.md 2), so every settlement file
/// date `d` of a run gives `d − horizon ≤ lag ≤ d − start`. The lag taken is
/// the smallest `first date − start` over the runs with a settlement file:
/// exact whenever a run has a row on its first date (always so for a run
/// without `--state-in`, whose start is its earliest transaction's date).
/// It must agree with every file; a chain without any settlement file has
/// lag 0 (and nothing to show).
pub fn infer_lag(runs: &[RunFolder]) -> Result<i32> {
    let lag = runs
        .iter()
        .filter_map(|run| run.settlement_dates.first().map(|first| first - run.start))
        .min()
        .unwrap_or(0);
    for run in runs {
        for &day in &run.settlement_dates {
            if lag < 0 || day < run.start + lag || day > run.horizon + lag {
                return Err(Error::Usage(format!(
                    "{}: settlement file of {} lies outside the run's dates {}..{} with the lag {lag} the chain implies",
                    run.name(),
                    calendar::format_date(day),
                    calendar::format_date(run.start),
                    calendar::format_date(run.horizon)
                )));
            }
        }
    }
    Ok(lag)
}

/// A settlement row as read back: its figures in fen, summed in `i128`
/// over a statement's period.
pub type SettlementRow = Row<i128>;

/// One journal line of the merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub date: Day,
    pub seq: u32,
    pub kind: Kind,
    pub amount_fen: i64,
    pub category: String,
    pub card: String,
    pub rate: String,
    pub capped: String,
    pub count: Option<u64>,
    /// The `source` column as written (`key=value;key=value`).
    pub source: String,
    pub detail: String,
}

impl Posting {
    /// The value of `key` in the `source` column, if present.
    pub fn source_value(&self, key: &str) -> Option<&str> {
        self.source
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// One settlement date of the merchant: its row and the postings that
/// explain it, in `seq` order.
#[derive(Clone, Debug)]
pub struct MerchantDay {
    pub date: Day,
    pub row: SettlementRow,
    pub postings: Vec<Posting>,
}

/// Whether `merchant` appears in `dir/state/merchants.csv` (the end state
/// lists every merchant the run knows). A missing state file is "no".
pub fn state_knows(dir: &Path, merchant: &str) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("state").join("merchants.csv")) else {
        return false;
    };
    let header_len = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |at| at + 1);
    let mut tokenizer = Tokenizer::new(&bytes, header_len);
    let mut record = Record::default();
    while tokenizer.next_record(&mut record) {
        if record.field_count() > 0 && record.field(0) == merchant.as_bytes() {
            return true;
        }
    }
    false
}

/// The merchant's settlement rows and postings in one run folder, by date.
/// A settlement file without its journal is a usage error naming both.
pub fn read_merchant(run: &RunFolder, merchant: &str) -> Result<Vec<MerchantDay>> {
    let mut days = Vec::new();
    for &date in &run.settlement_dates {
        let day_text = calendar::format_date(date);
        let settlement_path = run.dir.join(format!("settlement-{day_text}.csv"));
        let journal_path = run.dir.join(format!("journal-{day_text}.csv"));
        if !journal_path.is_file() {
            return Err(Error::Usage(format!(
                "{} has no journal: {} is there but {} is missing (runs before the journal cannot give a statement)",
                run.name(),
                settlement_path.display(),
                journal_path.display()
            )));
        }
        let row = read_settlement_row(&settlement_path, date, merchant)?;
        let postings = read_postings(&journal_path, date, merchant)?;
        match (row, postings.is_empty()) {
            (None, true) => {}
            (Some(row), false) => {
                check_explains(&journal_path, merchant, &row, &postings)?;
                days.push(MerchantDay {
                    date,
                    row,
                    postings,
                });
            }
            (Some(_), true) => {
                return Err(Error::input(
                    journal_path.display().to_string(),
                    format!("no posting explains the settlement row of {merchant}"),
                ));
            }
            (None, false) => {
                return Err(Error::input(
                    journal_path.display().to_string(),
                    format!("postings of {merchant} without a settlement row"),
                ));
            }
        }
    }
    Ok(days)
}

/// A published file's bytes, refused (exit 2, the file named) unless it
/// starts with its documented header.
pub(crate) fn read_file_with_header(path: &Path, header: &str) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !bytes.starts_with(header.as_bytes()) {
        return Err(Error::input(
            path.display().to_string(),
            "the header is not the documented one",
        ));
    }
    Ok(bytes)
}

fn amount(path: &Path, line: u64, column: &str, text: &[u8]) -> Result<i64> {
    money::parse_amount_fen(text, true).map_err(|e| {
        Error::input(
            path.display().to_string(),
            format!("line {line}: {column} {}", e.describe()),
        )
    })
}

fn count(path: &Path, line: u64, text: &[u8]) -> Result<u64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            Error::input(
                path.display().to_string(),
                format!(
                    "line {line}: {:?} is not a count",
                    String::from_utf8_lossy(text)
                ),
            )
        })
}

fn read_settlement_row(path: &Path, date: Day, merchant: &str) -> Result<Option<SettlementRow>> {
    let bytes = read_file_with_header(path, SETTLEMENT_HEADER)?;
    let mut tokenizer = Tokenizer::new(&bytes, SETTLEMENT_HEADER.len());
    let mut record = Record::default();
    while tokenizer.next_record(&mut record) {
        if record.field_count() < 2 || record.field(1) != merchant.as_bytes() {
            continue;
        }
        let line = record.lines_before + 2;
        if record.field_count() != SETTLEMENT_FIELDS
            || calendar::parse_date(record.field(0)) != Some(date)
        {
            return Err(Error::input(
                path.display().to_string(),
                format!("line {line}: not a settlement row of {merchant} on its date"),
            ));
        }
        let txn_count = count(path, line, record.field(2))?;
        let mut amounts = [0i128; 12];
        for (k, (figure, column)) in amounts.iter_mut().zip(AMOUNT_COLUMNS).enumerate() {
            *figure = i128::from(amount(path, line, column, record.field(3 + k))?);
        }
        return Ok(Some(Row::with_amounts(date, 0, txn_count, amounts)));
    }
    Ok(None)
}

fn read_postings(path: &Path, date: Day, merchant: &str) -> Result<Vec<Posting>> {
    let bytes = read_file_with_header(path, JOURNAL_HEADER)?;
    let mut tokenizer = Tokenizer::new(&bytes, JOURNAL_HEADER.len());
    let mut record = Record::default();
    let mut postings = Vec::new();
    let bad = |line: u64, problem: &str| {
        Error::input(
            path.display().to_string(),
            format!("line {line}: {problem}"),
        )
    };
    while tokenizer.next_record(&mut record) {
        if record.field_count() < 2 || record.field(1) != merchant.as_bytes() {
            // Lines are sorted by merchant_id: the merchant's are together.
            if postings.is_empty() {
                continue;
            }
            break;
        }
        let line = record.lines_before + 2;
        let read = journal::read_line(&record).map_err(|problem| bad(line, &problem))?;
        if calendar::parse_date(record.field(0)) != Some(date) {
            return Err(bad(line, "settlement_date is not the file's date"));
        }
        let text = |i: usize| String::from_utf8_lossy(record.field(i)).into_owned();
        postings.push(Posting {
            date,
            seq: u32::try_from(read.seq).map_err(|_| bad(line, "seq out of range"))?,
            kind: read.kind,
            amount_fen: read.amount_fen,
            category: text(5),
            card: text(6),
            rate: text(7),
            capped: text(8),
            count: read.count,
            source: text(10),
            detail: text(11),
        });
    }
    postings.sort_by_key(|p| p.seq);
    Ok(postings)
}

/// The journal's promise (docs/JOURNAL.md, "What the journal proves"),
/// checked as `settle verify` checks it: each column is the sum of its
/// postings, `txn_count` the sum of their counts, and the row balances.
fn check_explains(
    path: &Path,
    merchant: &str,
    row: &SettlementRow,
    postings: &[Posting],
) -> Result<()> {
    let mut check = Check::default();
    for p in postings {
        check.add(p.kind, i128::from(p.amount_fen), p.count.unwrap_or(0));
    }
    let as_row = row.narrow().expect("parsed from amounts below 10^14 fen");
    check.against(&as_row).map_err(|problem| {
        Error::input(
            path.display().to_string(),
            format!("the postings of {merchant} do not explain its settlement row: {problem}"),
        )
    })
}

/// Every posting of every day, flattened, in date then `seq` order.
pub fn all_postings(days: &[MerchantDay]) -> impl Iterator<Item = &Posting> {
    days.iter().flat_map(|d| d.postings.iter())
}

/// The settlement dates a chain owns, first and last (inclusive).
pub fn owned_dates(runs: &[RunFolder], lag: i32) -> Option<(Day, Day)> {
    let first = runs.first()?;
    let last = runs.last()?;
    Some((first.start + lag, last.horizon + lag))
}
