//! Progress of a run for a person at a terminal: counters that the input
//! readers and the parse workers add to, and that the command line reads on
//! a timer to draw one status line (files and bytes read, rows, rows/s, the
//! time left to read the input).
//!
//! Nothing in a run reads these counters back, so they cannot change a
//! result; they are relaxed atomics, added to once per block or chunk
//! (megabytes), never per row. This module must not print: `main` does.

use std::io::Read;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a run is doing, in the order it does it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Reading the configuration, master data and every input's header.
    Opening = 0,
    /// Parsing the transaction files.
    Reading = 1,
    /// Duplicates and refund links (steps 3 to 6).
    Linking = 2,
    /// Aggregating, settling, writing the end state's index.
    Settling = 3,
    /// Rendering, writing and publishing the output files.
    Writing = 4,
}

impl Phase {
    fn from_u8(value: u8) -> Phase {
        match value {
            1 => Phase::Reading,
            2 => Phase::Linking,
            3 => Phase::Settling,
            4 => Phase::Writing,
            _ => Phase::Opening,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Phase::Opening => "opening inputs",
            Phase::Reading => "reading",
            Phase::Linking => "linking refunds and duplicates",
            Phase::Settling => "settling",
            Phase::Writing => "writing",
        }
    }
}

/// One transactions file's counters.
#[derive(Debug)]
struct FileProgress {
    /// The bytes to read: the file's size on disk (compressed or not), or
    /// `None` for stdin, whose size is known only at its end.
    bytes_total: Option<u64>,
    bytes_done: AtomicU64,
    /// Set when a stream has been read to its end.
    finished: AtomicBool,
}

/// The counters of one run. Shared between the command line's timer and
/// the run (`RunOptions::progress`).
#[derive(Debug)]
pub struct Progress {
    /// Set once, when the run knows its transaction files.
    files: OnceLock<Vec<FileProgress>>,
    rows: AtomicU64,
    phase: AtomicU8,
    /// When reading began; the rates and the time left count from there.
    reading_since: OnceLock<Instant>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            files: OnceLock::new(),
            rows: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Opening as u8),
            reading_since: OnceLock::new(),
        }
    }

    /// Registers the run's transaction files, by index, with their sizes
    /// (`None` where unknown). A second call is ignored.
    pub fn start_files(&self, bytes_total: impl IntoIterator<Item = Option<u64>>) {
        let files = bytes_total
            .into_iter()
            .map(|bytes_total| FileProgress {
                bytes_total,
                bytes_done: AtomicU64::new(0),
                finished: AtomicBool::new(false),
            })
            .collect();
        let _ = self.files.set(files);
    }

    fn file(&self, index: usize) -> Option<&FileProgress> {
        self.files.get().and_then(|files| files.get(index))
    }

    /// `bytes` more of file `index` have been read.
    pub fn add_bytes(&self, index: usize, bytes: u64) {
        if let Some(file) = self.file(index) {
            file.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// File `index` has been read to its end.
    pub fn finish_file(&self, index: usize) {
        if let Some(file) = self.file(index) {
            file.finished.store(true, Ordering::Relaxed);
        }
    }

    /// `rows` more rows have been parsed.
    pub fn add_rows(&self, rows: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn set_phase(&self, phase: Phase) {
        if phase == Phase::Reading {
            let _ = self.reading_since.set(Instant::now());
        }
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let files = self.files.get().map(Vec::as_slice).unwrap_or_default();
        let mut snapshot = Snapshot {
            phase: Phase::from_u8(self.phase.load(Ordering::Relaxed)),
            files_total: files.len(),
            files_done: 0,
            bytes_done: 0,
            bytes_total: Some(0),
            rows: self.rows.load(Ordering::Relaxed),
            reading_for: self
                .reading_since
                .get()
                .map_or(Duration::ZERO, Instant::elapsed),
        };
        for file in files {
            let done = file.bytes_done.load(Ordering::Relaxed);
            // A compressed file's decoder may read a few bytes twice (its
            // header, when it opened): never more than the whole.
            let done = file.bytes_total.map_or(done, |total| done.min(total));
            snapshot.bytes_done += done;
            snapshot.bytes_total = snapshot
                .bytes_total
                .zip(file.bytes_total)
                .map(|(a, b)| a + b);
            let finished = file.finished.load(Ordering::Relaxed)
                || file.bytes_total.is_some_and(|total| done >= total);
            snapshot.files_done += usize::from(finished);
        }
        snapshot
    }
}

/// The counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub phase: Phase,
    pub files_total: usize,
    pub files_done: usize,
    pub bytes_done: u64,
    /// `None` when a file's size is unknown (stdin).
    pub bytes_total: Option<u64>,
    pub rows: u64,
    /// Time since reading began.
    pub reading_for: Duration,
}

impl Snapshot {
    /// The time left to read the input, at the rate so far; `None` before
    /// a rate is known or when the total is unknown.
    pub fn time_left(&self) -> Option<Duration> {
        let total = self.bytes_total?;
        let millis = self.reading_for.as_millis();
        if self.bytes_done == 0 || millis < 500 {
            return None;
        }
        let left = u128::from(total.saturating_sub(self.bytes_done));
        let left_ms = left * millis / u128::from(self.bytes_done);
        Some(Duration::from_millis(
            u64::try_from(left_ms).unwrap_or(u64::MAX),
        ))
    }

    /// Rows parsed per second since reading began.
    pub fn rows_per_s(&self) -> u64 {
        let millis = self.reading_for.as_millis().max(1);
        u64::try_from(u128::from(self.rows) * 1000 / millis).unwrap_or(u64::MAX)
    }

    /// The status line: `reading 12/300 files, 1.2 GB of 3.4 GB, 8.1M rows
    /// (2.0M rows/s), about 1m05s left`; after reading, the phase alone with
    /// the rows read.
    pub fn line(&self) -> String {
        if self.phase != Phase::Reading {
            return if self.rows == 0 {
                self.phase.verb().to_string()
            } else {
                format!("{} ({} rows read)", self.phase.verb(), count(self.rows))
            };
        }
        let bytes = match self.bytes_total {
            Some(total) => format!("{} of {}", size(self.bytes_done), size(total)),
            None => size(self.bytes_done),
        };
        let mut line = format!(
            "reading {}/{} files, {bytes}, {} rows ({} rows/s)",
            self.files_done,
            self.files_total,
            count(self.rows),
            count(self.rows_per_s())
        );
        if let Some(left) = self.time_left() {
            let seconds = left.as_secs();
            line.push_str(&format!(
                ", about {}m{:02}s left",
                seconds / 60,
                seconds % 60
            ));
        }
        line
    }
}

/// `bytes` with one decimal in the largest decimal unit that fits.
fn size(bytes: u64) -> String {
    let (unit, name) = match bytes {
        0..1_000_000 => (1_000, "kB"),
        1_000_000..1_000_000_000 => (1_000_000, "MB"),
        _ => (1_000_000_000, "GB"),
    };
    let tenths = bytes * 10 / unit;
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

/// A count in thousands or millions with one decimal (`8.1M`, `950.2k`).
fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{}.{}k", n / 1_000, n / 100 % 10),
        _ => format!("{}.{}M", n / 1_000_000, n / 100_000 % 10),
    }
}

