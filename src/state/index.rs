//! The id index carried between runs (RULES.md 6): every `txn_id` that
//! passed steps 1 and 2 on the last `refund_retention_days` business dates,
//! and for each accepted purchase what later refunds and voids need.
//!
//! The index is a list of immutable segments, one written per run and never
//! rewritten: a daily run writes the day's ids, not the history. Each
//! segment has a sorted hash column, so a run looks all of its ids up with
//! one merge walk per segment. A purchase refunded in a later run is written
//! again, with its new totals, into that run's segment; the newest segment
//! that holds an id decides. See docs/STATE.md for the layout and the
//! figures behind the design.
//!
//! Every byte a lookup relies on is checked: a segment's header and hash
//! column by CRC-32 when it is opened; on a hit, the record's own copy of
//! the hash (so a damaged position cannot point elsewhere unnoticed), its
//! CRC-32 over the record and id, and the name tables' CRC-32. This module
//! must not decide rules: it stores and finds.

use std::path::Path;

use rayon::prelude::*;

use super::format::{
    self, Entry, Header, Layout, RECORD_BYTES, SEGMENT_VERSION, SEGMENT_VERSION_PACKED,
};
use crate::calendar::Day;
use crate::error::{Error, Result};
use crate::ingest::Source;

/// An open segment.
pub struct Segment {
    /// The whole file, mapped: every lookup walks the hash column; records,
    /// ids and names are read on a hit only.
    bytes: Source,
    /// Whether the name tables passed their CRC, checked on first use.
    names_valid: std::sync::OnceLock<bool>,
    name: String,
    header: Header,
    layout: Layout,
    merchants_at: usize,
    categories_at: usize,
    /// Where the name tables end: the rest is padding.
    names_end: usize,
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
        let header = Header::decode(&bytes).map_err(|why| corrupt(&name, why))?;
        let Some(layout) = Layout::of_version(header.version, header.count as usize) else {
            return Err(Error::Usage(format!(
                "{name}: index segment version {}; this engine reads versions \
                 {SEGMENT_VERSION_PACKED} and {SEGMENT_VERSION}",
                header.version
            )));
        };
        let merchants_at = layout.ids_at + header.ids_bytes as usize;
        let categories_at = merchants_at
            + 4 * (header.merchant_count as usize + 1)
            + header.merchant_bytes as usize;
        let names_end = categories_at
            + 4 * (header.category_count as usize + 1)
            + header.category_bytes as usize;
        let end = layout.round(names_end);
        if bytes.len() != end {
            return Err(corrupt(
                &name,
                &format!("{} bytes where the header says {end}", bytes.len()),
            ));
        }
        // The hash column is read whole by every lookup: map it in one call.
        let column = layout.hashes_at..layout.positions_at;
        bytes.populate(column.clone());
        if crc32fast::hash(&bytes[column]) != header.hashes_crc {
            return Err(corrupt(&name, "hash column checksum mismatch"));
        }
        Ok(Segment {
            bytes,
            names_valid: std::sync::OnceLock::new(),
            name,
            header,
            layout,
            merchants_at,
            categories_at,
            names_end,
        })
    }

    fn count(&self) -> usize {
        self.layout.count
    }

    fn hash(&self, sorted: usize) -> u64 {
        format::u64_at(&self.bytes, self.layout.hashes_at + sorted * 8)
    }

    fn position(&self, sorted: usize) -> usize {
        format::u32_at(&self.bytes, self.layout.positions_at + sorted * 4) as usize
    }

    fn record(&self, index: usize) -> Option<&[u8; RECORD_BYTES]> {
        let at = self.layout.records_at + index * RECORD_BYTES;
        (index < self.count()).then(|| {
            self.bytes[at..at + RECORD_BYTES]
                .try_into()
                .expect("record bytes")
        })
    }

    fn bad(&self, why: String) -> Error {
        corrupt(&self.name, &why)
    }

    /// The record behind sorted position `sorted`, checked: it must carry
    /// the column's hash and pass its CRC. Returns its number and fields.
    fn checked(&self, sorted: usize) -> Result<(usize, format::Decoded, &[u8])> {
        let index = self.position(sorted);
        let record = self
            .record(index)
            .ok_or_else(|| self.bad(format!("position {sorted} points past the records")))?;
        let decoded = format::decode(record);
        let start = self.layout.ids_at + decoded.id_offset;
        let end = start + decoded.id_len;
        if decoded.hash != self.hash(sorted) || end > self.merchants_at {
            return Err(self.bad(format!("record {index} does not match its hash")));
        }
        let id = &self.bytes[start..end];
        if format::record_crc(record, id) != decoded.crc {
            return Err(self.bad(format!("record {index} fails its checksum")));
        }
        Ok((index, decoded, id))
    }

    fn name_at(&self, table_at: usize, count: u32, number: u32) -> Result<Vec<u8>> {
        let valid = *self.names_valid.get_or_init(|| {
            crc32fast::hash(&self.bytes[self.merchants_at..self.names_end]) == self.header.names_crc
        });
        if !valid {
            return Err(self.bad("name table checksum mismatch".into()));
        }
        if number >= count {
            return Err(self.bad(format!("name {number} is not in its table")));
        }
        let bytes_at = table_at + 4 * (count as usize + 1);
        let offset = |k: u32| format::u32_at(&self.bytes, table_at + 4 * k as usize) as usize;
        self.bytes
            .get(bytes_at + offset(number)..bytes_at + offset(number + 1))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| self.bad(format!("name {number} points outside its table")))
    }

    /// The entry at sorted position `sorted`, with its names.
    fn entry(&self, sorted: usize) -> Result<Entry> {
        let (_, decoded, id) = self.checked(sorted)?;
        let purchase = match decoded.purchase {
            None => None,
            Some(p) => {
                let merchant =
                    self.name_at(self.merchants_at, self.header.merchant_count, p.merchant_id)?;
                let category =
                    self.name_at(self.categories_at, self.header.category_count, p.category)?;
                Some(p.renamed(merchant, category))
            }
        };
        Ok(Entry {
            hash: decoded.hash,
            id: id.to_vec(),
            business_day: decoded.business_day,
            purchase,
        })
    }

    /// Sorted positions of the entries whose id matches a query. `hashes`
    /// is sorted and `numbers[k]` is the query number of `hashes[k]`. One
    /// merge walk over both sorted columns, without data-dependent branches
    /// on the common path: each step advances one side. Returns (query
    /// number, sorted position).
    fn find_all<'q>(
        &self,
        hashes: &[u64],
        numbers: &[u32],
        id_of: &(impl Fn(u32) -> &'q [u8] + Sync),
    ) -> Result<Vec<(u32, u32)>> {
        let mut found = Vec::new();
        let column = &self.bytes[self.layout.hashes_at..self.layout.hashes_at + 8 * self.count()];
        let (mut q, mut e) = (0usize, 0usize);
        while q < hashes.len() && e < self.count() {
            let entry = format::u64_at(column, e * 8);
            let query = hashes[q];
            if query == entry {
                // Rare: every entry with this hash is compared byte for byte.
                let id = id_of(numbers[q]);
                let mut sorted = e;
                while sorted < self.count() && self.hash(sorted) == query {
                    if self.checked(sorted)?.2 == id {
                        found.push((numbers[q], sorted as u32));
                    }
                    sorted += 1;
                }
            }
            q += usize::from(query <= entry);
            e += usize::from(entry < query);
        }
        Ok(found)
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
        let hashes: Vec<u64> = queries.iter().map(|&(hash, _)| hash).collect();
        let numbers: Vec<u32> = queries.iter().map(|&(_, number)| number).collect();
        let per_segment: Vec<Vec<(u32, u32)>> = self
            .segments
            .par_iter()
            .map(|segment| segment.find_all(&hashes, &numbers, id_of))
            .collect::<Result<_>>()?;
        let mut hits: Vec<(u32, u32, u32)> = per_segment
            .into_iter()
            .enumerate()
            .flat_map(|(rank, found)| {
                found
                    .into_iter()
                    .map(move |(query, sorted)| (query, rank as u32, sorted))
            })
            .collect();
        // The newest segment (lowest rank) decides.
        hits.sort_unstable();
        hits.dedup_by_key(|(query, _, _)| *query);
        let mut entries = Vec::with_capacity(hits.len());
        for (query, rank, sorted) in hits {
            let entry = self.segments[rank as usize].entry(sorted as usize)?;
            if entry.business_day >= self.first_day {
                entries.push((query, entry));
            }
        }
        Ok(entries)
    }
}
