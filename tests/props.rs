//! Property tests of the invariants, on generated inputs: conservation,
//! read = accepted + rejected per file, byte-identical outputs for any
//! thread count, chunk size and split of the input into files, and no panic
//! on arbitrary bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proptest::prelude::*;
use settle::{RunOptions, run};

mod common;
use common::{ADJ_HEADER, read_tree};

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
    dated_record().prop_map(|(_, record)| record)
}

/// The business date of a generated timestamp in the configured zone
/// (+08:00, the default), as a day of November 2026 (1 to 13): a `Z`
/// timestamp is 8 hours behind it, a `-05:00` one 13 hours.
fn business_day(day: u8, hour: u8, zone: &str) -> u8 {
    let behind = match zone {
        "Z" => 8,
        "-05:00" => 13,
        _ => 0,
    };
    day + u8::from(hour + behind >= 24)
}

/// One generated record and the business date of its timestamp (1 to 13,
/// the day of November 2026), already written as CSV (without its line end).
fn dated_record() -> impl Strategy<Value = (u8, String)> {
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
            (
                business_day(day as u8 + 1, hour, zone),
                format!("2026-11-{:02}{sep}{hour:02}:{minute:02}:00{zone}", day + 1),
            )
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
        .prop_map(
            |(id, merchant, (date, ts), kind, amount, card, orig, mcc, quirk)| {
                let terminal = match quirk {
                    0 => "\"POS, front\"".to_string(),
                    1 => "\"multi\nline\"".to_string(),
                    2 => "\"say \"\"hi\"\"\"".to_string(),
                    _ => "P1".to_string(),
                };
                let row =
                    format!("{id},{merchant},{ts},{kind},{amount},{card},{orig},{mcc},{terminal}");
                let record = match quirk {
                    3 => format!("{row},extra"),
                    4 => "   ".to_string(),
                    5 => format!(
                        "\"{id}\" ,{merchant},{ts},{kind},{amount},{card},{orig},{mcc},{terminal}"
                    ),
                    _ => row,
                };
                (date, record)
            },
        )
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
        no_state: false,
        format: settle::output::Format::Csv,
        threads,
        chunk_bytes,
        stats: false,
        out: dir.path(out),
        progress: None,
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

        // The journals are among the files compared above, one per
        // settlement file, and their postings sum exactly to every row
        // (recomputed here from the CSV files, not by the engine's check).
        let with_prefix = |files: &BTreeMap<String, Vec<u8>>, prefix: &str| -> Vec<String> {
            files.keys().filter_map(|name| name.strip_prefix(prefix)).map(String::from).collect()
        };
        let settlement_dates = with_prefix(&serial, "settlement-");
        prop_assert_eq!(&with_prefix(&serial, "journal-"), &settlement_dates);
        for date in &settlement_dates {
            let name = format!("journal-{date}");
            prop_assert_eq!(&serial[&name], &parallel[&name]);
        }
        common::check_journals_against_rows(&serial);

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
        // The settlement, detail and journal files (the journal holds no
        // file name or line: it is the same whatever the split).
        let settlements = |files: &BTreeMap<String, Vec<u8>>| {
            files.iter().filter(|(name, _)| name.starts_with("settlement-") || name.starts_with("fees-") || name.starts_with("journal-")).map(|(n, b)| (n.clone(), b.clone())).collect::<Vec<_>>()
        };
        prop_assert_eq!(settlements(&serial), settlements(&split));
        prop_assert_eq!(&control["totals"], &self::control(&split)["totals"]);

        // Without --detail the journal posts groups: the same for one
        // thread and one chunk as for three threads, small chunks and the
        // split files; the settlement files are those of the detailed run.
        let grouped = |out: &str, files: Vec<String>, threads: usize, chunk_bytes: usize| {
            run(&RunOptions { detail: false, ..options(&dir, files, out, threads, chunk_bytes) }).expect("a run");
            read_tree(&dir.path(out))
        };
        let grouped_serial = grouped("grouped-serial", vec![dir.path("all.csv").display().to_string()], 1, usize::MAX / 2);
        let grouped_split = grouped("grouped-split", vec![dir.path("part1.csv").display().to_string(), dir.path("part2.csv").display().to_string()], 3, chunk_bytes);
        prop_assert_eq!(settlements(&grouped_serial), settlements(&grouped_split));
        prop_assert_eq!(&with_prefix(&grouped_serial, "journal-"), &settlement_dates);
        let only_settlements = |files: &BTreeMap<String, Vec<u8>>| {
            files.iter().filter(|(name, _)| name.starts_with("settlement-")).map(|(n, b)| (n.clone(), b.clone())).collect::<Vec<_>>()
        };
        prop_assert_eq!(only_settlements(&serial), only_settlements(&grouped_serial));
        common::check_journals_against_rows(&grouped_serial);

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

/// The files of a run whose names start with one of `prefixes`.
fn named(files: &BTreeMap<String, Vec<u8>>, prefixes: &[&str]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(name, _)| prefixes.iter().any(|prefix| name.starts_with(prefix)))
        .map(|(name, bytes)| (name.clone(), bytes.clone()))
        .collect()
}

