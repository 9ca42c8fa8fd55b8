//! `settle publish`: reads transaction files (or stdin) and publishes
//! every record to its merchant's partition of a JetStream stream, in file
//! order, with the publisher's step-3 verdict (`judge`), pipelined (a
//! bounded window of unacknowledged publishes) and resumable.
//!
//! Resuming: the stream keeps the messages of one connection in the order
//! they were sent, so its last message marks how far a killed publisher
//! got; a restarted publisher on the same input re-judges the rows up to
//! it without publishing them (the verdicts of later rows depend on them)
//! and continues after it. Message ids let the server drop a publish that
//! was stored although its ack was lost. This module must not settle.

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use sha2::{Digest, Sha256};

use super::judge::Judge;
use super::nats::{self, Incoming};
use super::partition_of;
use super::records::Records;
use crate::calendar::Day;
use crate::error::{Error, Result};

/// The most bytes `-` reads from stdin: the publisher holds an input whole
/// (its SHA-256 goes into every `file` message before the first row).
pub const STDIN_BYTES_MAX: usize = 8 << 30;
/// The default number of publishes awaiting the server's ack.
pub const WINDOW_DEFAULT: usize = 4096;

/// What to publish, and where.
pub struct PublishOptions {
    pub server: String,
    pub stream: String,
    pub partitions: u32,
    pub config: PathBuf,
    /// Paths, or `-` for stdin, in order.
    pub files: Vec<String>,
    /// Rows per second to pace at; `None` publishes as fast as acks allow.
    pub rate: Option<u64>,
    pub window: usize,
    /// Publish a close marker for this day after the rows.
    pub close: Option<Day>,
    pub duplicate_window: Duration,
}

/// What a publish did.
#[derive(Debug, Default)]
pub struct PublishSummary {
    pub files: usize,
    pub rows_published: u64,
    /// Rows a previous, interrupted publisher had already stored.
    pub rows_resumed: u64,
    /// Messages the server dropped as copies of ones it holds (same
    /// message id within its duplicate window).
    pub duplicates: u64,
}

/// An input read whole.
struct Input {
    name: String,
    bytes: Vec<u8>,
    sha256: String,
}

fn read_input(name: &str) -> Result<Input> {
    let bytes = if name == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(STDIN_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading stdin", e))?;
        if bytes.len() > STDIN_BYTES_MAX {
            return Err(Error::input(
                "-",
                format!(
                    "stdin holds more than {STDIN_BYTES_MAX} bytes, the publisher's limit: publish files"
                ),
            ));
        }
        bytes
    } else {
        std::fs::read(name).map_err(|e| Error::io(format!("reading {name}"), e))?
    };
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Input {
        name: name.to_string(),
        bytes,
        sha256,
    })
}

/// Where a message stands in the publisher's order: a file's heads (one
/// per partition) come before its rows, files in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Head { file: u32, partition: u32 },
    Row { file: u32, line: u64 },
}

/// The last message a previous publisher of the same input stored, if the
/// stream's last message is one.
async fn resume_point(
    context: &jetstream::Context,
    name: &str,
    inputs: &[Input],
) -> Result<Option<Position>> {
    let stream = nats::retry("cannot read the stream's state", || {
        context.get_stream(name)
    })
    .await;
    let last = stream.cached_info().state.last_sequence;
    if last == 0 {
        return Ok(None);
    }
    let message = nats::retry("cannot read the stream's last message", || {
        stream.get_raw_message(last)
    })
    .await;
    let position = match nats::classify(Some(&message.headers), &message.payload) {
        Ok(Incoming::File {
            index,
            name,
            sha256,
            ..
        }) => {
            let same = inputs
                .get(index as usize)
                .is_some_and(|input| input.name == name && input.sha256 == sha256);
            let partition = message
                .subject
                .strip_prefix("txn.")
                .and_then(|p| p.parse().ok());
            match (same, partition) {
                (true, Some(partition)) => Some(Position::Head {
                    file: index,
                    partition,
                }),
                _ => None,
            }
        }
        Ok(Incoming::Row {
            file_index,
            line,
            sha_prefix,
            ..
        }) => inputs
            .get(file_index as usize)
            .filter(|input| nats::sha_prefix(&input.sha256) == sha_prefix)
            .map(|_| Position::Row {
                file: file_index,
                line,
            }),
        _ => None,
    };
    Ok(position)
}

