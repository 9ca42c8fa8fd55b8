//! The state a run carries to the next (RULES.md 6): each merchant's
//! deposit, balance and flags, the horizon, and the id index.
//!
//! A run's end state is published in `OUT/state/` with everything else:
//!
//! - `manifest`: a first line `settle-state 1 sha256=<hex>` and a JSON body
//!   that the digest covers: the horizon, the index's first business date,
//!   the merchants file's digest, and the index segments, newest first,
//!   with their sizes and CRC-32s;
//! - `merchants.csv`: one row per merchant, amounts in integer fen;
//! - `index-*.seg`: the segments (see `index`). A run writes one segment
//!   for its own ids and hard-links the still-live segments of the state it
//!   started from (copying them where a hard link is impossible), so every
//!   published folder is complete on its own and a re-run from any earlier
//!   folder works.
//!
//! Reading a corrupt, truncated or foreign state is a usage error (exit 2)
//! that names the file. This module must not decide rules or settle money.

pub mod format;
pub mod index;
pub mod packed;
#[cfg(test)]
mod tests;
pub mod writer;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::calendar::{self, Day};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::ledger::{DepositStatus, MerchantState};
use crate::output::control::sha256_hex;
pub use format::{Entry, NewEntry, Purchase};
pub use index::Index;
pub use writer::{Names, SegmentFacts};

/// The folder inside a run's output that holds its end state.
pub const STATE_DIR: &str = "state";
const MANIFEST: &str = "manifest";
const MERCHANTS_FILE: &str = "merchants.csv";
const FORMAT: &str = "settle-state";
/// The state format version this engine writes and reads.
pub const STATE_VERSION: u32 = 1;
const MERCHANTS_HEADER: &str = "merchant_id,deposit_status,deposit_held_fen,window_volume_fen,carried_fen,final_settled,ever_purchased\n";
/// The id the manifest hashes to prove that the id hash of the engine that
/// wrote the index is the one reading it: the index is sorted by that hash.
const HASH_PROBE: &[u8] = b"settle id hash probe";

/// One index segment as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRecord {
    pub file: String,
    pub facts: SegmentFacts,
}

/// The end state of an earlier run, as a new run starts from it.
pub struct PriorState {
    /// The `state` folder it was read from.
    pub dir: PathBuf,
    pub horizon: Option<Day>,
    /// The first business date whose ids the index still holds.
    pub index_first_day: Option<Day>,
    /// Merchant states, sorted by id bytewise.
    pub merchants: Vec<(String, MerchantState)>,
    /// Newest first, as `index.segments`.
    pub segments: Vec<SegmentRecord>,
    pub index: Index,
}

impl PriorState {
    /// The state a merchant closed the earlier run with, if it had one.
    pub fn merchant(&self, id: &str) -> Option<MerchantState> {
        self.merchants
            .binary_search_by(|(other, _)| other.as_bytes().cmp(id.as_bytes()))
            .ok()
            .map(|at| self.merchants[at].1)
    }
}

fn probe() -> String {
    format!("{:016x}", crate::ingest::txn::id_hash(HASH_PROBE))
}

fn unreadable(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "{}: the state cannot be read: {why}",
        path.display()
    ))
}

