//! Adjustments (RULES.md 1.3): manual credits and charges booked into one
//! of the run's settlements. Every bad row is `bad_adjustment`; the run
//! goes on.

use std::collections::HashSet;

use crate::calendar::{self, Day};
use crate::error::Result;
use crate::ingest::csv::{Record, Tokenizer};
use crate::ingest::header::{self, Header};
use crate::ingest::merchants::Merchants;
use crate::ingest::reject::{Reject, RejectCode};
use crate::money;

/// An accepted adjustment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    pub id: String,
    pub merchant: u32,
    pub settlement_day: Day,
    pub amount_fen: i64,
    pub reason: String,
}

pub const COLUMNS: [(&str, bool); 5] = [
    ("adj_id", true),
    ("merchant_id", true),
    ("settlement_date", true),
    ("amount", true),
    ("reason", true),
];

/// Checks the header alone, so that a bad one stops the run early.
pub fn read_header(buf: &[u8], file: &str) -> Result<Header> {
    header::read(buf, file, &COLUMNS)
}

/// What one adjustments file gave.
#[derive(Debug, Default)]
pub struct Parsed {
    pub accepted: Vec<Adjustment>,
    pub rejects: Vec<Reject>,
    pub rows_read: u64,
}

/// Parses and checks every adjustment row in line order. `settlement_days`
/// is the inclusive range of settlement dates the run owns, or `None` when
/// the run has no start or no horizon (then no adjustment is booked).
pub fn parse(
    buf: &[u8],
    file: &str,
    file_index: u32,
    merchants: &Merchants,
    settlement_days: Option<(Day, Day)>,
) -> Result<Parsed> {
    let header = read_header(buf, file)?;
    let mut tokenizer = Tokenizer::new(buf, header.data_start);
    let mut record = Record::default();
    let mut parsed = Parsed::default();
    let mut taken_ids = HashSet::new();
    while tokenizer.next_record(&mut record) {
        parsed.rows_read += 1;
        let line = header.lines_before_data + record.lines_before + 1;
        let raw = &buf[record.start..record.end];
        match check_row(
            &record,
            raw,
            &header,
            merchants,
            settlement_days,
            &taken_ids,
        ) {
            Ok(adjustment) => {
                taken_ids.insert(adjustment.id.clone());
                parsed.accepted.push(adjustment);
            }
            Err(detail) => {
                let id = if record.field_count() == header.field_count {
                    std::str::from_utf8(record.field_or_empty(header.columns[0]))
                        .unwrap_or_default()
                        .to_string()
                } else {
                    String::new()
                };
                parsed.rejects.push(Reject {
                    file_index,
                    line,
                    id,
                    code: RejectCode::BadAdjustment,
                    detail,
                });
            }
        }
    }
    Ok(parsed)
}

fn check_row(
    record: &Record,
    raw: &[u8],
    header: &Header,
    merchants: &Merchants,
    settlement_days: Option<(Day, Day)>,
    taken_ids: &HashSet<String>,
) -> std::result::Result<Adjustment, String> {
    if record.unterminated {
        return Err("a quoted field is not closed before the end of the file".into());
    }
    if raw.len() > crate::ingest::txn::ROW_BYTES_MAX {
        return Err(format!(
            "the row is {} bytes, more than the limit of {}",
            raw.len(),
            crate::ingest::txn::ROW_BYTES_MAX
        ));
    }
    if std::str::from_utf8(raw).is_err() {
        return Err("the row is not valid UTF-8".into());
    }
    if record.field_count() != header.field_count {
        return Err(format!(
            "the row has {} fields, the header has {}",
            record.field_count(),
            header.field_count
        ));
    }
    let text = |i: usize| {
        std::str::from_utf8(record.field_or_empty(header.columns[i])).unwrap_or_default()
    };
    for (i, (name, _)) in COLUMNS.iter().enumerate() {
        if text(i).is_empty() {
            return Err(format!("required field {name} is empty"));
        }
    }
    let id = text(0);
    if taken_ids.contains(id) {
        return Err(format!(
            "adj_id {id:?} is already taken by an earlier accepted adjustment"
        ));
    }
    let merchant = merchants
        .index_of(text(1).as_bytes())
        .ok_or_else(|| format!("merchant_id {:?} is not in master data", text(1)))?;
    let settlement_day = calendar::parse_date(text(2).as_bytes())
        .ok_or_else(|| format!("settlement_date {:?} is not a date YYYY-MM-DD", text(2)))?;
    let amount_fen = money::parse_amount_fen(text(3).as_bytes(), true)
        .map_err(|e| format!("amount {:?} {}", text(3), e.describe()))?;
    if amount_fen == 0 {
        return Err(format!("amount {:?} is zero", text(3)));
    }
    match settlement_days {
        None => return Err(
            "this run has no settlement dates (no start or no horizon), so it books no adjustment"
                .into(),
        ),
        Some((first, last)) if settlement_day < first || settlement_day > last => {
            return Err(format!(
                "settlement_date {} is not one of this run's settlement dates ({} to {})",
                text(2),
                calendar::format_date(first),
                calendar::format_date(last)
            ));
        }
        Some(_) => {}
    }
    Ok(Adjustment {
        id: id.to_string(),
        merchant,
        settlement_day,
        amount_fen,
        reason: text(4).to_string(),
    })
}
