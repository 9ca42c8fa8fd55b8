//! `settle run --format parquet`: the files read back with the parquet
//! crate have the documented schema (DECIMAL(18,2) amounts stored as INT64,
//! DATE dates, INT64 counts, UTF8 text, no floats) and hold, row for row
//! and field for field, what the CSV run of the same inputs writes; the
//! bytes do not depend on the thread count; `settle verify` reads them
//! back and catches a tampered file; bad `--format` values and `settle
//! statement` on a Parquet run exit 2.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use arrow_array::{Array, ArrayRef, Decimal128Array, RecordBatch};
use arrow_schema::DataType;
use common::*;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, Type as PhysicalType};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

fn fixture(name: &str) -> String {
    Path::new(FIXTURES).join(name).display().to_string()
}

/// Settles the bundled two weeks (adjustments, `--detail`) into `out`
/// under `dir` with `extra` flags; returns the published files.
fn settle_fixtures(dir: &Path, out: &str, extra: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut args = vec![
        "run".to_string(),
        "--config".into(),
        fixture("settle.toml"),
        "--merchants".into(),
        fixture("merchants.csv"),
        "--transactions".into(),
        fixture("transactions-week1.csv"),
        fixture("transactions-week2.csv"),
        "--adjustments".into(),
        fixture("adjustments.csv"),
        "--detail".into(),
        "--out".into(),
        out.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let (code, _, stderr) = exec(dir, &args, None);
    assert_eq!(code, 0, "settle run {extra:?}: {stderr}");
    read_tree(&dir.join(out))
}

/// Every batch of a Parquet file, with its file metadata's `created_by`
/// and each column's physical type.
struct Read {
    batches: Vec<RecordBatch>,
    created_by: Option<String>,
    /// Each column's physical type, logical type, precision and scale.
    physical: Vec<(PhysicalType, Option<LogicalType>, i32, i32)>,
}

fn read(bytes: &[u8]) -> Read {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec()))
        .expect("a Parquet file");
    let metadata = builder.metadata().file_metadata();
    let created_by = metadata.created_by().map(str::to_string);
    let physical = metadata
        .schema_descr()
        .columns()
        .iter()
        .map(|c| {
            (
                c.physical_type(),
                c.logical_type_ref().cloned(),
                c.type_precision(),
                c.type_scale(),
            )
        })
        .collect();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Read {
        batches,
        created_by,
        physical,
    }
}

/// A decimal as its CSV twin writes it: amounts with exactly two
/// fractional digits, rates in their shortest form (`0.0038`, `1`).
fn decimal_text(value: i128, scale: u32, shortest: bool) -> String {
    let unit = 10i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let (whole, frac) = (value.abs() / unit, value.abs() % unit);
    let mut frac = format!("{frac:0width$}", width = scale as usize);
    if shortest {
        frac = frac.trim_end_matches('0').to_string();
    }
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// A Date32 as `YYYY-MM-DD` (civil from days, written here independently
/// of the engine's calendar).
fn date_text(days: i32) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The rows of a Parquet file as the text its CSV twin would hold: the
/// header, then one vector of fields per row (a null is an empty field).
fn as_csv_rows(read: &Read) -> Vec<Vec<String>> {
    let schema = read.batches[0].schema();
    let mut rows = vec![schema.fields().iter().map(|f| f.name().clone()).collect()];
    for batch in &read.batches {
        for i in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .map(|column| field_text(column, i))
                .collect();
            rows.push(row);
        }
    }
    rows
}

fn field_text(column: &ArrayRef, i: usize) -> String {
    if column.is_null(i) {
        return String::new();
    }
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(i).to_string(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Date32 => date_text(column.as_primitive::<Date32Type>().value(i)),
        DataType::Decimal128(_, scale) => decimal_text(
            column.as_primitive::<Decimal128Type>().value(i),
            *scale as u32,
            *scale != 2,
        ),
        other => panic!("a column of type {other}"),
    }
}

