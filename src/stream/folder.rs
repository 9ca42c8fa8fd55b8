//! What a partition folder holds beyond a run folder, for `settle merge`:
//! `partition.json` (which day, which partition, which inputs, the whole
//! adjustments file's judgement) and `partition-index.txt` (where each
//! entry of the partition's own index segment stands in the whole input).
//!
//! This module owns those two formats, written by `partition` and read by
//! `merge`; it must not settle or judge anything.

use std::path::Path;

use serde_json::Value;

use crate::calendar::{self, Day};
use crate::error::{Error, Result};

/// The partition's description, beside its run files.
pub const PARTITION_FILE: &str = "partition.json";
/// The positions of the partition's index entries.
pub const INDEX_FILE: &str = "partition-index.txt";
pub const FORMAT: &str = "settle-partition";
pub const VERSION: u64 = 1;

/// An input as partitions and the merge name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub path: String,
    pub sha256: String,
}

/// The whole adjustments file as every partition judged it (the same
/// judgement in each: the whole file, full master data, the run's dates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjustmentJudgement {
    pub file: Named,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// The partition of each accepted adjustment, in line order: how the
    /// merge interleaves the partitions' `adjustments-booked.csv`.
    pub accepted_partitions: Vec<u32>,
    /// The rejected rows as `rejects.csv` lines (no header), line order.
    pub rejects_csv: String,
}

/// `partition.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub partition: u32,
    pub partitions: u32,
    pub through: Day,
    /// This partition's earliest accepted business date (no state only).
    pub local_start: Option<Day>,
    /// The run's start, as the caller of `finish` gave it.
    pub start: Option<Day>,
    pub config: Named,
    pub merchants: Named,
    pub merchant_rows: u64,
    pub state_in: Option<String>,
    pub transactions: Vec<Named>,
    pub adjustments: Option<AdjustmentJudgement>,
}

fn date(day: Option<Day>) -> Value {
    day.map_or(Value::Null, |d| Value::String(calendar::format_date(d)))
}

fn named(file: &Named) -> Value {
    serde_json::json!({"path": file.path, "sha256": file.sha256})
}

impl Description {
    /// The file's text.
    pub fn render(&self) -> String {
        let adjustments = self.adjustments.as_ref().map_or(Value::Null, |a| {
            serde_json::json!({
                "path": a.file.path,
                "sha256": a.file.sha256,
                "rows_read": a.rows_read,
                "rows_accepted": a.rows_accepted,
                "rows_rejected": a.rows_rejected,
                "accepted_partitions": a.accepted_partitions,
                "rejects_csv": a.rejects_csv,
            })
        });
        let body = serde_json::json!({
            "format": FORMAT,
            "version": VERSION,
            "partition": self.partition,
            "partitions": self.partitions,
            "through": calendar::format_date(self.through),
            "local_start": date(self.local_start),
            "start": date(self.start),
            "config": named(&self.config),
            "merchants": {"path": self.merchants.path, "sha256": self.merchants.sha256, "rows": self.merchant_rows},
            "state_in": self.state_in,
            "transactions": self.transactions.iter().map(named).collect::<Vec<_>>(),
            "adjustments": adjustments,
        });
        let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads the `partition.json` of the partition folder `dir`; anything
    /// missing or malformed is a usage error naming the file.
    pub fn read(dir: &Path) -> Result<Description> {
        let path = dir.join(PARTITION_FILE);
        let bad = |why: String| {
            Error::Usage(format!(
                "{}: not a partition folder of stream mode ({why})",
                path.display()
            ))
        };
        let bytes = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if body["format"] != FORMAT || body["version"] != VERSION {
            return Err(bad(format!(
                "format {} version {}",
                body["format"], body["version"]
            )));
        }
        let text = |value: &Value, key: &str| -> Result<String> {
            value[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("{key} is not a string")))
        };
        let number = |value: &Value, key: &str| -> Result<u64> {
            value[key]
                .as_u64()
                .ok_or_else(|| bad(format!("{key} is not a number")))
        };
        let day = |value: &Value, key: &str| -> Result<Option<Day>> {
            match &value[key] {
                Value::Null => Ok(None),
                Value::String(s) => calendar::parse_date(s.as_bytes())
                    .map(Some)
                    .ok_or_else(|| bad(format!("{key} {s:?} is not a date"))),
                other => Err(bad(format!("{key} is {other}"))),
            }
        };
        let named_at = |value: &Value| -> Result<Named> {
            Ok(Named {
                path: text(value, "path")?,
                sha256: text(value, "sha256")?,
            })
        };
        let adjustments = match &body["adjustments"] {
            Value::Null => None,
            a => Some(AdjustmentJudgement {
                file: named_at(a)?,
                rows_read: number(a, "rows_read")?,
                rows_accepted: number(a, "rows_accepted")?,
                rows_rejected: number(a, "rows_rejected")?,
                accepted_partitions: a["accepted_partitions"]
                    .as_array()
                    .ok_or_else(|| bad("accepted_partitions is not a list".into()))?
                    .iter()
                    .map(|k| {
                        k.as_u64()
                            .map(|k| k as u32)
                            .ok_or_else(|| bad("accepted_partitions holds a non-number".into()))
                    })
                    .collect::<Result<_>>()?,
                rejects_csv: text(a, "rejects_csv")?,
            }),
        };
        Ok(Description {
            partition: number(&body, "partition")? as u32,
            partitions: number(&body, "partitions")? as u32,
            through: day(&body, "through")?.ok_or_else(|| bad("through is null".into()))?,
            local_start: day(&body, "local_start")?,
            start: day(&body, "start")?,
            config: named_at(&body["config"])?,
            merchants: named_at(&body["merchants"])?,
            merchant_rows: number(&body["merchants"], "rows")?,
            state_in: body["state_in"].as_str().map(str::to_string),
            transactions: body["transactions"]
                .as_array()
                .ok_or_else(|| bad("transactions is not a list".into()))?
                .iter()
                .map(named_at)
                .collect::<Result<_>>()?,
            adjustments,
        })
    }
}

