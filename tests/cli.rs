//! The command line: exit codes, fatal messages, publishing, the worked
//! example of /work/shared/spec/example, and determinism.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/spec/example");

fn example_path(name: &str) -> PathBuf {
    Path::new(EXAMPLE).join(name)
}

fn example_file(name: &str) -> Vec<u8> {
    std::fs::read(example_path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// The example as a case: settle.toml, merchants.csv, transactions.csv and
/// adjustments.csv under the same names.
fn example_case() -> Case {
    Case::raw(
        example_file("settle.toml"),
        example_file("merchants.csv"),
        example_file("transactions.csv"),
    )
    .adjustments_raw(example_file("adjustments.csv"))
}

/// The expected settlement files of the example, name → bytes.
fn expected_settlements() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(example_path("expected"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("settlement-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert_eq!(v.len(), 4, "the example has four settlement files");
    v
}

/// `rejects.csv` with its last column (detail) removed, re-written with
/// minimal quoting.
fn rejects_without_detail(r: &Run) -> String {
    let mut s = String::from("file,line,txn_id,reason\n");
    for row in r.rejects_full() {
        s.push_str(&csv_line(&row[..4]));
    }
    s
}

fn assert_settlements_match_example(r: &Run) {
    let want = expected_settlements();
    assert_eq!(
        r.settlement_files(),
        want.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    for (name, bytes) in want {
        assert_eq!(
            r.text(&name),
            String::from_utf8(bytes).unwrap(),
            "{name} differs from the example's expected file"
        );
    }
}

#[test]
fn example_exits_0_and_reproduces_expected_byte_for_byte() {
    let r = example_case().run().ok();
    assert_settlements_match_example(&r);
    let want = String::from_utf8(example_file("expected/rejects-without-detail.csv")).unwrap();
    assert_eq!(rejects_without_detail(&r), want);
    // no fees files without --detail
    assert!(!r.files.keys().any(|k| k.starts_with("fees-")));
    assert!(r.files.contains_key("control.json"));
}

#[test]
fn example_control_json_totals_match_the_readme() {
    let r = example_case().run().ok();
    let c = r.control();
    assert_eq!(c.at("balanced"), &Json::Bool(true));
    assert_eq!(c.at("engine").str(), "settle");
    assert_eq!(c.at("version").str(), env!("CARGO_PKG_VERSION"));
    // README: purchases 7308.88 − refunds 50.00 − fees 6.29 + adjustments 199.00 = 7451.59
    //       = payouts 7252.59 + held 299.00 − released 299.00 + deactivation fees 199.00 + receivables 0.00
    for (k, v) in [
        ("purchases", "7308.88"),
        ("refunds", "50.00"),
        ("fees", "6.29"),
        ("adjustments", "199.00"),
        ("carried_in_first", "0.00"),
        ("payouts", "7252.59"),
        ("deposit_held", "299.00"),
        ("deposit_released", "299.00"),
        ("deposit_forfeited", "0.00"),
        ("deactivation_fees", "199.00"),
        ("carried_out_last", "0.00"),
    ] {
        assert_eq!(c.at(&format!("totals.{k}")).str(), v, "totals.{k}");
    }
    assert_eq!(c.at("receivables.total").str(), "0.00");
    for m in c.at("receivables.merchants").arr() {
        assert_eq!(
            m.at("amount").str(),
            "0.00",
            "nothing is owed at the end: {m:?}"
        );
    }
    assert_eq!(c.at("run.start").str(), "2026-11-01");
    assert_eq!(c.at("run.horizon").str(), "2026-11-04");
    assert_eq!(c.at("run.through"), &Json::Null);
    assert_eq!(
        c.at("settlement_files")
            .arr()
            .iter()
            .map(|j| j.str().to_string())
            .collect::<Vec<_>>(),
        names(&[
            "settlement-2026-11-02.csv",
            "settlement-2026-11-03.csv",
            "settlement-2026-11-04.csv",
            "settlement-2026-11-05.csv"
        ])
    );
    // inputs: paths as given, digests of the bytes, row counts
    assert_eq!(c.at("inputs.config.path").str(), "settle.toml");
    assert_eq!(
        c.at("inputs.config.sha256").str(),
        sha256_hex(&example_file("settle.toml"))
    );
    assert_eq!(c.at("inputs.merchants.path").str(), "merchants.csv");
    assert_eq!(
        c.at("inputs.merchants.sha256").str(),
        sha256_hex(&example_file("merchants.csv"))
    );
    assert_eq!(c.at("inputs.merchants.rows").num(), 3);
    let t = c.at("inputs.transactions").arr();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].at("path").str(), "transactions.csv");
    assert_eq!(
        t[0].at("sha256").str(),
        sha256_hex(&example_file("transactions.csv"))
    );
    assert_eq!(t[0].at("rows_read").num(), 11);
    assert_eq!(t[0].at("rows_accepted").num(), 9);
    assert_eq!(t[0].at("rows_rejected").num(), 2);
    assert_eq!(c.at("inputs.adjustments.path").str(), "adjustments.csv");
    assert_eq!(
        c.at("inputs.adjustments.sha256").str(),
        sha256_hex(&example_file("adjustments.csv"))
    );
    assert_eq!(c.at("inputs.adjustments.rows_read").num(), 1);
    assert_eq!(c.at("inputs.adjustments.rows_accepted").num(), 1);
    assert_eq!(c.at("inputs.adjustments.rows_rejected").num(), 0);
}

#[test]
fn example_without_adjustments_has_null_adjustments_input() {
    let mut case = example_case();
    case.adjustments = None;
    let r = case.run().ok();
    let c = r.control();
    assert_eq!(c.at("inputs.adjustments"), &Json::Null);
    // without A1, M3 still owes the 199.00 fee at the end
    assert_eq!(c.at("totals.adjustments").str(), "0.00");
    assert_eq!(c.at("totals.carried_out_last").str(), "-199.00");
    assert_eq!(c.at("receivables.total").str(), "199.00");
    assert_eq!(c.at("balanced"), &Json::Bool(true));
}

#[test]
fn example_detail_fees_files() {
    let r = example_case().arg("--detail").run().ok();
    let fees: Vec<String> = r
        .files
        .keys()
        .filter(|k| k.starts_with("fees-"))
        .cloned()
        .collect();
    // one per settlement date that has accepted transactions
    assert_eq!(
        fees,
        names(&[
            "fees-2026-11-02.csv",
            "fees-2026-11-03.csv",
            "fees-2026-11-04.csv",
            "fees-2026-11-05.csv"
        ])
    );
    let read = |name: &str| {
        let rows = parse_csv(&r.text(name));
        assert_eq!(rows[0].join(","), DETAIL_HEADER, "{name} header");
        rows[1..].to_vec()
    };
    let d = read("fees-2026-11-02.csv");
    assert_eq!(d.len(), 4);
    // sorted by merchant, then file order: T1 (M1), T5, T6, T7 (M3)
    // T1: 200.00 × 0.0049 = 0.98
    assert_eq!(
        d[0].join(","),
        "T1,M1,,purchase,2026-11-01,2026-11-02,200.00,dining,0.0049,0.98,charged"
    );
    // T5: 120.00 × 0.0038 = 0.456 → 0.46
    assert_eq!(
        d[1].join(","),
        "T5,M3,,purchase,2026-11-01,2026-11-02,120.00,general,0.0038,0.46,charged"
    );
    // T6 voided: fee 0.00
    assert_eq!(
        d[2].join(","),
        "T6,M3,,purchase,2026-11-01,2026-11-02,80.00,general,0.0038,0.00,voided"
    );
    // T7 the void: the rate of its purchase, fee 0.00
    assert_eq!(
        (d[3][0].as_str(), d[3][3].as_str(), d[3][8].as_str()),
        ("T7", "void", "0.0038")
    );
    assert_eq!((d[3][9].as_str(), d[3][10].as_str()), ("0.00", "void"));
    let d = read("fees-2026-11-03.csv");
    assert_eq!(d.len(), 2);
    // T2 (naive 09:00 at +08:00 → 11-02): 500.00 × 0.0049 = 2.45, under the 20.00 cap
    assert_eq!(
        d[0].join(","),
        "T2,M1,,purchase,2026-11-02,2026-11-03,500.00,dining,0.0049,2.45,charged"
    );
    // T3 refund, kept: fee 0.00, rate of T2
    assert_eq!(
        (d[1][0].as_str(), d[1][3].as_str(), d[1][8].as_str()),
        ("T3", "refund", "0.0049")
    );
    assert_eq!((d[1][9].as_str(), d[1][10].as_str()), ("0.00", "refund"));
    let d = read("fees-2026-11-04.csv");
    // T4 2026-11-02T20:30:00Z → 11-03 at +08: 400.00 × 0.0049 = 1.96; T10 override 8062: rate 0
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0].join(","),
        "T4,M1,,purchase,2026-11-03,2026-11-04,400.00,dining,0.0049,1.96,charged"
    );
    assert_eq!(
        d[1].join(","),
        "T10,M1,,purchase,2026-11-03,2026-11-04,6000.00,public_welfare,0,0.00,charged"
    );
    let d = read("fees-2026-11-05.csv");
    // T11: 88.88 × 0.0049 = 0.435512 → 0.44
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].join(","),
        "T11,M1,,purchase,2026-11-04,2026-11-05,88.88,dining,0.0049,0.44,charged"
    );
    // the settlement files are the same with or without --detail
    assert_settlements_match_example(&r);
}

