//! Stream mode's close and merge without NATS (docs/STREAM.md): the input
//! is cut into records, judged (step 3) and dealt to partitions in
//! process, as the publisher does; each partition is opened, the run's
//! start is the least of theirs, each is finished, and `merge` joins them.
//! Every file of the merged folder must equal, byte for byte, what
//! `settle run --through DAY` writes over the same files, for P = 1, 2, 4
//! and a P that leaves partitions empty, and for a chain of two days.

use std::path::{Path, PathBuf};

use settle::calendar::{self, Day};
use settle::output::control::sha256_hex;
use settle::run::{RunOptions, run};
use settle::stream::judge::Judge;
use settle::stream::merge::{MergeOptions, merge};
use settle::stream::partition::{PartitionOptions, open};
use settle::stream::records::Records;
use settle::stream::{FileHead, Row, partition_of};

mod common;

/// The inputs of one close.
struct Day1 {
    config: PathBuf,
    merchants: PathBuf,
    adjustments: Option<PathBuf>,
    transactions: Vec<PathBuf>,
    through: Day,
    state_in: Option<PathBuf>,
}

/// A work folder, kept (and printed) when `STREAM_KEEP` is set, to look
/// at a failing case.
fn work_dir() -> (Option<tempfile::TempDir>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("STREAM_KEEP").is_some() {
        let path = dir.keep();
        eprintln!("work folder kept: {}", path.display());
        return (None, path);
    }
    let path = dir.path().to_path_buf();
    (Some(dir), path)
}

fn day(text: &str) -> Day {
    calendar::parse_date(text.as_bytes()).expect("a date")
}

fn name(path: &Path) -> String {
    path.display().to_string()
}

/// What the publisher does: each file cut into records, judged in file
/// order, each row tagged with its merchant's bytes.
fn publish(config: &Path, files: &[PathBuf]) -> (Vec<FileHead>, Vec<(Row, Vec<u8>)>) {
    let mut judge = Judge::with_config(config).expect("the configuration loads");
    let mut heads = Vec::new();
    let mut rows = Vec::new();
    for (file_index, path) in files.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let mut records = Records::new(&bytes, &name(path)).expect("a header");
        heads.push(records.head(&name(path), sha256_hex(&bytes)));
        judge.start_file(file_index as u32, &records.header);
        let merchant_column = records.header.columns[1];
        while let Some(cut) = records.next() {
            let merchant = cut.record.field_or_empty(merchant_column).to_vec();
            let line = cut.line;
            let verdict = judge
                .judge(file_index as u32, line, cut.record, cut.bytes)
                .unwrap();
            rows.push((
                Row {
                    file_index: file_index as u32,
                    line,
                    bytes: cut.bytes.to_vec(),
                    duplicate_of: verdict,
                },
                merchant,
            ));
        }
    }
    (heads, rows)
}

/// The close of `input` in `partitions` partitions, merged into `out`.
fn stream(input: &Day1, partitions: u32, work: &Path, out: &Path) {
    let (heads, rows) = publish(&input.config, &input.transactions);
    let mut opened = Vec::new();
    for partition in 0..partitions {
        let mine: Vec<Row> = rows
            .iter()
            .filter(|(_, merchant)| partition_of(merchant, partitions) == partition)
            .map(|(row, _)| row.clone())
            .collect();
        let options = PartitionOptions {
            config: input.config.clone(),
            merchants: input.merchants.clone(),
            adjustments: input.adjustments.clone(),
            state_in: input.state_in.clone(),
            through: input.through,
            partition,
            partitions,
        };
        opened.push(open(&options, &heads, &mine).expect("the partition opens"));
    }
    let start = opened.iter().filter_map(|o| o.local_start()).min();
    let mut dirs = Vec::new();
    for (partition, one) in opened.into_iter().enumerate() {
        let dir = work.join(format!("part-{partition}-of-{partitions}"));
        let summary = one.finish(start, &dir).expect("the partition publishes");
        assert_eq!(summary.start, start);
        dirs.push(dir);
    }
    // Any order of the folders will do.
    dirs.reverse();
    merge(&MergeOptions {
        partitions: dirs,
        out: out.to_path_buf(),
    })
    .expect("the partitions merge");
}

fn batch(input: &Day1, out: &Path) {
    run(&RunOptions {
        config: input.config.clone(),
        merchants: input.merchants.clone(),
        transactions: input.transactions.iter().map(|p| name(p)).collect(),
        adjustments: input.adjustments.clone(),
        through: Some(input.through),
        state_in: input.state_in.clone(),
        detail: false,
        no_state: false,
        format: settle::output::Format::Csv,
        threads: 0,
        chunk_bytes: 0,
        stats: false,
        out: out.to_path_buf(),
        progress: None,
    })
    .expect("the batch run publishes");
}

