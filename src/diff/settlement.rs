//! The settlement files of one date in two runs, read side by side: a
//! merge-join of both files (each sorted by `merchant_id` bytewise, as
//! settle writes them) into the date's totals and one entry per merchant;
//! and the merge of those entries across dates into each merchant's sums.
//!
//! It owns the parsing of settlement lines for `settle diff` and the
//! merchant accumulators. It must not rank, render or decide what changed.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::path::Path;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ledger::AMOUNT_COLUMNS;
use crate::output::csv::SETTLEMENT_HEADER;

use super::Sums;
use super::read::{Cursor, Rec, amount_fen, record_fields};

/// Fields of a settlement line: date, merchant, txn_count, 12 amounts.
const SETTLEMENT_FIELDS: usize = 3 + AMOUNT_COLUMNS.len();

/// One merchant's figures in one run: its settlement rows summed in `i64`
/// fen (a row's amounts are below 10^14 fen, so 90,000 rows of them fit;
/// a sum that would not is refused, never wrapped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Acc {
    pub rows: u32,
    pub txn_count: u64,
    pub amounts: [i64; 12],
}

impl Acc {
    /// Adds `other`; `None` when a sum leaves 64 bits.
    fn add(&mut self, other: &Acc) -> Option<()> {
        self.rows = self.rows.checked_add(other.rows)?;
        self.txn_count = self.txn_count.checked_add(other.txn_count)?;
        for (sum, amount) in self.amounts.iter_mut().zip(other.amounts) {
            *sum = sum.checked_add(amount)?;
        }
        Some(())
    }

    pub fn widen(&self) -> Sums {
        Sums {
            rows: u64::from(self.rows),
            txn_count: self.txn_count,
            amounts: self.amounts.map(i128::from),
        }
    }
}

/// One merchant in both runs: an id borrowed from the mapped file (owned
/// only when the file quoted it), and its figures in A and B (zero where
/// it has no row).
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub id: Cow<'a, [u8]>,
    pub a: Acc,
    pub b: Acc,
}

/// One settlement date of both runs.
pub struct DayPair<'a> {
    pub date: Day,
    pub a: Sums,
    pub b: Sums,
    /// Every merchant with a row in either file, by id.
    pub merchants: Vec<Entry<'a>>,
}

/// A settlement file: its name for messages and its bytes (empty when the
/// run has no file of that date).
pub struct File<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
}

/// A settlement line's merchant, and the raw line when it had no quote
/// (to spot lines equal in both runs before parsing their figures). It is
/// small, because it moves; its fields stay in `Lines`.
struct Head<'a> {
    id: Cow<'a, [u8]>,
    line: u64,
    raw: Option<&'a [u8]>,
}

/// Reads one settlement file's lines in order, checking the order. The
/// fields of the line last read (the current `Head`) stay in the cursor
/// until the next one is read.
struct Lines<'a> {
    path: &'a Path,
    date_text: String,
    cursor: Cursor<'a, SETTLEMENT_FIELDS>,
    previous: Option<Cow<'a, [u8]>>,
    /// The figures of the last line when it was quoted, parsed as it was
    /// read.
    parsed: Option<Acc>,
}

impl<'a> Lines<'a> {
    fn new(file: &File<'a>, date: Day) -> Result<Lines<'a>> {
        let header = SETTLEMENT_HEADER.as_bytes();
        if !file.bytes.is_empty() && !file.bytes.starts_with(header) {
            return Err(Error::input(
                file.path.display().to_string(),
                "the header is not the settlement header",
            ));
        }
        Ok(Lines {
            path: file.path,
            date_text: calendar::format_date(date),
            cursor: Cursor::new(file.bytes, header.len().min(file.bytes.len())),
            previous: None,
            parsed: None,
        })
    }

    fn bad(&self, line: u64, problem: impl std::fmt::Display) -> Error {
        Error::input(
            self.path.display().to_string(),
            format!("line {line}: {problem}"),
        )
    }

    fn next(&mut self) -> Result<Option<Head<'a>>> {
        let rec = self
            .cursor
            .next_record()
            .map_err(|problem| Error::input(self.path.display().to_string(), problem))?;
        let line = self.cursor.line;
        let head = match rec {
            None => return Ok(None),
            Some(Rec::Plain(raw)) => {
                self.parsed = None;
                Head {
                    id: Cow::Borrowed(self.cursor.fields[1]),
                    line,
                    raw: Some(raw),
                }
            }
            Some(Rec::Quoted) => {
                let (fields, count) = record_fields(&self.cursor.record);
                self.parsed = Some(self.parse(line, &fields, count)?);
                Head {
                    id: Cow::Owned(fields[1].to_vec()),
                    line,
                    raw: None,
                }
            }
        };
        if let Some(previous) = &self.previous
            && previous.as_ref() >= head.id.as_ref()
        {
            return Err(self.bad(
                line,
                format!(
                    "merchant_id {:?} does not follow {:?}: the file is not sorted by merchant_id",
                    String::from_utf8_lossy(&head.id),
                    String::from_utf8_lossy(previous)
                ),
            ));
        }
        self.previous = Some(head.id.clone());
        Ok(Some(head))
    }

