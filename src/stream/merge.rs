//! `settle merge`: the partition folders of one business day joined into
//! the folder `settle run --through DAY` writes over the same inputs, byte
//! for byte (docs/STREAM.md), and published whole or not at all.
//!
//! Partitions hold disjoint merchants, so each output is a merge of
//! theirs by the key that orders it: settlement and journal files by
//! `merchant_id`, rejects by (file, line), the index's entries by where
//! their rows stand in the input. This module must not settle money: it
//! re-orders what the partitions settled, sums their totals and checks
//! conservation over the union.

use crate::output::control::TOTAL_KEYS;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::calendar::Day;
use crate::config;
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::ingest::merchants;
use crate::money;
use crate::output::{self, control::sha256_hex, csv::REJECTS_HEADER};
use crate::state;

use super::folder::Description;
use super::merged_state;

/// What `settle merge` was asked to do.
#[derive(Clone, Debug)]
pub struct MergeOptions {
    /// The partition folders, in any order.
    pub partitions: Vec<PathBuf>,
    pub out: PathBuf,
}

/// What a published merge reports back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeSummary {
    pub partitions: u32,
    pub through: Day,
    pub rows_read: u64,
    pub rows_rejected: u64,
    pub files_written: usize,
}

/// One partition folder, read.
struct Part {
    dir: PathBuf,
    description: Description,
    control: Value,
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{}: cannot be read: {e}", path.display()))
}

/// Reads the partition folders and checks that they are partitions 0 to
/// P - 1 of one close: the same day, inputs, configuration and start.
fn read_parts(dirs: &[PathBuf]) -> Result<Vec<Part>> {
    if dirs.is_empty() {
        return Err(Error::Usage(
            "settle merge needs the partition folders".into(),
        ));
    }
    let mut parts = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let description = Description::read(dir)?;
        let path = dir.join("control.json");
        let bytes = std::fs::read(&path).map_err(|e| unreadable(&path, e))?;
        let control = serde_json::from_slice(&bytes).map_err(|e| unreadable(&path, e))?;
        parts.push(Part {
            dir: dir.clone(),
            description,
            control,
        });
    }
    parts.sort_by_key(|part| part.description.partition);
    let count = parts.len() as u32;
    for (k, part) in parts.iter().enumerate() {
        let d = &part.description;
        if d.partitions != count || d.partition != k as u32 {
            return Err(Error::Usage(format!(
                "{} is partition {} of {}, but {} folders were given: the merge needs partitions 0 to P - 1, each once",
                part.dir.display(),
                d.partition,
                d.partitions,
                count
            )));
        }
        let first = &parts[0].description;
        let differs = [
            ("the day (through)", d.through != first.through),
            ("the run's start", d.start != first.start),
            ("the configuration", d.config != first.config),
            (
                "the master data",
                d.merchants != first.merchants || d.merchant_rows != first.merchant_rows,
            ),
            ("the starting state", d.state_in != first.state_in),
            (
                "the transaction inputs",
                d.transactions != first.transactions,
            ),
            ("the adjustments", d.adjustments != first.adjustments),
        ];
        if let Some((what, _)) = differs.iter().find(|(_, differ)| *differ) {
            return Err(Error::Usage(format!(
                "{} and {} are not partitions of one close: {what} differs",
                parts[0].dir.display(),
                part.dir.display()
            )));
        }
    }
    Ok(parts)
}

/// Reads an input that the partitions named, checking that it is still
/// the file they read.
fn read_checked(path: &str, sha256: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| unreadable(Path::new(path), e))?;
    if sha256_hex(&bytes) != sha256 {
        return Err(Error::Usage(format!(
            "{path}: changed since the partitions read it (its SHA-256 differs)"
        )));
    }
    Ok(bytes)
}

/// The data records of a CSV output file (after its header line), each
/// with its fields and bytes, handed to `each`; returns the header line.
fn for_each_record(
    path: &Path,
    mut each: impl FnMut(&Record, &[u8]) -> Result<()>,
) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| unreadable(path, e))?;
    let header_end = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |at| at + 1);
    let mut tokenizer = Tokenizer::new(&bytes, header_end);
    let mut record = Record::default();
    while tokenizer.next_record(&mut record) {
        each(&record, &bytes[record.start..record.end])?;
    }
    Ok(bytes[..header_end].to_vec())
}

/// The names of the files in `dir` that start with `prefix` and end in
/// `.csv`, sorted.
fn files_named(dir: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(dir, e))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix) && name.ends_with(".csv"))
        .collect();
    names.sort();
    Ok(names)
}

