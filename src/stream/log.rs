//! A worker's durable state: an append-only log of the messages it has
//! taken from the stream (stream sequence, what the message said), synced
//! to disk before the messages are acknowledged.
//!
//! A worker killed at any moment restarts from this log: the entries it
//! holds are exactly the messages whose effect survives, and a redelivered
//! message whose stream sequence is at or below the log's last one is
//! skipped. Each entry is framed by its length and a CRC-32, so a torn
//! write at the tail (a kill mid-append) is cut off on replay; that entry's
//! message was not acknowledged and comes again. This module must not
//! interpret rows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::calendar::Day;
use crate::error::{Error, Result};

use super::{FileHead, Row};

/// The largest entry the log accepts: a row is at most 1 MiB
/// (`ROW_BYTES_MAX`), a file head far less.
pub const ENTRY_BYTES_MAX: usize = 64 << 20;

/// One message's effect on the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The log starts after stream sequence `seq` (written at rotation:
    /// everything up to it belongs to a closed day).
    Base {
        seq: u64,
    },
    File {
        seq: u64,
        index: u32,
        head: FileHead,
    },
    Row {
        seq: u64,
        row: Row,
    },
    Close {
        seq: u64,
        day: Day,
    },
    /// A message that is not one of ours, rejected and acknowledged.
    Foreign {
        seq: u64,
        subject: String,
        detail: String,
    },
}

