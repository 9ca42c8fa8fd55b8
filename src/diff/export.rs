//! A `Diff` for scripts: one JSON document (`--json`), or one file per
//! breakdown in a folder (`--out DIR`: totals, by_category, by_date,
//! merchants, config_changes), written whole or not at all.
//!
//! The breakdowns are first laid out as format-neutral tables of typed
//! cells (`Table`); a `Format` then encodes each table as one file. CSV is
//! the one format today; another (Parquet, say) is one more `Format` arm
//! that encodes the same tables, its typed cells telling it each column's
//! type. This module formats; it must not compute a figure the `Diff` does
//! not hold, beyond B − A.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::calendar;
use crate::csv_field::push_field;
use std::sync::Arc;

use arrow_array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, StringArray};

use crate::error::{Error, Result};
use crate::ledger::AMOUNT_COLUMNS;
use crate::money::format_fen;
use crate::output::parquet::{Type, amount_value, encode_columns};
use crate::output::{Staging, check_out_dir};

use super::{Diff, Pair, Sums, Unit};

/// One cell of a breakdown table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// An amount in fen: written with two decimals.
    Fen(i128),
    Count(i128),
}

/// One breakdown, ready to be encoded: its file stem, column names and
/// rows (each as long as `columns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The formats `--out` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// One Parquet file per breakdown (`--out-format parquet`): amounts
    /// `DECIMAL(18,2)`, counts INT64, `settlement_date` a `DATE`, other
    /// text UTF8 (D69).
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }

    /// The bytes of one table's file.
    pub fn encode(self, table: &Table) -> Result<Vec<u8>> {
        match self {
            Format::Csv => Ok(csv(table).into_bytes()),
            Format::Parquet => parquet(table).map_err(|why| {
                Error::io(
                    format!("encoding {}.parquet", table.name),
                    std::io::Error::other(why),
                )
            }),
        }
    }
}

/// A column's Parquet type, from its name and its cells: a date for
/// `settlement_date`; an amount where any cell is one (the totals table
/// holds counts and amounts in one column: its counts become exact
/// decimals, 7 as 7.00); a count where every cell is one; else text. A
/// table without rows has text columns.
fn column_type(table: &Table, k: usize) -> Type {
    if table.columns[k] == "settlement_date" {
        return Type::Date;
    }
    let mut cells = table.rows.iter().map(|row| &row[k]);
    if cells.clone().any(|cell| matches!(cell, Cell::Fen(_))) {
        if cells.any(|cell| matches!(cell, Cell::Text(_))) {
            return Type::Text;
        }
        return Type::Amount;
    }
    if !table.rows.is_empty() && cells.all(|cell| matches!(cell, Cell::Count(_))) {
        return Type::Count;
    }
    Type::Text
}

fn parquet(table: &Table) -> std::result::Result<Vec<u8>, String> {
    let columns = (0..table.columns.len())
        .map(|k| {
            let kind = column_type(table, k);
            let cells = table.rows.iter().map(|row| &row[k]);
            let array: ArrayRef = match kind {
                Type::Date => Arc::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Text(text) => calendar::parse_date(text.as_bytes())
                                .map(Some)
                                .ok_or_else(|| format!("{text:?} is not a date")),
                            _ => Err("a settlement_date cell is not text".to_string()),
                        })
                        .collect::<std::result::Result<Date32Array, String>>()?,
                ),
                Type::Amount => Arc::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Fen(fen) => amount_value(*fen).map(Some),
                            Cell::Count(n) => amount_value(n * 100).map(Some),
                            Cell::Text(_) => Err("an amount column holds text".to_string()),
                        })
                        .collect::<std::result::Result<Decimal128Array, String>>()?
                        .with_precision_and_scale(18, 2)
                        .map_err(|e| e.to_string())?,
                ),
                Type::Count => Arc::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Count(n) => i64::try_from(*n)
                                .map(Some)
                                .map_err(|_| format!("the count {n} does not fit INT64")),
                            _ => Err("a column mixes counts with other cells".to_string()),
                        })
                        .collect::<std::result::Result<Int64Array, String>>()?,
                ),
                Type::Text | Type::Rate => Arc::new(
                    cells
                        .map(|cell| match cell {
                            Cell::Text(text) => Some(text.clone()),
                            Cell::Fen(fen) => Some(format_fen(*fen)),
                            Cell::Count(n) => Some(n.to_string()),
                        })
                        .collect::<StringArray>(),
                ),
            };
            Ok((table.columns[k].clone(), kind, array))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    encode_columns(columns)
}

