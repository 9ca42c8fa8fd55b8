//! Ingest: input bytes (mapped files, compressed files or stdin), headers,
//! record splitting, and the parsing of transactions, merchants and
//! adjustments into compact values; the progress counters of the reading.
//!
//! This module owns every input format of RULES.md 1 and the structural and
//! field checks (steps 1 and 2 of 3.3). It must not link rows to each other
//! or move money: that is the pipeline's and the ledger's job.

pub mod adjustments;
pub mod csv;
pub mod decompress;
pub mod header;
pub mod inputs;
mod merchant_ids;
pub mod merchants;
mod mmap;
pub mod progress;
pub mod reject;
pub mod source;
pub mod stream;
pub mod txn;

pub use merchants::{Merchant, Merchants};
pub use reject::{Reject, RejectCode};
pub use source::Source;
pub use txn::{Card, IdRef, Kind, Txn};
