//! The byte layout of an index segment, shared by its writer and reader.
//!
//! Layout version 4 (written):
//!
//! ```text
//! header           68 bytes   magic, version, counts, sizes, widths, CRC-32s
//! hashes           8 × n      the id hashes, ascending
//! positions        4 × n      for each sorted hash, the number of its record
//! position checks  4 per page the CRC-32 of each 4096-byte page of positions
//! records          w × n      packed (`packed`), in the order the run wrote them
//! checks           8 per 64   per block of 64 records: where its ids start,
//!                             and the CRC-32 of that, its records and ids
//! ids              bytes      the ids, in record order
//! names            bytes      merchant table, then category table: offsets, bytes
//! ```
//!
//! Records are in the order the run produced them (its file order), so that
//! writing is a sequential, parallel pass; only the small hash and position
//! columns are sorted. Every part starts at a multiple of 4096 bytes and
//! the file is padded to one, with zeros, so that the writer can use direct
//! I/O; the ids of each block of `BLOCK_ENTRIES` records start at one too.
//!
//! Versions 3 (the same but for 72-byte records, each with the hash and its
//! own CRC-32, and no check parts) and 2 (version 3 packed, without
//! alignment) are still read. This module must not do I/O.

use crate::calendar::Day;
use crate::config::limits;
use crate::ingest::txn::Card;
use crate::output::direct::ALIGN_BYTES;

use super::packed::{FIELDS, Widths};

pub const MAGIC: &[u8; 8] = b"SETLIDX\0";
/// The segment layout version this engine writes.
pub const SEGMENT_VERSION: u32 = 4;
/// The aligned layout with 72-byte records, still read.
pub const SEGMENT_VERSION_WIDE: u32 = 3;
/// The packed layout of earlier engines, still read.
pub const SEGMENT_VERSION_PACKED: u32 = 2;
/// The header of version 4: the fields of version 3, the widths, the CRC.
pub const HEADER_BYTES: usize = 68;
/// The header of versions 2 and 3.
const HEADER_BYTES_WIDE: usize = 64;
/// A record of versions 2 and 3.
pub const WIDE_RECORD_BYTES: usize = 72;
/// Entries in one segment file: a run with more writes several. Its ids
/// (up to 64 bytes each, plus block padding) must fit the `u32` offsets of
/// the ids part: 2^25 × 64 bytes is 2 GiB.
pub const SEGMENT_ENTRIES_MAX: usize = 1 << 25;
const _: () = assert!(
    SEGMENT_ENTRIES_MAX * limits::TXN_ID_BYTES_MAX
        + (SEGMENT_ENTRIES_MAX / BLOCK_ENTRIES + 1) * ALIGN_BYTES
        < u32::MAX as usize
);

const FLAG_PURCHASE: u8 = 1;
const FLAG_VOIDED: u8 = 2;
const FLAG_CREDIT: u8 = 4;

/// Entries per writer block; each block's ids start aligned. Any record
/// width times a block is then a whole number of aligned blocks too.
pub const BLOCK_ENTRIES: usize = 1 << 15;
const _: () = assert!(BLOCK_ENTRIES.is_multiple_of(ALIGN_BYTES));
/// Records per check: a hit reads and checks this many records and their
/// ids, about 2 KB, rather than each record carrying a 4-byte CRC-32.
pub const CHECK_RECORDS: usize = 64;
/// A check: where its block's ids start in the ids part, and the CRC-32.
pub const CHECK_BYTES: usize = 8;
/// A writer block's checks fill one aligned block exactly.
const _: () = assert!(BLOCK_ENTRIES / CHECK_RECORDS * CHECK_BYTES == ALIGN_BYTES);
/// Sorted positions per checked page of the positions part.
pub const POSITIONS_PER_PAGE: usize = ALIGN_BYTES / 4;

/// Where each part of a segment of `count` entries starts. Parts that a
/// version does not have are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub count: usize,
    /// Parts start at multiples of this: 1 (packed) or `ALIGN_BYTES`.
    pub align: usize,
    pub record_bytes: usize,
    pub hashes_at: usize,
    pub positions_at: usize,
    pub position_checks_at: usize,
    pub records_at: usize,
    pub checks_at: usize,
    pub ids_at: usize,
}

impl Layout {
    /// The layout this engine writes, for records of `widths`.
    pub fn new(count: usize, widths: &Widths) -> Layout {
        Layout::of_version(SEGMENT_VERSION, count, widths.record_bytes())
            .expect("the written version has a layout")
    }

