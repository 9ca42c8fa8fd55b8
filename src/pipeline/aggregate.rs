//! Per (merchant, business date) totals of a run's accepted rows, and the
//! flat by-merchant tables the ledger reads them from.
//!
//! The totals are rolled up from the posting groups (`groups`), which the
//! journal explains row by row: one pass over the rows serves both. This
//! module owns the roll-up only: what a row adds comes from RULES.md 3.4
//! (`row_totals`), and it must not decide settlement amounts.

use super::groups::{Class, Groups};
use super::{Linked, Parsed};
use crate::calendar::Day;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::Kind;
use crate::ledger::DayTotals;

/// What one accepted row adds to its business date's totals (RULES.md 3.4):
/// a voided purchase and its void count but move no money; a refund
/// returns the fee share decided when it was linked. The conservation
/// check sums these straight from the rows, apart from the groups.
pub(super) fn row_totals(parsed: &Parsed, linked: &Linked, index: usize) -> DayTotals {
    let txn = &parsed.txns[index];
    let mut totals = DayTotals {
        txn_count: 1,
        ..DayTotals::default()
    };
    match txn.kind {
        Kind::Purchase if !linked.voided[index] => {
            totals.purchases_fen = txn.amount_fen.into();
            totals.fees_fen = linked.fee_fen[index].into();
        }
        Kind::Refund => {
            totals.refunds_fen = txn.amount_fen.into();
            totals.fees_fen = (-linked.fee_fen[index]).into();
        }
        Kind::Purchase | Kind::Void => {}
    }
    totals
}

/// A merchant's totals for one business date, its posting groups rolled
/// up: kept in 64 bits (with the date, 40 bytes rather than `DayTotals`'
/// 80), because every date of the run is in memory while the merchants
/// settle. Each merchant's are widened to `DayTotals` as it settles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DaySums {
    txn_count: u32,
    purchases_fen: i64,
    refunds_fen: i64,
    fees_fen: i64,
}

impl DaySums {
    const ZERO: DaySums = DaySums {
        txn_count: 0,
        purchases_fen: 0,
        refunds_fen: 0,
        fees_fen: 0,
    };

    /// Adds a posting group; `None` if a sum leaves 64 bits.
    fn add(&mut self, class: Class, sums: &super::groups::Sums) -> Option<()> {
        self.txn_count = self.txn_count.checked_add(sums.count)?;
        match class {
            Class::Purchase => {
                self.purchases_fen = self.purchases_fen.checked_add(sums.amount_fen)?;
                self.fees_fen = self.fees_fen.checked_add(sums.fee_fen)?;
            }
            Class::Refund => {
                self.refunds_fen = self.refunds_fen.checked_add(sums.amount_fen)?;
                self.fees_fen = self.fees_fen.checked_sub(sums.fee_fen)?;
            }
            Class::Voided => {}
        }
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

/// Per (merchant, business date) totals of accepted transactions, rolled
/// up from the posting groups (sorted by merchant, date and slot, so each
/// date's groups are adjacent). Also returns, per merchant, whether it had
/// an accepted purchase (voided ones included), for the return-window
/// waiver.
pub(super) fn aggregate(
    groups: &Groups,
    merchant_count: usize,
) -> Result<(ByMerchant<DaySums>, Vec<bool>), DayOverflow> {
    let mut entries: Vec<(Day, DaySums)> = Vec::with_capacity(groups.len());
    let mut offsets = Vec::with_capacity(merchant_count + 1);
    let mut purchased = vec![false; merchant_count];
    offsets.push(0);
    for (m, bought) in purchased.iter_mut().enumerate() {
        let merchant_start = entries.len();
        for (day, slot, _, sums) in groups.of_merchant(m as u32) {
            *bought |= slot.class() != Class::Refund;
            if entries.len() == merchant_start || entries.last().is_some_and(|(d, _)| d != day) {
                entries.push((*day, DaySums::ZERO));
            }
            let (_, totals) = entries.last_mut().expect("pushed above");
            totals.add(slot.class(), sums).ok_or(DayOverflow {
                merchant: m as u32,
                day: *day,
            })?;
        }
        offsets.push(entries.len());
    }
    Ok((ByMerchant { entries, offsets }, purchased))
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
        let fees = rows
            .iter()
            .map(|&(_, _, kind, amount)| match kind {
                Kind::Purchase => amount / 10,
                Kind::Refund => amount / 20,
                Kind::Void => 0,
            })
            .collect();
        crate::pipeline::accepted_rows(txns, fees)
    }

    #[test]
    fn dates_out_of_order_roll_up_per_merchant_and_date() {
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
        for per_transaction in [false, true] {
            let groups = Groups::of(&parsed, &linked, 2, per_transaction).expect("small sums");
            let (days, purchased) = aggregate(&groups, 2).expect("small sums");
            assert_eq!(days.of(0), &[(5, day5), (6, day6)], "{per_transaction}");
            assert_eq!(days.of(1), &[(5, refund_only)]);
            assert_eq!(purchased, vec![true, false]);
            // The same totals as the rows give one by one.
            let mut by_row = DayTotals::default();
            for index in [0, 1, 4, 5] {
                by_row.merge(&row_totals(&parsed, &linked, index));
            }
            assert_eq!(day5.widened(), by_row);
        }
    }

    #[test]
    fn a_date_whose_sums_leave_64_bits_is_named() {
        // Merchant 1 on day 9: two purchase groups (debit and credit) whose
        // amounts are each over half of i64::MAX: together they do not fit.
        let half = i64::MAX / 2 + 1;
        let (mut parsed, linked) = rows(&[(1, 9, Kind::Purchase, 0), (1, 9, Kind::Purchase, 0)]);
        parsed.txns[1].card = Card::Credit;
        for (txn, amount) in parsed.txns.iter_mut().zip([half - 1, half]) {
            txn.amount_fen = amount;
        }
        let groups = Groups::of(&parsed, &linked, 2, false).expect("each group fits");
        let fits = aggregate(&groups, 2).expect("fits").0.of(1)[0].1;
        assert_eq!(fits.purchases_fen, i64::MAX);
        parsed.txns[0].amount_fen = half;
        let groups = Groups::of(&parsed, &linked, 2, false).expect("each group fits");
        assert_eq!(
            aggregate(&groups, 2).err(),
            Some(DayOverflow {
                merchant: 1,
                day: 9
            })
        );
    }
}
