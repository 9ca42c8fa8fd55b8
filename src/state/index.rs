//! The id index carried between runs (RULES.md 6): every `txn_id` that
//! passed steps 1 and 2 on the last `refund_retention_days` business dates,
//! and for each accepted purchase what later refunds and voids need.
//!
//! The index is a list of immutable segments, one written per run and never
//! rewritten: a daily run writes the day's ids, not the history. A segment
//! holds its entries sorted by id hash, so that a run looks up all of its
//! ids with one merge-like walk per segment. A purchase refunded in a later
//! run is written again, with its new totals, into that run's segment; the
//! newest segment that holds an id decides. See docs/STATE.md for the
//! layout and the figures behind the design.
//!
//! Every byte a lookup relies on is checked: the header and the hash column
//! of each segment by CRC-32 when it is opened, and each entry, with its
//! id, by its own CRC-32 when it is read. This module must not decide
//! rules: it stores and finds.

use std::io::Write;
use std::path::Path;

use hashbrown::HashMap;
use rayon::prelude::*;

use crate::calendar::Day;
use crate::config::limits;
use crate::error::{Error, Result};
use crate::ingest::Source;
use crate::ingest::txn::Card;

const MAGIC: &[u8; 8] = b"SETLIDX\0";
/// The segment layout version this engine writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 64;
const ENTRY_BYTES: usize = 64;
/// Entries in one segment: positions and offsets are `u32`.
pub const SEGMENT_ENTRIES_MAX: usize = u32::MAX as usize / ENTRY_BYTES;

const FLAG_PURCHASE: u8 = 1;
const FLAG_VOIDED: u8 = 2;
const FLAG_CREDIT: u8 = 4;

/// What later rows need of an accepted purchase. `B` holds bytes: borrowed
/// when a run writes its entries, owned when it reads them back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase<B = Vec<u8>> {
    pub merchant_id: B,
    /// The category's name when the purchase was charged.
    pub category: B,
    pub card: Card,
    pub unix_s: i64,
    pub nanos: u32,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub voided: bool,
    pub refunded_fen: i64,
    pub fee_returned_fen: i64,
}

/// One id of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<B = Vec<u8>> {
    pub hash: u64,
    pub id: B,
    pub business_day: Day,
    /// `Some` for an accepted purchase; `None` for any other row's id.
    pub purchase: Option<Purchase<B>>,
}

impl Entry {
    /// The entry with its bytes borrowed, as the writer takes it.
    pub fn borrowed(&self) -> Entry<&[u8]> {
        Entry {
            hash: self.hash,
            id: &self.id,
            business_day: self.business_day,
            purchase: self.purchase.as_ref().map(|p| Purchase {
                merchant_id: &p.merchant_id[..],
                category: &p.category[..],
                card: p.card,
                unix_s: p.unix_s,
                nanos: p.nanos,
                amount_fen: p.amount_fen,
                fee_fen: p.fee_fen,
                voided: p.voided,
                refunded_fen: p.refunded_fen,
                fee_returned_fen: p.fee_returned_fen,
            }),
        }
    }
}

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

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Names (merchant ids, category names) stored once per segment: offsets,
/// then bytes.
#[derive(Default)]
struct NameTable<'a> {
    numbers: HashMap<&'a [u8], u32>,
    names: Vec<&'a [u8]>,
}