/// A reader that adds the bytes it passes on to a file's counter.
pub struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
    file_index: usize,
}

impl<R> Counted<R> {
    pub fn new(inner: R, progress: Arc<Progress>, file_index: usize) -> Counted<R> {
        Counted {
            inner,
            progress,
            file_index,
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.progress.add_bytes(self.file_index, read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_files_bytes_rows_and_the_time_left() {
        let progress = Progress::new();
        progress.start_files([Some(3_000_000), Some(1_000_000), Some(2_000_000)]);
        progress.add_bytes(0, 3_000_000);
        // Read twice in part (a decoder's header): still one whole file.
        progress.add_bytes(1, 1_500_000);
        progress.add_bytes(2, 500_000);
        progress.add_rows(2_345_678);
        let mut snapshot = progress.snapshot();
        assert_eq!(snapshot.phase, Phase::Opening);
        assert_eq!((snapshot.files_done, snapshot.files_total), (2, 3));
        assert_eq!(snapshot.bytes_done, 4_500_000);
        assert_eq!(snapshot.bytes_total, Some(6_000_000));
        // 4.5 MB in 3 s: the last 1.5 MB take 1 s more.
        snapshot.phase = Phase::Reading;
        snapshot.reading_for = Duration::from_secs(3);
        assert_eq!(snapshot.time_left(), Some(Duration::from_secs(1)));
        assert_eq!(
            snapshot.line(),
            "reading 2/3 files, 4.5 MB of 6.0 MB, 2.3M rows (781.8k rows/s), about 0m01s left"
        );
        snapshot.phase = Phase::Settling;
        assert_eq!(snapshot.line(), "settling (2.3M rows read)");
    }

    #[test]
    fn stdin_has_no_total_and_no_time_left() {
        let progress = Arc::new(Progress::new());
        progress.start_files([None]);
        let mut reader = Counted::new(&b"abcdef"[..], Arc::clone(&progress), 0);
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        let mut snapshot = progress.snapshot();
        assert_eq!(snapshot.bytes_done, 6);
        assert_eq!(snapshot.bytes_total, None);
        assert_eq!(snapshot.files_done, 0, "a stream is done when it says so");
        progress.finish_file(0);
        snapshot = progress.snapshot();
        assert_eq!(snapshot.files_done, 1);
        snapshot.phase = Phase::Reading;
        snapshot.reading_for = Duration::from_secs(2);
        assert_eq!(snapshot.time_left(), None);
        assert_eq!(
            snapshot.line(),
            "reading 1/1 files, 0.0 kB, 0 rows (0 rows/s)"
        );
    }
}
