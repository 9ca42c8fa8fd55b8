//! The facts the workers exchange at a close: each partition's
//! `local_start` for the day, on a second stream (`<STREAM>_FACTS`,
//! subject `facts.<D>.<K>`), so that every partition finishes with the same
//! start (the earliest of them).
//!
//! A fact's message id is `<D>/<K>`: a worker restarted after publishing
//! it publishes it again, and the server keeps one. A fact is read as the
//! last message of its subject, so a copy published after the duplicate
//! window is harmless. This module must not settle.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};

use super::nats;
use crate::calendar::{self, Day};

/// How long facts are kept: far longer than any close takes.
const FACTS_AGE_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest pause between two looks for the other partitions' facts.
const POLL_MAX: Duration = Duration::from_secs(1);

/// The facts stream of stream `name`.
pub fn stream_name(name: &str) -> String {
    format!("{name}_FACTS")
}

fn subject(day: Day, partition: u32) -> String {
    format!("facts.{}.{partition}", calendar::format_date(day))
}

/// Opens (or creates) the facts stream of stream `name`.
pub async fn ensure(context: &jetstream::Context, name: &str) -> stream::Stream {
    let config = stream::Config {
        name: stream_name(name),
        subjects: vec!["facts.>".to_string()],
        storage: stream::StorageType::File,
        max_age: FACTS_AGE_MAX,
        ..Default::default()
    };
    nats::retry("cannot open or create the facts stream", || {
        context.get_or_create_stream(config.clone())
    })
    .await
}

/// Publishes partition `partition`'s start for `day` (retrying until the
/// server has it).
pub async fn publish(
    context: &jetstream::Context,
    day: Day,
    partition: u32,
    local_start: Option<Day>,
) {
    let body = local_start.map_or("none".to_string(), calendar::format_date);
    nats::retry("cannot publish this partition's start", || {
        let mut headers = HeaderMap::new();
        headers.insert(
            nats::MSG_ID,
            format!("{}/{partition}", calendar::format_date(day)),
        );
        nats::publish_acked(
            context,
            subject(day, partition),
            headers,
            body.clone().into_bytes(),
        )
    })
    .await;
}

/// Waits until every partition's fact for `day` is in, looking with a
/// growing pause (at most `POLL_MAX`), and returns them in partition order.
pub async fn wait_all(facts: &stream::Stream, day: Day, partitions: u32) -> Vec<Option<Day>> {
    let mut starts = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let mut pause = Duration::from_millis(5);
        let mut said = false;
        loop {
            match facts
                .get_last_raw_message_by_subject(&subject(day, partition))
                .await
            {
                Ok(message) => {
                    let text = String::from_utf8_lossy(&message.payload);
                    starts.push(calendar::parse_date(text.trim().as_bytes()));
                    break;
                }
                Err(error) => {
                    if !said && pause >= Duration::from_millis(500) {
                        eprintln!(
                            "settle: waiting for partition {partition}'s start of {} ({error})",
                            calendar::format_date(day)
                        );
                        said = true;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(POLL_MAX);
                }
            }
        }
    }
    starts
}
