//! Parquet outputs (`settle run --format parquet`, docs/PARQUET.md): the
//! same files as the CSV outputs, one Parquet file per CSV file, with the
//! same columns in the same order and typed: amounts `DECIMAL(18,2)`
//! (stored as INT64 fen), rates `DECIMAL(9,6)`, dates `DATE`, counts
//! `INT64`, text `UTF8`. Never a float.
//!
//! It owns the schemas, the writer's fixed properties and the encoding;
//! `read` reads the files back for `settle verify` and the tests. It must
//! not compute money: settlement rows are encoded from the settled rows,
//! every other file from the CSV text the run rendered and checked
//! (`convert`), so that a Parquet file holds exactly what its CSV twin
//! would.
//!
//! Same bytes for any thread count: one worker encodes a whole file, in
//! batches of `BATCH_ROWS` rows, and row groups are cut every
//! `ROW_GROUP_ROWS_MAX` rows of the file, never by thread or by size; the
//! writer's properties, `created_by` included, are constants.
#![forbid(unsafe_code)]

mod convert;
pub mod read;

use std::sync::Arc;

use arrow_array::builder::{Decimal128Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, Date32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use crate::calendar::Day;
use crate::ingest::Merchants;
use crate::ledger::{AMOUNT_COLUMNS, Row};

pub use convert::from_csv;

/// Rows encoded per Arrow batch: bounds the memory of the arrays a worker
/// holds besides the encoded file.
const BATCH_ROWS: usize = 64 * 1024;
/// Rows per row group, cut by count alone so that the cut depends on the
/// data only. A date's settlement file (about 100k rows at 10M
/// transactions) is one row group; a journal file (about 1.5M postings)
/// two.
const ROW_GROUP_ROWS_MAX: usize = 1 << 20;
/// The writer named in every file's footer: fixed, so that the bytes do
/// not change with the parquet crate's version string.
const CREATED_BY: &str = concat!("settle version ", env!("CARGO_PKG_VERSION"));
/// The largest magnitude a `DECIMAL(18,2)` amount holds, in fen.
pub const AMOUNT_FEN_MAX: i128 = 999_999_999_999_999_999;
/// Amounts: `DECIMAL(18,2)`, the precision that Parquet stores as INT64.
pub const AMOUNT_TYPE: DataType = DataType::Decimal128(18, 2);
/// Rates: `DECIMAL(9,6)` (ppm), stored as INT32; a rate is at most 1.
pub const RATE_TYPE: DataType = DataType::Decimal128(9, 6);

/// The type of one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `DATE` (Arrow Date32: days since 1970-01-01, as `calendar::Day`).
    Date,
    /// `UTF8`; an empty CSV field is an empty string, never null.
    Text,
    /// `INT64`.
    Count,
    /// `DECIMAL(18,2)`.
    Amount,
    /// `DECIMAL(9,6)`.
    Rate,
}

/// One column: its name (the CSV header's), type, and whether an empty
/// CSV field is a null.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Type,
    pub nullable: bool,
}

const fn column(name: &'static str, kind: Type) -> Column {
    Column {
        name,
        kind,
        nullable: false,
    }
}

const fn nullable(name: &'static str, kind: Type) -> Column {
    Column {
        name,
        kind,
        nullable: true,
    }
}

/// The kinds of output file, each with its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Settlement,
    Journal,
    Detail,
    Rejects,
    Adjustments,
}

const SETTLEMENT_COLUMNS: [Column; 15] = {
    let mut columns = [column("", Type::Amount); 15];
    columns[0] = column("settlement_date", Type::Date);
    columns[1] = column("merchant_id", Type::Text);
    columns[2] = column("txn_count", Type::Count);
    let mut k = 0;
    while k < AMOUNT_COLUMNS.len() {
        columns[3 + k] = column(AMOUNT_COLUMNS[k], Type::Amount);
        k += 1;
    }
    columns
};

const JOURNAL_COLUMNS: [Column; 12] = [
    column("settlement_date", Type::Date),
    column("merchant_id", Type::Text),
    column("seq", Type::Count),
    column("kind", Type::Text),
    column("amount", Type::Amount),
    column("category", Type::Text),
    column("card", Type::Text),
    nullable("rate", Type::Rate),
    column("capped", Type::Text),
    nullable("count", Type::Count),
    column("source", Type::Text),
    column("detail", Type::Text),
];

