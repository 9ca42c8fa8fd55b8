//! Fuzz target: arbitrary bytes as a transactions CSV, through the engine's
//! own pipeline, in process (no files, no child process, nothing published).
//!
//! Input layout: the first byte is a control byte, the rest is the file.
//!
//! - bits 0-5: chunk size (1 + bits) in bytes for the second, chunked parse
//! - bit 6:    pass `--through 2026-11-04` (exercises beyond_horizon)
//! - bit 7:    configuration: 0 = fixtures/settle.toml (proportional
//!   refund fee, 14-day deposit window), 1 = the spec example's settle.toml
//!   (kept refund fee, small deposit)
//!
//! The merchants are fixtures/merchants.csv plus the spec example's M1-M3
//! (fuzz/data/merchants.csv), so rows copied from either data set link.
//!
//! What is checked, beyond "no panic":
//! - a header that `header::read` refuses is an exit-2 error (Input);
//! - with a good header the pipeline never fails (no conservation error);
//! - rows read = rows accepted + rows rejected, counted independently
//!   (accepted = parsed transactions the linker kept; rejected = reject
//!   values of this file), and the engine's own FileCounts agree;
//! - every reject's line lies between the first data line and the last
//!   physical line of the file;
//! - one chunk and tiny chunks give the same counts, rejects and totals;
//! - the rendered rejects.csv has one well-formed 5-field record per
//!   reject, and control.json is JSON whose counts add up.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use settle::calendar;
use settle::config::{self, Settings};
use settle::ingest::{Merchants, Source, header, merchants, txn};
use settle::output::{self, control::InputFile, control::RunInfo};
use settle::pipeline::{self, Input, Plan, Settled, TxnFile};

const FILE: &str = "fuzz.csv";
const MERCHANTS: &str = include_str!("../data/merchants.csv");
const CONFIG_FIXTURES: &str = include_str!("../data/settle-fixtures.toml");
const CONFIG_EXAMPLE: &str = include_str!("../data/settle-example.toml");

struct World {
    configs: [Settings; 2],
    merchants: Merchants,
    pool: rayon::ThreadPool,
}

static WORLD: LazyLock<World> = LazyLock::new(|| World {
    configs: [
        config::parse("settle-fixtures.toml".as_ref(), CONFIG_FIXTURES)
            .expect("fuzz/data/settle-fixtures.toml is valid"),
        config::parse("settle-example.toml".as_ref(), CONFIG_EXAMPLE)
            .expect("fuzz/data/settle-example.toml is valid"),
    ],
    merchants: merchants::parse(MERCHANTS.as_bytes(), "merchants.csv")
        .expect("fuzz/data/merchants.csv is valid"),
    // One worker: the fuzzer runs with -jobs=1 on a small machine, and the
    // chunked parse still cuts the file into many chunks.
    pool: rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool"),
});

fn settle_once(
    world: &World,
    settings: &Settings,
    source: &Source,
    header: &header::Header,
    through: Option<calendar::Day>,
    chunk_bytes: usize,
) -> Settled {
    let plan = Plan {
        settings,
        merchants: &world.merchants,
        txn_files: vec![TxnFile {
            name: FILE,
            input: Input::Bytes(source),
            header,
        }],
        adjustments: None,
        through,
        chunk_bytes,
        prior: None,
        terminal_ids: true,
        journal_per_transaction: false,
        progress: None,
    };
    match world.pool.install(|| pipeline::run(&plan)) {
        Ok(settled) => settled,
        Err(error) => panic!("a file with a good header must not stop the run: {error}"),
    }
}

/// Accepted and rejected rows of file 0, each counted from its own source.
fn counts(settled: &Settled) -> (u64, u64) {
    let accepted = settled
        .parsed
        .txns
        .iter()
        .zip(&settled.linked.rejected)
        .filter(|(t, rejected)| t.file_index == 0 && rejected.is_none())
        .count() as u64;
    let rejected = settled.rejects.iter().filter(|r| r.file_index == 0).count() as u64;
    (accepted, rejected)
}

/// Splits RFC 4180 text into records of fields. Independent of the engine's
/// reader on purpose. Returns None on a stray quote or an unterminated field.
fn read_csv(text: &str) -> Option<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_field_start => {
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        other => field.push(other),
                    }
                }
                at_field_start = false;
                match chars.peek() {
                    None | Some(',') | Some('\n') => {}
                    Some(_) => return None,
                }
            }
            '"' => return None,
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    if !field.is_empty() || !record.is_empty() {
        return None; // every record must end with a line end
    }
    Some(records)
}