/// Whether the run published in `out` says, in its control.json, that it
/// was published without its end state (`--no-state`).
fn published_without_state(out: &Path) -> bool {
    std::fs::read(out.join("control.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|control| control["run"]["state"] == Value::Bool(false))
}

/// Reads the state published in an earlier run's output folder.
pub fn read(prev_out: &Path) -> Result<PriorState> {
    let dir = prev_out.join(STATE_DIR);
    let manifest_path = dir.join(MANIFEST);
    let bytes = std::fs::read(&manifest_path).map_err(|e| {
        if published_without_state(prev_out) {
            return Error::Usage(format!(
                "{}: this run was published with --no-state and has no end state to start from",
                prev_out.display()
            ));
        }
        Error::Usage(format!(
            "{}: no settle state here ({e}); --state-in takes the --out folder of an earlier run",
            manifest_path.display()
        ))
    })?;
    let body = check_manifest(&manifest_path, &bytes)?;
    let manifest: Value = serde_json::from_slice(body)
        .map_err(|e| unreadable(&manifest_path, format!("the body is not JSON ({e})")))?;
    let field = |key: &str| -> Result<&Value> {
        manifest
            .get(key)
            .ok_or_else(|| unreadable(&manifest_path, format!("key {key:?} is missing")))
    };
    let date = |key: &str| -> Result<Option<Day>> {
        match field(key)? {
            Value::Null => Ok(None),
            Value::String(text) => calendar::parse_date(text.as_bytes())
                .map(Some)
                .ok_or_else(|| unreadable(&manifest_path, format!("{key} {text:?} is not a date"))),
            other => Err(unreadable(
                &manifest_path,
                format!("{key} is {other}, not a date"),
            )),
        }
    };
    if field("id_hash_probe")?.as_str() != Some(probe().as_str()) {
        return Err(unreadable(
            &manifest_path,
            "its index was written with another id hash; re-run the chain with this engine version",
        ));
    }
    let horizon = date("horizon")?;
    let index_first_day = date("index_first_day")?;

    let merchants_entry = field("merchants")?;
    let merchants_path = dir.join(MERCHANTS_FILE);
    let merchant_bytes =
        std::fs::read(&merchants_path).map_err(|e| unreadable(&merchants_path, e))?;
    if merchants_entry["sha256"].as_str() != Some(sha256_hex(&merchant_bytes).as_str()) {
        return Err(unreadable(
            &merchants_path,
            "its SHA-256 differs from the manifest's (corrupt or truncated)",
        ));
    }
    let merchants = parse_merchants(&merchants_path, &merchant_bytes)?;

    let segments: Vec<SegmentRecord> = field("segments")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| segment_record(&manifest_path, item))
        .collect::<Result<_>>()?;
    // Segments open in parallel: each reads its hash column.
    let opened = segments
        .par_iter()
        .map(|record| {
            let path = dir.join(&record.file);
            let length = std::fs::metadata(&path)
                .map_err(|e| unreadable(&path, e))?
                .len();
            if length != record.facts.bytes {
                return Err(unreadable(
                    &path,
                    format!(
                        "{length} bytes where the manifest says {} (truncated?)",
                        record.facts.bytes
                    ),
                ));
            }
            index::Segment::open(&path)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PriorState {
        dir,
        horizon,
        index_first_day,
        merchants,
        segments,
        index: Index {
            segments: opened,
            first_day: index_first_day.unwrap_or(Day::MIN),
        },
    })
}

/// Checks the manifest's first line and digest; returns the body.
fn check_manifest<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
    let newline = memchr::memchr(b'\n', bytes)
        .ok_or_else(|| unreadable(path, "not a settle state manifest"))?;
    let first = std::str::from_utf8(&bytes[..newline]).unwrap_or("");
    let mut words = first.split(' ');
    if words.next() != Some(FORMAT) {
        return Err(unreadable(path, "not a settle state manifest"));
    }
    let version = words.next().unwrap_or("");
    if version != STATE_VERSION.to_string() {
        return Err(unreadable(
            path,
            format!("state format version {version:?}; this engine reads version {STATE_VERSION}"),
        ));
    }
    let body = &bytes[newline + 1..];
    let digest = words.next().and_then(|w| w.strip_prefix("sha256="));
    if digest != Some(sha256_hex(body).as_str()) {
        return Err(unreadable(
            path,
            "its SHA-256 does not match (corrupt or truncated)",
        ));
    }
    Ok(body)
}

fn segment_record(path: &Path, item: &Value) -> Result<SegmentRecord> {
    let bad = || unreadable(path, format!("segment entry {item} is malformed"));
    let text = |key: &str| item.get(key).and_then(Value::as_str).ok_or_else(bad);
    let number = |key: &str| item.get(key).and_then(Value::as_u64).ok_or_else(bad);
    let day =
        |key: &str| -> Result<Day> { calendar::parse_date(text(key)?.as_bytes()).ok_or_else(bad) };
    let file = text("file")?.to_string();
    // A segment is a plain file name inside the state folder, never a path.
    if file.contains('/') || file.contains('\\') || file.starts_with('.') {
        return Err(bad());
    }
    Ok(SegmentRecord {
        file,
        facts: SegmentFacts {
            bytes: number("bytes")?,
            crc32: u32::from_str_radix(text("crc32")?, 16).map_err(|_| bad())?,
            entries: number("entries")?,
            first_day: day("first_day")?,
            last_day: day("last_day")?,
        },
    })
}

fn status_name(status: DepositStatus) -> &'static str {
    match status {
        DepositStatus::Collecting => "collecting",
        DepositStatus::Released => "released",
        DepositStatus::Forfeited => "forfeited",
        DepositStatus::Closed => "closed",
    }
}