/// A journal file with the source and detail of its `carried_in` postings
/// blanked: the one thing a chain of runs may write differently from one
/// run (`from=state` where one run says `from=YYYY-MM-DD`).
fn without_carried_from(bytes: &[u8]) -> String {
    common::parse_csv(std::str::from_utf8(bytes).expect("UTF-8"))
        .into_iter()
        .map(|mut fields| {
            if fields.get(3).map(String::as_str) == Some("carried_in") {
                fields[10] = String::new();
                fields[11] = String::new();
            }
            common::csv_line(&fields)
        })
        .collect()
}

/// A purchase of the chained property and what follows it: voids on its
/// day (same amount), refunds some days later; its id may repeat the
/// previous purchase's.
#[derive(Clone, Debug)]
struct Sale {
    merchant: usize,
    day: u8,
    minute: u16,
    amount_fen: u32,
    credit: bool,
    mcc: usize,
    repeat_id: bool,
    /// (void, days later, refund amount seed)
    follows: Vec<(bool, u8, u32)>,
}

fn sale() -> impl Strategy<Value = Sale> {
    (
        (0usize..5, 1u8..14, 0u16..1380, 1u32..150_000, any::<bool>()),
        (0usize..3, prop::bool::weighted(0.05)),
        prop::collection::vec((prop::bool::weighted(0.2), 0u8..5, any::<u32>()), 0..3),
    )
        .prop_map(
            |((merchant, day, minute, amount_fen, credit), (mcc, repeat_id), follows)| Sale {
                merchant,
                day,
                minute,
                amount_fen,
                credit,
                mcc,
                repeat_id,
                follows,
            },
        )
}

