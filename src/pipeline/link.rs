//! Steps 3 to 6 of RULES.md 3.3: duplicate ids, the row checks of steps 4
//! and 5 (decided while parsing), and the linking of refunds and voids to
//! purchases.
//!
//! Rows are split into 64 partitions by the hash of their id (a reference
//! by the hash of `orig_txn_id`, which puts it with its purchase), each
//! partition kept in file order, and partitions run in parallel. Ids are
//! compared byte for byte: a hash only chooses the partition and the
//! bucket, so a collision can never reject a valid row. Nothing depends on
//! the thread count.

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::calendar::{self, Day};
use crate::config::{RefundFee, Settings, limits};
use crate::ingest::merchants::Merchants;
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::{self, Card, Kind, Txn};
use crate::money;
use crate::pipeline::parse::Parsed;

/// What linking decided, per transaction (indexes match `Parsed::txns`).
pub struct Linked {
    /// `None` for an accepted row, else why it was rejected.
    pub rejected: Vec<Option<RejectCode>>,
    /// The sentence for each row rejected in steps 3 and 6, by row index.
    pub details: Vec<(u32, String)>,
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
    /// Purchases whose fee hit the cap.
    pub capped: Vec<bool>,
}

impl Linked {
    /// Decisions about no rows at all.
    pub fn empty() -> Linked {
        Linked {
            rejected: Vec::new(),
            details: Vec::new(),
            fee_fen: Vec::new(),
            category: Vec::new(),
            purchase_of: Vec::new(),
            voided: Vec::new(),
            capped: Vec::new(),
        }
    }

    pub fn accepted(&self, index: usize) -> bool {
        self.rejected[index].is_none()
    }
}

/// Rows per segment when rows are dealt into partitions in parallel.
const SEGMENT_ROWS: usize = 1 << 18;

/// The partition of a hash: middle bits, because the hash table itself
/// uses the low bits for the bucket and the top seven as a tag, and a
/// partition whose rows all shared their tag would compare ids on every
/// probe.
fn partition_of(hash: u64) -> usize {
    (hash >> 32) as usize & (limits::LINK_PARTITIONS - 1)
}

/// Deals the rows that `select` picks into partitions by `hash`, each in
/// file order: segments in parallel, then each partition concatenates its
/// share of every segment.
fn partitions(txns: &[Txn], select: impl Fn(usize, &Txn) -> Option<u64> + Sync) -> Vec<Vec<u32>> {
    let segments: Vec<Vec<Vec<u32>>> = txns
        .par_chunks(SEGMENT_ROWS)
        .enumerate()
        .map(|(segment, rows)| {
            let mut parts = vec![Vec::new(); limits::LINK_PARTITIONS];
            for (offset, txn) in rows.iter().enumerate() {
                let index = segment * SEGMENT_ROWS + offset;
                if let Some(hash) = select(index, txn) {
                    parts[partition_of(hash)].push(index as u32);
                }
            }
            parts
        })
        .collect();
    (0..limits::LINK_PARTITIONS)
        .into_par_iter()
        .map(|p| {
            segments
                .iter()
                .flat_map(|parts| parts[p].iter().copied())
                .collect()
        })
        .collect()
}

/// The sentence for a step 4 or 5 rejection.
pub fn describe_row_check(
    parsed: &Parsed,
    txn: &Txn,
    code: RejectCode,
    settings: &Settings,
    merchants: &Merchants,
    through: Option<Day>,
) -> String {
    let day = calendar::format_date(txn.business_day);
    match code {
        RejectCode::UnknownMerchant => {
            format!(
                "merchant_id {:?} is not in master data",
                String::from_utf8_lossy(parsed.unknown_merchant_id(txn))
            )
        }
        RejectCode::MerchantInactive => {
            let m = merchants.get(txn.merchant);
            let to = m
                .deactivated_on
                .map_or_else(|| "on".to_string(), calendar::format_date);
            format!(
                "business date {day} is outside the merchant's active dates {} to {to}",
                calendar::format_date(m.activated_on)
            )
        }
        RejectCode::BeyondHorizon => {
            format!(
                "business date {day} is after --through {}",
                through.map(calendar::format_date).unwrap_or_default()
            )
        }
        RejectCode::OverLimit => format!(
            "amount {} is above max_txn_amount {}",
            money::format_fen(txn.amount_fen.into()),
            money::format_fen(settings.max_txn_amount_fen.into())
        ),
        other => other.as_str().to_string(),
    }
}

