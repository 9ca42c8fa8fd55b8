//! Parallel parsing of transaction files in chunks.
//!
//! Each file is cut into chunks at line starts; a cut may fall inside a
//! quoted field, so each chunk is parsed speculatively and then checked in
//! order: chunk i is right only if its first record starts exactly where
//! chunk i−1 stopped. A wrong chunk is parsed again from that position.
//! Line numbers come from per-chunk line-end counts, fixed up in order.
//!
//! Streams (stdin, compressed files) are cut at exact record boundaries by
//! reader threads (`ingest::stream`); `streams` parses their blocks as they
//! arrive and puts them in order.

use rayon::prelude::*;

use crate::config::limits;
use crate::error::Result;
use crate::ingest::csv::{self, Record, Tokenizer};
use crate::ingest::progress::Progress;
use crate::ingest::stream::{Stream, StreamDigest};
use crate::ingest::txn::{self, MerchantBatch, RowContext, Txn, TxnColumns};
use crate::ingest::{Reject, Source, header::Header};
use crate::pipeline::stats::ChunkLatencies;
use crate::split;

/// Where a transactions file's bytes come from.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// All of its bytes, mapped or read.
    Bytes(&'a Source),
    /// Stdin: its header has been read; the rest streams while parsing.
    Stream(&'a Stream),
}

/// One transactions file, with its header already read.
pub struct TxnFile<'a> {
    /// The path as given, for messages.
    pub name: &'a str,
    pub input: Input<'a>,
    pub header: &'a Header,
}

/// What parsing all files gave: transactions that passed steps 1 and 2 in
/// file order, the ids they point into, and the rows rejected so far.
pub struct Parsed {
    pub txns: Vec<Txn>,
    pub arenas: Vec<Vec<u8>>,
    pub rejects: Vec<Reject>,
    pub rows_read_per_file: Vec<u64>,
    /// The digest of each streamed file, by file index, sorted by it.
    pub streamed: Vec<(u32, StreamDigest)>,
}

impl Parsed {
    fn ids(&self, txn: &Txn) -> [&[u8]; 4] {
        let arena = &self.arenas[txn.ids.chunk as usize];
        txn.ids.ranges().map(|range| &arena[range])
    }

    /// Read for every row that goes into the state's index, and for every
    /// id compared while linking: one range, not all four of `ids`, whose
    /// bounds checks the compiler cannot drop.
    pub fn txn_id(&self, txn: &Txn) -> &[u8] {
        &self.arenas[txn.ids.chunk as usize][txn.ids.txn_id_range()]
    }

    pub fn orig_txn_id(&self, txn: &Txn) -> &[u8] {
        &self.arenas[txn.ids.chunk as usize][txn.ids.orig_range()]
    }

    /// Empty unless the run keeps terminal ids (`Plan::terminal_ids`).
    pub fn terminal_id(&self, txn: &Txn) -> &[u8] {
        self.ids(txn)[2]
    }

    /// The `merchant_id` of a row whose merchant is not in master data.
    pub fn unknown_merchant_id(&self, txn: &Txn) -> &[u8] {
        self.ids(txn)[3]
    }
}

pub(super) struct ChunkOut {
    /// Rows written at the start of the chunk's slots.
    pub(super) txn_count: usize,
    pub(super) rejects: Vec<Reject>,
    pub(super) arena: Vec<u8>,
    pub(super) rows: u64,
    /// Where the chunk's first record starts (after blank lines).
    first_record: usize,
    /// Line ends between the chunk's start and its first record.
    line_ends_to_first_record: u64,
    /// Where the chunk stopped: the first record start at or after the next
    /// chunk's start.
    stop: usize,
    /// Line ends between the chunk's start and `stop`.
    line_ends_to_stop: u64,
}

impl ChunkOut {
    /// Turns the chunk-relative lines of its rows (in `slots`) and rejects
    /// into physical lines, given the line ends before the chunk's start.
    pub(super) fn shift_to_physical_lines(&mut self, slots: &mut [Txn], line_ends_before: u64) {
        for txn in &mut slots[..self.txn_count] {
            // Saturated only in a file of more than `TXN_FILE_LINES_MAX`
            // lines, which fails the run (`check_file_lines`).
            txn.line =
                u32::try_from(u64::from(txn.line) + line_ends_before + 1).unwrap_or(u32::MAX);
        }
        for reject in &mut self.rejects {
            reject.line += line_ends_before + 1;
        }
    }
}

