//! Writes an index segment: records in the run's own order, in parallel
//! blocks written at their final offsets, with a check (CRC-32) per 64
//! records; then the sorted hash and position columns, with a check per
//! page of positions, the name tables, and the header last. Every write is
//! a whole number of aligned blocks (`direct`), so that the segment goes to
//! the disk without passing through the page cache.
//!
//! A first pass reads every entry for the sizes, dates and hashes, and for
//! the bits each record field needs (`packed`); a value beyond a field's
//! limit stops the write with a sentence naming the id and the field.
//! Memory holds 16 bytes per entry (the sort keys) and a few blocks, never
//! the segment. This module must not decide what goes into the index.

use rayon::prelude::*;
use std::path::Path;

use super::format::{
    self, BLOCK_ENTRIES, CHECK_RECORDS, HEADER_BYTES, Header, Layout, NewEntry,
    SEGMENT_ENTRIES_MAX, SEGMENT_VERSION,
};
use super::packed::{self, FIELDS, RECORD_BYTES_MAX, Widths};
use crate::calendar::Day;
use crate::config::limits;
use crate::error::{Error, Result};
use crate::output::direct::{ALIGN_BYTES, AlignedBuf, BlockFile};
use crate::split;

/// Blocks in flight at once, which bounds the writer's memory.
const BLOCKS_IN_FLIGHT_MAX: usize = 8;
/// The sorted columns are built in this many passes, each over the hashes
/// whose top bits select it, so that at most a quarter of the sort keys
/// is in memory at once.
const SORT_PASS_BITS: u32 = 2;
const SORT_PASSES: usize = 1 << SORT_PASS_BITS;

/// The sort pass of a hash: its top bits.
fn pass_of(hash: u64) -> usize {
    (hash >> (64 - SORT_PASS_BITS)) as usize
}

/// Buffers kept for reuse once written.
const BUFFERS_FREE_MAX: usize = BLOCKS_IN_FLIGHT_MAX;
/// A block buffer holds a block's records or its ids, whichever is larger.
const BLOCK_BUFFER_BYTES: usize = BLOCK_ENTRIES
    * if RECORD_BYTES_MAX > limits::TXN_ID_BYTES_MAX {
        RECORD_BYTES_MAX
    } else {
        limits::TXN_ID_BYTES_MAX
    };
/// Bytes a sorted column gathers before it writes them.
const COLUMN_WRITE_BYTES: usize = 1 << 20;

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
    /// The block's entries in each sort pass.
    pass_entries: [usize; SORT_PASSES],
    /// The OR of each record field's values (the date's aside: its width
    /// comes from the span of dates).
    union: [u64; FIELDS],
}

/// Why an entry cannot be written: it names the segment, the id and the
/// field whose limit the entry exceeds.
fn unfit(path: &Path, entry: &NewEntry, why: &str) -> Error {
    Error::Usage(format!(
        "{}: txn_id {:?} cannot be written into the index: {why}",
        path.display(),
        String::from_utf8_lossy(entry.id)
    ))
}

/// Writes entries `0..count`, as `entry_at` gives them, as a segment at
/// `path`, and returns its facts and the file, written but not yet synced:
/// the caller makes it durable (in the background) before publishing.
/// `entry_at` is called twice per entry, in the run's order, and must give
/// the same entry both times; the sorted columns read the hashes the first
/// pass gathered. Entries must have distinct ids.
pub fn write_segment<'a>(
    path: &Path,
    names: &Names,
    count: usize,
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
) -> Result<(SegmentFacts, std::fs::File)> {
    let file =
        BlockFile::create(path).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    write_blocks(path, file, names, count, entry_at)
}

/// A sorted column, gathered and written in aligned blocks.
struct Column<'f> {
    file: &'f BlockFile,
    at: usize,
    buf: AlignedBuf,
    crc: crc32fast::Hasher,
    /// The CRC-32 of each written page, where the column keeps them.
    page_crcs: Option<Vec<u32>>,
}

