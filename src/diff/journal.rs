//! One journal file (docs/JOURNAL.md) summed by (category, card): its
//! `purchase` postings (amount and count) and its fee postings (`fee` and
//! `fee_returned`, which together make the settlement rows' `fees`).
//!
//! Every line is split (by the shared cursor, no copy) and only those
//! three kinds are parsed; the others are skipped. Grouped and
//! per-transaction (`--detail`) journals sum alike. It must not check the
//! journal against anything (the caller compares the sums with the
//! settlement file) and never writes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::journal::{self, JOURNAL_FIELDS, JOURNAL_HEADER, PostingKind};

use super::read::{Cursor, Rec, amount_fen};

/// Distinct (category, card) pairs one journal may hold: a category table
/// has at most `CATEGORIES_MAX` categories, each with two cards, and a
/// journal holding more is not one settle wrote.
const CATEGORY_CARDS_MAX: usize = 2 * crate::config::limits::CATEGORIES_MAX;

/// One (category, card) of one journal, or of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CategorySums {
    pub category: String,
    pub card: String,
    /// Σ `count` of the `purchase` postings: purchases not voided.
    pub purchases_count: u64,
    /// Σ `amount` of the `purchase` postings.
    pub purchases_fen: i128,
    /// − Σ `amount` of the `fee` and `fee_returned` postings: the fees as
    /// the settlement column counts them.
    pub fees_fen: i128,
}

/// The kinds a category breakdown reads.
#[derive(Clone, Copy)]
enum Wanted {
    Purchase,
    Fee,
}

fn wanted(kind: &[u8]) -> Option<Wanted> {
    match kind {
        b"purchase" => Some(Wanted::Purchase),
        b"fee" | b"fee_returned" => Some(Wanted::Fee),
        _ => None,
    }
}

/// Finds the (category, card) entry of `sums`, trying the last one found
/// first (a merchant's fee follows its purchase), or adds it; `None` when
/// there is no room for another.
fn entry<'s>(
    sums: &'s mut Vec<CategorySums>,
    last: &mut usize,
    category: &[u8],
    card: &[u8],
) -> Option<&'s mut CategorySums> {
    let is = |s: &CategorySums| s.category.as_bytes() == category && s.card.as_bytes() == card;
    if !sums.get(*last).is_some_and(is) {
        match sums.iter().position(is) {
            Some(at) => *last = at,
            None if sums.len() == CATEGORY_CARDS_MAX => return None,
            None => {
                sums.push(CategorySums {
                    category: String::from_utf8_lossy(category).into_owned(),
                    card: String::from_utf8_lossy(card).into_owned(),
                    ..CategorySums::default()
                });
                *last = sums.len() - 1;
            }
        }
    }
    sums.get_mut(*last)
}

