//! Inputs read as a stream: stdin (`--transactions -`) and compressed
//! files (`decompress`). The header is read when a stream opens; the rest
//! is read by a thread of its own, cut into blocks that end on record
//! boundaries, and handed to the parse workers through a bounded channel,
//! so that parsing starts before the stream ends and memory holds a few
//! blocks of raw bytes, not the whole input. The reader hashes every byte
//! as it goes, for control.json.
//!
//! A file is closed again once its header has been read, keeping only the
//! header's bytes, and opened anew when its turn to be read comes: a run
//! over hundreds of compressed files holds a few decoders at a time, not
//! hundreds.
//!
//! Boundaries follow the tokenizer's quote rule (`csv`): a quote is special
//! only as the first byte of a field, `""` inside quotes is a quote, and a
//! line end inside quotes is data. Quote parity alone would cut inside a
//! field such as `a"b` followed by a quoted one. This module must not parse
//! rows.

use std::io::Read;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ingest::decompress;
use crate::ingest::header::BOM;

/// Bytes asked of a stream per read.
const READ_BYTES: usize = 1 << 20;
/// Bytes asked per read while looking for the header: a header is a line,
/// and a file closed after its header keeps only what was read.
const HEAD_READ_BYTES: usize = 64 << 10;
/// The header must end within this many bytes of the start.
const HEAD_BYTES_MAX: usize = 1 << 20;

/// A run of whole records of the stream.
pub struct Block {
    /// The block's place in the stream, from 0.
    pub number: u32,
    pub bytes: Vec<u8>,
    /// Line ends in the stream before the block's first byte.
    pub line_ends_before: u64,
}

/// What the whole stream was, once read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDigest {
    pub sha256: String,
    pub bytes: u64,
}

/// Opens a stream's bytes again from their start.
pub type Reopen = Box<dyn Fn() -> Result<Box<dyn Read + Send>> + Send + Sync>;

/// Where the bytes after the head come from.
enum Rest {
    /// The reader the head was read from (stdin), positioned after it.
    Open(Box<dyn Read + Send>),
    /// A file closed after its header: opened anew and read from its start.
    Reopen(Reopen),
}

/// A stream whose first bytes (its header) have been read.
pub struct Stream {
    name: String,
    head: Vec<u8>,
    /// The rest of the stream, taken once by `read_blocks`.
    rest: Mutex<Option<Rest>>,
}

impl Stream {
    /// Reads from `reader` until its header record is complete (or the
    /// stream ends), and keeps the reader for the rest.
    pub fn open(name: &str, mut reader: Box<dyn Read + Send>) -> Result<Stream> {
        let (head, _) = read_head(name, &mut reader)?;
        Ok(Stream {
            name: name.to_string(),
            head,
            rest: Mutex::new(Some(Rest::Open(reader))),
        })
    }

    /// Reads the header from `first`, keeps only its bytes and closes
    /// `first`; `reopen` gives the stream again from its start when it is
    /// read.
    pub fn open_lazily(
        name: &str,
        mut first: Box<dyn Read + Send>,
        reopen: Reopen,
    ) -> Result<Stream> {
        let (mut head, header_end) = read_head(name, &mut first)?;
        drop(first);
        // Hundreds of files wait with their header alone.
        head.truncate(header_end);
        head.shrink_to_fit();
        Ok(Stream {
            name: name.to_string(),
            head,
            rest: Mutex::new(Some(Rest::Reopen(reopen))),
        })
    }

