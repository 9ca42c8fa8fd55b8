//! Steps 3 to 6 of RULES.md 3.3: duplicate ids, the row checks of steps 4
//! and 5 (decided while parsing), and the linking of refunds and voids to
//! purchases (the rules of step 6 are in `references`).
//!
//! Rows are split into 64 partitions by the hash of their id (a reference
//! by the hash of `orig_txn_id`, which puts it with its purchase), each
//! partition kept in file order, and partitions run in parallel. Ids are
//! compared byte for byte: a hash only chooses the partition and the
//! bucket, so a collision can never reject a valid row. Nothing depends on
//! the thread count.
//!
//! With a starting state, the ids of earlier runs come from its index
//! (RULES.md 6): an id it holds is taken, and a reference it holds names
//! that earlier purchase, with its refunds so far.

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::calendar::{self, Day};
use crate::config::{Settings, limits};
use crate::error::Result;
use crate::ingest::merchants::Merchants;
use crate::ingest::reject::RejectCode;
use crate::ingest::txn::{self, Card, Kind, RowContext, Txn};
use crate::money;
use crate::pipeline::parse::Parsed;
use crate::pipeline::references;
use crate::state::{Entry, Index};

/// Marks a `purchase_of` that names `Linked::prior[slot]` rather than a row
/// of this run. Rows are fewer than 2^31.
pub const PRIOR_BIT: u32 = 1 << 31;
/// The `purchase_of` of a row that names no purchase.
pub const NO_PURCHASE: u32 = u32::MAX;

/// What a `purchase_of` entry names, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurchaseRef {
    None,
    /// A purchase of this run: its row.
    Row(usize),
    /// A purchase of an earlier run: its slot in `Linked::prior`.
    Prior(usize),
}

impl PurchaseRef {
    pub fn decode(code: u32) -> PurchaseRef {
        match code {
            NO_PURCHASE => PurchaseRef::None,
            code if code & PRIOR_BIT != 0 => PurchaseRef::Prior((code & !PRIOR_BIT) as usize),
            row => PurchaseRef::Row(row as usize),
        }
    }
}

