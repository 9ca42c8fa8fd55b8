//! Compressed transaction files: which ones are compressed (by their
//! name: `.gz` is gzip, `.zst` is zstd), the check of their magic number
//! when they open, and a decoder over the file whose bytes stream through
//! the same reader as stdin (`stream`), so that they are parsed exactly as
//! the uncompressed file would be.
//!
//! A decoder's error is told apart from the file's own read errors: a
//! corrupt or truncated file is bad input (`Error::Input`, exit 2), a disk
//! that fails a read is an I/O failure (exit 1). This module must not parse
//! CSV: it only gives back the bytes the file holds uncompressed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::ingest::progress::{Counted, Progress};

/// Compressed bytes asked of the file per read.
const FILE_READ_BYTES: usize = 256 << 10;

/// How a transactions file is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a file's name says it has: `.gz` or `.zst` at its
    /// end; `None` for anything else, read as plain CSV.
    pub fn of(path: &str) -> Option<Compression> {
        if path.ends_with(".gz") {
            Some(Compression::Gzip)
        } else if path.ends_with(".zst") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// The name control.json gives it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// Whether a file's first four bytes are this format's magic number.
    fn is_magic(self, first: &[u8]) -> bool {
        match self {
            Compression::Gzip => first.starts_with(&[0x1f, 0x8b]),
            // A zstd frame (RFC 8878 3.1.1), or a skippable frame, which
            // some tools put first (magic 0x184D2A50 to 0x184D2A5F).
            Compression::Zstd => {
                first == [0x28, 0xb5, 0x2f, 0xfd]
                    || (first.len() == 4
                        && first[0] & 0xf0 == 0x50
                        && first[1..] == [0x2a, 0x4d, 0x18])
            }
        }
    }

    fn magic_hex(self) -> &'static str {
        match self {
            Compression::Gzip => "1f 8b",
            Compression::Zstd => "28 b5 2f fd",
        }
    }
}

/// Why a decoder stopped: the file's compressed data is corrupt or cut
/// short. Carried inside the `std::io::Error` the stream reader sees, so
/// that it can report bad input rather than a failing disk.
#[derive(Debug)]
pub struct Corrupt {
    format: Compression,
    /// Bytes decoded before the error.
    decoded_bytes: u64,
    cause: String,
}

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its {} data is corrupt or truncated after {} bytes of CSV ({})",
            self.format.name(),
            self.decoded_bytes,
            self.cause
        )
    }
}

impl std::error::Error for Corrupt {}

/// The run's error for a failed read of the stream `name`: bad input when
/// a decoder found the data corrupt, else an I/O failure.
pub fn read_error(name: &str, error: std::io::Error) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Corrupt>())
    {
        Some(corrupt) => Error::input(
            name,
            format!("{corrupt}; the run stops and publishes nothing"),
        ),
        None => Error::io(format!("reading {name}"), error),
    }
}

/// The file's own reads, noting whether one failed: a decoder passes such
/// an error on, and it must not be taken for corrupt data.
struct FileReads<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for FileReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })
    }
}

/// A decoder's output, its errors sorted into I/O failures and `Corrupt`.
struct Decoded<D> {
    decoder: D,
    format: Compression,
    file_failed: Arc<AtomicBool>,
    decoded_bytes: u64,
}

impl<D: Read> Read for Decoded<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.decoder.read(buf) {
            Ok(read) => {
                self.decoded_bytes += read as u64;
                Ok(read)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) if self.file_failed.load(Ordering::Relaxed) => Err(e),
            Err(e) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                Corrupt {
                    format: self.format,
                    decoded_bytes: self.decoded_bytes,
                    cause: e.to_string(),
                },
            )),
        }
    }
}