    /// The bytes read when the stream opened: its header and maybe more.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Reads the stream from `data_start` (an offset into `head`, after
    /// `line_ends_before` line ends) to its end, handing blocks of about
    /// `block_bytes` in order to `send`, which returns false when no more
    /// are wanted. Runs on the caller's thread; call once.
    pub fn read_blocks(
        &self,
        data_start: usize,
        line_ends_before: u64,
        block_bytes: usize,
        send: &mut dyn FnMut(Block) -> bool,
    ) -> Result<StreamDigest> {
        let io = |e| decompress::read_error(&self.name, e);
        let rest = self
            .rest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .expect("a stream is read once");
        let mut reader = match rest {
            Rest::Open(reader) => reader,
            Rest::Reopen(reopen) => {
                let mut reader = reopen()?;
                let mut again = Vec::with_capacity(self.head.len());
                read_some(&mut reader, &mut again, self.head.len()).map_err(io)?;
                if again != self.head {
                    return Err(Error::input(
                        &self.name,
                        "changed while the run read it: its header differs from the one read when the run began",
                    ));
                }
                reader
            }
        };
        let mut sha = Sha256::new();
        sha.update(&self.head);
        let mut total = self.head.len() as u64;
        let mut buf = self.head[data_start..].to_vec();
        let mut cutter = Cutter::default();
        let mut line_ends = line_ends_before;
        let mut number = 0u32;
        let target = block_bytes.max(1);
        // After a scan that found no boundary (a record longer than a
        // block), the next read must bring more.
        let mut want = target;
        let mut ended = false;
        loop {
            while !ended && buf.len() < want {
                let before = buf.len();
                let ask = (want - before).min(READ_BYTES);
                if read_some(&mut reader, &mut buf, ask).map_err(io)? == 0 {
                    ended = true;
                }
                sha.update(&buf[before..]);
                total += (buf.len() - before) as u64;
            }
            // The first boundary at or after the target, else the last one:
            // blocks of about `block_bytes` whatever the reads gave.
            cutter.scan(&buf, target);
            let cut = match cutter.boundary {
                0 if ended => buf.len(),
                boundary => boundary,
            };
            if cut == 0 {
                if ended {
                    break;
                }
                want = buf.len() + 1;
                continue;
            }
            want = target;
            let mut rest = Vec::with_capacity(target + READ_BYTES);
            rest.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            let block = std::mem::replace(&mut buf, rest);
            cutter.cut(cut);
            let block_line_ends = crate::ingest::csv::count_line_ends(&block, 0, block.len());
            crate::ingest::txn::check_file_lines(&self.name, line_ends + block_line_ends)?;
            let wanted = send(Block {
                number,
                bytes: block,
                line_ends_before: line_ends,
            });
            if !wanted {
                // The workers stopped: nothing more to read for.
                break;
            }
            line_ends += block_line_ends;
            number += 1;
        }
        Ok(StreamDigest {
            sha256: crate::ingest::source::hex(&sha.finalize()),
            bytes: total,
        })
    }
}

/// Reads from `reader` until its header record is complete (or the stream
/// ends). Returns the bytes read and where the header's record ends in
/// them.
fn read_head(name: &str, reader: &mut dyn Read) -> Result<(Vec<u8>, usize)> {
    let mut head = Vec::new();
    loop {
        let read = read_some(reader, &mut head, HEAD_READ_BYTES)
            .map_err(|e| decompress::read_error(name, e))?;
        // The header is the first record that is not a blank line (after
        // a byte order mark, as `header::read` reads it): it is whole once
        // a boundary follows a byte that is not a line end.
        let bom = if head.starts_with(BOM) { BOM.len() } else { 0 };
        let text = &head[bom..];
        let header_end = text
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .and_then(|first| {
                let mut cutter = Cutter::default();
                cutter.scan(text, first + 1);
                (cutter.boundary > first).then_some(cutter.boundary)
            });
        if let Some(end) = header_end {
            return Ok((head, bom + end));
        }
        if read == 0 {
            let end = head.len();
            return Ok((head, end));
        }
        if head.len() >= HEAD_BYTES_MAX {
            return Err(Error::input(
                name,
                format!("has no complete header row in its first {HEAD_BYTES_MAX} bytes"),
            ));
        }
    }
}

/// Appends up to `max` bytes from `reader` to `buf` (fewer only at the
/// end of the stream); 0 at the end.
fn read_some(reader: &mut dyn Read, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    // `read_to_end` on a `Take` fills spare capacity without zeroing it on
    // every call, and loops over short reads (a pipe gives 64 KiB at most).
    reader.take(max as u64).read_to_end(buf)
}