const DETAIL_COLUMNS: [Column; 11] = [
    column("txn_id", Type::Text),
    column("merchant_id", Type::Text),
    column("terminal_id", Type::Text),
    column("type", Type::Text),
    column("business_date", Type::Date),
    column("settlement_date", Type::Date),
    column("amount", Type::Amount),
    column("category", Type::Text),
    column("rate", Type::Rate),
    column("fee", Type::Amount),
    column("status", Type::Text),
];

const REJECTS_COLUMNS: [Column; 5] = [
    column("file", Type::Text),
    column("line", Type::Count),
    column("txn_id", Type::Text),
    column("reason", Type::Text),
    column("detail", Type::Text),
];

const ADJUSTMENTS_COLUMNS: [Column; 5] = [
    column("adj_id", Type::Text),
    column("merchant_id", Type::Text),
    column("settlement_date", Type::Date),
    column("amount", Type::Amount),
    column("reason", Type::Text),
];

impl Table {
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Settlement => &SETTLEMENT_COLUMNS,
            Table::Journal => &JOURNAL_COLUMNS,
            Table::Detail => &DETAIL_COLUMNS,
            Table::Rejects => &REJECTS_COLUMNS,
            Table::Adjustments => &ADJUSTMENTS_COLUMNS,
        }
    }

    /// The Arrow schema the files of this kind are written with.
    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .iter()
            .map(|c| {
                let data_type = match c.kind {
                    Type::Date => DataType::Date32,
                    Type::Text => DataType::Utf8,
                    Type::Count => DataType::Int64,
                    Type::Amount => AMOUNT_TYPE,
                    Type::Rate => RATE_TYPE,
                };
                Field::new(c.name, data_type, c.nullable)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// Columns of sentences, which nobody filters by range: their min/max
/// statistics would cost a comparison of every value and say nothing.
const SENTENCE_COLUMNS: [&str; 2] = ["detail", "source"];

/// The writer's properties for a file of `table`, the same for every file
/// of every run.
fn properties(table: Table) -> WriterProperties {
    let names: Vec<&str> = table.columns().iter().map(|column| column.name).collect();
    properties_for(&names)
}

/// The fixed writer properties for a file with columns `names`: only the
/// sentence columns among them go without statistics.
fn properties_for(names: &[&str]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_created_by(CREATED_BY.to_string())
        .set_writer_version(WriterVersion::PARQUET_1_0)
        // Snappy: pure Rust, fast to encode; what most tools write by default.
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS_MAX))
        .set_max_row_group_bytes(None)
        .set_statistics_enabled(EnabledStatistics::Page);
    for name in names {
        if SENTENCE_COLUMNS.contains(name) {
            builder =
                builder.set_column_statistics_enabled((*name).into(), EnabledStatistics::None);
        }
    }
    builder.build()
}

/// Encodes batches into one Parquet file in memory.
pub(crate) struct FileWriter {
    writer: ArrowWriter<Vec<u8>>,
    schema: SchemaRef,
}

impl FileWriter {
    pub(crate) fn new(table: Table) -> Result<FileWriter, String> {
        FileWriter::with(table.schema(), properties(table))
    }

    fn with(schema: SchemaRef, properties: WriterProperties) -> Result<FileWriter, String> {
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))
            .map_err(|e| format!("starting a Parquet file: {e}"))?;
        Ok(FileWriter { writer, schema })
    }

    pub(crate) fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), String> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| format!("assembling a Parquet batch: {e}"))?;
        self.writer
            .write(&batch)
            .map_err(|e| format!("encoding a Parquet batch: {e}"))
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>, String> {
        self.writer
            .into_inner()
            .map_err(|e| format!("closing a Parquet file: {e}"))
    }
}

/// A decimal column builder for `data_type`.
pub(crate) fn decimal_builder(capacity: usize, data_type: &DataType) -> Decimal128Builder {
    Decimal128Builder::with_capacity(capacity).with_data_type(data_type.clone())
}