impl<'a> NameTable<'a> {
    fn number(&mut self, name: &'a [u8]) -> u32 {
        let next = self.names.len() as u32;
        *self.numbers.entry(name).or_insert_with(|| {
            self.names.push(name);
            next
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let mut offset = 0u32;
        put_u32(out, offset);
        for name in &self.names {
            offset += name.len() as u32;
            put_u32(out, offset);
        }
        for name in &self.names {
            out.extend_from_slice(name);
        }
    }
}

/// A writer that keeps the CRC-32 and length of everything it writes.
struct Checked<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Checked<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

/// Writes the entries `entry_at` gives for `keys` (hash, source) as a
/// segment file at `path`. Entries must have distinct ids.
///
/// The file is streamed in one pass over the entries, so that memory holds
/// 16 bytes per entry and not the segment: the header, which needs the
/// sizes and checksums, is written last over a placeholder, and the
/// whole-file CRC is the header's combined with the rest's.
pub fn write_segment<'a>(
    path: &Path,
    mut keys: Vec<(u64, u32)>,
    entry_at: &(impl Fn(u32) -> Entry<&'a [u8]> + Sync),
) -> Result<SegmentFacts> {
    assert!(keys.len() <= SEGMENT_ENTRIES_MAX, "segment too large");
    keys.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| entry_at(a.1).id.cmp(entry_at(b.1).id))
    });
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let file = std::fs::File::create(path).map_err(io)?;
    (&file).write_all(&[0u8; HEADER_BYTES]).map_err(io)?;
    let mut out = Checked {
        inner: std::io::BufWriter::with_capacity(1 << 20, &file),
        crc: crc32fast::Hasher::new(),
        bytes: 0,
    };

    // The hash column, in blocks so that the CRC runs over long slices.
    let mut hashes = crc32fast::Hasher::new();
    for block in keys.chunks(1 << 14) {
        let bytes: Vec<u8> = block
            .iter()
            .flat_map(|(hash, _)| hash.to_le_bytes())
            .collect();
        hashes.update(&bytes);
        out.put(&bytes).map_err(io)?;
    }
    // The entries, naming merchants and categories as they come.
    let mut merchants = NameTable::default();
    let mut categories = NameTable::default();
    let mut ids_bytes = 0usize;
    let (mut first_day, mut last_day) = (Day::MAX, Day::MIN);
    for &(_, source) in &keys {
        let entry = entry_at(source);
        first_day = first_day.min(entry.business_day);
        last_day = last_day.max(entry.business_day);
        if let Some(p) = &entry.purchase {
            merchants.number(p.merchant_id);
            categories.number(p.category);
        }
        let record = encode(&entry, ids_bytes as u32, &merchants, &categories);
        out.put(&record).map_err(io)?;
        ids_bytes += entry.id.len();
        assert!(u32::try_from(ids_bytes).is_ok(), "segment ids too large");
    }
    for &(_, source) in &keys {
        out.put(entry_at(source).id).map_err(io)?;
    }
    let mut tail = Vec::new();
    merchants.write(&mut tail);
    categories.write(&mut tail);
    out.put(&tail).map_err(io)?;
    let Checked {
        inner,
        crc: rest_crc,
        bytes: rest_bytes,
    } = out;
    inner.into_inner().map_err(|e| io(e.into_error()))?;
    if keys.is_empty() {
        (first_day, last_day) = (0, 0);
    }

    let total_name_bytes =
        |table: &NameTable| table.names.iter().map(|n| n.len()).sum::<usize>() as u32;
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    put_u32(&mut header, SEGMENT_VERSION);
    put_u32(&mut header, keys.len() as u32);
    header.extend_from_slice(&first_day.to_le_bytes());
    header.extend_from_slice(&last_day.to_le_bytes());
    put_u32(&mut header, ids_bytes as u32);
    put_u32(&mut header, merchants.names.len() as u32);
    put_u32(&mut header, total_name_bytes(&merchants));
    put_u32(&mut header, categories.names.len() as u32);
    put_u32(&mut header, total_name_bytes(&categories));
    put_u32(&mut header, hashes.finalize());
    put_u32(&mut header, crc32fast::hash(&tail));
    let header_crc = crc32fast::hash(&header);
    put_u32(&mut header, header_crc);
    header.resize(HEADER_BYTES, 0);
    {
        use std::io::{Seek, SeekFrom};
        (&file).seek(SeekFrom::Start(0)).map_err(io)?;
        (&file).write_all(&header).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.combine(&rest_crc);
    Ok(SegmentFacts {
        bytes: HEADER_BYTES as u64 + rest_bytes,
        crc32: crc.finalize(),
        entries: keys.len() as u64,
        first_day,
        last_day,
    })
}

/// One entry's fixed-size record.
fn encode(
    entry: &Entry<&[u8]>,
    id_offset: u32,
    merchants: &NameTable,
    categories: &NameTable,
) -> [u8; ENTRY_BYTES] {
    let mut record = [0u8; ENTRY_BYTES];
    record[0..4].copy_from_slice(&entry.business_day.to_le_bytes());
    record[5] = entry.id.len() as u8;
    record[8..12].copy_from_slice(&id_offset.to_le_bytes());
    if let Some(p) = &entry.purchase {
        let mut flags = FLAG_PURCHASE;
        if p.voided {
            flags |= FLAG_VOIDED;
        }
        if p.card == Card::Credit {
            flags |= FLAG_CREDIT;
        }
        record[4] = flags;
        let category = categories.numbers[p.category] as u16;
        record[6..8].copy_from_slice(&category.to_le_bytes());
        record[12..16].copy_from_slice(&merchants.numbers[p.merchant_id].to_le_bytes());
        record[16..20].copy_from_slice(&p.nanos.to_le_bytes());
        record[24..32].copy_from_slice(&p.unix_s.to_le_bytes());
        record[32..40].copy_from_slice(&p.amount_fen.to_le_bytes());
        record[40..48].copy_from_slice(&p.fee_fen.to_le_bytes());
        record[48..56].copy_from_slice(&p.refunded_fen.to_le_bytes());
        record[56..64].copy_from_slice(&p.fee_returned_fen.to_le_bytes());
    }
    let crc = entry_crc(&record, entry.id);
    record[20..24].copy_from_slice(&crc.to_le_bytes());
    record
}

