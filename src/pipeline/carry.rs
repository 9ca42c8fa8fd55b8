//! The hand-off from a settled run to its end state (RULES.md 6): which
//! merchant states and which ids go into the state the next run starts
//! from.
//!
//! This module chooses what is carried; `state` encodes and stores it. It
//! must not change a settled figure.

use hashbrown::HashMap;

use crate::calendar::Day;
use crate::config::Settings;
use crate::error::Result;
use crate::ingest::Merchants;
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::Kind;
use crate::ledger::MerchantState;
use crate::pipeline::Settled;
use crate::pipeline::link::PRIOR_BIT;
use crate::state::{self, Closing, Entry, PriorState, Purchase};

/// The end state's merchants: this run's, then those of the starting state
/// that master data no longer lists (carried unchanged, so that no balance
/// is dropped), sorted by id bytewise.
pub fn closing_merchants<'a>(
    settled: &'a Settled,
    merchants: &'a Merchants,
) -> Vec<(&'a str, MerchantState)> {
    let mut list: Vec<(&str, MerchantState)> = merchants
        .all()
        .iter()
        .map(|m| m.id.as_str())
        .zip(settled.closing.iter().copied())
        .collect();
    if !settled.carried_over.is_empty() {
        list.extend(
            settled
                .carried_over
                .iter()
                .map(|(id, state)| (id.as_str(), *state)),
        );
        list.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    list
}

/// Writes the run's end state into `staging` and returns the small files
/// (manifest, merchants) to publish with the rest.
pub fn write_state(
    staging: &std::path::Path,
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
    prior: Option<&PriorState>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let parsed = &settled.parsed;
    let linked = &settled.linked;
    let txns = &parsed.txns;
    let horizon = settled.horizon;
    // The index keeps the ids of the last refund_retention_days business
    // dates up to the horizon.
    let first_day: Option<Day> =
        horizon.map(|h| h.saturating_sub(settings.refund_retention_days - 1));
    let window = |day: Day| match (first_day, horizon) {
        (Some(first), Some(last)) => (first..=last).contains(&day),
        _ => false,
    };

    // This run's refunds and voids, summed per purchase of this run.
    let mut refunds: HashMap<u32, (i64, i64)> = HashMap::new();
    for (i, txn) in txns.iter().enumerate() {
        let purchase = linked.purchase_of[i];
        if txn.kind == Kind::Refund && linked.accepted(i) && purchase & PRIOR_BIT == 0 {
            let sums = refunds.entry(purchase).or_default();
            sums.0 += txn.amount_fen;
            sums.1 += linked.fee_fen[i];
        }
    }

    // Sources: a row of this run (the first with its id), or PRIOR_BIT | slot
    // for an earlier purchase whose totals this run changed.
    let mut keys: Vec<(u64, u32)> = txns
        .iter()
        .enumerate()
        .filter(|(i, txn)| {
            linked.rejected[*i] != Some(RejectCode::DuplicateTxnId) && window(txn.business_day)
        })
        .map(|(i, txn)| (txn.id_hash, i as u32))
        .collect();
    keys.extend(
        linked
            .prior
            .iter()
            .enumerate()
            .filter(|(_, p)| p.changed && window(p.entry.business_day))
            .map(|(slot, p)| (p.entry.hash, PRIOR_BIT | slot as u32)),
    );
    let entry_at = |source: u32| -> Entry<&[u8]> {
        if source & PRIOR_BIT != 0 {
            return linked.prior[(source & !PRIOR_BIT) as usize]
                .entry
                .borrowed();
        }
        let i = source as usize;
        let txn = &txns[i];
        let purchase = (txn.kind == Kind::Purchase && linked.accepted(i)).then(|| {
            let (refunded_fen, fee_returned_fen) =
                refunds.get(&source).copied().unwrap_or_default();
            Purchase {
                merchant_id: merchants.get(txn.merchant).id.as_bytes(),
                category: settings.categories.get(linked.category[i]).name.as_bytes(),
                card: txn.card,
                unix_s: txn.unix_s,
                nanos: txn.nanos,
                amount_fen: txn.amount_fen,
                fee_fen: linked.fee_fen[i],
                voided: linked.voided[i],
                refunded_fen,
                fee_returned_fen,
            }
        });
        Entry {
            hash: txn.id_hash,
            id: parsed.txn_id(txn),
            business_day: txn.business_day,
            purchase,
        }
    };

    let kept = match (prior, first_day) {
        (Some(prior), Some(first)) => prior
            .segments
            .iter()
            .filter(|segment| segment.facts.last_day >= first)
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let closing = Closing {
        horizon,
        index_first_day: first_day,
        merchants: closing_merchants(settled, merchants),
        kept,
        kept_dir: prior.map(|p| p.dir.as_path()),
    };
    state::write(staging, &closing, keys, &entry_at)
}