fn parse_merchants(path: &Path, bytes: &[u8]) -> Result<Vec<(String, MerchantState)>> {
    if !bytes.starts_with(MERCHANTS_HEADER.as_bytes()) {
        return Err(unreadable(
            path,
            "the header is not the state's merchants header",
        ));
    }
    let mut tokenizer = Tokenizer::new(bytes, MERCHANTS_HEADER.len());
    let mut record = Record::default();
    let mut merchants: Vec<(String, MerchantState)> = Vec::new();
    while tokenizer.next_record(&mut record) {
        let line = record.lines_before + 2;
        let bad = |what: &str| unreadable(path, format!("line {line}: {what}"));
        if record.field_count() != 7 {
            return Err(bad("not 7 fields"));
        }
        let text = |k: usize| std::str::from_utf8(record.field(k)).map_err(|_| bad("not UTF-8"));
        let fen = |k: usize| -> Result<i128> {
            text(k)?
                .parse()
                .map_err(|_| bad("an amount is not integer fen"))
        };
        let flag = |k: usize| -> Result<bool> {
            match text(k)? {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("a flag is not true or false")),
            }
        };
        let deposit_status = match text(1)? {
            "collecting" => DepositStatus::Collecting,
            "released" => DepositStatus::Released,
            "forfeited" => DepositStatus::Forfeited,
            "closed" => DepositStatus::Closed,
            _ => return Err(bad("unknown deposit_status")),
        };
        let id = text(0)?.to_string();
        if merchants
            .last()
            .is_some_and(|(last, _)| last.as_bytes() >= id.as_bytes())
        {
            return Err(bad("merchant ids are not sorted and unique"));
        }
        merchants.push((
            id,
            MerchantState {
                deposit_status,
                deposit_held_fen: fen(2)?,
                window_volume_fen: fen(3)?,
                carried_fen: fen(4)?,
                final_settled: flag(5)?,
                ever_purchased: flag(6)?,
            },
        ));
    }
    Ok(merchants)
}

fn render_merchants(merchants: &[(&str, MerchantState)]) -> String {
    let mut out = String::from(MERCHANTS_HEADER);
    for (id, state) in merchants {
        crate::output::csv::push_field(&mut out, id);
        out.push_str(&format!(
            ",{},{},{},{},{},{}\n",
            status_name(state.deposit_status),
            state.deposit_held_fen,
            state.window_volume_fen,
            state.carried_fen,
            state.final_settled,
            state.ever_purchased
        ));
    }
    out
}

/// The id index of a run's end state, written into the staging folder.
pub struct WrittenIndex {
    /// The run's own segment (if it has entries), then the kept ones.
    pub segments: Vec<SegmentRecord>,
    /// Files written but not yet synced, with their paths: the caller
    /// makes them durable before it publishes.
    pub unsynced: Vec<(PathBuf, std::fs::File)>,
}

/// The starting state's segments that the end state keeps.
pub struct Kept<'a> {
    /// Newest first.
    pub segments: Vec<SegmentRecord>,
    /// The starting state's folder, where they are.
    pub dir: Option<&'a Path>,
}

/// Writes the id index of the end state into `staging/state/`: the run's
/// own segment of entries `0..count` from `entry_at` (see
/// `writer::write_segment`), then the kept segments, linked.
pub fn write_index<'a>(
    staging: &Path,
    horizon: Option<Day>,
    kept: &Kept,
    names: &Names,
    count: usize,
    entry_at: &(impl Fn(usize) -> NewEntry<'a> + Sync),
) -> Result<WrittenIndex> {
    let entries = Entries { count, entry_at };
    write_index_in_parts(
        staging,
        horizon,
        kept,
        names,
        &entries,
        format::SEGMENT_ENTRIES_MAX,
    )
}

/// A run's entries, `0..count`.
struct Entries<'e, E> {
    count: usize,
    entry_at: &'e E,
}