/// Every file of both folders, compared byte for byte, with the first
/// differing line in the message.
fn assert_same(batch: &Path, merged: &Path, what: &str) {
    let a = common::read_tree(batch);
    let b = common::read_tree(merged);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: the same files"
    );
    for (file, bytes) in &a {
        if bytes != &b[file] {
            let (x, y) = (
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&b[file]),
            );
            let at = x.lines().zip(y.lines()).position(|(p, q)| p != q);
            let line = |t: &str| at.and_then(|n| t.lines().nth(n)).unwrap_or("").to_string();
            panic!(
                "{what}: {file} differs (line {:?}):\n batch:  {}\n stream: {}",
                at.map(|n| n + 1),
                line(&x),
                line(&y)
            );
        }
    }
}

/// Batch and stream for each P, compared; returns the batch folder.
fn check(input: &Day1, work: &Path, label: &str, partition_counts: &[u32]) -> PathBuf {
    let expected = work.join(format!("batch-{label}"));
    batch(input, &expected);
    for &partitions in partition_counts {
        let merged = work.join(format!("merged-{label}-{partitions}"));
        let parts = work.join(format!("parts-{label}-{partitions}"));
        stream(input, partitions, &parts, &merged);
        assert_same(&expected, &merged, &format!("{label}, P = {partitions}"));
    }
    expected
}

/// Merchant ids such that each named pair falls into different partitions
/// for P = 2 and P = 4.
fn spread_ids() -> [String; 4] {
    let candidates: Vec<String> = (1..200).map(|n| format!("M{n:03}")).collect();
    let apart = |a: &str, b: &str| {
        [2, 4]
            .iter()
            .all(|&p| partition_of(a.as_bytes(), p) != partition_of(b.as_bytes(), p))
    };
    let a = candidates[0].clone();
    let b = candidates.iter().find(|c| apart(&a, c)).unwrap().clone();
    let c = candidates
        .iter()
        .find(|c| {
            *c != &a && *c != &b && partition_of(c.as_bytes(), 4) != partition_of(a.as_bytes(), 4)
        })
        .unwrap()
        .clone();
    let d = candidates
        .iter()
        .find(|d| apart(&c, d) && *d != &a && *d != &b)
        .unwrap()
        .clone();
    [a, b, c, d]
}

const CONFIG: &str = "fixtures/settle.toml";

