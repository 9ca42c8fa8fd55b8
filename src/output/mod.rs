//! Output: the settlement, rejects, control and detail files, published
//! whole or not at all.
//!
//! Files are written into a temporary folder beside `--out`, fsynced, and
//! the folder is renamed into place last. This module must not compute
//! money: it formats what the pipeline settled.
#![forbid(unsafe_code)]

pub mod control;
pub mod csv;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calendar;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ingest::Merchants;
use crate::pipeline::Settled;
pub use control::RunInfo;

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

/// The temporary folder a run writes into: beside `out`, named after it.
fn staging_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.settle-tmp-{}", std::process::id()))
}

/// Every file of a run, by name, in the order they are listed.
pub fn render(
    settled: &Settled,
    merchants: &Merchants,
    settings: &Settings,
    info: &RunInfo,
    timings: Option<serde_json::Value>,
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut settlement_names = Vec::new();
    for (day, text) in csv::settlement_files(&settled.rows, merchants) {
        let name = format!("settlement-{}.csv", calendar::format_date(day));
        settlement_names.push(name.clone());
        files.push((name, text.into_bytes()));
    }
    let mut file_names: Vec<&str> = info.transactions.iter().map(|f| f.path.as_str()).collect();
    if let Some(adjustments) = &info.adjustments {
        file_names.push(&adjustments.path);
    }
    files.push((
        "rejects.csv".to_string(),
        csv::rejects_file(&settled.rejects, &file_names).into_bytes(),
    ));
    if info.adjustments.is_some() {
        let text = csv::adjustments_file(&settled.adjustments, merchants);
        files.push(("adjustments-booked.csv".to_string(), text.into_bytes()));
    }
    if info.detail {
        for (day, text) in csv::detail_files(settled, merchants, settings) {
            files.push((
                format!("fees-{}.csv", calendar::format_date(day)),
                text.into_bytes(),
            ));
        }
    }
    let control = control::render(settled, merchants, info, &settlement_names, &files, timings);
    files.push(("control.json".to_string(), control.into_bytes()));
    files
}

/// Writes `files` into a staging folder and renames it to `out`.
pub fn publish(out: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    // An existing (empty) `--out` such as `.` is named by its real path, so
    // that the staging folder can sit beside it and be renamed onto it.
    let out = &fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    let staging = staging_dir(out);
    let result = write_and_rename(&staging, out, files);
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

fn write_and_rename(staging: &Path, out: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let context = |what: &str, path: &Path| format!("{what} {}", path.display());
    // Like `mkdir -p`: `--out reports/2026-11-05` works on a fresh machine.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(context("creating", parent), e))?;
    }
    if staging.exists() {
        fs::remove_dir_all(staging)
            .map_err(|e| Error::io(context("removing stale", staging), e))?;
    }
    fs::create_dir(staging).map_err(|e| Error::io(context("creating", staging), e))?;
    // Files are written and fsynced in parallel: fsync latency, not
    // bandwidth, dominates for many small files.
    files.par_iter().try_for_each(|(name, bytes)| {
        let path = staging.join(name);
        let mut file =
            fs::File::create(&path).map_err(|e| Error::io(context("creating", &path), e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io(context("writing", &path), e))?;
        file.sync_all()
            .map_err(|e| Error::io(context("syncing", &path), e))
    })?;
    sync_dir(staging)?;
    fs::rename(staging, out).map_err(|e| {
        Error::io(
            format!("publishing {} as {}", staging.display(), out.display()),
            e,
        )
    })?;
    // The run is published once the rename is done; a failure to make the
    // rename durable is reported but cannot unpublish it.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && let Err(error) = sync_dir(parent)
    {
        eprintln!("settle: warning: published, but {error}");
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    let handle =
        fs::File::open(dir).map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
    handle
        .sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}