#[test]
fn detail_status_capped_and_terminal_id() {
    let r = Case::raw(
        Cfg::base().toml(),
        merchants(&["L1,7011,2026-01-01,0.00,"]),
        "txn_id,merchant_id,ts,type,amount,card,terminal_id\n\
         C1,L1,2026-11-02 10:00:00,purchase,10000.00,debit,\"pos, 1\"\n\
         C2,L1,2026-11-02 10:00:00,purchase,100.00,debit,pos2\n",
    )
    .arg("--detail")
    .run()
    .ok();
    let text = r.text("fees-2026-11-03.csv");
    // C1: 10000 × 0.0038 = 38.00 → debit cap 20.00 → capped; C2: 0.38 charged
    assert_eq!(
        text,
        format!(
            "{DETAIL_HEADER}\n\
             C1,L1,\"pos, 1\",purchase,2026-11-02,2026-11-03,10000.00,lodging,0.0038,20.00,capped\n\
             C2,L1,pos2,purchase,2026-11-02,2026-11-03,100.00,lodging,0.0038,0.38,charged\n"
        )
    );
}

#[test]
fn transactions_from_stdin() {
    let mut case = example_case();
    case.transactions = vec![("-".to_string(), example_file("transactions.csv"))];
    let r = case.run().ok();
    assert_settlements_match_example(&r);
    assert_eq!(
        rejects_without_detail(&r),
        "file,line,txn_id,reason\n-,9,T8,bad_amount\n-,10,T9,bad_reference\n"
    );
}

#[test]
fn stdin_without_a_header_row_in_its_first_mebibyte_stops_the_run() {
    // Streamed stdin reads its header before the run starts: a first line
    // that does not end within 1 MiB is a bad input header (exit 2).
    let mut case = example_case();
    case.transactions = vec![("-".to_string(), vec![b'a'; (1 << 20) + 10])];
    let r = case.run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("-: has no complete header row in its first 1048576 bytes"),
        "{}",
        r.stderr
    );
    assert!(!r.out_exists);
}

