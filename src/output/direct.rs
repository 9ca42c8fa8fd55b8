//! Writes a file in blocks aligned to `ALIGN_BYTES` with direct I/O
//! (`O_DIRECT`): the bytes go from the buffer to the disk without a copy
//! into the page cache. Where the file system refuses direct I/O (tmpfs,
//! some network file systems) the same blocks are written through the page
//! cache instead; the file's bytes are the same either way.
//!
//! Why: a run's index segment is hundreds of megabytes (880 MB for 10M
//! rows), written once and read back only by a later run. Through the page
//! cache, every one of its pages is new memory to allocate and copy into,
//! then to write back at fsync: 880 MB took 1.27 s to write and 0.36 s to
//! sync on the development machine, against 0.41 s in all with direct I/O
//! (docs/STATE.md). Output files of a megabyte or more (settlement
//! and detail files) are written the same way, for the same reason.
//!
//! This module must not know what it writes, and has no `unsafe`: the
//! aligned buffer is a window into an ordinary `Vec`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Direct I/O needs buffers, offsets and lengths aligned to the device's
/// logical block size; 4096 covers 512-byte and 4096-byte devices.
pub const ALIGN_BYTES: usize = 4096;

/// `n` rounded up to a multiple of `ALIGN_BYTES`.
pub fn aligned(n: usize) -> usize {
    n.div_ceil(ALIGN_BYTES) * ALIGN_BYTES
}

/// A byte buffer whose contents start at an `ALIGN_BYTES` boundary, with
/// a fixed capacity: it never reallocates, so the alignment holds.
pub struct AlignedBuf {
    storage: Vec<u8>,
    /// Where the aligned contents start in `storage`.
    start: usize,
    capacity: usize,
}

impl AlignedBuf {
    /// A buffer for up to `capacity` bytes, rounded up to whole blocks.
    pub fn with_capacity(capacity: usize) -> AlignedBuf {
        let capacity = aligned(capacity);
        let mut storage: Vec<u8> = Vec::with_capacity(capacity + ALIGN_BYTES);
        let start = storage.as_ptr().align_offset(ALIGN_BYTES);
        assert!(start < ALIGN_BYTES, "a byte pointer can be aligned");
        storage.resize(start, 0);
        AlignedBuf {
            storage,
            start,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.storage.len() - self.start
    }

    /// Room left before the buffer is full.
    pub fn room(&self) -> usize {
        self.capacity - self.len()
    }

    /// Appends `bytes`, which must fit.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.room(), "aligned buffer overflow");
        self.storage.extend_from_slice(bytes);
    }

    /// Zero-fills up to the next block boundary, so that the contents can
    /// be written directly.
    pub fn pad(&mut self) {
        let padded = self.start + aligned(self.len());
        self.storage.resize(padded, 0);
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..]
    }

    pub fn clear(&mut self) {
        self.storage.truncate(self.start);
    }
}

/// A new file written in aligned blocks.
pub struct BlockFile {
    /// Opened with `O_DIRECT`, when the file system allows it.
    direct: Option<File>,
    /// Cleared when a direct write was refused: later writes go through
    /// the page cache at once.
    direct_works: AtomicBool,
    buffered: File,
}

impl BlockFile {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> io::Result<BlockFile> {
        let buffered = File::create(path)?;
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        Ok(BlockFile {
            direct_works: AtomicBool::new(direct.is_some()),
            direct,
            buffered,
        })
    }

    /// Like `create`, but never with direct I/O: for tests of the fallback.
    #[cfg(test)]
    pub fn create_buffered(path: &Path) -> io::Result<BlockFile> {
        Ok(BlockFile {
            direct: None,
            direct_works: AtomicBool::new(false),
            buffered: File::create(path)?,
        })
    }

    /// Writes `bytes` (a padded `AlignedBuf`) at `offset`, a multiple of
    /// `ALIGN_BYTES`.
    pub fn write_at(&self, bytes: &AlignedBuf, offset: usize) -> io::Result<()> {
        let bytes = bytes.as_slice();
        assert!(
            offset.is_multiple_of(ALIGN_BYTES) && bytes.len().is_multiple_of(ALIGN_BYTES),
            "direct writes are whole aligned blocks"
        );
        if let Some(direct) = &self.direct
            && self.direct_works.load(Ordering::Relaxed)
        {
            match direct.write_all_at(bytes, offset as u64) {
                Ok(()) => return Ok(()),
                // The file system accepted O_DIRECT at open but refuses
                // this write: it has nothing written, so write it again
                // through the page cache.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct_works.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.buffered.write_all_at(bytes, offset as u64)
    }

    /// The file, to be synced: direct writes skip the page cache but not
    /// the file system's metadata or the disk's own cache.
    pub fn into_file(self) -> File {
        self.buffered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_aligned_and_pad_with_zeros() {
        for capacity in [1, 4095, 4096, 4097, 100_000] {
            let mut buf = AlignedBuf::with_capacity(capacity);
            assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN_BYTES, 0);
            assert_eq!(buf.room(), aligned(capacity));
            buf.extend_from_slice(&[7; 3]);
            buf.pad();
            assert_eq!(buf.len(), ALIGN_BYTES);
            assert_eq!(&buf.as_slice()[..4], &[7, 7, 7, 0]);
            buf.clear();
            assert_eq!(buf.len(), 0);
        }
    }

    #[test]
    fn direct_and_buffered_files_hold_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut block = AlignedBuf::with_capacity(2 * ALIGN_BYTES);
        block.extend_from_slice(b"settle");
        block.pad();
        for (name, file) in [
            ("d", BlockFile::create(&dir.path().join("d")).unwrap()),
            (
                "b",
                BlockFile::create_buffered(&dir.path().join("b")).unwrap(),
            ),
        ] {
            file.write_at(&block, ALIGN_BYTES).unwrap();
            file.into_file().sync_all().unwrap();
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            assert_eq!(bytes.len(), 2 * ALIGN_BYTES);
            assert_eq!(&bytes[ALIGN_BYTES..ALIGN_BYTES + 7], b"settle\0");
        }
    }
}
