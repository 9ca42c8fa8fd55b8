//! Transaction rows (RULES.md 1.1): steps 1 and 2 of 3.3, turning a record
//! into a compact `Txn` or a `Reject`.

use crate::calendar::{self, Day, Instant};
use crate::config::{Mcc, Settings, limits};
use crate::ingest::csv::Record;
use crate::ingest::merchants::{Merchants, parse_mcc};
use crate::ingest::reject::RejectCode;
use crate::money::{self, AmountError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Purchase,
    Refund,
    Void,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Refund => "refund",
            Kind::Void => "void",
        }
    }
}

/// The card kind of a purchase; refunds and voids carry none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    Debit,
    Credit,
    NotApplicable,
}

/// Bytes kept in a chunk's arena: ids are compared byte for byte there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRef {
    pub chunk: u32,
    pub offset: u32,
    pub len: u32,
}

/// A merchant index for a `merchant_id` that is not in master data.
pub const MERCHANT_UNKNOWN: u32 = u32::MAX;
/// The `mcc` of a row that names none.
pub const MCC_NONE: Mcc = Mcc::MAX;

/// A transaction that passed steps 1 and 2, in compact form.
#[derive(Clone, Copy, Debug)]
pub struct Txn {
    pub instant: Instant,
    pub amount_fen: i64,
    /// Physical line, relative to the chunk until the pipeline fixes it up.
    pub line: u64,
    pub txn_id: IdRef,
    pub orig_txn_id: IdRef,
    pub terminal_id: IdRef,
    /// The `merchant_id` text, kept only when it is not in master data.
    pub unknown_merchant_id: IdRef,
    pub merchant: u32,
    pub business_day: Day,
    pub file_index: u32,
    pub kind: Kind,
    pub card: Card,
    pub mcc: Mcc,
}

/// Where the columns of a transactions file are.
#[derive(Clone, Debug)]
pub struct TxnColumns {
    pub field_count: usize,
    txn_id: Option<usize>,
    merchant_id: Option<usize>,
    ts: Option<usize>,
    kind: Option<usize>,
    amount: Option<usize>,
    card: Option<usize>,
    orig_txn_id: Option<usize>,
    mcc: Option<usize>,
    terminal_id: Option<usize>,
}

/// The header columns of a transactions file, and whether each is required.
pub const COLUMNS: [(&str, bool); 9] = [
    ("txn_id", true),
    ("merchant_id", true),
    ("ts", true),
    ("type", true),
    ("amount", true),
    ("card", false),
    ("orig_txn_id", false),
    ("mcc", false),
    ("terminal_id", false),
];

impl TxnColumns {
    pub fn new(field_count: usize, positions: &[Option<usize>]) -> TxnColumns {
        assert_eq!(positions.len(), COLUMNS.len());
        TxnColumns {
            field_count,
            txn_id: positions[0],
            merchant_id: positions[1],
            ts: positions[2],
            kind: positions[3],
            amount: positions[4],
            card: positions[5],
            orig_txn_id: positions[6],
            mcc: positions[7],
            terminal_id: positions[8],
        }
    }
}

/// A record longer than this is malformed: ids are short, and a limit keeps
/// a runaway quoted field from swallowing memory.
pub const ROW_BYTES_MAX: usize = 1 << 20;

