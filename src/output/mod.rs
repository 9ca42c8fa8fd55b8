//! Output: the settlement, rejects, control and detail files, published
//! whole or not at all, as CSV or (`--format parquet`, `parquet`) Parquet.
//!
//! Files are written into a temporary folder beside `--out`, fsynced, and
//! the folder is renamed into place last. This module must not compute
//! money: it formats what the pipeline settled.
#![forbid(unsafe_code)]

pub mod control;
pub mod csv;
pub(crate) mod direct;
pub mod parquet;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calendar;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ingest::Merchants;
use crate::journal::Journal;
use crate::pipeline::Settled;
pub use control::RunInfo;

/// Files at least this large are written with direct I/O (`direct`):
/// settlement and detail files are megabytes each, written once and never
/// read back by the run, and through the page cache each of their pages was
/// a fresh page for the kernel to allocate and copy into (4% of a 10M run's
/// CPU in a 1-thread profile).
const DIRECT_WRITE_BYTES_MIN: usize = 1 << 20;
/// Bytes copied into an aligned buffer for one direct write.
const DIRECT_WRITE_BLOCK_BYTES: usize = 1 << 20;
const _: () = assert!(DIRECT_WRITE_BLOCK_BYTES.is_multiple_of(direct::ALIGN_BYTES));

/// Creates the file at `path` holding `bytes`, written in aligned blocks
/// with direct I/O where the file system allows it (else through the page
/// cache), and returns it, not yet synced.
fn write_direct(path: &Path, bytes: &[u8]) -> std::io::Result<fs::File> {
    let file = direct::BlockFile::create(path)?;
    let mut block = direct::AlignedBuf::with_capacity(DIRECT_WRITE_BLOCK_BYTES.min(bytes.len()));
    for (k, piece) in bytes.chunks(DIRECT_WRITE_BLOCK_BYTES).enumerate() {
        block.clear();
        block.extend_from_slice(piece);
        block.pad();
        file.write_at(&block, k * DIRECT_WRITE_BLOCK_BYTES)?;
    }
    let file = file.into_file();
    // The last block went out padded with zeros to a whole block.
    file.set_len(bytes.len() as u64)?;
    Ok(file)
}

/// Refuses an `--out` that exists and is not an empty folder.
pub fn check_out_dir(out: &Path) -> Result<()> {
    match fs::read_dir(out) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Error::Usage(format!(
                "{}: --out exists and is not empty; refusing to overwrite it",
                out.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if out.is_file() => Err(Error::Usage(format!(
            "{}: --out is a file, not a folder ({e})",
            out.display()
        ))),
        Err(e) => Err(Error::io(format!("checking --out {}", out.display()), e)),
    }
}

/// The prefix of the temporary folders of runs publishing `out`.
fn staging_prefix(out: &Path) -> String {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    format!(".{name}.settle-tmp-")
}

/// The format of the settlement, journal, detail, rejects and booked
/// adjustments files; control.json and `state/` are the same in both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Parquet,
}

impl Format {
    /// The file name extension, dot included.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => ".csv",
            Format::Parquet => ".parquet",
        }
    }

    /// A rendered CSV file of kind `table` in this format: the text itself,
    /// or its Parquet encoding.
    fn encode(self, table: parquet::Table, text: String) -> Result<Vec<u8>> {
        match self {
            Format::Csv => Ok(text.into_bytes()),
            Format::Parquet => parquet::from_csv(table, &text).map_err(|problem| {
                Error::Conservation(format!("encoding a {table:?} file as Parquet: {problem}"))
            }),
        }
    }
}

/// Output files written into the staging folder, by name, in the order
/// control.json lists them, with their SHA-256.
pub struct Written {
    pub files: Vec<(String, String)>,
    settlement_names: Vec<String>,
}