/// One line of `partition-index.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexLine {
    /// An entry of this run's rows, in the segment's order: the row's
    /// (file index, line) and its id.
    Row { at: (u32, u64), id: Vec<u8> },
    /// An earlier run's entry that this partition's references named: the
    /// first of those references, whether the entry goes into the end
    /// state's index as changed (an accepted refund or void of it, inside
    /// the index window), and its id.
    Prior {
        first_reference: (u32, u64),
        changed: bool,
        id: Vec<u8>,
    },
}

fn hex(bytes: &[u8]) -> String {
    crate::ingest::source::hex(bytes)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The text of `partition-index.txt`: one line per entry, fields
/// separated by spaces, ids in hex (an id may hold any byte).
pub fn render_index(lines: &[IndexLine]) -> String {
    let mut out = String::new();
    for line in lines {
        match line {
            IndexLine::Row { at, id } => {
                out.push_str(&format!("r {} {} {}\n", at.0, at.1, hex(id)));
            }
            IndexLine::Prior {
                first_reference,
                changed,
                id,
            } => out.push_str(&format!(
                "p {} {} {} {}\n",
                first_reference.0,
                first_reference.1,
                u8::from(*changed),
                hex(id)
            )),
        }
    }
    out
}

/// Reads `partition-index.txt` of the partition folder `dir`.
pub fn read_index(dir: &Path) -> Result<Vec<IndexLine>> {
    let path = dir.join(INDEX_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("{}: cannot be read: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            let bad = || {
                Error::Usage(format!(
                    "{}: line {} is not an index line",
                    path.display(),
                    number + 1
                ))
            };
            let fields: Vec<&str> = line.split(' ').collect();
            let int = |at: usize| -> Result<u64> {
                fields.get(at).and_then(|f| f.parse().ok()).ok_or_else(bad)
            };
            match fields.first() {
                Some(&"r") if fields.len() == 4 => Ok(IndexLine::Row {
                    at: (int(1)? as u32, int(2)?),
                    id: unhex(fields[3]).ok_or_else(bad)?,
                }),
                Some(&"p") if fields.len() == 5 => Ok(IndexLine::Prior {
                    first_reference: (int(1)? as u32, int(2)?),
                    changed: int(3)? == 1,
                    id: unhex(fields[4]).ok_or_else(bad)?,
                }),
                _ => Err(bad()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lines_read_back() {
        let lines = vec![
            IndexLine::Row {
                at: (0, 7),
                id: b"a,\"b\n".to_vec(),
            },
            IndexLine::Prior {
                first_reference: (1, 2),
                changed: true,
                id: vec![0xff, 0],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX_FILE), render_index(&lines)).unwrap();
        assert_eq!(read_index(dir.path()).unwrap(), lines);
    }
}