impl Entry {
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Base { seq }
            | Entry::File { seq, .. }
            | Entry::Row { seq, .. }
            | Entry::Close { seq, .. }
            | Entry::Foreign { seq, .. } => *seq,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        let tag = match self {
            Entry::Base { .. } => 0u8,
            Entry::File { .. } => 1,
            Entry::Row { .. } => 2,
            Entry::Close { .. } => 3,
            Entry::Foreign { .. } => 4,
        };
        out.push(tag);
        out.extend_from_slice(&self.seq().to_le_bytes());
        match self {
            Entry::Base { .. } => {}
            Entry::File { index, head, .. } => {
                out.extend_from_slice(&index.to_le_bytes());
                bytes(out, head.name.as_bytes());
                bytes(out, head.sha256.as_bytes());
                bytes(out, &head.head);
            }
            Entry::Row { row, .. } => {
                out.extend_from_slice(&row.file_index.to_le_bytes());
                out.extend_from_slice(&row.line.to_le_bytes());
                match row.duplicate_of {
                    None => out.push(0),
                    Some((file, line)) => {
                        out.push(1);
                        out.extend_from_slice(&file.to_le_bytes());
                        out.extend_from_slice(&line.to_le_bytes());
                    }
                }
                bytes(out, &row.bytes);
            }
            Entry::Close { day, .. } => out.extend_from_slice(&day.to_le_bytes()),
            Entry::Foreign {
                subject, detail, ..
            } => {
                bytes(out, subject.as_bytes());
                bytes(out, detail.as_bytes());
            }
        }
    }

    fn decode(payload: &[u8]) -> Option<Entry> {
        let mut reader = Reader(payload);
        let tag = reader.take(1)?[0];
        let seq = reader.u64()?;
        let entry = match tag {
            0 => Entry::Base { seq },
            1 => {
                let index = reader.u32()?;
                let name = String::from_utf8(reader.bytes()?.to_vec()).ok()?;
                let sha256 = String::from_utf8(reader.bytes()?.to_vec()).ok()?;
                let head = reader.bytes()?.to_vec();
                Entry::File {
                    seq,
                    index,
                    head: FileHead { name, head, sha256 },
                }
            }
            2 => {
                let file_index = reader.u32()?;
                let line = reader.u64()?;
                let duplicate_of = match reader.take(1)?[0] {
                    0 => None,
                    _ => Some((reader.u32()?, reader.u64()?)),
                };
                let bytes = reader.bytes()?.to_vec();
                Entry::Row {
                    seq,
                    row: Row {
                        file_index,
                        line,
                        bytes,
                        duplicate_of,
                    },
                }
            }
            3 => Entry::Close {
                seq,
                day: i32::from_le_bytes(reader.take(4)?.try_into().ok()?),
            },
            4 => Entry::Foreign {
                seq,
                subject: String::from_utf8(reader.bytes()?.to_vec()).ok()?,
                detail: String::from_utf8(reader.bytes()?.to_vec()).ok()?,
            },
            _ => return None,
        };
        reader.0.is_empty().then_some(entry)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// The log file of one partition, with entries not yet written.
pub struct Log {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

fn frame(entry: &Entry, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    entry.encode(&mut payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn io(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), error)
}

impl Log {
    /// Opens (or creates) the log at `path` and reads back its entries; a
    /// torn or damaged tail is cut off.
    pub fn open(path: &Path) -> Result<(Log, Vec<Entry>)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(path, "reading the worker log", e)),
        };
        let mut entries = Vec::new();
        let mut at = 0usize;
        while bytes.len() - at >= 8 {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
            if len > ENTRY_BYTES_MAX || bytes.len() - at - 8 < len {
                break;
            }
            let payload = &bytes[at + 8..at + 8 + len];
            let Some(entry) = (crc32fast::hash(payload) == crc)
                .then(|| Entry::decode(payload))
                .flatten()
            else {
                break;
            };
            entries.push(entry);
            at += 8 + len;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, "opening the worker log", e))?;
        if at < bytes.len() {
            eprintln!(
                "settle: {}: cutting a torn tail of {} bytes (its messages come again)",
                path.display(),
                bytes.len() - at
            );
        }
        file.set_len(at as u64)
            .map_err(|e| io(path, "truncating the worker log", e))?;
        let mut log = Log {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
        };
        use std::io::Seek;
        log.file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| io(path, "seeking the worker log", e))?;
        Ok((log, entries))
    }

    /// Adds an entry; it is durable after the next `sync`.
    pub fn append(&mut self, entry: &Entry) {
        frame(entry, &mut self.pending);
    }

    /// Whether entries wait for a sync.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The entries appended so far, as a write-and-sync to run off the
    /// async thread (on a second handle of the same file, so the log's
    /// offset moves with it). One at a time: `sync` and `rotate` only after
    /// it is done.
    pub fn take_pending(
        &mut self,
    ) -> Result<impl FnOnce() -> std::io::Result<()> + Send + 'static> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| io(&self.path, "opening the worker log", e))?;
        let bytes = std::mem::take(&mut self.pending);
        Ok(move || {
            if !bytes.is_empty() {
                file.write_all(&bytes)?;
                file.sync_data()?;
            }
            Ok(())
        })
    }

    /// Writes the entries appended so far and syncs them to disk.
    pub fn sync(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(&self.path, "writing the worker log", e))?;
        self.pending.clear();
        Ok(())
    }

    /// Starts the log afresh after a closed day: the old log is kept as
    /// `<path>.prev` (the last closed day, for inspection) and the new one
    /// holds only `Base { seq }`, so that a message of the closed day that
    /// comes again is still recognised and skipped.
    pub fn rotate(&mut self, seq: u64) -> Result<()> {
        self.sync()?;
        let fresh = self.path.with_extension("new");
        let mut bytes = Vec::new();
        frame(&Entry::Base { seq }, &mut bytes);
        let write = |path: &Path| -> std::io::Result<File> {
            let mut file = File::create(path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            Ok(file)
        };
        let file = write(&fresh).map_err(|e| io(&fresh, "writing the worker log", e))?;
        let previous = self.path.with_extension("prev");
        std::fs::rename(&self.path, &previous)
            .and_then(|()| std::fs::rename(&fresh, &self.path))
            .map_err(|e| io(&self.path, "rotating the worker log", e))?;
        if let Some(dir) = self.path.parent() {
            // The renames are durable once the folder is synced.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, "opening the worker log", e))?;
        drop(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("settle-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let entries = vec![
            Entry::Base { seq: 3 },
            Entry::File {
                seq: 4,
                index: 0,
                head: FileHead {
                    name: "t.csv".into(),
                    head: b"a,b\n".to_vec(),
                    sha256: "ff".into(),
                },
            },
            Entry::Row {
                seq: 5,
                row: Row {
                    file_index: 0,
                    line: 2,
                    bytes: b"x,y\n".to_vec(),
                    duplicate_of: Some((0, 1)),
                },
            },
            Entry::Foreign {
                seq: 6,
                subject: "txn.0".into(),
                detail: "no headers".into(),
            },
            Entry::Close {
                seq: 7,
                day: 20_000,
            },
        ];
        let (mut log, read) = Log::open(&path).unwrap();
        assert!(read.is_empty());
        for entry in &entries {
            log.append(entry);
        }
        log.sync().unwrap();
        drop(log);
        // A torn append: half a frame.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &bytes).unwrap();
        let (mut log, read) = Log::open(&path).unwrap();
        assert_eq!(read, entries);
        log.rotate(7).unwrap();
        drop(log);
        let (_, read) = Log::open(&path).unwrap();
        assert_eq!(read, vec![Entry::Base { seq: 7 }]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
