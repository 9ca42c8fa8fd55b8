//! Per (merchant, business date) totals of a run's accepted rows, and the
//! flat by-merchant tables the ledger reads them from.
//!
//! This module owns the grouping only: what a row adds comes from RULES.md
//! 3.4 (`row_totals`), and it must not decide settlement amounts.

use rayon::prelude::*;

use super::{Linked, Parsed};
use crate::calendar::Day;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::Kind;
use crate::ledger::DayTotals;
use crate::money;
use crate::split;

/// Rows of one aggregation chunk; chunks run in parallel.
const AGGREGATE_CHUNK_ROWS_MAX: usize = 1 << 20;
/// Open groups a chunk keeps at once (10 MiB of them), whatever the
/// number of merchants: with more merchants, two share a slot, and a row
/// of one closes the other's group.
const OPEN_GROUPS_MAX: usize = 1 << 18;

/// What one accepted row adds to its business date's totals (RULES.md 3.4):
/// a voided purchase and its void count but move no money; a refund
/// returns the fee share decided when it was linked.
pub(super) fn row_totals(parsed: &Parsed, linked: &Linked, index: usize) -> DayTotals {
    DaySums::of(&Group::of_row(parsed, linked, index)).widened()
}

/// A merchant's totals for one business date, as a chunk of rows adds
/// them up: 40 bytes, so that a chunk's table of open groups stays in
/// cache. Sums are `i64`: an amount is below 10^14 fen (RULES.md 1), so a
/// group closes at `GROUP_ROWS_MAX` rows, long before a sum could reach
/// 2^63, and the merge adds groups up in `i128`.
#[derive(Clone, Copy, Debug)]
struct Group {
    merchant: u32,
    day: Day,
    txn_count: u32,
    /// Whether one of its rows is an accepted purchase (voided ones
    /// included).
    purchased: bool,
    purchases_fen: i64,
    refunds_fen: i64,
    fees_fen: i64,
}

/// Rows a group takes before it is closed: 2^16 amounts below 2^47 fen sum
/// to less than 2^63.
const GROUP_ROWS_MAX: u32 = 1 << 16;
const _: () = assert!(money::AMOUNT_FEN_LIMIT <= 1 << 47);

impl Group {
    const NONE: Group = Group {
        merchant: u32::MAX,
        day: 0,
        txn_count: 0,
        purchased: false,
        purchases_fen: 0,
        refunds_fen: 0,
        fees_fen: 0,
    };

    fn is_open(&self) -> bool {
        self.txn_count > 0
    }

    /// A group of one row, `index`, which is accepted: what the row adds
    /// (RULES.md 3.4, see `row_totals`).
    fn of_row(parsed: &Parsed, linked: &Linked, index: usize) -> Group {
        let txn = &parsed.txns[index];
        let mut group = Group {
            merchant: txn.merchant,
            day: txn.business_day,
            txn_count: 1,
            purchased: txn.kind == Kind::Purchase,
            ..Group::NONE
        };
        match txn.kind {
            Kind::Purchase if !linked.voided[index] => {
                group.purchases_fen = txn.amount_fen;
                group.fees_fen = linked.fee_fen[index];
            }
            Kind::Refund => {
                group.refunds_fen = txn.amount_fen;
                group.fees_fen = -linked.fee_fen[index];
            }
            Kind::Purchase | Kind::Void => {}
        }
        group
    }

    /// Adds a row's group of the same key.
    fn add(&mut self, row: &Group) {
        self.txn_count += row.txn_count;
        self.purchased |= row.purchased;
        self.purchases_fen += row.purchases_fen;
        self.refunds_fen += row.refunds_fen;
        self.fees_fen += row.fees_fen;
    }
}

/// A merchant's totals for one business date, the chunks' groups merged:
/// kept in 64 bits (with the date, 40 bytes rather than `DayTotals`' 80),
/// because every date of the run is in memory while the merchants settle.
/// Each merchant's are widened to `DayTotals` as it settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DaySums {
    txn_count: u32,
    purchases_fen: i64,
    refunds_fen: i64,
    fees_fen: i64,
}

