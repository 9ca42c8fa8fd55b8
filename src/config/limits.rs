//! Every limit of the engine in one place, qualifier last. A breach of an
//! input limit is a typed error or a reject, never a panic.

/// A `txn_id` is 1 to 64 bytes (RULES.md 1.1).
pub const TXN_ID_BYTES_MAX: usize = 64;
/// A `merchant_id` is 1 to 32 bytes (RULES.md 1.1).
pub const MERCHANT_ID_BYTES_MAX: usize = 32;
/// Settlement lag beyond ten years is surely a typo.
pub const SETTLEMENT_LAG_DAYS_MAX: i64 = 3650;
/// Windows and retention beyond a hundred years are surely typos.
pub const WINDOW_DAYS_MAX: i64 = 36_500;
/// Categories in one configuration.
pub const CATEGORIES_MAX: usize = 1000;
/// Merchants in one master file: dense indexes are `u32`.
pub const MERCHANTS_MAX: usize = 50_000_000;
/// Bytes of one transactions chunk handed to a worker.
pub const CHUNK_BYTES_TARGET: usize = 4 << 20;
/// Hash partitions for duplicate detection and refund linking. Fixed, so
/// results never depend on the thread count.
pub const LINK_PARTITIONS: usize = 64;
/// Transactions files in one run: a row keeps its file's number in 16 bits.
pub const TXN_FILES_MAX: usize = 1 << 16;
/// Physical lines of one transactions file: a row keeps its line number in
/// 32 bits (4.29 billion lines, some 350 GB of CSV). A longer file stops
/// the run; split it.
pub const TXN_FILE_LINES_MAX: u64 = u32::MAX as u64;
/// Bad merchant lines listed in one fatal message before the rest are
/// counted only.
pub const BAD_LINES_LISTED_MAX: usize = 1000;

const _: () = assert!(MERCHANTS_MAX < u32::MAX as usize);
const _: () = assert!(LINK_PARTITIONS.is_power_of_two());
