//! The engine's one `unsafe` block: mapping an input file into memory.

#![allow(unsafe_code)]

use std::fs::File;

/// Maps `file` read-only.
///
/// Returns `None` when the file cannot be mapped (an empty file, a pipe, a
/// file system without mmap), and the caller falls back to a plain read.
pub(super) fn map(file: &File) -> Option<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. Undefined
    // behaviour is possible only if another process truncates or rewrites
    // the file while it is mapped; settlement inputs are immutable files
    // handed over for the run, and that contract is stated in the docs.
    // Mapping never happens for stdin.
    let mapped = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    Some(mapped)
}

/// Drops the resident pages of `range` once they have been parsed, so that
/// memory grows with the state and not with the file.
pub(super) fn release(mapped: &memmap2::Mmap, range: std::ops::Range<usize>) {
    if range.is_empty() {
        return;
    }
    // SAFETY: the mapping is private, read-only and backed by a file, so
    // MADV_DONTNEED only drops cached pages: a later read of the range (a
    // chunk parsed again, say) faults the same bytes back in from the file.
    // No reference into the range is invalidated. memmap2 aligns the range
    // to pages. A failure only means the pages stay resident.
    let _ = unsafe {
        mapped.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, range.len())
    };
}

/// Maps the pages of `range` in one call (MADV_POPULATE_READ) rather than
/// one page fault at a time, for a range that will be read whole. A safe
/// advice: a failure (an older kernel) only means the pages fault in as
/// they are read.
pub(super) fn populate(mapped: &memmap2::Mmap, range: std::ops::Range<usize>) {
    if !range.is_empty() {
        let _ = mapped.advise_range(memmap2::Advice::PopulateRead, range.start, range.len());
    }
}
