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