/// The sales as transaction records with their business dates (the day of
/// November 2026), in time order. Most refunds and voids are valid; some
/// exceed the purchase or name a purchase that a repeated id made a
/// duplicate.
fn story(sales: &[Sale]) -> Vec<(u8, String)> {
    const MERCHANT_IDS: [&str; 5] = ["M1", "M2", "M3", "M4", "MX"];
    const MCCS: [&str; 3] = ["", "8062", "5812"];
    let fen = |f: u32| format!("{}.{:02}", f / 100, f % 100);
    let ts =
        |day: u8, minute: u16| format!("2026-11-{day:02} {:02}:{:02}:00", minute / 60, minute % 60);
    let mut rows: Vec<(u8, u16, usize, String)> = Vec::new();
    for (i, sale) in sales.iter().enumerate() {
        let id = if sale.repeat_id && i > 0 {
            format!("S{}", i - 1)
        } else {
            format!("S{i}")
        };
        let merchant = MERCHANT_IDS[sale.merchant];
        let card = if sale.credit { "credit" } else { "debit" };
        rows.push((
            sale.day,
            sale.minute,
            rows.len(),
            format!(
                "{id},{merchant},{},purchase,{},{card},,{},P{i}",
                ts(sale.day, sale.minute),
                fen(sale.amount_fen),
                MCCS[sale.mcc]
            ),
        ));
        for (k, (void, later, seed)) in sale.follows.iter().enumerate() {
            let minute = sale.minute + 1 + k as u16;
            let (kind, day, amount) = if *void {
                ("void", sale.day, sale.amount_fen)
            } else {
                // up to 120% of the purchase: a few exceed it
                (
                    "refund",
                    (sale.day + later).min(13),
                    (seed % (sale.amount_fen / 10 * 12 + 1)).max(1),
                )
            };
            rows.push((
                day,
                minute,
                rows.len(),
                format!(
                    "F{i}x{k},{merchant},{},{kind},{},,{id},,P{i}",
                    ts(day, minute),
                    fen(amount)
                ),
            ));
        }
    }
    rows.sort();
    rows.into_iter()
        .map(|(day, _, _, record)| (day, record))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// RULES.md 6 on generated input split by business date: the records
    /// (purchases with their voids and refunds, some crossing the split,
    /// and the noise of `dated_record`) up to day `split_day` settle in a
    /// run `--through` that day, the rest in a run from its state; each
    /// adjustment goes to the run that owns its settlement date. Each
    /// run's journals sum to its rows, and together the two give one run's
    /// settlement (and detail) files byte for byte, and its journals but
    /// for where a carried balance came from. One run reads the two parts
    /// in the same order (part 1, then part 2), so that "first in file
    /// order" means the same.
    #[test]
    fn two_chained_runs_split_by_date_settle_like_one_run(
        lag in 0u8..3,
        half_even in any::<bool>(),
        proportional in any::<bool>(),
        sales in prop::collection::vec(sale(), 0..40),
        records in prop::collection::vec(dated_record(), 0..20),
        adjustments in prop::collection::vec((0usize..5, 1u8..14, 1i32..20_000, any::<bool>()), 0..6),
        line_ends in prop::collection::vec(0u8..4, 60),
        split_day in 1u8..13,
        detail in any::<bool>(),
    ) {
        let dir = Dir::new();
        dir.write("settle.toml", config(lag, half_even, proportional).as_bytes());
        dir.write("merchants.csv", MERCHANTS.as_bytes());
        // An anchor purchase on 11-01 gives one run and the first of the
        // chain the same start (RULES.md 2).
        let mut first: Vec<String> = vec!["A0,M1,2026-11-01 09:00:00,purchase,1.00,debit,,,P1".to_string()];
        let mut second: Vec<String> = Vec::new();
        for (date, record) in story(&sales).iter().chain(&records) {
            if *date <= split_day { &mut first } else { &mut second }.push(record.clone());
        }
        let part1 = dir.write("day1.csv", join(&first, &line_ends).as_bytes());
        let part2 = dir.write("day2.csv", join(&second, &line_ends).as_bytes());
        // Adjustments booked into business date B's settlement (B + lag),
        // given to the run that owns it; ids never repeat.
        let (mut adj_all, mut adj1, mut adj2) = (vec![ADJ_HEADER.to_string()], vec![ADJ_HEADER.to_string()], vec![ADJ_HEADER.to_string()]);
        for (k, (merchant, business_day, fen, negative)) in adjustments.iter().enumerate() {
            let row = format!(
                "J{k},{},2026-11-{:02},{}{}.{:02},\"reason {k}, by hand\"",
                ["M1", "M2", "M3", "M4", "MX"][*merchant],
                business_day + lag,
                if *negative { "-" } else { "" },
                fen / 100,
                fen % 100
            );
            adj_all.push(row.clone());
            if *business_day <= split_day { &mut adj1 } else { &mut adj2 }.push(row);
        }
        for (name, rows) in [("adj.csv", &adj_all), ("adj1.csv", &adj1), ("adj2.csv", &adj2)] {
            dir.write(name, (rows.join("\n") + "\n").as_bytes());
        }
        let day = |d: u8| settle::calendar::parse_date(format!("2026-11-{d:02}").as_bytes()).expect("a date");
        // Every generated business date is 11-13 at the latest: the same horizon for both.
        let through = day(13);
        let run_into = |out: &str, files: Vec<String>, adjustments: &str, through, state_in: Option<&str>| {
            run(&RunOptions {
                adjustments: Some(dir.path(adjustments)),
                through: Some(through),
                state_in: state_in.map(|s| dir.path(s)),
                detail,
                ..options(&dir, files, out, 2, 64)
            })
            .expect("a run");
            read_tree(&dir.path(out))
        };
        let one = run_into("one", vec![part1.clone(), part2.clone()], "adj.csv", through, None);
        let run1 = run_into("run1", vec![part1], "adj1.csv", day(split_day), None);
        let run2 = run_into("run2", vec![part2], "adj2.csv", through, Some("run1"));

        for (out, files) in [("one", &one), ("run1", &run1), ("run2", &run2)] {
            common::check_journals_against_rows(files);
            let problems = settle::verify::verify(&dir.path(out)).expect("a readable folder");
            prop_assert!(problems.is_empty(), "settle verify {}: {:?}", out, problems);
        }

        let prefixes = ["settlement-", "fees-"];
        let mut chain = named(&run1, &prefixes);
        for (name, bytes) in named(&run2, &prefixes) {
            prop_assert!(chain.insert(name.clone(), bytes).is_none(), "both runs wrote {}", name);
        }
        prop_assert_eq!(&named(&one, &prefixes), &chain);

        let journals = |files: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, String> {
            named(files, &["journal-"]).into_iter().map(|(name, bytes)| (name, without_carried_from(&bytes))).collect()
        };
        let mut chained_journals = journals(&run1);
        chained_journals.extend(journals(&run2));
        prop_assert_eq!(journals(&one), chained_journals);
    }
}