impl DaySums {
    fn of(group: &Group) -> DaySums {
        DaySums {
            txn_count: group.txn_count,
            purchases_fen: group.purchases_fen,
            refunds_fen: group.refunds_fen,
            fees_fen: group.fees_fen,
        }
    }

    /// Adds a group of the same key; `None` if a sum leaves 64 bits.
    fn add(&mut self, group: &Group) -> Option<()> {
        self.txn_count = self.txn_count.checked_add(group.txn_count)?;
        self.purchases_fen = self.purchases_fen.checked_add(group.purchases_fen)?;
        self.refunds_fen = self.refunds_fen.checked_add(group.refunds_fen)?;
        self.fees_fen = self.fees_fen.checked_add(group.fees_fen)?;
        Some(())
    }

    pub(super) fn widened(&self) -> DayTotals {
        DayTotals {
            txn_count: u64::from(self.txn_count),
            purchases_fen: i128::from(self.purchases_fen),
            refunds_fen: i128::from(self.refunds_fen),
            fees_fen: i128::from(self.fees_fen),
        }
    }
}

/// A (merchant, business date) whose totals do not fit `DaySums`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DayOverflow {
    pub merchant: u32,
    pub day: Day,
}

/// Per (merchant, business date) totals of accepted transactions.
///
/// Rows are read in file order, in parallel chunks. Each chunk keeps one
/// open group per merchant, in a table indexed by merchant that stays in
/// cache, and closes it when that merchant's next row has another date:
/// since file order is nearly date order, a chunk closes about one group
/// per (merchant, date) it saw. The closed groups of all chunks are then
/// sorted by merchant and date and merged. Totals are integer sums, so
/// neither the chunking nor the thread count changes them.
///
/// Also returns, per merchant, whether it had an accepted purchase (voided
/// ones included), for the return-window waiver.
pub(super) fn aggregate(
    parsed: &Parsed,
    linked: &Linked,
    merchant_count: usize,
) -> Result<(ByMerchant<DaySums>, Vec<bool>), DayOverflow> {
    let rows = parsed.txns.len();
    let chunk_rows = rows
        .div_ceil(rayon::current_num_threads() * 4)
        .clamp(1, AGGREGATE_CHUNK_ROWS_MAX);
    let closed: Vec<Vec<Group>> = (0..rows.div_ceil(chunk_rows))
        .into_par_iter()
        .map_init(
            || vec![Group::NONE; merchant_count.next_power_of_two().min(OPEN_GROUPS_MAX)],
            |open, chunk| {
                let range = chunk * chunk_rows..((chunk + 1) * chunk_rows).min(rows);
                close_groups(parsed, linked, range, GROUP_ROWS_MAX, open)
            },
        )
        .collect();
    merge_groups(closed, merchant_count)
}

/// The groups of the accepted rows in `range`, none of more than
/// `rows_max` rows. `open` is a table of open groups by merchant index
/// modulo its length (a power of two), all closed, and is left so.
fn close_groups(
    parsed: &Parsed,
    linked: &Linked,
    range: std::ops::Range<usize>,
    rows_max: u32,
    open: &mut [Group],
) -> Vec<Group> {
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
        let row = Group::of_row(parsed, linked, index);
        let slot = row.merchant as usize & (open.len() - 1);
        let group = &mut open[slot];
        if !group.is_open() {
            touched.push(slot);
        } else if group.merchant == row.merchant
            && group.day == row.day
            && group.txn_count < rows_max
        {
            group.add(&row);
            continue;
        } else {
            closed.push(*group);
        }
        *group = row;
    }
    for slot in touched {
        closed.push(std::mem::replace(&mut open[slot], Group::NONE));
    }
    closed
}