    /// The layout of a segment of `version`, if this engine reads it;
    /// `record_bytes` matters to version 4 only.
    pub fn of_version(version: u32, count: usize, record_bytes: usize) -> Option<Layout> {
        let (align, header, record_bytes) = match version {
            SEGMENT_VERSION => (ALIGN_BYTES, HEADER_BYTES, record_bytes),
            SEGMENT_VERSION_WIDE => (ALIGN_BYTES, HEADER_BYTES_WIDE, WIDE_RECORD_BYTES),
            SEGMENT_VERSION_PACKED => (1, HEADER_BYTES_WIDE, WIDE_RECORD_BYTES),
            _ => return None,
        };
        let checked = version == SEGMENT_VERSION;
        let round = |n: usize| n.div_ceil(align) * align;
        let hashes_at = round(header);
        let positions_at = round(hashes_at + 8 * count);
        let position_checks_at = round(positions_at + 4 * count);
        let position_pages = if checked {
            count.div_ceil(POSITIONS_PER_PAGE)
        } else {
            0
        };
        let records_at = round(position_checks_at + 4 * position_pages);
        let checks_at = round(records_at + record_bytes * count);
        let checks = if checked {
            count.div_ceil(CHECK_RECORDS)
        } else {
            0
        };
        Some(Layout {
            count,
            align,
            record_bytes,
            hashes_at,
            positions_at,
            position_checks_at,
            records_at,
            checks_at,
            ids_at: round(checks_at + CHECK_BYTES * checks),
        })
    }

    /// `n` rounded up to where the next part may start.
    pub fn round(&self, n: usize) -> usize {
        n.div_ceil(self.align) * self.align
    }
}

/// The header's fields after the magic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub count: u32,
    pub first_day: Day,
    pub last_day: Day,
    /// Bytes of the ids part, padding included.
    pub ids_bytes: u32,
    pub merchant_count: u32,
    pub merchant_bytes: u32,
    pub category_count: u32,
    pub category_bytes: u32,
    /// CRC-32 of the hash column, up to where the positions start.
    pub hashes_crc: u32,
    /// CRC-32 of the name tables.
    pub names_crc: u32,
    /// Bits of each record field (version 4; zeros before).
    pub widths: [u8; FIELDS],
}

/// Where the fields of versions 2 and 3 end and their CRC is.
const HEADER_CRC_AT_WIDE: usize = 52;
/// Where version 4 has its field widths, and then its CRC.
const HEADER_WIDTHS_AT: usize = 52;
const HEADER_CRC_AT: usize = 64;
const _: () = assert!(HEADER_WIDTHS_AT + FIELDS <= HEADER_CRC_AT);
const _: () = assert!(HEADER_CRC_AT + 4 == HEADER_BYTES);

pub fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    /// The header of version 4, which this engine writes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..8].copy_from_slice(MAGIC);
        let fields = [
            self.version,
            self.count,
            self.first_day as u32,
            self.last_day as u32,
            self.ids_bytes,
            self.merchant_count,
            self.merchant_bytes,
            self.category_count,
            self.category_bytes,
            self.hashes_crc,
            self.names_crc,
        ];
        for (k, value) in fields.iter().enumerate() {
            out[8 + 4 * k..12 + 4 * k].copy_from_slice(&value.to_le_bytes());
        }
        out[HEADER_WIDTHS_AT..HEADER_WIDTHS_AT + FIELDS].copy_from_slice(&self.widths);
        let crc = crc32fast::hash(&out[..HEADER_CRC_AT]);
        out[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a header; `Err` says why it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Header, &'static str> {
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err("no segment header");
        }
        let field = |k: usize| u32_at(bytes, 8 + 4 * k);
        let crc_at = match field(0) {
            SEGMENT_VERSION => HEADER_CRC_AT,
            _ => HEADER_CRC_AT_WIDE,
        };
        if crc32fast::hash(&bytes[..crc_at]) != u32_at(bytes, crc_at) {
            return Err("header checksum mismatch");
        }
        let mut widths = [0u8; FIELDS];
        if field(0) == SEGMENT_VERSION {
            widths.copy_from_slice(&bytes[HEADER_WIDTHS_AT..HEADER_WIDTHS_AT + FIELDS]);
        }
        Ok(Header {
            widths,
            version: field(0),
            count: field(1),
            first_day: field(2) as i32,
            last_day: field(3) as i32,
            ids_bytes: field(4),
            merchant_count: field(5),
            merchant_bytes: field(6),
            category_count: field(7),
            category_bytes: field(8),
            hashes_crc: field(9),
            names_crc: field(10),
        })
    }
}

