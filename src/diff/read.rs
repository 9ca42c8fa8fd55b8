//! Reading a published run folder for `settle diff`: the parts of its
//! control.json that a comparison needs (what the run read, its dates, its
//! totals), and a cursor over the records of its settlement and journal
//! files.
//!
//! It owns the parsing of control.json beyond what `statement::read`
//! already reads (start, horizon, settlement files: reused here), and the
//! record cursor. It must not compare two runs (that is `diff`) and it
//! never writes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::money;
use crate::statement::read::{RunFolder, read_run};

/// The money totals of control.json that `settle diff` compares, in the
/// order it shows them, with the settlement column each one sums (RULES.md
/// 4); `None` for receivables, which no settlement column sums (it is each
/// merchant's balance after its last row, so it comes from control.json
/// alone).
pub const MONEY_TOTALS: [(&str, Option<&str>); 10] = [
    ("purchases", Some("purchases")),
    ("refunds", Some("refunds")),
    ("fees", Some("fees")),
    ("adjustments", Some("adjustments")),
    ("payouts", Some("payout")),
    ("deposit_held", Some("deposit_held")),
    ("deposit_released", Some("deposit_released")),
    ("deposit_forfeited", Some("deposit_forfeited")),
    ("deactivation_fees", Some("deactivation_fee")),
    ("receivables", None),
];

/// One input file of a run as control.json records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDigest {
    /// The path as given to `settle run`.
    pub path: String,
    pub sha256: String,
}

/// What a comparison needs of one run folder's control.json.
#[derive(Clone, Debug)]
pub struct RunControl {
    pub folder: RunFolder,
    pub through: Option<Day>,
    pub config: InputDigest,
    pub merchants: InputDigest,
    pub transactions: Vec<InputDigest>,
    pub adjustments: Option<InputDigest>,
    /// `MONEY_TOTALS`, in fen, in that order.
    pub totals_fen: [i128; 10],
    pub rows_accepted: u64,
    pub rows_rejected: u64,
}

impl RunControl {
    pub fn dir(&self) -> &Path {
        &self.folder.dir
    }

    fn control_path(&self) -> PathBuf {
        self.folder.dir.join("control.json")
    }

    /// An input error naming this run's control.json.
    pub fn bad(&self, problem: impl Into<String>) -> Error {
        Error::input(self.control_path().display().to_string(), problem)
    }
}

/// Reads `dir/control.json`: start, horizon and settlement files through
/// `statement::read::read_run` (a folder without them is a usage error),
/// and the inputs, `run.through`, the totals and the row counts. A value
/// missing or of the wrong shape is an input error naming its key.
pub fn read_control(dir: &Path) -> Result<RunControl> {
    let folder = read_run(dir)?;
    let path = dir.join("control.json");
    let bytes =
        std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let control: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("{} is not JSON: {e}", path.display())))?;
    let bad = |key: &str, problem: &str| {
        Error::input(path.display().to_string(), format!("{key} {problem}"))
    };
    let digest = |value: &Value, key: &str| -> Result<InputDigest> {
        match (value["path"].as_str(), value["sha256"].as_str()) {
            (Some(path), Some(sha256)) => Ok(InputDigest {
                path: path.to_string(),
                sha256: sha256.to_string(),
            }),
            _ => Err(bad(key, "is missing its path or sha256")),
        }
    };
    let inputs = &control["inputs"];
    let files = inputs["transactions"]
        .as_array()
        .ok_or_else(|| bad("inputs.transactions", "is missing or not a list"))?;
    let mut transactions = Vec::with_capacity(files.len());
    let (mut rows_accepted, mut rows_rejected) = (0u64, 0u64);
    for file in files {
        transactions.push(digest(file, "inputs.transactions")?);
        let count = |key: &str| {
            file[key]
                .as_u64()
                .ok_or_else(|| bad(&format!("inputs.transactions[].{key}"), "is not a count"))
        };
        rows_accepted += count("rows_accepted")?;
        rows_rejected += count("rows_rejected")?;
    }
    let adjustments = match &inputs["adjustments"] {
        Value::Null => None,
        value => Some(digest(value, "inputs.adjustments")?),
    };
    let through = match &control["run"]["through"] {
        Value::Null => None,
        Value::String(text) => Some(
            calendar::parse_date(text.as_bytes())
                .ok_or_else(|| bad("run.through", "is not a date"))?,
        ),
        _ => return Err(bad("run.through", "is neither a date nor null")),
    };
    let mut totals_fen = [0i128; 10];
    for (total, (name, _)) in totals_fen.iter_mut().zip(MONEY_TOTALS) {
        let (key, text) = if name == "receivables" {
            (
                "receivables.total",
                control["receivables"]["total"].as_str(),
            )
        } else {
            (name, control["totals"][name].as_str())
        };
        let text = text.ok_or_else(|| bad(key, "is missing"))?;
        *total = money::parse_amount_fen(text.as_bytes(), true)
            .map(i128::from)
            .map_err(|e| bad(key, &format!("{text:?} {}", e.describe())))?;
    }
    Ok(RunControl {
        folder,
        through,
        config: digest(&inputs["config"], "inputs.config")?,
        merchants: digest(&inputs["merchants"], "inputs.merchants")?,
        transactions,
        adjustments,
        totals_fen,
        rows_accepted,
        rows_rejected,
    })
}