/// Sorts the chunks' groups by (merchant, date) and merges those of the
/// same key: a counting sort by merchant, then each merchant's few groups
/// by date.
fn merge_groups(
    closed: Vec<Vec<Group>>,
    merchant_count: usize,
) -> Result<(ByMerchant<DaySums>, Vec<bool>), DayOverflow> {
    let mut offsets = vec![0usize; merchant_count + 1];
    for group in closed.iter().flatten() {
        offsets[group.merchant as usize + 1] += 1;
    }
    for m in 0..merchant_count {
        offsets[m + 1] += offsets[m];
    }
    let mut sorted = vec![Group::NONE; offsets[merchant_count]];
    let mut cursor = offsets.clone();
    for group in closed.into_iter().flatten() {
        let slot = &mut cursor[group.merchant as usize];
        sorted[*slot] = group;
        *slot += 1;
    }
    let slices = split::by_lengths(&mut sorted, offsets.windows(2).map(|w| w[1] - w[0]));
    // Each merchant's groups by date, in parallel; then, in one pass, the
    // totals per date, merged in checked 64-bit sums.
    slices
        .into_par_iter()
        .for_each(|groups| groups.sort_unstable_by_key(|group| group.day));
    let mut entries: Vec<(Day, DaySums)> = Vec::with_capacity(sorted.len());
    let mut merchant_offsets = Vec::with_capacity(merchant_count + 1);
    let mut purchased = vec![false; merchant_count];
    merchant_offsets.push(0);
    for m in 0..merchant_count {
        let merchant_start = entries.len();
        for group in &sorted[offsets[m]..offsets[m + 1]] {
            purchased[m] |= group.purchased;
            let len = entries.len();
            match entries.last_mut() {
                Some((day, sums)) if len > merchant_start && *day == group.day => {
                    sums.add(group).ok_or(DayOverflow {
                        merchant: m as u32,
                        day: group.day,
                    })?
                }
                _ => entries.push((group.day, DaySums::of(group))),
            }
        }
        merchant_offsets.push(entries.len());
    }
    Ok((
        ByMerchant {
            entries,
            offsets: merchant_offsets,
        },
        purchased,
    ))
}

pub(super) fn adjustments_by_merchant(adjustments: &[Adjustment]) -> Vec<((u32, Day), i128)> {
    let mut sums: Vec<((u32, Day), i128)> = adjustments
        .iter()
        .map(|a| ((a.merchant, a.settlement_day), i128::from(a.amount_fen)))
        .collect();
    sums.sort_by_key(|(key, _)| *key);
    sums.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 += later.1;
        }
        same
    });
    sums
}

/// Values by (merchant, date), stored flat with one offset per merchant.
pub(super) struct ByMerchant<T> {
    entries: Vec<(Day, T)>,
    offsets: Vec<usize>,
}

