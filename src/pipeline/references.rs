//! Step 6 of RULES.md 3.3 (the rules of 3.2): refunds and voids judged
//! against their purchase, of this run or, through the starting state's
//! index, of an earlier one. Each purchase's references are taken together
//! in (instant, file order) order, partitions in parallel.
//!
//! This module decides references only; `link` finds the purchases and
//! owns the results.

use rayon::prelude::*;

use super::link::{Linked, NO_PURCHASE, PRIOR_BIT, PurchaseRef};
use crate::calendar::{self, Day, Instant};
use crate::config::{RefundFee, Settings};
use crate::ingest::merchants::Merchants;
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::{Kind, Txn};
use crate::money;
use crate::pipeline::parse::Parsed;

/// What deciding references needs besides the partition's rows.
pub(super) struct References<'a> {
    pub(super) parsed: &'a Parsed,
    pub(super) settings: &'a Settings,
    pub(super) merchants: &'a Merchants,
    /// (row, slot in `Linked::prior`), sorted by row.
    pub(super) prior_refs: &'a [(u32, u32)],
    /// The first business date the starting state's index holds.
    pub(super) index_first_day: Option<Day>,
}

/// The purchase a group of refunds and voids names, as it stood before
/// them.
struct Original {
    amount_fen: i64,
    business_day: Day,
    fee_fen: i64,
    voided: bool,
    refunded_fen: i64,
    fee_returned_fen: i64,
}

/// A decision about one refund or void.
struct RefDecision {
    index: u32,
    purchase: u32,
    outcome: Option<(RejectCode, String)>,
    fee_returned_fen: i64,
    voids_purchase: bool,
}

/// An earlier run's purchase after this run's refunds and voids:
/// (slot, voided, refunded, fee returned).
type PriorUpdate = (u32, bool, i64, i64);

/// Step 6 (RULES.md 3.2): refunds and voids against accepted purchases.
/// `named` holds, partition by partition, each reference's row and the
/// first row of the id it names (`NO_PURCHASE` for none), in file order.
pub(super) fn link_references(
    context: &References,
    named: &[Vec<(u32, u32)>],
    linked: &mut Linked,
) {
    let decided: Vec<(Vec<RefDecision>, Vec<PriorUpdate>)> = named
        .par_iter()
        .map(|references| decide_partition(context, linked, references))
        .collect();
    for (decisions, updates) in decided {
        for decision in decisions {
            let index = decision.index as usize;
            if let Some((code, detail)) = decision.outcome {
                linked.rejected[index] = Some(code);
                linked.details.push((decision.index, detail));
            }
            linked.purchase_of[index] = decision.purchase;
            match PurchaseRef::decode(decision.purchase) {
                PurchaseRef::Row(row) => {
                    linked.category[index] = linked.category[row];
                    if decision.voids_purchase {
                        linked.voided[row] = true;
                    }
                }
                // A void of an earlier run's purchase never passes (it must
                // fall on the purchase's date); its totals come in `updates`.
                PurchaseRef::Prior(slot) => linked.category[index] = linked.prior[slot].category,
                PurchaseRef::None => {}
            }
            linked.fee_fen[index] = decision.fee_returned_fen;
        }
        for (slot, voided, refunded_fen, fee_returned_fen) in updates {
            let prior = &mut linked.prior[slot as usize];
            if let Some(purchase) = prior.entry.purchase.as_mut() {
                purchase.voided = voided;
                purchase.refunded_fen = refunded_fen;
                purchase.fee_returned_fen = fee_returned_fen;
                prior.changed = true;
            }
        }
    }
}

/// Id bytes shown in a sentence as a quoted string, lossily decoded only
/// when a sentence is written: most references are accepted and need none.
struct Lossy<'a>(&'a [u8]);

impl std::fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
    }
}

