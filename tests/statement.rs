//! `settle statement`: a merchant's statement over run folders. Real runs
//! of the binary (two daily runs chained by `--state-in`, a run with a
//! marked-up adjustment reason, the bundled run in fixtures/expected), and
//! small run folders written by hand in the documented formats
//! (docs/JOURNAL.md, docs/CLI-CONTRACT.md) for shapes a tiny real run does
//! not reach at once (a waiver, a deposit still collecting, a correction,
//! gaps and overlaps); figures worked out by hand beside each; every bad
//! input; the HTML's words and escaping; and a real screenshot by headless
//! Chromium when one is installed.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const JOURNAL_HEADER: &str =
    "settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail";

/// One settlement date of a hand-written run: its settlement rows and
/// journal lines (without headers).
struct DayFiles<'a> {
    date: &'a str,
    settlement: &'a [&'a str],
    journal: &'a [&'a str],
}

/// Writes a run folder as `settle run` publishes it: control.json with
/// `run.start`, `run.horizon` and `settlement_files`, the settlement and
/// journal files, and state/merchants.csv listing `known`.
fn write_run(dir: &Path, start: &str, horizon: &str, days: &[DayFiles], known: &[&str]) {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let names: Vec<String> = days
        .iter()
        .map(|d| format!("\"settlement-{}.csv\"", d.date))
        .collect();
    let control = format!(
        "{{\"engine\": \"settle\", \"run\": {{\"start\": \"{start}\", \"horizon\": \"{horizon}\", \"through\": null}}, \"settlement_files\": [{}], \"balanced\": true}}\n",
        names.join(", ")
    );
    std::fs::write(dir.join("control.json"), control).unwrap();
    for day in days {
        std::fs::write(
            dir.join(format!("settlement-{}.csv", day.date)),
            with_header(SETTLEMENT_HEADER, day.settlement),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("journal-{}.csv", day.date)),
            with_header(JOURNAL_HEADER, day.journal),
        )
        .unwrap();
    }
    let mut state = String::from(
        "merchant_id,deposit_status,deposit_held_fen,window_volume_fen,carried_fen,final_settled,ever_purchased\n",
    );
    for id in known {
        state.push_str(&format!("{id},released,0,0,0,false,true\n"));
    }
    std::fs::write(dir.join("state/merchants.csv"), state).unwrap();
}

