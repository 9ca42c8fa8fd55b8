//! What the publisher and the workers agree on over NATS JetStream
//! (docs/STREAM.md, "Messages"): the stream's shape, the subjects, the
//! headers of each kind of message and how a received message is read back,
//! and the connection with its retry and backoff.
//!
//! This module owns the wire format and nothing else: it must not judge
//! rows, hold worker state or write files.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};

/// The stream's name when `--stream` is not given.
pub const STREAM_DEFAULT: &str = "SETTLE";
/// The server's duplicate window when `--duplicate-window-s` is not given.
pub const DUPLICATE_WINDOW_S_DEFAULT: u64 = 120;
/// The longest wait between two tries to reach the server.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// Header: what a message is (`file`, `row` or `close`).
pub const KIND: &str = "Settle-Kind";
/// Header: the input file's number in its publisher's list, from 0.
pub const FILE: &str = "Settle-File";
/// Header of a `file` message: the path as given to the publisher.
pub const NAME: &str = "Settle-Name";
/// Header of a `file` message: SHA-256 of the whole file, lower-case hex.
pub const SHA256: &str = "Settle-Sha256";
/// Header of a `row` message: the physical line its record starts on.
pub const LINE: &str = "Settle-Line";
/// Header of a `row` message that is a duplicate (step 3): `FILE:LINE` of
/// the first row with its `txn_id`.
pub const DUPLICATE_OF: &str = "Settle-Duplicate-Of";
/// Header of a `row` message: when it was published, in ns since the Unix
/// epoch, for the worker's latency figures.
pub const PUBLISHED_NS: &str = "Settle-Published-Ns";
/// Header of a `close` message: the business day closed, YYYY-MM-DD.
pub const DAY: &str = "Settle-Day";
/// The server's de-duplication header.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The subject of partition `k`'s messages.
pub fn subject(partition: u32) -> String {
    format!("txn.{partition}")
}

/// The consumer name of a partition: one durable consumer per partition
/// and partition count, so that a stream re-created with another P never
/// meets an old consumer.
pub fn consumer_name(partition: u32, partitions: u32) -> String {
    format!("settle-{partition}-of-{partitions}")
}

/// The stream's description, which records its partition count.
pub fn description(partitions: u32) -> String {
    format!("settle partitions={partitions}")
}

/// The partition count a stream's description records.
pub fn partitions_of(description: Option<&str>) -> Option<u32> {
    description?
        .strip_prefix("settle partitions=")?
        .parse()
        .ok()
}

/// The first 16 hex digits of a file's SHA-256: enough, in a message id,
/// to tell two inputs apart within the server's duplicate window.
pub fn sha_prefix(sha256: &str) -> &str {
    &sha256[..sha256.len().min(16)]
}

/// A message of ours as a worker or a resuming publisher reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An input file's head, sent to every partition before its rows.
    File {
        index: u32,
        name: String,
        sha256: String,
        head: Vec<u8>,
    },
    /// One record of an input file.
    Row {
        file_index: u32,
        line: u64,
        duplicate_of: Option<(u32, u64)>,
        published_ns: u64,
        /// The SHA-256 prefix of its file, from the message id.
        sha_prefix: String,
        bytes: Vec<u8>,
    },
    /// The end of business day `day`.
    Close { day: Day },
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> std::result::Result<&'h str, String> {
    headers
        .get(name)
        .map(|value| value.as_str())
        .ok_or_else(|| format!("no {name} header"))
}

fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> std::result::Result<T, String> {
    let text = header(headers, name)?;
    text.parse()
        .map_err(|_| format!("{name} header {text:?} is not a number"))
}

/// Reads a received message; `Err` says why it is not one of ours (a
/// foreign or damaged message, which the worker rejects and acks).
pub fn classify(
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> std::result::Result<Incoming, String> {
    let headers = headers.ok_or("no headers")?;
    match header(headers, KIND)? {
        "file" => Ok(Incoming::File {
            index: number(headers, FILE)?,
            name: header(headers, NAME)?.to_string(),
            sha256: header(headers, SHA256)?.to_string(),
            head: payload.to_vec(),
        }),
        "row" => {
            let duplicate_of = match headers.get(DUPLICATE_OF) {
                None => None,
                Some(value) => {
                    let text = value.as_str();
                    let parsed = text
                        .split_once(':')
                        .and_then(|(f, l)| Some((f.parse().ok()?, l.parse().ok()?)));
                    Some(parsed.ok_or_else(|| {
                        format!("{DUPLICATE_OF} header {text:?} is not FILE:LINE")
                    })?)
                }
            };
            let id = header(headers, MSG_ID)?;
            Ok(Incoming::Row {
                file_index: number(headers, FILE)?,
                line: number(headers, LINE)?,
                duplicate_of,
                published_ns: number(headers, PUBLISHED_NS).unwrap_or(0),
                sha_prefix: id.split('.').next().unwrap_or_default().to_string(),
                bytes: payload.to_vec(),
            })
        }
        "close" => {
            let text = header(headers, DAY)?;
            let day = calendar::parse_date(text.as_bytes())
                .ok_or_else(|| format!("{DAY} header {text:?} is not a date"))?;
            Ok(Incoming::Close { day })
        }
        other => Err(format!("{KIND} header {other:?} is not file, row or close")),
    }
}

/// The headers of a `file` message.
pub fn file_headers(index: u32, name: &str, sha256: &str, partition: u32) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "file");
    headers.insert(FILE, index.to_string());
    headers.insert(NAME, name);
    headers.insert(SHA256, sha256);
    headers.insert(
        MSG_ID,
        format!("{}.{index}.h{partition}", sha_prefix(sha256)),
    );
    headers
}

