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
//! column by CRC-32 when it is opened; on a hit, in layout version 4, the
//! CRC-32 of the page of positions that points to the record (so that a
//! damaged position cannot point elsewhere unnoticed) and that of the
//! record's block of 64 records and their ids; in versions 2 and 3, the
//! record's own copy of the hash and its CRC-32 over the record and id;
//! and the name tables' CRC-32. Every entry read must also fit the fields
//! of version 4, so that it can be written again. This module must not
//! decide rules: it stores and finds.

use std::path::Path;

use rayon::prelude::*;

use super::format::{
    self, CHECK_BYTES, CHECK_RECORDS, Entry, Header, Layout, POSITIONS_PER_PAGE, Purchase,
    SEGMENT_VERSION, SEGMENT_VERSION_PACKED, WIDE_RECORD_BYTES,
};
use super::packed::{self, Widths};
use crate::calendar::Day;
use crate::error::{Error, Result};
use crate::ingest::Source;
use crate::output::direct::ALIGN_BYTES;

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
    /// The record fields' widths: `Some` in version 4.
    widths: Option<Widths>,
    merchants_at: usize,
    categories_at: usize,
    /// Where the name tables end: the rest is padding.
    names_end: usize,
}

/// An entry's fields as a hit reads them, checked, names still numbered.
struct Found<'s> {
    business_day: Day,
    id: &'s [u8],
    purchase: Option<Purchase<u32>>,
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
        let widths = match header.version {
            SEGMENT_VERSION => Some(
                Widths::from_bytes(header.widths)
                    .ok_or_else(|| corrupt(&name, "a record field is wider than its limit"))?,
            ),
            _ => None,
        };
        let record_bytes = widths.map_or(0, |w| w.record_bytes());
        if widths.is_some() && header.count > 0 && record_bytes == 0 {
            return Err(corrupt(&name, "its records have no bytes"));
        }
        let Some(layout) = Layout::of_version(header.version, header.count as usize, record_bytes)
        else {
            return Err(Error::Usage(format!(
                "{name}: index segment version {}; this engine reads versions \
                 {SEGMENT_VERSION_PACKED} to {SEGMENT_VERSION}",
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
            widths,
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

    fn bad(&self, why: String) -> Error {
        corrupt(&self.name, &why)
    }

    /// The record behind sorted position `sorted`, checked. Returns its
    /// number and fields.
    fn checked(&self, sorted: usize) -> Result<(usize, Found<'_>)> {
        match &self.widths {
            Some(widths) => self.checked_packed(sorted, widths),
            None => self.checked_wide(sorted),
        }
    }

    /// A record of version 4: the page of positions that points to it and
    /// its block of records and ids must pass their CRCs.
    fn checked_packed(&self, sorted: usize, widths: &Widths) -> Result<(usize, Found<'_>)> {
        let layout = &self.layout;
        let page = sorted / POSITIONS_PER_PAGE;
        let page_at = layout.positions_at + page * ALIGN_BYTES;
        let page_crc = format::u32_at(&self.bytes, layout.position_checks_at + 4 * page);
        if crc32fast::hash(&self.bytes[page_at..page_at + ALIGN_BYTES]) != page_crc {
            return Err(self.bad(format!("page {page} of positions fails its checksum")));
        }
        let index = self.position(sorted);
        if index >= self.count() {
            return Err(self.bad(format!("position {sorted} points past the records")));
        }
        let block = index / CHECK_RECORDS;
        let check_at = layout.checks_at + block * CHECK_BYTES;
        let ids_offset = format::u32_at(&self.bytes, check_at);
        let first = block * CHECK_RECORDS;
        let end = (first + CHECK_RECORDS).min(self.count());
        let size = layout.record_bytes;
        let records = &self.bytes[layout.records_at + first * size..layout.records_at + end * size];
        // The block's ids follow each other from `ids_offset`.
        let mut id_end = ids_offset as usize;
        let mut id = 0..0;
        for (k, record) in records.chunks_exact(size).enumerate() {
            let len = packed::id_len(record, widths);
            if first + k == index {
                id = id_end..id_end + len;
            }
            id_end += len;
        }
        let ids_at = layout.ids_at;
        if ids_at + id_end > self.merchants_at {
            return Err(self.bad(format!("record block {block} points outside the ids")));
        }
        let ids = &self.bytes[ids_at + ids_offset as usize..ids_at + id_end];
        if format::check_crc(ids_offset, records, ids) != format::u32_at(&self.bytes, check_at + 4)
        {
            return Err(self.bad(format!("record block {block} fails its checksum")));
        }
        let record = &records[(index - first) * size..(index - first + 1) * size];
        let unpacked = packed::decode(record, widths, self.header.first_day);
        Ok((
            index,
            Found {
                business_day: unpacked.business_day,
                id: &self.bytes[ids_at + id.start..ids_at + id.end],
                purchase: unpacked.purchase,
            },
        ))
    }

    /// A record of versions 2 and 3: it must carry the column's hash and
    /// pass its CRC.
    fn checked_wide(&self, sorted: usize) -> Result<(usize, Found<'_>)> {
        let index = self.position(sorted);
        let at = self.layout.records_at + index * WIDE_RECORD_BYTES;
        let record: &[u8; WIDE_RECORD_BYTES] = match index < self.count() {
            true => self.bytes[at..at + WIDE_RECORD_BYTES]
                .try_into()
                .expect("record bytes"),
            false => {
                return Err(self.bad(format!("position {sorted} points past the records")));
            }
        };
        let decoded = format::decode_wide(record);
        let start = self.layout.ids_at + decoded.id_offset;
        let end = start + decoded.id_len;
        if decoded.hash != self.hash(sorted) || end > self.merchants_at {
            return Err(self.bad(format!("record {index} does not match its hash")));
        }
        let id = &self.bytes[start..end];
        if format::record_crc(record, id) != decoded.crc {
            return Err(self.bad(format!("record {index} fails its checksum")));
        }
        Ok((
            index,
            Found {
                business_day: decoded.business_day,
                id,
                purchase: decoded.purchase,
            },
        ))
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
        let (index, found) = self.checked(sorted)?;
        // An entry read must fit the fields of the layout this engine
        // writes, since a later run may write it again.
        let fits = Entry {
            hash: self.hash(sorted),
            id: found.id,
            business_day: found.business_day,
            purchase: found.purchase.clone(),
        };
        if let Err(why) = packed::values(&fits, found.business_day) {
            return Err(self.bad(format!("record {index}: {why}")));
        }
        let purchase = match found.purchase {
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
            hash: self.hash(sorted),
            id: found.id.to_vec(),
            business_day: found.business_day,
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
                    if self.checked(sorted)?.1.id == id {
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