/// Opens the compressed file at `path` and returns its uncompressed bytes
/// as a reader. A file that cannot be opened is a usage error; one whose
/// first bytes are not the format's magic number is bad input (both exit
/// 2, before any work). With `progress`, the compressed bytes read are
/// counted for file `file_index`.
pub fn open(
    path: &str,
    format: Compression,
    progress: Option<(Arc<Progress>, usize)>,
) -> Result<Box<dyn Read + Send>> {
    let mut file =
        File::open(path).map_err(|e| Error::Usage(format!("{path}: cannot open: {e}")))?;
    if file.metadata().map_err(|e| Error::io(path, e))?.is_dir() {
        return Err(Error::Usage(format!("{path}: is a directory, not a file")));
    }
    let mut first = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut first)
        .map_err(|e| Error::io(format!("reading {path}"), e))?;
    if !format.is_magic(&first) {
        let found: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
        return Err(Error::input(
            path,
            format!(
                "is named {} but is not {} data: it starts with [{}], not the magic number {}",
                format.extension(),
                format.name(),
                found.join(" "),
                format.magic_hex()
            ),
        ));
    }
    // The magic number is read again by the decoder: chained in front of
    // the rest, so that a pipe works as well as a file.
    let raw = std::io::Cursor::new(first).chain(file);
    let file_failed = Arc::new(AtomicBool::new(false));
    let reads: Box<dyn Read + Send> = match progress {
        Some((progress, file_index)) => Box::new(Counted::new(raw, progress, file_index)),
        None => Box::new(raw),
    };
    let buffered = BufReader::with_capacity(
        FILE_READ_BYTES,
        FileReads {
            inner: reads,
            failed: Arc::clone(&file_failed),
        },
    );
    let decoder: Box<dyn Read + Send> = match format {
        // Several gzip members one after the other (`cat a.gz b.gz`, pigz,
        // bgzip) are one file, as gunzip reads them.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        // The decoder reads every frame of the file, not only the first.
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| Error::io(format!("starting the zstd decoder for {path}"), e))?,
        ),
    };
    Ok(Box::new(Decoded {
        decoder,
        format,
        file_failed,
        decoded_bytes: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// With a checksum of the content, as the `zstd` command writes it:
    /// without one, damage that still decodes cannot be seen.
    fn zstd(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Writes `stored` as `name` and reads it back through `open`.
    fn read_back(name: &str, stored: &[u8]) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name).display().to_string();
        std::fs::write(&path, stored).unwrap();
        let format = Compression::of(&path).expect("a compressed name");
        let mut reader = open(&path, format, None)?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| read_error(&path, e))?;
        Ok(bytes)
    }

    fn text(rows: usize) -> Vec<u8> {
        (0..rows)
            .flat_map(|i| format!("T{i},M{},2026-11-02T10:00:00+08:00\n", i % 7).into_bytes())
            .collect()
    }

    #[test]
    fn names_say_the_format() {
        assert_eq!(Compression::of("a.csv.gz"), Some(Compression::Gzip));
        assert_eq!(Compression::of("dir/a.csv.zst"), Some(Compression::Zstd));
        assert_eq!(Compression::of("a.csv"), None);
        assert_eq!(Compression::of("a.zstd"), None);
    }

    #[test]
    fn both_formats_and_concatenated_members_decode_whole() {
        let plain = text(5000);
        assert_eq!(read_back("t.csv.gz", &gzip(&plain)).unwrap(), plain);
        assert_eq!(read_back("t.csv.zst", &zstd(&plain)).unwrap(), plain);
        // Two members or frames, as `cat a.gz b.gz` gives.
        let (first, second) = plain.split_at(plain.len() / 3);
        let members = [gzip(first), gzip(second)].concat();
        assert_eq!(read_back("t.csv.gz", &members).unwrap(), plain);
        let frames = [zstd(first), zstd(second)].concat();
        assert_eq!(read_back("t.csv.zst", &frames).unwrap(), plain);
    }

    #[test]
    fn a_wrong_magic_number_is_bad_input_at_open() {
        for (name, stored) in [
            ("t.csv.zst", gzip(b"a,b\n")),
            ("t.csv.gz", b"txn_id,amount\n".to_vec()),
            ("t.csv.zst", Vec::new()),
        ] {
            let Err(error) = read_back(name, &stored) else {
                panic!("{name} was read");
            };
            assert_eq!(error.exit_code(), 2, "{name}: {error}");
            assert!(error.to_string().contains("magic number"), "{error}");
        }
    }

    #[test]
    fn truncated_or_damaged_data_is_corrupt_input() {
        let plain = text(20_000);
        for (name, stored) in [("t.csv.gz", gzip(&plain)), ("t.csv.zst", zstd(&plain))] {
            let cut = &stored[..stored.len() * 2 / 3];
            let Err(error) = read_back(name, cut) else {
                panic!("{name} truncated was read whole");
            };
            assert_eq!(error.exit_code(), 2, "{name} truncated: {error}");
            assert!(
                error.to_string().contains("corrupt or truncated"),
                "{error}"
            );
            let mut damaged = stored.clone();
            let middle = damaged.len() / 2;
            for byte in &mut damaged[middle..middle + 16] {
                *byte ^= 0x5a;
            }
            let Err(error) = read_back(name, &damaged) else {
                panic!("{name} damaged was read whole");
            };
            assert_eq!(error.exit_code(), 2, "{name} damaged: {error}");
            assert!(
                error.to_string().contains("corrupt or truncated"),
                "{error}"
            );
        }
    }
}