/// `write_index` with the run's entries split into segments of at most
/// `part_entries` (tests use small parts).
fn write_index_in_parts<'a, E>(
    staging: &Path,
    horizon: Option<Day>,
    kept: &Kept,
    names: &Names,
    entries: &Entries<E>,
    part_entries: usize,
) -> Result<WrittenIndex>
where
    E: Fn(usize) -> NewEntry<'a> + Sync,
{
    let count = entries.count;
    let dir = staging.join(STATE_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut written = WrittenIndex {
        segments: Vec::new(),
        unsynced: Vec::new(),
    };
    // Named after the horizon and the chain's length: deterministic, so a
    // re-run gives the same bytes, and distinct from every kept one. A run
    // with more entries than one segment holds writes parts: the ids of a
    // run are distinct, so their order among themselves does not matter.
    let horizon = horizon.map_or_else(|| "none".into(), calendar::format_date);
    let chain = kept.segments.len() + 1;
    let parts = count.div_ceil(part_entries.max(1));
    let file_names = |stem: &str| -> Vec<String> {
        match parts {
            1 => vec![format!("{stem}.seg")],
            _ => (1..=parts)
                .map(|k| format!("{stem}-{k}of{parts}.seg"))
                .collect(),
        }
    };
    let mut files = file_names(&format!("index-{horizon}-{chain:04}"));
    if files
        .iter()
        .any(|f| kept.segments.iter().any(|k| &k.file == f))
    {
        files = file_names(&format!("index-{horizon}-{chain:04}b"));
    }
    for (part, file) in files.into_iter().enumerate() {
        let start = part * part_entries;
        let end = (start + part_entries).min(count);
        let path = dir.join(&file);
        let (facts, unsynced) = writer::write_segment(&path, names, end - start, &|i| {
            (entries.entry_at)(start + i)
        })?;
        written.segments.push(SegmentRecord { file, facts });
        written.unsynced.push((path, unsynced));
    }
    for record in &kept.segments {
        let from = kept
            .dir
            .expect("kept segments come with their folder")
            .join(&record.file);
        let to = dir.join(&record.file);
        // A hard link costs no bytes and keeps the folder self-contained;
        // across file systems the segment is copied instead, and the copy
        // must be synced like a written segment.
        if std::fs::hard_link(&from, &to).is_err() {
            let io = |e| Error::io(format!("copying {} to {}", from.display(), to.display()), e);
            std::fs::copy(&from, &to).map_err(io)?;
            let copy = std::fs::File::open(&to).map_err(io)?;
            written.unsynced.push((to, copy));
        }
        written.segments.push(record.clone());
    }
    Ok(written)
}

/// A run's end state apart from the index files.
pub struct Closing<'a> {
    pub horizon: Option<Day>,
    pub index_first_day: Option<Day>,
    /// Sorted by id bytewise.
    pub merchants: Vec<(&'a str, MerchantState)>,
    /// Every segment of the end state (`WrittenIndex::segments`).
    pub segments: &'a [SegmentRecord],
}

/// The manifest and merchants file of an end state, named under `state/`,
/// for the caller to write with the other small files.
pub fn state_files(closing: &Closing) -> Vec<(String, Vec<u8>)> {
    let segments = closing.segments;
    let merchants = render_merchants(&closing.merchants).into_bytes();
    let date =
        |day: Option<Day>| day.map_or(Value::Null, |d| Value::String(calendar::format_date(d)));
    let body = json!({
        "format": FORMAT,
        "version": STATE_VERSION,
        "horizon": date(closing.horizon),
        "index_first_day": date(closing.index_first_day),
        "id_hash_probe": probe(),
        "merchants": {"file": MERCHANTS_FILE, "sha256": sha256_hex(&merchants), "rows": closing.merchants.len()},
        "segments": segments.iter().map(|s| json!({
            "file": s.file,
            "bytes": s.facts.bytes,
            "crc32": format!("{:08x}", s.facts.crc32),
            "entries": s.facts.entries,
            "first_day": calendar::format_date(s.facts.first_day),
            "last_day": calendar::format_date(s.facts.last_day),
        })).collect::<Vec<_>>(),
    });
    let mut body = serde_json::to_string_pretty(&body).unwrap_or_default();
    body.push('\n');
    let manifest = format!(
        "{FORMAT} {STATE_VERSION} sha256={}\n{body}",
        sha256_hex(body.as_bytes())
    );
    vec![
        (format!("{STATE_DIR}/{MANIFEST}"), manifest.into_bytes()),
        (format!("{STATE_DIR}/{MERCHANTS_FILE}"), merchants),
    ]
}

/// Deep check for `settle verify`: every segment the manifest lists has its
/// size and whole-file CRC-32. Returns one sentence per problem.
pub fn verify_segments(out: &Path) -> Vec<String> {
    let dir = out.join(STATE_DIR);
    let manifest_path = dir.join(MANIFEST);
    let Ok(bytes) = std::fs::read(&manifest_path) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let body = match check_manifest(&manifest_path, &bytes) {
        Ok(body) => body,
        Err(e) => return vec![e.to_string()],
    };
    let Ok(manifest) = serde_json::from_slice::<Value>(body) else {
        return vec![format!("{}: the body is not JSON", manifest_path.display())];
    };
    for item in manifest["segments"].as_array().into_iter().flatten() {
        match segment_record(&manifest_path, item) {
            Err(e) => problems.push(e.to_string()),
            Ok(record) => match std::fs::read(dir.join(&record.file)) {
                Ok(bytes)
                    if bytes.len() as u64 == record.facts.bytes
                        && crc32fast::hash(&bytes) == record.facts.crc32 => {}
                Ok(_) => problems.push(format!(
                    "{STATE_DIR}/{}: its size or CRC-32 differs from the manifest's",
                    record.file
                )),
                Err(e) => {
                    problems.push(format!("{STATE_DIR}/{}: cannot be read ({e})", record.file))
                }
            },
        }
    }
    problems
}
