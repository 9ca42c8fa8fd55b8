//! The `settle run` command as a library call: open and check every input
//! (anything fatal stops here, before work), run the pipeline, publish.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::calendar::{self, Day};
use crate::config::{self, limits};
use crate::error::{Error, Result};
use crate::ingest::decompress::{self, Compression};
use crate::ingest::progress::{Counted, Phase, Progress};
use crate::ingest::stream::{Reopen, Stream, StreamDigest};
use crate::ingest::{Source, adjustments, header, inputs, merchants, txn};
use crate::output::{self, control::InputFile, control::Stored, control::sha256_hex};
use crate::pipeline::stats::{self, RunStats, StageTimes};
use crate::pipeline::{self, Input, Plan, Totals, TxnFile};
use crate::state;

/// What `settle run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: PathBuf,
    pub merchants: PathBuf,
    /// Paths as given; `-` is stdin, a folder stands for its `*.csv`,
    /// `*.csv.gz` and `*.csv.zst` files (`ingest::inputs`).
    pub transactions: Vec<String>,
    pub adjustments: Option<PathBuf>,
    pub through: Option<Day>,
    /// The output folder of the run to start from (`--state-in`).
    pub state_in: Option<PathBuf>,
    pub detail: bool,
    /// Publish no end state (`--no-state`): no `state/` folder, and
    /// control.json says so.
    pub no_state: bool,
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
    /// Counters for a progress display, if one watches the run.
    pub progress: Option<Arc<Progress>>,
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

/// A transactions input as opened: a file's bytes, or a stream (stdin, or
/// a compressed file read through its decoder).
enum Opened {
    Bytes(Source),
    Stream(Stream, Option<Compression>),
}

impl Opened {
    /// Opens input `file_index` at `path`; a compressed file is checked
    /// (its magic number, its header) and closed until it is read.
    fn open(path: &str, file_index: usize, progress: Option<&Arc<Progress>>) -> Result<Opened> {
        if path == "-" {
            let stdin: Box<dyn Read + Send> = match progress {
                Some(progress) => Box::new(Counted::new(
                    std::io::stdin(),
                    Arc::clone(progress),
                    file_index,
                )),
                None => Box::new(std::io::stdin()),
            };
            return Stream::open(path, stdin).map(|stream| Opened::Stream(stream, None));
        }
        let Some(format) = Compression::of(path) else {
            return Source::open(path).map(Opened::Bytes);
        };
        let first = decompress::open(path, format, None)?;
        let owned = path.to_string();
        let progress = progress.cloned();
        let reopen: Reopen = Box::new(move || {
            let counter = progress.clone().map(|progress| (progress, file_index));
            decompress::open(&owned, format, counter)
        });
        Stream::open_lazily(path, first, reopen).map(|stream| Opened::Stream(stream, Some(format)))
    }

    /// The bytes that hold the header.
    fn head(&self) -> &[u8] {
        match self {
            Opened::Bytes(bytes) => bytes,
            Opened::Stream(stream, _) => stream.head(),
        }
    }