pub(super) struct ChunkJob<'a> {
    pub(super) file_index: u32,
    pub(super) bytes: &'a [u8],
    /// The mapped file `bytes` belong to, whose pages are released once
    /// parsed; `None` for a stream's block.
    pub(super) source: Option<&'a Source>,
    pub(super) header: &'a Header,
    pub(super) start: usize,
    pub(super) limit: usize,
}

impl ChunkJob<'_> {
    /// Parses the job's records that start at or after `from`, then lets
    /// the mapped pages it read go.
    pub(super) fn parse(
        &self,
        from: usize,
        chunk: u32,
        context: &RowContext,
        slots: &mut [Txn],
    ) -> ChunkOut {
        let out = parse_chunk(self, from, chunk, context, slots);
        if let Some(source) = self.source {
            source.release(from..out.stop);
        }
        out
    }
}

/// Parses the records of `job` that start at or after `from` (and before
/// its limit), writing transactions into `slots` (one per line of the chunk
/// is enough).
fn parse_chunk(
    job: &ChunkJob<'_>,
    from: usize,
    chunk: u32,
    context: &RowContext,
    slots: &mut [Txn],
) -> ChunkOut {
    let bytes = job.bytes;
    let file_index =
        u16::try_from(job.file_index).expect("a run has at most TXN_FILES_MAX transactions files");
    let columns = TxnColumns::new(job.header.field_count, &job.header.columns);
    let mut tokenizer = Tokenizer::new(bytes, from);
    tokenizer.skip_blank_lines();
    let first_record = tokenizer.position();
    let line_ends_to_first_record = tokenizer.line_ends();
    let mut out = ChunkOut {
        txn_count: 0,
        rejects: Vec::new(),
        // Ids are about a quarter of a row's bytes: sized so, the arena
        // rarely grows (each growth copies it into fresh memory).
        arena: Vec::with_capacity(job.limit.saturating_sub(from) / 4),
        rows: 0,
        first_record,
        line_ends_to_first_record,
        stop: first_record,
        line_ends_to_stop: line_ends_to_first_record,
    };
    let mut record = Record::default();
    let mut batch = MerchantBatch::default();
    loop {
        tokenizer.skip_blank_lines();
        if tokenizer.position() >= job.limit || !tokenizer.next_record(&mut record) {
            break;
        }
        out.rows += 1;
        let raw = &bytes[record.start..record.end];
        match txn::parse_row(&record, raw, &columns, context, &mut out.arena, chunk) {
            Ok((mut parsed, merchant_id)) => {
                parsed.file_index = file_index;
                // A record starts on a line of its own, and the slots
                // count the chunk's lines.
                slots[out.txn_count] = parsed;
                if batch.push(out.txn_count, merchant_id) {
                    batch.resolve(slots, &mut out.arena, context);
                }
                out.txn_count += 1;
            }
            Err(rejected) => out.rejects.push(Reject {
                file_index: job.file_index,
                line: record.lines_before,
                id: rejected.id,
                code: rejected.code,
                detail: rejected.detail,
            }),
        }
    }
    batch.resolve(slots, &mut out.arena, context);
    out.arena.shrink_to_fit();
    out.stop = tokenizer.position();
    out.line_ends_to_stop = tokenizer.line_ends();
    out
}

