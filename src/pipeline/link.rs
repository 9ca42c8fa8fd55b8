//! Steps 3 to 6 of RULES.md 3.3: duplicate ids, merchant and horizon
//! checks, limits, and the linking of refunds and voids to purchases.
//!
//! Duplicates and links are found in partitions by id hash, each partition
//! in file order, so the work splits across threads and the result does not
//! depend on how many there are. Ids are compared byte for byte: a hash
//! only chooses the partition.

use hashbrown::HashMap;

use rayon::prelude::*;

use crate::calendar::{self, Day};
use crate::config::{RefundFee, Settings, limits};
use crate::ingest::merchants::Merchants;
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::{Card, Kind, MERCHANT_UNKNOWN, Txn};
use crate::money;
use crate::pipeline::parse::Parsed;

/// The fate of one transaction that passed steps 1 and 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected(RejectCode, String),
}

/// What linking decided, per transaction (indexes match `Parsed::txns`).
pub struct Linked {
    pub outcomes: Vec<Outcome>,
    /// A purchase's fee as charged (before any void), a refund's fee
    /// returned; 0 for voids and rejected rows.
    pub fee_fen: Vec<i64>,
    /// The category index of a purchase, and of a refund's or void's
    /// purchase.
    pub category: Vec<u16>,
    /// Index of the purchase a refund or void refers to.
    pub purchase_of: Vec<u32>,
    /// Purchases cancelled by an accepted void.
    pub voided: Vec<bool>,
    /// Fee capped for this purchase.
    pub capped: Vec<bool>,
}

/// FNV-1a: a small, fixed hash, so that partitions never depend on a
/// random seed.
fn partition_of(id: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in id {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 40) as usize & (limits::LINK_PARTITIONS - 1)
}

fn partitions(indexes: impl Iterator<Item = (usize, usize)>) -> Vec<Vec<u32>> {
    let mut parts = vec![Vec::new(); limits::LINK_PARTITIONS];
    for (partition, index) in indexes {
        parts[partition].push(index as u32);
    }
    parts
}

/// Step 3: the first row with an id wins; later ones are duplicates.
fn mark_duplicates(parsed: &Parsed, outcomes: &mut [Outcome]) {
    let parts = partitions(
        parsed
            .txns
            .iter()
            .enumerate()
            .map(|(i, t)| (partition_of(parsed.id(t.txn_id)), i)),
    );
    let found: Vec<Vec<(u32, u32)>> = parts
        .par_iter()
        .map(|part| {
            let mut first_by_id: HashMap<&[u8], u32> = HashMap::with_capacity(part.len());
            let mut duplicates = Vec::new();
            for &index in part {
                let id = parsed.id(parsed.txns[index as usize].txn_id);
                match first_by_id.get(id) {
                    Some(&first) => duplicates.push((index, first)),
                    None => {
                        first_by_id.insert(id, index);
                    }
                }
            }
            duplicates
        })
        .collect();
    for (index, first) in found.into_iter().flatten() {
        let first = &parsed.txns[first as usize];
        outcomes[index as usize] = Outcome::Rejected(
            RejectCode::DuplicateTxnId,
            format!(
                "txn_id is already taken by the row on line {} (file {})",
                first.line,
                first.file_index + 1
            ),
        );
    }
}

/// Steps 4 and 5 for one row.
fn check_row(
    txn: &Txn,
    parsed: &Parsed,
    settings: &Settings,
    merchants: &Merchants,
    through: Option<Day>,
) -> Outcome {
    let reject = |code, detail: String| Outcome::Rejected(code, detail);
    if txn.merchant == MERCHANT_UNKNOWN {
        let id = String::from_utf8_lossy(parsed.id(txn.unknown_merchant_id));
        return reject(
            RejectCode::UnknownMerchant,
            format!("merchant_id {id:?} is not in master data"),
        );
    }
    let merchant = merchants.get(txn.merchant);
    let day = txn.business_day;
    if day < merchant.activated_on || merchant.deactivated_on.is_some_and(|last| day > last) {
        let active_to = merchant
            .deactivated_on
            .map_or_else(|| "on".to_string(), calendar::format_date);
        return reject(
            RejectCode::MerchantInactive,
            format!(
                "business date {} is outside the merchant's active dates {} to {}",
                calendar::format_date(day),
                calendar::format_date(merchant.activated_on),
                active_to
            ),
        );
    }
    if let Some(last) = through
        && day > last
    {
        return reject(
            RejectCode::BeyondHorizon,
            format!(
                "business date {} is after --through {}",
                calendar::format_date(day),
                calendar::format_date(last)
            ),
        );
    }
    if txn.kind == Kind::Purchase && txn.amount_fen > settings.max_txn_amount_fen {
        return reject(
            RejectCode::OverLimit,
            format!(
                "amount {} is above max_txn_amount {}",
                money::format_fen(txn.amount_fen.into()),
                money::format_fen(settings.max_txn_amount_fen.into())
            ),
        );
    }
    Outcome::Accepted
}

