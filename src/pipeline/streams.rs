//! Parsing the inputs that arrive as streams (stdin, compressed files):
//! reader threads cut them into blocks at record boundaries
//! (`ingest::stream`), the parse workers parse the blocks as they arrive,
//! from any stream, and each stream's rows are put back in order.
//!
//! A few readers take the streams one after another, each opening its
//! stream only when it takes it, so that hundreds of compressed files need
//! a few decoders at a time and keep every worker busy even when each file
//! is smaller than a block. This module must not decide a row's fate: it
//! hands rows to `parse` and puts the results in file order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ingest::csv;
use crate::ingest::header::Header;
use crate::ingest::progress::Progress;
use crate::ingest::stream::{Block, Stream, StreamDigest};
use crate::ingest::txn::{RowContext, Txn};
use crate::pipeline::parse::{ChunkJob, ChunkOut, Input, Parsed, TxnFile};
use crate::pipeline::stats::ChunkLatencies;

/// Blocks read ahead of the parse workers, all streams together.
const STREAM_BLOCKS_QUEUED_MAX: usize = 8;
/// Streams read at once, each by a thread of its own with its decoder: a
/// few keep the workers fed, whatever the number of files.
const STREAM_READERS_MAX: usize = 8;

/// One stream's parsed blocks, put in order as they finish: each block's
/// rows move into the stream's vector as soon as the blocks before it have,
/// and its own vector is freed, so that rows are never held twice.
#[derive(Default)]
struct InOrder {
    next: u32,
    /// Blocks that finished before an earlier one, with their arena's
    /// number for now.
    waiting: BTreeMap<u32, (u32, ChunkOut, Vec<Txn>)>,
    txns: Vec<Txn>,
    /// The stream's blocks in order, each with its arena's number for now.
    outs: Vec<(u32, ChunkOut)>,
}

impl InOrder {
    fn add(&mut self, number: u32, chunk: u32, out: ChunkOut, txns: Vec<Txn>) {
        self.waiting.insert(number, (chunk, out, txns));
        while let Some((chunk, out, txns)) = self.waiting.remove(&self.next) {
            if self.txns.is_empty() {
                self.txns = txns;
            } else {
                self.txns.extend_from_slice(&txns);
            }
            self.outs.push((chunk, out));
            self.next += 1;
        }
    }
}

/// One stream to read: its file's index, the stream and its header.
#[derive(Clone, Copy)]
struct StreamFile<'a> {
    file_index: u32,
    stream: &'a Stream,
    header: &'a Header,
}