fn csv(table: &Table) -> String {
    let mut out = String::new();
    out.push_str(&table.columns.join(","));
    out.push('\n');
    for row in &table.rows {
        for (k, cell) in row.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            match cell {
                Cell::Text(text) => push_field(&mut out, text),
                Cell::Fen(fen) => out.push_str(&format_fen(*fen)),
                Cell::Count(count) => out.push_str(&count.to_string()),
            }
        }
        out.push('\n');
    }
    out
}

/// Writes every breakdown of `diff` into `out` in `format`: `out` must
/// not exist or be empty; the files are written into a staging folder
/// beside it that is renamed into place only when all are written.
/// Returns the file names, in order.
pub fn write(diff: &Diff, out: &Path, format: Format) -> Result<Vec<String>> {
    check_out_dir(out)?;
    let files: Vec<(String, Vec<u8>)> = tables(diff)
        .iter()
        .map(|table| {
            let name = format!("{}.{}", table.name, format.extension());
            Ok((name, format.encode(table)?))
        })
        .collect::<Result<_>>()?;
    let staging = Staging::create(out)?;
    staging.write_files(&files)?;
    staging.publish()?;
    Ok(files.into_iter().map(|(name, _)| name).collect())
}

fn three(name: &str) -> [String; 3] {
    [
        format!("{name}_a"),
        format!("{name}_b"),
        format!("{name}_delta"),
    ]
}

fn fen_cells(pair: Pair) -> [Cell; 3] {
    [
        Cell::Fen(pair.a),
        Cell::Fen(pair.b),
        Cell::Fen(pair.delta()),
    ]
}

fn count_cells(pair: Pair) -> [Cell; 3] {
    [
        Cell::Count(pair.a),
        Cell::Count(pair.b),
        Cell::Count(pair.delta()),
    ]
}

fn count_pair(a: u64, b: u64) -> Pair {
    Pair {
        a: i128::from(a),
        b: i128::from(b),
    }
}

/// The columns of a (date or merchant) row of sums after its key:
/// `rows`, `txn_count` and each settlement amount column, each as A, B
/// and delta.
fn sums_columns() -> Vec<String> {
    let mut columns = Vec::new();
    for name in ["rows", "txn_count"].iter().chain(AMOUNT_COLUMNS.iter()) {
        columns.extend(three(name));
    }
    columns
}

fn sums_cells(a: &Sums, b: &Sums) -> Vec<Cell> {
    let mut cells = Vec::new();
    cells.extend(count_cells(count_pair(a.rows, b.rows)));
    cells.extend(count_cells(count_pair(a.txn_count, b.txn_count)));
    for (x, y) in a.amounts.iter().zip(b.amounts) {
        cells.extend(fen_cells(Pair { a: *x, b: y }));
    }
    cells
}

/// The breakdowns as tables: totals, by_category, by_date, merchants
/// (every merchant that changed, ranked) and config_changes.
pub fn tables(diff: &Diff) -> Vec<Table> {
    let text = |s: &str| Cell::Text(s.to_string());
    let totals = Table {
        name: "totals",
        columns: ["figure", "a", "b", "delta"].map(String::from).to_vec(),
        rows: diff
            .totals
            .iter()
            .map(|total| {
                let cell = |value| match total.unit {
                    Unit::Fen => Cell::Fen(value),
                    Unit::Count => Cell::Count(value),
                };
                vec![
                    text(total.name),
                    cell(total.pair.a),
                    cell(total.pair.b),
                    cell(total.pair.delta()),
                ]
            })
            .collect(),
    };
    let mut category_columns = vec!["category".to_string(), "card".to_string()];
    for name in ["purchases_count", "purchases", "fees"] {
        category_columns.extend(three(name));
    }
    let by_category = Table {
        name: "by_category",
        columns: category_columns,
        rows: diff
            .by_category
            .iter()
            .map(|c| {
                let mut row = vec![text(&c.category), text(&c.card)];
                row.extend(count_cells(c.purchases_count));
                row.extend(fen_cells(c.purchases_fen));
                row.extend(fen_cells(c.fees_fen));
                row
            })
            .collect(),
    };
    let mut date_columns = vec!["settlement_date".to_string()];
    date_columns.extend(sums_columns());
    let by_date = Table {
        name: "by_date",
        columns: date_columns,
        rows: diff
            .by_date
            .iter()
            .map(|d| {
                let mut row = vec![Cell::Text(calendar::format_date(d.date))];
                row.extend(sums_cells(&d.a, &d.b));
                row
            })
            .collect(),
    };
    let mut merchant_columns = vec!["rank".to_string(), "merchant_id".to_string()];
    merchant_columns.extend(sums_columns());
    let merchants = Table {
        name: "merchants",
        columns: merchant_columns,
        rows: diff
            .merchants
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let mut row = vec![Cell::Count(k as i128 + 1), text(&m.merchant_id)];
                row.extend(sums_cells(&m.a, &m.b));
                row
            })
            .collect(),
    };
    let mut config_rows: Vec<Vec<Cell>> = diff
        .config
        .keys
        .iter()
        .map(|change| {
            let shown = |v: &Option<String>| text(v.as_deref().unwrap_or(""));
            vec![
                text(&change.key),
                shown(&change.a),
                shown(&change.b),
                text(""),
            ]
        })
        .collect();
    for note in &diff.config.notes {
        config_rows.push(vec![text(""), text(""), text(""), text(note)]);
    }
    let config_changes = Table {
        name: "config_changes",
        columns: ["key", "a", "b", "note"].map(String::from).to_vec(),
        rows: config_rows,
    };
    vec![totals, by_category, by_date, merchants, config_changes]
}