impl<'f> Column<'f> {
    fn new(file: &'f BlockFile, at: usize) -> Column<'f> {
        Column {
            file,
            at,
            buf: AlignedBuf::with_capacity(COLUMN_WRITE_BYTES),
            crc: crc32fast::Hasher::new(),
            page_crcs: None,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buf.room() < bytes.len() {
            self.flush()?;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what is gathered, padded to a whole block; only the last
    /// flush may be short of `COLUMN_WRITE_BYTES`.
    fn flush(&mut self) -> std::io::Result<()> {
        self.buf.pad();
        self.file.write_at(&self.buf, self.at)?;
        self.crc.update(self.buf.as_slice());
        if let Some(pages) = &mut self.page_crcs {
            pages.extend(self.buf.as_slice().chunks(ALIGN_BYTES).map(crc32fast::hash));
        }
        self.at += self.buf.len();
        self.buf.clear();
        Ok(())
    }
}

/// `write_segment` into `file`, already created at `path` (tests use a
/// file that never writes directly).
pub(super) fn write_blocks<'a>(
    path: &Path,
    file: BlockFile,
    names: &Names,
    count: usize,
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
) -> Result<(SegmentFacts, std::fs::File)> {
    assert!(count <= SEGMENT_ENTRIES_MAX, "segment too large");
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let file_owned = file;
    let blocks: Vec<std::ops::Range<usize>> = (0..count)
        .step_by(BLOCK_ENTRIES)
        .map(|start| start..(start + BLOCK_ENTRIES).min(count))
        .collect();

    // First pass, in parallel and in the run's order: id sizes (for each
    // block's offset into the ids area), the date range, the bits of each
    // field, and the hashes, which every sort pass reads again: from the
    // entries, each read would fetch a whole row.
    let mut entry_hashes = vec![0u64; count];
    let scans: Vec<Scan> = blocks
        .par_iter()
        .zip(split::by_lengths(
            &mut entry_hashes,
            blocks.iter().map(|b| b.len()),
        ))
        .map(|(block, block_hashes)| scan(path, block, block_hashes, entry_at))
        .collect::<Result<_>>()?;
    // Each block's ids start at a block boundary: they are one write.
    let mut id_bases = Vec::with_capacity(blocks.len());
    let mut ids_bytes = 0usize;
    for scan in &scans {
        id_bases.push(ids_bytes);
        ids_bytes += crate::output::direct::aligned(scan.ids_bytes);
    }
    assert!(u32::try_from(ids_bytes).is_ok(), "segment ids too large");
    let (first_day, last_day) = match count {
        0 => (0, 0),
        _ => (
            scans.iter().map(|s| s.first_day).min().unwrap_or(0),
            scans.iter().map(|s| s.last_day).max().unwrap_or(0),
        ),
    };
    let day_span = u64::try_from(i64::from(last_day) - i64::from(first_day)).unwrap_or(0);
    if day_span >= 1 << packed::DAY_SPAN_BITS_MAX {
        return Err(Error::Usage(format!(
            "{}: the index cannot hold business dates {day_span} days apart (at most 2^{} - 1)",
            path.display(),
            packed::DAY_SPAN_BITS_MAX
        )));
    }
    let mut union = [0u64; FIELDS];
    for scan in &scans {
        for (all, block) in union.iter_mut().zip(scan.union) {
            *all |= block;
        }
    }
    let widths = Widths::holding(&union, day_span);
    let layout = Layout::new(count, &widths);

    // Second pass: records, checks and ids, encoded block by block in
    // parallel and handed to a writer thread through a bounded channel, so
    // that the disk writes while the workers encode; the sorted columns are
    // built while it drains. The CRCs of the blocks combine in file order.
    // A block's padding fills the gap to the next block or part.
    let (send, receive) = crossbeam_channel::bounded::<(usize, AlignedBuf)>(BLOCKS_IN_FLIGHT_MAX);
    // Written blocks come back to be filled again: fresh buffers for every
    // block would have the kernel fault in and zero the whole segment's
    // size in new pages.
    let (give_back, take_free) = crossbeam_channel::bounded::<AlignedBuf>(BUFFERS_FREE_MAX);
    let file = &file_owned;
    let blocks = &blocks;
    let encoder = Encoder {
        path,
        layout: &layout,
        widths: &widths,
        first_day,
        take_free: &take_free,
    };
    let (crcs, columns, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            for (at, block) in receive {
                file.write_at(&block, at)?;
                // Only buffers that hold a block's records or ids are
                // reused; a block's checks take one aligned block.
                if block.len() + block.room() >= BLOCK_BUFFER_BYTES {
                    let _ = give_back.try_send(block);
                }
            }
            Ok(())
        });
        // The columns are sorted while the records are encoded: encoding
        // waits on the disk often enough to leave a core free.
        let (crcs, columns) = rayon::join(
            move || {
                let crcs = blocks
                    .par_iter()
                    .enumerate()
                    .zip(&id_bases)
                    .map(|((number, block), &id_base)| {
                        encoder.block(number, block, id_base, entry_at, &send)
                    })
                    .collect::<Result<Vec<_>>>();
                drop(send);
                crcs
            },
            || sorted_columns(file, &layout, blocks, &scans, &entry_hashes, entry_at).map_err(io),
        );
        let written = writer.join().expect("the segment writer does not panic");
        (crcs, columns, written)
    });
    written.map_err(io)?;
    let (hashes_crc, positions_crc, position_pages) = columns?;
    let mut parts_crc = [(); 3].map(|_| crc32fast::Hasher::new());
    for block in crcs? {
        for (part, crc) in parts_crc.iter_mut().zip(&block) {
            part.combine(crc);
        }
    }
    let [records_crc, checks_crc, ids_crc] = parts_crc;

