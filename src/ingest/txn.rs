//! Transaction rows (RULES.md 1.1): steps 1 and 2 of 3.3, turning a record
//! into a compact `Txn` or a `Reject`.

use crate::calendar::{self, Day, Instant};
use crate::config::{Mcc, Settings, limits};
use crate::error::{Error, Result};
use crate::ingest::csv::Record;
use crate::ingest::merchants::{MerchantHot, Merchants, parse_mcc};
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

/// Where a row's ids sit in its chunk's arena, one after the other:
/// `txn_id`, then `orig_txn_id`, then `terminal_id`. Ids are compared byte
/// for byte there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRef {
    pub chunk: u32,
    pub offset: u32,
    pub terminal_len: u32,
    pub txn_id_len: u8,
    /// At most `TXN_ID_BYTES_MAX + 1`: a longer `orig_txn_id` is cut there,
    /// and still matches no `txn_id`.
    pub orig_len: u8,
    /// The `merchant_id` text is kept (after `terminal_id`) only when it is
    /// not in master data, for the reject's sentence; else 0.
    pub unknown_merchant_len: u8,
}

impl IdRef {
    pub fn txn_id_range(&self) -> std::ops::Range<usize> {
        self.offset as usize..self.offset as usize + usize::from(self.txn_id_len)
    }

    pub fn orig_range(&self) -> std::ops::Range<usize> {
        let start = self.offset as usize + usize::from(self.txn_id_len);
        start..start + usize::from(self.orig_len)
    }

    /// The byte ranges of (txn_id, orig_txn_id, terminal_id, unknown
    /// merchant_id) in the arena.
    pub fn ranges(&self) -> [std::ops::Range<usize>; 4] {
        let txn_id = self.txn_id_range();
        let orig = self.orig_range();
        let terminal = orig.end..orig.end + self.terminal_len as usize;
        let merchant = terminal.end..terminal.end + usize::from(self.unknown_merchant_len);
        [txn_id, orig, terminal, merchant]
    }
}

/// A merchant index for a `merchant_id` that is not in master data.
pub const MERCHANT_UNKNOWN: u32 = u32::MAX;
/// The `mcc` of a row that names none.
pub const MCC_NONE: Mcc = Mcc::MAX;

/// Refuses a file with more lines than a row can number
/// (`TXN_FILE_LINES_MAX`), given the line ends counted in it so far.
pub fn check_file_lines(name: &str, line_ends: u64) -> Result<()> {
    // The last line needs no line end: its number is one more.
    if line_ends >= limits::TXN_FILE_LINES_MAX {
        return Err(Error::input(
            name,
            format!(
                "has more than {} lines, more than a row can number; split it into several files",
                limits::TXN_FILE_LINES_MAX
            ),
        ));
    }
    Ok(())
}

/// A transaction that passed steps 1 and 2, in compact form.
#[derive(Clone, Copy, Debug)]
pub struct Txn {
    pub unix_s: i64,
    pub amount_fen: i64,
    /// Physical line, relative to the chunk until the pipeline fixes it up
    /// (a file has at most `TXN_FILE_LINES_MAX` lines).
    pub line: u32,
    /// A hash of `txn_id`, computed once, for partitions and lookups.
    pub id_hash: u64,
    pub ids: IdRef,
    pub nanos: u32,
    pub merchant: u32,
    pub business_day: Day,
    /// The transactions file's number (at most `TXN_FILES_MAX` files).
    pub file_index: u16,
    /// The first failed check of steps 4 and 5, which depend on the row
    /// alone and are therefore decided while parsing.
    pub row_check: Option<RejectCode>,
    pub mcc: Mcc,
    pub kind: Kind,
    pub card: Card,
}

impl Txn {
    /// An empty slot, overwritten before it is read.
    pub const PLACEHOLDER: Txn = Txn {
        unix_s: 0,
        amount_fen: 0,
        line: 0,
        id_hash: 0,
        ids: IdRef {
            chunk: 0,
            offset: 0,
            terminal_len: 0,
            txn_id_len: 0,
            orig_len: 0,
            unknown_merchant_len: 0,
        },
        nanos: 0,
        merchant: MERCHANT_UNKNOWN,
        business_day: 0,
        file_index: 0,
        row_check: None,
        mcc: MCC_NONE,
        kind: Kind::Void,
        card: Card::NotApplicable,
    };

