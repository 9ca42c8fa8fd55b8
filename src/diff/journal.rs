//! One journal file (docs/JOURNAL.md) summed by (category, card): its
//! `purchase` postings (amount and count) and its fee postings (`fee` and
//! `fee_returned`, which together make the settlement rows' `fees`).
//!
//! It reads the kind of every line and parses only those three kinds; the
//! other lines are skipped after their fourth field. Grouped and
//! per-transaction (`--detail`) journals sum alike. It must not check the
//! journal against anything (the caller compares the sums with the
//! settlement file) and never writes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::journal::{self, JOURNAL_FIELDS, JOURNAL_HEADER, PostingKind};
use crate::money;

use super::read::{Cursor, Rec, record_fields, split_fields};

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

/// Sums one journal file by (category, card), in the order the pairs
/// first appear. An empty `bytes` is a journal without postings.
pub fn read_categories(path: &Path, bytes: &[u8]) -> Result<Vec<CategorySums>> {
    let name = || path.display().to_string();
    let header = JOURNAL_HEADER.as_bytes();
    if !bytes.is_empty() && !bytes.starts_with(header) {
        return Err(Error::input(name(), "the header is not the journal header"));
    }
    let bad = |line: u64, problem: &str| Error::input(name(), format!("line {line}: {problem}"));
    let mut sums: Vec<CategorySums> = Vec::new();
    let mut last = 0;
    let mut cursor = Cursor::new(bytes, header.len().min(bytes.len()));
    loop {
        let rec = cursor
            .next_record()
            .map_err(|problem| Error::input(name(), problem))?;
        let mut fields = [&[][..]; JOURNAL_FIELDS];
        let (kind, amount_fen, count) = match rec {
            None => break,
            Some(Rec::Plain(line)) => {
                // Only the first four fields, up to the kind, are looked at
                // on the lines that are skipped.
                let mut head = [&[][..]; 4];
                split_head(line, &mut head);
                let Some(kind) = wanted(head[3]) else {
                    continue;
                };
                let field_count = split_fields(line, &mut fields);
                if field_count != JOURNAL_FIELDS {
                    return Err(bad(
                        cursor.line,
                        &format!("{field_count} fields, not {JOURNAL_FIELDS}"),
                    ));
                }
                let amount = money::parse_amount_fen(fields[4], true)
                    .map_err(|e| bad(cursor.line, &format!("amount {}", e.describe())))?;
                let count = std::str::from_utf8(fields[9])
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or_else(|| bad(cursor.line, "count is not a count"))?;
                (kind, amount, count)
            }
            Some(Rec::Quoted) => {
                let line = journal::read_line(&cursor.record)
                    .map_err(|problem| bad(cursor.line, &problem))?;
                let kind = match line.kind {
                    PostingKind::Purchase => Wanted::Purchase,
                    PostingKind::Fee | PostingKind::FeeReturned => Wanted::Fee,
                    _ => continue,
                };
                record_fields(&cursor.record, &mut fields);
                (kind, line.amount_fen, line.count.unwrap_or(0))
            }
        };
        let (category, card) = (fields[5], fields[6]);
        let at = if sums
            .get(last)
            .is_some_and(|s| s.category.as_bytes() == category && s.card.as_bytes() == card)
        {
            last
        } else if let Some(at) = sums
            .iter()
            .position(|s| s.category.as_bytes() == category && s.card.as_bytes() == card)
        {
            at
        } else {
            if sums.len() == CATEGORY_CARDS_MAX {
                return Err(bad(
                    cursor.line,
                    &format!("more than {CATEGORY_CARDS_MAX} (category, card) pairs"),
                ));
            }
            sums.push(CategorySums {
                category: String::from_utf8_lossy(category).into_owned(),
                card: String::from_utf8_lossy(card).into_owned(),
                ..CategorySums::default()
            });
            sums.len() - 1
        };
        last = at;
        let entry = &mut sums[at];
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

/// The first `N` fields of a line (empty past its last field), without
/// looking further into it than the `N`th comma.
fn split_head<'a, const N: usize>(line: &'a [u8], head: &mut [&'a [u8]; N]) {
    let mut rest = Some(line);
    for field in head.iter_mut() {
        *field = match rest {
            None => &[],
            Some(text) => match text.iter().position(|&b| b == b',') {
                Some(at) => {
                    rest = Some(&text[at + 1..]);
                    &text[..at]
                }
                None => {
                    rest = None;
                    text
                }
            },
        };
    }
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
            "2026-11-02,M1,1,payout,not an amount at all",
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
    }

    #[test]
    fn split_head_stops_at_the_fields_it_needs() {
        let mut head = [&[][..]; 4];
        split_head(b"d,m,1,fee,-1.00,x", &mut head);
        assert_eq!(head, [&b"d"[..], b"m", b"1", b"fee"]);
        split_head(b"d,m", &mut head);
        assert_eq!(head, [&b"d"[..], b"m", b"", b""]);
    }
}