/// Sums one journal file by (category, card), in the order the pairs
/// first appear. An empty `bytes` is a journal without postings.
///
/// A plain line's fields after `count` are split but not read (a line
/// with more than 12 fields is not refused): the caller checks the sums
/// against the settlement file, which a misread line would not match.
pub fn read_categories(path: &Path, bytes: &[u8]) -> Result<Vec<CategorySums>> {
    let name = || path.display().to_string();
    let header = JOURNAL_HEADER.as_bytes();
    if !bytes.is_empty() && !bytes.starts_with(header) {
        return Err(Error::input(name(), "the header is not the journal header"));
    }
    let bad = |line: u64, problem: &str| Error::input(name(), format!("line {line}: {problem}"));
    let mut sums: Vec<CategorySums> = Vec::new();
    let mut last = 0;
    // The fields up to `count`: the ones after it are never needed.
    let mut cursor = Cursor::<'_, 10>::new(bytes, header.len().min(bytes.len()));
    loop {
        let rec = cursor
            .next_record()
            .map_err(|problem| Error::input(name(), problem))?;
        let line = cursor.line;
        let (kind, amount_fen, count, category, card) = match rec {
            None => break,
            Some(Rec::Plain(_)) => {
                let (fields, count) = (&cursor.fields, cursor.count);
                if count < JOURNAL_FIELDS {
                    return Err(bad(line, &format!("{count} fields, not {JOURNAL_FIELDS}")));
                }
                let Some(kind) = wanted(fields[3]) else {
                    continue;
                };
                let amount = amount_fen(fields[4])
                    .map_err(|e| bad(line, &format!("amount {}", e.describe())))?;
                let count = std::str::from_utf8(fields[9])
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or_else(|| bad(line, "count is not a count"))?;
                (kind, amount, count, fields[5], fields[6])
            }
            Some(Rec::Quoted) => {
                let record = &cursor.record;
                let posting = journal::read_line(record).map_err(|problem| bad(line, &problem))?;
                let kind = match posting.kind {
                    PostingKind::Purchase => Wanted::Purchase,
                    PostingKind::Fee | PostingKind::FeeReturned => Wanted::Fee,
                    _ => continue,
                };
                let count = posting.count.unwrap_or(0);
                (
                    kind,
                    posting.amount_fen,
                    count,
                    record.field(5),
                    record.field(6),
                )
            }
        };
        let Some(entry) = entry(&mut sums, &mut last, category, card) else {
            return Err(bad(
                line,
                &format!("more than {CATEGORY_CARDS_MAX} (category, card) pairs"),
            ));
        };
        match kind {
            Wanted::Purchase => {
                entry.purchases_fen += i128::from(amount_fen);
                entry.purchases_count += count;
            }
            Wanted::Fee => entry.fees_fen -= i128::from(amount_fen),
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(lines: &[&str]) -> Vec<u8> {
        let mut text = JOURNAL_HEADER.to_string();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text.into_bytes()
    }

    /// A grouped row (two purchase groups, a capped fee group, a refund
    /// returning part of its fee), a quoted adjustment line that must be
    /// skipped, and a per-transaction fee line whose source is quoted.
    #[test]
    fn purchases_and_fees_are_summed_by_category_and_card() {
        let bytes = journal(&[
            "2026-11-02,M1,1,purchase,1200.00,dining,credit,0.0049,,2,,2 purchases",
            "2026-11-02,M1,2,fee,-5.88,dining,credit,0.0049,no,2,,fee",
            "2026-11-02,M1,3,purchase,6000.00,dining,debit,0.0049,,1,,1 purchase",
            "2026-11-02,M1,4,fee,-20.00,dining,debit,0.0049,yes,1,,capped",
            "2026-11-02,M1,5,refund,-100.00,dining,credit,0.0049,,1,,1 refund",
            "2026-11-02,M1,6,fee_returned,0.49,dining,credit,0.0049,,1,,returned",
            "2026-11-02,M1,7,adjustment,5.00,,,,,,adj_id=A1,\"a reason, with a comma\nand a line\"",
            "2026-11-02,M1,8,payout,-1079.61,,,,,,,paid",
            "2026-11-02,M2,1,purchase,10.00,dining,credit,0.0049,,1,txn_id=T1,1 purchase",
            "2026-11-02,M2,2,fee,-0.05,dining,credit,0.0049,no,1,\"txn_id=T,1\",fee",
        ]);
        let sums = read_categories(Path::new("j.csv"), &bytes).unwrap();
        assert_eq!(
            sums,
            vec![
                CategorySums {
                    category: "dining".into(),
                    card: "credit".into(),
                    purchases_count: 3,
                    purchases_fen: 121_000,
                    // 5.88 − 0.49 + 0.05
                    fees_fen: 544,
                },
                CategorySums {
                    category: "dining".into(),
                    card: "debit".into(),
                    purchases_count: 1,
                    purchases_fen: 600_000,
                    fees_fen: 2_000,
                },
            ]
        );
    }

    #[test]
    fn a_bad_fee_line_is_named_and_other_lines_are_not_read() {
        let bytes = journal(&[
            "2026-11-02,M1,1,payout,not an amount,,,,,,,paid",
            "2026-11-02,M1,2,fee,-0.001,dining,credit,0.0049,no,1,,fee",
        ]);
        let error = read_categories(Path::new("j.csv"), &bytes).err().unwrap();
        assert_eq!(
            error.to_string(),
            "j.csv: line 3: amount has more than 2 fractional digits"
        );
        let short = journal(&["2026-11-02,M1,1,fee,-0.01"]);
        let error = read_categories(Path::new("j.csv"), &short).err().unwrap();
        assert_eq!(error.to_string(), "j.csv: line 2: 5 fields, not 12");
        let quoted = journal(&["2026-11-02,M1,1,\"fee\",-0.01"]);
        let error = read_categories(Path::new("j.csv"), &quoted).err().unwrap();
        assert_eq!(error.to_string(), "j.csv: line 2: 5 fields, not 12");
    }
}