/// The headers of a `row` message.
pub fn row_headers(
    index: u32,
    sha256: &str,
    line: u64,
    duplicate_of: Option<(u32, u64)>,
    published_ns: u64,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "row");
    headers.insert(FILE, index.to_string());
    headers.insert(LINE, line.to_string());
    if let Some((file, first_line)) = duplicate_of {
        headers.insert(DUPLICATE_OF, format!("{file}:{first_line}"));
    }
    headers.insert(PUBLISHED_NS, published_ns.to_string());
    headers.insert(MSG_ID, format!("{}.{index}.{line}", sha_prefix(sha256)));
    headers
}

/// The headers of a `close` message to one partition.
pub fn close_headers(day: Day, partition: u32) -> HeaderMap {
    let date = calendar::format_date(day);
    let mut headers = HeaderMap::new();
    headers.insert(KIND, "close");
    headers.insert(DAY, date.as_str());
    headers.insert(MSG_ID, format!("close.{date}.{partition}"));
    headers
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A single-threaded runtime: each command drives one connection, and the
/// work between messages is CPU-bound and sequential by design.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
}

/// Retries `attempt` until it succeeds, saying on stderr what failed and
/// waiting twice as long each time, at most `BACKOFF_MAX`.
pub async fn retry<T, E: Display, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let mut wait = BACKOFF_FIRST;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => {
                eprintln!(
                    "settle: {what}: {error}; retrying in {:.1} s",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Connects to `url`, retrying with backoff while the server cannot be
/// reached; the client then reconnects by itself after a server restart.
pub async fn connect(url: &str) -> jetstream::Context {
    let client = retry(&format!("cannot reach the NATS server at {url}"), || {
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url)
    })
    .await;
    jetstream::new(client)
}

/// The stream `name`, created with `partitions` partitions when it does not
/// exist; an existing stream with another partition count is a usage
/// error (exit 2): P is fixed when the stream is created.
pub async fn ensure_stream(
    context: &jetstream::Context,
    name: &str,
    partitions: u32,
    duplicate_window: Duration,
) -> Result<stream::Stream> {
    let config = stream::Config {
        name: name.to_string(),
        subjects: vec!["txn.*".to_string()],
        storage: stream::StorageType::File,
        duplicate_window,
        description: Some(description(partitions)),
        ..Default::default()
    };
    let stream = retry(&format!("cannot open or create stream {name}"), || {
        context.get_or_create_stream(config.clone())
    })
    .await;
    check_partitions(&stream, name, partitions)?;
    Ok(stream)
}

/// The existing stream `name`, checked to have `partitions` partitions.
/// Until a publisher creates it the stream is looked for every
/// `STREAM_POLL` (a worker started first takes the first rows at once);
/// a server that cannot be reached is retried with backoff.
pub async fn existing_stream(
    context: &jetstream::Context,
    name: &str,
    partitions: u32,
) -> Result<stream::Stream> {
    const STREAM_POLL: Duration = Duration::from_millis(20);
    let mut wait = BACKOFF_FIRST;
    let mut said = false;
    let stream = loop {
        match context.get_stream(name).await {
            Ok(stream) => break stream,
            Err(error) => {
                let missing = matches!(
                    error.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(e) if e.code() == 404
                );
                if missing {
                    if !said {
                        eprintln!("settle: waiting for stream {name} to be created");
                        said = true;
                    }
                    tokio::time::sleep(STREAM_POLL).await;
                } else {
                    eprintln!(
                        "settle: cannot open stream {name}: {error}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    check_partitions(&stream, name, partitions)?;
    Ok(stream)
}

fn check_partitions(stream: &stream::Stream, name: &str, partitions: u32) -> Result<()> {
    let recorded = partitions_of(stream.cached_info().config.description.as_deref());
    if recorded != Some(partitions) {
        return Err(Error::Usage(format!(
            "stream {name} was created with {}, not {partitions} partitions",
            recorded.map_or("no partition count".to_string(), |p| p.to_string())
        )));
    }
    Ok(())
}

/// Publishes a message and waits for the server's ack (for the few
/// messages that are not pipelined: close markers and facts).
pub async fn publish_acked(
    context: &jetstream::Context,
    subject: String,
    headers: HeaderMap,
    payload: Vec<u8>,
) -> std::result::Result<(), String> {
    let ack = context
        .publish_with_headers(subject, headers, payload.into())
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let headers = row_headers(1, "abcdef0123456789ffff", 42, Some((0, 7)), 99);
        let read = classify(Some(&headers), b"a,b\n").unwrap();
        assert_eq!(
            read,
            Incoming::Row {
                file_index: 1,
                line: 42,
                duplicate_of: Some((0, 7)),
                published_ns: 99,
                sha_prefix: "abcdef0123456789".into(),
                bytes: b"a,b\n".to_vec(),
            }
        );
        let headers = close_headers(calendar::parse_date(b"2026-11-02").unwrap(), 3);
        assert!(matches!(
            classify(Some(&headers), b""),
            Ok(Incoming::Close { .. })
        ));
        assert!(classify(None, b"garbage").is_err());
        assert_eq!(partitions_of(Some(&description(4))), Some(4));
        assert_eq!(partitions_of(Some("other")), None);
    }
}