/// The category and fee of an accepted purchase (RULES.md 3.1).
fn purchase_fee(txn: &Txn, settings: &Settings, merchants: &Merchants) -> (u16, i64, bool) {
    let mcc = if txn.mcc == crate::ingest::txn::MCC_NONE {
        merchants.get(txn.merchant).mcc
    } else {
        txn.mcc
    };
    let index = settings.categories.index_of(mcc);
    let category = settings.categories.get(index);
    let (rate_ppm, cap_fen) = match txn.card {
        Card::Debit => (category.debit_rate_ppm, category.debit_cap_fen),
        Card::Credit => (category.credit_rate_ppm, category.credit_cap_fen),
        Card::NotApplicable => unreachable!("a purchase always has a card"),
    };
    let fee_fen = money::fee_fen(txn.amount_fen, rate_ppm, settings.rounding);
    match cap_fen {
        Some(cap) if fee_fen > cap => (index, cap, true),
        _ => (index, fee_fen, false),
    }
}

/// Runs steps 3 to 6 over parsed transactions.
pub fn link(
    parsed: &Parsed,
    settings: &Settings,
    merchants: &Merchants,
    through: Option<Day>,
) -> Linked {
    let count = parsed.txns.len();
    let mut outcomes = vec![Outcome::Accepted; count];
    mark_duplicates(parsed, &mut outcomes);
    outcomes
        .par_iter_mut()
        .zip(parsed.txns.par_iter())
        .for_each(|(outcome, txn)| {
            if *outcome == Outcome::Accepted {
                *outcome = check_row(txn, parsed, settings, merchants, through);
            }
        });

    let mut fee_fen = vec![0i64; count];
    let mut category = vec![0u16; count];
    let mut capped = vec![false; count];
    fee_fen
        .par_iter_mut()
        .zip(category.par_iter_mut())
        .zip(capped.par_iter_mut())
        .enumerate()
        .for_each(|(i, ((fee, cat), cap))| {
            let txn = &parsed.txns[i];
            if txn.kind == Kind::Purchase && outcomes[i] == Outcome::Accepted {
                (*cat, *fee, *cap) = purchase_fee(txn, settings, merchants);
            }
        });

    let mut linked = Linked {
        outcomes,
        fee_fen,
        category,
        purchase_of: vec![u32::MAX; count],
        voided: vec![false; count],
        capped,
    };
    link_references(parsed, settings, &mut linked);
    linked
}

/// A decision about one refund or void.
struct RefDecision {
    index: u32,
    purchase: u32,
    outcome: Outcome,
    fee_returned_fen: i64,
    voids_purchase: bool,
}

/// Step 6 (RULES.md 3.2): refunds and voids against accepted purchases.
fn link_references(parsed: &Parsed, settings: &Settings, linked: &mut Linked) {
    let accepted = |i: usize| linked.outcomes[i] == Outcome::Accepted;
    let purchase_parts = partitions(
        (0..parsed.txns.len())
            .filter(|&i| accepted(i) && parsed.txns[i].kind == Kind::Purchase)
            .map(|i| (partition_of(parsed.id(parsed.txns[i].txn_id)), i)),
    );
    let reference_parts = partitions(
        (0..parsed.txns.len())
            .filter(|&i| accepted(i) && parsed.txns[i].kind != Kind::Purchase)
            .map(|i| (partition_of(parsed.id(parsed.txns[i].orig_txn_id)), i)),
    );
    let decisions: Vec<Vec<RefDecision>> = purchase_parts
        .par_iter()
        .zip(reference_parts.par_iter())
        .map(|(purchases, references)| {
            decide_partition(parsed, settings, &linked.fee_fen, purchases, references)
        })
        .collect();
    for decision in decisions.into_iter().flatten() {
        let index = decision.index as usize;
        linked.outcomes[index] = decision.outcome;
        linked.purchase_of[index] = decision.purchase;
        if decision.purchase != u32::MAX {
            linked.category[index] = linked.category[decision.purchase as usize];
        }
        linked.fee_fen[index] = decision.fee_returned_fen;
        if decision.voids_purchase {
            linked.voided[decision.purchase as usize] = true;
        }
    }
}

