//! An RFC 4180 record tokenizer that knows physical lines, and the
//! splitting of a buffer into chunks that start on record boundaries.
//!
//! Quoting: a quote is special only as the first byte of a field. Inside a
//! quoted field `""` is a quote and line ends are data (and still count as
//! lines); after the closing quote, bytes up to the next comma or line end
//! are taken literally. A quoted field still open at the end of the input
//! makes its record `unterminated`.

/// One record: unquoted field bytes, where each field ends, and where the
/// record starts.
#[derive(Default, Debug)]
pub struct Record {
    data: Vec<u8>,
    /// Each field's (start, end) in `data`.
    bounds: Vec<(usize, usize)>,
    /// Byte offset of the record's first byte in the buffer.
    pub start: usize,
    /// Byte offset just past the record's line end (or the buffer's end).
    pub end: usize,
    /// Line ends seen before the record, counted from the tokenizer's start.
    pub lines_before: u64,
    /// A quoted field ran to the end of the input.
    pub unterminated: bool,
    /// Every byte of the record is ASCII (known on the fast path only;
    /// false means "not known").
    pub ascii: bool,
}

impl Record {
    pub fn field_count(&self) -> usize {
        self.bounds.len()
    }

    /// Field `index`, unquoted and trimmed of spaces and tabs.
    pub fn field(&self, index: usize) -> &[u8] {
        let (start, end) = self.bounds[index];
        trim(&self.data[start..end])
    }

