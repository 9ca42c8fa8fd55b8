//! Header rows: columns found by name, in any order.

use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};

/// The byte-order mark a file may start with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the data rows of a file begin, and the columns its header named.
pub struct Header {
    /// Field count of the header row: every data row must have as many.
    pub field_count: usize,
    /// Position of each wanted column, in the order asked for.
    pub columns: Vec<Option<usize>>,
    /// Byte offset of the first data row's line.
    pub data_start: usize,
    /// Physical lines before `data_start`.
    pub lines_before_data: u64,
}

/// Reads the header of `buf`. `wanted` names the columns to find and
/// whether each is required. A missing required column, a name given twice,
/// or no header at all is fatal.
pub fn read(buf: &[u8], file: &str, wanted: &[(&str, bool)]) -> Result<Header> {
    let start = if buf.starts_with(BOM) { BOM.len() } else { 0 };
    let mut tokenizer = Tokenizer::new(buf, start);
    let mut record = Record::default();
    if !tokenizer.next_record(&mut record) {
        return Err(Error::input(file, "has no header row"));
    }
    let line = record.lines_before + 1;
    if record.unterminated {
        return Err(Error::input(
            file,
            format!("line {line}: the header row has an unterminated quote"),
        ));
    }
    let names: Vec<&[u8]> = (0..record.field_count()).map(|i| record.field(i)).collect();
    for (i, name) in names.iter().enumerate() {
        if !name.is_empty() && names[..i].contains(name) {
            return Err(Error::input(
                file,
                format!(
                    "line {line}: the header names column {:?} twice",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
    }
    let mut columns = Vec::with_capacity(wanted.len());
    for &(name, required) in wanted {
        let position = names.iter().position(|n| *n == name.as_bytes());
        if position.is_none() && required {
            return Err(Error::input(
                file,
                format!("line {line}: the header lacks the required column {name:?}"),
            ));
        }
        columns.push(position);
    }
    Ok(Header {
        field_count: record.field_count(),
        columns,
        data_start: tokenizer.position(),
        lines_before_data: tokenizer.line_ends(),
    })
}
