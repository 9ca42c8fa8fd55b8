//! Writes an index segment: records in the run's own order, in parallel
//! blocks written at their final offsets, then the sorted hash and
//! position columns, the name tables, and the header last.
//!
//! Memory holds 16 bytes per entry (the sort keys) and a few blocks, never
//! the segment. This module must not decide what goes into the index.

use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use super::format::{
    self, HEADER_BYTES, Header, Layout, NewEntry, RECORD_BYTES, SEGMENT_ENTRIES_MAX,
    SEGMENT_VERSION,
};
use crate::calendar::Day;
use crate::error::{Error, Result};

/// Entries encoded per block: each block is one parallel task and one write.
const BLOCK_ENTRIES: usize = 1 << 15;
/// Blocks in flight at once, which bounds the writer's memory.
const BLOCKS_IN_FLIGHT_MAX: usize = 16;
/// The sorted columns are built in this many passes, each over the hashes
/// whose top bits select it, so that at most a quarter of the sort keys is
/// in memory at once.
const SORT_PASSES: u64 = 4;

/// What a written segment is: the manifest lists these facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFacts {
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
    pub entries: u64,
    pub first_day: Day,
    pub last_day: Day,
}

/// The merchant and category names that entries number.
pub struct Names<'a> {
    pub merchants: Vec<&'a [u8]>,
    pub categories: Vec<&'a [u8]>,
}

/// One block's share of the first pass.
struct Scan {
    ids_bytes: usize,
    first_day: Day,
    last_day: Day,
}

