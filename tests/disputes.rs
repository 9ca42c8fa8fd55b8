//! The dispute trail (`fixtures/disputes/`, worked by hand in
//! `fixtures/README.md`, "The dispute trail: two daily runs"): run 1 takes a
//! deactivation fee by mistake and forfeits a deposit; run 2, started with
//! `--state-in` run 1, gives both back by adjustments. Both runs must
//! reproduce `fixtures/disputes/expected/run1/` and `expected/run2/` byte
//! for byte (journals included), and the hand-worked figures of the story
//! are asserted from the settlement files and the journals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{Json, exec_str, fen, parse_csv, read_tree};

const FIXTURE: &str = "fixtures/disputes";
const SHOP: &str = "M822020001"; // the phone shop: 199.00 fee taken by mistake
const BAKERY: &str = "M822020002"; // the bakery: deposit forfeited in error
const FLORIST: &str = "M822020005"; // the waiver, for contrast

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `settle` run from the repository root, so that the input paths it
/// writes into control.json and rejects.csv are the relative ones below.
fn settle(args: &[&str]) {
    let (code, _, stderr) = exec_str(root(), args);
    assert_eq!(code, 0, "settle {args:?} failed: {stderr}");
}

fn input(name: &str) -> String {
    format!("{FIXTURE}/{name}")
}

/// Runs 1 and 2 into a temporary folder; returns it and the two `--out`s.
fn two_runs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let run1 = scratch.path().join("run1");
    let run2 = scratch.path().join("run2");
    let (config, merchants) = (input("settle.toml"), input("merchants.csv"));
    let base = ["run", "--config", &config, "--merchants", &merchants];
    let day1 = input("transactions-day1.csv");
    let out1 = run1.to_str().expect("a UTF-8 path");
    settle(&[&base[..], &["--transactions", &day1, "--out", out1]].concat());
    let (day2, adjustments) = (
        input("transactions-day2.csv"),
        input("adjustments-day2.csv"),
    );
    let out2 = run2.to_str().expect("a UTF-8 path");
    settle(
        &[
            &base[..],
            &["--transactions", &day2, "--adjustments", &adjustments],
            &["--state-in", out1, "--out", out2],
        ]
        .concat(),
    );
    (scratch, run1, run2)
}

/// The published files of a run, its binary `state/` aside (the state tests
/// check it).
fn published(dir: &Path) -> BTreeMap<String, String> {
    read_tree(dir)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("state/"))
        .map(|(name, bytes)| (name, String::from_utf8(bytes).expect("UTF-8 output")))
        .collect()
}

fn assert_same_files(expected: &Path, actual: &Path) {
    let expected = published(expected);
    let actual = published(actual);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, text) in &expected {
        for (number, (want, got)) in text.lines().zip(actual[name].lines()).enumerate() {
            assert_eq!(want, got, "{name} line {}", number + 1);
        }
        assert_eq!(text, &actual[name], "{name}");
    }
}

/// Every row of a CSV file, as column → field.
fn records(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows = parse_csv(text).into_iter();
    let header = rows.next().expect("a header");
    rows.map(|row| header.iter().cloned().zip(row).collect())
        .collect()
}

/// The settlement rows of a run, as (date, merchant) → column → amount text.
fn settlement_rows(dir: &Path) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    published(dir)
        .into_iter()
        .filter(|(name, _)| name.starts_with("settlement-"))
        .flat_map(|(_, text)| records(&text))
        .map(|row| {
            (
                (row["settlement_date"].clone(), row["merchant_id"].clone()),
                row,
            )
        })
        .collect()
}

