//! `settle worker --partition K --of P`: the durable pull consumer of one
//! partition. It takes the partition's messages in stream order, makes
//! each row's fee known as it arrives (`arrival`), keeps what it took in
//! its log (`log`, synced before the messages are acknowledged), and at a
//! close marker settles the day: the close protocol below.
//!
//! Close of day D: `partition::open` over the day's files and rows, this
//! partition's `local_start` published as a fact (`facts`), a wait for all
//! P facts, `finish` with the earliest start into `OUT/D/part-K-of-P`
//! (skipped when that folder is already there: a restart after it was
//! written), then the log rotated and only then the marker acknowledged.
//! The close is logged before it starts, so a worker killed during it
//! redoes it on restart. This module must not settle money itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;

use super::arrival::Arrival;
use super::day::{OpenDay, foreign_rejects};
use super::facts;
use super::log::{Entry, Log};
use super::nats::{self, Incoming};
use super::partition;
use crate::calendar::{self, Day};
use crate::error::{Error, Result};

/// Messages taken before one log sync and its acks.
pub const BATCH_MAX: usize = 1024;
/// How long the server waits for an ack before it delivers a message
/// again; a redelivered message the log already holds is skipped.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Unacknowledged messages the server lets one worker hold.
const ACK_PENDING_MAX: i64 = 20_000;

/// What a worker needs.
pub struct WorkerOptions {
    pub server: String,
    pub stream: String,
    pub partition: u32,
    pub partitions: u32,
    pub work: PathBuf,
    pub out: PathBuf,
    pub config: PathBuf,
    pub merchants: PathBuf,
    pub adjustments: Option<PathBuf>,
    pub state_in: Option<PathBuf>,
    pub stats: bool,
    /// Return after the first day closed.
    pub once: bool,
}

/// One closed day.
#[derive(Debug)]
pub struct Closed {
    pub day: Day,
    pub rows: u64,
    /// The sum of the rows' lines (wrapping): with `rows`, a cheap check
    /// that every row reached exactly one partition.
    pub line_sum: u64,
    pub foreign: usize,
    pub folder: PathBuf,
}

struct Worker<'o> {
    options: &'o WorkerOptions,
    log: Log,
    day: OpenDay,
    arrival: Arrival,
    context: jetstream::Context,
    facts: jetstream::stream::Stream,
    closed: Vec<Closed>,
    /// The log's write and sync in flight (at most one), with the message
    /// to ack when it is done.
    syncing: Option<Syncing>,
    /// The last message taken whose entries are not yet in a sync.
    unacked: Option<jetstream::Message>,
}

/// A log write on the blocking pool: rows keep arriving, and their fees
/// keep being known, while the disk syncs the batch before them.
struct Syncing {
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    last: Option<jetstream::Message>,
}

/// Waits for a sync, then acks its last message.
async fn synced(
    done: std::result::Result<std::io::Result<()>, tokio::task::JoinError>,
    last: Option<jetstream::Message>,
) -> Result<()> {
    done.map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|e| Error::io("writing the worker log", e))?;
    if let Some(message) = last {
        // A lost ack only makes the server deliver again what the log
        // then skips.
        let _ = message.ack().await;
    }
    Ok(())
}