#[test]
fn hand_made_rows_merge_to_the_batch_run_and_chain() {
    let (_dir, work) = work_dir();
    let work = work.as_path();
    let [a, b, c, d] = spread_ids();
    // D's deposit window (14 days from 10-18) ends on 10-31: only the
    // run's start (10-31, from C's row) puts its forfeit into this run,
    // whatever D's own partition sees. E is deactivated on 11-01.
    let merchants = format!(
        "merchant_id,mcc,activated_on,deposit,deactivated_on\n\
         {a},5411,2026-10-01,299.00,\n\
         {b},5812,2026-10-01,299.00,\n\
         {c},5999,2026-10-01,0.00,\n\
         {d},5411,2026-10-18,299.00,\n\
         E01,5411,2026-10-01,299.00,2026-11-01\n\
         G01,8062,2026-10-25,0.00,2026-11-03\n"
    );
    let header = "txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc,terminal_id";
    // File 1: CR LF, blank lines, a lone CR, quoted fields with line ends.
    let file1 = [
        String::new(),
        header.to_string(),
        format!("T1,{a},2026-11-02 10:00:00,purchase,100.00,debit,,,"),
        format!("T1,{b},2026-11-02 10:05:00,purchase,50.00,debit,,,"),
        format!("T2,{a},2026-11-02 10:00:00,purchase,1x.00,debit,,,"),
        String::new(),
        format!("T2,{b},2026-11-02 11:00:00,purchase,20.00,credit,,,"),
        format!("T2,{a},2026-11-02 12:00:00,purchase,20.00,credit,,,"),
        format!("R1,{a},2026-11-02 13:00:00,refund,10.00,,T1,,"),
        format!("R2,{b},2026-11-02 13:00:00,refund,10.00,,T1,,"),
        format!("V1,{b},2026-11-02 14:00:00,void,20.00,,T2,,"),
        format!("X1,{a},2026-11-02"),
        "U1,ZZZ,2026-11-02 10:00:00,purchase,5.00,debit,,,".to_string(),
        format!("T3,\"{a}\",2026-11-03 09:00:00,purchase,77.70,credit,,,\"term\r\n1\""),
        format!("P0,{c},2026-10-31 10:00:00,purchase,30.00,debit,,,"),
        "I1,E01,2026-11-02 10:00:00,purchase,30.00,debit,,,".to_string(),
        format!("H1,{c},2026-11-06 10:00:00,purchase,30.00,debit,,,"),
        format!("O1,{b},2026-11-03 10:00:00,purchase,60000.00,debit,,,"),
    ]
    .join("\r\n");
    let file1 = file1.replace(&format!("P0,{c},"), &format!("\r\rP0,{c},")) + "\r\n";
    // File 2: LF, no line end at the end; ids of file 1 again.
    let file2 = [
        header.to_string(),
        format!("T1,{c},2026-11-03 10:00:00,purchase,40.00,debit,,,"),
        format!("T4,{d},2026-11-03 10:00:00,purchase,40.00,debit,,5812,"),
        format!("R3,{a},2026-11-03 10:00:00,refund,95.00,,T1,,"),
        format!("R4,{a},2026-11-04 10:00:00,refund,5.00,,T3,,"),
        format!("V2,{d},2026-11-03 11:00:00,void,40.00,,T4,,"),
        format!("T5,{b},2026-11-04 10:00:00,purchase,\"1,00\",debit,,,"),
        "T6,G01,2026-11-03 10:00:00,purchase,12.00,debit,,,".to_string(),
        format!("T7,{d},2026-11-04 23:59:59,purchase,12.34,credit,,,"),
    ]
    .join("\n");
    let adjustments = format!(
        "adj_id,merchant_id,settlement_date,amount,reason\n\
         J1,{a},2026-11-03,5.00,fix\n\
         J1,{b},2026-11-03,-3.00,\"same id, other merchant\"\n\n\
         J2,{b},2026-11-03,-3.00,charge\n\
         J3,ZZZ,2026-11-03,1.00,unknown\n\
         J4,{a},2030-01-01,1.00,not this run's\n\
         J5,{d},2026-11-01,2.50,the run's first settlement\n"
    );
    let write = |file: &str, text: &str| {
        let path = work.join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = PathBuf::from(CONFIG);
    let day1 = Day1 {
        config: config.clone(),
        merchants: write("merchants.csv", &merchants),
        adjustments: Some(write("adjustments.csv", &adjustments)),
        transactions: vec![write("day1-a.csv", &file1), write("day1-b.csv", &file2)],
        through: day("2026-11-04"),
        state_in: None,
    };
    let expected1 = check(&day1, work, "hand1", &[1, 2, 4, 16]);
    let rejects = String::from_utf8(std::fs::read(expected1.join("rejects.csv")).unwrap()).unwrap();
    for reason in [
        "duplicate_txn_id",
        "bad_amount",
        "malformed_row",
        "unknown_merchant",
        "merchant_inactive",
        "beyond_horizon",
        "over_limit",
        "bad_reference",
        "bad_adjustment",
    ] {
        assert!(rejects.contains(reason), "the case has a {reason} reject");
    }

    // Day 2 from the merged day 1 (equal to the batch one): refunds of
    // day 1's purchases, by their merchant and by another, an id taken on
    // day 1, a late row.
    // T7 (D's) is named first by C's refund, then P0 (C's) is refunded
    // by C, then T7 by D: the end state's index lists the changed earlier
    // purchases in the order of the first row naming each, in any
    // partition (T7, then P0), not of the rows that changed them.
    let file3 = [
        header.to_string(),
        format!("R8,{c},2026-11-05 09:00:00,refund,1.00,,T7,,"),
        format!("R10,{c},2026-11-05 09:00:00,refund,1.00,,P0,,"),
        format!("R9,{d},2026-11-05 09:00:00,refund,1.00,,T7,,"),
        format!("R5,{a},2026-11-05 10:00:00,refund,3.00,,T3,,"),
        format!("R6,{b},2026-11-05 10:00:00,refund,3.00,,T3,,"),
        format!("T2,{c},2026-11-05 10:00:00,purchase,9.00,debit,,,"),
        format!("L1,{c},2026-11-04 10:00:00,purchase,9.00,debit,,,"),
        format!("N1,{d},2026-11-05 10:00:00,purchase,9.00,debit,,,"),
        format!("N1,{a},2026-11-05 10:00:00,purchase,9.00,debit,,,"),
        format!("R7,{c},2026-11-05 11:00:00,refund,9.00,,T1,,"),
    ]
    .join("\n")
        + "\n";
    let day2 = Day1 {
        config,
        merchants: day1.merchants.clone(),
        adjustments: Some(write(
            "adjustments2.csv",
            &format!(
                "adj_id,merchant_id,settlement_date,amount,reason\nK1,{d},2026-11-06,1.00,x\nK1,{a},2026-11-06,1.00,y\n"
            ),
        )),
        transactions: vec![write("day2.csv", &file3)],
        through: day("2026-11-05"),
        state_in: Some(expected1),
    };
    check(&day2, work, "hand2", &[1, 2, 4, 16]);

    // The command line: the same merge, and folders that are not one
    // close (a partition missing; partitions of two days) exit 2.
    let merge_cli = |parts: &[PathBuf], out: &Path| {
        std::process::Command::new(common::BIN)
            .arg("merge")
            .args(parts)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let part = |label: &str, k: u32| work.join(format!("parts-{label}-2/part-{k}-of-2"));
    let out = work.join("cli-merged");
    let merged = merge_cli(&[part("hand2", 1), part("hand2", 0)], &out);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_same(&work.join("batch-hand2"), &out, "settle merge");
    for (parts, why) in [
        (vec![part("hand2", 0)], "partitions 0 to P - 1"),
        (
            vec![part("hand1", 0), part("hand2", 1)],
            "not partitions of one close",
        ),
    ] {
        let refused = merge_cli(&parts, &work.join("cli-refused"));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        assert!(!work.join("cli-refused").exists());
    }
}

#[test]
fn generated_days_merge_to_the_batch_run_and_chain() {
    let (_dir, work) = work_dir();
    let work = work.as_path();
    let data = work.join("data");
    settle::datagen::generate(&settle::datagen::GenOptions {
        merchants: 400,
        rows: 200_000,
        days: 6,
        seed: 16,
        bad_rows_ppm: 3000,
        out: data.clone(),
    })
    .unwrap();
    let day1 = Day1 {
        config: data.join("settle.toml"),
        merchants: data.join("merchants.csv"),
        adjustments: None,
        transactions: vec![data.join("transactions.csv")],
        through: day("2026-11-03"),
        state_in: None,
    };
    let expected1 = check(&day1, work, "gen1", &[1, 2, 4]);
    let day2 = Day1 {
        through: day("2026-11-06"),
        state_in: Some(expected1),
        ..day1
    };
    check(&day2, work, "gen2", &[3]);
    let read: u64 = {
        let control: serde_json::Value = serde_json::from_slice(
            &std::fs::read(work.join("batch-gen2").join("control.json")).unwrap(),
        )
        .unwrap();
        control["inputs"]["transactions"][0]["rows_read"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(read, 200_000);
}

/// A small deterministic generator (64-bit LCG) for the random cases.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Random rows over few merchants and few ids, so that ids repeat across
/// merchants and partitions, references miss and cross merchants, and
/// every kind of reject comes up.
/// `purchases` holds the (merchant, id) of purchases so far: half the
/// references name one of them, often of their own merchant.
fn random_rows(
    random: &mut Lcg,
    rows: usize,
    days: &[&str],
    pool: &str,
    purchases: &mut Vec<(String, String)>,
) -> Vec<String> {
    let merchants = ["MA", "MB", "MC", "MD", "ME", "MF", "MG", "ZZ"];
    (0..rows)
        .map(|_| {
            let id = format!("{pool}{}", random.below(150));
            let mut merchant = random.pick(&merchants).to_string();
            let mut orig = format!("{pool}{}", random.below(150));
            if !purchases.is_empty() && random.below(2) == 0 {
                let (owner, named) = &purchases[random.below(purchases.len() as u64) as usize];
                orig = named.clone();
                if random.below(4) != 0 {
                    merchant = owner.clone();
                }
            }
            let ts = format!(
                "{} {:02}:{:02}:00",
                random.pick(days),
                random.below(24),
                random.below(60)
            );
            let amount = match random.below(20) {
                0 => "1x".to_string(),
                1 => "60000.00".to_string(),
                _ => format!("{}.{:02}", 1 + random.below(300), random.below(100)),
            };
            match random.below(10) {
                0..=4 => {
                    let card = random.pick(&["debit", "credit", "debit", "debit", "cash"]);
                    purchases.push((merchant.clone(), id.clone()));
                    format!("{id},{merchant},{ts},purchase,{amount},{card},,")
                }
                5..=7 => format!("{id},{merchant},{ts},refund,{amount},,{orig},"),
                8 => format!("{id},{merchant},{ts},void,{amount},,{orig},"),
                _ => format!("{id},{merchant}"),
            }
        })
        .collect()
}

#[test]
fn random_days_merge_to_the_batch_run() {
    let (_dir, work) = work_dir();
    let work = work.as_path();
    let merchants = "merchant_id,mcc,activated_on,deposit,deactivated_on\n\
        MA,5411,2026-10-01,299.00,\n\
        MB,5812,2026-10-01,10.00,\n\
        MC,8062,2026-10-20,0.00,\n\
        MD,5411,2026-10-22,299.00,2026-11-04\n\
        ME,5999,2026-11-02,50.00,\n\
        MF,7011,2026-10-01,0.00,2026-11-02\n\
        MG,4511,2026-10-19,299.00,\n";
    let header = "txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc";
    // More cases with STREAM_SEEDS=N (12 by default, a few seconds).
    let seeds = std::env::var("STREAM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12u64);
    for seed in 0..seeds {
        let mut random = Lcg(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) + 1);
        let case = work.join(format!("case-{seed}"));
        std::fs::create_dir_all(&case).unwrap();
        let write = |file: &str, text: &str| {
            let path = case.join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        let days1 = [
            "2026-11-01",
            "2026-11-02",
            "2026-11-03",
            "2026-11-04",
            "2026-11-05",
        ];
        let mut purchases = Vec::new();
        let rows = random_rows(&mut random, 240, &days1, "I", &mut purchases);
        let (first, second) = rows.split_at(100 + random.below(40) as usize);
        let file_a = format!("{header}\r\n{}\r\n", first.join("\r\n"));
        let file_b = format!("{header}\n{}", second.join("\n\n"));
        let mut adjustments = String::from("adj_id,merchant_id,settlement_date,amount,reason\n");
        for _ in 0..12 {
            adjustments.push_str(&format!(
                "J{},{},2026-11-0{},{}.00,r\n",
                random.below(5),
                random.pick(&["MA", "MB", "MC", "MD", "ME", "MF", "MG", "ZZ"]),
                1 + random.below(8),
                1 + random.below(9)
            ));
        }
        let day1 = Day1 {
            config: PathBuf::from(CONFIG),
            merchants: write("merchants.csv", merchants),
            adjustments: Some(write("adjustments.csv", &adjustments)),
            transactions: vec![write("a.csv", &file_a), write("b.csv", &file_b)],
            through: day("2026-11-04"),
            state_in: None,
        };
        let label = format!("random{seed}");
        let first = 1 + (seed % 5) as u32;
        let partitions = [first, first % 5 + 2];
        let expected = check(&day1, &case, &label, &partitions);
        let days2 = ["2026-11-04", "2026-11-05", "2026-11-06"];
        let mut rows2 = random_rows(&mut random, 120, &days2, "I", &mut purchases);
        rows2.extend(random_rows(&mut random, 60, &days2, "K", &mut purchases));
        let day2 = Day1 {
            adjustments: None,
            transactions: vec![write("c.csv", &format!("{header}\n{}\n", rows2.join("\n")))],
            through: day("2026-11-06"),
            state_in: Some(expected),
            ..day1
        };
        check(&day2, &case, &format!("{label}-day2"), &[partitions[1]]);
    }
}

#[test]
fn a_day_without_an_accepted_row_merges_to_the_batch_run() {
    // No start: no owned settlement date, every adjustment rejected, no
    // settlement file; the ids that passed steps 1 and 2 still go into
    // the end state's index.
    let (_dir, work) = work_dir();
    let work = work.as_path();
    let write = |file: &str, text: &str| {
        let path = work.join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    let input = Day1 {
        config: PathBuf::from(CONFIG),
        merchants: write(
            "merchants.csv",
            "merchant_id,mcc,activated_on,deposit\nMA,5411,2026-10-01,1.00\nMB,5411,2026-10-01,2.00\n",
        ),
        adjustments: Some(write(
            "adjustments.csv",
            "adj_id,merchant_id,settlement_date,amount,reason\nJ1,MA,2026-11-02,1.00,x\n",
        )),
        transactions: vec![write(
            "t.csv",
            "txn_id,merchant_id,ts,type,amount,card,orig_txn_id\n\
             A,ZZ,2026-11-01 10:00:00,purchase,1.00,debit,\n\
             B,MB,2026-11-01 10:00:00,refund,1.00,,A\n\
             C,MA,2026-11-09 10:00:00,purchase,1.00,debit,\n\
             D,MA\n",
        )],
        through: day("2026-11-01"),
        state_in: None,
    };
    check(&input, work, "empty", &[1, 3]);
}
