//! Parallel parsing of transaction files in chunks.
//!
//! Each file is cut into chunks at line starts; a cut may fall inside a
//! quoted field, so each chunk is parsed speculatively and then checked in
//! order: chunk i is right only if its first record starts exactly where
//! chunk i−1 stopped. A wrong chunk is parsed again from that position.
//! Line numbers come from per-chunk line-end counts, fixed up in order.

use rayon::prelude::*;

use crate::config::Settings;
use crate::ingest::csv::{self, Record, Tokenizer};
use crate::ingest::merchants::Merchants;
use crate::ingest::txn::{self, Txn, TxnColumns};
use crate::ingest::{Reject, header::Header};
use crate::pipeline::stats::ChunkLatencies;

/// One transactions file, with its header already read.
pub struct TxnFile<'a> {
    pub bytes: &'a [u8],
    pub header: &'a Header,
}

/// What parsing all files gave: transactions that passed steps 1 and 2 in
/// file order, the ids they point into, and the rows rejected so far.
pub struct Parsed {
    pub txns: Vec<Txn>,
    pub arenas: Vec<Vec<u8>>,
    pub rejects: Vec<Reject>,
    pub rows_read_per_file: Vec<u64>,
}

impl Parsed {
    pub fn id(&self, id: txn::IdRef) -> &[u8] {
        let arena = &self.arenas[id.chunk as usize];
        &arena[id.offset as usize..(id.offset + id.len) as usize]
    }
}

struct ChunkOut {
    txns: Vec<Txn>,
    rejects: Vec<Reject>,
    arena: Vec<u8>,
    rows: u64,
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

struct ChunkJob<'a> {
    file_index: u32,
    file: &'a TxnFile<'a>,
    start: usize,
    limit: usize,
}

fn parse_chunk(
    job: &ChunkJob,
    from: usize,
    chunk: u32,
    settings: &Settings,
    merchants: &Merchants,
) -> ChunkOut {
    let bytes = job.file.bytes;
    let columns = TxnColumns::new(job.file.header.field_count, &job.file.header.columns);
    let mut tokenizer = Tokenizer::new(bytes, from);
    tokenizer.skip_blank_lines();
    let first_record = tokenizer.position();
    let line_ends_to_first_record = tokenizer.line_ends();
    let mut out = ChunkOut {
        txns: Vec::new(),
        rejects: Vec::new(),
        arena: Vec::new(),
        rows: 0,
        first_record,
        line_ends_to_first_record,
        stop: first_record,
        line_ends_to_stop: line_ends_to_first_record,
    };
    let mut record = Record::default();
    loop {
        tokenizer.skip_blank_lines();
        if tokenizer.position() >= job.limit || !tokenizer.next_record(&mut record) {
            break;
        }
        out.rows += 1;
        let raw = &bytes[record.start..record.end];
        match txn::parse_row(
            &record,
            raw,
            &columns,
            settings,
            merchants,
            &mut out.arena,
            chunk,
        ) {
            Ok(mut parsed) => {
                parsed.file_index = job.file_index;
                out.txns.push(parsed);
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
    out.stop = tokenizer.position();
    out.line_ends_to_stop = tokenizer.line_ends();
    out
}

/// Parses every file, chunks in parallel, and returns the rows in file order.
pub fn parse_files(
    files: &[TxnFile],
    settings: &Settings,
    merchants: &Merchants,
    chunk_bytes: usize,
    latencies: &ChunkLatencies,
) -> Parsed {
    let mut jobs = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        let starts = csv::chunk_starts(file.bytes, file.header.data_start, chunk_bytes);
        for (i, &start) in starts.iter().enumerate() {
            let limit = starts.get(i + 1).copied().unwrap_or(file.bytes.len());
            jobs.push(ChunkJob {
                file_index: file_index as u32,
                file,
                start,
                limit,
            });
        }
    }
    let mut outs: Vec<ChunkOut> = jobs
        .par_iter()
        .enumerate()
        .map(|(i, job)| {
            let started = std::time::Instant::now();
            let out = parse_chunk(job, job.start, i as u32, settings, merchants);
            latencies.record(started.elapsed());
            out
        })
        .collect();

    // Check the chain of chunks in order, re-parse wrong guesses, and turn
    // chunk-relative lines into physical lines.
    let mut rows_read_per_file = vec![0u64; files.len()];
    let mut previous: Option<(u32, usize, u64)> = None; // (file, stop, line ends before stop)
    for (i, job) in jobs.iter().enumerate() {
        let (base_position, base_line_ends) = match previous {
            Some((file_index, stop, line_ends)) if file_index == job.file_index => {
                (stop, line_ends)
            }
            _ => (
                job.file.header.data_start,
                job.file.header.lines_before_data,
            ),
        };
        let line_ends_before_start = if outs[i].first_record == base_position {
            base_line_ends - outs[i].line_ends_to_first_record
        } else {
            // The guess fell inside a quoted field (or in a record that an
            // earlier chunk already read): parse again from the true start.
            outs[i] = parse_chunk(job, base_position, i as u32, settings, merchants);
            base_line_ends
        };
        let out = &mut outs[i];
        for txn in &mut out.txns {
            txn.line += line_ends_before_start + 1;
        }
        for reject in &mut out.rejects {
            reject.line += line_ends_before_start + 1;
        }
        rows_read_per_file[job.file_index as usize] += out.rows;
        previous = Some((
            job.file_index,
            out.stop,
            line_ends_before_start + out.line_ends_to_stop,
        ));
    }

    let total_txns = outs.iter().map(|o| o.txns.len()).sum();
    let mut txns = Vec::with_capacity(total_txns);
    let mut rejects = Vec::new();
    let mut arenas = Vec::with_capacity(outs.len());
    for out in outs {
        txns.extend(out.txns);
        rejects.extend(out.rejects);
        arenas.push(out.arena);
    }
    Parsed {
        txns,
        arenas,
        rejects,
        rows_read_per_file,
    }
}