/// What later rows need of an accepted purchase. `N` names a merchant or
/// category: a number into the segment's tables when written, the bytes
/// when read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase<N = Vec<u8>> {
    pub merchant_id: N,
    /// The category the purchase was charged under.
    pub category: N,
    pub card: Card,
    pub unix_s: i64,
    pub nanos: u32,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub voided: bool,
    pub refunded_fen: i64,
    pub fee_returned_fen: i64,
}

impl<N> Purchase<N> {
    /// The same purchase under other names (numbers for bytes, or back).
    pub fn renamed<M>(&self, merchant_id: M, category: M) -> Purchase<M> {
        Purchase {
            merchant_id,
            category,
            card: self.card,
            unix_s: self.unix_s,
            nanos: self.nanos,
            amount_fen: self.amount_fen,
            fee_fen: self.fee_fen,
            voided: self.voided,
            refunded_fen: self.refunded_fen,
            fee_returned_fen: self.fee_returned_fen,
        }
    }
}

/// One id of the index: `I` holds the id's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<I = Vec<u8>, N = Vec<u8>> {
    pub hash: u64,
    pub id: I,
    pub business_day: Day,
    /// `Some` for an accepted purchase; `None` for any other row's id.
    pub purchase: Option<Purchase<N>>,
}

/// An entry as a run writes it: id borrowed, names numbered.
pub type NewEntry<'a> = Entry<&'a [u8], u32>;

/// The CRC-32 of a record of versions 2 and 3 (its CRC field read as
/// zero) and its id.
pub fn record_crc(record: &[u8; WIDE_RECORD_BYTES], id: &[u8]) -> u32 {
    let mut bytes = [0u8; WIDE_RECORD_BYTES + limits::TXN_ID_BYTES_MAX];
    bytes[..WIDE_RECORD_BYTES].copy_from_slice(record);
    bytes[28..32].fill(0);
    let id = &id[..id.len().min(limits::TXN_ID_BYTES_MAX)];
    bytes[WIDE_RECORD_BYTES..WIDE_RECORD_BYTES + id.len()].copy_from_slice(id);
    crc32fast::hash(&bytes[..WIDE_RECORD_BYTES + id.len()])
}

/// A record of versions 2 and 3, names still numbered; its id is located
/// by `id_offset` and `id_len`.
pub struct Decoded {
    pub hash: u64,
    pub business_day: Day,
    pub id_offset: usize,
    pub id_len: usize,
    pub crc: u32,
    pub purchase: Option<Purchase<u32>>,
}

pub fn decode_wide(record: &[u8; WIDE_RECORD_BYTES]) -> Decoded {
    let flags = record[12];
    let i64_at = |at: usize| u64_at(record, at) as i64;
    Decoded {
        hash: u64_at(record, 0),
        business_day: u32_at(record, 8) as i32,
        id_offset: u32_at(record, 16) as usize,
        id_len: usize::from(record[13]),
        crc: u32_at(record, 28),
        purchase: (flags & FLAG_PURCHASE != 0).then(|| Purchase {
            merchant_id: u32_at(record, 20),
            category: u32::from(u16::from_le_bytes([record[14], record[15]])),
            card: if flags & FLAG_CREDIT != 0 {
                Card::Credit
            } else {
                Card::Debit
            },
            unix_s: i64_at(32),
            nanos: u32_at(record, 24),
            amount_fen: i64_at(40),
            fee_fen: i64_at(48),
            voided: flags & FLAG_VOIDED != 0,
            refunded_fen: i64_at(56),
            fee_returned_fen: i64_at(64),
        }),
    }
}

/// The CRC-32 of a check block of version 4: where its ids start in the
/// ids part, its records, and its ids.
pub fn check_crc(ids_offset: u32, records: &[u8], ids: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&ids_offset.to_le_bytes());
    crc.update(records);
    crc.update(ids);
    crc.finalize()
}

/// Encodes a name table: `count + 1` offsets, then the bytes.
pub fn encode_names(names: &[&[u8]], out: &mut Vec<u8>) {
    let mut offset = 0u32;
    out.extend_from_slice(&offset.to_le_bytes());
    for name in names {
        offset += name.len() as u32;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for name in names {
        out.extend_from_slice(name);
    }
}

/// Bytes of an encoded name table.
pub fn names_bytes(names: &[&[u8]]) -> usize {
    4 * (names.len() + 1) + names.iter().map(|n| n.len()).sum::<usize>()
}