impl Worker<'_> {
    /// The close protocol (see the module's doc).
    async fn close(&mut self, seq: u64, day: Day) -> Result<()> {
        let options = self.options;
        let (k, p) = (options.partition, options.partitions);
        let mut files = Vec::with_capacity(self.day.files.len());
        for (index, head) in self.day.files.iter().enumerate() {
            files.push(head.clone().ok_or_else(|| {
                Error::Usage(format!(
                    "closing {}: the head of file {index} never arrived",
                    calendar::format_date(day)
                ))
            })?);
        }
        let mut rows = std::mem::take(&mut self.day.rows);
        rows.sort_by_key(|r| (r.file_index, r.line));
        let partition_options = partition::PartitionOptions {
            config: options.config.clone(),
            merchants: options.merchants.clone(),
            adjustments: options.adjustments.clone(),
            state_in: options.state_in.clone(),
            through: day,
            partition: k,
            partitions: p,
        };
        let opened = partition::open(&partition_options, &files, &rows)?;
        facts::publish(&self.context, day, k, opened.local_start()).await;
        let starts = facts::wait_all(&self.facts, day, p).await;
        let start = starts.iter().flatten().min().copied();
        let date = calendar::format_date(day);
        let day_dir = options.out.join(&date);
        std::fs::create_dir_all(&day_dir)
            .map_err(|e| Error::io(format!("creating {}", day_dir.display()), e))?;
        if !self.day.foreign.is_empty() {
            let path = day_dir.join(format!("part-{k}-of-{p}.nats-rejects.csv"));
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, foreign_rejects(&self.day.foreign))
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        let folder = day_dir.join(format!("part-{k}-of-{p}"));
        if folder.exists() {
            eprintln!(
                "settle: {} is already written (a restart after the close)",
                folder.display()
            );
        } else {
            opened.finish(start, &folder)?;
        }
        let closed = Closed {
            day,
            rows: rows.len() as u64,
            line_sum: rows.iter().fold(0u64, |s, r| s.wrapping_add(r.line)),
            foreign: self.day.foreign.len(),
            folder,
        };
        eprintln!(
            "settle: worker {k}/{p} closed {date}: {} rows, line sum {}, {} foreign messages, wrote {}",
            closed.rows,
            closed.line_sum,
            closed.foreign,
            closed.folder.display()
        );
        if options.stats {
            eprintln!("settle: {}", self.arrival.latency_line());
        }
        self.log.rotate(seq)?;
        self.day = OpenDay {
            last_seq: seq,
            ..Default::default()
        };
        self.arrival.end_day();
        self.closed.push(closed);
        Ok(())
    }

    /// Takes messages until `--once` is satisfied (or forever).
    async fn run(&mut self, consumer_stream: &jetstream::stream::Stream) -> Result<()> {
        let options = self.options;
        let name = nats::consumer_name(options.partition, options.partitions);
        let base = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: nats::subject(options.partition),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: ACK_WAIT,
            max_ack_pending: ACK_PENDING_MAX,
            ..Default::default()
        };
        loop {
            // The log, not the server, says where this partition stands:
            // the consumer is made afresh to deliver from the message after
            // the log's last one. A consumer kept from before a kill or a
            // lost subscription would deliver its unacknowledged messages
            // again only after ACK_WAIT, behind newer ones, and a message
            // that arrives after a later one (or after the close marker)
            // cannot be told from a copy by its sequence alone.
            let stream_last = nats::retry("cannot read the stream's state", || {
                consumer_stream.get_info()
            })
            .await
            .state
            .last_sequence;
            if stream_last < self.day.last_seq {
                // A server killed before it wrote what it had acked comes
                // back without the stream's tail, and numbers new messages
                // from there: they must not be skipped as copies. Rows that
                // come again are recognised by file and line instead.
                eprintln!(
                    "settle: the stream ends at sequence {stream_last}, before this worker's log ({}): the server lost messages; taking them again from there",
                    self.day.last_seq
                );
                self.day.last_seq = stream_last;
            }
            let config = consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: self.day.last_seq + 1,
                },
                ..base.clone()
            };
            let consumer: consumer::PullConsumer =
                nats::retry(&format!("cannot open consumer {name}"), || async {
                    let _ = consumer_stream.delete_consumer(&name).await;
                    consumer_stream.create_consumer(config.clone()).await
                })
                .await;
            let mut messages = nats::retry("cannot pull messages", || {
                consumer
                    .stream()
                    .max_messages_per_batch(BATCH_MAX)
                    .heartbeat(Duration::from_secs(2))
                    .expires(Duration::from_secs(10))
                    .messages()
            })
            .await;
            loop {
                tokio::select! {
                    biased;
                    done = async { (&mut self.syncing.as_mut().expect("a sync in flight").handle).await },
                        if self.syncing.is_some() =>
                    {
                        let last = self.syncing.take().and_then(|syncing| syncing.last);
                        synced(done, last).await?;
                        self.start_sync()?;
                    }
                    next = messages.next() => {
                        let first = match next {
                            Some(Ok(message)) => message,
                            Some(Err(error)) => {
                                eprintln!("settle: lost the server ({error}); pulling again");
                                self.settle_syncs().await?;
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                            None => {
                                self.settle_syncs().await?;
                                break;
                            }
                        };
                        let mut batch = vec![first];
                        // Whatever has already arrived joins the batch: one
                        // log sync for all of it.
                        while batch.len() < BATCH_MAX {
                            match tokio::time::timeout(Duration::ZERO, messages.next()).await {
                                Ok(Some(Ok(message))) => batch.push(message),
                                _ => break,
                            }
                        }
                        if self.take(batch).await? && options.once {
                            self.settle_syncs().await?;
                            return Ok(());
                        }
                        self.start_sync()?;
                    }
                }
            }
        }
    }

    /// Starts writing and syncing the log's new entries, unless a sync is
    /// in flight (the next starts when it is done).
    fn start_sync(&mut self) -> Result<()> {
        if self.syncing.is_some() || (self.unacked.is_none() && !self.log.has_pending()) {
            return Ok(());
        }
        let write = self.log.take_pending()?;
        self.syncing = Some(Syncing {
            handle: tokio::task::spawn_blocking(write),
            last: self.unacked.take(),
        });
        Ok(())
    }

    /// Makes every entry taken so far durable and acks it: waits for the
    /// sync in flight, then syncs the rest here.
    async fn settle_syncs(&mut self) -> Result<()> {
        if let Some(syncing) = self.syncing.take() {
            let done = syncing.handle.await;
            synced(done, syncing.last).await?;
        }
        self.log.sync()?;
        synced(Ok(Ok(())), self.unacked.take()).await
    }

    /// Takes a batch of messages into the log and the day (their acks
    /// follow the log's sync); a close marker closes the day once every
    /// entry before it is durable. True when a day was closed.
    async fn take(&mut self, batch: Vec<jetstream::Message>) -> Result<bool> {
        let mut closed = false;
        for message in batch {
            let Ok(seq) = message.info().map(|info| info.stream_sequence) else {
                continue; // Not a JetStream delivery: nothing to ack.
            };
            if seq <= self.day.last_seq {
                self.unacked = Some(message);
                continue;
            }
            let incoming = nats::classify(message.headers.as_ref(), &message.payload);
            let published_ns = match &incoming {
                Ok(Incoming::Row { published_ns, .. }) => *published_ns,
                _ => 0,
            };
            let Some(entry) = self.day.entry_for(
                seq,
                message.subject.as_str(),
                incoming,
                (self.options.partition, self.options.partitions),
            ) else {
                self.unacked = Some(message);
                continue;
            };
            self.log.append(&entry);
            match &entry {
                Entry::File { index, head, .. } => {
                    self.arrival.start_file(*index, head);
                }
                Entry::Row { row, .. } => {
                    self.arrival.fee_fen(row);
                    self.arrival.record_latency(published_ns);
                }
                _ => {}
            }
            let close = match entry {
                Entry::Close { seq, day } => Some((seq, day)),
                _ => None,
            };
            self.day.apply(entry);
            if let Some((seq, day)) = close {
                self.settle_syncs().await?;
                self.close(seq, day).await?;
                let _ = message.ack().await;
                closed = true;
                continue;
            }
            self.unacked = Some(message);
        }
        Ok(closed)
    }
}

