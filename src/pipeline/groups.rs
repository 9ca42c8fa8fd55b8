//! The accepted transactions of a run summed per (merchant, business date,
//! posting group): the figures behind the journal's purchase, fee, void and
//! refund postings (docs/JOURNAL.md), which `aggregate` rolls up into each
//! settlement row's totals.
//!
//! This module only groups what linking decided (fees, voids, categories);
//! it must not decide a rule.

use rayon::prelude::*;

use super::{Linked, Parsed};
use crate::calendar::Day;
use crate::ingest::txn::{Card, Kind};
use crate::split;

/// Rows of one grouping chunk; chunks run in parallel.
const GROUP_CHUNK_ROWS_MAX: usize = 1 << 20;
/// Open groups a chunk keeps at once (16 MiB of them): with more
/// (merchant, group) pairs, two share a slot and close each other's group,
/// which costs more groups to merge but never a wrong sum.
const OPEN_GROUPS_MAX: usize = 1 << 19;
/// Rows a group takes before it is closed: 2^16 amounts below 2^47 fen sum
/// to less than 2^63.
const GROUP_ROWS_MAX: u32 = 1 << 16;
const _: () = assert!(crate::money::AMOUNT_FEN_LIMIT <= 1 << 47);

/// What a group of rows is, in posting order: non-voided purchases (and
/// their fees), voided purchases with their voids, refunds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Purchase,
    Voided,
    Refund,
}

/// A posting group's key inside one merchant's business date, packed so
/// that its order is the journal's posting order: class, category index,
/// card (debit, credit, none), then uncapped before capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u32);

impl Slot {
    pub fn new(class: Class, category: u16, card: Card, capped: bool) -> Slot {
        let card_bits = match card {
            Card::Debit => 0,
            Card::Credit => 1,
            Card::NotApplicable => 2,
        };
        Slot((class as u32) << 24 | u32::from(category) << 8 | card_bits << 1 | u32::from(capped))
    }

    pub fn class(self) -> Class {
        match self.0 >> 24 {
            0 => Class::Purchase,
            1 => Class::Voided,
            _ => Class::Refund,
        }
    }

    pub fn category(self) -> u16 {
        (self.0 >> 8) as u16
    }

    pub fn card(self) -> Card {
        match (self.0 >> 1) & 3 {
            0 => Card::Debit,
            1 => Card::Credit,
            _ => Card::NotApplicable,
        }
    }

    pub fn capped(self) -> bool {
        self.0 & 1 == 1
    }

    /// The slot without its capped bit: the purchase posting's group.
    pub fn uncapped(self) -> Slot {
        Slot(self.0 & !1)
    }
}

/// The sums of one posting group on one business date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    /// Rows: purchases; voided purchases and their voids; refunds.
    pub count: u32,
    /// Purchases or refunds; 0 for voided groups.
    pub amount_fen: i64,
    /// Fees charged (purchases) or returned (refunds).
    pub fee_fen: i64,
}

/// The `row` of a group of many rows; a per-transaction group holds its
/// row's index instead.
pub const MANY_ROWS: u32 = u32::MAX;

/// One group as a chunk closes it: 40 bytes.
#[derive(Clone, Copy, Debug)]
struct Open {
    merchant: u32,
    day: Day,
    slot: Slot,
    row: u32,
    sums: Sums,
}

impl Open {
    const NONE: Open = Open {
        merchant: u32::MAX,
        day: 0,
        slot: Slot(u32::MAX),
        row: MANY_ROWS,
        sums: Sums {
            count: 0,
            amount_fen: 0,
            fee_fen: 0,
        },
    };

    /// The group of one accepted row.
    fn of_row(parsed: &Parsed, linked: &Linked, index: usize) -> Open {
        let txn = &parsed.txns[index];
        let card = linked.purchase_card(parsed, index);
        let category = linked.category[index];
        let (slot, amount_fen, fee_fen) = match txn.kind {
            Kind::Purchase if !linked.voided[index] => (
                Slot::new(Class::Purchase, category, card, linked.capped[index]),
                txn.amount_fen,
                linked.fee_fen[index],
            ),
            Kind::Refund => (
                Slot::new(Class::Refund, category, card, false),
                txn.amount_fen,
                linked.fee_fen[index],
            ),
            Kind::Purchase | Kind::Void => (Slot::new(Class::Voided, category, card, false), 0, 0),
        };
        Open {
            merchant: txn.merchant,
            day: txn.business_day,
            slot,
            row: MANY_ROWS,
            sums: Sums {
                count: 1,
                amount_fen,
                fee_fen,
            },
        }
    }

    fn same_key(&self, other: &Open) -> bool {
        (self.merchant, self.day, self.slot, self.row)
            == (other.merchant, other.day, other.slot, other.row)
    }
}