    pub fn instant(&self) -> Instant {
        Instant {
            unix_s: self.unix_s,
            nanos: self.nanos,
        }
    }
}

/// The hash of an id: the same function for `txn_id` and `orig_txn_id`, so
/// a reference lands in its purchase's partition.
pub fn id_hash(id: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5e77_1e00).hash_one(id)
}

/// Steps 4 and 5 of RULES.md 3.3 for one row: late, unknown merchant,
/// inactive dates, beyond the horizon, over the limit. `merchant` is the
/// row's merchant, `None` when master data does not list it.
fn row_check(
    merchant: Option<MerchantHot>,
    kind: Kind,
    amount_fen: i64,
    business_day: Day,
    context: &RowContext,
) -> Option<RejectCode> {
    let RowContext {
        settings,
        through,
        state_horizon,
        ..
    } = *context;
    if state_horizon.is_some_and(|horizon| business_day <= horizon) {
        return Some(RejectCode::LateTransaction);
    }
    let Some(m) = merchant else {
        return Some(RejectCode::UnknownMerchant);
    };
    if business_day < m.activated_on || business_day > m.last_day {
        return Some(RejectCode::MerchantInactive);
    }
    if through.is_some_and(|last| business_day > last) {
        return Some(RejectCode::BeyondHorizon);
    }
    if kind == Kind::Purchase && amount_fen > settings.max_txn_amount_fen {
        return Some(RejectCode::OverLimit);
    }
    None
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

/// What parsing a row needs besides the row.
#[derive(Clone, Copy)]
pub struct RowContext<'a> {
    pub settings: &'a Settings,
    pub merchants: &'a Merchants,
    /// `--through`, for the beyond_horizon check.
    pub through: Option<Day>,
    /// The horizon of the state the run starts from, for late_transaction.
    pub state_horizon: Option<Day>,
    /// Whether rows keep their `terminal_id`: only the detail files
    /// (`--detail`) show it, and a run without them spares the bytes.
    pub terminal_ids: bool,
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

/// Checks a record (steps 1 and 2 of RULES.md 3.3) and, when it passes,
/// stores its ids in `arena` and returns its compact form with its
/// `merchant_id`, which a `MerchantBatch` resolves (the row's merchant and
/// `row_check` are placeholders until then).
pub fn parse_row<'r>(
    record: &'r Record,
    raw: &[u8],
    columns: &TxnColumns,
    context: &RowContext,
    arena: &mut Vec<u8>,
    chunk: u32,
) -> Result<(Txn, &'r [u8]), RowReject> {
    let settings = context.settings;
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
    if !record.ascii && std::str::from_utf8(raw).is_err() {
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
    let orig = &orig[..orig.len().min(limits::TXN_ID_BYTES_MAX + 1)];
    let terminal = if context.terminal_ids {
        field(columns.terminal_id)
    } else {
        &[][..]
    };
    let ids = IdRef {
        chunk,
        offset: arena.len() as u32,
        terminal_len: terminal.len() as u32,
        txn_id_len: txn_id.len() as u8,
        orig_len: orig.len() as u8,
        unknown_merchant_len: 0,
    };
    arena.extend_from_slice(txn_id);
    arena.extend_from_slice(orig);
    arena.extend_from_slice(terminal);
    let txn = Txn {
        unix_s: timestamp.instant.unix_s,
        nanos: timestamp.instant.nanos,
        amount_fen,
        // Saturated only in a file too long to run, which fails.
        line: u32::try_from(record.lines_before).unwrap_or(u32::MAX),
        id_hash: id_hash(txn_id),
        ids,
        merchant: MERCHANT_UNKNOWN,
        business_day: timestamp.business_day,
        file_index: 0,
        row_check: None,
        mcc,
        kind,
        card,
    };
    Ok((txn, merchant_id))
}

/// Rows of a `MerchantBatch`.
pub const MERCHANT_BATCH_ROWS_MAX: usize = 32;

/// Parsed rows waiting for their merchant (step 4 onwards).
///
/// Finding a merchant is a random read of its table slot and then of its
/// dates, each likely a cache miss. One row at a time, every miss stalls
/// the parse; a batch looks up all its rows' slots, then all their dates,
/// so that the misses of a batch overlap.
#[derive(Default)]
pub struct MerchantBatch {
    /// Each row's place in the caller's slots.
    rows: Vec<usize>,
    /// The rows' `merchant_id`s, back to back, ending at `ends`.
    ids: Vec<u8>,
    ends: Vec<usize>,
}

impl MerchantBatch {
    /// Adds the row in `slot` with its `merchant_id`; true when the batch
    /// is full and must be resolved.
    pub fn push(&mut self, slot: usize, merchant_id: &[u8]) -> bool {
        self.rows.push(slot);
        self.ids.extend_from_slice(merchant_id);
        self.ends.push(self.ids.len());
        self.rows.len() >= MERCHANT_BATCH_ROWS_MAX
    }

    fn id(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.ids[start..self.ends[k]]
    }

    /// Sets each row's merchant and the checks of steps 4 and 5, and
    /// empties the batch. A row whose merchant master data does not list
    /// keeps that `merchant_id` for its reject's sentence: its ids are
    /// copied to the end of `arena`, followed by the merchant id.
    pub fn resolve(&mut self, slots: &mut [Txn], arena: &mut Vec<u8>, context: &RowContext) {
        let merchants = context.merchants;
        let count = self.rows.len();
        // Every row's home slot is read first, so that the batch's cache
        // misses overlap; the probes then find their slots loaded.
        let table = merchants.id_table();
        let mut homes = [0usize; MERCHANT_BATCH_ROWS_MAX];
        let mut touched = 0u8;
        for (k, home) in homes.iter_mut().enumerate().take(count) {
            *home = table.home(self.id(k));
            touched ^= table.touch(*home);
        }
        std::hint::black_box(touched);
        let mut found = [MERCHANT_UNKNOWN; MERCHANT_BATCH_ROWS_MAX];
        for (k, merchant) in found.iter_mut().enumerate().take(count) {
            *merchant = table
                .get_from(self.id(k), homes[k])
                .unwrap_or(MERCHANT_UNKNOWN);
        }
        let mut hot = [None; MERCHANT_BATCH_ROWS_MAX];
        for k in 0..count {
            hot[k] = (found[k] != MERCHANT_UNKNOWN).then(|| merchants.hot(found[k]));
        }
        for k in 0..count {
            let txn = &mut slots[self.rows[k]];
            txn.merchant = found[k];
            txn.row_check = row_check(hot[k], txn.kind, txn.amount_fen, txn.business_day, context);
            if found[k] == MERCHANT_UNKNOWN {
                let [txn_id, _, terminal, _] = txn.ids.ranges();
                let offset = arena.len();
                arena.extend_from_within(txn_id.start..terminal.end);
                arena.extend_from_slice(self.id(k));
                txn.ids.offset = offset as u32;
                txn.ids.unknown_merchant_len = self.id(k).len() as u8;
            }
        }
        self.rows.clear();
        self.ids.clear();
        self.ends.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_refused_once_its_lines_outgrow_a_row_line_number() {
        // Line ends counted so far; the line after the last end is numbered
        // one more, and must fit `u32`.
        assert!(check_file_lines("t.csv", limits::TXN_FILE_LINES_MAX - 1).is_ok());
        let refused = check_file_lines("t.csv", limits::TXN_FILE_LINES_MAX);
        match refused {
            Err(Error::Input { file, problem }) => {
                assert_eq!(file, "t.csv");
                assert!(problem.contains("4294967295 lines"), "{problem}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn a_parsed_transaction_stays_compact() {
        // Ten million rows must fit the memory budget: 64 bytes each.
        let size = std::mem::size_of::<Txn>();
        println!(
            "Txn is {size} bytes, IdRef {}",
            std::mem::size_of::<IdRef>()
        );
        assert!(size <= 64, "Txn grew to {size} bytes");
    }
}