/// Parses every file, chunks in parallel, and returns the rows in file order.
/// Fails only when a stream cannot be read. `progress`, if given, counts
/// the bytes and rows parsed.
pub fn parse_files(
    files: &[TxnFile],
    context: &RowContext,
    chunk_bytes: usize,
    latencies: &ChunkLatencies,
    progress: Option<&Progress>,
) -> Result<Parsed> {
    assert!(
        files.len() <= limits::TXN_FILES_MAX,
        "the run checks the number of files"
    );
    let mut jobs = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        let Input::Bytes(source) = file.input else {
            continue;
        };
        let starts = csv::chunk_starts(source, file.header.data_start, chunk_bytes);
        for (i, &start) in starts.iter().enumerate() {
            let limit = starts.get(i + 1).copied().unwrap_or(source.len());
            jobs.push(ChunkJob {
                file_index: file_index as u32,
                bytes: source,
                source: Some(source),
                header: file.header,
                start,
                limit,
            });
        }
    }
    // One slot per line: a record needs at least one line, so each chunk
    // writes its rows straight into its own slots of one vector, and no
    // per-chunk vector is ever copied. The count pass drops the pages it
    // read; parsing reads them again.
    let slot_counts: Vec<usize> = jobs
        .par_iter()
        .map(|job| {
            let lines = csv::count_line_ends(job.bytes, job.start, job.limit) as usize + 1;
            if let Some(source) = job.source {
                source.release(job.start..job.limit);
            }
            lines
        })
        .collect();
    let mut slot_starts = Vec::with_capacity(jobs.len() + 1);
    slot_starts.push(0usize);
    for count in &slot_counts {
        slot_starts.push(slot_starts.last().copied().unwrap_or(0) + count);
    }
    // Filled in parallel: the first touch of 720 MB of fresh pages (at 10M
    // rows) is most of the cost, and one thread would do all of it.
    let mut txns: Vec<Txn> = (0..slot_starts[jobs.len()])
        .into_par_iter()
        .map(|_| Txn::PLACEHOLDER)
        .collect();
    let mut outs: Vec<ChunkOut> = jobs
        .par_iter()
        .zip(split::by_lengths(&mut txns, slot_counts.iter().copied()).into_par_iter())
        .enumerate()
        .map(|(i, (job, slots))| {
            let started = std::time::Instant::now();
            let out = job.parse(job.start, i as u32, context, slots);
            latencies.record(started.elapsed());
            if let Some(progress) = progress {
                progress.add_bytes(job.file_index as usize, (job.limit - job.start) as u64);
                progress.add_rows(out.rows);
            }
            out
        })
        .collect();

    // Check the chain of chunks in order, re-parse wrong guesses, and find
    // the line ends before each chunk's start.
    let mut rows_read_per_file = vec![0u64; files.len()];
    let mut line_ends_before = vec![0u64; jobs.len()];
    let mut previous: Option<(u32, usize, u64)> = None; // (file, stop, line ends before stop)
    for (i, job) in jobs.iter().enumerate() {
        let (base_position, base_line_ends) = match previous {
            Some((file_index, stop, line_ends)) if file_index == job.file_index => {
                (stop, line_ends)
            }
            _ => (job.header.data_start, job.header.lines_before_data),
        };
        let slots = &mut txns[slot_starts[i]..slot_starts[i + 1]];
        let line_ends_before_start = if outs[i].first_record == base_position {
            base_line_ends - outs[i].line_ends_to_first_record
        } else {
            // The guess fell inside a quoted field (or in a record that an
            // earlier chunk already read): parse again from the true start.
            // Its records start inside this chunk, so its slots suffice.
            outs[i] = job.parse(base_position, i as u32, context, slots);
            base_line_ends
        };
        let out = &outs[i];
        txn::check_file_lines(
            files[job.file_index as usize].name,
            line_ends_before_start + out.line_ends_to_stop,
        )?;
        line_ends_before[i] = line_ends_before_start;
        rows_read_per_file[job.file_index as usize] += out.rows;
        previous = Some((
            job.file_index,
            out.stop,
            line_ends_before_start + out.line_ends_to_stop,
        ));
    }

    // Chunk-relative lines become physical lines, chunks in parallel.
    outs.par_iter_mut()
        .zip(split::by_lengths(&mut txns, slot_counts.iter().copied()))
        .zip(&line_ends_before)
        .for_each(|((out, slots), &line_ends)| out.shift_to_physical_lines(slots, line_ends));

    // Close the gaps between chunks' rows, in place.
    let mut filled = 0;
    for (i, out) in outs.iter().enumerate() {
        txns.copy_within(slot_starts[i]..slot_starts[i] + out.txn_count, filled);
        filled += out.txn_count;
    }
    txns.truncate(filled);
    txns.shrink_to_fit();
    let mut rejects = Vec::new();
    let mut arenas = Vec::with_capacity(outs.len());
    for out in outs {
        rejects.extend(out.rejects);
        arenas.push(out.arena);
    }
    let mut parsed = Parsed {
        txns,
        arenas,
        rejects,
        rows_read_per_file,
        streamed: Vec::new(),
    };
    super::streams::parse_streams(
        &mut parsed,
        files,
        context,
        chunk_bytes,
        latencies,
        progress,
    )?;
    Ok(parsed)
}
