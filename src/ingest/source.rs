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