/// How many messages before the stream's last a resumed publisher sends
/// again: twice the window, since after a broken connection at most a
/// window's worth were in flight and at most a window more sent after them.
fn resend_margin(window: usize) -> u64 {
    2 * window.max(WINDOW_DEFAULT) as u64
}

/// The number of `position` in the publisher's order of messages, from 1.
fn ordinal_of(inputs: &[Input], partitions: u32, position: Position) -> Result<u64> {
    let mut ordinal = 0u64;
    for (file, input) in (0u32..).zip(inputs) {
        for partition in 0..partitions {
            ordinal += 1;
            if position == (Position::Head { file, partition }) {
                return Ok(ordinal);
            }
        }
        let mut records = Records::new(&input.bytes, &input.name)?;
        while let Some(cut) = records.next() {
            ordinal += 1;
            if position
                == (Position::Row {
                    file,
                    line: cut.line,
                })
            {
                return Ok(ordinal);
            }
        }
    }
    // The stream's last message names a line the input lacks: publish it
    // all again (the server drops what it holds).
    Ok(0)
}

/// Publishes with at most `window` acks outstanding, paced at `rate`.
struct Pipe {
    context: jetstream::Context,
    window: usize,
    pending: VecDeque<PublishAckFuture>,
    rate: Option<u64>,
    started: Instant,
    rows: u64,
    duplicates: u64,
}

impl Pipe {
    async fn send(&mut self, subject: String, headers: HeaderMap, payload: Vec<u8>) -> Result<()> {
        while self.pending.len() >= self.window {
            let oldest = self.pending.pop_front().expect("a pending publish");
            self.acked(oldest).await?;
        }
        let ack = self
            .context
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(publish_failed)?;
        self.pending.push_back(ack);
        Ok(())
    }

    /// Waits until row `self.rows` is due at the pace asked for.
    async fn pace(&mut self) {
        if let Some(rate) = self.rate {
            let due = Duration::from_nanos(self.rows.saturating_mul(1_000_000_000) / rate.max(1));
            let elapsed = self.started.elapsed();
            // Sleeping is worth it only a millisecond ahead: the timer's
            // granularity.
            if due > elapsed + Duration::from_millis(1) {
                tokio::time::sleep(due - elapsed).await;
            } else {
                // Let the connection's task write what is queued: on this
                // single-threaded runtime it runs only when the publisher
                // waits, and a paced row should leave when it is stamped.
                tokio::task::yield_now().await;
            }
        }
        self.rows += 1;
    }

    async fn acked(&mut self, ack: PublishAckFuture) -> Result<()> {
        if ack.await.map_err(publish_failed)?.duplicate {
            self.duplicates += 1;
        }
        Ok(())
    }

    /// Waits for every ack; the count of duplicates since the last drain.
    async fn drain(&mut self) -> Result<u64> {
        while let Some(ack) = self.pending.pop_front() {
            self.acked(ack).await?;
        }
        Ok(std::mem::take(&mut self.duplicates))
    }
}

fn publish_failed(error: impl std::fmt::Display) -> Error {
    Error::io(
        "publishing to the NATS server",
        std::io::Error::other(error.to_string()),
    )
}

