//! A transactions file cut into records exactly as the batch parser cuts
//! it, each with its physical line and its bytes, and the inverse: a file
//! rebuilt from a subset of its records on their original lines.
//!
//! A partition runs the batch pipeline over the rebuilt file, so every
//! record keeps its line (rejects.csv, the duplicate sentences) because
//! the records of other partitions are replaced by blank lines, which the
//! parser skips and still counts (RULES.md 1).

use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer, count_line_ends};
use crate::ingest::{header, txn};

use super::{FileHead, Row};

/// One record of a file: its line and its bytes, line end included.
pub struct Cut<'a> {
    pub line: u64,
    pub bytes: &'a [u8],
    /// The record's fields, for a caller that reads them (the publisher
    /// reads `merchant_id` and `txn_id`).
    pub record: &'a Record,
}

/// Walks the records of one file's bytes after its header.
pub struct Records<'a> {
    buf: &'a [u8],
    tokenizer: Tokenizer<'a>,
    record: Record,
    /// Physical lines before the tokenizer's start.
    lines_before_data: u64,
    pub header: header::Header,
}

impl<'a> Records<'a> {
    /// Reads the header of `buf` (a fatal input error names `name`).
    pub fn new(buf: &'a [u8], name: &str) -> Result<Records<'a>> {
        let header = header::read(buf, name, &txn::COLUMNS)?;
        Ok(Records {
            buf,
            tokenizer: Tokenizer::new(buf, header.data_start),
            record: Record::default(),
            lines_before_data: header.lines_before_data,
            header,
        })
    }

    /// The file's head as partitions receive it.
    pub fn head(&self, name: &str, sha256: String) -> FileHead {
        FileHead {
            name: name.to_string(),
            head: self.buf[..self.header.data_start].to_vec(),
            sha256,
        }
    }

    /// The next record, or `None` at the end of the file.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Cut<'_>> {
        if !self.tokenizer.next_record(&mut self.record) {
            return None;
        }
        let record = &self.record;
        Some(Cut {
            line: self.lines_before_data + record.lines_before + 1,
            bytes: &self.buf[record.start..record.end],
            record,
        })
    }
}

/// Rebuilds a file from its head and some of its rows (in line order):
/// each row on its own line, the lines between them blank. A blank line is
/// a `\n`, or a `\r` right after a `\r`, which a `\n` would have joined
/// into one CR LF line end.
pub fn rebuild(head: &FileHead, rows: &[&Row]) -> Result<Vec<u8>> {
    let mut out =
        Vec::with_capacity(head.head.len() + rows.iter().map(|r| r.bytes.len() + 1).sum::<usize>());
    out.extend_from_slice(&head.head);
    let mut next_line = count_line_ends(&head.head, 0, head.head.len()) + 1;
    for row in rows {
        if row.line < next_line {
            return Err(Error::Usage(format!(
                "{}: line {} comes after line {} in a partition's rows",
                head.name,
                row.line,
                next_line - 1
            )));
        }
        for _ in next_line..row.line {
            let blank = if out.last() == Some(&b'\r') {
                b'\r'
            } else {
                b'\n'
            };
            out.push(blank);
        }
        out.extend_from_slice(&row.bytes);
        next_line = row.line + count_line_ends(&row.bytes, 0, row.bytes.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(buf: &[u8]) -> (FileHead, Vec<Row>) {
        let mut records = Records::new(buf, "t.csv").unwrap();
        let head = records.head("t.csv", String::new());
        let mut rows = Vec::new();
        while let Some(cut) = records.next() {
            rows.push(Row {
                file_index: 0,
                line: cut.line,
                bytes: cut.bytes.to_vec(),
                duplicate_of: None,
            });
        }
        (head, rows)
    }

    const HEADER: &str = "txn_id,merchant_id,ts,type,amount,card,orig_txn_id\n";

    #[test]
    fn records_carry_their_physical_lines() {
        let text = format!(
            "\n{HEADER}a,m,t,purchase,1,debit,\r\n\nb,\"m\nx\",t,purchase,1,debit,\rc,m,t,void,1,,a"
        );
        let (head, rows) = cuts(text.as_bytes());
        assert_eq!(head.head, format!("\n{HEADER}").as_bytes());
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5, 7]);
        assert!(rows[0].bytes.ends_with(b"\r\n"));
        assert_eq!(rows[2].bytes, b"c,m,t,void,1,,a");
    }

    #[test]
    fn a_rebuilt_file_keeps_every_kept_row_on_its_line() {
        let text = format!(
            "{HEADER}a,m,t,purchase,1,debit,\rb,m,t,purchase,1,debit,\r\rc,\"q\r\n\",t,x,1,,\nd,m,t,x,1,,\n"
        );
        let (head, rows) = cuts(text.as_bytes());
        for keep in 0u32..16 {
            let kept: Vec<&Row> = rows
                .iter()
                .enumerate()
                .filter(|(i, _)| keep & (1 << i) != 0)
                .map(|(_, r)| r)
                .collect();
            let rebuilt = rebuild(&head, &kept).unwrap();
            let (_, again) = cuts(&rebuilt);
            assert_eq!(
                again,
                kept.into_iter().cloned().collect::<Vec<_>>(),
                "subset {keep:04b}"
            );
        }
    }
}