/// The CSV and Parquet runs of the same inputs: the same files by name
/// (`.csv` ↔ `.parquet`), and each Parquet file read back equals its CSV
/// twin row for row, field for field, header included. So every count
/// and every sum agrees too.
#[test]
fn parquet_files_hold_what_the_csv_files_hold() {
    let dir = tempfile::tempdir().unwrap();
    let csv = settle_fixtures(dir.path(), "csv", &[]);
    let parquet = settle_fixtures(dir.path(), "parquet", &["--format", "parquet"]);

    let outputs = |files: &BTreeMap<String, Vec<u8>>, extension: &str| -> Vec<String> {
        files
            .keys()
            .filter_map(|name| name.strip_suffix(extension))
            .filter(|name| !name.starts_with("state/"))
            .map(str::to_string)
            .collect()
    };
    let names = outputs(&csv, ".csv");
    assert_eq!(names, outputs(&parquet, ".parquet"));
    assert_eq!(
        outputs(&parquet, ".csv"),
        Vec::<String>::new(),
        "a Parquet run writes no CSV output"
    );
    for kind in [
        "settlement-",
        "journal-",
        "fees-",
        "rejects",
        "adjustments-booked",
    ] {
        assert!(names.iter().any(|n| n.starts_with(kind)), "no {kind} file");
    }
    for name in &names {
        let want = parse_csv(&String::from_utf8(csv[&format!("{name}.csv")].clone()).unwrap());
        let got = read(&parquet[&format!("{name}.parquet")]);
        assert_eq!(
            got.created_by.as_deref(),
            Some(concat!("settle version ", env!("CARGO_PKG_VERSION"))),
            "{name}: created_by is fixed"
        );
        let got = as_csv_rows(&got);
        assert_eq!(got.len(), want.len(), "{name}: row count");
        for (k, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(got, want, "{name} line {}", k + 1);
        }
    }
    // state/ is the same in both formats, and control.json differs only in
    // the outputs' names and digests.
    for (name, bytes) in csv.iter().filter(|(n, _)| n.starts_with("state/")) {
        assert_eq!(Some(bytes), parquet.get(name), "{name}");
    }
    let control = |files: &BTreeMap<String, Vec<u8>>| {
        let mut control: serde_json::Value =
            serde_json::from_slice(&files["control.json"]).unwrap();
        control["outputs"] = serde_json::Value::Null;
        control["settlement_files"] = serde_json::Value::Null;
        control
    };
    assert_eq!(control(&csv), control(&parquet));
}

/// The schema, column by column: names, Arrow types, and Parquet's
/// physical and logical types (an amount is INT64 with DECIMAL(18,2)).
#[test]
fn the_schema_is_typed_and_float_free() {
    let dir = tempfile::tempdir().unwrap();
    let files = settle_fixtures(dir.path(), "out", &["--format", "parquet"]);
    let settlement = read(&files["settlement-2026-11-02.parquet"]);
    let schema = settlement.batches[0].schema();
    let types: Vec<(String, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    let mut want = vec![
        ("settlement_date".to_string(), DataType::Date32, false),
        ("merchant_id".to_string(), DataType::Utf8, false),
        ("txn_count".to_string(), DataType::Int64, false),
    ];
    for amount in &ROW_COLUMNS[1..] {
        want.push((amount.to_string(), DataType::Decimal128(18, 2), false));
    }
    assert_eq!(types, want);
    assert_eq!(settlement.physical[0].0, PhysicalType::INT32);
    assert_eq!(settlement.physical[0].1, Some(LogicalType::Date));
    assert_eq!(settlement.physical[2].0, PhysicalType::INT64, "txn_count");
    for (physical, logical, precision, scale) in &settlement.physical[3..] {
        assert_eq!(
            (*physical, *precision, *scale),
            (PhysicalType::INT64, 18, 2)
        );
        assert!(
            matches!(logical, Some(LogicalType::Decimal(_))),
            "{logical:?}"
        );
    }

    let fees = read(&files["fees-2026-11-02.parquet"]);
    let schema = fees.batches[0].schema();
    assert_eq!(
        schema.field(4).data_type(),
        &DataType::Date32,
        "business_date"
    );
    assert_eq!(
        schema.field(8).data_type(),
        &DataType::Decimal128(9, 6),
        "rate"
    );
    assert_eq!(
        schema.field(9).data_type(),
        &DataType::Decimal128(18, 2),
        "fee"
    );
    // No column of any file is a float.
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".parquet")) {
        for field in read(bytes).batches[0].schema().fields() {
            assert!(
                !field.data_type().is_floating(),
                "{name}: {} is a float",
                field.name()
            );
        }
    }
}

/// The payouts summed from the Parquet settlement files, in exact
/// decimals, are control.json's total to the fen.
#[test]
fn parquet_sums_equal_the_control_totals() {
    let dir = tempfile::tempdir().unwrap();
    let files = settle_fixtures(dir.path(), "out", &["--format", "parquet"]);
    let control: serde_json::Value = serde_json::from_slice(&files["control.json"]).unwrap();
    let mut sums = [0i128; 12];
    for (_, bytes) in files.iter().filter(|(n, _)| n.starts_with("settlement-")) {
        for batch in read(bytes).batches {
            for (k, sum) in sums.iter_mut().enumerate() {
                let column: &Decimal128Array = batch.column(3 + k).as_primitive();
                *sum += column.iter().map(|v| v.unwrap()).sum::<i128>();
            }
        }
    }
    for (key, k) in [
        ("purchases", 0),
        ("refunds", 1),
        ("fees", 2),
        ("payouts", 10),
    ] {
        assert_eq!(
            control["totals"][key].as_str().unwrap(),
            decimal_text(sums[k], 2, false),
            "{key}"
        );
    }
    assert!(sums[0] > 0, "the fixtures have purchases");
}

/// One, two and three threads publish byte-identical Parquet files (and
/// control.json, which lists their digests).
#[test]
fn bytes_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let one = settle_fixtures(dir.path(), "t1", &["--format", "parquet", "--threads", "1"]);
    for threads in ["2", "3"] {
        let out = format!("t{threads}");
        let many = settle_fixtures(
            dir.path(),
            &out,
            &["--format", "parquet", "--threads", threads],
        );
        assert_eq!(
            one.keys().collect::<Vec<_>>(),
            many.keys().collect::<Vec<_>>()
        );
        for (name, bytes) in &one {
            assert!(
                bytes == &many[name],
                "{name} differs with {threads} threads"
            );
        }
    }
}