    let mut position_checks = AlignedBuf::with_capacity(4 * position_pages.len());
    for crc in &position_pages {
        position_checks.extend_from_slice(&crc.to_le_bytes());
    }
    position_checks.pad();
    assert_eq!(
        layout.position_checks_at + position_checks.len(),
        layout.records_at,
        "position checks end where records start"
    );
    file.write_at(&position_checks, layout.position_checks_at)
        .map_err(io)?;

    let names_at = layout.ids_at + ids_bytes;
    let tables_bytes =
        format::names_bytes(&names.merchants) + format::names_bytes(&names.categories);
    let mut tables = Vec::with_capacity(tables_bytes);
    format::encode_names(&names.merchants, &mut tables);
    format::encode_names(&names.categories, &mut tables);
    let mut tables_block = AlignedBuf::with_capacity(tables.len());
    tables_block.extend_from_slice(&tables);
    tables_block.pad();
    file.write_at(&tables_block, names_at).map_err(io)?;

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
        widths: widths.to_bytes(),
    }
    .encode();
    let mut header_block = AlignedBuf::with_capacity(layout.hashes_at);
    header_block.extend_from_slice(&header);
    header_block.pad();
    assert_eq!(
        header_block.len(),
        layout.hashes_at,
        "the header fills its part"
    );
    file.write_at(&header_block, 0).map_err(io)?;

    let mut crc = crc32fast::Hasher::new();
    crc.update(header_block.as_slice());
    crc.combine(&hashes_crc);
    crc.combine(&positions_crc);
    crc.update(position_checks.as_slice());
    crc.combine(&records_crc);
    crc.combine(&checks_crc);
    crc.combine(&ids_crc);
    crc.update(tables_block.as_slice());
    let facts = SegmentFacts {
        bytes: (names_at + tables_block.len()) as u64,
        crc32: crc.finalize(),
        entries: count as u64,
        first_day,
        last_day,
    };
    debug_assert_eq!(HEADER_BYTES, header.len());
    debug_assert!((facts.bytes as usize).is_multiple_of(ALIGN_BYTES));
    Ok((facts, file_owned.into_file()))
}

/// The first pass over one block's entries.
fn scan<'a>(
    path: &Path,
    block: &std::ops::Range<usize>,
    block_hashes: &mut [u64],
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
) -> Result<Scan> {
    let mut scan = Scan {
        ids_bytes: 0,
        first_day: Day::MAX,
        last_day: Day::MIN,
        pass_entries: [0; SORT_PASSES],
        union: [0; FIELDS],
    };
    for (index, hash) in block.clone().zip(block_hashes) {
        let entry = entry_at(index);
        *hash = entry.hash;
        scan.pass_entries[pass_of(entry.hash)] += 1;
        scan.ids_bytes += entry.id.len();
        scan.first_day = scan.first_day.min(entry.business_day);
        scan.last_day = scan.last_day.max(entry.business_day);
        let values =
            packed::values(&entry, entry.business_day).map_err(|why| unfit(path, &entry, &why))?;
        for (all, value) in scan.union.iter_mut().zip(values) {
            *all |= value;
        }
    }
    Ok(scan)
}