#[test]
fn example_split_into_two_files_gives_identical_settlements() {
    let all = String::from_utf8(example_file("transactions.csv")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let header = lines[0];
    // a.csv: T1..T5 (lines 2-6); b.csv: T6..T11
    let a = format!("{header}\n{}\n", lines[1..6].join("\n"));
    let b = format!("{header}\n{}\n", lines[6..].join("\n"));
    let r = example_case()
        .txn_files(&[("a.csv", a.as_bytes()), ("b.csv", b.as_bytes())])
        .run()
        .ok();
    assert_settlements_match_example(&r);
    // T8 is line 4 of b.csv, T9 line 5
    assert_eq!(
        rejects_without_detail(&r),
        "file,line,txn_id,reason\nb.csv,4,T8,bad_amount\nb.csv,5,T9,bad_reference\n"
    );
    let c = r.control();
    assert_eq!(c.at("inputs.transactions.0.path").str(), "a.csv");
    assert_eq!(c.at("inputs.transactions.0.rows_read").num(), 5);
    assert_eq!(c.at("inputs.transactions.0.rows_accepted").num(), 5);
    assert_eq!(c.at("inputs.transactions.1.path").str(), "b.csv");
    assert_eq!(c.at("inputs.transactions.1.rows_read").num(), 6);
    assert_eq!(c.at("inputs.transactions.1.rows_accepted").num(), 4);
    assert_eq!(c.at("inputs.transactions.1.rows_rejected").num(), 2);
    assert_eq!(c.at("totals.payouts").str(), "7252.59");
}

// ---------------------------------------------------------------------------
// Determinism on a larger generated input (several of the engine's chunks).

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (settle.toml, merchants.csv, transactions.csv, adjustments.csv), about
/// 12 MB of transactions with refunds, voids, bad rows, duplicates and
/// quoted line ends.
fn generated() -> (String, String, String, String) {
    let cfg = Cfg {
        refund_volume: "800000.00",
        refund_window_days: 7,
        refund_fee: "proportional",
        ..Cfg::base()
    };
    let mut rng = Lcg(20261102);
    let mccs = ["5999", "5812", "8062", "7011", "4511", "9300", "5411"];
    let deposits = ["0.00", "300.00", "1000.00"];
    let mut m = String::from(MERCHANT_HEADER);
    m.push('\n');
    let n_merchants = 60;
    for i in 0..n_merchants {
        let act = if i % 3 == 0 {
            "2026-01-01".to_string()
        } else {
            format!("2026-10-{:02}", 25 + i % 7)
        };
        let deact = if i % 7 == 3 {
            format!("2026-11-{:02}", 6 + i % 4)
        } else {
            String::new()
        };
        m.push_str(&format!(
            "G{i:03},{},{act},{},{deact}\n",
            mccs[i % mccs.len()],
            deposits[i % 3]
        ));
    }
    let mut t =
        String::from("txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc,terminal_id\n");
    let mut purchases: Vec<(usize, String, u64, u64, u64)> = Vec::new(); // (merchant, id, day, sec, fen)
    let mut k = 0u64;
    while t.len() < 12_000_000 {
        k += 1;
        let roll = rng.below(100);
        let term = match rng.below(50) {
            0 => "\"term,\n42\"".to_string(),
            1 => "\"a \"\"quoted\"\" one\"".to_string(),
            _ => format!("P{}", rng.below(900)),
        };
        let ts = |day: u64, sec: u64, style: u64| -> String {
            let (h, mi, s) = (sec / 3600, sec / 60 % 60, sec % 60);
            match style % 4 {
                0 => format!("2026-11-{day:02}T{h:02}:{mi:02}:{s:02}+08:00"),
                1 => format!("2026-11-{day:02} {h:02}:{mi:02}:{s:02}"),
                2 => format!("2026-11-{day:02} {h:02}:{mi:02}:{s:02}.{:03}", sec % 1000),
                _ => {
                    // the same instant in UTC
                    let total = (day as i64) * 86400 + sec as i64 - 8 * 3600;
                    let (d, r) = (total.div_euclid(86400), total.rem_euclid(86400));
                    let (dd, mm) = if d < 1 { (31 + d, 10) } else { (d, 11) };
                    format!(
                        "2026-{mm:02}-{dd:02}T{:02}:{:02}:{:02}Z",
                        r / 3600,
                        r / 60 % 60,
                        r % 60
                    )
                }
            }
        };
        if roll < 78 || purchases.is_empty() {
            let mi = rng.below(n_merchants as u64) as usize;
            let day = 1 + rng.below(10);
            let sec = rng.below(86400);
            let big = rng.below(20) == 0;
            let fen = 1 + rng.below(if big { 2_000_000 } else { 50_000 });
            let card = if rng.below(2) == 0 { "debit" } else { "credit" };
            let mcc = if rng.below(10) == 0 {
                mccs[rng.below(mccs.len() as u64) as usize]
            } else {
                ""
            };
            let id = format!("T{k}");
            t.push_str(&format!(
                "{id},G{mi:03},{},purchase,{}.{:02},{card},,{mcc},{term}\n",
                ts(day, sec, rng.next()),
                fen / 100,
                fen % 100
            ));
            purchases.push((mi, id, day, sec, fen));
        } else if roll < 92 {
            let (mi, orig, day, sec, fen) =
                purchases[rng.below(purchases.len() as u64) as usize].clone();
            let rday = (day + rng.below(3)).min(10);
            let rsec = if rday == day {
                (sec + rng.below(3600)).min(86399)
            } else {
                rng.below(86400)
            };
            let rfen = 1 + rng.below(fen * 6 / 10 + 1);
            t.push_str(&format!(
                "R{k},G{mi:03},{},refund,{}.{:02},,{orig},,{term}\n",
                ts(rday, rsec, rng.next()),
                rfen / 100,
                rfen % 100
            ));
        } else if roll < 97 {
            let (mi, orig, day, sec, fen) =
                purchases[rng.below(purchases.len() as u64) as usize].clone();
            let vsec = (sec + rng.below(600)).min(86399);
            t.push_str(&format!(
                "V{k},G{mi:03},{},void,{}.{:02},,{orig},,{term}\n",
                ts(day, vsec, rng.next()),
                fen / 100,
                fen % 100
            ));
        } else {
            match rng.below(5) {
                0 => t.push_str(&format!(
                    "B{k},G001,2026-11-03 10:00:00,purchase,12.345,debit,,,x\n"
                )),
                1 => t.push_str(&format!(
                    "B{k},GX,2026-11-03 10:00:00,purchase,12.00,debit,,,x\n"
                )),
                2 => {
                    // reuse the id of the latest purchase, on that purchase's business date
                    let (_, id, day, _, _) = purchases.last().unwrap().clone();
                    t.push_str(&format!(
                        "{id},G002,2026-11-{day:02} 10:00:00,purchase,5.00,credit,,,x\n"
                    ))
                }
                3 => t.push('\n'),
                _ => t.push_str(&format!("B{k},G004,2026-11-03 10:00:00,purchase,5.00\n")),
            }
        }
    }
    let mut a = String::from(ADJ_HEADER);
    a.push('\n');
    for j in 0..40 {
        let cents = rng.below(20000) as i64 - 10000;
        let cents = if cents == 0 { 1 } else { cents };
        let sign = if cents < 0 { "-" } else { "" };
        a.push_str(&format!(
            "A{j},G{:03},2026-11-{:02},{sign}{}.{:02},\"gen, {j}\"\n",
            rng.below(n_merchants as u64),
            2 + rng.below(11),
            cents.abs() / 100,
            cents.abs() % 100
        ));
    }
    (cfg.toml(), m, t, a)
}

fn generated_case() -> Case {
    let (c, m, t, a) = generated();
    Case::raw(c, m, t).adjustments_raw(a)
}

#[test]
fn threads_1_and_4_give_byte_identical_outputs() {
    for case in [example_case(), generated_case()] {
        let one = case.clone().args(&["--threads", "1"]).run().ok();
        let four = case.clone().args(&["--threads", "4"]).run().ok();
        assert!(!one.settlement_files().is_empty());
        assert_eq!(
            one.files.keys().collect::<Vec<_>>(),
            four.files.keys().collect::<Vec<_>>(),
            "the same output files"
        );
        for (name, bytes) in &one.files {
            assert!(
                four.files[name] == *bytes,
                "{name} differs between --threads 1 and --threads 4"
            );
        }
        assert_eq!(one.control().at("balanced"), &Json::Bool(true));
    }
}

#[test]
fn splitting_the_input_gives_identical_settlement_files() {
    let (c, m, t, a) = generated();
    let whole = Case::raw(c.clone(), m.clone(), t.clone())
        .adjustments_raw(a.clone())
        .run()
        .ok();
    // split at record boundaries (a line end outside quotes) near 1/3 and 2/3
    let bytes = t.as_bytes();
    let header_end = t.find('\n').unwrap() + 1;
    let header = &t[..header_end];
    let mut cuts = Vec::new();
    let mut in_q = false;
    let targets = [bytes.len() / 3, bytes.len() * 2 / 3];
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' {
            in_q = !in_q;
        } else if b == b'\n' && !in_q && cuts.len() < targets.len() && i >= targets[cuts.len()] {
            cuts.push(i + 1);
        }
    }
    assert_eq!(cuts.len(), 2);
    let p1 = t[..cuts[0]].to_string();
    let p2 = format!("{header}{}", &t[cuts[0]..cuts[1]]);
    let p3 = format!("{header}{}", &t[cuts[1]..]);
    let split = Case::raw(c, m, "")
        .txn_files(&[
            ("p1.csv", p1.as_bytes()),
            ("p2.csv", p2.as_bytes()),
            ("p3.csv", p3.as_bytes()),
        ])
        .adjustments_raw(a)
        .run()
        .ok();
    assert!(whole.settlement_files().len() >= 10);
    assert_eq!(whole.settlement_files(), split.settlement_files());
    for name in whole.settlement_files() {
        assert!(
            whole.files[&name] == split.files[&name],
            "{name} differs when the input is split"
        );
    }
    // the same rows rejected, for the same reasons
    let reasons = |r: &Run| {
        r.rejects()
            .into_iter()
            .map(|(_, id, why)| (id, why))
            .collect::<Vec<_>>()
    };
    assert_eq!(reasons(&whole), reasons(&split));
    for k in [
        "purchases",
        "refunds",
        "fees",
        "adjustments",
        "payouts",
        "deposit_held",
        "deposit_released",
        "deposit_forfeited",
        "deactivation_fees",
        "carried_out_last",
    ] {
        assert_eq!(whole.total(k), split.total(k), "totals.{k}");
    }
    assert_eq!(whole.control().at("balanced"), &Json::Bool(true));
}