fn verify(dir: &Path) -> (i32, String) {
    let (code, _, stderr) = exec_str(dir, &["verify", "out"]);
    (code, stderr)
}

/// Rewrites `name` under `out` with its payout column changed by `delta`
/// fen in the first row, and lists the new digest in control.json, so
/// that only reading the file back can find the change.
fn tamper_payout(out: &Path, name: &str, delta: i128) {
    let path = out.join(name);
    let read = read(&std::fs::read(&path).unwrap());
    let schema = read.batches[0].schema();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), None).unwrap();
    for (b, batch) in read.batches.iter().enumerate() {
        let mut columns = batch.columns().to_vec();
        let payout: &Decimal128Array = columns[13].as_primitive();
        let changed: Decimal128Array = payout
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| if b == 0 && i == 0 { v + delta } else { v }))
            .collect::<Decimal128Array>()
            .with_data_type(DataType::Decimal128(18, 2));
        columns[13] = Arc::new(changed);
        writer
            .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
            .unwrap();
    }
    writer.close().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let control_path = out.join("control.json");
    let mut control: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&control_path).unwrap()).unwrap();
    control["outputs"][name] = serde_json::Value::String(sha256_hex(&bytes));
    std::fs::write(&control_path, serde_json::to_vec_pretty(&control).unwrap()).unwrap();
}

#[test]
fn verify_reads_parquet_back_and_catches_a_tampered_file() {
    let dir = tempfile::tempdir().unwrap();
    settle_fixtures(dir.path(), "out", &["--format", "parquet"]);
    let out: PathBuf = dir.path().join("out");
    let (code, stderr) = verify(dir.path());
    assert_eq!(code, 0, "{stderr}");

    // A flipped byte: the digest no longer matches.
    let journal = out.join("journal-2026-11-03.parquet");
    let original = std::fs::read(&journal).unwrap();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x40;
    std::fs::write(&journal, &flipped).unwrap();
    let (code, stderr) = verify(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("journal-2026-11-03.parquet: its SHA-256 differs"),
        "{stderr}"
    );
    std::fs::write(&journal, &original).unwrap();

    // A payout one fen too high, its digest listed anew: the row's
    // arithmetic, the control total and the journal all disagree.
    tamper_payout(&out, "settlement-2026-11-02.parquet", 1);
    let (code, stderr) = verify(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("settlement-2026-11-02.parquet row 1 (") && stderr.contains("do not split"),
        "{stderr}"
    );
    assert!(
        stderr.contains("total payouts: the settlement files give"),
        "{stderr}"
    );
    assert!(
        stderr.contains("journal-2026-11-02.parquet (") && stderr.contains("payout: the postings"),
        "{stderr}"
    );
}

/// A file whose schema is not the run's (here: written with another
/// writer's defaults from float columns) is reported, not misread.
#[test]
fn verify_refuses_a_parquet_file_of_another_schema() {
    let dir = tempfile::tempdir().unwrap();
    settle_fixtures(dir.path(), "out", &["--format", "parquet"]);
    let out = dir.path().join("out");
    let name = "settlement-2026-11-04.parquet";
    let batches = read(&std::fs::read(out.join(name)).unwrap()).batches;
    let floats: Vec<ArrayRef> = batches[0]
        .columns()
        .iter()
        .map(|c| arrow_cast_to_text(c))
        .collect();
    let batch = RecordBatch::try_from_iter(
        batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(floats),
    )
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    std::fs::write(out.join(name), &bytes).unwrap();
    let (code, stderr) = verify(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{name}: column settlement_date is Utf8 NOT NULL, not"
        )),
        "{stderr}"
    );
}

/// Every column of `column` as text (the way a careless export writes it).
fn arrow_cast_to_text(column: &ArrayRef) -> ArrayRef {
    let text: Vec<String> = (0..column.len()).map(|i| field_text(column, i)).collect();
    Arc::new(arrow_array::StringArray::from(text))
}

#[test]
fn a_bad_format_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--config",
        &fixture("settle.toml"),
        "--merchants",
        &fixture("merchants.csv"),
        "--transactions",
        &fixture("transactions-week1.csv"),
        "--format",
        "xlsx",
        "--out",
        "out",
    ];
    let (code, _, stderr) = exec_str(dir.path(), &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--format") && stderr.contains("xlsx"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn statement_on_a_parquet_run_exits_2_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    settle_fixtures(dir.path(), "out", &["--format", "parquet"]);
    let (code, _, stderr) = exec_str(
        dir.path(),
        &[
            "statement",
            "out",
            "--merchant",
            "M822010001",
            "--out",
            "s.html",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("out is a Parquet run (settle run --format parquet): settle statement reads CSV runs only"),
        "{stderr}"
    );
    assert!(!dir.path().join("s.html").exists());
}