/// The hand-worked run, settlement dates 2026-11-02 .. 2026-11-04 (lag 1,
/// business dates 11-01 .. 11-03).
///
/// M1 on 11-02: dining credit 1,000.00 + 200.00 at 0.49% (fees 4.90 +
/// 0.98), general debit 500.00 at 0.38% (1.90), a voided general purchase
/// (2 rows), a dining refund of 100.00 (fee kept): purchases 1,700.00,
/// fees 7.78, proceeds 1,592.22; the deposit of 299.00 is held whole;
/// payout 1,293.22; 6 transactions.
/// M1 on 11-03 (final settlement, deactivated 11-02): 50.00 dining debit,
/// fee 0.25; the deposit comes back (299.00), the deactivation fee is taken
/// (199.00): payout 50.00 − 0.25 + 299.00 − 199.00 = 149.75.
/// M1 on 11-04: the 199.00 given back (adjustment A1) and a 300.00 charge
/// (A2): proceeds −101.00, payout 0, −101.00 carried out.
/// M2 has one row on 11-02; M3 is known (state) without rows; M4 is
/// deactivated within the return window without a purchase: fee waived.
fn hand_run(dir: &Path) {
    write_run(
        dir,
        "2026-11-01",
        "2026-11-03",
        &[
            DayFiles {
                date: "2026-11-02",
                settlement: &[
                    "2026-11-02,M1,6,1700.00,100.00,7.78,0.00,0.00,1592.22,299.00,0.00,0.00,0.00,1293.22,0.00",
                    "2026-11-02,M2,1,100.00,0.00,0.49,0.00,0.00,99.51,0.00,0.00,0.00,0.00,99.51,0.00",
                ],
                journal: &[
                    "2026-11-02,M1,1,purchase,1200.00,dining,credit,0.0049,,2,,2 dining purchases by credit card",
                    "2026-11-02,M1,2,fee,-5.88,dining,credit,0.0049,no,2,,fee at 0.49%",
                    "2026-11-02,M1,3,purchase,500.00,general,debit,0.0038,,1,,1 general purchase by debit card",
                    "2026-11-02,M1,4,fee,-1.90,general,debit,0.0038,no,1,,fee at 0.38%",
                    "2026-11-02,M1,5,void,0.00,general,debit,0.0038,,2,,1 purchase voided the same day",
                    "2026-11-02,M1,6,refund,-100.00,dining,credit,0.0049,,1,,1 refund; the fee is kept",
                    "2026-11-02,M1,7,deposit_hold,-299.00,,,,,,deposit=299.00;held=299.00;window=2026-10-20..2026-11-18;target=30000.00;volume=1600.00,deposit held until the volume is reached",
                    "2026-11-02,M1,8,payout,-1293.22,,,,,,,paid to the merchant",
                    "2026-11-02,M2,1,purchase,100.00,general,credit,0.0049,,1,,1 purchase",
                    "2026-11-02,M2,2,fee,-0.49,general,credit,0.0049,no,1,,fee",
                    "2026-11-02,M2,3,payout,-99.51,,,,,,,paid",
                ],
            },
            DayFiles {
                date: "2026-11-03",
                settlement: &[
                    "2026-11-03,M1,1,50.00,0.00,0.25,0.00,0.00,49.75,0.00,299.00,0.00,199.00,149.75,0.00",
                    "2026-11-03,M4,0,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00",
                ],
                journal: &[
                    "2026-11-03,M1,1,purchase,50.00,dining,debit,0.0049,,1,,1 dining purchase",
                    "2026-11-03,M1,2,fee,-0.25,dining,debit,0.0049,no,1,,fee at 0.49%",
                    "2026-11-03,M1,3,deposit_release_final,299.00,,,,,,deposit=299.00;deactivated_on=2026-11-02,deposit returned in the final settlement",
                    "2026-11-03,M1,4,deactivation_fee,-199.00,,,,,,activated_on=2026-10-20;deactivated_on=2026-11-02;days=13;return_window_days=30;purchases_seen=yes,deactivation fee",
                    "2026-11-03,M1,5,payout,-149.75,,,,,,,paid",
                    "2026-11-03,M4,1,deposit_release_final,0.00,,,,,,deposit=0.00;deactivated_on=2026-11-02,nothing was held",
                    "2026-11-03,M4,2,deactivation_fee_waived,0.00,,,,,,activated_on=2026-10-25;deactivated_on=2026-11-02;days=8;return_window_days=30;purchases_seen=no,returned within 30 days with no purchase",
                    "2026-11-03,M4,3,payout,0.00,,,,,,,nothing to pay",
                ],
            },
            DayFiles {
                date: "2026-11-04",
                settlement: &[
                    "2026-11-04,M1,0,0.00,0.00,0.00,-101.00,0.00,-101.00,0.00,0.00,0.00,0.00,0.00,-101.00",
                ],
                journal: &[
                    "2026-11-04,M1,1,adjustment,199.00,,,,,,adj_id=A1,\"Wrongful fee given back: device returned <script>alert(1)</script> & checked\"",
                    "2026-11-04,M1,2,adjustment,-300.00,,,,,,adj_id=A2,\"Terminal damaged, charged\"",
                    "2026-11-04,M1,3,payout,0.00,,,,,,,nothing to pay",
                    "2026-11-04,M1,4,carried_out,101.00,,,,,,,shortfall carried to the next settlement",
                ],
            },
        ],
        &["M1", "M2", "M3", "M4"],
    );
}

/// A fresh folder holding the hand-worked run as `run/`.
fn hand_case() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    hand_run(&dir.path().join("run"));
    dir
}

fn statement(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["statement"];
    all.extend_from_slice(args);
    exec_str(cwd, &all)
}