/// What every block's encoding shares.
struct Encoder<'e> {
    path: &'e Path,
    layout: &'e Layout,
    widths: &'e Widths,
    first_day: Day,
    take_free: &'e crossbeam_channel::Receiver<AlignedBuf>,
}

impl Encoder<'_> {
    fn buffer(&self) -> AlignedBuf {
        let mut buf = self
            .take_free
            .try_recv()
            .unwrap_or_else(|_| AlignedBuf::with_capacity(BLOCK_BUFFER_BYTES));
        buf.clear();
        buf
    }

    /// Encodes writer block `number`, whose ids start at `id_base` in the
    /// ids part, sends its records, checks and ids to be written, and
    /// returns their CRCs.
    fn block<'a>(
        &self,
        number: usize,
        block: &std::ops::Range<usize>,
        id_base: usize,
        entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
        send: &crossbeam_channel::Sender<(usize, AlignedBuf)>,
    ) -> Result<[crc32fast::Hasher; 3]> {
        let mut records = self.buffer();
        let mut ids = self.buffer();
        let mut checks = AlignedBuf::with_capacity(ALIGN_BYTES);
        let mut scratch: packed::Scratch = [0; RECORD_BYTES_MAX + 8];
        for start in block.clone().step_by(CHECK_RECORDS) {
            let ids_offset = (id_base + ids.len()) as u32;
            let (records_from, ids_from) = (records.len(), ids.len());
            for index in start..(start + CHECK_RECORDS).min(block.end) {
                let entry = entry_at(index);
                let values = packed::values(&entry, self.first_day)
                    .map_err(|why| unfit(self.path, &entry, &why))?;
                records.extend_from_slice(packed::encode(&values, self.widths, &mut scratch));
                ids.extend_from_slice(entry.id);
            }
            let crc = format::check_crc(
                ids_offset,
                &records.as_slice()[records_from..],
                &ids.as_slice()[ids_from..],
            );
            checks.extend_from_slice(&ids_offset.to_le_bytes());
            checks.extend_from_slice(&crc.to_le_bytes());
        }
        let layout = self.layout;
        let writes = [
            (
                layout.records_at + block.start * layout.record_bytes,
                records,
            ),
            (layout.checks_at + number * ALIGN_BYTES, checks),
            (layout.ids_at + id_base, ids),
        ];
        let mut crcs = [(); 3].map(|_| crc32fast::Hasher::new());
        for ((at, mut buf), crc) in writes.into_iter().zip(&mut crcs) {
            buf.pad();
            crc.update(buf.as_slice());
            // A closed channel means the writer failed: its error is the
            // one reported.
            let _ = send.send((at, buf));
        }
        Ok(crcs)
    }
}

/// Bits of the hash, below the pass's bits, that pick a key's bucket.
const BUCKET_BITS: u32 = 14;

/// Sorts one pass's (hash, entry) keys by `order`, which must order by
/// hash first. Hashes are uniform, so a counting sort on the bits below the
/// pass's bits leaves buckets of a few hundred keys, sorted in parallel:
/// cheaper than a comparison sort of the whole pass. (Moving the keys to
/// their buckets in place, without `scratch`, was slower: each move waits
/// on the cache miss of the one before.)
fn sort_keys(
    keys: &mut Vec<(u64, u32)>,
    scratch: &mut Vec<(u64, u32)>,
    order: &(impl Fn(&(u64, u32), &(u64, u32)) -> std::cmp::Ordering + Sync),
) {
    let bucket_of = |hash: u64| {
        (hash >> (64 - SORT_PASS_BITS - BUCKET_BITS)) as usize & ((1 << BUCKET_BITS) - 1)
    };
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for &(hash, _) in keys.iter() {
        starts[bucket_of(hash) + 1] += 1;
    }
    for b in 0..1 << BUCKET_BITS {
        starts[b + 1] += starts[b];
    }
    scratch.clear();
    scratch.resize(keys.len(), (0, 0));
    let mut next = starts.clone();
    for &key in keys.iter() {
        let slot = &mut next[bucket_of(key.0)];
        scratch[*slot] = key;
        *slot += 1;
    }
    split::by_lengths(scratch, starts.windows(2).map(|w| w[1] - w[0]))
        .into_par_iter()
        .for_each(|bucket| bucket.sort_unstable_by(order));
    std::mem::swap(keys, scratch);
}

