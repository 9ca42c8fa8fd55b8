//! Stream mode (docs/STREAM.md): the same settlement as `settle run`,
//! computed by workers that each own a partition of the merchants while
//! the rows arrive over NATS JetStream.
//!
//! This module owns what every stage of stream mode must agree on: which
//! partition a merchant belongs to (`partition_of`), how a transactions
//! file is cut into the records that travel as messages (`records`), and
//! the publisher's judgement of step 3 of RULES.md 3.3 (`judge`), which
//! only a reader of the whole input in file order can make. It must not
//! settle money: the partitions run the batch pipeline.

pub mod arrival;
mod day;
pub mod facts;
pub mod folder;
pub mod judge;
pub mod log;
pub mod merge;
mod merged_state;
pub mod nats;
pub mod partition;
pub mod publish;
pub mod records;
mod restrict;
pub mod worker;

/// The most partitions a stream may have: a worker per partition, and a
/// partition is a subject, so a few hundred is already far more than a
/// day's volume needs.
pub const PARTITIONS_MAX: u32 = 256;

/// The partition of a merchant: FNV-1a (64-bit) of its `merchant_id`
/// bytes, modulo `partitions`. A fixed function of the bytes, so that the
/// publisher, every worker and `settle merge` agree on every machine and
/// across releases; a row whose `merchant_id` cannot be read is hashed
/// over the empty id.
pub fn partition_of(merchant_id: &[u8], partitions: u32) -> u32 {
    assert!(
        (1..=PARTITIONS_MAX).contains(&partitions),
        "1 to {PARTITIONS_MAX} partitions"
    );
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = merchant_id.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    (hash % u64::from(partitions)) as u32
}

/// A row as a partition receives it: where it stands in the input, its
/// bytes, and the publisher's step 3 verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The input file, numbered from 0 in the order the files were given.
    pub file_index: u32,
    /// The physical line on which the record starts (RULES.md 1).
    pub line: u64,
    /// The record's bytes as they stand in the file, its line end included
    /// (none for a last record without one).
    pub bytes: Vec<u8>,
    /// Step 3: the first row, in file order, that passed steps 1 and 2 with
    /// this row's `txn_id`, as (file index, line), when this row is not it.
    pub duplicate_of: Option<(u32, u64)>,
}

/// An input file as every partition receives it, before its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHead {
    /// The path as given to the publisher (`-` for stdin): the `file`
    /// column of rejects.csv.
    pub name: String,
    /// The bytes before the first record: a byte-order mark, blank lines,
    /// the header row and its line end.
    pub head: Vec<u8>,
    /// SHA-256 (lower-case hex) of the whole file's bytes as the publisher
    /// read them: control.json's `sha256` of the input.
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_is_fnv1a_modulo() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector).
        assert_eq!(partition_of(b"a", 1 << 8), 0x8c);
        assert_eq!(partition_of(b"", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as u32);
        assert_eq!(partition_of(b"M000123", 1), 0);
    }
}
