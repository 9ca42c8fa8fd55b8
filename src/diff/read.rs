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
use crate::money::{self, AmountError};
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

/// An amount as settle writes it, `-?DIGITS.DD` with at most 12 integer
/// digits, read in one pass (a diff reads tens of millions of them); any
/// other text goes to `money::parse_amount_fen`, which reads every form the
/// engine accepts and names what is wrong with the others, so the result is
/// always the one it would give.
pub fn amount_fen(text: &[u8]) -> Result<i64, AmountError> {
    let (negative, body) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if let [whole @ .., b'.', tenths, hundredths] = body
        && !whole.is_empty()
        && whole.len() <= 12
        && tenths.is_ascii_digit()
        && hundredths.is_ascii_digit()
    {
        let mut digits = true;
        let mut cny = 0i64;
        for &digit in whole {
            digits &= digit.is_ascii_digit();
            // At most 12 bytes of at most 255 each: no overflow even before
            // a non-digit is noticed.
            cny = cny * 10 + i64::from(digit.wrapping_sub(b'0'));
        }
        if digits {
            let fen = cny * money::FEN_PER_CNY
                + i64::from(tenths - b'0') * 10
                + i64::from(hundredths - b'0');
            return Ok(if negative { -fen } else { fen });
        }
    }
    money::parse_amount_fen(text, true)
}

/// The bytes of `word` equal to `byte`, each flagged by its high bit,
/// exactly (no carry between bytes: the high bits are masked off before
/// the addition that finds the non-zero bytes).
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    !(((x & LOW7) + LOW7) | x) & !LOW7
}

/// The positions of the commas, quotes and line feeds of a buffer from a
/// start, found eight bytes at a time: a line's dozen fields cost a few
/// word operations each, where a byte loop or a vectorised search per
/// field cost several times more.
struct Separators<'a> {
    buf: &'a [u8],
    /// Where the word of `flags` starts.
    word_at: usize,
    flags: u64,
}

impl<'a> Separators<'a> {
    fn new(buf: &'a [u8], start: usize) -> Separators<'a> {
        let mut separators = Separators {
            buf,
            word_at: start,
            flags: 0,
        };
        separators.load();
        separators
    }

    /// Flags the separators of the word at `word_at` (zero-padded at the
    /// end of the buffer: a zero byte is no separator).
    fn load(&mut self) {
        let rest = &self.buf[self.word_at.min(self.buf.len())..];
        let word = match rest.first_chunk::<8>() {
            Some(bytes) => u64::from_le_bytes(*bytes),
            None => {
                let mut bytes = [0u8; 8];
                bytes[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(bytes)
            }
        };
        self.flags = bytes_equal(word, b',') | bytes_equal(word, b'"') | bytes_equal(word, b'\n');
    }

    fn next(&mut self) -> Option<usize> {
        while self.flags == 0 {
            self.word_at += 8;
            if self.word_at >= self.buf.len() {
                return None;
            }
            self.load();
        }
        let at = self.word_at + self.flags.trailing_zeros() as usize / 8;
        self.flags &= self.flags - 1;
        Some(at)
    }
}

/// One record of a published CSV file, as the cursor found it.
pub enum Rec<'a> {
    /// A line without a quote, its line end left off. Its fields (the
    /// bytes between its commas: settle writes no spaces around them) are
    /// the cursor's `fields` and `count` until the next record is read.
    Plain(&'a [u8]),
    /// A record with a quote, read by the shared tokenizer into the
    /// cursor's `record`.
    Quoted,
}

/// Walks the records of a file as settle writes it (RFC 4180, minimal
/// quoting, LF line ends) and splits them into fields in the same pass,
/// never copying a line. A record with a quote, which may hold line ends,
/// goes to the shared tokenizer (`ingest::csv`).
pub struct Cursor<'a, const N: usize> {
    buf: &'a [u8],
    separators: Separators<'a>,
    /// Where the next record starts.
    pos: usize,
    /// The physical line (1-based) where the record last returned starts.
    pub line: u64,
    next_line: u64,
    /// The first `N` fields of the last `Rec::Plain` (kept here, not
    /// returned, so that they are written once and never moved).
    pub fields: [&'a [u8]; N],
    /// How many fields the last `Rec::Plain` has (more than `N` when it
    /// has more).
    pub count: usize,
    /// The fields of the last `Rec::Quoted`.
    pub record: Record,
}

impl<'a, const N: usize> Cursor<'a, N> {
    /// A cursor at `header_len`, just after the header line (0: the file
    /// has no header).
    pub fn new(buf: &'a [u8], header_len: usize) -> Cursor<'a, N> {
        let first_line = if header_len == 0 { 1 } else { 2 };
        Cursor {
            buf,
            separators: Separators::new(buf, header_len),
            pos: header_len,
            line: first_line - 1,
            next_line: first_line,
            fields: [&[][..]; N],
            count: 0,
            record: Record::default(),
        }
    }

    /// The next record; `None` at the end. `Err` names a quoted field left
    /// open at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Rec<'a>>, String> {
        let mut count = 0;
        let mut field_start = self.pos;
        loop {
            let start = self.pos;
            if start >= self.buf.len() {
                return Ok(None);
            }
            let end = loop {
                let Some(at) = self.separators.next() else {
                    break self.buf.len();
                };
                match self.buf[at] {
                    b',' => {
                        if count < N {
                            self.fields[count] = &self.buf[field_start..at];
                        }
                        count += 1;
                        field_start = at + 1;
                    }
                    b'\n' => break at,
                    _ => return self.quoted(start).map(Some),
                }
            };
            self.pos = (end + 1).min(self.buf.len());
            self.line = self.next_line;
            self.next_line += 1;
            let raw = &self.buf[start..end];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                field_start = self.pos;
                continue;
            }
            if count < N {
                self.fields[count] = &self.buf[field_start..start + raw.len()];
            }
            self.count = count + 1;
            return Ok(Some(Rec::Plain(raw)));
        }
    }

    #[cold]
    fn quoted(&mut self, start: usize) -> Result<Rec<'a>, String> {
        let mut tokenizer = Tokenizer::new(self.buf, start);
        if !tokenizer.next_record(&mut self.record) {
            return Err("the file ends inside a record".into());
        }
        self.line = self.next_line + self.record.lines_before;
        self.next_line += tokenizer.line_ends();
        self.pos = tokenizer.position();
        self.separators = Separators::new(self.buf, self.pos);
        if self.record.unterminated {
            return Err(format!(
                "line {}: a quoted field runs to the end of the file",
                self.line
            ));
        }
        Ok(Rec::Quoted)
    }
}