#[test]
fn a_chain_of_runs_gives_the_same_settlement_files_as_one_run() {
    let (c, m, t, a) = generated();
    let whole = Case::raw(c.clone(), m.clone(), t.clone())
        .adjustments_raw(a.clone())
        .run()
        .ok();
    // adjustments go to the run that owns their settlement date: run 1 covers business
    // dates up to 11-05, so it owns settlements up to 11-06
    let (mut a1, mut a2) = (String::from(ADJ_HEADER), String::from(ADJ_HEADER));
    a1.push('\n');
    a2.push('\n');
    for line in a.lines().skip(1) {
        let date = line.split(',').nth(2).unwrap();
        if date <= "2026-11-06" {
            a1.push_str(line)
        } else {
            a2.push_str(line)
        }
        if date <= "2026-11-06" {
            a1.push('\n')
        } else {
            a2.push('\n')
        }
    }
    let r1 = Case::raw(c.clone(), m.clone(), t.clone())
        .adjustments_raw(a1)
        .args(&["--through", "2026-11-05"])
        .run()
        .ok();
    let prev = r1.dir.path().join("out");
    let r2 = Case::raw(c, m, t)
        .adjustments_raw(a2)
        .args(&["--state-in", prev.to_str().unwrap()])
        .run()
        .ok();
    let mut chain: Vec<String> = r1.settlement_files();
    chain.extend(r2.settlement_files());
    assert_eq!(whole.settlement_files(), chain);
    for name in whole.settlement_files() {
        let part = if r1.files.contains_key(&name) {
            &r1
        } else {
            &r2
        };
        assert!(
            whole.files[&name] == part.files[&name],
            "{name} differs between one run and the chain"
        );
    }
    assert_eq!(r2.control().at("run.start").str(), "2026-11-06");
}

fn money(f: i64) -> String {
    format!(
        "{}{}.{:02}",
        if f < 0 { "-" } else { "" },
        f.abs() / 100,
        f.abs() % 100
    )
}

/// Checks every settlement row of a run against 3.4, 3.5 and 3.7, from the
/// files alone, and the totals of control.json against the rows.
fn check_row_arithmetic(r: &Run, deposits: &std::collections::BTreeMap<String, i64>) {
    use std::collections::BTreeMap;
    let mut carried: BTreeMap<String, i64> = BTreeMap::new(); // last carried_out
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut first_in: BTreeMap<String, i64> = BTreeMap::new();
    let mut t = [0i64; 11]; // purchases refunds fees adjustments payouts held released forfeited deact
    for date in r.settlement_dates() {
        let rows = r.settlement(&date);
        let ids: Vec<&String> = rows.iter().map(|x| &x["merchant_id"]).collect();
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        sorted.dedup();
        assert_eq!(
            ids, sorted,
            "{date}: rows sorted bytewise by merchant, one each"
        );
        for row in rows {
            let m = row["merchant_id"].clone();
            let g = |c: &str| fen(&row[c]);
            let ctx = format!("{date} {m}");
            assert!(row["txn_count"].parse::<u64>().is_ok(), "{ctx}: txn_count");
            let proceeds =
                g("purchases") - g("refunds") - g("fees") + g("adjustments") + g("carried_in");
            assert_eq!(g("proceeds"), proceeds, "{ctx}: proceeds");
            let net = proceeds - g("deposit_held") + g("deposit_released") - g("deactivation_fee");
            assert_eq!(g("payout"), net.max(0), "{ctx}: payout");
            assert_eq!(g("carried_out"), net.min(0), "{ctx}: carried_out");
            assert!(g("carried_in") <= 0, "{ctx}: carried_in ≤ 0");
            assert_eq!(
                g("carried_in"),
                *carried.get(&m).unwrap_or(&0),
                "{ctx}: carried_in = previous carried_out"
            );
            first_in.entry(m.clone()).or_insert(g("carried_in"));
            carried.insert(m.clone(), g("carried_out"));
            // deposit: holds never exceed the deposit; a release or forfeit gives back all held
            let h = held.entry(m.clone()).or_insert(0);
            let dep = deposits.get(&m).copied().unwrap_or(0);
            assert!(
                g("deposit_held") >= 0 && g("deposit_released") >= 0 && g("deposit_forfeited") >= 0,
                "{ctx}"
            );
            if g("deposit_released") > 0 || g("deposit_forfeited") > 0 {
                assert_eq!(
                    g("deposit_held"),
                    0,
                    "{ctx}: no hold beside a release or forfeit"
                );
                assert_eq!(
                    g("deposit_released") + g("deposit_forfeited"),
                    *h,
                    "{ctx}: the whole held amount"
                );
                *h = 0;
            } else {
                assert!(
                    g("deposit_held") <= proceeds.max(0),
                    "{ctx}: hold ≤ proceeds"
                );
                *h += g("deposit_held");
                assert!(
                    *h <= dep,
                    "{ctx}: held {} > deposit {}",
                    money(*h),
                    money(dep)
                );
            }
            for (i, c) in [
                "purchases",
                "refunds",
                "fees",
                "adjustments",
                "payout",
                "deposit_held",
                "deposit_released",
                "deposit_forfeited",
                "deactivation_fee",
            ]
            .iter()
            .enumerate()
            {
                t[i] += g(c);
            }
        }
    }
    let first: i64 = first_in.values().sum();
    let last: i64 = carried.values().sum();
    // 3.7
    assert_eq!(
        t[0] - t[1] - t[2] + t[3] + first,
        t[4] + t[5] - t[6] + t[8] + last,
        "conservation over the rows"
    );
    for (i, k) in [
        "purchases",
        "refunds",
        "fees",
        "adjustments",
        "payouts",
        "deposit_held",
        "deposit_released",
        "deposit_forfeited",
        "deactivation_fees",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(r.total(k), money(t[i]), "totals.{k} = the sum of the rows");
    }
    assert_eq!(r.total("carried_in_first"), money(first));
    assert_eq!(r.total("carried_out_last"), money(last));
    let c = r.control();
    assert_eq!(c.at("receivables.total").str(), money(-last));
    assert_eq!(c.at("balanced"), &Json::Bool(true));
}