    /// The figures of the line last read, whose head is `head`.
    fn figures(&self, head: &Head<'a>) -> Result<Acc> {
        match self.parsed {
            Some(parsed) => Ok(parsed),
            None => self.parse(head.line, &self.cursor.fields, self.cursor.count),
        }
    }

    fn parse(&self, line: u64, fields: &[&[u8]; SETTLEMENT_FIELDS], count: usize) -> Result<Acc> {
        if count != SETTLEMENT_FIELDS {
            return Err(self.bad(line, format!("{count} fields, not {SETTLEMENT_FIELDS}")));
        }
        if fields[0] != self.date_text.as_bytes() {
            return Err(self.bad(
                line,
                format!(
                    "settlement_date {:?} is not the file's date {}",
                    String::from_utf8_lossy(fields[0]),
                    self.date_text
                ),
            ));
        }
        let txn_count = std::str::from_utf8(fields[2])
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| self.bad(line, "txn_count is not a count"))?;
        let mut amounts = [0i64; 12];
        for (k, amount) in amounts.iter_mut().enumerate() {
            *amount = amount_fen(fields[3 + k])
                .map_err(|e| self.bad(line, format!("{} {}", AMOUNT_COLUMNS[k], e.describe())))?;
        }
        Ok(Acc {
            rows: 1,
            txn_count,
            amounts,
        })
    }
}

/// Merge-joins the settlement files of `date` in A and B.
pub fn read_pair<'a>(date: Day, a: &File<'a>, b: &File<'a>) -> Result<DayPair<'a>> {
    let mut lines_a = Lines::new(a, date)?;
    let mut lines_b = Lines::new(b, date)?;
    // A settlement line is 80 to 100 bytes: room for about every merchant
    // of the larger file, so that the vector seldom moves its entries.
    let mut merchants = Vec::with_capacity(a.bytes.len().max(b.bytes.len()) / 80 + 1);
    let (mut sums_a, mut sums_b) = (Sums::default(), Sums::default());
    let mut head_a = lines_a.next()?;
    let mut head_b = lines_b.next()?;
    loop {
        let order = match (&head_a, &head_b) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.id.as_ref().cmp(y.id.as_ref()),
        };
        let entry = match order {
            Ordering::Equal => {
                let (x, y) = (head_a.take(), head_b.take());
                let (x, y) = (x.expect("a line of A"), y.expect("a line of B"));
                // Most merchants of a what-if are untouched: their lines are
                // equal byte for byte and are parsed once.
                let acc_a = lines_a.figures(&x)?;
                let acc_b = match (x.raw, y.raw) {
                    (Some(raw_a), Some(raw_b)) if raw_a == raw_b => acc_a,
                    _ => lines_b.figures(&y)?,
                };
                head_a = lines_a.next()?;
                head_b = lines_b.next()?;
                Entry {
                    id: x.id,
                    a: acc_a,
                    b: acc_b,
                }
            }
            Ordering::Less => {
                let x = head_a.take().expect("a line of A");
                let acc = lines_a.figures(&x)?;
                head_a = lines_a.next()?;
                Entry {
                    id: x.id,
                    a: acc,
                    b: Acc::default(),
                }
            }
            Ordering::Greater => {
                let y = head_b.take().expect("a line of B");
                let acc = lines_b.figures(&y)?;
                head_b = lines_b.next()?;
                Entry {
                    id: y.id,
                    a: Acc::default(),
                    b: acc,
                }
            }
        };
        sums_a.add(&entry.a);
        sums_b.add(&entry.b);
        merchants.push(entry);
    }
    Ok(DayPair {
        date,
        a: sums_a,
        b: sums_b,
        merchants,
    })
}

