//! The record of index segment layout version 4: one entry's fields packed
//! into as few bits as the segment's own values need.
//!
//! Every record of a segment has the same width. Each field takes the bits
//! that the segment's largest value of it needs (the header lists them),
//! never more than its `*_BITS_MAX`; a record is its fields in `Field`
//! order, least significant bit first, rounded up to whole bytes. Every
//! field is exact: a value that its limit cannot hold is refused with a
//! sentence saying which, never cut. The business date is stored as an
//! offset from the segment's first date, and the instant as seconds from
//! the start of the day before its business date plus nanoseconds, which
//! any zone offset of under a day keeps within three days.
//!
//! This module must not do I/O or decide what goes into the index.

use crate::calendar::Day;
use crate::config::limits;
use crate::ingest::txn::Card;
use crate::money::AMOUNT_FEN_LIMIT;

use super::format::{Entry, Purchase};

/// A record's fields, in the order of their bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    IdLen,
    Flags,
    Day,
    Merchant,
    Category,
    Seconds,
    Nanos,
    Amount,
    Fee,
    Refunded,
    FeeReturned,
}

pub const FIELDS: usize = 11;

/// An id of 1 to `TXN_ID_BYTES_MAX` bytes: its length.
pub const ID_LEN_BITS_MAX: u32 = 7;
const _: () = assert!(limits::TXN_ID_BYTES_MAX < 1 << ID_LEN_BITS_MAX);
/// Purchase, voided, credit card.
pub const FLAGS_BITS_MAX: u32 = 3;
/// Business dates of one segment lie within the retention window, at most
/// `WINDOW_DAYS_MAX` days long: offsets from its first date.
pub const DAY_SPAN_BITS_MAX: u32 = 16;
const _: () = assert!(limits::WINDOW_DAYS_MAX < 1 << DAY_SPAN_BITS_MAX);
/// Merchant and category numbers index the segment's name tables.
pub const NUMBER_BITS_MAX: u32 = 32;
/// Seconds of an instant after the start (UTC) of the day before its
/// business date. A business date is the UTC date shifted by a zone offset
/// of under a day either way, so an instant lies within three days of it.
pub const SECONDS_BITS_MAX: u32 = 18;
pub const SECONDS_BEFORE_DAY: i64 = SECONDS_PER_DAY;
const SECONDS_PER_DAY: i64 = 86_400;
const SECONDS_SPAN_MAX: i64 = 3 * SECONDS_PER_DAY;
const _: () = assert!(SECONDS_SPAN_MAX <= 1 << SECONDS_BITS_MAX);
pub const NANOS_BITS_MAX: u32 = 30;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const _: () = assert!(NANOS_PER_SECOND <= 1 << NANOS_BITS_MAX);
/// Amount, fee, refunded so far and fee returned so far: amounts are under
/// `AMOUNT_FEN_LIMIT`, a fee is at most its amount (rates are at most 1),
/// and refunds and returned fees at most the amount and the fee.
pub const FEN_BITS_MAX: u32 = 47;
const _: () = assert!(AMOUNT_FEN_LIMIT <= 1 << FEN_BITS_MAX);

/// The most bits of each field, in `Field` order.
pub const FIELD_BITS_MAX: [u32; FIELDS] = [
    ID_LEN_BITS_MAX,
    FLAGS_BITS_MAX,
    DAY_SPAN_BITS_MAX,
    NUMBER_BITS_MAX,
    NUMBER_BITS_MAX,
    SECONDS_BITS_MAX,
    NANOS_BITS_MAX,
    FEN_BITS_MAX,
    FEN_BITS_MAX,
    FEN_BITS_MAX,
    FEN_BITS_MAX,
];
const RECORD_BITS_MAX: u32 = {
    let mut sum = 0;
    let mut k = 0;
    while k < FIELDS {
        sum += FIELD_BITS_MAX[k];
        k += 1;
    }
    sum
};
/// The widest record: every field at its limit.
pub const RECORD_BYTES_MAX: usize = RECORD_BITS_MAX.div_ceil(8) as usize;
/// A field is read through an 8-byte window at its first byte: its bits
/// and their shift within that byte must fit 64 bits.
const _: () = assert!(FEN_BITS_MAX + 7 <= 64 && NUMBER_BITS_MAX + 7 <= 64);
/// Scratch for a record: its bytes, and the last 64-bit word written
/// whole.
const _: () = assert!(RECORD_BYTES_MAX.div_ceil(8) * 8 <= RECORD_BYTES_MAX + 8);

