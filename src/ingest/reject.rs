//! A rejected row is a value: a reason code, a position and a sentence.

/// Reject reasons, numbered in the order RULES.md 3.3 checks them. The
/// numbers are stable: never renumber, and keep retired ones reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum RejectCode {
    MalformedRow = 1,
    BadAmount = 2,
    BadTimestamp = 3,
    BadType = 4,
    BadCard = 5,
    BadMcc = 6,
    DuplicateTxnId = 7,
    LateTransaction = 8,
    UnknownMerchant = 9,
    MerchantInactive = 10,
    BeyondHorizon = 11,
    OverLimit = 12,
    BadReference = 13,
    RefundExceedsOriginal = 14,
    BadVoid = 15,
    BadAdjustment = 16,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::MalformedRow => "malformed_row",
            RejectCode::BadAmount => "bad_amount",
            RejectCode::BadTimestamp => "bad_timestamp",
            RejectCode::BadType => "bad_type",
            RejectCode::BadCard => "bad_card",
            RejectCode::BadMcc => "bad_mcc",
            RejectCode::DuplicateTxnId => "duplicate_txn_id",
            RejectCode::LateTransaction => "late_transaction",
            RejectCode::UnknownMerchant => "unknown_merchant",
            RejectCode::MerchantInactive => "merchant_inactive",
            RejectCode::BeyondHorizon => "beyond_horizon",
            RejectCode::OverLimit => "over_limit",
            RejectCode::BadReference => "bad_reference",
            RejectCode::RefundExceedsOriginal => "refund_exceeds_original",
            RejectCode::BadVoid => "bad_void",
            RejectCode::BadAdjustment => "bad_adjustment",
        }
    }
}

/// One rejected input row, ready for `rejects.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Index of the input file in the order given on the command line.
    pub file_index: u32,
    /// The 1-based physical line the record starts on.
    pub line: u64,
    /// The row's trimmed id field, empty where there is none.
    pub id: String,
    pub code: RejectCode,
    pub detail: String,
}