fn log_path(options: &WorkerOptions) -> PathBuf {
    options.work.join(format!(
        "log-{}-of-{}",
        options.partition, options.partitions
    ))
}

/// Runs a worker (see the module's doc); returns the days it closed.
pub fn work(options: &WorkerOptions) -> Result<Vec<Closed>> {
    if options.partition >= options.partitions || options.partitions > super::PARTITIONS_MAX {
        return Err(Error::Usage(format!(
            "--partition must be below --of, and --of at most {}",
            super::PARTITIONS_MAX
        )));
    }
    std::fs::create_dir_all(&options.work)
        .map_err(|e| Error::io(format!("creating {}", options.work.display()), e))?;
    create_out(&options.out)?;
    let mut arrival = Arrival::new(&options.config, &options.merchants)?;
    let (log, entries) = Log::open(&log_path(options))?;
    let mut day = OpenDay::default();
    let resumed = !entries.is_empty();
    for entry in entries {
        if let Entry::File { index, head, .. } = &entry {
            arrival.start_file(*index, head);
        }
        day.apply(entry);
    }
    if resumed {
        eprintln!(
            "settle: worker {}/{} resumes from its log: {} rows, stream sequence {}",
            options.partition,
            options.partitions,
            day.rows.len(),
            day.last_seq
        );
    }
    let runtime = nats::runtime()?;
    runtime.block_on(async {
        let context = nats::connect(&options.server).await;
        let stream = nats::existing_stream(&context, &options.stream, options.partitions).await?;
        let facts = facts::ensure(&context, &options.stream).await;
        let pending_close = day.close;
        let mut worker = Worker {
            options,
            log,
            day,
            arrival,
            context,
            facts,
            closed: Vec::new(),
            syncing: None,
            unacked: None,
        };
        if let Some((seq, day)) = pending_close {
            worker.close(seq, day).await?;
            if options.once {
                return Ok(worker.closed);
            }
        }
        worker.run(&stream).await?;
        Ok(worker.closed)
    })
}

fn create_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(format!("creating {}", out.display()), e))
}