/// A (merchant, business date, slot) whose sums leave 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupOverflow {
    pub merchant: u32,
    pub day: Day,
}

/// One posting group: its business date, slot, row (`MANY_ROWS`, or the
/// one transaction of a per-transaction group) and sums.
pub type Entry = (Day, Slot, u32, Sums);

/// Every merchant's posting groups, by business date, slot and row, stored
/// flat with one offset per merchant.
pub struct Groups {
    entries: Vec<Entry>,
    offsets: Vec<usize>,
}

impl Groups {
    /// Groups the accepted rows of a run. Rows are read in file order in
    /// parallel chunks; each chunk keeps one open group per (merchant,
    /// slot), closed when that pair's next row has another date (file
    /// order is nearly date order). The closed groups are then sorted by
    /// merchant, date and slot and merged. The sums are integer sums, so
    /// neither chunking nor thread count changes them.
    ///
    /// With `per_transaction` (`--detail`), every accepted row is a group
    /// of its own, so that the journal posts each transaction.
    pub fn of(
        parsed: &Parsed,
        linked: &Linked,
        merchant_count: usize,
        per_transaction: bool,
    ) -> Result<Groups, GroupOverflow> {
        let rows = parsed.txns.len();
        let chunk_rows = rows
            .div_ceil(rayon::current_num_threads() * 4)
            .clamp(1, GROUP_CHUNK_ROWS_MAX);
        // A group per row needs no table of open groups.
        let table_len = if per_transaction {
            0
        } else {
            (merchant_count * 4)
                .next_power_of_two()
                .min(OPEN_GROUPS_MAX)
        };
        let closed: Vec<Vec<Open>> = (0..rows.div_ceil(chunk_rows))
            .into_par_iter()
            .map_init(
                || vec![Open::NONE; table_len],
                |open, chunk| {
                    let range = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(rows);
                    if per_transaction {
                        range
                            .filter(|&index| linked.accepted(index))
                            .map(|index| Open {
                                row: index as u32,
                                ..Open::of_row(parsed, linked, index)
                            })
                            .collect()
                    } else {
                        close_groups(parsed, linked, range, open)
                    }
                },
            )
            .collect();
        merge(closed, merchant_count)
    }

    /// Groups of all merchants.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A merchant's groups, by business date, slot and row.
    pub fn of_merchant(&self, merchant: u32) -> &[Entry] {
        &self.entries[self.offsets[merchant as usize]..self.offsets[merchant as usize + 1]]
    }
}

/// The groups of the accepted rows in `range`. `open` is a table of open
/// groups by (merchant, slot) hash modulo its length (a power of two), all
/// closed, and is left so.
fn close_groups(
    parsed: &Parsed,
    linked: &Linked,
    range: std::ops::Range<usize>,
    open: &mut [Open],
) -> Vec<Open> {
    assert!(
        open.len().is_power_of_two(),
        "the table is indexed by a mask"
    );
    let mut closed = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    for index in range {
        if !linked.accepted(index) {
            continue;
        }
        let row = Open::of_row(parsed, linked, index);
        let hash = (u64::from(row.merchant) << 32 | u64::from(row.slot.0))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> 32;
        let at = hash as usize & (open.len() - 1);
        let group = &mut open[at];
        if group.sums.count == 0 {
            touched.push(at);
        } else if group.same_key(&row) && group.sums.count < GROUP_ROWS_MAX {
            group.sums.count += 1;
            group.sums.amount_fen += row.sums.amount_fen;
            group.sums.fee_fen += row.sums.fee_fen;
            continue;
        } else {
            closed.push(*group);
        }
        *group = row;
    }
    for at in touched {
        closed.push(std::mem::replace(&mut open[at], Open::NONE));
    }
    closed
}