const FLAG_PURCHASE: u64 = 1;
const FLAG_VOIDED: u64 = 2;
const FLAG_CREDIT: u64 = 4;

/// The bits each field takes in a segment's records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Widths([u8; FIELDS]);

/// Bits needed to write `value`.
fn bits(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}

impl Widths {
    /// The widths that hold every value whose bits `union` gathers (the OR
    /// of each field's values: it needs as many bits as their maximum), the
    /// business dates spanning `day_span` days.
    pub fn holding(union: &[u64; FIELDS], day_span: u64) -> Widths {
        let mut widths = [0u8; FIELDS];
        for (k, width) in widths.iter_mut().enumerate() {
            let value = if k == Field::Day as usize {
                day_span
            } else {
                union[k]
            };
            let needed = bits(value);
            assert!(needed <= FIELD_BITS_MAX[k], "values are checked first");
            *width = needed as u8;
        }
        Widths(widths)
    }

    /// Widths as a header lists them; `None` if one exceeds its limit.
    pub fn from_bytes(bytes: [u8; FIELDS]) -> Option<Widths> {
        let within = bytes
            .iter()
            .zip(FIELD_BITS_MAX)
            .all(|(&width, max)| u32::from(width) <= max);
        within.then_some(Widths(bytes))
    }

    pub fn to_bytes(self) -> [u8; FIELDS] {
        self.0
    }

    /// Bytes of one record.
    pub fn record_bytes(&self) -> usize {
        let total: u32 = self.0.iter().map(|&w| u32::from(w)).sum();
        total.div_ceil(8) as usize
    }
}

/// An entry's field values, in `Field` order, its business date as an
/// offset from `first_day`. `Err` says which field its limit cannot hold.
pub fn values<N: Copy + Into<u32>>(
    entry: &Entry<&[u8], N>,
    first_day: Day,
) -> Result<[u64; FIELDS], String> {
    let mut values = [0u64; FIELDS];
    let id_len = entry.id.len();
    if !(1..=limits::TXN_ID_BYTES_MAX).contains(&id_len) {
        return Err(format!(
            "its id has {id_len} bytes, not 1 to {}",
            limits::TXN_ID_BYTES_MAX
        ));
    }
    values[Field::IdLen as usize] = id_len as u64;
    let day = i64::from(entry.business_day) - i64::from(first_day);
    values[Field::Day as usize] = u64::try_from(day)
        .ok()
        .filter(|&d| bits(d) <= DAY_SPAN_BITS_MAX)
        .ok_or_else(|| {
            format!("its business date is {day} days from the segment's first, outside 0..2^{DAY_SPAN_BITS_MAX}")
        })?;
    let Some(p) = &entry.purchase else {
        return Ok(values);
    };
    let mut flags = FLAG_PURCHASE;
    if p.voided {
        flags |= FLAG_VOIDED;
    }
    if p.card == Card::Credit {
        flags |= FLAG_CREDIT;
    }
    values[Field::Flags as usize] = flags;
    values[Field::Merchant as usize] = u64::from(p.merchant_id.into());
    values[Field::Category as usize] = u64::from(p.category.into());
    let seconds = p.unix_s - i64::from(entry.business_day) * SECONDS_PER_DAY + SECONDS_BEFORE_DAY;
    if !(0..SECONDS_SPAN_MAX).contains(&seconds) {
        return Err(format!(
            "its instant {} s is not within a day of its business date",
            p.unix_s
        ));
    }
    values[Field::Seconds as usize] = seconds as u64;
    if u64::from(p.nanos) >= NANOS_PER_SECOND {
        return Err(format!("its instant has {} nanoseconds", p.nanos));
    }
    values[Field::Nanos as usize] = u64::from(p.nanos);
    let amounts = [
        (Field::Amount, "amount", p.amount_fen),
        (Field::Fee, "fee", p.fee_fen),
        (Field::Refunded, "refunded so far", p.refunded_fen),
        (
            Field::FeeReturned,
            "fee returned so far",
            p.fee_returned_fen,
        ),
    ];
    for (field, name, fen) in amounts {
        values[field as usize] = u64::try_from(fen)
            .ok()
            .filter(|&v| bits(v) <= FEN_BITS_MAX)
            .ok_or_else(|| format!("its {name} {fen} fen is outside 0..2^{FEN_BITS_MAX}"))?;
    }
    Ok(values)
}