/// The sentence for a reference that names no accepted purchase of its
/// own merchant: no such id, an id that is not an accepted purchase, and
/// the purchase of another merchant all read the same (D78): "is not an
/// accepted purchase", which the merchant reads as "of yours". A merchant's
/// rejects must not learn that an id belongs to someone else, and a stream
/// partition, which holds only some merchants' rows, cannot tell those
/// cases apart, yet must write what the batch run writes. With a starting
/// state, the sentence says how far back the index of earlier runs reaches.
fn not_an_accepted_purchase(orig_text: &Lossy, index_first_day: Option<Day>) -> String {
    match index_first_day {
        Some(first) if first > Day::MIN => format!(
            "orig_txn_id {orig_text:?} is not an accepted purchase of this run, nor in the index of earlier runs, which keeps ids from {} on (refund_retention_days)",
            calendar::format_date(first)
        ),
        _ => format!("orig_txn_id {orig_text:?} is not an accepted purchase"),
    }
}

/// Checks a reference against its purchase before the group rules: same
/// merchant, not earlier, within retention. `None` when it passes.
fn reference_problem(
    txn: &Txn,
    orig_text: &Lossy,
    purchase_merchant: bool,
    purchase_instant: Instant,
    purchase_day: Day,
    context: &References,
) -> Option<String> {
    let settings = context.settings;
    if !purchase_merchant {
        Some(not_an_accepted_purchase(orig_text, context.index_first_day))
    } else if txn.instant() < purchase_instant {
        Some(format!("ts is earlier than that of purchase {orig_text:?}"))
    } else if i64::from(txn.business_day) - i64::from(purchase_day)
        > i64::from(settings.refund_retention_days)
    {
        Some(format!(
            "business date {} is more than refund_retention_days ({}) after purchase {orig_text:?} on {}",
            calendar::format_date(txn.business_day),
            settings.refund_retention_days,
            calendar::format_date(purchase_day)
        ))
    } else {
        None
    }
}