/// An amount in fen as a `DECIMAL(18,2)` value; `Err` when it does not fit.
pub fn amount_value(fen: i128) -> Result<i128, String> {
    if fen.unsigned_abs() > AMOUNT_FEN_MAX.unsigned_abs() {
        return Err(format!(
            "the amount {} does not fit DECIMAL(18,2)",
            crate::money::format_fen(fen)
        ));
    }
    Ok(fen)
}

/// One settlement file (`settlement-YYYY-MM-DD.parquet`): the rows of
/// `day` in merchant_id order, as `csv::settlement_file` writes them.
pub fn settlement_file(
    day: Day,
    day_rows: &[&Row],
    merchants: &Merchants,
) -> Result<Vec<u8>, String> {
    let mut file = FileWriter::new(Table::Settlement)?;
    for batch in day_rows.chunks(BATCH_ROWS) {
        let mut ids = StringBuilder::with_capacity(batch.len(), batch.len() * 12);
        let mut counts = Int64Builder::with_capacity(batch.len());
        let mut amounts: Vec<Decimal128Builder> = (0..AMOUNT_COLUMNS.len())
            .map(|_| decimal_builder(batch.len(), &AMOUNT_TYPE))
            .collect();
        for row in batch {
            ids.append_value(merchants.id_of(row.merchant));
            let count = i64::try_from(row.txn_count)
                .map_err(|_| format!("txn_count {} does not fit INT64", row.txn_count))?;
            counts.append_value(count);
            for (builder, fen) in amounts.iter_mut().zip(row.amounts()) {
                builder.append_value(amount_value(fen.into())?);
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(vec![day; batch.len()])),
            Arc::new(ids.finish()),
            Arc::new(counts.finish()),
        ];
        columns.extend(
            amounts
                .iter_mut()
                .map(|builder| Arc::new(builder.finish()) as ArrayRef),
        );
        file.write(columns)?;
    }
    file.finish()
}

/// One Parquet file in memory from columns that no output kind of a run
/// describes (the breakdowns of `settle diff --out-format parquet`): each
/// `(name, type)` with its values, all columns as long. Written with the
/// same fixed properties as a run's files, so the bytes depend on the
/// values only.
pub fn encode_columns(columns: Vec<(String, Type, ArrayRef)>) -> Result<Vec<u8>, String> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, kind, _)| {
            let data_type = match kind {
                Type::Date => DataType::Date32,
                Type::Text => DataType::Utf8,
                Type::Count => DataType::Int64,
                Type::Amount => AMOUNT_TYPE,
                Type::Rate => RATE_TYPE,
            };
            Field::new(name, data_type, false)
        })
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let names: Vec<&str> = columns.iter().map(|(name, ..)| name.as_str()).collect();
    let mut writer = FileWriter::with(schema, properties_for(&names))?;
    writer.write(columns.into_iter().map(|(_, _, array)| array).collect())?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JOURNAL_HEADER;
    use crate::output::csv::{
        ADJUSTMENTS_HEADER, DETAIL_HEADER, REJECTS_HEADER, SETTLEMENT_HEADER,
    };

    /// Each Parquet file has its CSV twin's columns, in the same order.
    #[test]
    fn columns_are_the_csv_headers() {
        for (table, header) in [
            (Table::Settlement, SETTLEMENT_HEADER),
            (Table::Journal, JOURNAL_HEADER),
            (Table::Detail, DETAIL_HEADER),
            (Table::Rejects, REJECTS_HEADER),
            (Table::Adjustments, ADJUSTMENTS_HEADER),
        ] {
            let names: Vec<&str> = table.columns().iter().map(|c| c.name).collect();
            assert_eq!(format!("{}\n", names.join(",")), header, "{table:?}");
        }
    }

    #[test]
    fn amounts_beyond_eighteen_digits_are_refused() {
        assert_eq!(amount_value(AMOUNT_FEN_MAX), Ok(AMOUNT_FEN_MAX));
        assert_eq!(amount_value(-AMOUNT_FEN_MAX), Ok(-AMOUNT_FEN_MAX));
        assert_eq!(
            amount_value(AMOUNT_FEN_MAX + 1),
            Err("the amount 10000000000000000.00 does not fit DECIMAL(18,2)".into())
        );
    }
}
