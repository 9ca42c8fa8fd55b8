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

/// One stage: its name, wall time, the CPU time and minor page faults of
/// the whole process while it ran, and the peak RSS when it ended.
#[derive(Clone, Debug)]
pub struct Stage {
    pub name: &'static str,
    pub elapsed: Duration,
    pub cpu: ProcessCpu,
    pub peak_rss_bytes: u64,
}

/// When a stage started, by the wall clock and by the process's CPU use.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    at: Instant,
    cpu: ProcessCpu,
}

impl Started {
    pub fn now() -> Started {
        Started {
            at: Instant::now(),
            cpu: ProcessCpu::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.at.elapsed()
    }

    /// The process's CPU use since then.
    pub fn cpu_used(&self) -> ProcessCpu {
        ProcessCpu::now().since(self.cpu)
    }
}

impl StageTimes {
    /// Runs `work` and records its wall time and CPU use under `name`.
    pub fn time<T>(&mut self, name: &'static str, work: impl FnOnce() -> T) -> T {
        let started = Started::now();
        let result = work();
        self.record(name, started);
        result
    }

    /// Records a stage that began at `started` and ends now.
    pub fn record(&mut self, name: &'static str, started: Started) {
        self.stages.push(Stage {
            name,
            elapsed: started.elapsed(),
            cpu: started.cpu_used(),
            peak_rss_bytes: peak_rss_bytes(),
        });
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

/// CPU time and minor page faults of the whole process, all threads
/// together (Linux `/proc/self/stat`; zero where it cannot be read). Its
/// resolution is the kernel's clock tick, 10 ms: a stage's figure is exact
/// to about that. Minor faults count pages the process touched for the
/// first time: on a virtual machine the host backs each one, which can cost
/// as much CPU as a stage's own work (docs/PERFORMANCE.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCpu {
    pub user: Duration,
    pub system: Duration,
    pub minor_faults: u64,
}

/// Clock ticks per second in `/proc` (Linux's `USER_HZ`, 100 on every
/// architecture it supports).
const PROC_TICKS_PER_S: u64 = 100;

impl ProcessCpu {
    pub fn now() -> ProcessCpu {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| ProcessCpu::parse(&stat))
            .unwrap_or_default()
    }

    /// Reads the fields of a `/proc/PID/stat` line. The command name, in
    /// parentheses, may hold spaces and parentheses itself: fields are
    /// counted after its last `)`.
    fn parse(stat: &str) -> Option<ProcessCpu> {
        let (_, after_name) = stat.rsplit_once(')')?;
        // After the name: state (field 3), then fields 4 onward; minflt is
        // field 10, utime 14, stime 15.
        let fields: Vec<&str> = after_name.split_ascii_whitespace().take(13).collect();
        let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
        let ticks = |number: usize| {
            field(number).map(|t| Duration::from_millis(t * (1000 / PROC_TICKS_PER_S)))
        };
        Some(ProcessCpu {
            user: ticks(14)?,
            system: ticks(15)?,
            minor_faults: field(10)?,
        })
    }

    fn since(self, earlier: ProcessCpu) -> ProcessCpu {
        ProcessCpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }

    /// How many cores the stage kept busy, on average, over `wall`.
    fn cores_busy(&self, wall: Duration) -> f64 {
        (self.user + self.system).as_secs_f64() / wall.as_secs_f64().max(1e-9)
    }
}

/// What `--stats` reports about one run.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub stages: Vec<Stage>,
    pub wall: Duration,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub peak_rss_bytes: u64,
    /// The CPU use of the whole run.
    pub cpu: ProcessCpu,
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
        let cpu_line = |cpu: &ProcessCpu, wall: Duration| {
            format!(
                "cpu user {:>6} ms  sys {:>5} ms  ({:.1} cores)  {:>7} minor faults",
                cpu.user.as_millis(),
                cpu.system.as_millis(),
                cpu.cores_busy(wall),
                cpu.minor_faults
            )
        };
        for stage in &self.stages {
            text.push_str(&format!(
                "  {:<10} {:>9.3} ms  {}  (peak RSS {} MiB)\n",
                stage.name,
                stage.elapsed.as_micros() as f64 / 1000.0,
                cpu_line(&stage.cpu, stage.elapsed),
                stage.peak_rss_bytes >> 20
            ));
        }
        let (count, p50, p90, p99, max) = self.chunk_latency_us;
        text.push_str(&format!(
            "  total      {:>9.3} ms  {} rows/s  {} MB/s  peak RSS {} MiB  {} threads\n             {}\n  chunks     {count} parsed, latency p50 {p50} µs  p90 {p90} µs  p99 {p99} µs  max {max} µs\n",
            self.wall.as_micros() as f64 / 1000.0,
            self.rows_per_s(),
            self.mb_per_s(),
            self.peak_rss_bytes >> 20,
            self.threads,
            cpu_line(&self.cpu, self.wall),
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
        let cpu: serde_json::Map<String, serde_json::Value> = self
            .stages
            .iter()
            .map(|s| (s.name.to_string(), cpu_json(&s.cpu)))
            .collect();
        let (count, p50, p90, p99, max) = self.chunk_latency_us;
        serde_json::json!({
            "stages_us": stages,
            "stages_cpu": cpu,
            "cpu": cpu_json(&self.cpu),
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

fn cpu_json(cpu: &ProcessCpu) -> serde_json::Value {
    serde_json::json!({
        "user_us": cpu.user.as_micros() as u64,
        "system_us": cpu.system.as_micros() as u64,
        "minor_faults": cpu.minor_faults,
    })
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    let micros = elapsed.as_micros().max(1);
    (u128::from(count) * 1_000_000 / micros) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_faults_from_a_stat_line() {
        // A command name with a space and a parenthesis: fields are counted
        // after the last `)`. minflt (field 10) is 4242, utime 250 ticks,
        // stime 13 ticks.
        let line = "4711 (settle (x) y) R 1 4711 4711 0 -1 4194304 4242 0 7 0 250 13 0 0 20 0 3 0";
        assert_eq!(
            ProcessCpu::parse(line),
            Some(ProcessCpu {
                user: Duration::from_millis(2500),
                system: Duration::from_millis(130),
                minor_faults: 4242,
            })
        );
        assert_eq!(ProcessCpu::parse("4711 (settle) R 1 2"), None);
        assert_eq!(ProcessCpu::parse("no name here"), None);
    }

    #[test]
    fn a_stage_counts_the_cpu_it_used() {
        let mut times = StageTimes::default();
        let cpu_time = |cpu: ProcessCpu| cpu.user + cpu.system;
        let touched = times.time("spin", || {
            // Fresh pages to touch, then work until the kernel has charged
            // at least one more clock tick (bounded, should /proc be
            // missing).
            let pages = vec![1u8; 16 << 20];
            let start = cpu_time(ProcessCpu::now());
            let deadline = Instant::now() + Duration::from_secs(5);
            while cpu_time(ProcessCpu::now()) == start && Instant::now() < deadline {}
            pages.iter().map(|&b| u64::from(b)).sum::<u64>()
        });
        assert_eq!(touched, 16 << 20);
        let stage = &times.stages[0];
        assert_eq!(stage.name, "spin");
        assert!(stage.cpu.minor_faults >= 1, "{stage:?}");
        assert!(
            stage.cpu.user + stage.cpu.system > Duration::ZERO,
            "{stage:?}"
        );
    }
}