fn check_outputs(world: &World, settings: &Settings, settled: &Settled, through: Option<i32>) {
    let input = |path: &str| InputFile {
        path: path.to_string(),
        sha256: "0".repeat(64),
        stored: None,
    };
    let info = RunInfo {
        config: input("settle.toml"),
        merchants: input("merchants.csv"),
        transactions: vec![input(FILE)],
        adjustments: None,
        through,
        detail: true,
        state: false,
    };
    // The outputs are written as a run writes them, into a folder of this
    // process's own, read back, and removed.
    let out = std::env::temp_dir().join(format!("settle-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let staging = output::Staging::create(&out).expect("the fuzz output folder can be made");
    world.pool.install(|| {
        let mut written =
            output::write_outputs(&staging, settled, &world.merchants, settings, &info)
                .expect("the outputs can be written");
        output::finish(
            &staging,
            &mut written,
            settled,
            &world.merchants,
            &info,
            None,
            Vec::new(),
        )
        .expect("control.json can be written");
    });
    staging
        .publish()
        .expect("the fuzz output folder can be published");
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name} is written: {e}"))
    };
    let (rejects_text, control_text) = (read("rejects.csv"), read("control.json"));
    std::fs::remove_dir_all(&out).expect("the fuzz output folder can be removed");
    let file = |name: &str| match name {
        "rejects.csv" => rejects_text.as_str(),
        _ => control_text.as_str(),
    };

    let rejects = read_csv(file("rejects.csv")).expect("rejects.csv is well-formed CSV");
    assert_eq!(
        rejects.len(),
        settled.rejects.len() + 1,
        "rejects.csv has a header and one record per reject"
    );
    for (record, reject) in rejects.iter().skip(1).zip(&settled.rejects) {
        assert_eq!(
            record.len(),
            5,
            "a rejects.csv record has 5 fields: {record:?}"
        );
        assert_eq!(record[0], FILE);
        assert_eq!(record[1], reject.line.to_string());
        assert_eq!(
            record[2], reject.id,
            "txn_id round-trips through rejects.csv"
        );
        assert_eq!(record[3], reject.code.as_str());
    }

    let control: serde_json::Value =
        serde_json::from_str(file("control.json")).expect("control.json is JSON");
    let counted = &control["inputs"]["transactions"][0];
    let n = |key: &str| {
        counted[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is a number"))
    };
    assert_eq!(n("rows_read"), n("rows_accepted") + n("rows_rejected"));
    assert_eq!(n("rows_read"), settled.txn_counts[0].rows_read);
    assert_eq!(control["balanced"], serde_json::Value::Bool(true));
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, csv)) = data.split_first() else {
        return;
    };
    let world = &*WORLD;
    let chunk_bytes = 1 + usize::from(control & 0x3f);
    let through = (control & 0x40 != 0).then(|| calendar::day_from_civil(2026, 11, 4));
    let settings = &world.configs[usize::from(control >> 7)];

    let source = Source::Owned(csv.to_vec());
    let header = match header::read(&source, FILE, &txn::COLUMNS) {
        Ok(header) => header,
        Err(error) => {
            assert_eq!(
                error.exit_code(),
                2,
                "a bad header is a usage-class error: {error}"
            );
            assert!(
                matches!(error, settle::Error::Input { .. }),
                "a bad header is an Input error: {error:?}"
            );
            return;
        }
    };

    let whole = settle_once(world, settings, &source, &header, through, usize::MAX / 2);
    let file_counts = whole.txn_counts[0];
    let (accepted, rejected) = counts(&whole);
    assert_eq!(
        file_counts.rows_read,
        accepted + rejected,
        "rows read = accepted + rejected"
    );
    assert_eq!(file_counts.rows_accepted, accepted);
    assert_eq!(file_counts.rows_rejected, rejected);

    // RULES.md 1: LF, CR LF and a lone CR each end a physical line.
    let line_ends = csv
        .iter()
        .enumerate()
        .filter(|&(at, &b)| b == b'\n' || (b == b'\r' && csv.get(at + 1) != Some(&b'\n')))
        .count() as u64;
    let last_line = line_ends + 1;
    for reject in &whole.rejects {
        assert!(
            reject.line > header.lines_before_data && reject.line <= last_line,
            "reject line {} outside data lines {}..={last_line}",
            reject.line,
            header.lines_before_data + 1
        );
    }

    let chunked = settle_once(world, settings, &source, &header, through, chunk_bytes);
    assert_eq!(
        chunked.txn_counts, whole.txn_counts,
        "chunk size changed the counts"
    );
    assert_eq!(
        chunked.rejects, whole.rejects,
        "chunk size changed the rejects"
    );
    assert_eq!(
        chunked.totals, whole.totals,
        "chunk size changed the totals"
    );
    assert_eq!(
        chunked.rows, whole.rows,
        "chunk size changed the settlement rows"
    );

    check_outputs(world, settings, &whole, through);
});