fn deposits_of(merchants_csv: &str) -> std::collections::BTreeMap<String, i64> {
    merchants_csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), fen(f[3]))
        })
        .collect()
}

#[test]
fn generated_rows_obey_the_row_arithmetic_and_conservation() {
    let (c, m, t, a) = generated();
    let r = Case::raw(c, m.clone(), t)
        .adjustments_raw(a)
        .arg("--detail")
        .run()
        .ok();
    assert!(r.settlement_files().len() >= 10);
    check_row_arithmetic(&r, &deposits_of(&m));
    // the detail files agree with the settlement rows: per merchant and date,
    // purchase amounts (not voided), refund amounts, fees and counts
    use std::collections::BTreeMap;
    for date in r.settlement_dates() {
        let mut sums: BTreeMap<String, (u64, i64, i64, i64)> = BTreeMap::new();
        let name = format!("fees-{date}.csv");
        if r.files.contains_key(&name) {
            let rows = parse_csv(&r.text(&name));
            assert_eq!(rows[0].join(","), DETAIL_HEADER);
            for d in &rows[1..] {
                let e = sums.entry(d[1].clone()).or_insert((0, 0, 0, 0));
                e.0 += 1;
                match (d[3].as_str(), d[10].as_str()) {
                    ("purchase", "charged" | "capped") => e.1 += fen(&d[6]),
                    ("refund", _) => e.2 += fen(&d[6]).abs(),
                    _ => {}
                }
                e.3 += fen(&d[9]);
                assert_eq!(d[5], date, "{name}: settlement_date");
            }
        }
        for row in r.settlement(&date) {
            let (n, p, rf, f) = sums
                .get(&row["merchant_id"])
                .copied()
                .unwrap_or((0, 0, 0, 0));
            let ctx = format!("{date} {}", row["merchant_id"]);
            assert_eq!(
                row["txn_count"],
                n.to_string(),
                "{ctx}: txn_count = detail rows"
            );
            assert_eq!(row["purchases"], money(p), "{ctx}: purchases = detail");
            assert_eq!(row["refunds"], money(rf), "{ctx}: refunds = detail");
            assert_eq!(row["fees"], money(f), "{ctx}: fees = detail");
        }
    }
}

#[test]
fn example_rows_obey_the_row_arithmetic() {
    let r = example_case().run().ok();
    let m = String::from_utf8(example_file("merchants.csv")).unwrap();
    check_row_arithmetic(&r, &deposits_of(&m));
}

// ---------------------------------------------------------------------------
// Exit codes and publishing

#[test]
fn unwritable_out_exits_1_and_publishes_nothing() {
    let case = example_case().out("blocker/out");
    let dir = case.write();
    std::fs::write(dir.path().join("blocker"), b"a regular file\n").unwrap();
    let before = list_dir(dir.path());
    let r = case.run_in(dir);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(!r.stderr.trim().is_empty(), "a fatal message on stderr");
    assert_eq!(
        std::fs::read(r.dir.path().join("blocker")).unwrap(),
        b"a regular file\n"
    );
    assert_eq!(
        list_dir(r.dir.path()),
        before,
        "nothing left beside the inputs"
    );
}

#[test]
fn non_empty_out_is_refused_and_left_untouched() {
    let case = example_case();
    let dir = case.write();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/keep.txt"), b"precious\n").unwrap();
    let before = list_dir(dir.path());
    let r = case.run_in(dir);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("out"),
        "the message names --out: {}",
        r.stderr
    );
    assert_eq!(list_dir(&r.dir.path().join("out")), names(&["keep.txt"]));
    assert_eq!(
        std::fs::read(r.dir.path().join("out/keep.txt")).unwrap(),
        b"precious\n"
    );
    assert_eq!(list_dir(r.dir.path()), before);
}

#[test]
fn empty_existing_out_is_accepted() {
    let case = example_case();
    let dir = case.write();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let r = case.run_in(dir).ok();
    assert_settlements_match_example(&r);
}

/// Assert a fatal usage/input error: exit 2, a message on stderr, no --out.
#[track_caller]
fn assert_fatal_2(r: &Run) {
    assert_eq!(r.code, 2, "expected exit 2; stderr: {}", r.stderr);
    assert!(!r.stderr.trim().is_empty(), "a fatal message on stderr");
    assert!(!r.out_exists, "--out must not be created");
}

fn config_with(categories: &'static str) -> Case {
    Case::new(
        &Cfg {
            categories,
            ..Cfg::base()
        },
        &["M1,5999,2026-01-01,0.00,"],
        &["T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"],
    )
}