fn read(cwd: &Path, name: &str) -> String {
    std::fs::read_to_string(cwd.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

const EXPECTED_M1_CSV: &str = "\
record,settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail
posting,2026-11-02,M1,1,purchase,1200.00,dining,credit,0.0049,,2,,2 dining purchases by credit card
posting,2026-11-02,M1,2,fee,-5.88,dining,credit,0.0049,no,2,,fee at 0.49%
posting,2026-11-02,M1,3,purchase,500.00,general,debit,0.0038,,1,,1 general purchase by debit card
posting,2026-11-02,M1,4,fee,-1.90,general,debit,0.0038,no,1,,fee at 0.38%
posting,2026-11-02,M1,5,void,0.00,general,debit,0.0038,,2,,1 purchase voided the same day
posting,2026-11-02,M1,6,refund,-100.00,dining,credit,0.0049,,1,,1 refund; the fee is kept
posting,2026-11-02,M1,7,deposit_hold,-299.00,,,,,,deposit=299.00;held=299.00;window=2026-10-20..2026-11-18;target=30000.00;volume=1600.00,deposit held until the volume is reached
posting,2026-11-02,M1,8,payout,-1293.22,,,,,,,paid to the merchant
day_total,2026-11-02,M1,,txn_count,,,,,,6,,
day_total,2026-11-02,M1,,purchases,1700.00,,,,,,,
day_total,2026-11-02,M1,,refunds,100.00,,,,,,,
day_total,2026-11-02,M1,,fees,7.78,,,,,,,
day_total,2026-11-02,M1,,adjustments,0.00,,,,,,,
day_total,2026-11-02,M1,,carried_in,0.00,,,,,,,
day_total,2026-11-02,M1,,proceeds,1592.22,,,,,,,
day_total,2026-11-02,M1,,deposit_held,299.00,,,,,,,
day_total,2026-11-02,M1,,deposit_released,0.00,,,,,,,
day_total,2026-11-02,M1,,deposit_forfeited,0.00,,,,,,,
day_total,2026-11-02,M1,,deactivation_fee,0.00,,,,,,,
day_total,2026-11-02,M1,,payout,1293.22,,,,,,,
day_total,2026-11-02,M1,,carried_out,0.00,,,,,,,
posting,2026-11-03,M1,1,purchase,50.00,dining,debit,0.0049,,1,,1 dining purchase
posting,2026-11-03,M1,2,fee,-0.25,dining,debit,0.0049,no,1,,fee at 0.49%
posting,2026-11-03,M1,3,deposit_release_final,299.00,,,,,,deposit=299.00;deactivated_on=2026-11-02,deposit returned in the final settlement
posting,2026-11-03,M1,4,deactivation_fee,-199.00,,,,,,activated_on=2026-10-20;deactivated_on=2026-11-02;days=13;return_window_days=30;purchases_seen=yes,deactivation fee
posting,2026-11-03,M1,5,payout,-149.75,,,,,,,paid
day_total,2026-11-03,M1,,txn_count,,,,,,1,,
day_total,2026-11-03,M1,,purchases,50.00,,,,,,,
day_total,2026-11-03,M1,,refunds,0.00,,,,,,,
day_total,2026-11-03,M1,,fees,0.25,,,,,,,
day_total,2026-11-03,M1,,adjustments,0.00,,,,,,,
day_total,2026-11-03,M1,,carried_in,0.00,,,,,,,
day_total,2026-11-03,M1,,proceeds,49.75,,,,,,,
day_total,2026-11-03,M1,,deposit_held,0.00,,,,,,,
day_total,2026-11-03,M1,,deposit_released,299.00,,,,,,,
day_total,2026-11-03,M1,,deposit_forfeited,0.00,,,,,,,
day_total,2026-11-03,M1,,deactivation_fee,199.00,,,,,,,
day_total,2026-11-03,M1,,payout,149.75,,,,,,,
day_total,2026-11-03,M1,,carried_out,0.00,,,,,,,
posting,2026-11-04,M1,1,adjustment,199.00,,,,,,adj_id=A1,Wrongful fee given back: device returned <script>alert(1)</script> & checked
posting,2026-11-04,M1,2,adjustment,-300.00,,,,,,adj_id=A2,\"Terminal damaged, charged\"
posting,2026-11-04,M1,3,payout,0.00,,,,,,,nothing to pay
posting,2026-11-04,M1,4,carried_out,101.00,,,,,,,shortfall carried to the next settlement
day_total,2026-11-04,M1,,txn_count,,,,,,0,,
day_total,2026-11-04,M1,,purchases,0.00,,,,,,,
day_total,2026-11-04,M1,,refunds,0.00,,,,,,,
day_total,2026-11-04,M1,,fees,0.00,,,,,,,
day_total,2026-11-04,M1,,adjustments,-101.00,,,,,,,
day_total,2026-11-04,M1,,carried_in,0.00,,,,,,,
day_total,2026-11-04,M1,,proceeds,-101.00,,,,,,,
day_total,2026-11-04,M1,,deposit_held,0.00,,,,,,,
day_total,2026-11-04,M1,,deposit_released,0.00,,,,,,,
day_total,2026-11-04,M1,,deposit_forfeited,0.00,,,,,,,
day_total,2026-11-04,M1,,deactivation_fee,0.00,,,,,,,
day_total,2026-11-04,M1,,payout,0.00,,,,,,,
day_total,2026-11-04,M1,,carried_out,-101.00,,,,,,,
period_total,,M1,,txn_count,,,,,,7,from=2026-11-02;to=2026-11-04,
period_total,,M1,,purchases,1750.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,refunds,100.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,fees,8.03,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,adjustments,-101.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,carried_in,0.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,proceeds,1540.97,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,deposit_held,299.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,deposit_released,299.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,deposit_forfeited,0.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,deactivation_fee,199.00,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,payout,1442.97,,,,,,from=2026-11-02;to=2026-11-04,
period_total,,M1,,carried_out,-101.00,,,,,,from=2026-11-02;to=2026-11-04,
";

#[test]
fn csv_statement_has_the_hand_worked_figures() {
    let dir = hand_case();
    let (code, _, stderr) = statement(dir.path(), &["run", "--merchant", "M1", "--out", "m1.csv"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(dir.path(), "m1.csv");
    assert_eq!(csv, EXPECTED_M1_CSV);
    // The period's conservation, from the totals alone: purchases −
    // refunds − fees + adjustments + first carried_in = payouts + held −
    // released + deactivation fees + last carried_out.
    assert_eq!(
        175_000 - 10_000 - 803 - 10_100,
        144_297 + 29_900 - 29_900 + 19_900 - 10_100
    );
    assert!(stderr.contains("payout 1442.97"), "{stderr}");
}

#[test]
fn csv_statement_of_one_date_and_of_a_known_merchant_without_rows() {
    let dir = hand_case();
    let args = [
        "run",
        "--merchant",
        "M1",
        "--from",
        "2026-11-03",
        "--to",
        "2026-11-03",
        "--out",
        "d.csv",
    ];
    let (code, _, stderr) = statement(dir.path(), &args);
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(dir.path(), "d.csv");
    let postings: Vec<&str> = csv.lines().filter(|l| l.starts_with("posting,")).collect();
    assert_eq!(postings.len(), 5);
    assert!(
        postings
            .iter()
            .all(|l| l.starts_with("posting,2026-11-03,M1,"))
    );
    assert!(csv.contains("period_total,,M1,,payout,149.75,,,,,,from=2026-11-03;to=2026-11-03,\n"));

    // M3 is in state/merchants.csv but has no row: an empty statement.
    let (code, _, stderr) = statement(dir.path(), &["run", "--merchant", "M3", "--out", "m3.csv"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(dir.path(), "m3.csv");
    assert!(!csv.contains("posting,"));
    assert!(csv.contains("period_total,,M3,,payout,0.00,"));
}

/// Runs a statement that must fail: exit 2, one line naming the problem,
/// and nothing written (no output, no temporary file).
#[track_caller]
fn assert_refused(cwd: &Path, args: &[&str], out: &str, sentence: &str) {
    let before = list_dir(cwd);
    let (code, stdout, stderr) = statement(cwd, args);
    assert_eq!(code, 2, "args {args:?}: stdout {stdout} stderr {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("settle: error: ") && stderr.contains(sentence),
        "expected {sentence:?} in {stderr:?}"
    );
    assert!(!cwd.join(out).exists(), "{out} must not be written");
    assert_eq!(list_dir(cwd), before, "nothing is written beside it");
}

#[test]
fn bad_inputs_exit_2_with_a_sentence_and_write_nothing() {
    let dir = hand_case();
    let cwd = dir.path();
    assert_refused(
        cwd,
        &["run", "--merchant", "M9", "--out", "s.html"],
        "s.html",
        "unknown merchant M9",
    );
    assert_refused(
        cwd,
        &[
            "run",
            "--merchant",
            "M1",
            "--from",
            "2026-11-01",
            "--out",
            "s.html",
        ],
        "s.html",
        "--from 2026-11-01 is outside the settlement dates of the runs (2026-11-02..2026-11-04)",
    );
    assert_refused(
        cwd,
        &[
            "run",
            "--merchant",
            "M1",
            "--to",
            "2026-11-05",
            "--out",
            "s.csv",
        ],
        "s.csv",
        "--to 2026-11-05 is outside the settlement dates",
    );
    assert_refused(
        cwd,
        &[
            "run",
            "--merchant",
            "M1",
            "--from",
            "2026-11-04",
            "--to",
            "2026-11-03",
            "--out",
            "s.csv",
        ],
        "s.csv",
        "--from 2026-11-04 is after --to 2026-11-03",
    );
    assert_refused(
        cwd,
        &["run", "--merchant", "M1", "--out", "s.pdf"],
        "s.pdf",
        "--out s.pdf must end in .html or .csv",
    );
    assert_refused(
        cwd,
        &["nowhere", "--merchant", "M1", "--out", "s.html"],
        "s.html",
        "nowhere is not a run folder: cannot read nowhere/control.json",
    );

    // A control.json that is not JSON.
    std::fs::create_dir(cwd.join("broken")).unwrap();
    std::fs::write(cwd.join("broken/control.json"), "{\"run\": ").unwrap();
    assert_refused(
        cwd,
        &["broken", "--merchant", "M1", "--out", "s.html"],
        "s.html",
        "broken/control.json is not JSON",
    );

    // A run without a journal.
    let copy = cwd.join("old");
    hand_run(&copy);
    std::fs::remove_file(copy.join("journal-2026-11-03.csv")).unwrap();
    assert_refused(
        cwd,
        &["old", "--merchant", "M1", "--out", "s.html"],
        "s.html",
        "old has no journal: old/settlement-2026-11-03.csv is there but old/journal-2026-11-03.csv is missing",
    );
}

/// Two daily runs of M1: 11-01 (settled 11-02) and 11-02 (settled 11-03).
fn daily_runs(cwd: &Path) {
    write_run(
        &cwd.join("day1"),
        "2026-11-01",
        "2026-11-01",
        &[DayFiles {
            date: "2026-11-02",
            settlement: &[
                "2026-11-02,M1,1,400.00,0.00,1.96,0.00,0.00,398.04,299.00,0.00,0.00,0.00,99.04,0.00",
            ],
            journal: &[
                "2026-11-02,M1,1,purchase,400.00,general,credit,0.0049,,1,,purchase",
                "2026-11-02,M1,2,fee,-1.96,general,credit,0.0049,no,1,,fee",
                "2026-11-02,M1,3,deposit_hold,-299.00,,,,,,deposit=299.00;held=299.00;window=2026-11-01..2026-11-05;target=1000.00;volume=400.00,held",
                "2026-11-02,M1,4,payout,-99.04,,,,,,,paid",
            ],
        }],
        &["M1"],
    );
    write_run(
        &cwd.join("day2"),
        "2026-11-02",
        "2026-11-02",
        &[DayFiles {
            date: "2026-11-03",
            settlement: &[
                "2026-11-03,M1,1,100.00,0.00,0.38,0.00,0.00,99.62,0.00,0.00,0.00,0.00,99.62,0.00",
            ],
            journal: &[
                "2026-11-03,M1,1,purchase,100.00,general,debit,0.0038,,1,,purchase",
                "2026-11-03,M1,2,fee,-0.38,general,debit,0.0038,no,1,,fee",
                "2026-11-03,M1,3,payout,-99.62,,,,,,,paid",
            ],
        }],
        &["M1"],
    );
}

#[test]
fn a_chain_of_daily_runs_gives_one_statement_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    daily_runs(cwd);
    // Given in either order: the runs are sorted by start.
    let (code, _, stderr) = statement(cwd, &["day2", "day1", "--merchant", "M1", "--out", "c.csv"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(cwd, "c.csv");
    assert!(csv.contains("day_total,2026-11-02,M1,,payout,99.04,"));
    assert!(csv.contains("day_total,2026-11-03,M1,,payout,99.62,"));
    assert!(csv.contains("period_total,,M1,,payout,198.66,,,,,,from=2026-11-02;to=2026-11-03,\n"));

    // The deposit's story, in English: still collecting; the window ends
    // on business date 11-05, and the statement's last settlement date
    // 11-03 is business date 11-02 (lag 1): 3 days left.
    let (code, _, stderr) = statement(
        cwd,
        &[
            "day1",
            "day2",
            "--merchant",
            "M1",
            "--lang",
            "en",
            "--out",
            "c.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let html = read(cwd, "c.html");
    assert!(html.contains("Being collected"), "status");
    assert!(
        html.contains("<dt>Days left in the window</dt><dd>3"),
        "days left"
    );
    assert!(html.contains("<dt>Volume reached</dt><dd>400.00</dd>"));
    assert!(html.contains("<dt>Released at net volume of</dt><dd>1,000.00</dd>"));

    // A gap: day1 and a run starting 11-03.
    write_run(&cwd.join("day4"), "2026-11-03", "2026-11-03", &[], &["M1"]);
    assert_refused(
        cwd,
        &["day1", "day4", "--merchant", "M1", "--out", "g.csv"],
        "g.csv",
        "run folders day1 and day4 do not chain (a gap): day1 ends on 2026-11-01 but day4 starts on 2026-11-03, not 2026-11-02",
    );
    // An overlap: the same day twice.
    assert_refused(
        cwd,
        &["day1", "day2", "day2", "--merchant", "M1", "--out", "g.csv"],
        "g.csv",
        "do not chain (an overlap)",
    );
}

#[test]
fn html_has_the_labels_of_each_language_and_escapes_reasons() {
    let dir = hand_case();
    let cwd = dir.path();
    let (code, _, stderr) = statement(cwd, &["run", "--merchant", "M1", "--out", "zh.html"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let zh = read(cwd, "zh.html");
    for label in [
        "商户对账单",
        "期间汇总",
        "押金情况",
        "注销扣费",
        "结算付款",
        "<html lang=\"zh-CN\">",
    ] {
        assert!(zh.contains(label), "zh page lacks {label}");
    }
    assert!(zh.contains("<meta name=\"viewport\""));
    assert!(zh.contains("@media print"));
    assert!(!zh.contains("<script"), "a reason must not become markup");
    assert!(
        !zh.contains("http://") && !zh.contains("https://"),
        "no network"
    );
    assert!(
        zh.contains("device returned &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; checked")
    );
    // Thousands separators, exact.
    assert!(zh.contains("1,293.22") && zh.contains("1,442.97"));

    let (code, _, stderr) = statement(
        cwd,
        &[
            "run",
            "--merchant",
            "M1",
            "--lang",
            "en",
            "--out",
            "en.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let en = read(cwd, "en.html");
    for label in [
        "Merchant statement",
        "Period summary",
        "Your deposit",
        "Deactivation fee",
        "What came in",
        "Deductions",
        "<html lang=\"en\">",
    ] {
        assert!(en.contains(label), "en page lacks {label}");
    }
    assert!(!en.contains("商户对账单"));
    // The wrongful fee given back: the charge, the correction and the
    // reason side by side.
    let fix = en.find("<div class=\"fix\">").expect("a correction block");
    let block = &en[fix..fix + 600];
    assert!(block.contains("Charged · 2026-11-03"), "{block}");
    assert!(
        block.contains("Deactivation fee <b class=\"neg\">-199.00</b>"),
        "{block}"
    );
    assert!(block.contains("199.00"), "{block}");
    assert!(block.contains("Wrongful fee given back"), "{block}");
    // The deposit came back in the final settlement.
    assert!(en.contains("Released") && en.contains("Deactivated on 2026-11-02"));

    // The waiver of M4, and why.
    let (code, _, stderr) = statement(
        cwd,
        &[
            "run",
            "--merchant",
            "M4",
            "--lang",
            "en",
            "--out",
            "m4.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let m4 = read(cwd, "m4.html");
    assert!(m4.contains("Fee waived"));
    assert!(m4.contains("Returned within the return window with no purchase ever"));
    assert!(m4.contains("<dt>Days from activation</dt><dd>8</dd>"));
}

/// Screenshots `html` into `png` and checks that the page has content.
fn screenshot(browser: &Path, html: &Path, png: &Path, width: u32, height: u32) {
    let bytes = common::screenshot(browser, html, png, width, height);
    assert!(bytes.len() > 10_000, "a page with content, not a blank");
}

#[test]
fn chromium_renders_the_page_on_desktop_and_phone_widths() {
    let Some(browser) = common::chromium() else {
        println!("skipped: no chromium or chromium-browser on PATH");
        return;
    };
    let dir = hand_case();
    let cwd = dir.path();
    let (code, _, stderr) = statement(cwd, &["run", "--merchant", "M1", "--out", "m1.html"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    // Kept under target/ so that a person can look at them.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("statement-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let html = shots.join("m1-zh.html");
    std::fs::copy(cwd.join("m1.html"), &html).unwrap();
    screenshot(&browser, &html, &shots.join("desktop-zh.png"), 900, 2000);
    screenshot(&browser, &html, &shots.join("phone-zh.png"), 390, 1600);
    let (code, _, stderr) = statement(
        cwd,
        &[
            "run",
            "--merchant",
            "M1",
            "--lang",
            "en",
            "--out",
            "en.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let html = shots.join("m1-en.html");
    std::fs::copy(cwd.join("en.html"), &html).unwrap();
    screenshot(&browser, &html, &shots.join("desktop-en.png"), 900, 2000);
}

/// Two daily runs of the engine itself, the second with `--state-in` the
/// first. M1 (deposit 299.00, 1,000.00 of volume within 5 days):
/// 11-01 a dining purchase of 400.00 by credit card (fee 1.96): settled
/// 11-02, the deposit held whole, payout 400.00 − 1.96 − 299.00 = 99.04.
/// 11-02 a general purchase of 700.00 by debit card (fee 2.66): volume
/// 1,100.00 reaches 1,000.00, the 299.00 comes back in the settlement of
/// 11-03: payout 700.00 − 2.66 + 299.00 = 996.34.
fn real_daily_runs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let merchants = ["M1,5812,2026-11-01,299.00,", "M2,5999,2026-11-01,0.00,"];
    let day1 = Case::new(
        &Cfg::deposit_small(),
        &merchants,
        &[
            "A1,M1,2026-11-01 10:00:00,purchase,400.00,credit,,",
            "A2,M2,2026-11-01 11:00:00,purchase,20.00,debit,,",
        ],
    )
    .out("day1")
    .run()
    .ok();
    day1.assert_row(
        "2026-11-02",
        "M1",
        "1 400.00 0.00 1.96 0.00 0.00 398.04 299.00 0.00 0.00 0.00 99.04 0.00",
    );
    let first = day1.dir.path().join("day1");
    let day2 = Case::new(
        &Cfg::deposit_small(),
        &merchants,
        &["B1,M1,2026-11-02 10:00:00,purchase,700.00,debit,,5999"],
    )
    .out("day2")
    .args(&["--state-in", first.to_str().unwrap()])
    .run()
    .ok();
    day2.assert_row(
        "2026-11-03",
        "M1",
        "1 700.00 0.00 2.66 0.00 0.00 697.34 0.00 299.00 0.00 0.00 996.34 0.00",
    );
    let second = day2.dir.path().join("day2");
    // Both runs in one folder, so that the statement names them simply.
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [(&first, "day1"), (&second, "day2")] {
        let status = std::process::Command::new("cp")
            .args([
                "-r",
                from.to_str().unwrap(),
                dir.path().join(to).to_str().unwrap(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let (d1, d2) = (dir.path().join("day1"), dir.path().join("day2"));
    (dir, d1, d2)
}

#[test]
fn a_chain_of_real_daily_runs_gives_one_statement() {
    let (dir, day1, _) = real_daily_runs();
    assert!(
        day1.join("journal-2026-11-02.csv").exists(),
        "settle run writes the journal"
    );
    let cwd = dir.path();
    let (code, _, stderr) = statement(
        cwd,
        &["day2", "day1", "--merchant", "M1", "--out", "m1.csv"],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(cwd, "m1.csv");
    for line in [
        "day_total,2026-11-02,M1,,purchases,400.00,,,,,,,\n",
        "day_total,2026-11-02,M1,,fees,1.96,,,,,,,\n",
        "day_total,2026-11-02,M1,,deposit_held,299.00,,,,,,,\n",
        "day_total,2026-11-02,M1,,payout,99.04,,,,,,,\n",
        "day_total,2026-11-03,M1,,purchases,700.00,,,,,,,\n",
        "day_total,2026-11-03,M1,,fees,2.66,,,,,,,\n",
        "day_total,2026-11-03,M1,,deposit_released,299.00,,,,,,,\n",
        "day_total,2026-11-03,M1,,payout,996.34,,,,,,,\n",
        "period_total,,M1,,payout,1095.38,,,,,,from=2026-11-02;to=2026-11-03,\n",
    ] {
        assert!(csv.contains(line), "{line:?} not in\n{csv}");
    }
    assert!(csv.contains("posting,2026-11-02,M1,1,purchase,400.00,dining,credit,0.0049,,1,"));
    assert!(csv.contains("posting,2026-11-03,M1,1,purchase,700.00,general,debit,0.0038,,1,"));

    // The deposit's story: released for volume reached on 11-02, decided
    // in the settlement of 11-03.
    let (code, _, stderr) = statement(
        cwd,
        &[
            "day1",
            "day2",
            "--merchant",
            "M1",
            "--lang",
            "en",
            "--out",
            "m1.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let html = read(cwd, "m1.html");
    assert!(html.contains("<dt>Decided in the settlement of</dt><dd>2026-11-03 · 299.00</dd>"));
    assert!(html.contains("Volume reached on 2026-11-02"));
    assert!(
        html.contains("<dt>Volume reached</dt><dd>1,100.00</dd>"),
        "volume"
    );

    // The first day alone, from the first run alone.
    let (code, _, stderr) = statement(cwd, &["day1", "--merchant", "M2", "--out", "m2.csv"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(read(cwd, "m2.csv").contains("period_total,,M2,,purchases,20.00,"));
}

#[test]
fn help_describes_the_statement_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = exec_str(dir.path(), &["--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  statement "),
        "settle --help lists statement: {out}"
    );
    let (code, out, err) = exec_str(dir.path(), &["statement", "--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in [
        "RUN_DIR",
        "--merchant",
        "--from",
        "--to",
        "--lang",
        "--out",
        ".html",
        ".csv",
    ] {
        assert!(
            out.contains(flag),
            "settle statement --help mentions {flag}: {out}"
        );
    }
    // A missing --merchant is a usage error of clap: exit 2, nothing written.
    let (code, _, _) = exec_str(dir.path(), &["statement", "run", "--out", "x.html"]);
    assert_eq!(code, 2);
    assert!(!dir.path().join("x.html").exists());
}

/// The bundled two-week run (fixtures/expected, with its journal):
/// M822010020 was charged the 199.00 deactivation fee on 11-12 (after 240
/// days) and given it back by adjustment ADJ-20261114-001 on 11-14, which
/// first pays the 121.40 carried in: 199.00 − 121.40 = 77.60 paid.
#[test]
fn the_bundled_run_shows_a_wrongful_fee_given_back() {
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expected");
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let run = run.to_str().unwrap();
    let (code, _, stderr) = statement(cwd, &[run, "--merchant", "M822010020", "--out", "m.csv"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let csv = read(cwd, "m.csv");
    let period: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("period_total,"))
        .collect();
    let want: Vec<String> = [
        ("txn_count", ""),
        ("purchases", "1489.40"),
        ("refunds", "0.00"),
        ("fees", "6.56"),
        ("adjustments", "199.00"),
        ("carried_in", "0.00"),
        ("proceeds", "1681.84"),
        ("deposit_held", "0.00"),
        ("deposit_released", "0.00"),
        ("deposit_forfeited", "0.00"),
        ("deactivation_fee", "199.00"),
        ("payout", "1482.84"),
        ("carried_out", "0.00"),
    ]
    .iter()
    .map(|(kind, amount)| {
        let count = if *kind == "txn_count" { "5" } else { "" };
        format!(
            "period_total,,M822010020,,{kind},{amount},,,,,{count},from=2026-11-02;to=2026-11-15,"
        )
    })
    .collect();
    assert_eq!(period, want);
    assert!(
        csv.contains("posting,2026-11-14,M822010020,1,carried_in,-121.40,,,,,,from=2026-11-12,")
    );
    assert!(csv.contains("day_total,2026-11-14,M822010020,,payout,77.60,"));

    let (code, _, stderr) = statement(
        cwd,
        &[
            run,
            "--merchant",
            "M822010020",
            "--lang",
            "en",
            "--out",
            "m.html",
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let html = read(cwd, "m.html");
    let fix = html
        .find("<div class=\"fix\">")
        .expect("a correction block");
    let block = &html[fix..fix + 700];
    assert!(block.contains("Charged · 2026-11-12"), "{block}");
    assert!(
        block.contains("Deactivation fee <b class=\"neg\">-199.00</b>"),
        "{block}"
    );
    assert!(
        block.contains("deactivation fee taken by mistake"),
        "{block}"
    );
    assert!(html.contains("<dt>Given back (adjustment)</dt><dd><b class=\"pos\">199.00</b> · Settlement date 2026-11-14</dd>"));
    assert!(html.contains("<dt>Days from activation</dt><dd>240</dd>"));
}

/// A real run whose adjustment reason holds markup: the page shows it as
/// text. The same run, its journal removed, is refused.
#[test]
fn a_real_run_escapes_reasons_and_without_its_journal_is_refused() {
    let run = Case::new(
        &Cfg::base(),
        &["M1,5812,2026-11-01,0.00,"],
        &["A1,M1,2026-11-01 10:00:00,purchase,100.00,credit,,"],
    )
    .adjustments(&["J1,M1,2026-11-02,-5.00,\"rental <script>alert(1)</script> & co\""])
    .run()
    .ok();
    run.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.49 -5.00 0.00 94.51 0.00 0.00 0.00 0.00 94.51 0.00",
    );
    let cwd = run.dir.path();
    for (lang, label) in [("zh", "调账"), ("en", "Adjustment")] {
        let out = format!("{lang}.html");
        let (code, _, stderr) = statement(
            cwd,
            &["out", "--merchant", "M1", "--lang", lang, "--out", &out],
        );
        assert_eq!(code, 0, "stderr: {stderr}");
        let html = read(cwd, &out);
        assert!(html.contains(label), "{lang}: {label}");
        assert!(
            html.contains("rental &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; co"),
            "{lang}"
        );
        assert!(!html.contains("<script"), "{lang}");
        assert!(html.contains("94.51"));
    }
    std::fs::remove_file(cwd.join("out/journal-2026-11-02.csv")).unwrap();
    assert_refused(
        cwd,
        &["out", "--merchant", "M1", "--out", "s.html"],
        "s.html",
        "out has no journal: out/settlement-2026-11-02.csv is there but out/journal-2026-11-02.csv is missing",
    );
}
