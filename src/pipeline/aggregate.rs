//! Per (merchant, business date) totals of a run's accepted rows, and the
//! flat by-merchant tables the ledger reads them from.
//!
//! This module owns the grouping only: what a row adds comes from RULES.md
//! 3.4 (`row_totals`), and it must not decide settlement amounts.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use super::{Linked, Parsed};
use crate::calendar::Day;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::Kind;
use crate::ledger::DayTotals;

/// Per-merchant counters the aggregation's counting sort may hold at once
/// (one per merchant per chunk of rows).
const AGGREGATE_COUNTS_MAX: usize = 1 << 24;

/// What one accepted row adds to its business date's totals (RULES.md 3.4):
/// a voided purchase and its void count but move no money; a refund
/// returns the fee share decided when it was linked.
pub(super) fn row_totals(parsed: &Parsed, linked: &Linked, index: usize) -> DayTotals {
    let txn = &parsed.txns[index];
    let mut totals = DayTotals {
        txn_count: 1,
        ..DayTotals::default()
    };
    match txn.kind {
        Kind::Purchase if !linked.voided[index] => {
            totals.purchases_fen = i128::from(txn.amount_fen);
            totals.fees_fen = i128::from(linked.fee_fen[index]);
        }
        Kind::Refund => {
            totals.refunds_fen = i128::from(txn.amount_fen);
            totals.fees_fen = -i128::from(linked.fee_fen[index]);
        }
        Kind::Purchase | Kind::Void => {}
    }
    totals
}

/// Per (merchant, business date) totals of accepted transactions.
///
/// A counting sort groups the accepted rows by merchant (two passes, no
/// hashing); then each merchant's few rows are sorted by date and summed,
/// merchants in parallel.
///
/// Also returns, per merchant, whether it had an accepted purchase (voided
/// ones included), for the return-window waiver.
pub(super) fn aggregate(
    parsed: &Parsed,
    linked: &Linked,
    merchant_count: usize,
) -> (ByMerchant<DayTotals>, Vec<bool>) {
    let (order, offsets) = rows_by_merchant(parsed, linked, merchant_count);
    let per_merchant: Vec<(Vec<(Day, DayTotals)>, bool)> = (0..merchant_count)
        .into_par_iter()
        .map(|m| {
            // Rows come in file order, which is nearly date order: add each
            // to the last date's totals when it matches, so the vector holds
            // one entry per date, not per row.
            let mut rows: Vec<(Day, DayTotals)> = Vec::new();
            let mut purchased = false;
            for i in &order[offsets[m]..offsets[m + 1]] {
                let i = i.load(Ordering::Relaxed) as usize;
                let txn = &parsed.txns[i];
                purchased |= txn.kind == Kind::Purchase;
                let totals = row_totals(parsed, linked, i);
                match rows.last_mut() {
                    Some((day, sum)) if *day == txn.business_day => sum.merge(&totals),
                    _ => rows.push((txn.business_day, totals)),
                }
            }
            rows.sort_by_key(|(day, _)| *day);
            rows.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    earlier.1.merge(&later.1);
                }
                same
            });
            (rows, purchased)
        })
        .collect();
    let (groups, purchased) = per_merchant.into_iter().unzip();
    (ByMerchant::from_groups(groups), purchased)
}

/// The accepted rows grouped by merchant, in file order within each: a
/// counting sort, each pass in parallel over chunks of rows. Returns the
/// row numbers and where each merchant's start (`merchant_count + 1`).
fn rows_by_merchant(
    parsed: &Parsed,
    linked: &Linked,
    merchant_count: usize,
) -> (Vec<AtomicU32>, Vec<usize>) {
    let txns = &parsed.txns;
    // Each chunk counts every merchant: bound chunks × merchants.
    let chunk_count = (rayon::current_num_threads() * 4)
        .min(AGGREGATE_COUNTS_MAX / merchant_count.max(1))
        .max(1);
    let chunk_rows = txns.len().div_ceil(chunk_count).max(1);
    let mut cursors: Vec<Vec<u32>> = txns
        .par_chunks(chunk_rows)
        .enumerate()
        .map(|(chunk, rows)| {
            let mut counts = vec![0u32; merchant_count];
            for (offset, txn) in rows.iter().enumerate() {
                if linked.accepted(chunk * chunk_rows + offset) {
                    counts[txn.merchant as usize] += 1;
                }
            }
            counts
        })
        .collect();
    // Merchant m's rows start at offsets[m]; within them, chunk c's rows
    // follow those of chunks before it, which keeps file order.
    let mut offsets = Vec::with_capacity(merchant_count + 1);
    let mut next = 0u32;
    for m in 0..merchant_count {
        offsets.push(next as usize);
        for counts in &mut cursors {
            let count = counts[m];
            counts[m] = next;
            next += count;
        }
    }
    offsets.push(next as usize);
    let order: Vec<AtomicU32> = (0..next).map(|_| AtomicU32::new(0)).collect();
    // Every slot is written by exactly one chunk: relaxed stores suffice,
    // and the join of the parallel loop publishes them.
    txns.par_chunks(chunk_rows)
        .zip(cursors.par_iter_mut())
        .enumerate()
        .for_each(|(chunk, (rows, cursor))| {
            for (offset, txn) in rows.iter().enumerate() {
                let i = chunk * chunk_rows + offset;
                if linked.accepted(i) {
                    let slot = &mut cursor[txn.merchant as usize];
                    order[*slot as usize].store(i as u32, Ordering::Relaxed);
                    *slot += 1;
                }
            }
        });
    (order, offsets)
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

    /// Flattens one group per merchant, in merchant order.
    fn from_groups(groups: Vec<Vec<(Day, T)>>) -> ByMerchant<T> {
        let mut entries = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        offsets.push(0);
        for group in groups {
            entries.extend(group);
            offsets.push(entries.len());
        }
        ByMerchant { entries, offsets }
    }

    pub(super) fn of(&self, merchant: u32) -> &[(Day, T)] {
        &self.entries[self.offsets[merchant as usize]..self.offsets[merchant as usize + 1]]
    }
}
