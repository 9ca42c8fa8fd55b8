//! The merged day's end state (`state/`): the partitions' merchants, and
//! ONE new index segment holding their new entries in the batch run's order
//! with the batch run's name numbering (docs/STREAM.md, step 8; D82).
//!
//! This module orders and renumbers entries the partitions wrote; it must
//! not change an entry's figures.

use std::path::PathBuf;

use crate::calendar::Day;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ingest::{Merchants, txn};
use crate::ledger::MerchantState;
use crate::output;
use crate::state::{self, Closing, Entry, Kept, Names, NewEntry, PriorState};

use super::folder::{IndexLine, read_index};

/// Files of the end state by name under `state/`, with their bytes.
pub(super) type StateFiles = Vec<(String, Vec<u8>)>;

/// The merged end state: one new index segment holding the partitions'
/// entries as the batch run orders them, the merchants of all partitions,
/// and the starting state's live segments.
pub(super) fn write_state(
    staging: &output::Staging,
    dirs: &[PathBuf],
    through: Day,
    settings: &Settings,
    all_merchants: &Merchants,
    prior: Option<&PriorState>,
) -> Result<(StateFiles, state::WrittenIndex)> {
    let first_day = through.saturating_sub(settings.refund_retention_days - 1);
    let mut closing: Vec<(String, MerchantState)> = Vec::new();
    // (where the row stands, partition, id) for this run's rows; for the
    // earlier runs' entries, the first reference in any partition and the
    // partition that changed it.
    let mut rows: Vec<((u32, u64), usize, Vec<u8>)> = Vec::new();
    let mut first_reference: hashbrown::HashMap<Vec<u8>, (u32, u64)> = hashbrown::HashMap::new();
    let mut changed: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut states = Vec::with_capacity(dirs.len());
    for (k, dir) in dirs.iter().enumerate() {
        let mut own = state::read(dir)?;
        closing.append(&mut own.merchants);
        own.index.first_day = Day::MIN;
        states.push(own);
        for line in read_index(dir)? {
            match line {
                IndexLine::Row { at, id } => rows.push((at, k, id)),
                IndexLine::Prior {
                    first_reference: at,
                    changed: is_changed,
                    id,
                } => {
                    let first = first_reference.entry(id.clone()).or_insert(at);
                    *first = (*first).min(at);
                    if is_changed {
                        changed.push((k, id));
                    }
                }
            }
        }
    }
    closing.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    rows.sort_by_key(|(at, _, _)| *at);
    changed.sort_by_key(|(_, id)| first_reference[id]);

    // The entries, read back from each partition's index, in the batch
    // run's order: rows, then the changed earlier entries.
    let order: Vec<(usize, &[u8])> = rows
        .iter()
        .map(|(_, k, id)| (*k, id.as_slice()))
        .chain(changed.iter().map(|(k, id)| (*k, id.as_slice())))
        .collect();
    let mut entries: Vec<Option<Entry>> = vec![None; order.len()];
    for (k, own) in states.iter().enumerate() {
        let positions: Vec<usize> = (0..order.len()).filter(|&at| order[at].0 == k).collect();
        let mut queries: Vec<(u64, u32)> = positions
            .iter()
            .enumerate()
            .map(|(number, &at)| (txn::id_hash(order[at].1), number as u32))
            .collect();
        let id_of = |number: u32| order[positions[number as usize]].1;
        for (number, entry) in own.index.lookup(&mut queries, &id_of)? {
            entries[positions[number as usize]] = Some(entry);
        }
    }
    let entries: Vec<Entry> = entries
        .into_iter()
        .zip(&order)
        .map(|(entry, (k, id))| {
            entry.ok_or_else(|| {
                Error::Conservation(format!(
                    "{}: the index lacks txn_id {:?} that partition-index.txt lists",
                    dirs[*k].display(),
                    String::from_utf8_lossy(id)
                ))
            })
        })
        .collect::<Result<_>>()?;

    // Names numbered as the batch run numbers them: master data and
    // configuration order, then names they no longer list, in entry order.
    let mut names = Names {
        merchants: all_merchants
            .all()
            .iter()
            .map(|m| m.id.as_bytes())
            .collect(),
        categories: (0..settings.categories.len())
            .map(|c| settings.categories.get(c as u16).name.as_bytes())
            .collect(),
    };
    let mut extra_merchants: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
    let mut extra_categories: hashbrown::HashMap<&[u8], u32> = hashbrown::HashMap::new();
    let mut new_entries: Vec<NewEntry> = Vec::with_capacity(entries.len());
    for entry in &entries {
        let purchase = entry.purchase.as_ref().map(|p| {
            let merchant = all_merchants.index_of(&p.merchant_id).unwrap_or_else(|| {
                *extra_merchants
                    .entry(p.merchant_id.as_slice())
                    .or_insert_with(|| {
                        names.merchants.push(&p.merchant_id);
                        (names.merchants.len() - 1) as u32
                    })
            });
            let category = settings
                .categories
                .position_of_name(&p.category)
                .map(u32::from)
                .unwrap_or_else(|| {
                    *extra_categories
                        .entry(p.category.as_slice())
                        .or_insert_with(|| {
                            names.categories.push(&p.category);
                            (names.categories.len() - 1) as u32
                        })
                });
            p.renamed(merchant, category)
        });
        new_entries.push(Entry {
            hash: txn::id_hash(&entry.id),
            id: &entry.id,
            business_day: entry.business_day,
            purchase,
        });
    }
    let kept = Kept {
        segments: prior
            .map(|prior| {
                prior
                    .segments
                    .iter()
                    .filter(|segment| segment.facts.last_day >= first_day)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        dir: prior.map(|p| p.dir.as_path()),
    };
    let written = state::write_index(
        staging.path(),
        Some(through),
        &kept,
        &names,
        new_entries.len(),
        &|at| new_entries[at].clone(),
    )?;
    let files = state::state_files(&Closing {
        horizon: Some(through),
        index_first_day: Some(first_day),
        merchants: closing.iter().map(|(id, s)| (id.as_str(), *s)).collect(),
        segments: &written.segments,
    });
    Ok((files, written))
}