/// Sorts the chunks' groups by (merchant, date, slot) and merges those of
/// the same key in checked 64-bit sums: a counting sort by merchant, then
/// each merchant's few groups in parallel.
fn merge(closed: Vec<Vec<Open>>, merchant_count: usize) -> Result<Groups, GroupOverflow> {
    let mut offsets = vec![0usize; merchant_count + 1];
    for group in closed.iter().flatten() {
        offsets[group.merchant as usize + 1] += 1;
    }
    for m in 0..merchant_count {
        offsets[m + 1] += offsets[m];
    }
    let mut sorted = vec![Open::NONE; offsets[merchant_count]];
    let mut cursor = offsets.clone();
    for group in closed.into_iter().flatten() {
        let at = &mut cursor[group.merchant as usize];
        sorted[*at] = group;
        *at += 1;
    }
    let slices = split::by_lengths(&mut sorted, offsets.windows(2).map(|w| w[1] - w[0]));
    slices
        .into_par_iter()
        .for_each(|groups| groups.sort_unstable_by_key(|group| (group.day, group.slot, group.row)));
    let mut entries: Vec<Entry> = Vec::with_capacity(sorted.len());
    let mut merchant_offsets = Vec::with_capacity(merchant_count + 1);
    merchant_offsets.push(0);
    for m in 0..merchant_count {
        let merchant_start = entries.len();
        for group in &sorted[offsets[m]..offsets[m + 1]] {
            let len = entries.len();
            match entries.last_mut() {
                Some((day, slot, row, sums))
                    if len > merchant_start
                        && (*day, *slot, *row) == (group.day, group.slot, group.row)
                        && group.row == MANY_ROWS =>
                {
                    let overflow = GroupOverflow {
                        merchant: m as u32,
                        day: group.day,
                    };
                    sums.count = sums.count.checked_add(group.sums.count).ok_or(overflow)?;
                    sums.amount_fen = (sums.amount_fen)
                        .checked_add(group.sums.amount_fen)
                        .ok_or(overflow)?;
                    sums.fee_fen = (sums.fee_fen)
                        .checked_add(group.sums.fee_fen)
                        .ok_or(overflow)?;
                }
                _ => entries.push((group.day, group.slot, group.row, group.sums)),
            }
        }
        merchant_offsets.push(entries.len());
    }
    Ok(Groups {
        entries,
        offsets: merchant_offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::txn::Txn;

    #[test]
    fn slots_order_as_the_journal_posts() {
        let purchase = |category, card, capped| Slot::new(Class::Purchase, category, card, capped);
        let mut slots = vec![
            Slot::new(Class::Refund, 0, Card::Debit, false),
            Slot::new(Class::Voided, 3, Card::Credit, false),
            purchase(1, Card::Debit, false),
            purchase(0, Card::Credit, true),
            purchase(0, Card::Credit, false),
            purchase(0, Card::Debit, false),
        ];
        slots.sort();
        assert_eq!(
            slots,
            vec![
                purchase(0, Card::Debit, false),
                purchase(0, Card::Credit, false),
                purchase(0, Card::Credit, true),
                purchase(1, Card::Debit, false),
                Slot::new(Class::Voided, 3, Card::Credit, false),
                Slot::new(Class::Refund, 0, Card::Debit, false),
            ]
        );
        let slot = purchase(513, Card::Credit, true);
        assert_eq!(
            (slot.class(), slot.category(), slot.card(), slot.capped()),
            (Class::Purchase, 513, Card::Credit, true)
        );
        assert_eq!(slot.uncapped(), purchase(513, Card::Credit, false));
    }

    #[test]
    fn rows_in_any_chunking_give_the_same_groups() {
        // Merchant 0 on day 5: debit 100 (fee 1) and 300 (fee 3), credit 200
        // (fee 4); day 6: debit 50; merchant 1 on day 5: debit 70 (fee 1).
        // Worked by hand: merchant 0 day 5 debit = 2 rows, 400, fee 4.
        let rows = [
            (0u32, 5, Card::Debit, 100i64, 1i64),
            (0, 5, Card::Credit, 200, 4),
            (1, 5, Card::Debit, 70, 1),
            (0, 6, Card::Debit, 50, 0),
            (0, 5, Card::Debit, 300, 3),
        ];
        let (parsed, linked) = crate::pipeline::accepted_rows(
            rows.iter()
                .map(|&(merchant, business_day, card, amount_fen, _)| Txn {
                    merchant,
                    business_day,
                    card,
                    amount_fen,
                    kind: Kind::Purchase,
                    ..Txn::PLACEHOLDER
                })
                .collect(),
            rows.iter().map(|row| row.4).collect(),
        );
        let debit = Slot::new(Class::Purchase, 0, Card::Debit, false);
        let credit = Slot::new(Class::Purchase, 0, Card::Credit, false);
        let sums = |count, amount_fen, fee_fen| Sums {
            count,
            amount_fen,
            fee_fen,
        };
        for (chunk_rows, table_len) in [(5, 8), (1, 8), (2, 1), (5, 1)] {
            let mut open = vec![Open::NONE; table_len];
            let closed = (0..5usize.div_ceil(chunk_rows))
                .map(|c| {
                    let range = c * chunk_rows..((c + 1) * chunk_rows).min(5);
                    close_groups(&parsed, &linked, range, &mut open)
                })
                .collect();
            let groups = merge(closed, 2).expect("small sums");
            assert_eq!(
                groups.of_merchant(0),
                &[
                    (5, debit, MANY_ROWS, sums(2, 400, 4)),
                    (5, credit, MANY_ROWS, sums(1, 200, 4)),
                    (6, debit, MANY_ROWS, sums(1, 50, 0)),
                ],
                "{chunk_rows} rows a chunk, {table_len} slots"
            );
            assert_eq!(
                groups.of_merchant(1),
                &[(5, debit, MANY_ROWS, sums(1, 70, 1))]
            );
        }
    }
}