#[test]
fn the_dispute_trail_reproduces_both_runs_and_gives_back_what_was_taken() {
    let (_scratch, run1, run2) = two_runs();
    let expected = root().join(FIXTURE).join("expected");
    assert_same_files(&expected.join("run1"), &run1);
    assert_same_files(&expected.join("run2"), &run2);

    let one = settlement_rows(&run1);
    let two = settlement_rows(&run2);
    let row = |rows: &BTreeMap<(String, String), BTreeMap<String, String>>,
               date: &str,
               merchant: &str| {
        rows.get(&(date.to_string(), merchant.to_string()))
            .unwrap_or_else(|| panic!("a {date} row for {merchant}"))
            .clone()
    };

    // The phone shop. Run 1: the installer's 1.00 test sale and its void are
    // its only rows (txn_count 2, no money), yet a purchase was seen, so its
    // final settlement on 12-06 takes the 199.00 fee, which it owes.
    let test_sale = row(&one, "2026-12-05", SHOP);
    assert_eq!(test_sale["txn_count"], "2");
    assert_eq!(test_sale["purchases"], "0.00");
    let final_settlement = row(&one, "2026-12-06", SHOP);
    assert_eq!(final_settlement["deactivation_fee"], "199.00");
    assert_eq!(final_settlement["payout"], "0.00");
    assert_eq!(final_settlement["carried_out"], "-199.00");
    // Run 2: ADJ-20261208-001 gives the 199.00 back in full; it cancels the
    // debt carried in from run 1's state.
    let given_back = row(&two, "2026-12-08", SHOP);
    assert_eq!(given_back["adjustments"], "199.00");
    assert_eq!(given_back["carried_in"], "-199.00");
    assert_eq!(given_back["carried_out"], "0.00");
    assert_eq!(
        fen(&given_back["adjustments"]),
        fen(&final_settlement["deactivation_fee"])
    );

    // The bakery. Run 1: 193.78 + 57.29 = 251.07 held, a partial hold, and
    // forfeited at the end of its 3-day window (S 12-07).
    let held: i64 = one
        .iter()
        .filter(|((_, merchant), _)| merchant == BAKERY)
        .map(|(_, r)| fen(&r["deposit_held"]))
        .sum();
    assert_eq!(held, fen("251.07"));
    let forfeit = row(&one, "2026-12-07", BAKERY);
    assert_eq!(forfeit["deposit_forfeited"], "251.07");
    assert_eq!(forfeit["payout"], "85.68", "a forfeit row holds nothing");
    // Run 2: ADJ-20261208-002 returns exactly what was forfeited, paid out
    // with the day's trade: 143.00 - 0.53 + 251.07 = 393.54.
    let returned = row(&two, "2026-12-08", BAKERY);
    assert_eq!(returned["adjustments"], "251.07");
    assert_eq!(
        fen(&returned["adjustments"]),
        fen(&forfeit["deposit_forfeited"])
    );
    assert_eq!(returned["deposit_held"], "0.00", "a forfeited deposit");
    assert_eq!(returned["payout"], "393.54");

    // The florist, for contrast: deactivated in the return window with no
    // purchase ever, the fee is waived.
    assert_eq!(row(&one, "2026-12-05", FLORIST)["deactivation_fee"], "0.00");

    // The adjustments carry their reasons; the first try, booked into
    // 12-06 (run 1's settlement), is refused.
    let booked = records(&published(&run2)["adjustments-booked.csv"]);
    let reasons: Vec<(&str, &str, &str)> = booked
        .iter()
        .map(|r| {
            (
                r["adj_id"].as_str(),
                r["amount"].as_str(),
                r["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].0, "ADJ-20261208-001");
    assert_eq!(reasons[0].1, "199.00");
    assert!(
        reasons[0]
            .2
            .starts_with("deactivation fee taken by mistake: ")
    );
    assert_eq!(reasons[1].0, "ADJ-20261208-002");
    assert_eq!(reasons[1].1, "251.07");
    assert!(reasons[1].2.starts_with("deposit forfeited in error: "));
    let rejects: Vec<(String, String, String, String)> = records(&published(&run2)["rejects.csv"])
        .into_iter()
        .map(|r| {
            (
                r["file"].clone(),
                r["line"].clone(),
                r["txn_id"].clone(),
                r["reason"].clone(),
            )
        })
        .collect();
    let reject = |file: &str, line: &str, id: &str, reason: &str| {
        (input(file), line.into(), id.into(), reason.into())
    };
    assert_eq!(
        rejects,
        vec![
            reject(
                "transactions-day2.csv",
                "8",
                "TX2612060005",
                "late_transaction"
            ),
            reject(
                "adjustments-day2.csv",
                "2",
                "ADJ-20261206-001",
                "bad_adjustment"
            ),
        ]
    );

    // The journals explain the same story posting by posting (docs/JOURNAL.md).
    let posting = |dir: &Path, date: &str, merchant: &str, kind: &str| {
        records(&published(dir)[&format!("journal-{date}.csv")])
            .into_iter()
            .find(|p| p["merchant_id"] == merchant && p["kind"] == kind)
            .unwrap_or_else(|| panic!("a {kind} posting for {merchant} on {date}"))
    };
    let fee = posting(&run1, "2026-12-06", SHOP, "deactivation_fee");
    assert_eq!(fee["amount"], "-199.00");
    assert_eq!(
        fee["source"],
        "activated_on=2026-12-04;deactivated_on=2026-12-05;days=1;return_window_days=30;purchases_seen=yes"
    );
    assert_eq!(
        posting(&run1, "2026-12-06", SHOP, "carried_out")["amount"],
        "199.00"
    );
    let waived = posting(&run1, "2026-12-05", FLORIST, "deactivation_fee_waived");
    assert_eq!(waived["amount"], "0.00");
    assert!(waived["source"].ends_with(";days=0;return_window_days=30;purchases_seen=no"));
    let forfeit = posting(&run1, "2026-12-07", BAKERY, "deposit_forfeit");
    assert_eq!(forfeit["amount"], "251.07", "a memo of what was held");
    assert_eq!(
        forfeit["source"],
        "deposit=299.00;window=2026-12-04..2026-12-06;target=30000.00;volume=338.00"
    );
    assert_eq!(
        posting(&run2, "2026-12-08", SHOP, "carried_in")["source"],
        "from=state"
    );
    for (merchant, adj_id, amount, reason) in [
        (
            SHOP,
            "ADJ-20261208-001",
            "199.00",
            "deactivation fee taken by mistake: ",
        ),
        (
            BAKERY,
            "ADJ-20261208-002",
            "251.07",
            "deposit forfeited in error: ",
        ),
    ] {
        let adjustment = posting(&run2, "2026-12-08", merchant, "adjustment");
        assert_eq!(adjustment["amount"], amount);
        assert_eq!(adjustment["source"], format!("adj_id={adj_id}"));
        assert!(adjustment["detail"].starts_with(reason), "{adjustment:?}");
    }

    // What the shop owes: 199.00 after run 1, nothing after run 2.
    let receivables = |dir: &Path| -> String {
        Json::parse(&published(dir)["control.json"])
            .at("receivables.total")
            .str()
            .to_string()
    };
    assert_eq!(receivables(&run1), "199.00");
    assert_eq!(receivables(&run2), "0.00");

    // Both folders pass `settle verify`.
    for dir in [&run1, &run2] {
        let output = Command::new(env!("CARGO_BIN_EXE_settle"))
            .arg("verify")
            .arg(dir)
            .output()
            .expect("settle verify runs");
        assert!(
            output.status.success(),
            "verify {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
}