/// Finds record boundaries in a buffer that grows at its end, scanning each
/// byte once. The buffer starts at a record start.
#[derive(Default)]
struct Cutter {
    /// Bytes scanned so far: the state below holds just before this.
    scanned: usize,
    in_quotes: bool,
    /// The last record boundary found (just after a line end outside
    /// quotes); 0 if none.
    boundary: usize,
}

impl Cutter {
    /// Scans the bytes of `buf` not scanned yet, up to the first boundary
    /// at or after `stop`. Stops early where the next byte decides (a quote
    /// inside quotes, or a `\r`, at the end).
    fn scan(&mut self, buf: &[u8], stop: usize) {
        let mut pos = self.scanned;
        while pos < buf.len() && self.boundary < stop {
            if self.in_quotes {
                let Some(offset) = memchr::memchr(b'"', &buf[pos..]) else {
                    pos = buf.len();
                    break;
                };
                let quote = pos + offset;
                match buf.get(quote + 1) {
                    None => {
                        pos = quote;
                        break;
                    }
                    Some(b'"') => pos = quote + 2,
                    Some(_) => {
                        self.in_quotes = false;
                        pos = quote + 1;
                    }
                }
                continue;
            }
            let Some(offset) = memchr::memchr3(b'"', b'\n', b'\r', &buf[pos..]) else {
                pos = buf.len();
                break;
            };
            let at = pos + offset;
            match buf[at] {
                b'"' => {
                    // Special only as a field's first byte: at a record start
                    // (the buffer's start, or after a line end outside quotes)
                    // or after a comma.
                    let field_start = at == 0 || matches!(buf[at - 1], b',' | b'\n' | b'\r');
                    self.in_quotes = field_start;
                    pos = at + 1;
                }
                b'\n' => pos = self.found_boundary(at + 1),
                _ => match buf.get(at + 1) {
                    None => {
                        pos = at;
                        break;
                    }
                    Some(b'\n') => pos = self.found_boundary(at + 2),
                    Some(_) => pos = self.found_boundary(at + 1),
                },
            }
        }
        self.scanned = pos;
    }

    fn found_boundary(&mut self, at: usize) -> usize {
        self.boundary = at;
        at
    }