fn decide_partition(
    context: &References,
    linked: &Linked,
    references: &[(u32, u32)],
) -> (Vec<RefDecision>, Vec<PriorUpdate>) {
    let References {
        parsed, settings, ..
    } = *context;
    let txns = &parsed.txns;
    let fee_fen = &linked.fee_fen;
    let mut decisions = Vec::with_capacity(references.len());
    let mut grouped: Vec<(u32, u32)> = Vec::with_capacity(references.len());
    for &(index, first) in references {
        // Rejected in step 3, 4 or 5: not a reference to judge.
        if !linked.accepted(index as usize) {
            continue;
        }
        let txn = &txns[index as usize];
        let orig = parsed.orig_txn_id(txn);
        let orig_text = Lossy(orig);
        let reject = |detail: String| RefDecision {
            index,
            purchase: NO_PURCHASE,
            outcome: Some((RejectCode::BadReference, detail)),
            fee_returned_fen: 0,
            voids_purchase: false,
        };
        // An id the starting state holds was taken before any row of this
        // run: it is the one a reference names.
        if let Ok(at) = context
            .prior_refs
            .binary_search_by_key(&index, |&(row, _)| row)
        {
            let slot = context.prior_refs[at].1;
            let prior = &linked.prior[slot as usize];
            let Some(purchase) = &prior.entry.purchase else {
                decisions.push(reject(format!(
                    "orig_txn_id {orig_text:?} is not an accepted purchase (an earlier run took it on {} for another row)",
                    calendar::format_date(prior.entry.business_day)
                )));
                continue;
            };
            let same_merchant =
                purchase.merchant_id == context.merchants.get(txn.merchant).id.as_bytes();
            let instant = Instant {
                unix_s: purchase.unix_s,
                nanos: purchase.nanos,
            };
            match reference_problem(
                txn,
                &orig_text,
                same_merchant,
                instant,
                prior.entry.business_day,
                context,
            ) {
                Some(detail) => decisions.push(reject(detail)),
                None => grouped.push((PRIOR_BIT | slot, index)),
            }
            continue;
        }
        // `first` is the first row of the id; an accepted purchase is always
        // the first (and only) row that passed steps 1 and 2 with it.
        let Some(purchase_index) = (first != NO_PURCHASE)
            .then_some(first)
            .filter(|&j| txns[j as usize].kind == Kind::Purchase && linked.accepted(j as usize))
        else {
            decisions.push(reject(not_an_accepted_purchase(
                &orig_text,
                context.index_first_day,
            )));
            continue;
        };
        let purchase = &txns[purchase_index as usize];
        match reference_problem(
            txn,
            &orig_text,
            purchase.merchant == txn.merchant,
            purchase.instant(),
            purchase.business_day,
            context,
        ) {
            Some(detail) => decisions.push(reject(detail)),
            None => grouped.push((purchase_index, index)),
        }
    }
    // Each purchase's refunds and voids together, in (ts, file order) order.
    grouped.sort_unstable_by_key(|&(purchase, index)| {
        (purchase, parsed.txns[index as usize].instant(), index)
    });
    let mut updates = Vec::new();
    for group in grouped.chunk_by(|a, b| a.0 == b.0) {
        let purchase_key = group[0].0;
        let prior_slot = match PurchaseRef::decode(purchase_key) {
            PurchaseRef::Prior(slot) => Some(slot),
            _ => None,
        };
        let original = if let Some(slot) = prior_slot {
            let prior = &linked.prior[slot];
            let p = prior.entry.purchase.as_ref().expect("a prior purchase");
            Original {
                amount_fen: p.amount_fen,
                business_day: prior.entry.business_day,
                fee_fen: p.fee_fen,
                voided: p.voided,
                refunded_fen: p.refunded_fen,
                fee_returned_fen: p.fee_returned_fen,
            }
        } else {
            let purchase = &parsed.txns[purchase_key as usize];
            Original {
                amount_fen: purchase.amount_fen,
                business_day: purchase.business_day,
                fee_fen: fee_fen[purchase_key as usize],
                voided: false,
                refunded_fen: 0,
                fee_returned_fen: 0,
            }
        };
        let mut voided = original.voided;
        let mut any_accepted = original.voided || original.refunded_fen > 0;
        let mut refunded_fen = original.refunded_fen;
        let mut returned_fen = original.fee_returned_fen;
        for &(_, index) in group {
            let txn = &parsed.txns[index as usize];
            let mut decision = RefDecision {
                index,
                purchase: purchase_key,
                outcome: None,
                fee_returned_fen: 0,
                voids_purchase: false,
            };
            let reject = |code, detail: String| Some((code, detail));
            match txn.kind {
                Kind::Void if any_accepted => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        "the purchase already has an accepted refund or void".into(),
                    );
                }
                Kind::Void if txn.business_day != original.business_day => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        "a void must fall on its purchase's business date".into(),
                    );
                }
                Kind::Void if txn.amount_fen != original.amount_fen => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        format!(
                            "a void must carry its purchase's amount {}",
                            money::format_fen(original.amount_fen.into())
                        ),
                    );
                }
                Kind::Void => {
                    voided = true;
                    any_accepted = true;
                    decision.voids_purchase = true;
                }
                _ if voided => {
                    decision.outcome =
                        reject(RejectCode::BadReference, "the purchase was voided".into());
                }
                _ if refunded_fen + txn.amount_fen > original.amount_fen => {
                    decision.outcome = reject(
                        RejectCode::RefundExceedsOriginal,
                        format!(
                            "refunds would total {}, more than the purchase's {}",
                            money::format_fen((refunded_fen + txn.amount_fen).into()),
                            money::format_fen(original.amount_fen.into())
                        ),
                    );
                }
                _ => {
                    any_accepted = true;
                    refunded_fen += txn.amount_fen;
                    if settings.refund_fee == RefundFee::Proportional {
                        let returned_so_far = money::fee_returned_fen(
                            original.fee_fen,
                            refunded_fen,
                            original.amount_fen,
                            settings.rounding,
                        );
                        decision.fee_returned_fen = returned_so_far - returned_fen;
                        returned_fen = returned_so_far;
                    }
                }
            }
            decisions.push(decision);
        }
        let changed = voided != original.voided || refunded_fen != original.refunded_fen;
        if let Some(slot) = prior_slot.filter(|_| changed) {
            updates.push((slot as u32, voided, refunded_fen, returned_fen));
        }
    }
    (decisions, updates)
}
