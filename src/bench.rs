//! `settle bench`: generate (or take) a data set, run the engine on it a
//! number of times, and report throughput, wall times, peak RSS, stage
//! times and a digest of the outputs, so that a CI pipeline catches a
//! regression in speed or in results in one place.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::datagen::{self, GenOptions};
use crate::error::{Error, Result};
use crate::output::control::sha256_hex;
use crate::pipeline::stats::RunStats;
use crate::run::{RunOptions, run};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Generate into `data` with these options, unless `data` already holds
    /// settle.toml, merchants.csv and transactions.csv.
    pub generate: GenOptions,
    pub runs: u32,
    pub threads: usize,
}

/// The measurements of a benchmark.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub runs: Vec<RunStats>,
    /// SHA-256 over the names and digests of every output file; the same
    /// for every run, or the benchmark fails.
    pub output_digest: String,
    pub data: PathBuf,
}

fn has_data(dir: &Path) -> bool {
    ["settle.toml", "merchants.csv", "transactions.csv"]
        .iter()
        .all(|name| dir.join(name).is_file())
}

/// The digest of a published folder: every file's relative name and
/// SHA-256, the `state/` folder included.
fn folder_digest(dir: &Path) -> Result<String> {
    let mut listing = String::new();
    list_digests(dir, "", &mut listing)?;
    Ok(sha256_hex(listing.as_bytes()))
}

fn list_digests(dir: &Path, prefix: &str, listing: &mut String) -> Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            list_digests(&path, &format!("{prefix}{name}/"), listing)?;
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        listing.push_str(&format!("{prefix}{name} {}\n", sha256_hex(&bytes)));
    }
    Ok(())
}

/// Runs the benchmark.
pub fn bench(options: &BenchOptions) -> Result<BenchReport> {
    let data = options.generate.out.clone();
    if !has_data(&data) {
        datagen::generate(&options.generate)?;
    }
    let mut runs = Vec::new();
    let mut output_digest = String::new();
    for attempt in 0..options.runs.max(1) {
        let out = data.join(format!("bench-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let summary = run(&RunOptions {
            config: data.join("settle.toml"),
            merchants: data.join("merchants.csv"),
            transactions: vec![data.join("transactions.csv").display().to_string()],
            adjustments: None,
            through: None,
            state_in: None,
            detail: false,
            no_state: false,
            format: crate::output::Format::Csv,
            threads: options.threads,
            chunk_bytes: 0,
            stats: false,
            out: out.clone(),
            progress: None,
        })?;
        let digest = folder_digest(&out)?;
        let _ = std::fs::remove_dir_all(&out);
        if attempt == 0 {
            output_digest = digest;
        } else if digest != output_digest {
            return Err(Error::Conservation(format!(
                "run {} published different bytes than run 1: the engine is not deterministic",
                attempt + 1
            )));
        }
        runs.push(summary.stats);
    }
    Ok(BenchReport {
        runs,
        output_digest,
        data,
    })
}

impl BenchReport {
    fn walls(&self) -> Vec<Duration> {
        let mut walls: Vec<Duration> = self.runs.iter().map(|r| r.wall).collect();
        walls.sort();
        walls
    }

    fn median_run(&self) -> &RunStats {
        let median = self.walls()[self.runs.len() / 2];
        self.runs
            .iter()
            .find(|r| r.wall == median)
            .unwrap_or(&self.runs[0])
    }

    /// One JSON object with everything a CI job tracks.
    pub fn to_json(&self) -> serde_json::Value {
        let walls = self.walls();
        let median = self.median_run();
        let stages: serde_json::Map<String, serde_json::Value> = median
            .stages
            .iter()
            .map(|s| (s.name.to_string(), json!(s.elapsed.as_micros() as u64)))
            .collect();
        json!({
            "engine": "settle",
            "version": env!("CARGO_PKG_VERSION"),
            "data": self.data.display().to_string(),
            "runs": self.runs.len(),
            "threads": median.threads,
            "rows": median.rows_read,
            "bytes": median.bytes_read,
            "rows_per_s": median.rows_per_s(),
            "mb_per_s": median.mb_per_s(),
            "wall_ms": {
                "min": walls[0].as_millis() as u64,
                "median": walls[walls.len() / 2].as_millis() as u64,
                "max": walls[walls.len() - 1].as_millis() as u64,
            },
            "peak_rss_bytes": self.runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
            "stages_us": stages,
            // CPU time moves less than wall time on a shared machine: a
            // CI job can track it as the steadier figure.
            "cpu_ms": {
                "user": median.cpu.user.as_millis() as u64,
                "system": median.cpu.system.as_millis() as u64,
            },
            "minor_faults": median.cpu.minor_faults,
            "output_digest": self.output_digest,
        })
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let walls = self.walls();
        let median = self.median_run();
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        let mut text = format!(
            "settle {} bench: {} rows, {} MB, {} threads, {} runs\n",
            env!("CARGO_PKG_VERSION"),
            median.rows_read,
            median.bytes_read / 1_000_000,
            median.threads,
            self.runs.len()
        );
        text.push_str(&format!(
            "  wall ms      min {:.1}  median {:.1}  max {:.1}\n",
            ms(walls[0]),
            ms(walls[walls.len() / 2]),
            ms(walls[walls.len() - 1])
        ));
        text.push_str(&format!(
            "  rows/s       {}\n  MB/s         {}\n",
            median.rows_per_s(),
            median.mb_per_s()
        ));
        text.push_str(&format!(
            "  peak RSS     {} MiB\n",
            self.runs
                .iter()
                .map(|r| r.peak_rss_bytes)
                .max()
                .unwrap_or(0)
                >> 20
        ));
        text.push_str(&format!(
            "  cpu ms       user {}  system {}  ({} minor faults)\n",
            median.cpu.user.as_millis(),
            median.cpu.system.as_millis(),
            median.cpu.minor_faults
        ));
        for stage in &median.stages {
            text.push_str(&format!(
                "  {:<12} {:.1} ms  (cpu {} ms)\n",
                stage.name,
                ms(stage.elapsed),
                (stage.cpu.user + stage.cpu.system).as_millis()
            ));
        }
        text.push_str(&format!("  output sha256 {}\n", self.output_digest));
        text
    }
}
