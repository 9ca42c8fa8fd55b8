//! A CSV file the run rendered, as Parquet: the journal, detail, rejects
//! and booked adjustments files are rendered (and the journal checked
//! against its settlement rows) once, as CSV text, and encoded from it, so
//! that the two formats cannot say different things.
//!
//! The text is the run's own (RFC 4180 minimal quoting, LF line ends), so
//! the reader here is strict: anything it does not expect is a bug, reported
//! as such, never guessed at. Fields are taken byte for byte, spaces
//! included (the input tokenizer trims them; an output must not).

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{Date32Builder, Decimal128Builder, Int64Builder, StringBuilder};

use super::{AMOUNT_TYPE, BATCH_ROWS, FileWriter, RATE_TYPE, Table, Type, amount_value};
use crate::calendar;
use crate::money;

/// One column being filled.
enum Builder {
    Date(Date32Builder),
    Text(StringBuilder),
    Count(Int64Builder),
    Decimal(Decimal128Builder),
}

impl Builder {
    fn new(kind: Type) -> Builder {
        match kind {
            Type::Date => Builder::Date(Date32Builder::with_capacity(BATCH_ROWS)),
            Type::Text => Builder::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)),
            Type::Count => Builder::Count(Int64Builder::with_capacity(BATCH_ROWS)),
            Type::Amount => Builder::Decimal(super::decimal_builder(BATCH_ROWS, &AMOUNT_TYPE)),
            Type::Rate => Builder::Decimal(super::decimal_builder(BATCH_ROWS, &RATE_TYPE)),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Count(b) => Arc::new(b.finish()),
            Builder::Decimal(b) => Arc::new(b.finish()),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Date(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Count(b) => b.append_null(),
            Builder::Decimal(b) => b.append_null(),
        }
    }

    /// Appends one field's text as a value of `kind`.
    fn append(&mut self, kind: Type, field: &str) -> Result<(), String> {
        match (self, kind) {
            (Builder::Text(b), _) => b.append_value(field),
            (Builder::Date(b), _) => b.append_value(
                calendar::parse_date(field.as_bytes()).ok_or("is not a date YYYY-MM-DD")?,
            ),
            (Builder::Count(b), _) => {
                b.append_value(field.parse::<i64>().map_err(|_| "is not a count")?)
            }
            (Builder::Decimal(b), Type::Rate) => b.append_value(i128::from(
                money::parse_rate_ppm(field).ok_or("is not a rate")?,
            )),
            (Builder::Decimal(b), _) => b.append_value(amount_value(fen(field)?)?),
        }
        Ok(())
    }
}

/// An amount as `format_fen` writes it (`-12.30`, `0.00`: always two
/// fractional digits) in fen, over the whole `DECIMAL(18,2)` range, which
/// `money::parse_amount_fen` (an input's range) does not cover.
fn fen(text: &str) -> Result<i128, String> {
    let bad = || format!("{text:?} is not an amount");
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (whole, cents) = body.split_once('.').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || cents.len() != 2 || !digits(cents) || whole.len() > 16 {
        return Err(bad());
    }
    let magnitude = whole.parse::<i128>().map_err(|_| bad())? * 100
        + cents.parse::<i128>().map_err(|_| bad())?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Where one field's text lies: in the file's text itself (an unquoted
/// field, the common case, read without a copy), or in the record's
/// scratch buffer (a quoted field, unescaped).
#[derive(Clone, Copy, Debug)]
enum Span {
    Text(usize, usize),
    Scratch(usize, usize),
}

/// One record's fields.
#[derive(Default)]
struct Fields {
    spans: Vec<Span>,
    scratch: String,
}

impl Fields {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get<'t>(&'t self, text: &'t str, k: usize) -> &'t str {
        match self.spans[k] {
            Span::Text(start, end) => &text[start..end],
            Span::Scratch(start, end) => &self.scratch[start..end],
        }
    }

    /// Line ends inside quoted fields: a record may span several lines.
    fn line_ends(&self) -> u64 {
        self.scratch.matches('\n').count() as u64
    }
}

/// Splits the next record at `*at` into `fields`, moving `*at` past its
/// line end; false at the end of the text.
fn next_record(text: &str, at: &mut usize, fields: &mut Fields) -> Result<bool, String> {
    let bytes = text.as_bytes();
    fields.spans.clear();
    fields.scratch.clear();
    if *at >= bytes.len() {
        return Ok(false);
    }
    let mut pos = *at;
    loop {
        if bytes.get(pos) == Some(&b'"') {
            // A quoted field: `""` is a quote, anything else up to the
            // closing quote is data (commas and line ends included).
            let start = fields.scratch.len();
            pos += 1;
            loop {
                let close = memchr::memchr(b'"', &bytes[pos..])
                    .map(|k| pos + k)
                    .ok_or("a quoted field is not closed")?;
                fields.scratch.push_str(&text[pos..close]);
                if bytes.get(close + 1) == Some(&b'"') {
                    fields.scratch.push('"');
                    pos = close + 2;
                } else {
                    pos = close + 1;
                    break;
                }
            }
            fields
                .spans
                .push(Span::Scratch(start, fields.scratch.len()));
        } else {
            let end = memchr::memchr2(b',', b'\n', &bytes[pos..]).map_or(bytes.len(), |k| pos + k);
            fields.spans.push(Span::Text(pos, end));
            pos = end;
        }
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'\n') => {
                *at = pos + 1;
                return Ok(true);
            }
            None => {
                *at = pos;
                return Ok(true);
            }
            Some(_) => return Err("a quoted field is followed by more than a comma".into()),
        }
    }
}