/// A row that failed step 1 or 2.
pub struct RowReject {
    pub code: RejectCode,
    pub detail: String,
    /// The trimmed `txn_id`, empty where the row has none.
    pub id: String,
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn push_id(arena: &mut Vec<u8>, chunk: u32, bytes: &[u8]) -> IdRef {
    let offset = arena.len() as u32;
    arena.extend_from_slice(bytes);
    IdRef {
        chunk,
        offset,
        len: bytes.len() as u32,
    }
}

/// Checks a record (steps 1 and 2 of RULES.md 3.3) and, when it passes,
/// stores its ids in `arena` and returns its compact form.
pub fn parse_row(
    record: &Record,
    raw: &[u8],
    columns: &TxnColumns,
    settings: &Settings,
    merchants: &Merchants,
    arena: &mut Vec<u8>,
    chunk: u32,
) -> Result<Txn, RowReject> {
    let field = |column: Option<usize>| record.field_or_empty(column);
    let reject = |code: RejectCode, detail: String| {
        let id = if record.field_count() == columns.field_count {
            std::str::from_utf8(field(columns.txn_id))
                .map(str::to_string)
                .unwrap_or_default()
        } else {
            String::new()
        };
        Err(RowReject { code, detail, id })
    };
    let malformed = |detail: String| reject(RejectCode::MalformedRow, detail);

    // Step 1: structure.
    if record.unterminated {
        return malformed("a quoted field is not closed before the end of the file".into());
    }
    if raw.len() > ROW_BYTES_MAX {
        return malformed(format!(
            "the row is {} bytes, more than the limit of {ROW_BYTES_MAX}",
            raw.len()
        ));
    }
    if std::str::from_utf8(raw).is_err() {
        return malformed("the row is not valid UTF-8".into());
    }
    if record.field_count() != columns.field_count {
        return malformed(format!(
            "the row has {} fields, the header has {}",
            record.field_count(),
            columns.field_count
        ));
    }
    let kind_text = field(columns.kind);
    let required = [
        ("txn_id", columns.txn_id, true),
        ("merchant_id", columns.merchant_id, true),
        ("ts", columns.ts, true),
        ("type", columns.kind, true),
        ("amount", columns.amount, true),
        ("card", columns.card, kind_text == b"purchase"),
        (
            "orig_txn_id",
            columns.orig_txn_id,
            kind_text == b"refund" || kind_text == b"void",
        ),
    ];
    for (name, column, needed) in required {
        if needed && field(column).is_empty() {
            let why = if column.is_none() {
                "the file has no such column"
            } else {
                "it is empty"
            };
            return malformed(format!("required field {name} is missing: {why}"));
        }
    }
    let txn_id = field(columns.txn_id);
    if txn_id.len() > limits::TXN_ID_BYTES_MAX {
        return malformed(format!(
            "txn_id is {} bytes, more than {}",
            txn_id.len(),
            limits::TXN_ID_BYTES_MAX
        ));
    }
    let merchant_id = field(columns.merchant_id);
    if merchant_id.len() > limits::MERCHANT_ID_BYTES_MAX {
        return malformed(format!(
            "merchant_id is {} bytes, more than {}",
            merchant_id.len(),
            limits::MERCHANT_ID_BYTES_MAX
        ));
    }

    // Step 2: fields, in the order of RULES.md 3.3.
    let amount_text = field(columns.amount);
    let amount_fen = match money::parse_amount_fen(amount_text, false) {
        Ok(0) => {
            return reject(
                RejectCode::BadAmount,
                format!("amount {:?} is not positive", lossy(amount_text)),
            );
        }
        Ok(fen) => fen,
        Err(AmountError::Sign) => {
            return reject(
                RejectCode::BadAmount,
                format!(
                    "amount {:?} must be positive, without a sign",
                    lossy(amount_text)
                ),
            );
        }
        Err(e) => {
            return reject(
                RejectCode::BadAmount,
                format!("amount {:?} {}", lossy(amount_text), e.describe()),
            );
        }
    };
    let ts_text = field(columns.ts);
    let Some(timestamp) = calendar::parse_timestamp(ts_text, settings.zone_offset_s) else {
        return reject(
            RejectCode::BadTimestamp,
            format!("ts {:?} is not a valid timestamp", lossy(ts_text)),
        );
    };
    let kind = match kind_text {
        b"purchase" => Kind::Purchase,
        b"refund" => Kind::Refund,
        b"void" => Kind::Void,
        other => {
            return reject(
                RejectCode::BadType,
                format!("type {:?} is not purchase, refund or void", lossy(other)),
            );
        }
    };
    let card = match (kind, field(columns.card)) {
        (Kind::Purchase, b"debit") => Card::Debit,
        (Kind::Purchase, b"credit") => Card::Credit,
        (Kind::Purchase, other) => {
            return reject(
                RejectCode::BadCard,
                format!("card {:?} is not debit or credit", lossy(other)),
            );
        }
        _ => Card::NotApplicable,
    };
    let mcc = match field(columns.mcc) {
        [] => MCC_NONE,
        text => match parse_mcc(text) {
            Some(mcc) => mcc,
            None => {
                return reject(
                    RejectCode::BadMcc,
                    format!("mcc {:?} is not 4 digits", lossy(text)),
                );
            }
        },
    };

    let orig = if kind == Kind::Purchase {
        &[][..]
    } else {
        field(columns.orig_txn_id)
    };
    let merchant = merchants.index_of(merchant_id).unwrap_or(MERCHANT_UNKNOWN);
    let unknown_merchant_id = if merchant == MERCHANT_UNKNOWN {
        merchant_id
    } else {
        &[][..]
    };
    Ok(Txn {
        instant: timestamp.instant,
        amount_fen,
        line: record.lines_before,
        txn_id: push_id(arena, chunk, txn_id),
        orig_txn_id: push_id(arena, chunk, orig),
        terminal_id: push_id(arena, chunk, field(columns.terminal_id)),
        unknown_merchant_id: push_id(arena, chunk, unknown_merchant_id),
        merchant,
        business_day: timestamp.business_day,
        file_index: 0,
        kind,
        card,
        mcc,
    })
}