impl<T: Copy> ByMerchant<T> {
    /// Groups a list sorted by (merchant, date).
    pub(super) fn new(sorted: &[((u32, Day), T)], merchant_count: usize) -> ByMerchant<T> {
        debug_assert!(sorted.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let mut offsets = Vec::with_capacity(merchant_count + 1);
        let mut cursor = 0;
        for merchant in 0..=merchant_count as u32 {
            while cursor < sorted.len() && sorted[cursor].0.0 < merchant {
                cursor += 1;
            }
            offsets.push(cursor);
        }
        ByMerchant {
            entries: sorted
                .iter()
                .map(|((_, day), value)| (*day, *value))
                .collect(),
            offsets,
        }
    }

    pub(super) fn of(&self, merchant: u32) -> &[(Day, T)] {
        &self.entries[self.offsets[merchant as usize]..self.offsets[merchant as usize + 1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::txn::{Card, Txn};

    /// Rows of (merchant, day, kind, amount), all accepted; a purchase's fee
    /// is a tenth of its amount and a refund returns a twentieth.
    fn rows(rows: &[(u32, Day, Kind, i64)]) -> (Parsed, Linked) {
        let txns = rows
            .iter()
            .map(|&(merchant, business_day, kind, amount_fen)| Txn {
                merchant,
                business_day,
                kind,
                amount_fen,
                card: Card::Debit,
                ..Txn::PLACEHOLDER
            })
            .collect();
        let parsed = Parsed {
            txns,
            arenas: Vec::new(),
            rejects: Vec::new(),
            rows_read_per_file: vec![rows.len() as u64],
            streamed: Vec::new(),
        };
        let mut linked = Linked::empty();
        linked.rejected = vec![None; rows.len()];
        linked.voided = vec![false; rows.len()];
        linked.fee_fen = rows
            .iter()
            .map(|&(_, _, kind, amount)| match kind {
                Kind::Purchase => amount / 10,
                Kind::Refund => amount / 20,
                Kind::Void => 0,
            })
            .collect();
        (parsed, linked)
    }

    #[test]
    fn groups_closed_early_or_out_of_date_order_merge_back() {
        use Kind::{Purchase, Refund};
        // Merchant 0: day 5 comes back after day 6; merchant 1 only
        // refunds. Worked by hand: merchant 0 day 5 has 4 rows, purchases
        // 100 + 200 + 400 = 700, fees 10 + 20 + 40 = 70, refund 60 (fee 3
        // back): fees 67.
        let (parsed, linked) = rows(&[
            (0, 5, Purchase, 100),
            (0, 5, Purchase, 200),
            (1, 5, Refund, 40),
            (0, 6, Purchase, 1000),
            (0, 5, Refund, 60),
            (0, 5, Purchase, 400),
        ]);
        let day5 = DaySums {
            txn_count: 4,
            purchases_fen: 700,
            refunds_fen: 60,
            fees_fen: 67,
        };
        let day6 = DaySums {
            txn_count: 1,
            purchases_fen: 1000,
            refunds_fen: 0,
            fees_fen: 100,
        };
        let refund_only = DaySums {
            txn_count: 1,
            purchases_fen: 0,
            refunds_fen: 40,
            fees_fen: -2,
        };
        // One chunk or more, groups of at most 1, 2 or 2^16 rows, a slot per
        // merchant or one that both share: the same totals.
        for (chunk_rows, rows_max, slots) in [
            (6, GROUP_ROWS_MAX, 2),
            (2, GROUP_ROWS_MAX, 2),
            (6, 1, 2),
            (4, 2, 2),
            (6, GROUP_ROWS_MAX, 1),
            (4, 2, 1),
        ] {
            let mut open = vec![Group::NONE; slots];
            let closed: Vec<Vec<Group>> = (0..6usize.div_ceil(chunk_rows))
                .map(|c| {
                    let range = c * chunk_rows..((c + 1) * chunk_rows).min(6);
                    close_groups(&parsed, &linked, range, rows_max, &mut open)
                })
                .collect();
            assert!(open.iter().all(|group| !group.is_open()));
            let (days, purchased) = merge_groups(closed, 2).expect("small sums");
            assert_eq!(
                days.of(0),
                &[(5, day5), (6, day6)],
                "{chunk_rows} {rows_max} {slots}"
            );
            assert_eq!(days.of(1), &[(5, refund_only)]);
            assert_eq!(purchased, vec![true, false]);
        }
    }

    #[test]
    fn a_date_whose_sums_leave_64_bits_is_named() {
        // Two chunks each closed a group of merchant 1 on day 9 whose
        // purchases are over half of i64::MAX: together they do not fit.
        let half = i64::MAX / 2 + 1;
        let group = |purchases_fen| Group {
            merchant: 1,
            day: 9,
            txn_count: 1,
            purchased: true,
            purchases_fen,
            ..Group::NONE
        };
        let fits = merge_groups(vec![vec![group(half - 1)], vec![group(half)]], 2);
        assert_eq!(fits.expect("fits").0.of(1)[0].1.purchases_fen, i64::MAX);
        let overflow = merge_groups(vec![vec![group(half)], vec![group(half)]], 2);
        assert_eq!(
            overflow.err(),
            Some(DayOverflow {
                merchant: 1,
                day: 9
            })
        );
    }
}
