//! The inputs of a partition's close restricted to its merchants: master
//! data rebuilt with its merchants' rows alone, the adjustments file judged
//! whole and rebuilt with its merchants' accepted rows, and the debug check
//! that its rows are its merchants' (docs/STREAM.md, "Partitions").
//!
//! Rebuilt files keep every kept row on its original line (other rows
//! become blank lines), so messages and rejects name the lines of the
//! real file. This module must not judge a transaction.

use crate::calendar::Day;
use crate::error::Result;
use crate::ingest::csv::{Record, Tokenizer};
use crate::ingest::{Merchants, adjustments, header, merchants as master};
use crate::output::{self, control::sha256_hex};

use super::folder::{AdjustmentJudgement, Named};
use super::{FileHead, Row, partition_of, records};

/// The master data file with only the merchants of `partition`: the other
/// rows become blank lines, so that any message keeps its line numbers.
pub(super) fn merchants(
    bytes: &[u8],
    name: &str,
    partition: u32,
    partitions: u32,
) -> Result<Merchants> {
    let header = header::read(bytes, name, &[("merchant_id", true)])?;
    let head = FileHead {
        name: name.to_string(),
        head: bytes[..header.data_start].to_vec(),
        sha256: String::new(),
    };
    let mut tokenizer = Tokenizer::new(bytes, header.data_start);
    let mut record = Record::default();
    let mut kept = Vec::new();
    while tokenizer.next_record(&mut record) {
        if partition_of(record.field_or_empty(header.columns[0]), partitions) == partition {
            kept.push(Row {
                file_index: 0,
                line: header.lines_before_data + record.lines_before + 1,
                bytes: bytes[record.start..record.end].to_vec(),
                duplicate_of: None,
            });
        }
    }
    let kept: Vec<&Row> = kept.iter().collect();
    master::parse(&records::rebuild(&head, &kept)?, name)
}

/// Checks, in debug builds, that every row is of a merchant of
/// `partition` (the publisher deals them; a partition trusts it).
#[cfg(debug_assertions)]
pub(super) fn check_partition(rows: &[Row], head: &FileHead, partition: u32, partitions: u32) {
    let Ok(header) = header::read(&head.head, &head.name, &crate::ingest::txn::COLUMNS) else {
        return;
    };
    let mut record = Record::default();
    for row in rows {
        let mut tokenizer = Tokenizer::new(&row.bytes, 0);
        tokenizer.next_record(&mut record);
        let merchant_id = record.field_or_empty(header.columns[1]);
        debug_assert_eq!(
            partition_of(merchant_id, partitions),
            partition,
            "{} line {}: a row of another partition",
            head.name,
            row.line
        );
    }
}

/// Judges the whole adjustments file `(bytes, name)` as the batch run
/// does (full master data, the run's owned settlement dates `owned`,
/// adj_id taken across all merchants; `txn_names` are the transaction
/// inputs before it), and rebuilds it with the accepted rows of
/// `partition` (of `partitions`) alone on their lines.
pub(super) fn adjustments(
    (bytes, name): (&[u8], &str),
    txn_names: &[&str],
    all_merchants: &Merchants,
    owned: Option<(Day, Day)>,
    (partition, partitions): (u32, u32),
) -> Result<(AdjustmentJudgement, Vec<u8>)> {
    let file_index = txn_names.len() as u32;
    let judged = adjustments::parse(bytes, name, file_index, all_merchants, owned)?;
    let header = adjustments::read_header(bytes, name)?;
    let head = FileHead {
        name: name.to_string(),
        head: bytes[..header.data_start].to_vec(),
        sha256: String::new(),
    };
    // The parser reads records in this order: each is rejected (its
    // line is among the rejects) or is the next accepted one.
    let mut tokenizer = Tokenizer::new(bytes, header.data_start);
    let mut record = Record::default();
    let mut rejected = judged.rejects.iter().map(|r| r.line).peekable();
    let mut accepted = judged.accepted.iter();
    let mut accepted_partitions = Vec::with_capacity(judged.accepted.len());
    let mut kept = Vec::new();
    while tokenizer.next_record(&mut record) {
        let line = header.lines_before_data + record.lines_before + 1;
        if rejected.peek() == Some(&line) {
            rejected.next();
            continue;
        }
        let adjustment = accepted.next().expect("an accepted adjustment per record");
        let owner = partition_of(
            all_merchants.get(adjustment.merchant).id.as_bytes(),
            partitions,
        );
        accepted_partitions.push(owner);
        if owner == partition {
            kept.push(Row {
                file_index,
                line,
                bytes: bytes[record.start..record.end].to_vec(),
                duplicate_of: None,
            });
        }
    }
    let kept: Vec<&Row> = kept.iter().collect();
    let rebuilt = records::rebuild(&head, &kept)?;
    let names: Vec<&str> = txn_names.iter().copied().chain([name]).collect();
    let rejects_csv = output::csv::rejects_file(&judged.rejects, &names)
        [output::csv::REJECTS_HEADER.len()..]
        .to_string();
    let judgement = AdjustmentJudgement {
        file: Named {
            path: name.to_string(),
            sha256: sha256_hex(bytes),
        },
        rows_read: judged.rows_read,
        rows_accepted: judged.accepted.len() as u64,
        rows_rejected: judged.rejects.len() as u64,
        accepted_partitions,
        rejects_csv,
    };
    Ok((judgement, rebuilt))
}