/// Renders and writes the settlement, rejects, booked adjustments and
/// detail files in `format`. Each settlement file is rendered (or encoded),
/// digested and written by one worker and then dropped, so that the run
/// never holds them all; so are the other files once rendered.
pub fn write_outputs(
    staging: &Staging,
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
    info: &RunInfo,
    format: Format,
) -> Result<Written> {
    let days = csv::settlement_days(&settled.rows);
    let extension = format.extension();
    let mut files: Vec<(String, String)> = days
        .par_iter()
        .map(|(day, day_rows)| {
            let name = format!("settlement-{}{extension}", calendar::format_date(*day));
            let bytes = match format {
                Format::Csv => csv::settlement_file(*day, day_rows, merchants).into_bytes(),
                Format::Parquet => parquet::settlement_file(*day, day_rows, merchants)
                    .map_err(|problem| Error::Conservation(format!("{name}: {problem}")))?,
            };
            staging.write_file(&name, &bytes)
        })
        .collect::<Result<_>>()?;
    let settlement_names = files.iter().map(|(name, _)| name.clone()).collect();

    let mut file_names: Vec<&str> = info.transactions.iter().map(|f| f.path.as_str()).collect();
    if let Some(adjustments) = &info.adjustments {
        file_names.push(&adjustments.path);
    }
    let mut rest = vec![(
        format!("rejects{extension}"),
        parquet::Table::Rejects,
        csv::rejects_file(&settled.rejects, &file_names),
    )];
    if info.adjustments.is_some() {
        let text = csv::adjustments_file(&settled.adjustments, merchants);
        rest.push((
            format!("adjustments-booked{extension}"),
            parquet::Table::Adjustments,
            text,
        ));
    }
    if info.detail {
        for (day, text) in csv::detail_files(settled, merchants, settings) {
            rest.push((
                format!("fees-{}{extension}", calendar::format_date(day)),
                parquet::Table::Detail,
                text,
            ));
        }
    }
    let rest: Vec<(String, String)> = rest
        .into_par_iter()
        .map(|(name, table, text)| staging.write_file(&name, &format.encode(table, text)?))
        .collect::<Result<_>>()?;
    files.extend(rest);
    Ok(Written {
        files,
        settlement_names,
    })
}

/// Rendered journal files waiting for the writer thread (about 20 MB
/// each at 10M rows).
const JOURNAL_FILES_QUEUED_MAX: usize = 2;

/// Renders and writes the journal files (docs/JOURNAL.md) in `format`,
/// one per settlement date. Each is checked against its settlement rows as it is
/// rendered: one that does not sum to them stops the run unpublished (exit
/// 1). The workers render and digest; one writer thread writes and syncs,
/// so that no worker waits on the disk (a direct write of a journal file
/// took as long as a third of its rendering). A Parquet journal is encoded
/// from the checked text by the worker that rendered it.
pub fn write_journal(
    staging: &Staging,
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
    format: Format,
) -> Result<Vec<(String, String)>> {
    let journal = Journal::new(settled, merchants, settings);
    let days = journal.days();
    let (send, receive) = crossbeam_channel::bounded::<(String, Vec<u8>)>(JOURNAL_FILES_QUEUED_MAX);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<()> {
            for (name, bytes) in receive {
                staging.write_file_undigested(&name, &bytes)?;
            }
            Ok(())
        });
        let digests: Result<Vec<(String, String)>> = days
            .par_iter()
            .map(|(day, positions)| {
                let name = format!(
                    "journal-{}{}",
                    calendar::format_date(*day),
                    format.extension()
                );
                let text = journal.file(*day, positions).map_err(Error::Conservation)?;
                let bytes = format.encode(parquet::Table::Journal, text)?;
                let digest = control::sha256_hex(&bytes);
                // The writer stops only on a failure, which it reports.
                send.send((name.clone(), bytes))
                    .map_err(|_| Error::Conservation("the journal writer stopped".into()))?;
                Ok((name, digest))
            })
            .collect();
        drop(send);
        writer.join().expect("the journal writer does not panic")?;
        digests
    })
}

/// Writes the end state's files, then control.json, which lists the
/// digest of every file before it.
pub fn finish(
    staging: &Staging,
    written: &mut Written,
    settled: &Settled,
    merchants: &Merchants,
    info: &RunInfo,
    timings: Option<serde_json::Value>,
    state_files: Vec<(String, Vec<u8>)>,
) -> Result<()> {
    written.files.extend(staging.write_files(&state_files)?);
    let control = control::render(
        settled,
        merchants,
        info,
        &written.settlement_names,
        &written.files,
        timings,
    );
    written
        .files
        .extend(staging.write_files(&[("control.json".to_string(), control.into_bytes())])?);
    Ok(())
}

/// A run's output while it is being written: a temporary folder beside
/// `--out`, removed unless it is published.
pub struct Staging {
    dir: PathBuf,
    out: PathBuf,
    published: bool,
    /// The background sync of large files, if one was started.
    syncing: Option<Result<std::thread::JoinHandle<Result<()>>>>,
}

