//! Input bytes: a mapped file, or the whole of stdin read into memory (for
//! merchants or adjustments; transactions on stdin stream, see `stream`).

use std::io::Read;
use std::ops::Deref;

use crate::error::{Error, Result};

/// The bytes of one input, however they were obtained.
pub enum Source {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Source {
    /// Opens `path` (`-` is stdin). A file that cannot be opened is a usage
    /// error; a read that fails midway is an I/O error.
    pub fn open(path: &str) -> Result<Source> {
        if path == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading stdin", e))?;
            return Ok(Source::Owned(bytes));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| Error::Usage(format!("{path}: cannot open: {e}")))?;
        let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
        if metadata.is_dir() {
            return Err(Error::Usage(format!("{path}: is a directory, not a file")));
        }
        if metadata.len() > 0
            && let Some(mapped) = super::mmap::map(&file)
        {
            return Ok(Source::Mapped(mapped));
        }
        let mut bytes = Vec::new();
        (&file)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("reading {path}"), e))?;
        Ok(Source::Owned(bytes))
    }
}

impl Source {
    /// Tells the system that `range` has been read and its memory can go.
    /// A no-op for bytes read into memory.
    pub fn release(&self, range: std::ops::Range<usize>) {
        if let Source::Mapped(mapped) = self {
            super::mmap::release(mapped, range);
        }
    }
}

impl Source {
    /// Maps `range` into memory now, in one call, before it is read whole.
    /// A no-op for bytes read into memory.
    pub fn populate(&self, range: std::ops::Range<usize>) {
        if let Source::Mapped(mapped) = self {
            super::mmap::populate(mapped, range);
        }
    }
}

impl Deref for Source {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Source::Mapped(mapped) => mapped,
            Source::Owned(bytes) => bytes,
        }
    }
}

impl Source {
    /// The SHA-256 of the input at `path` that this source holds, in hex. A
    /// mapped file is hashed from plain reads of the file, so that hashing
    /// beside the parse neither keeps mapped pages resident nor brings back
    /// those the parse released (inputs must not change during a run, D28).
    pub fn sha256_hex(&self, path: &str) -> Result<String> {
        match self {
            Source::Owned(bytes) => {
                use sha2::{Digest, Sha256};
                Ok(hex(&Sha256::digest(bytes)))
            }
            Source::Mapped(_) => sha256_file(path),
        }
    }
}

/// The SHA-256 of the file at `path` as stored, in hex, from plain reads
/// (a compressed input's stored bytes, say).
pub fn sha256_file(path: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut sha = Sha256::new();
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let read = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("reading {path}"), e)),
        };
        sha.update(&buf[..read]);
    }
    Ok(hex(&sha.finalize()))
}

/// A digest in lower-case hex, as control.json and the state manifest
/// print it.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
