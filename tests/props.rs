//! Property tests of the invariants, on generated inputs: conservation,
//! read = accepted + rejected per file, byte-identical outputs for any
//! thread count, chunk size and split of the input into files, and no panic
//! on arbitrary bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use settle::{RunOptions, run};

mod common;
use common::read_tree;

const MERCHANTS: &str = "merchant_id,mcc,activated_on,deposit,deactivated_on\n\
M1,5812,2026-11-01,299.00,\n\
M2,5411,2026-10-25,0.00,2026-11-05\n\
M3,5999,2026-11-03,100.00,2026-11-20\n\
M4,8062,2026-11-02,50.00,2026-11-04\n";

fn config(lag: u8, half_even: bool, proportional: bool) -> String {
    format!(
        r#"settlement_lag_days = {lag}
rounding = "{}"
refund_fee = "{}"
max_txn_amount = "5000.00"
[deposit]
refund_volume = "500.00"
refund_window_days = 4
[[category]]
name = "welfare"
mcc = ["8062"]
debit_rate = "0"
credit_rate = "0"
[[category]]
name = "dining"
mcc = ["5811-5814"]
debit_rate = "0.0049"
credit_rate = "0.0049"
debit_cap = "1.00"
[[category]]
name = "general"
default = true
debit_rate = "0.0038"
credit_rate = "0.0045"
"#,
        if half_even { "half_even" } else { "half_up" },
        if proportional { "proportional" } else { "kept" },
    )
}

const HEADER: &str = "txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc,terminal_id";

/// One generated record, already written as CSV (without its line end).
fn record() -> impl Strategy<Value = String> {
    let id = (0u8..40).prop_map(|n| format!("T{n}"));
    let merchant = prop_oneof![Just("M1"), Just("M2"), Just("M3"), Just("M4"), Just("MX")];
    let ts = (
        0i32..12,
        0u8..24,
        0u8..60,
        prop_oneof![
            Just(""),
            Just("Z"),
            Just("+08:00"),
            Just("-05:00"),
            Just(".5+08:00")
        ],
        any::<bool>(),
    )
        .prop_map(|(day, hour, minute, zone, space)| {
            let sep = if space { " " } else { "T" };
            format!("2026-11-{:02}{sep}{hour:02}:{minute:02}:00{zone}", day + 1)
        });
    let kind = prop_oneof![6 => Just("purchase"), 3 => Just("refund"), 2 => Just("void"), 1 => Just("Purchase")];
    let amount = prop_oneof![
        8 => (1u32..200_000).prop_map(|fen| format!("{}.{:02}", fen / 100, fen % 100)),
        1 => Just("0.00".to_string()),
        1 => Just("12.345".to_string()),
        1 => Just("6000".to_string()),
        1 => Just("-5".to_string()),
    ];
    let card = prop_oneof![Just("debit"), Just("credit"), Just(""), Just("visa")];
    let mcc = prop_oneof![4 => Just(""), 1 => Just("8062"), 1 => Just("5812"), 1 => Just("58x")];
    let quirk = 0u8..20;
    (
        id,
        merchant,
        ts,
        kind,
        amount,
        card,
        (0u8..40).prop_map(|n| format!("T{n}")),
        mcc,
        quirk,
    )
        .prop_map(|(id, merchant, ts, kind, amount, card, orig, mcc, quirk)| {
            let terminal = match quirk {
                0 => "\"POS, front\"".to_string(),
                1 => "\"multi\nline\"".to_string(),
                2 => "\"say \"\"hi\"\"\"".to_string(),
                _ => "P1".to_string(),
            };
            let row =
                format!("{id},{merchant},{ts},{kind},{amount},{card},{orig},{mcc},{terminal}");
            match quirk {
                3 => format!("{row},extra"),
                4 => "   ".to_string(),
                5 => format!(
                    "\"{id}\" ,{merchant},{ts},{kind},{amount},{card},{orig},{mcc},{terminal}"
                ),
                _ => row,
            }
        })
}

#[derive(Debug)]
struct Case {
    lag: u8,
    half_even: bool,
    proportional: bool,
    records: Vec<String>,
    line_ends: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(record(), 0..60),
        prop::collection::vec(0u8..4, 60),
    )
        .prop_map(|(lag, half_even, proportional, records, line_ends)| Case {
            lag,
            half_even,
            proportional,
            records,
            line_ends,
        })
}

fn join(records: &[String], line_ends: &[u8]) -> String {
    let mut text = format!("{HEADER}\n");
    for (i, record) in records.iter().enumerate() {
        text.push_str(record);
        text.push_str(match line_ends[i % line_ends.len()] {
            0 => "\r\n",
            1 => "\n\n",
            _ => "\n",
        });
    }
    text
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("a temp dir"))
    }

    fn write(&self, name: &str, text: &[u8]) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write a test input");
        path.display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn options(
    dir: &Dir,
    transactions: Vec<String>,
    out: &str,
    threads: usize,
    chunk_bytes: usize,
) -> RunOptions {
    RunOptions {
        config: dir.path("settle.toml"),
        merchants: dir.path("merchants.csv"),
        transactions,
        adjustments: None,
        through: None,
        state_in: None,
        detail: true,
        threads,
        chunk_bytes,
        stats: false,
        out: dir.path(out),
    }
}