/// Parses every stream of `files` and puts its rows, rejects, counts and
/// digest into `parsed`, in file order among the rows already there.
pub(super) fn parse_streams(
    parsed: &mut Parsed,
    files: &[TxnFile],
    context: &RowContext,
    block_bytes: usize,
    latencies: &ChunkLatencies,
    progress: Option<&Progress>,
) -> Result<()> {
    let streams: Vec<StreamFile> = files
        .iter()
        .enumerate()
        .filter_map(|(file_index, file)| match file.input {
            Input::Stream(stream) => Some(StreamFile {
                file_index: file_index as u32,
                stream,
                header: file.header,
            }),
            Input::Bytes(_) => None,
        })
        .collect();
    if streams.is_empty() {
        return Ok(());
    }
    let readers = streams
        .len()
        .min(rayon::current_num_threads())
        .clamp(1, STREAM_READERS_MAX);
    let first_chunk = parsed.arenas.len() as u32;
    // Arenas are numbered as readers send their blocks, so that with one
    // reader the numbers are already in (stream, block) order.
    let next_chunk = AtomicU32::new(first_chunk);
    let next_stream = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let in_order: Vec<Mutex<InOrder>> = streams.iter().map(|_| Mutex::default()).collect();
    let (send, receive) =
        crossbeam_channel::bounded::<(usize, u32, Block)>(STREAM_BLOCKS_QUEUED_MAX);
    let read = |send: crossbeam_channel::Sender<(usize, u32, Block)>| {
        let mut digests = Vec::new();
        loop {
            let k = next_stream.fetch_add(1, Ordering::Relaxed);
            let Some(file) = streams.get(k).filter(|_| !failed.load(Ordering::Relaxed)) else {
                return Ok(digests);
            };
            let mut send_block = |block: Block| {
                let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                !failed.load(Ordering::Relaxed) && send.send((k, chunk, block)).is_ok()
            };
            let header = file.header;
            match file.stream.read_blocks(
                header.data_start,
                header.lines_before_data,
                block_bytes,
                &mut send_block,
            ) {
                Ok(digest) => {
                    if let Some(progress) = progress {
                        progress.finish_file(file.file_index as usize);
                    }
                    digests.push((k, digest));
                }
                Err(error) => {
                    // The other readers stop at their next block.
                    failed.store(true, Ordering::Relaxed);
                    return Err((k, error));
                }
            }
        }
    };
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                let send = send.clone();
                scope.spawn(move || read(send))
            })
            .collect();
        drop(send);
        receive
            .into_iter()
            .par_bridge()
            .for_each(|(k, chunk, block)| {
                let file = streams[k];
                let started = std::time::Instant::now();
                let bytes = block.bytes.as_slice();
                let lines = csv::count_line_ends(bytes, 0, bytes.len()) as usize + 1;
                let mut slots = vec![Txn::PLACEHOLDER; lines];
                let job = ChunkJob {
                    file_index: file.file_index,
                    bytes,
                    source: None,
                    header: file.header,
                    start: 0,
                    limit: bytes.len(),
                };
                let mut out = job.parse(0, chunk, context, &mut slots);
                out.shift_to_physical_lines(&mut slots, block.line_ends_before);
                slots.truncate(out.txn_count);
                latencies.record(started.elapsed());
                if let Some(progress) = progress {
                    progress.add_rows(out.rows);
                }
                // The lock is taken once per block (megabytes), never per row.
                in_order[k]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .add(block.number, chunk, out, slots);
            });
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a stream reader does not panic"))
            .collect::<Vec<std::result::Result<Vec<(usize, StreamDigest)>, (usize, Error)>>>()
    });
    let mut digests: Vec<Option<StreamDigest>> = vec![None; streams.len()];
    // Of several failures, the first stream's is reported, whichever
    // reader saw its own first.
    let mut first_error: Option<(usize, Error)> = None;
    for outcome in outcomes {
        match outcome {
            Ok(read) => read
                .into_iter()
                .for_each(|(k, digest)| digests[k] = Some(digest)),
            Err((k, error)) => {
                if first_error.as_ref().is_none_or(|(first, _)| k < *first) {
                    first_error = Some((k, error));
                }
            }
        }
    }
    if let Some((_, error)) = first_error {
        return Err(error);
    }
    let in_order: Vec<InOrder> = in_order
        .into_iter()
        .map(|order| {
            order
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
        .collect();
    place_in_file_order(parsed, &streams, in_order, digests, first_chunk);
    Ok(())
}

/// Moves each stream's rows among the rows of the mapped files, in file
/// order, and numbers the streams' arenas in (stream, block) order.
fn place_in_file_order(
    parsed: &mut Parsed,
    streams: &[StreamFile],
    in_order: Vec<InOrder>,
    digests: Vec<Option<StreamDigest>>,
    first_chunk: u32,
) {
    // `renumber[provisional - first_chunk]` is the arena's final number.
    let blocks: usize = in_order.iter().map(|order| order.outs.len()).sum();
    let mut renumber = vec![0u32; blocks];
    let mapped = std::mem::take(&mut parsed.txns);
    let mut taken = 0;
    let mut txns: Vec<Txn> = Vec::new();
    for ((file, order), digest) in streams.iter().zip(in_order).zip(digests) {
        assert!(order.waiting.is_empty(), "every block was put in order");
        let before =
            taken + mapped[taken..].partition_point(|t| u32::from(t.file_index) < file.file_index);
        append(&mut txns, &mapped[taken..before]);
        taken = before;
        if txns.is_empty() {
            // The usual case, one stream or streams only: the rows move,
            // uncopied.
            txns = order.txns;
        } else {
            append(&mut txns, &order.txns);
        }
        let index = file.file_index as usize;
        for (provisional, out) in order.outs {
            renumber[(provisional - first_chunk) as usize] = parsed.arenas.len() as u32;
            parsed.rows_read_per_file[index] += out.rows;
            parsed.rejects.extend(out.rejects);
            parsed.arenas.push(out.arena);
        }
        parsed.streamed.push((
            file.file_index,
            digest.expect("a stream read whole has its digest"),
        ));
    }
    append(&mut txns, &mapped[taken..]);
    drop(mapped);
    let in_place = renumber
        .iter()
        .enumerate()
        .all(|(k, &number)| number as usize == first_chunk as usize + k);
    if !in_place {
        txns.par_iter_mut()
            .filter(|t| t.ids.chunk >= first_chunk)
            .for_each(|t| t.ids.chunk = renumber[(t.ids.chunk - first_chunk) as usize]);
    }
    parsed.txns = txns;
}

fn append(txns: &mut Vec<Txn>, more: &[Txn]) {
    if !more.is_empty() {
        txns.extend_from_slice(more);
    }
}
