//! The `settle run` command as a library call: open and check every input
//! (anything fatal stops here, before work), run the pipeline, publish.

use std::path::{Path, PathBuf};

use crate::calendar::{self, Day};
use crate::config::{self, limits};
use crate::error::{Error, Result};
use crate::ingest::stream::{Stream, StreamDigest};
use crate::ingest::{Source, adjustments, header, merchants, txn};
use crate::output::{self, control::InputFile, control::sha256_hex};
use crate::pipeline::stats::{self, RunStats, StageTimes};
use crate::pipeline::{self, Input, Plan, Totals, TxnFile};
use crate::state;

/// What `settle run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub merchants: PathBuf,
    /// Paths as given; `-` is stdin.
    pub transactions: Vec<String>,
    pub adjustments: Option<PathBuf>,
    pub through: Option<Day>,
    /// The output folder of the run to start from (`--state-in`).
    pub state_in: Option<PathBuf>,
    pub detail: bool,
    /// The format of the settlement, journal, detail, rejects and booked
    /// adjustments files (`--format`).
    pub format: output::Format,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Target bytes per parse chunk; 0 means the default.
    pub chunk_bytes: usize,
    /// Put stage timings into control.json (which then differs run to run).
    pub stats: bool,
    pub out: PathBuf,
}

/// What a published run reports back.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub settlement_rows: usize,
    pub files_written: usize,
    pub totals: Totals,
    pub stats: RunStats,
}

/// A transactions input as opened: a file's bytes, or stdin as a stream.
enum Opened {
    Bytes(Source),
    Stream(Stream),
}

impl Opened {
    fn open(path: &str) -> Result<Opened> {
        if path == "-" {
            Stream::open(path, Box::new(std::io::stdin())).map(Opened::Stream)
        } else {
            Source::open(path).map(Opened::Bytes)
        }
    }

    /// The bytes that hold the header.
    fn head(&self) -> &[u8] {
        match self {
            Opened::Bytes(bytes) => bytes,
            Opened::Stream(stream) => stream.head(),
        }
    }