    fn input(&self) -> Input<'_> {
        match self {
            Opened::Bytes(bytes) => Input::Bytes(bytes),
            Opened::Stream(stream, _) => Input::Stream(stream),
        }
    }

    /// The bytes a progress display waits for: the data after the header of
    /// a plain file, a compressed file's stored size, nothing known of
    /// stdin.
    fn bytes_to_read(&self, path: &str, header: &header::Header) -> Option<u64> {
        match self {
            Opened::Bytes(bytes) => Some((bytes.len() - header.data_start) as u64),
            Opened::Stream(_, Some(_)) => std::fs::metadata(path).ok().map(|m| m.len()),
            Opened::Stream(_, None) => None,
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
    let progress = options.progress.as_ref();
    let transactions = inputs::expand(&options.transactions)?;
    if transactions.iter().filter(|p| *p == "-").count() > 1 {
        return Err(Error::Usage(
            "stdin (-) can be given only once in --transactions".into(),
        ));
    }
    if transactions.len() > limits::TXN_FILES_MAX {
        return Err(Error::Usage(format!(
            "--transactions names {} files; a run reads at most {}",
            transactions.len(),
            limits::TXN_FILES_MAX
        )));
    }
    output::check_out_dir(&options.out)?;
    let config_bytes = std::fs::read(&options.config)
        .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", options.config.display())))?;
    let settings = config::parse_bytes(&options.config, &config_bytes)?;
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
        // Each file is opened and its header checked before the next, so
        // that a bad header stops the run before the rest are opened.
        let mut sources = Vec::with_capacity(transactions.len());
        let mut headers = Vec::with_capacity(transactions.len());
        for (file_index, path) in transactions.iter().enumerate() {
            let opened = Opened::open(path, file_index, progress)?;
            headers.push(header::read(opened.head(), path, &txn::COLUMNS)?);
            sources.push(opened);
        }

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
            .zip(&transactions)
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
        progress: progress.map(Arc::as_ref),
        duplicates: None,
    };
    if let Some(progress) = progress {
        progress.start_files(
            sources
                .iter()
                .zip(&transactions)
                .zip(&headers)
                .map(|((opened, path), header)| opened.bytes_to_read(path, header)),
        );
        progress.set_phase(Phase::Reading);
    }
    // The transaction files' digests (for control.json) are taken beside the
    // parse, not after the run, where they were a serial half second at 10M
    // rows: a plain file's, and a compressed file's stored bytes (the
    // digest of the CSV inside comes from its stream).
    let (ingested, digests) = pool.install(|| {
        rayon::join(
            || pipeline::ingest(&plan),
            || {
                sources
                    .iter()
                    .zip(&transactions)
                    .map(|(opened, path)| match opened {
                        Opened::Bytes(source) => source.sha256_hex(path).map(Some),
                        Opened::Stream(_, Some(_)) => {
                            crate::ingest::source::sha256_file(path).map(Some)
                        }
                        Opened::Stream(_, None) => Ok(None),
                    })
                    .collect::<Result<Vec<Option<String>>>>()
            },
        )
    });
    let mut ingested = ingested?;
    let digests = digests?;
    times.stages.append(&mut ingested.times.stages);
    if let Some(progress) = progress {
        progress.set_phase(Phase::Settling);
    }
    // The id index is final once the run is linked: it is written now,
    // straight to the disk, and synced on a thread of its own while the run
    // settles. With --no-state there is none.
    let mut staging = output::Staging::create(&options.out)?;
    let segments = if options.no_state {
        None
    } else {
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
        Some(index.segments)
    };
    let mut settled = pool.install(|| pipeline::settle(&plan, ingested))?;
    let state_files = segments
        .map(|segments| pipeline::carry::state_files(&settled, &merchants, &settings, &segments))
        .unwrap_or_default();
    if !options.detail {
        settled.drop_transactions();
    }
    times.stages.append(&mut settled.times.stages);

    // `streamed` is sorted by file index.
    let streamed = |file_index: usize| -> &StreamDigest {
        let found = settled
            .parsed
            .streamed
            .binary_search_by_key(&file_index, |(i, _)| *i as usize);
        &settled.parsed.streamed[found.expect("a parsed stream has its digest")].1
    };
    let input = |name: String, bytes: &[u8]| InputFile {
        path: name,
        sha256: sha256_hex(bytes),
        stored: None,
    };
    let info = output::RunInfo {
        config: input(display(&options.config), &config_bytes),
        merchants: input(merchants_name, &merchants_source),
        transactions: transactions
            .iter()
            .zip(&sources)
            .zip(digests)
            .enumerate()
            .map(|(file_index, ((name, opened), digest))| match opened {
                Opened::Bytes(_) => InputFile {
                    path: name.clone(),
                    sha256: digest.expect("a file's bytes are digested"),
                    stored: None,
                },
                Opened::Stream(_, compression) => InputFile {
                    path: name.clone(),
                    sha256: streamed(file_index).sha256.clone(),
                    stored: compression.zip(digest).map(|(format, sha256)| Stored {
                        compression: format.name(),
                        sha256,
                    }),
                },
            })
            .collect(),
        adjustments: adjustments_name
            .zip(adjustments_source.as_deref())
            .map(|(name, bytes)| input(name, bytes)),
        through: options.through,
        detail: options.detail,
        state: !options.no_state,
    };
    let rows_read = settled.txn_counts.iter().map(|c| c.rows_read).sum();
    let mut run_stats = RunStats {
        rows_read,
        bytes_read: sources
            .iter()
            .enumerate()
            .map(|(file_index, opened)| match opened {
                Opened::Bytes(bytes) => bytes.len() as u64,
                Opened::Stream(..) => streamed(file_index).bytes,
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
    if let Some(progress) = progress {
        progress.set_phase(Phase::Writing);
    }
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