impl Staging {
    /// Creates the temporary folder (and `--out`'s missing parents). Folders
    /// left by runs that were killed are removed first.
    pub fn create(out: &Path) -> Result<Staging> {
        let context = |what: &str, path: &Path| format!("{what} {}", path.display());
        // An existing (empty) `--out` such as `.` is named by its real path, so
        // that the staging folder can sit beside it and be renamed onto it.
        let out = fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
        // Like `mkdir -p`: `--out reports/2026-11-05` works on a fresh machine.
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| Error::io(context("creating", parent), e))?;
            remove_leftovers(parent, &staging_prefix(&out));
        }
        let dir = out.with_file_name(format!("{}{}", staging_prefix(&out), std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::io(context("removing stale", &dir), e))?;
        }
        fs::create_dir(&dir).map_err(|e| Error::io(context("creating", &dir), e))?;
        Ok(Staging {
            dir,
            out,
            published: false,
            syncing: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes files (names may hold folders, such as `state/`), each
    /// fsynced, in parallel: fsync latency, not bandwidth, dominates for
    /// many small files. Returns each file's name and SHA-256.
    pub fn write_files(&self, files: &[(String, Vec<u8>)]) -> Result<Vec<(String, String)>> {
        files
            .par_iter()
            .map(|(name, bytes)| self.write_file(name, bytes))
            .collect()
    }

    /// Writes one file (its name may hold folders), fsynced, and returns its
    /// name and SHA-256.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(String, String)> {
        self.write_file_undigested(name, bytes)?;
        Ok((name.to_string(), control::sha256_hex(bytes)))
    }

    /// Writes one file as `write_file` does, for a caller that digests it
    /// elsewhere.
    pub fn write_file_undigested(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let context = |what: &str, path: &Path| format!("{what} {}", path.display());
        let path = self.dir.join(name);
        if let Some(folder) = path.parent().filter(|folder| *folder != self.dir) {
            fs::create_dir_all(folder).map_err(|e| Error::io(context("creating", folder), e))?;
        }
        let file = if bytes.len() >= DIRECT_WRITE_BYTES_MIN {
            write_direct(&path, bytes).map_err(|e| Error::io(context("writing", &path), e))?
        } else {
            let mut file =
                fs::File::create(&path).map_err(|e| Error::io(context("creating", &path), e))?;
            file.write_all(bytes)
                .map_err(|e| Error::io(context("writing", &path), e))?;
            file
        };
        file.sync_all()
            .map_err(|e| Error::io(context("syncing", &path), e))
    }

    /// Starts making large written files durable on a thread of their own,
    /// so that the disk writes them back while the run goes on; `publish`
    /// waits for it. Called once.
    pub fn sync_in_background(&mut self, files: Vec<(PathBuf, fs::File)>) {
        assert!(self.syncing.is_none(), "one background sync per run");
        let sync_all = move || -> Result<()> {
            for (path, file) in &files {
                file.sync_all()
                    .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
            }
            Ok(())
        };
        let syncing = std::thread::Builder::new()
            .name("settle-sync".into())
            .spawn(sync_all);
        self.syncing = Some(syncing.map_err(|e| Error::io("starting the sync thread", e)));
    }

    /// Makes every folder durable, then renames the staging folder to
    /// `--out`: the run appears whole or not at all.
    pub fn publish(mut self) -> Result<()> {
        if let Some(syncing) = self.syncing.take() {
            syncing?.join().expect("the sync thread does not panic")?;
        }
        // Every folder inside is made durable before the folder itself.
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                sync_dir(&entry.path())?;
            }
        }
        sync_dir(&self.dir)?;
        fs::rename(&self.dir, &self.out).map_err(|e| {
            Error::io(
                format!(
                    "publishing {} as {}",
                    self.dir.display(),
                    self.out.display()
                ),
                e,
            )
        })?;
        self.published = true;
        // The run is published once the rename is done; a failure to make the
        // rename durable is reported but cannot unpublish it.
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty())
            && let Err(error) = sync_dir(parent)
        {
            eprintln!("settle: warning: published, but {error}");
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes staging folders of `out` whose process is gone (killed, say):
/// a folder is never mistaken for a run, but it should not pile up. Where
/// process ids cannot be checked (no `/proc`), leftovers are left alone.
fn remove_leftovers(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    let handle =
        fs::File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
    handle
        .sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files on both sides of the direct-write threshold, one ending inside
    /// a block and one on a block boundary, are written byte for byte, with
    /// the digest of their bytes.
    #[test]
    fn large_files_are_written_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::create(&dir.path().join("out")).unwrap();
        for (name, len) in [
            ("small.csv", DIRECT_WRITE_BYTES_MIN - 1),
            ("odd.csv", 2 * DIRECT_WRITE_BLOCK_BYTES + 4097),
            ("even.csv", 3 * DIRECT_WRITE_BLOCK_BYTES),
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let (written, digest) = staging.write_file(name, &bytes).unwrap();
            assert_eq!(written, name);
            assert_eq!(digest, control::sha256_hex(&bytes));
            let back = fs::read(staging.path().join(name)).unwrap();
            assert_eq!(back.len(), len, "{name}");
            assert!(back == bytes, "{name} holds other bytes");
        }
    }
}