    fn input(&self) -> Input<'_> {
        match self {
            Opened::Bytes(bytes) => Input::Bytes(bytes),
            Opened::Stream(stream) => Input::Stream(stream),
        }
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Runs one settlement: nothing is written unless everything succeeds.
pub fn run(options: &RunOptions) -> Result<RunSummary> {
    let started = stats::Started::now();
    let mut times = StageTimes::default();
    if options.transactions.iter().filter(|p| *p == "-").count() > 1 {
        return Err(Error::Usage(
            "stdin (-) can be given only once in --transactions".into(),
        ));
    }
    if options.transactions.len() > limits::TXN_FILES_MAX {
        return Err(Error::Usage(format!(
            "--transactions names {} files; a run reads at most {}",
            options.transactions.len(),
            limits::TXN_FILES_MAX
        )));
    }
    output::check_out_dir(&options.out)?;
    let config_bytes = std::fs::read(&options.config)
        .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", options.config.display())))?;
    let config_text = std::str::from_utf8(&config_bytes).map_err(|e| {
        Error::config(
            &options.config,
            "(file)",
            format!("is not valid UTF-8 ({e})"),
        )
    })?;
    let settings = config::parse(&options.config, config_text)?;
    let prior = times.time("state-in", || {
        options.state_in.as_deref().map(state::read).transpose()
    })?;
    if let (Some(through), Some(horizon)) =
        (options.through, prior.as_ref().and_then(|p| p.horizon))
        && through <= horizon
    {
        return Err(Error::Usage(format!(
            "--through {} is not after {}, the horizon of the state in {}",
            calendar::format_date(through),
            calendar::format_date(horizon),
            options
                .state_in
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
        )));
    }
    let merchants_name = display(&options.merchants);
    let merchants_source = Source::open(&merchants_name)?;
    let merchants = merchants::parse(&merchants_source, &merchants_name)?;

    let adjustments_name = options.adjustments.as_deref().map(display);
    let adjustments_source = adjustments_name.as_deref().map(Source::open).transpose()?;
    if let (Some(bytes), Some(name)) = (&adjustments_source, &adjustments_name) {
        adjustments::read_header(bytes, name)?;
    }
    let (sources, headers) = times.time("open", || -> Result<_> {
        let sources = options
            .transactions
            .iter()
            .map(|path| Opened::open(path))
            .collect::<Result<Vec<_>>>()?;
        let headers = sources
            .iter()
            .zip(&options.transactions)
            .map(|(opened, name)| header::read(opened.head(), name, &txn::COLUMNS))
            .collect::<Result<Vec<_>>>()?;

        Ok((sources, headers))
    })?;
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("--threads {threads}: {e}")))?;
    let plan = Plan {
        settings: &settings,
        merchants: &merchants,
        txn_files: sources
            .iter()
            .zip(&headers)
            .zip(&options.transactions)
            .map(|((opened, header), name)| TxnFile {
                name,
                input: opened.input(),
                header,
            })
            .collect(),
        adjustments: adjustments_source
            .as_deref()
            .zip(adjustments_name.as_deref()),
        through: options.through,
        chunk_bytes: if options.chunk_bytes == 0 {
            limits::CHUNK_BYTES_TARGET
        } else {
            options.chunk_bytes
        },
        prior: prior.as_ref(),
        terminal_ids: options.detail,
        journal_per_transaction: options.detail,
    };
    // The transaction files' digests (for control.json) are taken beside the
    // parse, not after the run, where they were a serial half second at 10M
    // rows.
    let (ingested, digests) = pool.install(|| {
        rayon::join(
            || pipeline::ingest(&plan),
            || {
                sources
                    .iter()
                    .zip(&options.transactions)
                    .map(|(opened, path)| match opened {
                        Opened::Bytes(source) => source.sha256_hex(path).map(Some),
                        Opened::Stream(_) => Ok(None),
                    })
                    .collect::<Result<Vec<Option<String>>>>()
            },
        )
    });
    let mut ingested = ingested?;
    let digests = digests?;
    times.stages.append(&mut ingested.times.stages);
    // The id index is final once the run is linked: it is written now,
    // straight to the disk, and synced on a thread of its own while the run
    // settles.
    let mut staging = output::Staging::create(&options.out)?;
    let index = times.time("state-out", || {
        pool.install(|| {
            pipeline::carry::write_index(
                staging.path(),
                &ingested,
                &merchants,
                &settings,
                prior.as_ref(),
            )
        })
    })?;
    staging.sync_in_background(index.unsynced);
    let mut settled = pool.install(|| pipeline::settle(&plan, ingested))?;
    let state_files =
        pipeline::carry::state_files(&settled, &merchants, &settings, &index.segments);
    if !options.detail {
        settled.drop_transactions();
    }
    times.stages.append(&mut settled.times.stages);

    let streamed = |file_index: usize| -> &StreamDigest {
        let found = settled
            .parsed
            .streamed
            .iter()
            .find(|(i, _)| *i as usize == file_index);
        &found.expect("a parsed stream has its digest").1
    };
    let input = |name: String, bytes: &[u8]| InputFile {
        path: name,
        sha256: sha256_hex(bytes),
    };
    let info = output::RunInfo {
        config: input(display(&options.config), &config_bytes),
        merchants: input(merchants_name, &merchants_source),
        transactions: options
            .transactions
            .iter()
            .zip(&sources)
            .enumerate()
            .map(|(file_index, (name, opened))| InputFile {
                path: name.clone(),
                sha256: match (opened, &digests[file_index]) {
                    (Opened::Bytes(_), Some(sha256)) => sha256.clone(),
                    _ => streamed(file_index).sha256.clone(),
                },
            })
            .collect(),
        adjustments: adjustments_name
            .zip(adjustments_source.as_deref())
            .map(|(name, bytes)| input(name, bytes)),
        through: options.through,
        detail: options.detail,
    };
    let rows_read = settled.txn_counts.iter().map(|c| c.rows_read).sum();
    let mut run_stats = RunStats {
        rows_read,
        bytes_read: sources
            .iter()
            .enumerate()
            .map(|(file_index, opened)| match opened {
                Opened::Bytes(bytes) => bytes.len() as u64,
                Opened::Stream(_) => streamed(file_index).bytes,
            })
            .sum(),
        threads,
        chunk_latency_us: settled.latencies.summary_us(),
        ..RunStats::default()
    };
    let timings = options.stats.then(|| {
        run_stats.stages = times.stages.clone();
        run_stats.wall = started.elapsed();
        run_stats.cpu = started.cpu_used();
        run_stats.peak_rss_bytes = stats::peak_rss_bytes();
        run_stats.to_json()
    });
    let mut written = times.time("render", || {
        pool.install(|| {
            output::write_outputs(
                &staging,
                &settled,
                &merchants,
                &settings,
                &info,
                options.format,
            )
        })
    })?;
    let journal_files = times.time("journal", || {
        pool.install(|| {
            output::write_journal(&staging, &settled, &merchants, &settings, options.format)
        })
    })?;
    written.files.extend(journal_files);
    times.time("publish", || {
        pool.install(|| {
            output::finish(
                &staging,
                &mut written,
                &settled,
                &merchants,
                &info,
                timings,
                state_files,
            )
        })?;
        staging.publish()
    })?;
    run_stats.stages = times.stages;
    run_stats.wall = started.elapsed();
    run_stats.cpu = started.cpu_used();
    run_stats.peak_rss_bytes = stats::peak_rss_bytes();
    Ok(RunSummary {
        rows_read,
        rows_rejected: settled.rejects.len() as u64,
        settlement_rows: settled.rows.iter().map(Vec::len).sum(),
        files_written: written.files.len(),
        totals: settled.totals,
        stats: run_stats,
    })
}