/// Merges the files called `name` of every partition by `merchant_id`
/// (field 1), keeping each partition's order within a merchant: settlement
/// and journal files are sorted by it, and partitions' merchants are
/// disjoint.
fn merge_by_merchant(parts: &[Part], name: &str) -> Result<Vec<u8>> {
    let mut header = None;
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for part in parts {
        let path = part.dir.join(name);
        if !path.exists() {
            continue;
        }
        let head = for_each_record(&path, |record, raw| {
            rows.push((record.field_or_empty(Some(1)).to_vec(), raw.to_vec()));
            Ok(())
        })?;
        header.get_or_insert(head);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = header.unwrap_or_default();
    for (_, raw) in rows {
        out.extend_from_slice(&raw);
    }
    Ok(out)
}

/// rejects.csv: the transaction rejects of every partition in file order,
/// then the adjustment rejects of the whole file's judgement.
fn merge_rejects(parts: &[Part]) -> Result<Vec<u8>> {
    let description = &parts[0].description;
    let names: Vec<&str> = description
        .transactions
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let mut rows: Vec<((usize, u64), Vec<u8>)> = Vec::new();
    for part in parts {
        let path = part.dir.join("rejects.csv");
        for_each_record(&path, |record, raw| {
            let bad = || {
                Error::Conservation(format!(
                    "{}: a reject of no transaction input of the day",
                    path.display()
                ))
            };
            let file = record.field_or_empty(Some(0));
            let file_index = names
                .iter()
                .position(|name| name.as_bytes() == file)
                .ok_or_else(bad)?;
            let line = std::str::from_utf8(record.field_or_empty(Some(1)))
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(bad)?;
            rows.push(((file_index, line), raw.to_vec()));
            Ok(())
        })?;
    }
    rows.sort_by_key(|(at, _)| *at);
    let mut out = REJECTS_HEADER.as_bytes().to_vec();
    for (_, raw) in rows {
        out.extend_from_slice(&raw);
    }
    if let Some(judgement) = &description.adjustments {
        out.extend_from_slice(judgement.rejects_csv.as_bytes());
    }
    Ok(out)
}

/// adjustments-booked.csv: the partitions' accepted adjustments in the
/// whole file's line order.
fn merge_adjustments(parts: &[Part], order: &[u32]) -> Result<Vec<u8>> {
    let name = "adjustments-booked.csv";
    let mut header = Vec::new();
    let mut rows: Vec<std::vec::IntoIter<Vec<u8>>> = Vec::with_capacity(parts.len());
    for part in parts {
        let mut own = Vec::new();
        header = for_each_record(&part.dir.join(name), |_, raw| {
            own.push(raw.to_vec());
            Ok(())
        })?;
        rows.push(own.into_iter());
    }
    let mut out = header;
    for &k in order {
        let row = rows
            .get_mut(k as usize)
            .and_then(Iterator::next)
            .ok_or_else(|| {
                Error::Conservation(format!(
                    "partition {k} booked fewer adjustments than the judgement gave it"
                ))
            })?;
        out.extend_from_slice(&row);
    }
    if rows.iter_mut().any(|rest| rest.next().is_some()) {
        return Err(Error::Conservation(
            "a partition booked an adjustment the judgement did not give it".into(),
        ));
    }
    Ok(out)
}

/// An amount of control.json (`-12.30`) in fen.
fn parse_fen(value: &Value) -> Option<i128> {
    let text = value.as_str()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.')?;
    if fraction.len() != 2 || whole.is_empty() {
        return None;
    }
    let fen = whole.parse::<i128>().ok()? * 100 + fraction.parse::<i128>().ok()?;
    Some(if negative { -fen } else { fen })
}

/// control.json as the batch run writes it: the first partition's, with
/// the counts, totals and receivables of all, and the merged outputs.
fn control(
    parts: &[Part],
    settlement_names: &[String],
    files: &[(String, String)],
) -> Result<String> {
    let description = &parts[0].description;
    let mut control = parts[0].control.clone();
    let bad = |what: &str| {
        Error::Conservation(format!(
            "{}: control.json lacks {what}",
            parts[0].dir.display()
        ))
    };
    control["inputs"]["merchants"]["rows"] = Value::from(description.merchant_rows);
    for (file, entry) in control["inputs"]["transactions"]
        .as_array_mut()
        .ok_or_else(|| bad("its transactions"))?
        .iter_mut()
        .enumerate()
    {
        for key in ["rows_read", "rows_accepted", "rows_rejected"] {
            let sum: u64 = parts
                .iter()
                .map(|p| {
                    p.control["inputs"]["transactions"][file][key]
                        .as_u64()
                        .unwrap_or(0)
                })
                .sum();
            entry[key] = Value::from(sum);
        }
    }
    if let Some(judgement) = &description.adjustments {
        let entry = &mut control["inputs"]["adjustments"];
        entry["rows_read"] = Value::from(judgement.rows_read);
        entry["rows_accepted"] = Value::from(judgement.rows_accepted);
        entry["rows_rejected"] = Value::from(judgement.rows_rejected);
    }
    let mut totals = [0i128; TOTAL_KEYS.len()];
    for part in parts {
        for (sum, key) in totals.iter_mut().zip(TOTAL_KEYS) {
            *sum += parse_fen(&part.control["totals"][key]).ok_or_else(|| bad(key))?;
        }
    }
    let [
        purchases,
        refunds,
        fees,
        adjustments,
        carried_in,
        payouts,
        held,
        released,
        _,
        deactivation,
        carried_out,
    ] = totals;
    // RULES.md 3.7 over the union, before anything is published.
    let left = purchases - refunds - fees + adjustments + carried_in;
    let right = payouts + held - released + deactivation + carried_out;
    if left != right {
        return Err(Error::Conservation(format!(
            "the partitions' inputs give {} but payouts, deposits, fees and balances give {}",
            money::format_fen(left),
            money::format_fen(right)
        )));
    }
    for (sum, key) in totals.iter().zip(TOTAL_KEYS) {
        control["totals"][key] = Value::String(money::format_fen(*sum));
    }
    let mut receivables: Vec<Value> = Vec::new();
    let mut receivables_fen = 0i128;
    for part in parts {
        let receivable = &part.control["receivables"];
        receivables_fen += parse_fen(&receivable["total"]).ok_or_else(|| bad("receivables"))?;
        receivables.extend(
            receivable["merchants"]
                .as_array()
                .into_iter()
                .flatten()
                .cloned(),
        );
    }
    receivables.sort_by(|a, b| {
        let id = |v: &Value| {
            v["merchant_id"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec()
        };
        id(a).cmp(&id(b))
    });
    control["receivables"]["total"] = Value::String(money::format_fen(receivables_fen));
    control["receivables"]["merchants"] = Value::Array(receivables);
    control["settlement_files"] = Value::from(settlement_names.to_vec());
    control["outputs"] = Value::Object(
        files
            .iter()
            .map(|(name, sha256)| (name.clone(), Value::String(sha256.clone())))
            .collect(),
    );
    let mut text = serde_json::to_string_pretty(&control).unwrap_or_default();
    text.push('\n');
    Ok(text)
}

/// Joins the partition folders of one close into `options.out`.
pub fn merge(options: &MergeOptions) -> Result<MergeSummary> {
    let parts = read_parts(&options.partitions)?;
    output::check_out_dir(&options.out)?;
    let description = &parts[0].description;
    let config_bytes = read_checked(&description.config.path, &description.config.sha256)?;
    let settings = config::parse_bytes(Path::new(&description.config.path), &config_bytes)?;
    let merchants_bytes = read_checked(&description.merchants.path, &description.merchants.sha256)?;
    let all_merchants = merchants::parse(&merchants_bytes, &description.merchants.path)?;
    let prior = description
        .state_in
        .as_deref()
        .map(|dir| state::read(Path::new(dir)))
        .transpose()?;

    let mut staging = output::Staging::create(&options.out)?;
    let mut files: Vec<(String, String)> = Vec::new();
    let mut settlement_names = Vec::new();
    let union = |prefix: &str| -> Result<Vec<String>> {
        let mut names = Vec::new();
        for part in &parts {
            names.extend(files_named(&part.dir, prefix)?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    };
    for name in union("settlement-")? {
        files.push(staging.write_file(&name, &merge_by_merchant(&parts, &name)?)?);
        settlement_names.push(name);
    }
    files.push(staging.write_file("rejects.csv", &merge_rejects(&parts)?)?);
    if let Some(judgement) = &description.adjustments {
        let booked = merge_adjustments(&parts, &judgement.accepted_partitions)?;
        files.push(staging.write_file("adjustments-booked.csv", &booked)?);
    }
    for name in union("journal-")? {
        files.push(staging.write_file(&name, &merge_by_merchant(&parts, &name)?)?);
    }
    let dirs: Vec<PathBuf> = parts.iter().map(|part| part.dir.clone()).collect();
    let (state_files, index) = merged_state::write_state(
        &staging,
        &dirs,
        description.through,
        &settings,
        &all_merchants,
        prior.as_ref(),
    )?;
    staging.sync_in_background(index.unsynced);
    files.extend(staging.write_files(&state_files)?);
    let control = control(&parts, &settlement_names, &files)?;
    staging.write_file("control.json", control.as_bytes())?;
    staging.publish()?;
    let count = |key: &str| -> u64 {
        parts
            .iter()
            .flat_map(|p| {
                p.control["inputs"]["transactions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|f| f[key].as_u64().unwrap_or(0))
            .sum()
    };
    Ok(MergeSummary {
        partitions: parts.len() as u32,
        through: description.through,
        rows_read: count("rows_read"),
        rows_rejected: count("rows_rejected")
            + description
                .adjustments
                .as_ref()
                .map_or(0, |a| a.rows_rejected),
        files_written: files.len() + 1,
    })
}
