//! RULES.md 6 on generated data: runs over days 1–10, 11–20 and 21–30, each
//! starting from the state of the one before, give byte-identical settlement
//! files to one run over days 1–30, and a re-run from the same state into a
//! new folder gives byte-identical files, the state included.
//!
//! The data set is checked to hold what makes the equivalence non-trivial:
//! refunds that cross run boundaries, deposits released and forfeited in
//! later runs, deactivations, and negative balances carried into a later
//! run. `cargo test` runs it on 200k rows; CI runs it again on 1M rows with
//! `SETTLE_CHAIN_ROWS=1000000 cargo test --release --test chain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::read_tree as files;

fn settle(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_settle"))
        .args(args)
        .output()
        .expect("settle runs");
    assert!(
        output.status.success(),
        "settle {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn settlements(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .filter(|(name, _)| name.starts_with("settlement-"))
        .collect()
}

/// The rows of settlement files as (merchant, column → amount text).
fn rows(files: &BTreeMap<String, Vec<u8>>) -> Vec<BTreeMap<String, String>> {
    let mut all = Vec::new();
    for bytes in files.values() {
        let text = String::from_utf8(bytes.clone()).expect("UTF-8");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        for line in lines {
            all.push(
                header
                    .iter()
                    .zip(line.split(','))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    all
}

fn nonzero(rows: &[BTreeMap<String, String>], column: &str) -> usize {
    rows.iter().filter(|r| r[column] != "0.00").count()
}

#[test]
fn three_chained_runs_settle_exactly_like_one_run() {
    let rows_wanted: usize = std::env::var("SETTLE_CHAIN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let merchants = (rows_wanted / 100).max(500).to_string();
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let text = |p: PathBuf| p.to_str().expect("a UTF-8 path").to_string();
    settle(&[
        "gen",
        "--merchants",
        &merchants,
        "--rows",
        &rows_wanted.to_string(),
        "--days",
        "30",
        "--seed",
        "11",
        "--out",
        &text(path("data")),
    ]);
    let base = |out: &str| -> Vec<String> {
        [
            "run",
            "--config",
            &text(path("data/settle.toml")),
            "--merchants",
            &text(path("data/merchants.csv")),
            "--transactions",
            &text(path("data/transactions.csv")),
            "--out",
            &text(path(out)),
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |out: &str, extra: &[&str]| {
        let mut args = base(out);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        settle(&args);
    };
    run("whole", &[]);
    // Each run gets the whole file: rows of earlier runs come back as
    // duplicate_txn_id or late_transaction, rows of later ones as
    // beyond_horizon; only its own days settle.
    run("part1", &["--through", "2026-11-10"]);
    let part1 = text(path("part1"));
    run("part2", &["--through", "2026-11-20", "--state-in", &part1]);
    let part2 = text(path("part2"));
    run("part3", &["--state-in", &part2]);

    let whole = settlements(&path("whole"));
    let mut chain = settlements(&path("part1"));
    let later: BTreeMap<String, Vec<u8>> = settlements(&path("part2"))
        .into_iter()
        .chain(settlements(&path("part3")))
        .collect();
    let later_rows = rows(&later);
    chain.extend(later);
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        chain.keys().collect::<Vec<_>>(),
        "the same settlement dates"
    );
    for (name, bytes) in &whole {
        assert!(
            bytes == &chain[name],
            "{name} differs between one run and the chain"
        );
    }

    // What makes the equivalence non-trivial happened in the later runs.
    assert!(nonzero(&later_rows, "deposit_released") > 0, "releases");
    assert!(nonzero(&later_rows, "deposit_forfeited") > 0, "forfeits");
    assert!(
        nonzero(&later_rows, "deactivation_fee") > 0,
        "deactivations"
    );
    let carried_in = later_rows
        .iter()
        .filter(|r| r["carried_in"].starts_with('-'))
        .count();
    assert!(carried_in > 0, "negative balances carried into later runs");
    // Refunds in runs 2 and 3 of purchases settled in an earlier run: the
    // state's index linked them (a refund of a purchase it did not hold
    // would be rejected, and the settlement files would differ).
    let transactions =
        std::fs::read_to_string(path("data/transactions.csv")).expect("transactions");
    let mut purchase_day: BTreeMap<&str, &str> = BTreeMap::new();
    let mut crossing = 0;
    for line in transactions.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 7 || fields[2].len() < 10 {
            continue;
        }
        let day = &fields[2][..10];
        match fields[3] {
            "purchase" => {
                purchase_day.insert(fields[0], day);
            }
            "refund" => {
                if let Some(bought) = purchase_day.get(fields[6])
                    && ((*bought <= "2026-11-10" && day > "2026-11-10")
                        || (*bought <= "2026-11-20" && day > "2026-11-20"))
                {
                    crossing += 1;
                }
            }
            _ => {}
        }
    }
    assert!(crossing > 0, "refunds that cross a run boundary");
    println!(
        "{rows_wanted} rows: {} settlement files equal; later runs: {} releases, {} forfeits, {} deactivation fees, {carried_in} negative carried_in, {crossing} refunds across a boundary",
        whole.len(),
        nonzero(&later_rows, "deposit_released"),
        nonzero(&later_rows, "deposit_forfeited"),
        nonzero(&later_rows, "deactivation_fee"),
    );

    // Idempotent: the same inputs and state into a new folder give the
    // same bytes, the state included.
    run("part3-again", &["--state-in", &part2]);
    let first = files(&path("part3"));
    let again = files(&path("part3-again"));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        again.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(bytes == &again[name], "{name} differs on a re-run");
    }
    // The states the runs started from are untouched, and every folder
    // passes `settle verify`.
    for out in ["part1", "part2", "part3"] {
        let status = Command::new(env!("CARGO_BIN_EXE_settle"))
            .args(["verify", &text(path(out))])
            .output()
            .expect("settle verify runs");
        assert!(
            status.status.success(),
            "verify {out}: {}",
            String::from_utf8_lossy(&status.stdout)
        );
    }
}