/// Scratch for one record: the last word written may reach past its end.
pub type Scratch = [u8; RECORD_BYTES_MAX + 8];

/// Packs `values` (each within its width) into the first
/// `widths.record_bytes()` bytes of `scratch`, which it returns. The bits
/// gather in a 64-bit word that is written out whenever it fills.
pub fn encode<'s>(values: &[u64; FIELDS], widths: &Widths, scratch: &'s mut Scratch) -> &'s [u8] {
    let mut word = 0u64;
    let mut filled = 0u32;
    let mut out = 0usize;
    let mut beyond = 0u64;
    for (&value, &width) in values.iter().zip(&widths.0) {
        let width = u32::from(width);
        // Any bit of a value above its width shows here; checked once.
        beyond |= value.checked_shr(width).unwrap_or(0);
        word |= value.checked_shl(filled).unwrap_or(0);
        filled += width;
        if filled >= 64 {
            scratch[out..out + 8].copy_from_slice(&word.to_le_bytes());
            out += 8;
            filled -= 64;
            // The value's bits that did not fit the word written.
            word = value.checked_shr(width - filled).unwrap_or(0);
        }
    }
    assert_eq!(beyond, 0, "every value within its width");
    scratch[out..out + 8].copy_from_slice(&word.to_le_bytes());
    &scratch[..widths.record_bytes()]
}

/// The value of field `k` in a record laid out by `widths`.
fn field(record: &[u8], widths: &Widths, k: Field) -> u64 {
    let at: usize = widths.0[..k as usize].iter().map(|&w| usize::from(w)).sum();
    let width = u32::from(widths.0[k as usize]);
    let mut window = [0u8; 8];
    let from = (at / 8).min(record.len());
    let to = (from + 8).min(record.len());
    window[..to - from].copy_from_slice(&record[from..to]);
    (u64::from_le_bytes(window) >> (at % 8)) & ((1u64 << width) - 1)
}

/// The id length a record gives (to locate the ids of its block).
pub fn id_len(record: &[u8], widths: &Widths) -> usize {
    field(record, widths, Field::IdLen) as usize
}

/// A record's entry: its business date, id length, and purchase with
/// names numbered.
pub struct Unpacked {
    pub business_day: Day,
    pub id_len: usize,
    pub purchase: Option<Purchase<u32>>,
}