/// The CRC-32 of an entry's record (its CRC field read as zero) and id.
fn entry_crc(record: &[u8; ENTRY_BYTES], id: &[u8]) -> u32 {
    let mut bytes = [0u8; ENTRY_BYTES + limits::TXN_ID_BYTES_MAX];
    bytes[..ENTRY_BYTES].copy_from_slice(record);
    bytes[20..24].fill(0);
    let id = &id[..id.len().min(limits::TXN_ID_BYTES_MAX)];
    bytes[ENTRY_BYTES..ENTRY_BYTES + id.len()].copy_from_slice(id);
    crc32fast::hash(&bytes[..ENTRY_BYTES + id.len()])
}

/// An open segment: its bytes and where each part lies.
pub struct Segment {
    bytes: Source,
    name: String,
    count: usize,
    ids_at: usize,
    merchants_at: usize,
    merchant_count: usize,
    categories_at: usize,
    category_count: usize,
}

/// Why a segment cannot be used, for the message naming its file.
fn corrupt(name: &str, why: &str) -> Error {
    Error::Usage(format!(
        "{name}: the state's index segment is corrupt or not a settle segment ({why})"
    ))
}

impl Segment {
    /// Opens a segment file and checks its header and hash column.
    pub fn open(path: &Path) -> Result<Segment> {
        let name = path.display().to_string();
        let bytes = Source::open(&name)?;
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err(corrupt(&name, "no segment header"));
        }
        if crc32fast::hash(&bytes[..52]) != u32_at(&bytes, 52) {
            return Err(corrupt(&name, "header checksum mismatch"));
        }
        let version = u32_at(&bytes, 8);
        if version != SEGMENT_VERSION {
            return Err(Error::Usage(format!(
                "{name}: index segment version {version}; this engine reads version {SEGMENT_VERSION}"
            )));
        }
        let count = u32_at(&bytes, 12) as usize;
        let ids_bytes = u32_at(&bytes, 24) as usize;
        let merchant_count = u32_at(&bytes, 28) as usize;
        let merchant_bytes = u32_at(&bytes, 32) as usize;
        let category_count = u32_at(&bytes, 36) as usize;
        let category_bytes = u32_at(&bytes, 40) as usize;
        let ids_at = HEADER_BYTES + count * (8 + ENTRY_BYTES);
        let merchants_at = ids_at + ids_bytes;
        let categories_at = merchants_at + 4 * (merchant_count + 1) + merchant_bytes;
        let end = categories_at + 4 * (category_count + 1) + category_bytes;
        if bytes.len() != end {
            return Err(corrupt(
                &name,
                &format!("{} bytes where the header says {end}", bytes.len()),
            ));
        }
        if crc32fast::hash(&bytes[HEADER_BYTES..HEADER_BYTES + count * 8]) != u32_at(&bytes, 44) {
            return Err(corrupt(&name, "hash column checksum mismatch"));
        }
        if crc32fast::hash(&bytes[merchants_at..]) != u32_at(&bytes, 48) {
            return Err(corrupt(&name, "name table checksum mismatch"));
        }
        Ok(Segment {
            bytes,
            name,
            count,
            ids_at,
            merchants_at,
            merchant_count,
            categories_at,
            category_count,
        })
    }

    fn hash(&self, position: usize) -> u64 {
        u64_at(&self.bytes, HEADER_BYTES + position * 8)
    }

    fn record(&self, position: usize) -> &[u8; ENTRY_BYTES] {
        let at = HEADER_BYTES + self.count * 8 + position * ENTRY_BYTES;
        self.bytes[at..at + ENTRY_BYTES]
            .try_into()
            .expect("entry bytes")
    }

    /// The id of an entry, or `None` when its offsets point outside the
    /// segment.
    fn id(&self, record: &[u8; ENTRY_BYTES]) -> Option<&[u8]> {
        let start = self.ids_at + u32_at(record, 8) as usize;
        let end = start + usize::from(record[5]);
        (end <= self.merchants_at).then(|| &self.bytes[start..end])
    }

    fn name(&self, table_at: usize, count: usize, number: usize) -> Option<Vec<u8>> {
        if number >= count {
            return None;
        }
        let bytes_at = table_at + 4 * (count + 1);
        let start = bytes_at + u32_at(&self.bytes, table_at + 4 * number) as usize;
        let end = bytes_at + u32_at(&self.bytes, table_at + 4 * (number + 1)) as usize;
        self.bytes.get(start..end).map(<[u8]>::to_vec)
    }

    /// Decodes the entry at `position`, checking its CRC.
    fn entry(&self, position: usize) -> Result<Entry> {
        let record = self.record(position);
        let bad = || corrupt(&self.name, &format!("entry {position} fails its checksum"));
        let id = self.id(record).ok_or_else(bad)?;
        if entry_crc(record, id) != u32_at(record, 20) {
            return Err(bad());
        }
        let flags = record[4];
        let i64_at = |at: usize| u64_at(record, at) as i64;
        let purchase = if flags & FLAG_PURCHASE != 0 {
            let merchant = u32_at(record, 12) as usize;
            let category = usize::from(u16::from_le_bytes([record[6], record[7]]));
            Some(Purchase {
                merchant_id: self
                    .name(self.merchants_at, self.merchant_count, merchant)
                    .ok_or_else(bad)?,
                category: self
                    .name(self.categories_at, self.category_count, category)
                    .ok_or_else(bad)?,
                card: if flags & FLAG_CREDIT != 0 {
                    Card::Credit
                } else {
                    Card::Debit
                },
                unix_s: i64_at(24),
                nanos: u32_at(record, 16),
                amount_fen: i64_at(32),
                fee_fen: i64_at(40),
                voided: flags & FLAG_VOIDED != 0,
                refunded_fen: i64_at(48),
                fee_returned_fen: i64_at(56),
            })
        } else {
            None
        };
        Ok(Entry {
            hash: self.hash(position),
            id: id.to_vec(),
            business_day: u32_at(record, 0) as i32,
            purchase,
        })
    }

    /// Positions of the entries whose id matches a query, by one walk over
    /// the hash column: `queries` is sorted by hash, and each search gallops
    /// forward from the last position, so a walk costs about the smaller of
    /// the two sizes times a small log. Returns (query number, position).
    fn find_all<'q>(
        &self,
        queries: &[(u64, u32)],
        id_of: &(impl Fn(u32) -> &'q [u8] + Sync),
    ) -> Vec<(u32, u32)> {
        let mut found = Vec::new();
        let mut cursor = 0usize;
        for &(hash, query) in queries {
            // Gallop to the first position whose hash is ≥ `hash`, then
            // finish with a binary search inside the last step.
            let mut position = cursor;
            if position < self.count && self.hash(position) < hash {
                let mut step = 1;
                while position + step < self.count && self.hash(position + step) < hash {
                    position += step;
                    step *= 2;
                }
                let (mut low, mut high) = (position + 1, (position + step).min(self.count));
                while low < high {
                    let middle = low + (high - low) / 2;
                    if self.hash(middle) < hash {
                        low = middle + 1;
                    } else {
                        high = middle;
                    }
                }
                position = low;
            }
            cursor = position;
            while position < self.count && self.hash(position) == hash {
                let record = self.record(position);
                if self.id(record) == Some(id_of(query)) {
                    found.push((query, position as u32));
                }
                position += 1;
            }
        }
        found
    }
}