/// A purchase of an earlier run that this run's refunds or voids name.
pub struct PriorPurchase {
    /// As the index holds it, with the totals after this run.
    pub entry: Entry,
    /// Its category in this run's configuration, found by name.
    pub category: u16,
    /// Whether this run accepted a refund or void of it.
    pub changed: bool,
}

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
    /// Earlier runs' purchases named by this run's refunds and voids.
    pub prior: Vec<PriorPurchase>,
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
            prior: Vec::new(),
        }
    }

    /// The card of the purchase behind an accepted row: its own, or that of
    /// the purchase a refund or void names.
    pub fn purchase_card(&self, parsed: &Parsed, index: usize) -> Card {
        let txn = &parsed.txns[index];
        if txn.kind == Kind::Purchase {
            return txn.card;
        }
        match PurchaseRef::decode(self.purchase_of[index]) {
            PurchaseRef::Row(row) => parsed.txns[row].card,
            PurchaseRef::Prior(slot) => self.prior[slot]
                .entry
                .purchase
                .as_ref()
                .map_or(Card::NotApplicable, |p| p.card),
            PurchaseRef::None => Card::NotApplicable,
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

/// A row dealt into a partition, with the hash that put it there: the
/// partition's hash table needs only the hash, so a row (64 bytes, at a
/// random place in the run) is read only when its id must be compared.
/// Three `u32`s keep it at 12 bytes.
#[derive(Clone, Copy, Debug)]
struct Keyed {
    index: u32,
    hash_low: u32,
    hash_high: u32,
}

impl Keyed {
    fn new(index: u32, hash: u64) -> Keyed {
        Keyed {
            index,
            hash_low: hash as u32,
            hash_high: (hash >> 32) as u32,
        }
    }

    fn hash(&self) -> u64 {
        u64::from(self.hash_high) << 32 | u64::from(self.hash_low)
    }
}

/// Deals the rows that `select` picks into partitions by `hash`, each in
/// file order: segments in parallel, then each partition concatenates its
/// share of every segment.
fn partitions(txns: &[Txn], select: impl Fn(usize, &Txn) -> Option<u64> + Sync) -> Vec<Vec<Keyed>> {
    let segments: Vec<Vec<Vec<Keyed>>> = txns
        .par_chunks(SEGMENT_ROWS)
        .enumerate()
        .map(|(segment, rows)| {
            // Hashes spread rows evenly: a little over an even share
            // each, so that parts rarely grow (a grown part is copied).
            let share = rows.len() / limits::LINK_PARTITIONS;
            let mut parts: Vec<Vec<Keyed>> = (0..limits::LINK_PARTITIONS)
                .map(|_| Vec::with_capacity(share + share / 8 + 16))
                .collect();
            for (offset, txn) in rows.iter().enumerate() {
                let index = segment * SEGMENT_ROWS + offset;
                if let Some(hash) = select(index, txn) {
                    parts[partition_of(hash)].push(Keyed::new(index as u32, hash));
                }
            }
            parts
        })
        .collect();
    (0..limits::LINK_PARTITIONS)
        .into_par_iter()
        .map(|p| {
            let mut part = Vec::with_capacity(segments.iter().map(|parts| parts[p].len()).sum());
            for parts in &segments {
                part.extend_from_slice(&parts[p]);
            }
            part
        })
        .collect()
}

/// The sentence for a step 4 or 5 rejection.
pub fn describe_row_check(
    parsed: &Parsed,
    txn: &Txn,
    code: RejectCode,
    context: &RowContext,
) -> String {
    let RowContext {
        settings,
        merchants,
        through,
        state_horizon,
        ..
    } = *context;
    let day = calendar::format_date(txn.business_day);
    match code {
        RejectCode::LateTransaction => format!(
            "business date {day} is not after {}, the horizon of the state this run starts from (--state-in); that date is settled: book the transaction as an adjustment",
            state_horizon.map(calendar::format_date).unwrap_or_default()
        ),
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
        merchants.hot(txn.merchant).mcc
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

/// The first row of an id in a partition's table, with the low 32 bits of
/// the id's hash: the table's seven-bit tags match another id about once
/// in ten probes, and comparing these bits first spares those probes the
/// random reads of two rows and their ids.
#[derive(Clone, Copy, Debug)]
struct FirstRow {
    hash_low: u32,
    index: u32,
}

impl FirstRow {
    /// Whether this is the first row of the id `id` with hash `hash`.
    fn is(&self, hash: u64, id: &[u8], parsed: &Parsed) -> bool {
        self.hash_low == hash as u32 && parsed.txn_id(&parsed.txns[self.index as usize]) == id
    }
}

/// What one partition's ids told: the duplicates with their first row
/// (step 3), and for each reference dealt to it, in file order, the first
/// row of the id it names, `NO_PURCHASE` where no row has that id (step 6
/// judges it once every partition's duplicates are known).
struct FirstRows {
    duplicates: Vec<(u32, u32)>,
    named: Vec<(u32, u32)>,
}

/// Step 3 in one partition: the first row with an id wins. Then each of
/// the partition's references finds the first row of the id it names.
/// `table` is the worker's, emptied here and reused partition after
/// partition: the tables of all partitions at once would take 150 MB of
/// fresh pages at 10M rows.
fn first_rows(
    parsed: &Parsed,
    part: &[Keyed],
    references: &[Keyed],
    table: &mut HashTable<FirstRow>,
) -> FirstRows {
    let txns = &parsed.txns;
    table.clear();
    table.reserve(part.len(), |first: &FirstRow| {
        txns[first.index as usize].id_hash
    });
    let mut duplicates = Vec::new();
    for keyed in part {
        let index = keyed.index;
        let hash = keyed.hash();
        // One probe per row; the rows and their ids (in the chunk arenas)
        // are read only when a stored row's tag and hash bits match, which
        // is rare.
        let entry = table.entry(
            hash,
            |first: &FirstRow| first.is(hash, parsed.txn_id(&txns[index as usize]), parsed),
            |first: &FirstRow| txns[first.index as usize].id_hash,
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(first) => {
                duplicates.push((index, first.get().index));
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(FirstRow {
                    hash_low: hash as u32,
                    index,
                });
            }
        }
    }
    let named = references
        .iter()
        .map(|keyed| {
            let hash = keyed.hash();
            let orig = parsed.orig_txn_id(&txns[keyed.index as usize]);
            let first = table.find(hash, |first| first.is(hash, orig, parsed));
            (keyed.index, first.map_or(NO_PURCHASE, |first| first.index))
        })
        .collect();
    FirstRows { duplicates, named }
}

/// What an earlier run's index knows about this run's rows.
#[derive(Default)]
struct PriorHits {
    /// Rows whose `txn_id` an earlier run took, with that row's date.
    taken: Vec<(u32, Day)>,
    /// Rows whose `orig_txn_id` the index holds, with their slot in `ids`.
    references: Vec<(u32, u32)>,
    /// The entries the references name, one per id.
    ids: Vec<Entry>,
}

/// Looks every id and reference of the run up in the starting state's
/// index, in one pass over each segment.
fn lookup_prior(parsed: &Parsed, index: &Index) -> Result<PriorHits> {
    let txns = &parsed.txns;
    // Query 2i is row i's id, 2i + 1 its reference.
    let mut queries: Vec<(u64, u32)> = txns
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, txn)| {
            let reference = (txn.kind != Kind::Purchase && txn.row_check.is_none())
                .then(|| (txn::id_hash(parsed.orig_txn_id(txn)), 2 * i as u32 + 1));
            std::iter::once((txn.id_hash, 2 * i as u32)).chain(reference)
        })
        .collect();
    let id_of = |query: u32| {
        let txn = &txns[(query / 2) as usize];
        if query.is_multiple_of(2) {
            parsed.txn_id(txn)
        } else {
            parsed.orig_txn_id(txn)
        }
    };
    let mut hits = PriorHits::default();
    let mut slots: hashbrown::HashMap<Vec<u8>, u32> = hashbrown::HashMap::new();
    for (query, entry) in index.lookup(&mut queries, &id_of)? {
        let row = query / 2;
        if query.is_multiple_of(2) {
            hits.taken.push((row, entry.business_day));
        } else {
            let next = hits.ids.len() as u32;
            let slot = *slots.entry(entry.id.clone()).or_insert(next);
            if slot == next {
                hits.ids.push(entry);
            }
            hits.references.push((row, slot));
        }
    }
    Ok(hits)
}

/// Step 3 as judged outside the run (stream mode's publisher, which reads
/// the whole input in file order): for each row that is a duplicate, the
/// first row of its id, both as (file index, line), sorted by row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    sorted: Vec<((u32, u64), (u32, u64))>,
}

impl Verdicts {
    /// The verdicts in any order; a row judged twice keeps its first.
    pub fn new(mut verdicts: Vec<((u32, u64), (u32, u64))>) -> Verdicts {
        verdicts.sort_by_key(|&(row, _)| row);
        verdicts.dedup_by_key(|&mut (row, _)| row);
        Verdicts { sorted: verdicts }
    }

    /// The first row of the id of the row on `line` of file `file_index`,
    /// when that row is a duplicate.
    pub fn first_of(&self, file_index: u32, line: u64) -> Option<(u32, u64)> {
        self.sorted
            .binary_search_by_key(&(file_index, line), |&(row, _)| row)
            .ok()
            .map(|at| self.sorted[at].1)
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// The sentence of a step 3 rejection: the first row of the id.
fn taken_by(first_line: u64, first_file_index: u32) -> String {
    format!(
        "txn_id is already taken by the row on line {first_line} (file {})",
        first_file_index + 1
    )
}

/// Runs steps 3 to 6 over parsed transactions, with the index of the state
/// the run starts from, if any.
pub fn link(
    parsed: &Parsed,
    settings: &Settings,
    merchants: &Merchants,
    prior: Option<&Index>,
) -> Result<Linked> {
    link_judged(parsed, settings, merchants, prior, None)
}

/// `link`, with step 3 taken from `verdicts` when given: they are
/// authoritative, because the rows of a run that holds only some
/// merchants are a subset of the input, and a duplicate among them is a
/// duplicate in the whole input (docs/STREAM.md). An id an earlier run took
/// still wins over them, as it wins over this run's own duplicates.
pub fn link_judged(
    parsed: &Parsed,
    settings: &Settings,
    merchants: &Merchants,
    prior: Option<&Index>,
    verdicts: Option<&Verdicts>,
) -> Result<Linked> {
    let txns = &parsed.txns;
    let count = txns.len();
    assert!(count < PRIOR_BIT as usize, "rows are fewer than 2^31");
    let hits = match prior {
        Some(index) => lookup_prior(parsed, index)?,
        None => PriorHits::default(),
    };
    let id_parts = partitions(txns, |_, txn| Some(txn.id_hash));
    // A reference goes by the hash of the id it names, which puts it with
    // that id's rows. Those rejected in step 3 are left out when step 6
    // judges them.
    let reference_parts = partitions(txns, |_, txn| {
        (txn.kind != Kind::Purchase && txn.row_check.is_none())
            .then(|| txn::id_hash(parsed.orig_txn_id(txn)))
    });
    let (duplicates, named): (Vec<_>, Vec<_>) = id_parts
        .par_iter()
        .zip(reference_parts.par_iter())
        .map_init(HashTable::new, |table, (part, references)| {
            let found = first_rows(parsed, part, references, table);
            (found.duplicates, found.named)
        })
        .unzip();
    drop((id_parts, reference_parts));

    let mut rejected: Vec<Option<RejectCode>> = txns.par_iter().map(|txn| txn.row_check).collect();
    let mut details = Vec::new();
    // An id an earlier run took is taken for every row of this run.
    for &(index, day) in &hits.taken {
        rejected[index as usize] = Some(RejectCode::DuplicateTxnId);
        details.push((
            index,
            format!(
                "txn_id is already taken by a row of an earlier run (business date {})",
                calendar::format_date(day)
            ),
        ));
    }
    let taken_earlier = |index: u32| {
        hits.taken
            .binary_search_by_key(&index, |&(row, _)| row)
            .is_ok()
    };
    match verdicts {
        None => {
            for (index, first) in duplicates.into_iter().flatten() {
                if taken_earlier(index) {
                    continue;
                }
                rejected[index as usize] = Some(RejectCode::DuplicateTxnId);
                let first = &txns[first as usize];
                details.push((
                    index,
                    taken_by(u64::from(first.line), u32::from(first.file_index)),
                ));
            }
        }
        Some(verdicts) => {
            drop(duplicates);
            for (index, txn) in txns.iter().enumerate() {
                let index = index as u32;
                let Some((file_index, line)) =
                    verdicts.first_of(u32::from(txn.file_index), u64::from(txn.line))
                else {
                    continue;
                };
                if taken_earlier(index) {
                    continue;
                }
                rejected[index as usize] = Some(RejectCode::DuplicateTxnId);
                details.push((index, taken_by(line, file_index)));
            }
        }
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
        purchase_of: vec![NO_PURCHASE; count],
        voided: vec![false; count],
        capped,
        prior: hits
            .ids
            .into_iter()
            .map(|entry| PriorPurchase {
                category: entry
                    .purchase
                    .as_ref()
                    .map_or(0, |p| settings.categories.index_of_name(&p.category)),
                entry,
                changed: false,
            })
            .collect(),
    };
    let context = references::References {
        parsed,
        settings,
        merchants,
        prior_refs: &hits.references,
        index_first_day: prior.map(|index| index.first_day),
    };
    references::link_references(&context, &named, &mut linked);
    Ok(linked)
}