    /// The field at `index` when the record has it, else empty.
    pub fn field_or_empty(&self, index: Option<usize>) -> &[u8] {
        match index {
            Some(i) if i < self.bounds.len() => self.field(i),
            _ => &[],
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.bounds.clear();
        self.unterminated = false;
        self.ascii = false;
    }
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The bytes of `word` equal to `byte`, each flagged by its high bit. A
/// byte just above a match may be flagged too (the subtraction borrows),
/// so a caller checks each flagged byte; the lowest flag is always a match.
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// Walks records from a start position, counting physical lines.
pub struct Tokenizer<'a> {
    buf: &'a [u8],
    pos: usize,
    line_ends: u64,
}

impl<'a> Tokenizer<'a> {
    /// `start` must be a line start (0, or just after a line end).
    pub fn new(buf: &'a [u8], start: usize) -> Tokenizer<'a> {
        Tokenizer {
            buf,
            pos: start,
            line_ends: 0,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn line_ends(&self) -> u64 {
        self.line_ends
    }

    /// Skips blank lines: line ends with nothing between them.
    pub fn skip_blank_lines(&mut self) {
        while let Some(&byte) = self.buf.get(self.pos) {
            match byte {
                b'\n' => self.pos += 1,
                b'\r' if self.buf.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
                b'\r' => self.pos += 1,
                _ => return,
            }
            self.line_ends += 1;
        }
    }

    /// Reads the next record into `record`; false at the end of the input.
    pub fn next_record(&mut self, record: &mut Record) -> bool {
        self.skip_blank_lines();
        if self.pos >= self.buf.len() {
            return false;
        }
        record.clear();
        record.start = self.pos;
        record.lines_before = self.line_ends;
        // Fast path: a line without quotes is one record whose fields are
        // split at its commas: a search for the line end, one for a quote,
        // one over the commas, and one copy.
        if let Some(line_len) = self.split_plain_line(record) {
            record
                .data
                .extend_from_slice(&self.buf[self.pos..self.pos + line_len]);
            self.pos += line_len;
            self.consume_line_end();
            record.end = self.pos;
            return true;
        }
        record.clear();
        let mut field_start = 0;
        loop {
            if self.buf.get(self.pos) == Some(&b'"') {
                self.pos += 1;
                if !self.read_quoted(record) {
                    record.unterminated = true;
                    record.bounds.push((field_start, record.data.len()));
                    break;
                }
            }
            match memchr::memchr3(b',', b'\n', b'\r', &self.buf[self.pos..]) {
                Some(offset) => {
                    record
                        .data
                        .extend_from_slice(&self.buf[self.pos..self.pos + offset]);
                    record.bounds.push((field_start, record.data.len()));
                    field_start = record.data.len();
                    self.pos += offset;
                    if self.buf[self.pos] == b',' {
                        self.pos += 1;
                        continue;
                    }
                    self.consume_line_end();
                    break;
                }
                None => {
                    record.data.extend_from_slice(&self.buf[self.pos..]);
                    record.bounds.push((field_start, record.data.len()));
                    self.pos = self.buf.len();
                    break;
                }
            }
        }
        record.end = self.pos;
        true
    }

    /// Splits the line at the current position into field bounds when it
    /// holds no quote, and returns its length without the line end; `None`
    /// (bounds half-filled) when a quote needs the full tokenizer.
    ///
    /// One pass, eight bytes at a time: lines are short (about 75 bytes),
    /// and separate searches for the line end, a quote and the commas,
    /// then an ASCII check, cost more in their set-up than in their scans.
    fn split_plain_line(&self, record: &mut Record) -> Option<usize> {
        let rest = &self.buf[self.pos..];
        let mut field_start = 0;
        // The high bits of every byte before the line end: zero when ASCII.
        let mut high_bits = 0u64;
        let mut at = 0;
        let line_len = 'scan: {
            while at + 8 <= rest.len() {
                let word = u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
                let mut flags = bytes_equal(word, b',')
                    | bytes_equal(word, b'"')
                    | bytes_equal(word, b'\n')
                    | bytes_equal(word, b'\r');
                while flags != 0 {
                    let k = flags.trailing_zeros() as usize / 8;
                    flags &= flags - 1;
                    match rest[at + k] {
                        b',' => {
                            record.bounds.push((field_start, at + k));
                            field_start = at + k + 1;
                        }
                        b'"' => return None,
                        b'\n' | b'\r' => {
                            // Only the bytes before the line end count.
                            let before = if k == 0 { 0 } else { u64::MAX >> (64 - 8 * k) };
                            high_bits |= word & before;
                            break 'scan at + k;
                        }
                        // A flag carried into the byte above a match.
                        _ => {}
                    }
                }
                high_bits |= word;
                at += 8;
            }
            for (i, &byte) in rest.iter().enumerate().skip(at) {
                match byte {
                    b',' => {
                        record.bounds.push((field_start, i));
                        field_start = i + 1;
                    }
                    b'"' => return None,
                    b'\n' | b'\r' => break 'scan i,
                    _ => high_bits |= u64::from(byte),
                }
            }
            rest.len()
        };
        record.bounds.push((field_start, line_len));
        record.ascii = high_bits & 0x8080_8080_8080_8080 == 0;
        Some(line_len)
    }

    /// Reads a quoted field's content after its opening quote. Returns false
    /// when the input ends inside the quotes.
    fn read_quoted(&mut self, record: &mut Record) -> bool {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(offset) = memchr::memchr(b'"', rest) else {
                self.line_ends += count_line_ends(self.buf, self.pos, self.buf.len());
                record.data.extend_from_slice(rest);
                self.pos = self.buf.len();
                return false;
            };
            self.line_ends += count_line_ends(self.buf, self.pos, self.pos + offset);
            record.data.extend_from_slice(&rest[..offset]);
            self.pos += offset + 1;
            if self.buf.get(self.pos) == Some(&b'"') {
                record.data.push(b'"');
                self.pos += 1;
            } else {
                return true;
            }
        }
    }

    fn consume_line_end(&mut self) {
        match self.buf.get(self.pos) {
            Some(b'\r') if self.buf.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
            Some(b'\r' | b'\n') => self.pos += 1,
            _ => return,
        }
        self.line_ends += 1;
    }
}

/// Line ends in `buf[from..to]`: every LF, and every CR not followed by LF
/// (the CR of a CR LF pair ends no line of its own).
pub fn count_line_ends(buf: &[u8], from: usize, to: usize) -> u64 {
    let slice = &buf[from..to];
    let lf = memchr::memchr_iter(b'\n', slice).count();
    let lone_cr = memchr::memchr_iter(b'\r', slice)
        .filter(|&i| buf.get(from + i + 1) != Some(&b'\n'))
        .count();
    (lf + lone_cr) as u64
}

/// The first line start at or after `position`: a position just after a line
/// end, or the end of the buffer.
pub fn next_line_start(buf: &[u8], position: usize) -> usize {
    let mut at = position;
    while at < buf.len() {
        if at > 0 {
            let previous = buf[at - 1];
            if previous == b'\n' || (previous == b'\r' && buf[at] != b'\n') {
                return at;
            }
        }
        match memchr::memchr2(b'\n', b'\r', &buf[at..]) {
            Some(offset) => at += offset + 1,
            None => return buf.len(),
        }
    }
    buf.len()
}

/// Speculative chunk starts: line starts near every `target_bytes` from
/// `start`. A start may fall inside a quoted field; the pipeline detects
/// that and re-reads the chunk from its predecessor's true end.
pub fn chunk_starts(buf: &[u8], start: usize, target_bytes: usize) -> Vec<usize> {
    assert!(target_bytes > 0);
    let mut starts = vec![start];
    let mut cut = start + target_bytes;
    while cut < buf.len() {
        let line_start = next_line_start(buf, cut);
        if line_start >= buf.len() {
            break;
        }
        if line_start > *starts.last().expect("starts is never empty") {
            starts.push(line_start);
        }
        cut = line_start + target_bytes;
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's line, fields, whether it is unterminated, and its
    /// ASCII flag.
    fn records_with_ascii(text: &[u8]) -> Vec<(u64, Vec<String>, bool, bool)> {
        let mut tokenizer = Tokenizer::new(text, 0);
        let mut record = Record::default();
        let mut out = Vec::new();
        while tokenizer.next_record(&mut record) {
            let fields = (0..record.field_count())
                .map(|i| String::from_utf8_lossy(record.field(i)).into_owned())
                .collect();
            out.push((
                record.lines_before + 1,
                fields,
                record.unterminated,
                record.ascii,
            ));
        }
        out
    }

    fn records(text: &[u8]) -> Vec<(u64, Vec<String>, bool)> {
        records_with_ascii(text)
            .into_iter()
            .map(|(line, fields, unterminated, _)| (line, fields, unterminated))
            .collect()
    }

    #[test]
    fn physical_lines_count_every_kind_of_line_end() {
        let text = b"a,b\r\n\r\n\"x\ny\",2\rlast, \t z \n";
        let got = records(text);
        assert_eq!(got[0], (1, vec!["a".into(), "b".into()], false));
        assert_eq!(got[1], (3, vec!["x\ny".into(), "2".into()], false));
        assert_eq!(got[2], (5, vec!["last".into(), "z".into()], false));
        assert_eq!(count_line_ends(text, 0, text.len()), 5);
    }

    #[test]
    fn quotes_are_special_only_at_a_field_start() {
        let got = records(b"\"a\"\"b\",c\"d,\"e\"f, \"g\"\n\"open");
        assert_eq!(got[0].1, vec!["a\"b", "c\"d", "ef", "\"g\""]);
        assert_eq!(got[1], (2, vec!["open".into()], true));
    }

    #[test]
    fn a_line_of_spaces_is_a_record() {
        let got = records(b"h\n   \n\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], (2, vec![String::new()], false));
    }

    proptest::proptest! {
        /// Lines without quotes take the word-at-a-time path: its fields,
        /// lines and ASCII flag must be those of a plain split.
        #[test]
        fn unquoted_lines_split_like_a_plain_split(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b',', b'\n', b'\r', b' ', 0xC3, 0xA9, 0x01, 0x2B, 0x2D]),
                0..200,
            )
        ) {
            let mut expected = Vec::new();
            let mut line = 1u64;
            let mut at = 0;
            loop {
                // Line ends, then blank lines, which hold no record.
                while at < text.len() && (text[at] == b'\n' || text[at] == b'\r') {
                    at += if text[at] == b'\r' && text.get(at + 1) == Some(&b'\n') { 2 } else { 1 };
                    line += 1;
                }
                if at >= text.len() {
                    break;
                }
                let end = text[at..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(text.len(), |p| at + p);
                let fields: Vec<String> = text[at..end]
                    .split(|&b| b == b',')
                    .map(|f| String::from_utf8_lossy(trim(f)).into_owned())
                    .collect();
                expected.push((line, fields, false, text[at..end].is_ascii()));
                at = end;
            }
            proptest::prop_assert_eq!(records_with_ascii(&text), expected);
        }
    }

    #[test]
    fn line_starts_follow_cr_lf_pairs() {
        let text = b"ab\r\ncd\ref\n";
        assert_eq!(next_line_start(text, 1), 4);
        assert_eq!(next_line_start(text, 3), 4);
        assert_eq!(next_line_start(text, 4), 4);
        assert_eq!(next_line_start(text, 5), 7);
        assert_eq!(next_line_start(text, 8), 10);
    }
}