#[test]
fn config_rate_above_max_rate_names_the_key_and_category() {
    let r = config_with(
        r#"
[[category]]
name = "general"
default = true
debit_rate = "0.0050"
credit_rate = "0.0049"
"#,
    )
    .run();
    assert_fatal_2(&r);
    assert!(
        r.stderr.contains("debit_rate"),
        "names the key: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("general"),
        "names the category: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("settle.toml"),
        "names the file: {}",
        r.stderr
    );
}

#[test]
fn config_errors_name_the_key() {
    let two_cats = |a: &str, b: &str| -> &'static str {
        Box::leak(
            format!(
                "[[category]]\nname = \"one\"\n{a}\ndebit_rate = \"0.001\"\ncredit_rate = \"0.001\"\n\n\
                 [[category]]\nname = \"two\"\n{b}\ndebit_rate = \"0.002\"\ncredit_rate = \"0.002\"\n"
            )
            .into_boxed_str(),
        )
    };
    let cases: Vec<(&str, Case, Vec<&str>)> = vec![
        (
            "a code in two categories",
            config_with(two_cats(
                "mcc = [\"8062\"]",
                "default = true\nmcc = [\"8062\"]",
            )),
            vec!["8062"],
        ),
        (
            "overlapping ranges",
            config_with(two_cats(
                "mcc = [\"5800-5812\"]",
                "default = true\nmcc = [\"5812-5814\"]",
            )),
            vec!["5812"],
        ),
        (
            "no default",
            config_with(two_cats("mcc = [\"8062\"]", "mcc = [\"5812\"]")),
            vec!["default"],
        ),
        (
            "two defaults",
            config_with(two_cats("default = true", "default = true")),
            vec!["default"],
        ),
        (
            "reversed range",
            config_with(two_cats("mcc = [\"9399-9211\"]", "default = true")),
            vec!["mcc"],
        ),
        (
            "malformed code",
            config_with(two_cats("mcc = [\"80a2\"]", "default = true")),
            vec!["mcc"],
        ),
        (
            "rate with 7 digits",
            config_with(
                "[[category]]\nname = \"general\"\ndefault = true\ndebit_rate = \"0.0012345\"\ncredit_rate = \"0.001\"\n",
            ),
            vec!["debit_rate"],
        ),
        (
            "negative rate",
            config_with(
                "[[category]]\nname = \"general\"\ndefault = true\ndebit_rate = \"0.001\"\ncredit_rate = \"-0.001\"\n",
            ),
            vec!["credit_rate"],
        ),
        (
            "rounding",
            Case::new(
                &Cfg {
                    rounding: "bankers",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["rounding"],
        ),
        (
            "timezone",
            Case::new(
                &Cfg {
                    timezone: "+8",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["timezone"],
        ),
        (
            "timezone hours",
            Case::new(
                &Cfg {
                    timezone: "+24:00",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["timezone"],
        ),
        (
            "refund_fee",
            Case::new(
                &Cfg {
                    refund_fee: "none",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["refund_fee"],
        ),
        (
            "max_txn_amount",
            Case::new(
                &Cfg {
                    max_txn_amount: "lots",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["max_txn_amount"],
        ),
        (
            "refund_volume",
            Case::new(
                &Cfg {
                    refund_volume: "-1.00",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["refund_volume"],
        ),
        (
            "deactivation fee",
            Case::new(
                &Cfg {
                    deactivation_fee: "1.234",
                    ..Cfg::base()
                },
                &[],
                &[],
            ),
            vec!["fee"],
        ),
    ];
    for (what, case, words) in cases {
        let r = case.run();
        assert_eq!(r.code, 2, "{what}: expected exit 2; stderr: {}", r.stderr);
        assert!(!r.out_exists, "{what}: nothing written");
        for w in words {
            assert!(
                r.stderr.contains(w),
                "{what}: the message should name {w:?}: {}",
                r.stderr
            );
        }
    }
    // not TOML at all
    let r = Case::raw("timezone = [", merchants(&[]), txns(&[])).run();
    assert_fatal_2(&r);
    assert!(r.stderr.contains("settle.toml"), "{}", r.stderr);
}

#[test]
fn bad_merchant_file_lists_every_bad_line() {
    let m = "merchant_id,mcc,activated_on,deposit,deactivated_on\n\
             M1,5999,2026-01-01,0.00,\n\
             M2,ABCD,2026-01-01,0.00,\n\
             M3,5999,2026-01-01,0.00,\n\
             M4,5999,2026-11-05,0.00,2026-11-04\n\
             M1,5999,2026-01-01,0.00,\n\
             M5,5999,2026-01-01,-1.00,\n\
             M6,5999,2026-02-30,0.00,\n\
             M7,5999,2026-01-01,0.005,\n\
             M8,5999,2026-01-01,0.00\n\
             M9,5999,2026-01-01,0.00,\n";
    let r = Case::raw(
        Cfg::base().toml(),
        m,
        txns(&["T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"]),
    )
    .run();
    assert_fatal_2(&r);
    assert!(
        r.stderr.contains("merchants.csv"),
        "names the file: {}",
        r.stderr
    );
    // bad: 3 (mcc), 5 (deactivated before activated), 6 (duplicate id), 7 (negative deposit),
    //      8 (no such date), 9 (three decimals), 10 (field count)
    for line in [3, 5, 6, 7, 8, 9, 10] {
        assert!(
            mentions_number(&r.stderr, line),
            "line {line} is not listed: {}",
            r.stderr
        );
    }
}

#[test]
fn bad_merchant_lines_are_physical_lines() {
    let mut m: Vec<u8> = "\u{FEFF}merchant_id,mcc,activated_on,deposit,deactivated_on\r\n"
        .as_bytes()
        .to_vec(); // 1
    m.extend_from_slice(b"\r\n"); // 2
    m.extend_from_slice(b"M1,8062,2026-01-01,0.00,\r\n"); // 3
    m.extend_from_slice(b"\r\n"); // 4
    m.extend_from_slice(b"M2,ABCD,2026-01-01,0.00,\r\n"); // 5: bad mcc
    m.extend_from_slice(b"M3,8062,2026-01-01,0.00,\r\n"); // 6
    m.extend_from_slice(b"M4,8062,2026-13-01,0.00,\r\n"); // 7: bad date
    let r = Case::raw(
        Cfg::base().toml(),
        m,
        txns(&["T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"]),
    )
    .run();
    assert_fatal_2(&r);
    for line in [5, 7] {
        assert!(
            mentions_number(&r.stderr, line),
            "line {line} is not listed: {}",
            r.stderr
        );
    }
    // and a clean file with a BOM, CR LF and blank lines is fine
    let ok = "\u{FEFF}merchant_id,mcc,activated_on,deposit,deactivated_on\r\n\r\nM1,8062,2026-01-01,0.00,\r\n\r\n";
    let r = Case::raw(
        Cfg::base().toml(),
        ok,
        txns(&["T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"]),
    )
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
}

#[test]
fn input_headers_missing_or_repeated_columns_are_fatal() {
    let ok_m = merchants(&["M1,5999,2026-01-01,0.00,"]);
    let row = "T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,";
    let cases: Vec<(&str, Case, &str)> = vec![
        (
            "transactions without type",
            Case::raw(
                Cfg::base().toml(),
                ok_m.clone(),
                "txn_id,merchant_id,ts,amount,card\nT1,M1,2026-11-02 10:00:00,100.00,debit\n",
            ),
            "type",
        ),
        (
            "transactions naming amount twice",
            Case::raw(
                Cfg::base().toml(),
                ok_m.clone(),
                "txn_id,merchant_id,ts,type,amount,card,amount\nT1,M1,2026-11-02 10:00:00,purchase,100.00,debit,100.00\n",
            ),
            "amount",
        ),
        (
            "only the second transactions file is bad",
            Case::raw(Cfg::base().toml(), ok_m.clone(), "").txn_files(&[
                ("a.csv", txns(&[row]).as_bytes()),
                ("b.csv", b"txn_id,merchant_id,ts,type,card\n"),
            ]),
            "b.csv",
        ),
        (
            "merchants without deposit",
            Case::raw(
                Cfg::base().toml(),
                "merchant_id,mcc,activated_on\nM1,5999,2026-01-01\n",
                txns(&[row]),
            ),
            "deposit",
        ),
        (
            "merchants naming mcc twice",
            Case::raw(
                Cfg::base().toml(),
                "merchant_id,mcc,activated_on,deposit,mcc\nM1,5999,2026-01-01,0.00,5999\n",
                txns(&[row]),
            ),
            "mcc",
        ),
        (
            "adjustments without reason",
            Case::raw(Cfg::base().toml(), ok_m.clone(), txns(&[row])).adjustments_raw(
                "adj_id,merchant_id,settlement_date,amount\nA1,M1,2026-11-03,1.00\n",
            ),
            "reason",
        ),
    ];
    for (what, case, word) in cases {
        let r = case.run();
        assert_eq!(r.code, 2, "{what}: expected exit 2; stderr: {}", r.stderr);
        assert!(!r.out_exists, "{what}: nothing written");
        assert!(
            r.stderr.contains(word),
            "{what}: the message should name {word:?}: {}",
            r.stderr
        );
    }
    // an empty transactions file (no header at all) lacks every column
    let r = Case::raw(Cfg::base().toml(), ok_m, "").run();
    assert_fatal_2(&r);
}

#[test]
fn missing_input_files_exit_2() {
    let base = example_case();
    // transactions
    let dir = base.write();
    std::fs::remove_file(dir.path().join("transactions.csv")).unwrap();
    let r = base.run_in(dir);
    assert_fatal_2(&r);
    assert!(r.stderr.contains("transactions.csv"), "{}", r.stderr);
    // merchants, config, adjustments
    for name in ["merchants.csv", "settle.toml", "adjustments.csv"] {
        let dir = base.write();
        std::fs::remove_file(dir.path().join(name)).unwrap();
        let r = base.run_in(dir);
        assert_fatal_2(&r);
        assert!(
            r.stderr.contains(name),
            "the message names {name}: {}",
            r.stderr
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    for extra in [
        vec!["--bogus"],
        vec!["--through", "not-a-date"],
        vec!["--through", "2026-02-30"],
        vec!["--threads", "many"],
    ] {
        let r = example_case().args(&extra).run();
        assert_eq!(r.code, 2, "{extra:?}: stderr: {}", r.stderr);
        assert!(!r.out_exists, "{extra:?}: nothing written");
    }
    // --out missing altogether
    let dir = example_case().write();
    let (code, _, _) = exec_str(
        dir.path(),
        &[
            "run",
            "--config",
            "settle.toml",
            "--merchants",
            "merchants.csv",
            "--transactions",
            "transactions.csv",
        ],
    );
    assert_eq!(code, 2);
    // no subcommand
    let (code, _, _) = exec_str(dir.path(), &[]);
    assert_eq!(code, 2);
}

#[test]
fn more_transactions_files_than_a_row_can_number_are_refused() {
    // A row keeps its file's number in 16 bits: 65,537 files are refused
    // before anything is read or written.
    let dir = example_case().write();
    let mut args: Vec<String> = [
        "run",
        "--config",
        "settle.toml",
        "--merchants",
        "merchants.csv",
        "--out",
        "out",
        "--transactions",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(std::iter::repeat_n(
        "transactions.csv".to_string(),
        (1 << 16) + 1,
    ));
    let (code, _, err) = exec(dir.path(), &args, None);
    assert_eq!(code, 2, "stderr: {err}");
    assert!(
        err.contains("65537 files") && err.contains("65536"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn help_mentions_every_run_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_str(dir.path(), &["--help"]);
    assert_eq!(code, 0, "{err}");
    for command in ["run", "verify", "gen", "bench"] {
        assert!(
            out.contains(&format!("  {command} ")),
            "settle --help lists {command}: {out}"
        );
    }
    let (code, gen_help, err) = exec_str(dir.path(), &["gen", "--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in ["--merchants", "--rows", "--days", "--seed", "--out"] {
        assert!(gen_help.contains(flag), "settle gen --help mentions {flag}");
    }
    let (code, out, err) = exec_str(dir.path(), &["run", "--help"]);
    assert_eq!(code, 0, "{err}");
    let missing: Vec<&str> = [
        "--config",
        "--merchants",
        "--transactions",
        "--adjustments",
        "--through",
        "--detail",
        "--threads",
        "--out",
    ]
    .into_iter()
    .filter(|flag| !out.contains(flag))
    .collect();
    assert!(
        missing.is_empty(),
        "settle run --help does not mention {missing:?}"
    );
}

#[test]
fn help_mentions_every_subcommand_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_str(dir.path(), &["--help"]);
    assert_eq!(code, 0, "{err}");
    let mut missing: Vec<String> = ["run", "verify", "gen"]
        .iter()
        .filter(|w| !out.contains(&format!("  {w} ")))
        .map(|w| format!("settle --help: {w}"))
        .collect();
    let (code, out, err) = exec_str(dir.path(), &["run", "--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in [
        "--config",
        "--merchants",
        "--transactions",
        "--adjustments",
        "--through",
        "--state-in",
        "--detail",
        "--threads",
        "--out",
    ] {
        if !out.contains(flag) {
            missing.push(format!("settle run --help: {flag}"));
        }
    }
    let (code, out, _) = exec_str(dir.path(), &["gen", "--help"]);
    for flag in ["--merchants", "--rows", "--days", "--seed", "--out"] {
        if code != 0 || !out.contains(flag) {
            missing.push(format!("settle gen --help: {flag}"));
        }
    }
    assert!(missing.is_empty(), "not mentioned: {missing:#?}");
}

#[test]
fn quiet_when_output_is_not_a_terminal() {
    let r = example_case().run().ok();
    assert_eq!(
        r.stdout, "",
        "no progress output when stdout is not a terminal"
    );
}

#[test]
fn verify_accepts_a_fresh_output() {
    let r = example_case().run().ok();
    let (code, _, err) = exec_str(r.dir.path(), &["verify", "out"]);
    assert_eq!(code, 0, "settle verify on a fresh output: {err}");
}

#[test]
fn verify_catches_a_one_fen_edit() {
    // M1's payout on 11-04 is 6697.04 (the example README); make it 6697.05.
    let r = example_case().run().ok();
    let path = r.dir.path().join("out/settlement-2026-11-04.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(",6697.04,"),
        "the example's payout is there: {text}"
    );
    std::fs::write(&path, text.replace(",6697.04,", ",6697.05,")).unwrap();
    let (code, _, err) = exec_str(r.dir.path(), &["verify", "out"]);
    assert_eq!(code, 1, "settle verify must refuse the edit: {err}");
    assert!(
        err.contains("settlement-2026-11-04.csv: its SHA-256 differs"),
        "{err}"
    );
    assert!(
        err.contains(
            "total payouts: the settlement files give 7252.60 but control.json says 7252.59"
        ),
        "{err}"
    );
    assert!(
        err.contains("do not split"),
        "the row's own arithmetic is checked too: {err}"
    );
}

#[test]
fn verify_without_control_json_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = exec_str(dir.path(), &["verify", "."]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("control.json"), "{err}");
}

#[test]
fn adjustment_reason_is_carried_to_the_output() {
    // RULES.md 1.3: reason is "free text, carried to the output"; which file is not said,
    // so look in every file the run publishes (with --detail too).
    for detail in [false, true] {
        let mut case = example_case();
        if detail {
            case = case.arg("--detail");
        }
        let r = case.run().ok();
        let found = r.files.iter().any(|(_, bytes)| {
            String::from_utf8_lossy(bytes).contains("deactivation fee taken by mistake")
        });
        assert!(
            found,
            "A1's reason appears in no output file (--detail: {detail}): {:?}",
            r.files.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn gen_is_deterministic_and_its_data_settles_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--merchants",
        "50",
        "--rows",
        "5000",
        "--days",
        "5",
        "--seed",
        "9",
    ];
    for out in ["a", "b"] {
        let mut full = vec!["gen"];
        full.extend(args);
        full.extend(["--out", out]);
        let (code, _, err) = exec_str(dir.path(), &full);
        assert_eq!(code, 0, "{err}");
    }
    for name in ["settle.toml", "merchants.csv", "transactions.csv"] {
        let a = std::fs::read(dir.path().join("a").join(name)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(name)).unwrap();
        assert_eq!(a, b, "{name} differs between two runs with the same seed");
    }
    let transactions = std::fs::read_to_string(dir.path().join("a/transactions.csv")).unwrap();
    assert_eq!(transactions.lines().count(), 5001, "a header and 5000 rows");
    assert!(
        transactions.contains(",refund,") && transactions.contains(",void,"),
        "refunds and voids are generated"
    );
    let (code, _, err) = exec_str(
        dir.path(),
        &[
            "run",
            "--config",
            "a/settle.toml",
            "--merchants",
            "a/merchants.csv",
            "--transactions",
            "a/transactions.csv",
            "--out",
            "out",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = exec_str(dir.path(), &["verify", "out"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn missing_parent_folders_of_out_are_created() {
    // The README's first command writes to out/fixtures on a fresh clone.
    let r = example_case().run().ok();
    let (code, _, err) = exec_str(
        r.dir.path(),
        &[
            "run",
            "--config",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/spec/example/settle.toml"
            ),
            "--merchants",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/spec/example/merchants.csv"
            ),
            "--transactions",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/spec/example/transactions.csv"
            ),
            "--out",
            "new/nested/out",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        r.dir
            .path()
            .join("new/nested/out/settlement-2026-11-02.csv")
            .is_file()
    );
}

#[test]
fn stats_go_to_stderr_and_control_json_only_when_asked() {
    let plain = example_case().run().ok();
    let control: serde_json::Value = serde_json::from_slice(&plain.files["control.json"]).unwrap();
    assert!(
        control.get("timings").is_none(),
        "no timings without --stats: the output stays deterministic"
    );

    let with_stats = example_case().arg("--stats").run().ok();
    let control: serde_json::Value =
        serde_json::from_slice(&with_stats.files["control.json"]).unwrap();
    let timings = &control["timings"];
    assert_eq!(timings["rows_read"], 11, "{timings}");
    for stage in ["parse", "link", "aggregate", "ledger"] {
        assert!(
            timings["stages_us"][stage].is_u64(),
            "stage {stage} is timed: {timings}"
        );
        for field in ["user_us", "system_us", "minor_faults"] {
            assert!(
                timings["stages_cpu"][stage][field].is_u64(),
                "stage {stage} has {field}: {timings}"
            );
        }
    }
    // Reading the inputs and building the output touches fresh pages.
    assert!(
        timings["cpu"]["minor_faults"].as_u64() > Some(0),
        "{timings}"
    );
    assert!(
        with_stats.stderr.contains("rows/s")
            && with_stats.stderr.contains("p99")
            && with_stats.stderr.contains("minor faults"),
        "{}",
        with_stats.stderr
    );
}

#[test]
fn bench_runs_the_engine_and_reports_one_digest_for_all_runs() {
    // The output digest covers every published file, the state folder
    // included; two runs of the same data must agree on it.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_str(
        dir.path(),
        &[
            "bench",
            "--data",
            "data",
            "--rows",
            "3000",
            "--merchants",
            "200",
            "--days",
            "5",
            "--runs",
            "2",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    let digest = report["output_digest"].as_str().unwrap_or_default();
    assert_eq!(digest.len(), 64, "{report}");
    assert_eq!(report["runs"], 2, "{report}");
    assert_eq!(report["rows"], 3000, "{report}");
    for field in ["user", "system"] {
        assert!(report["cpu_ms"][field].is_u64(), "{report}");
    }
    assert!(report["minor_faults"].is_u64(), "{report}");
}
