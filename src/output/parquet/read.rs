//! Reading published Parquet settlement and journal files back, for
//! `settle verify`: the schema must be the one the run writes, column for
//! column and type for type, and the values come back as fen and counts.
//! It checks nothing else; the caller judges the figures.

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Table;
use crate::journal::{Line, PostingKind};

/// One settlement row as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementRecord {
    pub settlement_day: i32,
    pub merchant: String,
    pub txn_count: i64,
    /// In the order of `ledger::AMOUNT_COLUMNS`.
    pub amounts_fen: [i128; 12],
}

/// One journal posting as read back: its merchant and the columns that
/// the checks read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub merchant: String,
    pub line: Line,
}

/// Reads every batch of the file at `path`, which must have `table`'s
/// schema (names, types and nullability).
pub fn batches(path: &Path, table: Table) -> Result<Vec<RecordBatch>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be opened ({e})"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("is not a readable Parquet file ({e})"))?;
    let expected = table.schema();
    let found = builder.schema();
    if found.fields().len() != expected.fields().len() {
        return Err(format!(
            "has {} columns, not {}",
            found.fields().len(),
            expected.fields().len()
        ));
    }
    for (found, expected) in found.fields().iter().zip(expected.fields()) {
        if found.name() != expected.name()
            || found.data_type() != expected.data_type()
            || found.is_nullable() != expected.is_nullable()
        {
            return Err(format!(
                "column {} is {} {}, not {} {}",
                found.name(),
                found.data_type(),
                if found.is_nullable() {
                    "NULL"
                } else {
                    "NOT NULL"
                },
                expected.name(),
                expected.data_type()
            ));
        }
    }
    let reader = builder
        .build()
        .map_err(|e| format!("cannot be read ({e})"))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot be read ({e})"))
}

/// The rows of a settlement file.
pub fn settlement(path: &Path) -> Result<Vec<SettlementRecord>, String> {
    let mut rows = Vec::new();
    for batch in batches(path, Table::Settlement)? {
        let days = batch.column(0).as_primitive::<Date32Type>();
        let merchants = batch.column(1).as_string::<i32>();
        let counts = batch.column(2).as_primitive::<Int64Type>();
        let amounts: Vec<_> = (3..15)
            .map(|k| batch.column(k).as_primitive::<Decimal128Type>())
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(SettlementRecord {
                settlement_day: days.value(i),
                merchant: merchants.value(i).to_string(),
                txn_count: counts.value(i),
                amounts_fen: std::array::from_fn(|k| amounts[k].value(i)),
            });
        }
    }
    Ok(rows)
}

/// The postings of a journal file, in file order.
pub fn journal(path: &Path) -> Result<Vec<Posting>, String> {
    let mut postings = Vec::new();
    let mut row = 0usize;
    for batch in batches(path, Table::Journal)? {
        let merchants = batch.column(1).as_string::<i32>();
        let seqs = batch.column(2).as_primitive::<Int64Type>();
        let kinds = batch.column(3).as_string::<i32>();
        let amounts = batch.column(4).as_primitive::<Decimal128Type>();
        let counts = batch.column(9).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            row += 1;
            let kind = PostingKind::from_code(kinds.value(i))
                .ok_or_else(|| format!("row {row}: unknown kind {:?}", kinds.value(i)))?;
            let amount_fen = i64::try_from(amounts.value(i))
                .map_err(|_| format!("row {row}: the amount does not fit 64 bits"))?;
            let count = if counts.is_null(i) {
                None
            } else {
                Some(
                    u64::try_from(counts.value(i))
                        .map_err(|_| format!("row {row}: count {} is negative", counts.value(i)))?,
                )
            };
            let seq = u64::try_from(seqs.value(i))
                .map_err(|_| format!("row {row}: seq {} is negative", seqs.value(i)))?;
            postings.push(Posting {
                merchant: merchants.value(i).to_string(),
                line: Line {
                    seq,
                    kind,
                    amount_fen,
                    count,
                },
            });
        }
    }
    Ok(postings)
}