/// The fields of a quoted record, as `Rec::Plain` gives a line's: the
/// first `N` and how many there are.
pub fn record_fields<const N: usize>(record: &Record) -> ([&[u8]; N], usize) {
    let mut fields = [&[][..]; N];
    for (k, field) in fields.iter_mut().enumerate().take(record.field_count()) {
        *field = record.field(k);
    }
    (fields, record.field_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut cursor = Cursor::<'_, 8>::new(text, 0);
        let mut out = Vec::new();
        while let Some(rec) = cursor.next_record().unwrap() {
            let (fields, count) = match rec {
                Rec::Plain(_) => (cursor.fields, cursor.count),
                Rec::Quoted => record_fields::<8>(&cursor.record),
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
        let mut open = Cursor::<'_, 2>::new(b"a\n\"never closed\n", 0);
        assert!(matches!(open.next_record(), Ok(Some(Rec::Plain(b"a")))));
        assert_eq!(
            open.next_record().err(),
            Some("line 2: a quoted field runs to the end of the file".to_string())
        );
    }

    /// The one-pass reader gives what the money module gives, for the
    /// published form and for every other text (which it hands over).
    #[test]
    fn amounts_read_as_the_money_module_reads_them() {
        let texts = [
            "0.00",
            "-0.00",
            "12.30",
            "-12.30",
            "999999999999.99",
            "-999999999999.99",
            "1000000000000.00",
            "0012.34",
            "1.5",
            "7",
            "-7",
            "1.234",
            "",
            "-",
            ".50",
            "1.",
            "1a.00",
            "a1.00",
            "+1.00",
            "--1.00",
            "1.0a",
            " 1.00",
            "1.00 ",
        ];
        for text in texts {
            assert_eq!(
                amount_fen(text.as_bytes()),
                money::parse_amount_fen(text.as_bytes(), true),
                "{text:?}"
            );
        }
        assert_eq!(amount_fen(b"-12.30"), Ok(-1230));
    }

    /// Lines longer and shorter than a word, separators on every byte of
    /// a word and at the end of the buffer, and bytes that differ from a
    /// separator by one bit: the same positions as a plain search.
    #[test]
    fn separators_are_found_exactly() {
        let texts: [&[u8]; 5] = [
            b"",
            b",",
            b"a,b\nc\"d,,,,,,,,,\n",
            b"\x2d\x2e\x2b\x0b\x0a\x23\x21\x22\xac\xa2\x8a,x",
            b"2026-11-02,M00000001,1,purchase,527.39,general,debit,0.0038,,5,,5 debit card purchases\n",
        ];
        for text in texts {
            for start in 0..=text.len() {
                let mut separators = Separators::new(text, start);
                let mut found = Vec::new();
                while let Some(at) = separators.next() {
                    found.push(at);
                }
                let want: Vec<usize> = (start..text.len())
                    .filter(|&at| matches!(text[at], b',' | b'"' | b'\n'))
                    .collect();
                assert_eq!(found, want, "{text:?} from {start}");
            }
        }
    }

    /// More fields than room: counted, the first `N` kept.
    #[test]
    fn a_line_with_more_fields_than_room_is_counted() {
        let mut cursor = Cursor::<'_, 2>::new(b"a,b,c\r\n", 0);
        match cursor.next_record() {
            Ok(Some(Rec::Plain(raw))) => {
                let (fields, count) = (cursor.fields, cursor.count);
                assert_eq!((raw, fields, count), (&b"a,b,c"[..], [&b"a"[..], b"b"], 3));
            }
            _ => panic!("a plain line"),
        }
        assert!(matches!(cursor.next_record(), Ok(None)));
    }
}