/// The index a run starts from: its segments, newest first, and the first
/// business date still in it.
pub struct Index {
    pub segments: Vec<Segment>,
    pub first_day: Day,
}

impl Index {
    /// For each query, the newest entry with its id whose business date is
    /// still in the index. `queries` holds (hash, query number); the result
    /// is sorted by query number.
    pub fn lookup<'q>(
        &self,
        queries: &mut [(u64, u32)],
        id_of: &(impl Fn(u32) -> &'q [u8] + Sync),
    ) -> Result<Vec<(u32, Entry)>> {
        if self.segments.is_empty() || queries.is_empty() {
            return Ok(Vec::new());
        }
        queries.par_sort_unstable();
        let mut hits: Vec<(u32, u32, u32)> = self
            .segments
            .par_iter()
            .enumerate()
            .flat_map_iter(|(rank, segment)| {
                segment
                    .find_all(queries, id_of)
                    .into_iter()
                    .map(move |(query, position)| (query, rank as u32, position))
            })
            .collect();
        // The newest segment (lowest rank) decides.
        hits.sort_unstable();
        hits.dedup_by_key(|(query, _, _)| *query);
        let mut entries = Vec::with_capacity(hits.len());
        for (query, rank, position) in hits {
            let entry = self.segments[rank as usize].entry(position as usize)?;
            if entry.business_day >= self.first_day {
                entries.push((query, entry));
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::txn::id_hash;

    fn entry(id: &str, day: Day, purchase: bool) -> Entry {
        Entry {
            hash: id_hash(id.as_bytes()),
            id: id.as_bytes().to_vec(),
            business_day: day,
            purchase: purchase.then(|| Purchase {
                merchant_id: b"M1".to_vec(),
                category: b"general".to_vec(),
                card: Card::Credit,
                unix_s: 1_700_000_000,
                nanos: 250,
                amount_fen: 10_000,
                fee_fen: 49,
                voided: false,
                refunded_fen: 6_000,
                fee_returned_fen: 29,
            }),
        }
    }

    /// Writes `entries` as a segment in a new folder and opens it.
    fn written(entries: &[Entry]) -> (tempfile::TempDir, std::path::PathBuf, Segment) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let keys = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.hash, i as u32))
            .collect();
        let facts = write_segment(&path, keys, &|i| entries[i as usize].borrowed()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(facts.bytes, bytes.len() as u64);
        assert_eq!(facts.crc32, crc32fast::hash(&bytes));
        let opened = Segment::open(&path).unwrap();
        (dir, path, opened)
    }

    #[test]
    fn a_segment_round_trips_and_the_newest_entry_decides() {
        let (_d1, _, old) = written(&[entry("P1", 10, true), entry("R1", 11, false)]);
        let mut updated = entry("P1", 10, true);
        updated.purchase.as_mut().unwrap().refunded_fen = 10_000;
        let (_d2, _, new) = written(&[updated.clone(), entry("Q9", 12, true)]);
        let index = Index {
            segments: vec![new, old],
            first_day: 11,
        };
        let ids = ["P1", "R1", "nope", "Q9"];
        let mut queries: Vec<(u64, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id_hash(id.as_bytes()), i as u32))
            .collect();
        let hits = index
            .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
            .unwrap();
        // P1's business date (10) has left the index (first day 11).
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0], (1, entry("R1", 11, false)));
        assert_eq!(hits[1], (3, entry("Q9", 12, true)));
        let index = Index {
            first_day: 0,
            ..index
        };
        let hits = index
            .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
            .unwrap();
        assert_eq!(hits[0], (0, updated));
    }

    #[test]
    fn equal_hashes_are_told_apart_by_their_ids() {
        // Two ids forced onto one hash: each query finds only its own.
        let mut a = entry("A", 1, false);
        let mut b = entry("B", 2, true);
        a.hash = 7;
        b.hash = 7;
        let (_d, _, segment) = written(&[a.clone(), b.clone()]);
        let index = Index {
            segments: vec![segment],
            first_day: 0,
        };
        let ids = ["B", "A", "C"];
        let mut queries = vec![(7, 0), (7, 1), (7, 2)];
        let hits = index
            .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
            .unwrap();
        assert_eq!(hits, vec![(0, b), (1, a)]);
    }

    #[test]
    fn a_flipped_byte_is_caught() {
        let entries: Vec<Entry> = (0..100).map(|i| entry(&format!("T{i}"), 5, true)).collect();
        let (_d, path, _) = written(&entries);
        let original = std::fs::read(&path).unwrap();
        for at in [3, 20, HEADER_BYTES + 17, original.len() - 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            assert!(Segment::open(&path).is_err(), "flip at {at} not caught");
        }
        // A flip inside an entry is caught when the entry is read.
        let mut bytes = original.clone();
        bytes[HEADER_BYTES + 100 * 8 + 33] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let opened = Segment::open(&path).unwrap();
        assert!(opened.entry(0).is_err());
        // Truncation is caught.
        std::fs::write(&path, &original[..original.len() - 5]).unwrap();
        assert!(Segment::open(&path).is_err());
    }

    #[test]
    fn lookups_find_every_id_among_many() {
        let entries: Vec<Entry> = (0..5000)
            .map(|i| entry(&format!("T{i}"), i % 30, i % 3 == 0))
            .collect();
        let (_d, _, segment) = written(&entries);
        let index = Index {
            segments: vec![segment],
            first_day: 0,
        };
        let ids: Vec<String> = (0..10_000).map(|i| format!("T{}", i * 2)).collect();
        let mut queries: Vec<(u64, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id_hash(id.as_bytes()), i as u32))
            .collect();
        let hits = index
            .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
            .unwrap();
        assert_eq!(hits.len(), 2500);
        for (query, found) in hits {
            assert_eq!(found, entries[query as usize * 2]);
        }
    }
}