fn decide_partition(
    parsed: &Parsed,
    settings: &Settings,
    fee_fen: &[i64],
    purchases: &[u32],
    references: &[u32],
) -> Vec<RefDecision> {
    let by_id: HashMap<&[u8], u32> = purchases
        .iter()
        .map(|&i| (parsed.id(parsed.txns[i as usize].txn_id), i))
        .collect();
    let mut decisions = Vec::with_capacity(references.len());
    let mut grouped: Vec<(u32, u32)> = Vec::with_capacity(references.len());
    for &index in references {
        let txn = &parsed.txns[index as usize];
        let orig_text = String::from_utf8_lossy(parsed.id(txn.orig_txn_id));
        let reject = |detail: String| RefDecision {
            index,
            purchase: u32::MAX,
            outcome: Outcome::Rejected(RejectCode::BadReference, detail),
            fee_returned_fen: 0,
            voids_purchase: false,
        };
        let Some(&purchase_index) = by_id.get(parsed.id(txn.orig_txn_id)) else {
            decisions.push(reject(format!(
                "orig_txn_id {orig_text:?} is not an accepted purchase"
            )));
            continue;
        };
        let purchase = &parsed.txns[purchase_index as usize];
        if purchase.merchant != txn.merchant {
            decisions.push(reject(format!(
                "orig_txn_id {orig_text:?} is a purchase of another merchant"
            )));
        } else if txn.instant < purchase.instant {
            decisions.push(reject(format!(
                "ts is earlier than that of purchase {orig_text:?}"
            )));
        } else if i64::from(txn.business_day) - i64::from(purchase.business_day)
            > i64::from(settings.refund_retention_days)
        {
            decisions.push(reject(format!(
                "business date {} is more than refund_retention_days ({}) after purchase {orig_text:?} on {}",
                calendar::format_date(txn.business_day),
                settings.refund_retention_days,
                calendar::format_date(purchase.business_day)
            )));
        } else {
            grouped.push((purchase_index, index));
        }
    }
    // Each purchase's refunds and voids together, in (ts, file order) order.
    grouped.sort_unstable_by_key(|&(purchase, index)| {
        (purchase, parsed.txns[index as usize].instant, index)
    });
    for group in grouped.chunk_by(|a, b| a.0 == b.0) {
        let purchase_index = group[0].0;
        let purchase = &parsed.txns[purchase_index as usize];
        let purchase_fee_fen = fee_fen[purchase_index as usize];
        let mut voided = false;
        let mut any_accepted = false;
        let mut refunded_fen = 0i64;
        let mut returned_fen = 0i64;
        for &(_, index) in group {
            let txn = &parsed.txns[index as usize];
            let mut decision = RefDecision {
                index,
                purchase: purchase_index,
                outcome: Outcome::Accepted,
                fee_returned_fen: 0,
                voids_purchase: false,
            };
            let reject = |code, detail: String| Outcome::Rejected(code, detail);
            match txn.kind {
                Kind::Void if any_accepted => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        "the purchase already has an accepted refund or void".into(),
                    );
                }
                Kind::Void if txn.business_day != purchase.business_day => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        "a void must fall on its purchase's business date".into(),
                    );
                }
                Kind::Void if txn.amount_fen != purchase.amount_fen => {
                    decision.outcome = reject(
                        RejectCode::BadVoid,
                        format!(
                            "a void must carry its purchase's amount {}",
                            money::format_fen(purchase.amount_fen.into())
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
                _ if refunded_fen + txn.amount_fen > purchase.amount_fen => {
                    decision.outcome = reject(
                        RejectCode::RefundExceedsOriginal,
                        format!(
                            "refunds would total {}, more than the purchase's {}",
                            money::format_fen((refunded_fen + txn.amount_fen).into()),
                            money::format_fen(purchase.amount_fen.into())
                        ),
                    );
                }
                _ => {
                    any_accepted = true;
                    refunded_fen += txn.amount_fen;
                    if settings.refund_fee == RefundFee::Proportional {
                        let returned_so_far = money::fee_returned_fen(
                            purchase_fee_fen,
                            refunded_fen,
                            purchase.amount_fen,
                            settings.rounding,
                        );
                        decision.fee_returned_fen = returned_so_far - returned_fen;
                        returned_fen = returned_so_far;
                    }
                }
            }
            decisions.push(decision);
        }
    }
    decisions
}