    /// The buffer lost its first `cut` bytes: up to the boundary, or all
    /// of it at the end of the stream.
    fn cut(&mut self, cut: usize) {
        if cut == self.boundary {
            self.scanned -= cut;
            self.boundary = 0;
        } else {
            *self = Cutter::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every boundary `Cutter` finds, feeding `text` in pieces of `step`.
    fn cuts(text: &[u8], step: usize) -> Vec<usize> {
        let mut cutter = Cutter::default();
        let mut seen = Vec::new();
        for end in (step..text.len() + step).step_by(step) {
            let end = end.min(text.len());
            cutter.scan(&text[..end], usize::MAX);
            if seen.last() != Some(&cutter.boundary) && cutter.boundary > 0 {
                seen.push(cutter.boundary);
            }
        }
        seen
    }

    #[test]
    fn boundaries_follow_the_tokenizers_quote_rule() {
        // A quote inside an unquoted field is data: `a"b` does not open a
        // quote, so the next line end ends the record.
        assert_eq!(cuts(b"x,a\"b\ny,2\n", 100), vec![10]);
        assert_eq!(cuts(b"x,a\"b\ny,2\n", 1), vec![6, 10]);
        // A quoted field holds a line end and an escaped quote.
        let text = b"x,\"l1\nl2 \"\"q\"\"\"\ny\r\nz\rw";
        assert_eq!(cuts(text, 1), vec![16, 19, 21]);
        assert_eq!(cuts(text, 3), vec![16, 19, 21]);
    }

    /// A reader that gives at most 3 bytes per read, like a slow pipe.
    struct Trickle(&'static [u8]);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn blocks_end_on_records_and_count_lines() {
        let text = b"h1,h2\na,\"1\n2\"\nb,3\r\n\r\nc,4";
        let stream = Stream::open("-", Box::new(Trickle(text))).unwrap();
        assert!(stream.head().starts_with(b"h1,h2\n"));
        let mut blocks = Vec::new();
        let digest = stream
            .read_blocks(6, 1, 4, &mut |block| {
                blocks.push(block);
                true
            })
            .unwrap();
        let pieces: Vec<(&[u8], u64)> = blocks
            .iter()
            .map(|b| (b.bytes.as_slice(), b.line_ends_before))
            .collect();
        assert_eq!(
            pieces,
            vec![
                (&b"a,\"1\n2\"\n"[..], 1),
                (&b"b,3\r\n"[..], 3),
                (&b"\r\n"[..], 4),
                (&b"c,4"[..], 5),
            ]
        );
        assert_eq!(digest.bytes, text.len() as u64);
        assert_eq!(digest.sha256, crate::output::control::sha256_hex(text));
    }

    #[test]
    fn a_lazy_stream_keeps_only_its_header_and_reads_its_file_again() {
        let text: &'static [u8] = b"\xEF\xBB\xBF\nh1,h2\r\na,1\nb,2\n";
        let reopen: Reopen = Box::new(move || Ok(Box::new(Trickle(text)) as Box<dyn Read + Send>));
        let stream = Stream::open_lazily("t.csv.zst", Box::new(Trickle(text)), reopen).unwrap();
        // The byte order mark, a blank line and the header, up to its line
        // end.
        assert_eq!(stream.head(), &text[..11]);
        let mut blocks = Vec::new();
        let digest = stream
            .read_blocks(11, 2, 1 << 20, &mut |block| {
                blocks.push((block.bytes, block.line_ends_before));
                true
            })
            .unwrap();
        assert_eq!(blocks, vec![(b"a,1\nb,2\n".to_vec(), 2)]);
        assert_eq!(digest.bytes, text.len() as u64);
        assert_eq!(digest.sha256, crate::output::control::sha256_hex(text));

        // A file whose header changed between the open and the read.
        let reopen: Reopen =
            Box::new(|| Ok(Box::new(Trickle(b"h1,h3\na,1\n")) as Box<dyn Read + Send>));
        let stream =
            Stream::open_lazily("t.csv.gz", Box::new(Trickle(b"h1,h2\na,1\n")), reopen).unwrap();
        assert_eq!(stream.head(), b"h1,h2\n");
        let error = stream
            .read_blocks(6, 1, 1 << 20, &mut |_| true)
            .unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .to_string()
                .starts_with("t.csv.gz: changed while the run read it"),
            "{error}"
        );
    }

    /// The records of `text` as the tokenizer reads them: fields, and
    /// whether a quote ran to the end.
    fn records(text: &[u8]) -> Vec<(Vec<Vec<u8>>, bool)> {
        let mut tokenizer = crate::ingest::csv::Tokenizer::new(text, 0);
        let mut record = crate::ingest::csv::Record::default();
        let mut out = Vec::new();
        while tokenizer.next_record(&mut record) {
            let fields = (0..record.field_count())
                .map(|i| record.field(i).to_vec())
                .collect();
            out.push((fields, record.unterminated));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn blocks_hold_the_records_the_tokenizer_reads_whole(
            text in proptest::collection::vec(proptest::sample::select(b"ab,\"\n\r".to_vec()), 0..200),
            block_bytes in 1usize..40,
        ) {
            let mut full = b"h\n".to_vec();
            full.extend_from_slice(&text);
            let full: &'static [u8] = Box::leak(full.into_boxed_slice());
            let stream = Stream::open("-", Box::new(Trickle(full))).unwrap();
            let mut blocks = Vec::new();
            stream.read_blocks(2, 1, block_bytes, &mut |block| { blocks.push(block); true }).unwrap();
            let mut pieces = Vec::new();
            let mut line_ends = 1;
            for block in blocks {
                proptest::prop_assert_eq!(block.line_ends_before, line_ends);
                line_ends += crate::ingest::csv::count_line_ends(&block.bytes, 0, block.bytes.len());
                pieces.extend(records(&block.bytes));
            }
            proptest::prop_assert_eq!(pieces, records(&full[2..]));
        }
    }
}