fn fen_json(pair: Pair) -> Value {
    let mut object = json!({
        "a": format_fen(pair.a),
        "b": format_fen(pair.b),
        "delta": format_fen(pair.delta()),
    });
    if let Some(points) = pair.delta_basis_points() {
        object["delta_percent"] = Value::String(format_fen(points));
    }
    object
}

fn count_json(pair: Pair) -> Value {
    // Counts are far below 2^63; one that is not would be shown as null
    // rather than wrong.
    let number = |n: i128| i64::try_from(n).map_or(Value::Null, Value::from);
    json!({"a": number(pair.a), "b": number(pair.b), "delta": number(pair.delta())})
}

fn sums_json(a: &Sums, b: &Sums) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("rows".into(), count_json(count_pair(a.rows, b.rows)));
    object.insert(
        "txn_count".into(),
        count_json(count_pair(a.txn_count, b.txn_count)),
    );
    for (k, column) in AMOUNT_COLUMNS.iter().enumerate() {
        let pair = Pair {
            a: a.amounts[k],
            b: b.amounts[k],
        };
        object.insert((*column).into(), fen_json(pair));
    }
    object
}

fn date_json(day: Option<i32>) -> Value {
    day.map_or(Value::Null, |d| Value::String(calendar::format_date(d)))
}

/// The whole `Diff` as one JSON document (docs/DIFF.md): amounts as
/// strings with two decimals, like control.json; counts as numbers;
/// `delta_percent` (two decimals, half up) where A is not zero; the first
/// `top` ranked merchants, and how many changed.
pub fn json(diff: &Diff, top: usize) -> String {
    let run = |side: &super::RunSide| {
        json!({
            "dir": side.dir.display().to_string(),
            "config": {"path": side.config_path, "sha256": side.config_sha256},
            "start": calendar::format_date(side.start),
            "horizon": calendar::format_date(side.horizon),
            "through": date_json(side.through),
        })
    };
    let mut totals = Map::new();
    for total in &diff.totals {
        let value = match total.unit {
            Unit::Fen => fen_json(total.pair),
            Unit::Count => count_json(total.pair),
        };
        totals.insert(total.name.into(), value);
    }
    let categories: Vec<Value> = diff
        .by_category
        .iter()
        .map(|c| {
            json!({
                "category": c.category,
                "card": c.card,
                "purchases_count": count_json(c.purchases_count),
                "purchases": fen_json(c.purchases_fen),
                "fees": fen_json(c.fees_fen),
            })
        })
        .collect();
    let dates: Vec<Value> = diff
        .by_date
        .iter()
        .map(|d| {
            let mut object = Map::new();
            object.insert(
                "settlement_date".into(),
                Value::String(calendar::format_date(d.date)),
            );
            object.extend(sums_json(&d.a, &d.b));
            Value::Object(object)
        })
        .collect();
    let merchants: Vec<Value> = diff
        .merchants
        .iter()
        .take(top)
        .enumerate()
        .map(|(k, m)| {
            let mut object = Map::new();
            object.insert("rank".into(), Value::from(k as u64 + 1));
            object.insert("merchant_id".into(), Value::String(m.merchant_id.clone()));
            object.extend(sums_json(&m.a, &m.b));
            Value::Object(object)
        })
        .collect();
    let keys: Vec<Value> = diff
        .config
        .keys
        .iter()
        .map(|change| json!({"key": change.key, "a": change.a, "b": change.b}))
        .collect();
    let document = json!({
        "a": run(&diff.a),
        "b": run(&diff.b),
        "same_inputs": diff.input_differences.is_empty(),
        "input_differences": diff.input_differences,
        "config_changes": {
            "same_file": diff.config.same_digest,
            "keys": keys,
            "notes": diff.config.notes,
        },
        "totals": totals,
        "by_category": categories,
        "by_date": dates,
        "merchants": {
            "compared": diff.merchants_compared,
            "changed": diff.merchants.len(),
            "top": merchants,
        },
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}