/// Unpacks a record of a segment whose first business date is `first_day`.
pub fn decode(record: &[u8], widths: &Widths, first_day: Day) -> Unpacked {
    let get = |k: Field| field(record, widths, k);
    let business_day = first_day.saturating_add(get(Field::Day) as Day);
    let flags = get(Field::Flags);
    let fen = |k: Field| get(k) as i64;
    Unpacked {
        business_day,
        id_len: get(Field::IdLen) as usize,
        purchase: (flags & FLAG_PURCHASE != 0).then(|| Purchase {
            merchant_id: get(Field::Merchant) as u32,
            category: get(Field::Category) as u32,
            card: if flags & FLAG_CREDIT != 0 {
                Card::Credit
            } else {
                Card::Debit
            },
            unix_s: i64::from(business_day) * SECONDS_PER_DAY - SECONDS_BEFORE_DAY
                + fen(Field::Seconds),
            nanos: get(Field::Nanos) as u32,
            amount_fen: fen(Field::Amount),
            fee_fen: fen(Field::Fee),
            voided: flags & FLAG_VOIDED != 0,
            refunded_fen: fen(Field::Refunded),
            fee_returned_fen: fen(Field::FeeReturned),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NewEntry;

    fn purchase(amount_fen: i64) -> Purchase<u32> {
        Purchase {
            merchant_id: 3,
            category: 1,
            card: Card::Debit,
            unix_s: 0,
            nanos: 0,
            amount_fen,
            fee_fen: 0,
            voided: false,
            refunded_fen: 0,
            fee_returned_fen: 0,
        }
    }

    /// Packs `entries` with the widths they need and unpacks them again.
    fn round_trip(entries: &[NewEntry]) -> (Widths, Vec<Unpacked>) {
        let first_day = entries.iter().map(|e| e.business_day).min().unwrap();
        let last_day = entries.iter().map(|e| e.business_day).max().unwrap();
        let mut union = [0u64; FIELDS];
        for entry in entries {
            for (u, v) in union.iter_mut().zip(values(entry, first_day).unwrap()) {
                *u |= v;
            }
        }
        let widths = Widths::holding(&union, (last_day - first_day) as u64);
        let mut scratch = [0u8; RECORD_BYTES_MAX + 8];
        let unpacked = entries
            .iter()
            .map(|entry| {
                let record = encode(&values(entry, first_day).unwrap(), &widths, &mut scratch);
                assert_eq!(record.len(), widths.record_bytes());
                decode(record, &widths, first_day)
            })
            .collect();
        (widths, unpacked)
    }

    #[test]
    fn the_largest_values_each_field_allows_round_trip() {
        // 0001-01-01 and 9999-12-31 are the calendar's ends; a segment
        // spans at most 2^16 - 1 days, so the largest offset is tried at
        // the top of the calendar.
        let top = crate::calendar::parse_date(b"9999-12-31").unwrap();
        let bottom = crate::calendar::parse_date(b"0001-01-01").unwrap();
        let fen_max = (1i64 << FEN_BITS_MAX) - 1;
        let id = [b'x'; limits::TXN_ID_BYTES_MAX];
        let largest = Purchase {
            merchant_id: u32::MAX,
            category: u32::MAX,
            card: Card::Credit,
            // 23:59:59.999999999 at -23:59 is the latest instant of a day.
            unix_s: i64::from(top) * 86_400 + 86_399 + 86_340,
            nanos: 999_999_999,
            amount_fen: fen_max,
            fee_fen: fen_max,
            voided: true,
            refunded_fen: fen_max,
            fee_returned_fen: fen_max,
        };
        let earliest = Purchase {
            // 00:00:00 at +23:59 is the earliest instant of a day.
            unix_s: i64::from(top - 65_535) * 86_400 - 86_340,
            ..purchase(1)
        };
        let entries = [
            Entry {
                hash: 1,
                id: &id[..],
                business_day: top,
                purchase: Some(largest.clone()),
            },
            Entry {
                hash: 2,
                id: &id[..1],
                business_day: top - 65_535,
                purchase: Some(earliest.clone()),
            },
            Entry {
                hash: 3,
                id: &b"R"[..],
                business_day: top - 7,
                purchase: None,
            },
        ];
        let (widths, unpacked) = round_trip(&entries);
        assert_eq!(
            widths.to_bytes(),
            [7, 3, 16, 32, 32, 18, 30, 47, 47, 47, 47]
        );
        assert_eq!(widths.record_bytes(), RECORD_BYTES_MAX);
        assert_eq!(RECORD_BYTES_MAX, 41, "326 bits");
        assert_eq!(unpacked[0].purchase.as_ref(), Some(&largest));
        assert_eq!(unpacked[0].business_day, top);
        assert_eq!(unpacked[0].id_len, 64);
        assert_eq!(unpacked[1].purchase.as_ref(), Some(&earliest));
        assert_eq!(unpacked[1].business_day, top - 65_535);
        assert_eq!(unpacked[1].id_len, 1);
        assert!(unpacked[2].purchase.is_none());
        assert_eq!(unpacked[2].business_day, top - 7);
        // The first date of the calendar, as a segment's first date.
        let entry = Entry {
            hash: 4,
            id: &b"B"[..],
            business_day: bottom,
            purchase: Some(Purchase {
                unix_s: i64::from(bottom) * 86_400,
                ..purchase(5)
            }),
        };
        let (_, unpacked) = round_trip(std::slice::from_ref(&entry));
        assert_eq!(unpacked[0].purchase, entry.purchase);
    }

    #[test]
    fn small_values_take_few_bits() {
        // One debit purchase of 100.00 at 01:00 (+08:00) with a fee of 0.38,
        // and a non-purchase id two days later. Its seconds are 61,200 after
        // the start of the day before (17:00 UTC the day before): 16 bits.
        // 2 + 1 + 2 + 2 + 1 + 16 + 0 + 14 + 6 + 0 + 0 = 44 bits, 6 bytes.
        let p = Purchase {
            unix_s: 20 * 86_400 + 3_600 - 8 * 3_600,
            fee_fen: 38,
            ..purchase(10_000)
        };
        let entries = [
            Entry {
                hash: 1,
                id: &b"T1"[..],
                business_day: 20,
                purchase: Some(p.clone()),
            },
            Entry {
                hash: 2,
                id: &b"R1"[..],
                business_day: 22,
                purchase: None,
            },
        ];
        let (widths, unpacked) = round_trip(&entries);
        assert_eq!(widths.to_bytes(), [2, 1, 2, 2, 1, 16, 0, 14, 6, 0, 0]);
        assert_eq!(widths.record_bytes(), 6);
        assert_eq!(unpacked[0].purchase, Some(p));
    }

    #[test]
    fn values_beyond_a_limit_are_refused_with_the_field_named() {
        static LONG_ID: [u8; 65] = [b'x'; 65];
        let entry = |day: Day, id: &'static [u8], p: Option<Purchase<u32>>| Entry {
            hash: 0,
            id,
            business_day: day,
            purchase: p,
        };
        let cases: [(NewEntry, &str); 7] = [
            (entry(0, &LONG_ID, None), "65 bytes"),
            (entry(0, b"", None), "0 bytes"),
            (entry(65_536, b"A", None), "65536 days"),
            (
                entry(0, b"A", Some(purchase(1 << FEN_BITS_MAX))),
                "amount 140737488355328 fen is outside 0..2^47",
            ),
            (
                entry(
                    0,
                    b"A",
                    Some(Purchase {
                        fee_fen: -1,
                        ..purchase(1)
                    }),
                ),
                "fee -1 fen",
            ),
            (
                entry(
                    0,
                    b"A",
                    Some(Purchase {
                        unix_s: 2 * 86_400,
                        ..purchase(1)
                    }),
                ),
                "not within a day of its business date",
            ),
            (
                entry(
                    0,
                    b"A",
                    Some(Purchase {
                        nanos: 1_000_000_000,
                        ..purchase(1)
                    }),
                ),
                "1000000000 nanoseconds",
            ),
        ];
        for (entry, message) in cases {
            let error = values(&entry, 0).unwrap_err();
            assert!(error.contains(message), "{error}");
        }
        // The edges just inside are taken.
        assert!(values(&entry(65_535, b"A", None), 0).is_ok());
        let p = Purchase {
            unix_s: -86_400,
            ..purchase((1 << FEN_BITS_MAX) - 1)
        };
        assert!(values(&entry(0, b"A", Some(p)), 0).is_ok());
    }

    #[test]
    fn any_widths_and_values_read_back_field_by_field() {
        // Random widths up to each limit (zero included) and random values
        // that fill them, the top bit set every other time.
        let all = [
            Field::IdLen,
            Field::Flags,
            Field::Day,
            Field::Merchant,
            Field::Category,
            Field::Seconds,
            Field::Nanos,
            Field::Amount,
            Field::Fee,
            Field::Refunded,
            Field::FeeReturned,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut scratch = [0xAAu8; RECORD_BYTES_MAX + 8];
        for round in 0..2_000 {
            let mut bytes = [0u8; FIELDS];
            for (width, max) in bytes.iter_mut().zip(FIELD_BITS_MAX) {
                *width = (next() % u64::from(max + 1)) as u8;
            }
            let widths = Widths::from_bytes(bytes).unwrap();
            let mut values = [0u64; FIELDS];
            for (value, &width) in values.iter_mut().zip(&bytes) {
                if width > 0 {
                    let top = if round % 2 == 0 { 1 << (width - 1) } else { 0 };
                    *value = (next() & ((1u64 << width) - 1)) | top;
                }
            }
            let record = encode(&values, &widths, &mut scratch).to_vec();
            for (k, field_k) in all.into_iter().enumerate() {
                assert_eq!(field(&record, &widths, field_k), values[k], "{bytes:?}");
            }
        }
    }

    #[test]
    fn widths_beyond_their_limits_are_not_a_header() {
        let mut bytes = [7, 3, 16, 32, 32, 18, 30, 47, 47, 47, 47];
        assert!(Widths::from_bytes(bytes).is_some());
        bytes[7] = 48;
        assert!(Widths::from_bytes(bytes).is_none());
    }
}