/// Encodes a CSV file of kind `table` (header included) as Parquet.
/// `Err` names the line and column that could not be encoded.
pub fn from_csv(table: Table, text: &str) -> Result<Vec<u8>, String> {
    let columns = table.columns();
    let header_end = text.find('\n').map_or(text.len(), |k| k + 1);
    let names: Vec<&str> = text[..header_end].trim_end().split(',').collect();
    if names.len() != columns.len() || names.iter().zip(columns).any(|(n, c)| *n != c.name) {
        return Err(format!("the header is not the {table:?} header"));
    }
    let mut file = FileWriter::new(table)?;
    let mut builders: Vec<Builder> = columns.iter().map(|c| Builder::new(c.kind)).collect();
    let mut fields = Fields::default();
    let mut at = header_end;
    // Lines before the next record: the header's, then each record's (a
    // quoted field may hold line ends).
    let mut lines_before = 1u64;
    let mut rows = 0;
    while next_record(text, &mut at, &mut fields)
        .map_err(|e| format!("line {}: {e}", lines_before + 1))?
    {
        let line = lines_before + 1;
        lines_before += 1 + fields.line_ends();
        if fields.len() != columns.len() {
            return Err(format!(
                "line {line}: {} fields, not {}",
                fields.len(),
                columns.len()
            ));
        }
        for (k, (builder, column)) in builders.iter_mut().zip(columns).enumerate() {
            let field = fields.get(text, k);
            if column.nullable && field.is_empty() {
                builder.append_null();
                continue;
            }
            builder
                .append(column.kind, field)
                .map_err(|e| format!("line {line}: {} {field:?} {e}", column.name))?;
        }
        rows += 1;
        if rows == BATCH_ROWS {
            file.write(builders.iter_mut().map(Builder::finish).collect())?;
            rows = 0;
        }
    }
    if rows > 0 {
        file.write(builders.iter_mut().map(Builder::finish).collect())?;
    }
    file.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_format_fen_writes_them() {
        assert_eq!(fen("0.00"), Ok(0));
        assert_eq!(fen("-12.30"), Ok(-1230));
        assert_eq!(fen("9999999999999999.99"), Ok(999_999_999_999_999_999));
        for bad in [
            "",
            "-",
            "1",
            "1.2",
            "1.234",
            "+1.00",
            "1.0a",
            ".50",
            "12345678901234567.00",
        ] {
            assert!(fen(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_split_as_csv_field_quotes_them() {
        let mut fields = Fields::default();
        let text = "a, b ,\"c,\"\"d\"\"\ne\",\n\"\",x\n";
        let all = |fields: &Fields| -> Vec<String> {
            (0..fields.len())
                .map(|k| fields.get(text, k).to_string())
                .collect()
        };
        let mut at = 0;
        assert_eq!(next_record(text, &mut at, &mut fields), Ok(true));
        assert_eq!(all(&fields), ["a", " b ", "c,\"d\"\ne", ""]);
        assert_eq!(fields.line_ends(), 1);
        assert_eq!(next_record(text, &mut at, &mut fields), Ok(true));
        assert_eq!(all(&fields), ["", "x"]);
        assert_eq!(next_record(text, &mut at, &mut fields), Ok(false));
        let mut at = 0;
        assert!(next_record("\"open,", &mut at, &mut fields).is_err());
    }
}