/// Where one run's inputs differ from another's, each as a short phrase;
/// empty when both read the same bytes over the same dates. Files are
/// compared by digest, in order (the order decides which of two equal ids
/// is the duplicate); their paths may differ.
pub fn input_differences(a: &RunControl, b: &RunControl) -> Vec<String> {
    let mut differences = Vec::new();
    let digests = |files: &[InputDigest]| -> Vec<String> {
        files.iter().map(|file| file.sha256.clone()).collect()
    };
    if digests(&a.transactions) != digests(&b.transactions) {
        differences.push(format!(
            "the transactions differ ({} file(s) in A, {} in B, compared by SHA-256 in order)",
            a.transactions.len(),
            b.transactions.len()
        ));
    }
    if a.merchants.sha256 != b.merchants.sha256 {
        differences.push("the merchants differ".to_string());
    }
    match (&a.adjustments, &b.adjustments) {
        (None, None) => {}
        (Some(x), Some(y)) if x.sha256 == y.sha256 => {}
        (Some(_), None) => differences.push("only A has adjustments".to_string()),
        (None, Some(_)) => differences.push("only B has adjustments".to_string()),
        (Some(_), Some(_)) => differences.push("the adjustments differ".to_string()),
    }
    let date = |day: Option<Day>| day.map_or("none".to_string(), calendar::format_date);
    for (key, x, y) in [
        ("run.start", Some(a.folder.start), Some(b.folder.start)),
        (
            "run.horizon",
            Some(a.folder.horizon),
            Some(b.folder.horizon),
        ),
        ("run.through", a.through, b.through),
    ] {
        if x != y {
            differences.push(format!("{key} {} -> {}", date(x), date(y)));
        }
    }
    differences
}

/// One record of a published CSV file, as the cursor found it.
pub enum Rec<'a> {
    /// A line without a quote, its line end left off: its fields are the
    /// bytes between its commas (settle writes no spaces around them).
    Plain(&'a [u8]),
    /// A record with a quote, read by the shared tokenizer into the
    /// cursor's `record`.
    Quoted,
}

/// Walks the records of a file as settle writes it (RFC 4180, minimal
/// quoting, LF line ends): one search per line for its end or a quote, so
/// that the common line is never copied. A record with a quote, which may
/// hold line ends, goes to the shared tokenizer (`ingest::csv`).
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The physical line (1-based) where the record last returned starts.
    pub line: u64,
    next_line: u64,
    /// The fields of the last `Rec::Quoted`.
    pub record: Record,
}

