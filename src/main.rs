//! The `settle` command line: parses flags, calls the library, and maps the
//! outcome to an exit code (0 published, 1 run failure, 2 bad usage or
//! input). Only this file decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Transaction fee and settlement engine for card acquirers: merchant
/// category fees, deposits, deactivation fees, refunds, voids, adjustments
/// and carried balances, exact to the fen.
#[derive(Parser, Debug)]
#[command(name = "settle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Settle transactions: writes settlement-YYYY-MM-DD.csv, rejects.csv
    /// and control.json into --out, whole or not at all. On a terminal a
    /// progress line on stderr shows files, bytes and rows read.
    Run(RunArgs),
    /// Generate realistic test data (settle.toml, merchants.csv,
    /// transactions.csv) deterministically from a seed.
    Gen(GenArgs),
    /// Benchmark: generate data (or reuse --data), run the engine --runs
    /// times, and report rows/s, MB/s, wall times, peak RSS, CPU time,
    /// stage times and a digest of the outputs.
    Bench(BenchArgs),
    /// Check a published folder: the SHA-256 of every output against
    /// control.json, each settlement row's arithmetic, and the
    /// conservation totals recomputed from the settlement files. Exit 0 when
    /// consistent, else 1 with a sentence per mismatch.
    Verify(VerifyArgs),
    /// A merchant's statement (对账单) over one run folder or a chain of
    /// daily ones: per settlement date what came in, each deduction with
    /// its rule and reason, adjustments, the payout and any shortfall, and
    /// the deposit's and deactivation fee's story. Writes one
    /// self-contained HTML page or a CSV file (docs/STATEMENT.md). Bad input
    /// exits 2 and writes nothing.
    Statement(StatementArgs),
    /// A page of charts over one run folder or a chain of daily ones: fees
    /// by category, payouts and receivables, deposits, deactivation fees
    /// and waivers over the settlement dates, rejects by reason, the
    /// busiest merchants, and the runs' input digests and control totals.
    /// Writes one self-contained HTML file (docs/REPORT.md). Bad input
    /// exits 2 and writes nothing.
    Report(ReportArgs),
    /// Compare two published runs of the same inputs under two
    /// configurations (a what-if): the configuration keys that differ,
    /// totals side by side with B − A, and the changes by category and
    /// card, by settlement date and by merchant (docs/DIFF.md). Exit 0
    /// when compared (differences or not), 2 on bad input, 1 on an I/O
    /// failure.
    Diff(DiffArgs),
    /// Stream mode: publish transaction files (or stdin) to a NATS
    /// JetStream stream partitioned by merchant, each row with the
    /// publisher's duplicate verdict; pipelined and resumable
    /// (docs/STREAM.md). Exit 0 when the server has every row.
    Publish(PublishArgs),
    /// Stream mode: publish the close marker of a business day to every
    /// partition of the stream.
    Close(CloseArgs),
    /// Stream mode: the worker of one partition. Takes its rows as they
    /// arrive (the fee of each purchase known at once), keeps them in a
    /// durable log, and at each close marker writes the partition's
    /// settlement folder OUT/YYYY-MM-DD/part-K-of-P.
    Worker(WorkerArgs),
    /// Stream mode: join the partition folders of one closed business day
    /// into the folder `settle run --through DAY` writes over the same
    /// inputs, byte for byte, whole or not at all (docs/STREAM.md). Exit 2
    /// when the folders are not partitions 0 to P - 1 of one close.
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
struct StreamArgs {
    /// The NATS server, e.g. nats://127.0.0.1:4222. While it cannot be
    /// reached the command says so on stderr and retries (backoff up to 5 s).
    #[arg(long, value_name = "URL")]
    server: String,
    /// The JetStream stream (its subjects are txn.<partition>).
    #[arg(long, value_name = "NAME", default_value = settle::stream::nats::STREAM_DEFAULT)]
    stream: String,
}

