//! The day a worker is taking, as its log says: the files' heads, the
//! rows in their places, the close marker, and the foreign messages; and
//! how one incoming message becomes a log entry (`OpenDay::entry_for`).
//! This module must not talk to the server or settle money.

use super::arrival;
use super::log::Entry;
use super::nats::{self, Incoming};
use super::{FileHead, Row};
use crate::calendar::Day;

/// The open day as the log says.
#[derive(Default)]
pub(super) struct OpenDay {
    /// The last stream sequence taken (logged, or skipped as known).
    pub(super) last_seq: u64,
    pub(super) files: Vec<Option<FileHead>>,
    /// Per file: the `merchant_id` column of its header.
    pub(super) merchant_columns: Vec<Option<usize>>,
    pub(super) rows: Vec<Row>,
    pub(super) foreign: Vec<(u64, String, String)>,
    pub(super) close: Option<(u64, Day)>,
}

impl OpenDay {
    pub(super) fn apply(&mut self, entry: Entry) {
        // The last entry's, not the largest: after a server lost its
        // stream's tail the sequences go on below the log's (see `run`).
        self.last_seq = entry.seq();
        match entry {
            Entry::Base { .. } => {}
            Entry::File { index, head, .. } => {
                let index = index as usize;
                if self.files.len() <= index {
                    self.files.resize(index + 1, None);
                }
                if self.merchant_columns.len() <= index {
                    self.merchant_columns.resize(index + 1, None);
                }
                self.merchant_columns[index] = crate::ingest::header::read(
                    &head.head,
                    &head.name,
                    &crate::ingest::txn::COLUMNS,
                )
                .ok()
                .and_then(|header| header.columns[1]);
                self.files[index] = Some(head);
            }
            Entry::Row { row, .. } => {
                // Rows come in (file, line) order, except those that fill a
                // gap a broken connection left (sent again by a resumed
                // publisher): they go into their place.
                let key = (row.file_index, row.line);
                match self.rows.last() {
                    Some(last) if (last.file_index, last.line) > key => {
                        let at = self.rows.partition_point(|r| (r.file_index, r.line) < key);
                        self.rows.insert(at, row);
                    }
                    _ => self.rows.push(row),
                }
            }
            Entry::Close { seq, day } => self.close = Some((seq, day)),
            Entry::Foreign {
                seq,
                subject,
                detail,
            } => self.foreign.push((seq, subject, detail)),
        }
    }

    /// The row held at `line` of file `file_index`.
    pub(super) fn row_at(&self, file_index: u32, line: u64) -> Option<&Row> {
        self.rows
            .binary_search_by_key(&(file_index, line), |r| (r.file_index, r.line))
            .ok()
            .map(|i| &self.rows[i])
    }

    /// The entry a received message makes, or `None` for a copy of a file
    /// head already held (a no-op).
    pub(super) fn entry_for(
        &self,
        seq: u64,
        subject: &str,
        incoming: std::result::Result<Incoming, String>,
        (partition, partitions): (u32, u32),
    ) -> Option<Entry> {
        let foreign = |detail: String| Entry::Foreign {
            seq,
            subject: subject.to_string(),
            detail,
        };
        let entry = match incoming {
            Err(why) => foreign(why),
            Ok(Incoming::File {
                index,
                name,
                sha256,
                head,
            }) => {
                let head = FileHead { name, head, sha256 };
                match self.files.get(index as usize).and_then(Option::as_ref) {
                    Some(held) if *held == head => return None,
                    Some(held) => foreign(format!(
                        "file {index} arrives as {} although this day's file {index} is {}: one publish per day",
                        head.name, held.name
                    )),
                    None => Entry::File { seq, index, head },
                }
            }
            Ok(Incoming::Row {
                file_index,
                line,
                duplicate_of,
                sha_prefix,
                bytes,
                ..
            }) => {
                let held = self.files.get(file_index as usize).and_then(Option::as_ref);
                let copy = self
                    .row_at(file_index, line)
                    .is_some_and(|r| r.bytes == bytes && r.duplicate_of == duplicate_of);
                // A record of another partition's merchant (a row published
                // to the wrong subject) would settle that merchant twice.
                let mut record = crate::ingest::csv::Record::default();
                let one_record = arrival::cut_one(&bytes, &mut record);
                let column = self
                    .merchant_columns
                    .get(file_index as usize)
                    .copied()
                    .flatten();
                let home = super::partition_of(record.field_or_empty(column), partitions);
                match held {
                    None => foreign(format!(
                        "a row of file {file_index}, whose head has not arrived"
                    )),
                    Some(head) if nats::sha_prefix(&head.sha256) != sha_prefix => {
                        foreign(format!("a row of another input than file {file_index}"))
                    }
                    // A row held already, sent again by a resumed publisher
                    // after the server's duplicate window, is a copy.
                    Some(_) if copy => return None,
                    Some(_) if self.row_at(file_index, line).is_some() => foreign(format!(
                        "line {line} of file {file_index} arrives again with other bytes"
                    )),
                    Some(_) if !one_record => foreign(format!(
                        "line {line} of file {file_index} is not one CSV record"
                    )),
                    Some(_) if home != partition => foreign(format!(
                        "line {line} of file {file_index} is a row of partition {home}"
                    )),
                    Some(_) => Entry::Row {
                        seq,
                        row: Row {
                            file_index,
                            line,
                            bytes,
                            duplicate_of,
                        },
                    },
                }
            }
            Ok(Incoming::Close { day }) => Entry::Close { seq, day },
        };
        Some(entry)
    }
}

/// The rejects of foreign messages, as rejects.csv rows: file
/// `nats:<subject>`, line = the stream sequence, reason malformed_row.
pub(super) fn foreign_rejects(foreign: &[(u64, String, String)]) -> String {
    let mut out = String::from("file,line,txn_id,reason,detail\n");
    for (seq, subject, detail) in foreign {
        crate::csv_field::push_field(&mut out, &format!("nats:{subject}"));
        out.push_str(&format!(",{seq},,malformed_row,"));
        crate::csv_field::push_field(&mut out, detail);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_messages_become_reject_rows() {
        let text = foreign_rejects(&[(7, "txn.1".into(), "no headers, \"x\"".into())]);
        assert_eq!(
            text,
            "file,line,txn_id,reason,detail\nnats:txn.1,7,,malformed_row,\"no headers, \"\"x\"\"\"\n"
        );
    }
}