impl<'a> Cursor<'a> {
    /// A cursor at `header_len`, just after the header line.
    pub fn new(buf: &'a [u8], header_len: usize) -> Cursor<'a> {
        Cursor {
            buf,
            pos: header_len,
            line: 1,
            next_line: 2,
            record: Record::default(),
        }
    }

    /// The next record; `None` at the end. `Err` names a quoted field left
    /// open at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Rec<'a>>, String> {
        loop {
            let rest = &self.buf[self.pos..];
            if rest.is_empty() {
                return Ok(None);
            }
            let (line, advance) = match memchr::memchr2(b'\n', b'"', rest) {
                Some(at) if rest[at] == b'\n' => (&rest[..at], at + 1),
                None => (rest, rest.len()),
                Some(_) => return self.quoted().map(Some),
            };
            self.pos += advance;
            self.line = self.next_line;
            self.next_line += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                return Ok(Some(Rec::Plain(line)));
            }
        }
    }

    #[cold]
    fn quoted(&mut self) -> Result<Rec<'a>, String> {
        let mut tokenizer = Tokenizer::new(self.buf, self.pos);
        if !tokenizer.next_record(&mut self.record) {
            return Err("the file ends inside a record".into());
        }
        self.line = self.next_line + self.record.lines_before;
        self.next_line += tokenizer.line_ends();
        self.pos = tokenizer.position();
        if self.record.unterminated {
            return Err(format!(
                "line {}: a quoted field runs to the end of the file",
                self.line
            ));
        }
        Ok(Rec::Quoted)
    }
}

/// Splits a plain line at its commas into `fields`; returns how many fields
/// the line has (more than `N` when it has more, and then only the first
/// `N` are filled).
pub fn split_fields<'a, const N: usize>(line: &'a [u8], fields: &mut [&'a [u8]; N]) -> usize {
    let mut count = 0;
    let mut start = 0;
    for at in memchr::memchr_iter(b',', line) {
        if count < N {
            fields[count] = &line[start..at];
        }
        count += 1;
        start = at + 1;
    }
    if count < N {
        fields[count] = &line[start..];
    }
    count + 1
}

/// The fields of a quoted record, as `split_fields` gives a plain line's.
pub fn record_fields<'r, const N: usize>(record: &'r Record, fields: &mut [&'r [u8]; N]) -> usize {
    for (k, field) in fields.iter_mut().enumerate().take(record.field_count()) {
        *field = record.field(k);
    }
    record.field_count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut cursor = Cursor::new(text, 0);
        let mut out = Vec::new();
        while let Some(rec) = cursor.next_record().unwrap() {
            let mut fields = [&[][..]; 8];
            let count = match rec {
                Rec::Plain(line) => split_fields(line, &mut fields),
                Rec::Quoted => record_fields(&cursor.record, &mut fields),
            };
            let texts = fields[..count.min(8)]
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((cursor.line, texts));
        }
        out
    }

    /// Plain lines, a quoted field with a comma and a line end inside, a
    /// doubled quote, a blank line and a last line without LF: each record
    /// with the physical line it starts on, as the tokenizer would count.
    #[test]
    fn the_cursor_finds_records_and_their_lines() {
        let text = b"a,b,c\n\"x,\ny\",\"q\"\"q\",z\n\nlast,1";
        assert_eq!(
            records(text),
            vec![
                (1, vec!["a".into(), "b".into(), "c".into()]),
                (2, vec!["x,\ny".into(), "q\"q".into(), "z".into()]),
                (5, vec!["last".into(), "1".into()]),
            ]
        );
        let mut open = Cursor::new(b"a\n\"never closed\n", 0);
        assert!(matches!(open.next_record(), Ok(Some(Rec::Plain(b"a")))));
        assert_eq!(
            open.next_record().err(),
            Some("line 2: a quoted field runs to the end of the file".to_string())
        );
    }

    #[test]
    fn split_fields_counts_beyond_its_room() {
        let mut fields = [&[][..]; 2];
        assert_eq!(split_fields(b"a,b,c", &mut fields), 3);
        assert_eq!(fields, [&b"a"[..], &b"b"[..]]);
        assert_eq!(split_fields(b"", &mut fields), 1);
        assert_eq!(fields[0], b"");
    }
}
