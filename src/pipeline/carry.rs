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
use crate::pipeline::link::PurchaseRef;
use crate::pipeline::{Ingested, Settled};
use crate::state::{
    self, Closing, Entry, Names, NewEntry, PriorState, Purchase, SegmentRecord, WrittenIndex,
};
use rayon::prelude::*;

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

/// The first business date the end state's index keeps: it keeps the ids
/// of the last refund_retention_days dates up to the horizon.
fn index_first_day(horizon: Option<Day>, settings: &Settings) -> Option<Day> {
    horizon.map(|h| h.saturating_sub(settings.refund_retention_days - 1))
}

/// Writes the id index of the run's end state into `staging`, as soon as
/// the run is linked: the settling that follows does not change it.
pub fn write_index(
    staging: &std::path::Path,
    ingested: &Ingested,
    merchants: &Merchants,
    settings: &Settings,
    prior: Option<&PriorState>,
) -> Result<WrittenIndex> {
    let parsed = &ingested.parsed;
    let linked = &ingested.linked;
    let txns = &parsed.txns;
    let horizon = ingested.horizon;
    let first_day = index_first_day(horizon, settings);
    let window = |day: Day| match (first_day, horizon) {
        (Some(first), Some(last)) => (first..=last).contains(&day),
        _ => false,
    };

    // This run's refunds, found in parallel, then summed per purchase of
    // this run (sums of integers: the order does not matter), in a list
    // sorted by purchase: smaller than a map, and read only for the
    // purchases `refunded` flags.
    let mut refunds: Vec<(u32, i64, i64)> = txns
        .par_iter()
        .enumerate()
        .filter(|(i, txn)| txn.kind == Kind::Refund && linked.accepted(*i))
        .filter_map(
            |(i, txn)| match PurchaseRef::decode(linked.purchase_of[i]) {
                PurchaseRef::Row(purchase) => {
                    Some((purchase as u32, txn.amount_fen, linked.fee_fen[i]))
                }
                _ => None,
            },
        )
        .collect();
    refunds.par_sort_unstable_by_key(|&(purchase, _, _)| purchase);
    refunds.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
            kept.2 += later.2;
        }
        same
    });
    let mut refunded = vec![false; txns.len()];
    for &(purchase, _, _) in &refunds {
        refunded[purchase as usize] = true;
    }

    // Names are numbered by master data and configuration order, so that
    // this run's entries need no lookup; an earlier purchase of a merchant
    // or category no longer listed gets a number after them.
    let mut names = Names {
        merchants: merchants.all().iter().map(|m| m.id.as_bytes()).collect(),
        categories: (0..settings.categories.len())
            .map(|c| settings.categories.get(c as u16).name.as_bytes())
            .collect(),
    };
    // Each table has its own extra names: a merchant id may spell a
    // category name.
    let (mut extra_merchants, mut extra_categories) = (HashMap::new(), HashMap::new());
    let mut updated: Vec<NewEntry> = Vec::new();
    for p in linked
        .prior
        .iter()
        .filter(|p| p.changed && window(p.entry.business_day))
    {
        let purchase = p.entry.purchase.as_ref().map(|q| {
            let merchant = merchants.index_of(&q.merchant_id).unwrap_or_else(|| {
                extra_number(&mut names.merchants, &mut extra_merchants, &q.merchant_id)
            });
            let category = settings
                .categories
                .position_of_name(&q.category)
                .map_or_else(
                    || extra_number(&mut names.categories, &mut extra_categories, &q.category),
                    u32::from,
                );
            q.renamed(merchant, category)
        });
        updated.push(Entry {
            hash: p.entry.hash,
            id: &p.entry.id,
            business_day: p.entry.business_day,
            purchase,
        });
    }

    // This run's entries: the first row of each id inside the window, in
    // file order; then the earlier purchases this run changed.
    let rows: Vec<u32> = txns
        .par_iter()
        .enumerate()
        .filter(|(i, txn)| {
            linked.rejected[*i] != Some(RejectCode::DuplicateTxnId) && window(txn.business_day)
        })
        .map(|(i, _)| i as u32)
        .collect();
    let entry_at = |index: usize| -> NewEntry {
        let Some(&row) = rows.get(index) else {
            return updated[index - rows.len()].clone();
        };
        let i = row as usize;
        let txn = &txns[i];
        let purchase = (txn.kind == Kind::Purchase && linked.accepted(i)).then(|| {
            // Most purchases have no refund: a flag read in file order spares
            // them a search of the list.
            let (refunded_fen, fee_returned_fen) = if refunded[i] {
                let at = refunds
                    .binary_search_by_key(&row, |&(purchase, _, _)| purchase)
                    .expect("a flagged purchase has its refunds");
                (refunds[at].1, refunds[at].2)
            } else {
                (0, 0)
            };
            Purchase {
                merchant_id: txn.merchant,
                category: u32::from(linked.category[i]),
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

    let kept = state::Kept {
        segments: match (prior, first_day) {
            (Some(prior), Some(first)) => prior
                .segments
                .iter()
                .filter(|segment| segment.facts.last_day >= first)
                .cloned()
                .collect(),
            _ => Vec::new(),
        },
        dir: prior.map(|p| p.dir.as_path()),
    };
    state::write_index(
        staging,
        horizon,
        &kept,
        &names,
        rows.len() + updated.len(),
        &entry_at,
    )
}

/// The manifest and merchants file of the run's end state, whose index
/// has `segments`.
pub fn state_files(
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
    segments: &[SegmentRecord],
) -> Vec<(String, Vec<u8>)> {
    state::state_files(&Closing {
        horizon: settled.horizon,
        index_first_day: index_first_day(settled.horizon, settings),
        merchants: closing_merchants(settled, merchants),
        segments,
    })
}

/// The number of a name that master data or configuration no longer lists:
/// appended to its table once.
fn extra_number<'a>(
    table: &mut Vec<&'a [u8]>,
    extra: &mut HashMap<&'a [u8], u32>,
    name: &'a [u8],
) -> u32 {
    *extra.entry(name).or_insert_with(|| {
        table.push(name);
        (table.len() - 1) as u32
    })
}