fn control(files: &BTreeMap<String, Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(&files["control.json"]).expect("control.json is JSON")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn outputs_do_not_depend_on_threads_chunks_or_file_split(case in case(), chunk_bytes in 1usize..300, split_at in 0usize..60) {
        let dir = Dir::new();
        dir.write("settle.toml", config(case.lag, case.half_even, case.proportional).as_bytes());
        dir.write("merchants.csv", MERCHANTS.as_bytes());
        let whole = dir.write("all.csv", join(&case.records, &case.line_ends).as_bytes());

        run(&options(&dir, vec![whole.clone()], "serial", 1, usize::MAX / 2)).expect("a run");
        run(&options(&dir, vec![whole], "parallel", 3, chunk_bytes)).expect("a run");
        let serial = read_tree(&dir.path("serial"));
        let parallel = read_tree(&dir.path("parallel"));
        prop_assert_eq!(&serial, &parallel);

        // Conservation was checked by the run; the counts must add up, and
        // every non-blank record is a row.
        let control = control(&serial);
        prop_assert_eq!(&control["balanced"], &serde_json::Value::Bool(true));
        let problems = settle::verify::verify(&dir.path("serial")).expect("a readable folder");
        prop_assert!(problems.is_empty(), "settle verify: {:?}", problems);
        let file = &control["inputs"]["transactions"][0];
        let read = file["rows_read"].as_u64().unwrap();
        prop_assert_eq!(read, case.records.len() as u64);
        prop_assert_eq!(read, file["rows_accepted"].as_u64().unwrap() + file["rows_rejected"].as_u64().unwrap());
        let reject_lines = String::from_utf8_lossy(&serial["rejects.csv"]).lines().count() as u64;
        prop_assert!(reject_lines > file["rows_rejected"].as_u64().unwrap(), "one reject row at least per rejected row");

        // Split into two files at a record boundary: same settlement files.
        let split_at = split_at.min(case.records.len());
        let first = dir.write("part1.csv", join(&case.records[..split_at], &case.line_ends).as_bytes());
        let second = dir.write("part2.csv", join(&case.records[split_at..], &case.line_ends).as_bytes());
        run(&options(&dir, vec![first, second], "split", 2, chunk_bytes)).expect("a run");
        let split = read_tree(&dir.path("split"));
        let settlements = |files: &BTreeMap<String, Vec<u8>>| {
            files.iter().filter(|(name, _)| name.starts_with("settlement-") || name.starts_with("fees-")).map(|(n, b)| (n.clone(), b.clone())).collect::<Vec<_>>()
        };
        prop_assert_eq!(settlements(&serial), settlements(&split));
        prop_assert_eq!(&control["totals"], &self::control(&split)["totals"]);

        // The same bytes on stdin, streamed in blocks of `chunk_bytes`: the
        // same rows, line numbers, digest and totals.
        let text = std::fs::read(dir.path("all.csv")).unwrap();
        let out = dir.path("stdin").display().to_string();
        let args: Vec<String> = ["run", "--config", "settle.toml", "--merchants", "merchants.csv", "--transactions", "-", "--detail", "--threads", "3", "--chunk-bytes", &chunk_bytes.to_string(), "--out", &out].iter().map(|a| a.to_string()).collect();
        let (code, _, stderr) = common::exec(dir.0.path(), &args, Some(&text));
        prop_assert_eq!(code, 0, "{}", stderr);
        let streamed = read_tree(&dir.path("stdin"));
        prop_assert_eq!(settlements(&serial), settlements(&streamed));
        let whole_path = dir.path("all.csv").display().to_string();
        let rejects = |files: &BTreeMap<String, Vec<u8>>| String::from_utf8_lossy(&files["rejects.csv"]).replace(&whole_path, "-");
        prop_assert_eq!(rejects(&serial), rejects(&streamed));
        let streamed_control = self::control(&streamed);
        prop_assert_eq!(&control["totals"], &streamed_control["totals"]);
        for key in ["sha256", "rows_read", "rows_accepted", "rows_rejected"] {
            prop_assert_eq!(&file[key], &streamed_control["inputs"]["transactions"][0][key]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..400), with_header in any::<bool>(), chunk_bytes in 1usize..64) {
        let dir = Dir::new();
        dir.write("settle.toml", config(1, false, false).as_bytes());
        dir.write("merchants.csv", MERCHANTS.as_bytes());
        let mut bytes = if with_header { format!("{HEADER}\n").into_bytes() } else { Vec::new() };
        bytes.extend_from_slice(&body);
        let path = dir.write("noise.csv", &bytes);
        match run(&options(&dir, vec![path], "out", 2, chunk_bytes)) {
            Ok(_) => {
                let control = control(&read_tree(&dir.path("out")));
                let file = &control["inputs"]["transactions"][0];
                prop_assert_eq!(
                    file["rows_read"].as_u64().unwrap(),
                    file["rows_accepted"].as_u64().unwrap() + file["rows_rejected"].as_u64().unwrap()
                );
            }
            Err(error) => {
                prop_assert_eq!(error.exit_code(), 2, "only a bad header may stop the run: {}", error);
                prop_assert!(!dir.path("out").exists(), "nothing is published");
            }
        }
    }
}