#[derive(clap::Args, Debug)]
struct PublishArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// The partition count P, fixed when the stream is created (a stream
    /// created with another P exits 2).
    #[arg(long, value_name = "P")]
    partitions: u32,
    /// The configuration (settle.toml): the time zone of naive timestamps,
    /// which the duplicate verdict reads.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Transaction CSV files in order; `-` reads stdin whole first (at most
    /// 8 GiB).
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    files: Vec<String>,
    /// Pace the rows at this many per second (default: as fast as the
    /// server acks).
    #[arg(long, value_name = "ROWS_PER_S")]
    rate: Option<u64>,
    /// Publishes awaiting the server's ack at most.
    #[arg(long, value_name = "N", default_value_t = settle::stream::publish::WINDOW_DEFAULT)]
    window: usize,
    /// After the rows, publish the close marker of this business day.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    close: Option<i32>,
    /// The server's duplicate window when the stream is created.
    #[arg(long, value_name = "S", default_value_t = settle::stream::nats::DUPLICATE_WINDOW_S_DEFAULT)]
    duplicate_window_s: u64,
}

#[derive(clap::Args, Debug)]
struct CloseArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// The business day to close.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    date: i32,
    /// Wait this many seconds before publishing the marker (late rows).
    #[arg(long, value_name = "N", default_value_t = 0)]
    grace_s: u64,
}

#[derive(clap::Args, Debug)]
struct WorkerArgs {
    #[command(flatten)]
    stream: StreamArgs,
    /// This worker's partition K, 0 to P-1.
    #[arg(long, value_name = "K")]
    partition: u32,
    /// The partition count P (must be the stream's, else exit 2).
    #[arg(long, value_name = "P")]
    of: u32,
    /// The worker's durable state (its log); keep it across restarts.
    #[arg(long, value_name = "DIR")]
    work: PathBuf,
    /// Where closed days go: OUT/YYYY-MM-DD/part-K-of-P.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    #[arg(long, value_name = "FILE")]
    merchants: PathBuf,
    #[arg(long, value_name = "FILE")]
    adjustments: Option<PathBuf>,
    /// Start from the end state of an earlier run (its --out folder).
    #[arg(long, value_name = "DIR")]
    state_in: Option<PathBuf>,
    /// At each close, print the latency publish -> fee known: p50, p99,
    /// p99.9 and max.
    #[arg(long)]
    stats: bool,
    /// Exit 0 after the first day closed.
    #[arg(long)]
    once: bool,
}

