//! TEMPORARY STAND-IN for `src/stream/partition.rs` (branch stream-part),
//! behind the same signature, so that the transport (publisher, workers,
//! close protocol) builds and is tested before the real partition lands.
//! The integrator deletes this file and points `worker.rs`'s
//! `use super::close_stub as partition;` at `super::partition`.
//!
//! It settles nothing: `finish` writes each input file rebuilt from the
//! partition's rows (`records::rebuild`), whole or not at all, so that a
//! test can see exactly which rows reached the partition. It must not be
//! used outside the stream transport's tests.

use std::path::{Path, PathBuf};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};

use super::records;
use super::{FileHead, Row};

/// As in partition.rs.
#[derive(Clone, Debug)]
pub struct PartitionOptions {
    pub config: PathBuf,
    pub merchants: PathBuf,
    pub adjustments: Option<PathBuf>,
    pub state_in: Option<PathBuf>,
    pub through: Day,
    pub partition: u32,
    pub partitions: u32,
}

/// A partition's rows, ready to settle.
pub struct Opened {
    files: Vec<FileHead>,
    rows: Vec<Row>,
    through: Day,
}

/// What `finish` wrote.
#[derive(Debug)]
pub struct PartitionSummary {
    pub rows_read: u64,
    pub files_written: usize,
}

/// Takes the partition's files and rows (in (file_index, line) order).
pub fn open(options: &PartitionOptions, files: &[FileHead], rows: &[Row]) -> Result<Opened> {
    if rows
        .windows(2)
        .any(|w| (w[0].file_index, w[0].line) >= (w[1].file_index, w[1].line))
    {
        return Err(Error::Usage("rows out of order".into()));
    }
    Ok(Opened {
        files: files.to_vec(),
        rows: rows.to_vec(),
        through: options.through,
    })
}

impl Opened {
    /// The stand-in's start: the close day when the partition has rows.
    pub fn local_start(&self) -> Option<Day> {
        (!self.rows.is_empty()).then_some(self.through)
    }

    /// Writes `input-<i>.csv` per file (the file rebuilt from this
    /// partition's rows) and `start.txt` into `out`, through a temporary
    /// folder renamed into place.
    pub fn finish(self, start: Option<Day>, out: &Path) -> Result<PartitionSummary> {
        let tmp = out.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let io = |e| Error::io(format!("writing {}", tmp.display()), e);
        std::fs::create_dir_all(&tmp).map_err(io)?;
        for (index, head) in (0u32..).zip(&self.files) {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.file_index == index).collect();
            let bytes = records::rebuild(head, &rows)?;
            std::fs::write(tmp.join(format!("input-{index}.csv")), bytes).map_err(io)?;
        }
        let start = start.map_or("none".to_string(), calendar::format_date);
        std::fs::write(tmp.join("start.txt"), format!("{start}\n")).map_err(io)?;
        std::fs::rename(&tmp, out)
            .map_err(|e| Error::io(format!("publishing {}", out.display()), e))?;
        Ok(PartitionSummary {
            rows_read: self.rows.len() as u64,
            files_written: self.files.len(),
        })
    }
}