/// Writes entries `0..count`, as `entry_at` gives them, as a segment at
/// `path`. `hash_at(i)` must equal `entry_at(i).hash` and be cheap: the
/// sorted columns are built from it in several passes. Entries must have
/// distinct ids.
pub fn write_segment<'a>(
    path: &Path,
    names: &Names,
    count: usize,
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
    hash_at: &(impl Fn(usize) -> u64 + Sync),
) -> Result<SegmentFacts> {
    assert!(count <= SEGMENT_ENTRIES_MAX, "segment too large");
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let file = std::fs::File::create(path).map_err(io)?;
    let layout = Layout::new(count);
    let blocks: Vec<std::ops::Range<usize>> = (0..count)
        .step_by(BLOCK_ENTRIES)
        .map(|start| start..(start + BLOCK_ENTRIES).min(count))
        .collect();

    // First pass, in parallel and in the run's order: id sizes (for each
    // block's offset into the ids area) and the date range.
    let scans: Vec<Scan> = blocks
        .par_iter()
        .map(|block| {
            let mut scan = Scan {
                ids_bytes: 0,
                first_day: Day::MAX,
                last_day: Day::MIN,
            };
            for index in block.clone() {
                let entry = entry_at(index);
                scan.ids_bytes += entry.id.len();
                scan.first_day = scan.first_day.min(entry.business_day);
                scan.last_day = scan.last_day.max(entry.business_day);
            }
            scan
        })
        .collect();
    let mut id_bases = Vec::with_capacity(blocks.len());
    let mut ids_bytes = 0usize;
    for scan in &scans {
        id_bases.push(ids_bytes);
        ids_bytes += scan.ids_bytes;
    }
    assert!(u32::try_from(ids_bytes).is_ok(), "segment ids too large");
    let first_day = scans.iter().map(|s| s.first_day).min().unwrap_or(0);
    let last_day = scans.iter().map(|s| s.last_day).max().unwrap_or(0);
    let (first_day, last_day) = if count == 0 {
        (0, 0)
    } else {
        (first_day, last_day)
    };

    // Second pass: records and ids, block by block at their final offsets;
    // the CRCs of the blocks combine in file order.
    let mut records_crc = crc32fast::Hasher::new();
    let mut ids_crc = crc32fast::Hasher::new();
    for wave in blocks
        .iter()
        .zip(&id_bases)
        .collect::<Vec<_>>()
        .chunks(BLOCKS_IN_FLIGHT_MAX)
    {
        let written: Vec<(crc32fast::Hasher, crc32fast::Hasher)> = wave
            .par_iter()
            .map(|&(block, id_base)| -> Result<_> {
                let id_base = *id_base;
                let mut records = Vec::with_capacity(block.len() * RECORD_BYTES);
                let mut ids = Vec::new();
                for index in block.clone() {
                    let entry = entry_at(index);
                    records
                        .extend_from_slice(&format::encode(&entry, (id_base + ids.len()) as u32));
                    ids.extend_from_slice(entry.id);
                }
                let at = layout.records_at + block.start * RECORD_BYTES;
                file.write_all_at(&records, at as u64).map_err(io)?;
                file.write_all_at(&ids, (layout.ids_at + id_base) as u64)
                    .map_err(io)?;
                let (mut r, mut i) = (crc32fast::Hasher::new(), crc32fast::Hasher::new());
                r.update(&records);
                i.update(&ids);
                Ok((r, i))
            })
            .collect::<Result<_>>()?;
        for (r, i) in written {
            records_crc.combine(&r);
            ids_crc.combine(&i);
        }
    }

    // The sorted columns: hashes, and for each the number of its record,
    // a quarter of the hash space per pass, written in blocks.
    let mut hashes_crc = crc32fast::Hasher::new();
    let mut positions_crc = crc32fast::Hasher::new();
    let mut written = 0usize;
    for pass in 0..SORT_PASSES {
        let mut keys: Vec<(u64, u32)> = blocks
            .par_iter()
            .flat_map_iter(|block| {
                block.clone().filter_map(|index| {
                    let hash = hash_at(index);
                    (hash >> 62 == pass).then_some((hash, index as u32))
                })
            })
            .collect();
        keys.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| entry_at(a.1 as usize).id.cmp(entry_at(b.1 as usize).id))
        });
        for block in keys.chunks(BLOCK_ENTRIES) {
            let hashes: Vec<u8> = block
                .iter()
                .flat_map(|(hash, _)| hash.to_le_bytes())
                .collect();
            let positions: Vec<u8> = block
                .iter()
                .flat_map(|(_, index)| index.to_le_bytes())
                .collect();
            file.write_all_at(&hashes, (HEADER_BYTES + 8 * written) as u64)
                .map_err(io)?;
            file.write_all_at(&positions, (layout.positions_at + 4 * written) as u64)
                .map_err(io)?;
            hashes_crc.update(&hashes);
            positions_crc.update(&positions);
            written += block.len();
        }
    }
    assert_eq!(written, count, "every entry is in one sort pass");
    let mut tables = Vec::with_capacity(
        format::names_bytes(&names.merchants) + format::names_bytes(&names.categories),
    );
    format::encode_names(&names.merchants, &mut tables);
    format::encode_names(&names.categories, &mut tables);
    file.write_all_at(&tables, (layout.ids_at + ids_bytes) as u64)
        .map_err(io)?;

    let name_bytes = |list: &[&[u8]]| list.iter().map(|n| n.len()).sum::<usize>() as u32;
    let header = Header {
        version: SEGMENT_VERSION,
        count: count as u32,
        first_day,
        last_day,
        ids_bytes: ids_bytes as u32,
        merchant_count: names.merchants.len() as u32,
        merchant_bytes: name_bytes(&names.merchants),
        category_count: names.categories.len() as u32,
        category_bytes: name_bytes(&names.categories),
        hashes_crc: hashes_crc.clone().finalize(),
        names_crc: crc32fast::hash(&tables),
    }
    .encode();
    file.write_all_at(&header, 0).map_err(io)?;
    file.sync_all().map_err(io)?;

    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.combine(&hashes_crc);
    crc.combine(&positions_crc);
    crc.combine(&records_crc);
    crc.combine(&ids_crc);
    crc.update(&tables);
    Ok(SegmentFacts {
        bytes: (layout.ids_at + ids_bytes + tables.len()) as u64,
        crc32: crc.finalize(),
        entries: count as u64,
        first_day,
        last_day,
    })
}