/// Writes the sorted hash and position columns, a quarter of the hash
/// space per pass, and returns their CRCs and those of each page of
/// positions.
fn sorted_columns<'a>(
    file: &BlockFile,
    layout: &Layout,
    blocks: &[std::ops::Range<usize>],
    scans: &[Scan],
    entry_hashes: &[u64],
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
) -> std::io::Result<(crc32fast::Hasher, crc32fast::Hasher, Vec<u32>)> {
    let mut hashes = Column::new(file, layout.hashes_at);
    let mut positions = Column::new(file, layout.positions_at);
    positions.page_crcs = Some(Vec::with_capacity(
        layout.count.div_ceil(format::POSITIONS_PER_PAGE),
    ));
    let mut sorted = 0usize;
    // Both hold one pass at most, and are reused by every pass.
    let mut keys: Vec<(u64, u32)> = Vec::new();
    let mut scratch = Vec::new();
    for pass in 0..SORT_PASSES {
        // Each block fills its own part of the pass's keys, whose size the
        // scan counted: no growing, appending or copying.
        keys.clear();
        keys.resize(scans.iter().map(|s| s.pass_entries[pass]).sum(), (0, 0));
        let parts = split::by_lengths(&mut keys, scans.iter().map(|s| s.pass_entries[pass]));
        blocks.par_iter().zip(parts).for_each(|(block, part)| {
            let mut filled = 0;
            // A whole scan of the block's hashes, in order: cheaper than
            // reaching for the pass's entries alone, which misses the cache.
            for (index, &hash) in block.clone().zip(&entry_hashes[block.clone()]) {
                if pass_of(hash) == pass {
                    part[filled] = (hash, index as u32);
                    filled += 1;
                }
            }
            assert_eq!(filled, part.len(), "the scan counted the pass");
        });
        sort_keys(&mut keys, &mut scratch, &|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| entry_at(a.1 as usize).id.cmp(entry_at(b.1 as usize).id))
        });
        for (hash, index) in &keys {
            hashes.push(&hash.to_le_bytes())?;
            positions.push(&index.to_le_bytes())?;
        }
        sorted += keys.len();
    }
    assert_eq!(sorted, layout.count, "every entry is in one sort pass");
    hashes.flush()?;
    positions.flush()?;
    assert_eq!(
        hashes.at, layout.positions_at,
        "hashes end where positions start"
    );
    assert_eq!(
        positions.at, layout.position_checks_at,
        "positions end where their checks start"
    );
    let pages = positions.page_crcs.take().unwrap_or_default();
    Ok((hashes.crc, positions.crc, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_a_plain_sort_does() {
        // A pass's keys: uniform hashes, a crowded bucket, an empty one,
        // and equal hashes whose tie the order breaks (here by entry).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut keys: Vec<(u64, u32)> = (0..50_000u32)
            .map(|entry| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let hash = match entry % 10 {
                    0 => 0x0123_4567_89ab_cdef >> SORT_PASS_BITS,
                    1 => (0x0123_4567_0000_0000 | u64::from(entry)) >> SORT_PASS_BITS,
                    _ => state >> SORT_PASS_BITS,
                };
                (hash, entry)
            })
            .collect();
        let mut expected = keys.clone();
        expected.sort();
        sort_keys(&mut keys, &mut Vec::new(), &|a, b| a.cmp(b));
        assert_eq!(keys, expected);
    }
}