/// The category and fee of an accepted purchase (RULES.md 3.1).
fn purchase_fee(txn: &Txn, settings: &Settings, merchants: &Merchants) -> (u16, i64, bool) {
    let mcc = if txn.mcc == txn::MCC_NONE {
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

/// Step 3 in one partition: the first row with an id wins. Returns the
/// table of first rows (for step 6) and the duplicates with their first.
fn first_rows(parsed: &Parsed, part: &[u32]) -> (HashTable<u32>, Vec<(u32, u32)>) {
    let txns = &parsed.txns;
    let mut table = HashTable::with_capacity(part.len());
    let mut duplicates = Vec::new();
    for &index in part {
        let txn = &txns[index as usize];
        let id = parsed.txn_id(txn);
        match table.find(txn.id_hash, |&first: &u32| {
            parsed.txn_id(&txns[first as usize]) == id
        }) {
            Some(&first) => duplicates.push((index, first)),
            None => {
                table.insert_unique(txn.id_hash, index, |&j: &u32| txns[j as usize].id_hash);
            }
        }
    }
    (table, duplicates)
}

/// Runs steps 3 to 6 over parsed transactions.
pub fn link(parsed: &Parsed, settings: &Settings, merchants: &Merchants) -> Linked {
    let txns = &parsed.txns;
    let count = txns.len();
    let id_parts = partitions(txns, |_, txn| Some(txn.id_hash));
    let (tables, duplicates): (Vec<HashTable<u32>>, Vec<_>) = id_parts
        .par_iter()
        .map(|part| first_rows(parsed, part))
        .unzip();
    drop(id_parts);

    let mut rejected: Vec<Option<RejectCode>> = txns.par_iter().map(|txn| txn.row_check).collect();
    let mut details = Vec::new();
    for (index, first) in duplicates.into_iter().flatten() {
        rejected[index as usize] = Some(RejectCode::DuplicateTxnId);
        let first = &txns[first as usize];
        details.push((
            index,
            format!(
                "txn_id is already taken by the row on line {} (file {})",
                first.line,
                first.file_index + 1
            ),
        ));
    }

    let mut fee_fen = vec![0i64; count];
    let mut category = vec![0u16; count];
    let mut capped = vec![false; count];
    fee_fen
        .par_iter_mut()
        .zip(category.par_iter_mut())
        .zip(capped.par_iter_mut())
        .zip(txns.par_iter().zip(rejected.par_iter()))
        .for_each(|(((fee, cat), cap), (txn, rejection))| {
            if txn.kind == Kind::Purchase && rejection.is_none() {
                (*cat, *fee, *cap) = purchase_fee(txn, settings, merchants);
            }
        });

    let mut linked = Linked {
        rejected,
        details,
        fee_fen,
        category,
        purchase_of: vec![u32::MAX; count],
        voided: vec![false; count],
        capped,
    };
    link_references(parsed, settings, &tables, &mut linked);
    linked
}

/// A decision about one refund or void.
struct RefDecision {
    index: u32,
    purchase: u32,
    outcome: Option<(RejectCode, String)>,
    fee_returned_fen: i64,
    voids_purchase: bool,
}

/// Step 6 (RULES.md 3.2): refunds and voids against accepted purchases.
fn link_references(
    parsed: &Parsed,
    settings: &Settings,
    tables: &[HashTable<u32>],
    linked: &mut Linked,
) {
    let reference_parts = partitions(&parsed.txns, |index, txn| {
        (txn.kind != Kind::Purchase && linked.rejected[index].is_none())
            .then(|| txn::id_hash(parsed.orig_txn_id(txn)))
    });
    let decisions: Vec<Vec<RefDecision>> = reference_parts
        .par_iter()
        .zip(tables.par_iter())
        .map(|(references, table)| decide_partition(parsed, settings, linked, table, references))
        .collect();
    for decision in decisions.into_iter().flatten() {
        let index = decision.index as usize;
        if let Some((code, detail)) = decision.outcome {
            linked.rejected[index] = Some(code);
            linked.details.push((decision.index, detail));
        }
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
    linked: &Linked,
    table: &HashTable<u32>,
    references: &[u32],
) -> Vec<RefDecision> {
    let txns = &parsed.txns;
    let fee_fen = &linked.fee_fen;
    let mut decisions = Vec::with_capacity(references.len());
    let mut grouped: Vec<(u32, u32)> = Vec::with_capacity(references.len());
    for &index in references {
        let txn = &txns[index as usize];
        let orig = parsed.orig_txn_id(txn);
        let orig_text = String::from_utf8_lossy(orig);
        let reject = |detail: String| RefDecision {
            index,
            purchase: u32::MAX,
            outcome: Some((RejectCode::BadReference, detail)),
            fee_returned_fen: 0,
            voids_purchase: false,
        };
        // The table holds the first row of each id; an accepted purchase is
        // always the first (and only) row that passed steps 1 and 2 with it.
        let found = table.find(txn::id_hash(orig), |&j: &u32| {
            parsed.txn_id(&txns[j as usize]) == orig
        });
        let Some(&purchase_index) = found
            .filter(|&&j| txns[j as usize].kind == Kind::Purchase && linked.accepted(j as usize))
        else {
            decisions.push(reject(format!(
                "orig_txn_id {orig_text:?} is not an accepted purchase"
            )));
            continue;
        };
        let purchase = &txns[purchase_index as usize];
        if purchase.merchant != txn.merchant {
            decisions.push(reject(format!(
                "orig_txn_id {orig_text:?} is a purchase of another merchant"
            )));
        } else if txn.instant() < purchase.instant() {
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
        (purchase, parsed.txns[index as usize].instant(), index)
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
