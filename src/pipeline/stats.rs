//! Observability: how long each stage took and how long chunks took to
//! parse. Timings never influence results; they are reported only when
//! asked for (`--stats`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wall time per stage, in the order the stages ran.
#[derive(Debug, Default)]
pub struct StageTimes {
    pub stages: Vec<Stage>,
}

/// One stage: its name, wall time, and the peak RSS when it ended.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: &'static str,
    pub elapsed: Duration,
    pub peak_rss_bytes: u64,
}

impl StageTimes {
    /// Runs `work` and records its wall time under `name`.
    pub fn time<T>(&mut self, name: &'static str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.record(name, started.elapsed());
        result
    }

    pub fn record(&mut self, name: &'static str, elapsed: Duration) {
        self.stages.push(Stage {
            name,
            elapsed,
            peak_rss_bytes: peak_rss_bytes(),
        });
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.elapsed).sum()
    }
}

/// Per-chunk parse latencies, recorded from worker threads. The lock is
/// taken once per chunk (megabytes of work), never per row.
#[derive(Debug)]
pub struct ChunkLatencies {
    histogram: Mutex<hdrhistogram::Histogram<u64>>,
}

impl Default for ChunkLatencies {
    fn default() -> Self {
        let histogram =
            hdrhistogram::Histogram::new(3).expect("3 significant figures is a valid precision");
        ChunkLatencies {
            histogram: Mutex::new(histogram),
        }
    }
}

impl ChunkLatencies {
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Ok(mut histogram) = self.histogram.lock() {
            let _ = histogram.record(micros);
        }
    }

    /// (count, p50, p90, p99, max) in microseconds.
    pub fn summary_us(&self) -> (u64, u64, u64, u64, u64) {
        match self.histogram.lock() {
            Ok(h) => (
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.9),
                h.value_at_quantile(0.99),
                h.max(),
            ),
            Err(_) => (0, 0, 0, 0, 0),
        }
    }
}

/// The process's peak resident set size in bytes (Linux `VmHWM`), or 0
/// where it cannot be read.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// What `--stats` reports about one run.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub stages: Vec<Stage>,
    pub wall: Duration,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub peak_rss_bytes: u64,
    pub threads: usize,
    /// (count, p50, p90, p99, max) of chunk parse latency in µs.
    pub chunk_latency_us: (u64, u64, u64, u64, u64),
}

impl RunStats {
    pub fn rows_per_s(&self) -> u64 {
        per_second(self.rows_read, self.wall)
    }

    pub fn mb_per_s(&self) -> u64 {
        per_second(self.bytes_read, self.wall) / 1_000_000
    }

    /// The report `--stats` prints, one stage a line.
    pub fn report(&self) -> String {
        let mut text = String::new();
        for stage in &self.stages {
            text.push_str(&format!(
                "  {:<10} {:>9.3} ms  (peak RSS {} MiB)\n",
                stage.name,
                stage.elapsed.as_micros() as f64 / 1000.0,
                stage.peak_rss_bytes >> 20
            ));
        }
        let (count, p50, p90, p99, max) = self.chunk_latency_us;
        text.push_str(&format!(
            "  total      {:>9.3} ms  {} rows/s  {} MB/s  peak RSS {} MiB  {} threads\n  chunks     {count} parsed, latency p50 {p50} µs  p90 {p90} µs  p99 {p99} µs  max {max} µs\n",
            self.wall.as_micros() as f64 / 1000.0,
            self.rows_per_s(),
            self.mb_per_s(),
            self.peak_rss_bytes >> 20,
            self.threads,
        ));
        text
    }

    /// The same figures as JSON, for control.json and `settle bench`.
    pub fn to_json(&self) -> serde_json::Value {
        let stages: serde_json::Map<String, serde_json::Value> = self
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    serde_json::json!(s.elapsed.as_micros() as u64),
                )
            })
            .collect();
        let (count, p50, p90, p99, max) = self.chunk_latency_us;
        serde_json::json!({
            "stages_us": stages,
            "wall_us": self.wall.as_micros() as u64,
            "rows_read": self.rows_read,
            "bytes_read": self.bytes_read,
            "rows_per_s": self.rows_per_s(),
            "mb_per_s": self.mb_per_s(),
            "peak_rss_bytes": self.peak_rss_bytes,
            "threads": self.threads,
            "chunk_latency_us": {"count": count, "p50": p50, "p90": p90, "p99": p99, "max": max},
        })
    }
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    let micros = elapsed.as_micros().max(1);
    (u128::from(count) * 1_000_000 / micros) as u64
}