/// `settle publish`, `settle close` and `settle worker`.
fn stream_command(command: Command) -> ExitCode {
    use settle::stream::{publish, worker};
    let outcome = match command {
        Command::Publish(args) => publish::publish(&publish::PublishOptions {
            server: args.stream.server,
            stream: args.stream.stream,
            partitions: args.partitions,
            config: args.config,
            files: args.files,
            rate: args.rate,
            window: args.window,
            close: args.close,
            duplicate_window: std::time::Duration::from_secs(args.duplicate_window_s),
        })
        .map(|summary| {
            eprintln!(
                "settle: published {} rows of {} file(s) ({} already in the stream, {} messages dropped by the server as duplicates)",
                summary.rows_published, summary.files, summary.rows_resumed, summary.duplicates
            );
        }),
        Command::Close(args) => publish::close(
            &args.stream.server,
            &args.stream.stream,
            args.date,
            std::time::Duration::from_secs(args.grace_s),
        )
        .map(|partitions| {
            eprintln!(
                "settle: closed {} on {partitions} partition(s)",
                settle::calendar::format_date(args.date)
            );
        }),
        Command::Worker(args) => worker::work(&worker::WorkerOptions {
            server: args.stream.server,
            stream: args.stream.stream,
            partition: args.partition,
            partitions: args.of,
            work: args.work,
            out: args.out,
            config: args.config,
            merchants: args.merchants,
            adjustments: args.adjustments,
            state_in: args.state_in,
            stats: args.stats,
            once: args.once,
        })
        .map(|_| ()),
        _ => unreachable!("only stream commands come here"),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("settle: error: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// The partition folders of one close, in any order.
    #[arg(value_name = "PART_DIR", required = true)]
    parts: Vec<PathBuf>,
    /// The merged folder; must not exist yet, or be empty.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// Published run folders, in any order; they must chain (each start is
    /// the previous horizon + 1) and have journal files.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    runs: Vec<PathBuf>,
    /// How many of the busiest merchants (by purchases) to list, at most 1000.
    #[arg(long, value_name = "N", default_value_t = settle::report::TOP_DEFAULT)]
    top: usize,
    /// The page to write: FILE.html, one self-contained file (no network).
    /// Written whole or not at all.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct DiffArgs {
    /// The published run folder of the base case (A).
    #[arg(value_name = "RUN_A")]
    run_a: PathBuf,
    /// The published run folder of the what-if (B); deltas are B − A.
    #[arg(value_name = "RUN_B")]
    run_b: PathBuf,
    /// Compare runs over different transactions, merchants, adjustments or
    /// dates (refused otherwise: a what-if changes the configuration only).
    #[arg(long)]
    allow_different_inputs: bool,
    /// How many merchants to show, ranked by |payout change|, then |fees
    /// change|, then merchant_id.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write one file per breakdown into DIR (totals, by_category,
    /// by_date, merchants: every merchant that changed, config_changes);
    /// DIR must not exist or be empty, and is written whole or not at all.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write the what-if page: FILE.html, one self-contained page with
    /// the configuration changes, the totals, and charts and tables of the
    /// changes by category and card, by date and by merchant
    /// (docs/REPORT.md). Written whole or not at all.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// The format of the files --out writes: csv, or parquet (amounts
    /// DECIMAL(18,2), counts INT64, settlement_date a DATE).
    #[arg(long, value_name = "FORMAT", default_value = "csv", value_parser = ["csv", "parquet"], requires = "out")]
    out_format: String,
}

#[derive(clap::Args, Debug)]
struct StatementArgs {
    /// Published run folders, in any order; they must chain (each start is
    /// the previous horizon + 1) and have journal files.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    runs: Vec<PathBuf>,
    /// The merchant's id.
    #[arg(long, value_name = "ID")]
    merchant: String,
    /// First settlement date shown (default: the runs' first).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    from: Option<i32>,
    /// Last settlement date shown (default: the runs' last).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    to: Option<i32>,
    /// Language of the labels: zh (Chinese, the default) or en.
    #[arg(long, value_name = "zh|en", default_value = "zh", value_parser = ["zh", "en"])]
    lang: String,
    /// The file to write: FILE.html (one self-contained page) or FILE.csv
    /// (postings and totals). Written whole or not at all.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The output folder of a run.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// The data folder: reused when it holds settle.toml, merchants.csv and
    /// transactions.csv, else generated there.
    #[arg(long, value_name = "DIR", default_value = "bench-data/bench")]
    data: PathBuf,
    /// Rows to generate.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    rows: u64,
    /// Merchants to generate.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    merchants: u32,
    /// Days to generate.
    #[arg(long, value_name = "D", default_value_t = 30)]
    days: u32,
    /// Seed for generation.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// How many times to run the engine.
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: u32,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct GenArgs {
    /// Number of merchants.
    #[arg(long, value_name = "N")]
    merchants: u32,
    /// Number of transaction rows.
    #[arg(long, value_name = "N")]
    rows: u64,
    /// Number of business days, from 2026-11-01.
    #[arg(long, value_name = "D")]
    days: u32,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Bad rows per million (each kind of reject is drawn in turn).
    #[arg(long, value_name = "PPM", default_value_t = 1000)]
    bad_rows_ppm: u32,
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The configuration (settle.toml): categories, rates, deposit and
    /// deactivation terms.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Merchant master data (merchants.csv).
    #[arg(long, value_name = "FILE")]
    merchants: PathBuf,
    /// One or more transaction CSV files, read in the order given; `-` reads
    /// stdin. Files ending .gz (gzip) or .zst (zstd) are decompressed as
    /// they are read. A folder stands for its *.csv, *.csv.gz and *.csv.zst
    /// files in bytewise name order.
    #[arg(long, value_name = "FILE|DIR", num_args = 1.., required = true)]
    transactions: Vec<String>,
    /// Adjustments (credits and charges) to book into this run's
    /// settlements.
    #[arg(long, value_name = "FILE")]
    adjustments: Option<PathBuf>,
    /// The last business date the run covers (its horizon); later
    /// transactions are rejected as beyond_horizon.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    through: Option<i32>,
    /// Start from the end state of an earlier run: its --out folder. Its
    /// balances, deposits and id index carry into this run; transactions
    /// on or before its horizon are rejected as late_transaction.
    #[arg(long, value_name = "PREV_OUT_DIR")]
    state_in: Option<PathBuf>,
    /// Also write fees-YYYY-MM-DD.csv: one row per accepted transaction
    /// with its category, rate and fee.
    #[arg(long)]
    detail: bool,
    /// Publish no end state (no state/ folder), for one-off replays and
    /// what-ifs; control.json says "state": false, and no later run can
    /// start from this one with --state-in.
    #[arg(long)]
    no_state: bool,
    /// Worker threads (default: one per core). The output is the same for
    /// any value.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// The format of the settlement, journal, fees, rejects and booked
    /// adjustments files: csv, or parquet (one .parquet file per .csv file,
    /// amounts DECIMAL(18,2), dates DATE; docs/PARQUET.md). control.json
    /// and state/ are the same in both.
    #[arg(long, value_name = "csv|parquet", default_value = "csv", value_parser = ["csv", "parquet"])]
    format: String,
    /// The output folder; it must not exist yet, or be empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print stage timings (wall, CPU, page faults), rows/s, MB/s, peak RSS
    /// and chunk latency percentiles to stderr, and put them into control.json under
    /// "timings" (which then differs from run to run).
    #[arg(long)]
    stats: bool,
    /// Target bytes per parse chunk (for testing chunk boundaries).
    #[arg(long, value_name = "BYTES", default_value_t = 0, hide = true)]
    chunk_bytes: usize,
}

/// The progress line on stderr while a run works: files and bytes read,
/// rows and rows/s, the time left to read the input, then the later
/// stages. Shown only when the run has counters (`RunOptions::progress`,
/// given only when stderr is a terminal: pipelines and CI logs stay quiet).
struct Shown {
    bar: indicatif::ProgressBar,
    /// Dropped to stop the redrawing thread.
    stop: std::sync::mpsc::Sender<()>,
    redraw: std::thread::JoinHandle<()>,
}

fn progress(options: &settle::RunOptions) -> Option<Shown> {
    let counters = options.progress.clone()?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let line = bar.clone();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let redraw = std::thread::spawn(move || {
        let tick = std::time::Duration::from_millis(250);
        loop {
            line.set_message(counters.snapshot().line());
            if stopped.recv_timeout(tick) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                break;
            }
        }
    });
    Some(Shown { bar, stop, redraw })
}

impl Shown {
    fn finish(self) {
        drop(self.stop);
        let _ = self.redraw.join();
        self.bar.finish_and_clear();
    }
}

fn parse_day(text: &str) -> Result<i32, String> {
    settle::calendar::parse_date(text.as_bytes())
        .ok_or_else(|| format!("{text:?} is not a date YYYY-MM-DD"))
}

/// `settle diff`: compares, writes --out if asked, then prints the table
/// or the JSON document to stdout.
fn diff(args: DiffArgs) -> ExitCode {
    let options = settle::diff::DiffOptions {
        run_a: args.run_a,
        run_b: args.run_b,
        allow_different_inputs: args.allow_different_inputs,
    };
    let checked = match &args.report {
        Some(page) => settle::report::what_if::check(page),
        None => Ok(()),
    };
    let outcome = checked
        .and_then(|()| settle::diff::diff(&options))
        .and_then(|diff| {
            if let Some(out) = &args.out {
                // clap accepts only csv and parquet.
                let format = if args.out_format == "parquet" {
                    settle::diff::export::Format::Parquet
                } else {
                    settle::diff::export::Format::Csv
                };
                let names = settle::diff::export::write(&diff, out, format)?;
                eprintln!("settle: wrote {} ({})", out.display(), names.join(", "));
            }
            if let Some(page) = &args.report {
                let bytes = settle::report::what_if::write(&diff, args.top, page)?;
                eprintln!("settle: wrote {} ({bytes} bytes)", page.display());
            }
            Ok(diff)
        });
    match outcome {
        Ok(diff) if args.json => {
            print!("{}", settle::diff::export::json(&diff, args.top));
            ExitCode::SUCCESS
        }
        Ok(diff) => {
            print!("{}", settle::diff::table::render(&diff, args.top));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("settle: error: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        command @ (Command::Publish(_) | Command::Close(_) | Command::Worker(_)) => {
            stream_command(command)
        }
        Command::Report(args) => {
            let options = settle::report::ReportOptions {
                runs: args.runs,
                top: args.top,
                out: args.out,
            };
            match settle::report::report(&options) {
                Ok(summary) => {
                    let span = match (summary.first, summary.last) {
                        (Some(first), Some(last)) => format!(
                            "settlement dates {} to {}",
                            settle::calendar::format_date(first),
                            settle::calendar::format_date(last)
                        ),
                        _ => "no settlement file".to_string(),
                    };
                    eprintln!(
                        "settle: wrote {} ({} run folder(s), {span}, {} bytes)",
                        options.out.display(),
                        summary.runs,
                        summary.bytes
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
        Command::Diff(args) => diff(args),
        Command::Statement(args) => {
            let options = settle::statement::StatementOptions {
                runs: args.runs,
                merchant: args.merchant,
                from: args.from,
                to: args.to,
                lang: if args.lang == "en" {
                    settle::statement::Lang::En
                } else {
                    settle::statement::Lang::Zh
                },
                out: args.out,
            };
            match settle::statement::statement(&options) {
                Ok(summary) => {
                    eprintln!(
                        "settle: wrote {} ({} to {}, {} settlement date(s), payout {})",
                        options.out.display(),
                        settle::calendar::format_date(summary.from),
                        settle::calendar::format_date(summary.to),
                        summary.days,
                        settle::money::format_fen(summary.payout_fen)
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
        Command::Merge(args) => {
            let options = settle::stream::merge::MergeOptions {
                partitions: args.parts,
                out: args.out,
            };
            match settle::stream::merge::merge(&options) {
                Ok(summary) => {
                    eprintln!(
                        "settle: merged {} partitions of {} into {}: {} rows read, {} rejected",
                        summary.partitions,
                        settle::calendar::format_date(summary.through),
                        options.out.display(),
                        summary.rows_read,
                        summary.rows_rejected
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
        Command::Verify(args) => match settle::verify::verify(&args.dir) {
            Ok(problems) if problems.is_empty() => {
                eprintln!("settle: {} is consistent", args.dir.display());
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for problem in &problems {
                    eprintln!("settle: verify: {problem}");
                }
                ExitCode::from(1)
            }
            Err(error) => {
                eprintln!("settle: error: {error}");
                ExitCode::from(error.exit_code() as u8)
            }
        },
        Command::Bench(args) => {
            let options = settle::bench::BenchOptions {
                generate: settle::datagen::GenOptions {
                    merchants: args.merchants,
                    rows: args.rows,
                    days: args.days,
                    seed: args.seed,
                    bad_rows_ppm: 1000,
                    out: args.data,
                },
                runs: args.runs,
                threads: args.threads,
            };
            match settle::bench::bench(&options) {
                Ok(report) if args.json => {
                    println!("{}", report.to_json());
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    print!("{}", report.table());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
        Command::Gen(args) => {
            let options = settle::datagen::GenOptions {
                merchants: args.merchants,
                rows: args.rows,
                days: args.days,
                seed: args.seed,
                bad_rows_ppm: args.bad_rows_ppm,
                out: args.out,
            };
            match settle::datagen::generate(&options) {
                Ok(summary) => {
                    eprintln!(
                        "settle: generated {} rows ({} bytes) in {}",
                        summary.rows,
                        summary.bytes,
                        options.out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
        Command::Run(args) => {
            let options = settle::RunOptions {
                config: args.config,
                merchants: args.merchants,
                transactions: args.transactions,
                adjustments: args.adjustments,
                through: args.through,
                state_in: args.state_in,
                detail: args.detail,
                no_state: args.no_state,
                format: if args.format == "parquet" {
                    settle::output::Format::Parquet
                } else {
                    settle::output::Format::Csv
                },
                threads: args.threads,
                chunk_bytes: args.chunk_bytes,
                stats: args.stats,
                out: args.out,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr())
                    .then(std::sync::Arc::default),
            };
            let shown = progress(&options);
            let outcome = settle::run(&options);
            if let Some(shown) = shown {
                shown.finish();
            }
            match outcome {
                Ok(summary) => {
                    eprintln!(
                        "settle: published {} ({} rows read, {} rejected, {} settlement rows in {} files)",
                        options.out.display(),
                        summary.rows_read,
                        summary.rows_rejected,
                        summary.settlement_rows,
                        summary.files_written
                    );
                    if options.stats {
                        eprint!("{}", summary.stats.report());
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("settle: error: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
    }
}