/// A merchant whose sums leave 64 bits, for the caller to name.
#[derive(Debug)]
pub struct Overflow(pub String);

/// Adds `day` (sorted by id) into `merchants` (sorted by id), keeping the
/// order. In place when every merchant of the day is already there (the
/// usual case after the first dates); else by one merge into a new vector.
pub fn merge<'a>(merchants: &mut Vec<Entry<'a>>, day: Vec<Entry<'a>>) -> Result<(), Overflow> {
    if merchants.is_empty() {
        *merchants = day;
        return Ok(());
    }
    let add = |into: &mut Entry<'a>, from: &Entry<'a>| -> Result<(), Overflow> {
        match (into.a.add(&from.a), into.b.add(&from.b)) {
            (Some(()), Some(())) => Ok(()),
            _ => Err(Overflow(String::from_utf8_lossy(&from.id).into_owned())),
        }
    };
    let mut at = 0;
    let all_present = day.iter().all(|entry| {
        while at < merchants.len() && merchants[at].id < entry.id {
            at += 1;
        }
        at < merchants.len() && merchants[at].id == entry.id
    });
    if all_present {
        let mut at = 0;
        for entry in &day {
            while merchants[at].id < entry.id {
                at += 1;
            }
            add(&mut merchants[at], entry)?;
        }
        return Ok(());
    }
    let old = std::mem::take(merchants);
    let mut merged = Vec::with_capacity(old.len() + day.len());
    let mut old = old.into_iter().peekable();
    let mut day = day.into_iter().peekable();
    loop {
        let order = match (old.peek(), day.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.id.cmp(&y.id),
        };
        match order {
            Ordering::Less => merged.extend(old.next()),
            Ordering::Greater => merged.extend(day.next()),
            Ordering::Equal => {
                let mut entry = old.next().expect("peeked");
                add(&mut entry, &day.next().expect("peeked"))?;
                merged.push(entry);
            }
        }
    }
    *merchants = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rows: &[&str]) -> Vec<u8> {
        let mut text = SETTLEMENT_HEADER.to_string();
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        text.into_bytes()
    }

    const DAY: &str = "2026-11-02";

    fn day() -> Day {
        calendar::parse_date(DAY.as_bytes()).unwrap()
    }

    /// M1 equal in both, M2 only in A, "M,3" (quoted, and first: a comma
    /// sorts before the digits) with a fee changed
    /// from 0.49 to 0.45 (payout up 0.04), M4 only in B: the date's sums
    /// and one entry per merchant, by id.
    #[test]
    fn both_files_are_joined_by_merchant() {
        let a = file(&[
            "2026-11-02,\"M,3\",1,100.00,0.00,0.49,0.00,0.00,99.51,0.00,0.00,0.00,0.00,99.51,0.00",
            "2026-11-02,M1,1,100.00,0.00,0.38,0.00,0.00,99.62,0.00,0.00,0.00,0.00,99.62,0.00",
            "2026-11-02,M2,2,50.00,0.00,0.19,0.00,0.00,49.81,0.00,0.00,0.00,0.00,49.81,0.00",
        ]);
        let b = file(&[
            "2026-11-02,\"M,3\",1,100.00,0.00,0.45,0.00,0.00,99.55,0.00,0.00,0.00,0.00,99.55,0.00",
            "2026-11-02,M1,1,100.00,0.00,0.38,0.00,0.00,99.62,0.00,0.00,0.00,0.00,99.62,0.00",
            "2026-11-02,M4,1,10.00,0.00,0.04,0.00,0.00,9.96,0.00,0.00,0.00,0.00,9.96,0.00",
        ]);
        let path = Path::new("x.csv");
        let pair = read_pair(day(), &File { path, bytes: &a }, &File { path, bytes: &b }).unwrap();
        let ids: Vec<&[u8]> = pair.merchants.iter().map(|e| e.id.as_ref()).collect();
        assert_eq!(ids, vec![&b"M,3"[..], b"M1", b"M2", b"M4"]);
        let fees = |acc: &Acc| acc.amounts[2];
        let payout = |acc: &Acc| acc.amounts[10];
        assert_eq!(
            (fees(&pair.merchants[0].a), fees(&pair.merchants[0].b)),
            (49, 45)
        );
        assert_eq!(pair.merchants[1].a, pair.merchants[1].b);
        assert_eq!((pair.merchants[2].a.rows, pair.merchants[2].b.rows), (1, 0));
        assert_eq!((pair.merchants[3].a.rows, pair.merchants[3].b.rows), (0, 1));
        // A: 0.38 + 0.19 + 0.49 = 1.06; B: 0.38 + 0.45 + 0.04 = 0.87.
        assert_eq!((pair.a.amounts[2], pair.b.amounts[2]), (106, 87));
        assert_eq!((pair.a.rows, pair.b.rows, pair.a.txn_count), (3, 3, 4));
        assert_eq!(
            payout(&pair.merchants[0].b) - payout(&pair.merchants[0].a),
            4
        );
    }

    #[test]
    fn an_unsorted_file_or_a_bad_figure_is_named_by_line() {
        let path = Path::new("s.csv");
        let unsorted = file(&[
            "2026-11-02,M2,1,1.00,0.00,0.00,0.00,0.00,1.00,0.00,0.00,0.00,0.00,1.00,0.00",
            "2026-11-02,M1,1,1.00,0.00,0.00,0.00,0.00,1.00,0.00,0.00,0.00,0.00,1.00,0.00",
        ]);
        let empty = File { path, bytes: &[] };
        let error = read_pair(
            day(),
            &File {
                path,
                bytes: &unsorted,
            },
            &empty,
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "s.csv: line 3: merchant_id \"M1\" does not follow \"M2\": the file is not sorted by merchant_id"
        );
        let bad =
            file(&["2026-11-02,M1,1,1.00,0.00,0.001,0.00,0.00,1.00,0.00,0.00,0.00,0.00,1.00,0.00"]);
        let error = read_pair(day(), &empty, &File { path, bytes: &bad })
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "s.csv: line 2: fees has more than 2 fractional digits"
        );
        let other_day =
            file(&["2026-11-03,M1,1,1.00,0.00,0.00,0.00,0.00,1.00,0.00,0.00,0.00,0.00,1.00,0.00"]);
        let error = read_pair(
            day(),
            &File {
                path,
                bytes: &other_day,
            },
            &empty,
        )
        .err()
        .unwrap();
        assert!(
            error
                .to_string()
                .contains("is not the file's date 2026-11-02"),
            "{error}"
        );
    }

    fn entry(id: &'static str, fee_a: i64, fee_b: i64) -> Entry<'static> {
        let acc = |fee| Acc {
            rows: 1,
            txn_count: 1,
            amounts: [0, 0, fee, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        Entry {
            id: Cow::Borrowed(id.as_bytes()),
            a: acc(fee_a),
            b: acc(fee_b),
        }
    }

    /// In place (every id present) and by merging (a new id): the same
    /// sums, in id order.
    #[test]
    fn days_merge_into_merchant_sums() {
        let mut merchants = Vec::new();
        merge(&mut merchants, vec![entry("M1", 1, 2), entry("M3", 3, 4)]).unwrap();
        merge(&mut merchants, vec![entry("M3", 10, 20)]).unwrap();
        merge(&mut merchants, vec![entry("M2", 5, 5), entry("M3", 1, 1)]).unwrap();
        let got: Vec<(&[u8], u32, i64, i64)> = merchants
            .iter()
            .map(|e| (e.id.as_ref(), e.a.rows, e.a.amounts[2], e.b.amounts[2]))
            .collect();
        assert_eq!(
            got,
            vec![(&b"M1"[..], 1, 1, 2), (b"M2", 1, 5, 5), (b"M3", 3, 14, 25)]
        );
        let mut full = vec![entry("M1", i64::MAX, 0)];
        let overflow = merge(&mut full, vec![entry("M1", 1, 0)]).err().unwrap();
        assert_eq!(overflow.0, "M1");
    }
}