/// Reads the inputs and publishes them (see the module's doc).
pub fn publish(options: &PublishOptions) -> Result<PublishSummary> {
    if !(1..=super::PARTITIONS_MAX).contains(&options.partitions) {
        return Err(Error::Usage(format!(
            "--partitions must be 1 to {}",
            super::PARTITIONS_MAX
        )));
    }
    let mut judge = Judge::with_config(&options.config)?;
    let inputs = options
        .files
        .iter()
        .map(|name| read_input(name))
        .collect::<Result<Vec<_>>>()?;
    // Every header is read before the first publish: a bad input stops
    // the publisher before the stream holds any of it.
    for input in &inputs {
        Records::new(&input.bytes, &input.name)?;
    }
    let runtime = nats::runtime()?;
    runtime.block_on(async {
        let context = nats::connect(&options.server).await;
        nats::ensure_stream(
            &context,
            &options.stream,
            options.partitions,
            options.duplicate_window,
        )
        .await?;
        let resume = resume_point(&context, &options.stream, &inputs).await?;
        match resume {
            Some(Position::Row { file, line }) => eprintln!(
                "settle: the stream ends at line {line} of {}: resuming after it",
                inputs[file as usize].name
            ),
            Some(Position::Head { file, partition }) => eprintln!(
                "settle: the stream ends at the head of {} to partition {partition}: resuming after it",
                inputs[file as usize].name
            ),
            None => {}
        }
        // The messages lost in a broken connection (a server restart) are
        // at most a window's worth, all before the last stored message, so
        // the last RESEND_MARGIN messages up to it are sent again: the
        // server drops those it holds by their ids (within its duplicate
        // window; after it, the workers recognise the copies).
        let resend_from = match resume {
            Some(position) => ordinal_of(&inputs, options.partitions, position)?
                .saturating_sub(resend_margin(options.window)),
            None => 0,
        };
        let mut ordinal = 0u64;
        let mut done = |_position: Position| {
            ordinal += 1;
            ordinal <= resend_from
        };
        let mut pipe = Pipe {
            context: context.clone(),
            window: options.window.max(1),
            pending: VecDeque::new(),
            rate: options.rate,
            started: Instant::now(),
            rows: 0,
            duplicates: 0,
        };
        let mut summary = PublishSummary {
            files: inputs.len(),
            ..Default::default()
        };
        for (file, input) in (0u32..).zip(&inputs) {
            let mut records = Records::new(&input.bytes, &input.name)?;
            judge.start_file(file, &records.header);
            let merchant_column = records.header.columns[1].expect("merchant_id is required");
            let head = records.head(&input.name, input.sha256.clone()).head;
            for partition in 0..options.partitions {
                if done(Position::Head { file, partition }) {
                    continue;
                }
                let headers = nats::file_headers(file, &input.name, &input.sha256, partition);
                pipe.send(nats::subject(partition), headers, head.clone())
                    .await?;
            }
            while let Some(cut) = records.next() {
                let verdict = judge.judge(file, cut.line, cut.record, cut.bytes)?;
                if done(Position::Row {
                    file,
                    line: cut.line,
                }) {
                    summary.rows_resumed += 1;
                    continue;
                }
                // The merchant_id field wherever the record has one, even
                // in a malformed row (rejected wherever it goes), the empty
                // id where it has none: what the partition's own check
                // (stream::restrict) reads.
                let merchant = cut.record.field_or_empty(Some(merchant_column));
                let partition = partition_of(merchant, options.partitions);
                let (line, bytes) = (cut.line, cut.bytes.to_vec());
                pipe.pace().await;
                let headers = nats::row_headers(file, &input.sha256, line, verdict, nats::now_ns());
                pipe.send(nats::subject(partition), headers, bytes).await?;
                summary.rows_published += 1;
            }
        }
        // Every row is stored before a close marker is sent: a row lost in
        // a broken connection must not come after the close of its day.
        summary.duplicates = pipe.drain().await?;
        if let Some(day) = options.close {
            for partition in 0..options.partitions {
                pipe.send(
                    nats::subject(partition),
                    nats::close_headers(day, partition),
                    Vec::new(),
                )
                .await?;
            }
        }
        summary.duplicates += pipe.drain().await?;
        Ok(summary)
    })
}

/// `settle close`: waits `grace`, then publishes the close marker of `day`
/// to every partition of the stream.
pub fn close(server: &str, stream: &str, day: Day, grace: Duration) -> Result<u32> {
    let runtime = nats::runtime()?;
    runtime.block_on(async {
        let context = nats::connect(server).await;
        let found = nats::retry(&format!("cannot open stream {stream}"), || {
            context.get_stream(stream)
        })
        .await;
        let partitions = nats::partitions_of(found.cached_info().config.description.as_deref())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "stream {stream} has no partition count in its description"
                ))
            })?;
        tokio::time::sleep(grace).await;
        for partition in 0..partitions {
            nats::retry("cannot publish the close marker", || {
                nats::publish_acked(
                    &context,
                    nats::subject(partition),
                    nats::close_headers(day, partition),
                    Vec::new(),
                )
            })
            .await;
        }
        Ok(partitions)
    })
}
