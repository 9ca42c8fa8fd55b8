//! `settle diff RUN_A RUN_B`: real runs of the binary over the bundled
//! fixtures (fixtures/settle.toml and merchants.csv, six purchases of
//! week 1 and a refund) under the fixture configuration (A) and the same
//! with dining's credit rate lowered from 0.49% to 0.45% (B), with every
//! expected figure worked out by hand beside the test; identical runs;
//! runs over different inputs; the configuration keys; the JSON document;
//! the --out files; and the same comparison from runs made with other
//! thread counts and with --detail.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// Six purchases of fixtures/transactions-week1.csv (business date
/// 2026-11-01, settled 2026-11-02) and one refund written for this test
/// (2026-11-02, settled 2026-11-03):
///
/// | txn | merchant | category, card | amount | fee at 0.49% | fee at 0.45% |
/// |---|---|---|---|---|---|
/// | TX2611010003 | M822010001 | essential credit (0.38%) | 59.00 | 0.22 | 0.22 |
/// | TX2611010018 | M822010008 | dining debit | 320.00 | 1.568 → 1.57 | 1.57 |
/// | TX2611010022 | M822010008 | dining credit | 113.00 | 0.5537 → 0.55 | 0.5085 → 0.51 |
/// | TX2611010023 | M822010011 | dining credit | 105.00 | 0.5145 → 0.51 | 0.4725 → 0.47 |
/// | TX2611010026 | M822010009 | dining credit | 34.10 | 0.16709 → 0.17 | 0.15345 → 0.15 |
/// | TX2611010035 | M822010008 | dining credit | 242.00 | 1.1858 → 1.19 | 1.089 → 1.09 |
///
/// RF2611020001 refunds 100.00 of TX2611010035; under `refund_fee =
/// "proportional"` it returns 1.19 × 100/242 = 0.4917 → 0.49 in A and
/// 1.09 × 100/242 = 0.4504 → 0.45 in B (rounding half up).
const TRANSACTIONS: &str = "\
txn_id,merchant_id,terminal_id,ts,type,amount,card,orig_txn_id,mcc
TX2611010003,M822010001,T82201000102,2026-11-01T00:01:28.2Z,purchase,59.00,credit,,5411
TX2611010018,M822010008,T82201000801,2026-11-01T13:18:05+08:00,purchase,320.00,debit,,
TX2611010022,M822010008,T82201000802,2026-11-01T14:47:44+08:00,purchase,113.00,credit,,
TX2611010023,M822010011,T82201001101,2026-11-01 14:49:56,purchase,105.00,credit,,
TX2611010026,M822010009,T82201000901,2026-11-01T07:54:13.56853Z,purchase,34.10,credit,,
TX2611010035,M822010008,T82201000801,2026-11-01T19:38:35+08:00,purchase,242.00,credit,,
RF2611020001,M822010008,T82201000801,2026-11-02T10:00:00+08:00,refund,100.00,credit,TX2611010035,
";

/// The fixture configuration with dining's credit rate at 0.45%.
fn config_b() -> String {
    let base = std::fs::read_to_string(format!("{FIXTURES}/settle.toml")).unwrap();
    let at = base.find("name = \"dining_entertainment\"").unwrap();
    let rate = at + base[at..].find("credit_rate = \"0.0049\"").unwrap();
    format!(
        "{}credit_rate = \"0.0045\"{}",
        &base[..rate],
        &base[rate + "credit_rate = \"0.0049\"".len()..]
    )
}

/// A folder holding settle.toml (A), settle-b.toml (B), merchants.csv and
/// transactions.csv.
fn case_dir(transactions: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{FIXTURES}/settle.toml"),
        dir.path().join("settle.toml"),
    )
    .unwrap();
    std::fs::copy(
        format!("{FIXTURES}/merchants.csv"),
        dir.path().join("merchants.csv"),
    )
    .unwrap();
    std::fs::write(dir.path().join("settle-b.toml"), config_b()).unwrap();
    std::fs::write(dir.path().join("transactions.csv"), transactions).unwrap();
    dir
}

/// `settle run` in `dir` with `config` into `out`, plus `extra` flags.
fn run(dir: &Path, config: &str, transactions: &str, out: &str, extra: &[&str]) {
    let mut args = vec![
        "run",
        "--config",
        config,
        "--merchants",
        "merchants.csv",
        "--transactions",
        transactions,
        "--out",
        out,
    ];
    args.extend(extra);
    let (code, _, stderr) = exec_str(dir, &args);
    assert_eq!(code, 0, "settle run {args:?}: {stderr}");
}

/// The case folder with run A (`a`) and run B (`b`) published.
fn what_if(extra: &[&str]) -> tempfile::TempDir {
    let dir = case_dir(TRANSACTIONS);
    run(dir.path(), "settle.toml", "transactions.csv", "a", extra);
    run(dir.path(), "settle-b.toml", "transactions.csv", "b", extra);
    dir
}

fn diff(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["diff"];
    all.extend(args);
    exec_str(dir, &all)
}

#[track_caller]
fn diff_json(dir: &Path, args: &[&str]) -> Json {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout, stderr) = diff(dir, &all);
    assert_eq!(code, 0, "settle diff {all:?}: {stderr}");
    Json::parse(&stdout)
}

/// A figure's A, B and delta as written.
type Abd = (String, String, String);

/// (a, b, delta) of a JSON figure.
fn abd(figure: &Json) -> Abd {
    let text = |key: &str| match figure.at(key) {
        Json::Num(n) => n.clone(),
        other => other.str().to_string(),
    };
    (text("a"), text("b"), text("delta"))
}

fn t(a: &str, b: &str, d: &str) -> Abd {
    (a.into(), b.into(), d.into())
}

/// The fee deltas of the table above, and where they go:
///
/// - M822010008, 2026-11-02: fees 1.57 + 0.55 + 1.19 = 3.31 in A, 1.57 +
///   0.51 + 1.09 = 3.17 in B; no deposit is held (its window closed in
///   March), so the payout rises by 0.14 (671.69 → 671.83). 2026-11-03:
///   the refund's row has fees −0.49 and −0.45; nothing is paid, and the
///   shortfall carried out is 99.51 and 99.55. Over both: fees 2.82 → 2.72.
/// - M822010011: fees 0.51 → 0.47, payout 104.49 → 104.53.
/// - M822010009 (activated 2026-11-01): its whole proceeds go to the
///   deposit (33.93 → 33.95 held); the payout stays 0.00.
/// - M822010001 (essential): unchanged.
///
/// Totals: fees 3.72 → 3.56 (−0.16, −4.30% of 3.72); payouts 834.96 →
/// 835.14 (+0.18 = 0.14 + 0.04); deposit held +0.02; receivables +0.04
/// (M822010008 owes the 0.04 less fee it got back). Dining credit: four
/// purchases for 494.10, fees 0.55 + 0.51 + 0.17 + 1.19 − 0.49 = 1.93 →
/// 0.51 + 0.47 + 0.15 + 1.09 − 0.45 = 1.77 (−0.16, −8.29%). Merchants
/// ranked by |payout change|: M822010008 (0.14), M822010011 (0.04),
/// M822010009 (0.00, fees 0.02).
#[test]
fn a_lower_dining_credit_rate_is_worked_out_by_hand() {
    let dir = what_if(&[]);
    let doc = diff_json(dir.path(), &["a", "b"]);

    let key = doc.at("config_changes.keys.0");
    assert_eq!(
        key.at("key").str(),
        "category.dining_entertainment.credit_rate"
    );
    assert_eq!((key.at("a").str(), key.at("b").str()), ("0.0049", "0.0045"));
    assert_eq!(doc.at("config_changes.keys").arr().len(), 1);
    assert_eq!(doc.at("same_inputs"), &Json::Bool(true));

    let totals = doc.at("totals");
    assert_eq!(abd(totals.at("fees")), t("3.72", "3.56", "-0.16"));
    assert_eq!(totals.at("fees.delta_percent").str(), "-4.30");
    assert_eq!(abd(totals.at("payouts")), t("834.96", "835.14", "0.18"));
    assert_eq!(abd(totals.at("deposit_held")), t("33.93", "33.95", "0.02"));
    assert_eq!(abd(totals.at("receivables")), t("99.51", "99.55", "0.04"));
    assert_eq!(abd(totals.at("purchases")), t("873.10", "873.10", "0.00"));
    assert_eq!(abd(totals.at("refunds")), t("100.00", "100.00", "0.00"));
    assert_eq!(abd(totals.at("transactions")), t("7", "7", "0"));

    let categories = doc.at("by_category").arr();
    let names: Vec<(&str, &str)> = categories
        .iter()
        .map(|c| (c.at("category").str(), c.at("card").str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("dining_entertainment", "debit"),
            ("dining_entertainment", "credit"),
            ("essential", "credit"),
        ]
    );
    let credit = &categories[1];
    assert_eq!(abd(credit.at("purchases_count")), t("4", "4", "0"));
    assert_eq!(abd(credit.at("purchases")), t("494.10", "494.10", "0.00"));
    assert_eq!(abd(credit.at("fees")), t("1.93", "1.77", "-0.16"));
    assert_eq!(credit.at("fees.delta_percent").str(), "-8.29");
    assert_eq!(abd(categories[0].at("fees")), t("1.57", "1.57", "0.00"));

    let dates = doc.at("by_date").arr();
    assert_eq!(dates.len(), 2);
    assert_eq!(dates[0].at("settlement_date").str(), "2026-11-02");
    // 3.31 + 0.22 + 0.17 + 0.51 = 4.21; 3.17 + 0.22 + 0.15 + 0.47 = 4.01.
    assert_eq!(abd(dates[0].at("fees")), t("4.21", "4.01", "-0.20"));
    assert_eq!(abd(dates[1].at("fees")), t("-0.49", "-0.45", "0.04"));
    assert_eq!(
        abd(dates[1].at("carried_out")),
        t("-99.51", "-99.55", "-0.04")
    );

    assert_eq!(doc.at("merchants.changed").num(), 3);
    let top = doc.at("merchants.top").arr();
    let ranked: Vec<(&str, Abd, Abd)> = top
        .iter()
        .map(|m| {
            (
                m.at("merchant_id").str(),
                abd(m.at("payout")),
                abd(m.at("fees")),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        vec![
            (
                "M822010008",
                t("671.69", "671.83", "0.14"),
                t("2.82", "2.72", "-0.10")
            ),
            (
                "M822010011",
                t("104.49", "104.53", "0.04"),
                t("0.51", "0.47", "-0.04")
            ),
            (
                "M822010009",
                t("0.00", "0.00", "0.00"),
                t("0.17", "0.15", "-0.02")
            ),
        ]
    );

    // The table says the same, and names the key.
    let (code, table, stderr) = diff(dir.path(), &["a", "b", "--top", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        table.contains("  category.dining_entertainment.credit_rate: 0.0049 -> 0.0045\n"),
        "{table}"
    );
    let fees_line = table
        .lines()
        .find(|l| l.trim_start().starts_with("fees "))
        .unwrap();
    let words: Vec<&str> = fees_line.split_whitespace().collect();
    assert_eq!(words, ["fees", "3.72", "3.56", "-0.16", "-4.30%"]);
    assert!(
        table.contains("Merchants: 3 of 6 changed; the top 2"),
        "{table}"
    );
    assert!(table.contains("M822010011"), "{table}");
    assert!(!table.contains("M822010009"), "--top 2 shows two: {table}");
}

/// Two runs of one configuration: every delta is zero, no merchant
/// changed, the configuration is the same file; exit 0.
#[test]
fn identical_runs_give_all_zero_deltas() {
    let dir = case_dir(TRANSACTIONS);
    run(dir.path(), "settle.toml", "transactions.csv", "a", &[]);
    run(dir.path(), "settle.toml", "transactions.csv", "a2", &[]);
    let doc = diff_json(dir.path(), &["a", "a2"]);
    assert_eq!(doc.at("config_changes.same_file"), &Json::Bool(true));
    assert!(doc.at("config_changes.keys").arr().is_empty());
    let Json::Obj(totals) = doc.at("totals") else {
        panic!("totals is an object")
    };
    assert_eq!(totals.len(), 15);
    for (name, figure) in totals {
        let (a, b, delta) = abd(figure);
        assert_eq!(a, b, "{name}");
        assert!(delta == "0" || delta == "0.00", "{name}: {delta}");
    }
    for category in doc.at("by_category").arr() {
        assert_eq!(category.at("fees.delta").str(), "0.00");
    }
    assert_eq!(doc.at("merchants.changed").num(), 0);
    assert_eq!(doc.at("merchants.compared").num(), 6);
    assert!(doc.at("merchants.top").arr().is_empty());
}

/// Run B over one transaction fewer: refused with one sentence naming the
/// difference and the flag, nothing on stdout; with the flag, compared.
#[test]
fn runs_over_different_inputs_are_refused_unless_allowed() {
    let dir = case_dir(TRANSACTIONS);
    let fewer: String = TRANSACTIONS
        .lines()
        .filter(|line| !line.starts_with("TX2611010003"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(dir.path().join("fewer.csv"), fewer).unwrap();
    run(dir.path(), "settle.toml", "transactions.csv", "a", &[]);
    run(dir.path(), "settle.toml", "fewer.csv", "b", &[]);
    let (code, stdout, stderr) = diff(dir.path(), &["a", "b"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "settle: error: a and b were run over different inputs (the transactions differ"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-different-inputs"), "{stderr}");

    let doc = diff_json(dir.path(), &["a", "b", "--allow-different-inputs"]);
    assert_eq!(doc.at("same_inputs"), &Json::Bool(false));
    assert!(
        doc.at("input_differences.0")
            .str()
            .starts_with("the transactions differ")
    );
    // TX2611010003 was 59.00 at 0.38%: 0.22 of fees, M822010001's only row.
    assert_eq!(
        abd(doc.at("totals.purchases")),
        t("873.10", "814.10", "-59.00")
    );
    assert_eq!(abd(doc.at("totals.fees")), t("3.72", "3.50", "-0.22"));
    assert_eq!(abd(doc.at("totals.merchants")), t("6", "5", "-1"));
    let top = doc.at("merchants.top.0");
    assert_eq!(top.at("merchant_id").str(), "M822010001");
    assert_eq!(abd(top.at("rows")), t("1", "0", "-1"));
    assert_eq!(abd(top.at("payout")), t("58.78", "0.00", "-58.78"));
}

/// The configuration keys: changed, added and removed keys by their
/// dotted names; a configuration edited after its run, or gone, is said
/// instead of listing keys that would be wrong.
#[test]
fn configuration_keys_are_listed_or_their_absence_explained() {
    let dir = case_dir(TRANSACTIONS);
    let c = config_b()
        .replace("rounding = \"half_up\"", "rounding = \"half_even\"")
        .replace("return_window_days = 30", "");
    std::fs::write(dir.path().join("settle-c.toml"), c).unwrap();
    run(dir.path(), "settle.toml", "transactions.csv", "a", &[]);
    run(dir.path(), "settle-c.toml", "transactions.csv", "c", &[]);
    let (code, table, stderr) = diff(dir.path(), &["a", "c"]);
    assert_eq!(code, 0, "{stderr}");
    let section: Vec<&str> = table
        .lines()
        .skip_while(|l| *l != "Configuration")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(
        section,
        vec![
            "  category.dining_entertainment.credit_rate: 0.0049 -> 0.0045",
            "  deactivation.return_window_days: 30 -> (absent)",
            "  rounding: half_up -> half_even",
        ]
    );

    std::fs::write(dir.path().join("settle-c.toml"), "# edited\n").unwrap();
    let doc = diff_json(dir.path(), &["a", "c"]);
    assert!(doc.at("config_changes.keys").arr().is_empty());
    assert_eq!(
        doc.at("config_changes.notes.0").str(),
        "B's configuration settle-c.toml has changed since the run (its SHA-256 is not the one control.json records): its keys cannot be listed"
    );
    std::fs::remove_file(dir.path().join("settle-c.toml")).unwrap();
    let doc = diff_json(dir.path(), &["a", "c"]);
    assert!(
        doc.at("config_changes.notes.0")
            .str()
            .starts_with("B's configuration settle-c.toml cannot be read"),
        "{doc:?}"
    );
    // The figures are still compared.
    assert_eq!(doc.at("totals.fees.a").str(), "3.72");
}

/// The document's shape, as docs/DIFF.md lists it.
#[test]
fn the_json_document_has_its_documented_shape() {
    let dir = what_if(&[]);
    let doc = diff_json(dir.path(), &["a", "b", "--top", "1"]);
    let Json::Obj(top) = &doc else {
        panic!("an object")
    };
    let keys: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "a",
            "b",
            "same_inputs",
            "input_differences",
            "config_changes",
            "totals",
            "by_category",
            "by_date",
            "merchants"
        ]
    );
    assert_eq!(doc.at("a.dir").str(), "a");
    assert_eq!(doc.at("b.config.path").str(), "settle-b.toml");
    assert_eq!(doc.at("a.start").str(), "2026-11-01");
    assert_eq!(doc.at("a.horizon").str(), "2026-11-02");
    assert_eq!(doc.at("a.through"), &Json::Null);
    let Json::Obj(totals) = doc.at("totals") else {
        panic!("an object")
    };
    let names: Vec<&str> = totals.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "purchases",
            "refunds",
            "fees",
            "adjustments",
            "payouts",
            "deposit_held",
            "deposit_released",
            "deposit_forfeited",
            "deactivation_fees",
            "receivables",
            "settlement_rows",
            "merchants",
            "transactions",
            "rows_accepted",
            "rows_rejected"
        ]
    );
    // Amounts are strings with two decimals, counts are numbers; no
    // percentage where A is zero.
    assert!(matches!(doc.at("totals.settlement_rows.a"), Json::Num(_)));
    assert_eq!(doc.at("totals.adjustments.a").str(), "0.00");
    assert!(doc.at("totals.adjustments").get("delta_percent").is_none());
    let Json::Obj(date) = doc.at("by_date.0") else {
        panic!("an object")
    };
    let columns: Vec<&str> = date.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        columns,
        [
            "settlement_date",
            "rows",
            "txn_count",
            "purchases",
            "refunds",
            "fees",
            "adjustments",
            "carried_in",
            "proceeds",
            "deposit_held",
            "deposit_released",
            "deposit_forfeited",
            "deactivation_fee",
            "payout",
            "carried_out"
        ]
    );
    assert_eq!(doc.at("merchants.top").arr().len(), 1);
    assert_eq!(doc.at("merchants.top.0.rank").num(), 1);
}

/// `--out DIR`: one CSV file per breakdown, merchants.csv with every
/// merchant that changed (whatever --top); an --out that is not empty is
/// refused (exit 2) and left as it was; an unknown --out-format is refused.
#[test]
fn out_writes_one_csv_file_per_breakdown() {
    let dir = what_if(&[]);
    let (code, _, stderr) = diff(dir.path(), &["a", "b", "--top", "1", "--out", "report"]);
    assert_eq!(code, 0, "{stderr}");
    let files = read_tree(&dir.path().join("report"));
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "by_category.csv",
            "by_date.csv",
            "config_changes.csv",
            "merchants.csv",
            "totals.csv"
        ]
    );
    let text = |name: &str| String::from_utf8(files[name].clone()).unwrap();
    let totals = text("totals.csv");
    let lines: Vec<&str> = totals.lines().collect();
    assert_eq!(lines[0], "figure,a,b,delta");
    assert_eq!(lines[3], "fees,3.72,3.56,-0.16");
    assert_eq!(lines[5], "payouts,834.96,835.14,0.18");
    assert_eq!(lines[11], "settlement_rows,7,7,0");
    assert_eq!(lines.len(), 16);
    assert_eq!(
        text("by_category.csv"),
        "category,card,purchases_count_a,purchases_count_b,purchases_count_delta,purchases_a,purchases_b,purchases_delta,fees_a,fees_b,fees_delta\n\
         dining_entertainment,debit,1,1,0,320.00,320.00,0.00,1.57,1.57,0.00\n\
         dining_entertainment,credit,4,4,0,494.10,494.10,0.00,1.93,1.77,-0.16\n\
         essential,credit,1,1,0,59.00,59.00,0.00,0.22,0.22,0.00\n"
    );
    assert_eq!(
        text("config_changes.csv"),
        "key,a,b,note\ncategory.dining_entertainment.credit_rate,0.0049,0.0045,\n"
    );
    let merchants = parse_csv(&text("merchants.csv"));
    let header = &merchants[0];
    assert_eq!(
        header[..5],
        ["rank", "merchant_id", "rows_a", "rows_b", "rows_delta"]
    );
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<(&str, &str, &str)> = merchants[1..]
        .iter()
        .map(|r| {
            (
                r[column("merchant_id")].as_str(),
                r[column("payout_delta")].as_str(),
                r[column("fees_delta")].as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("M822010008", "0.14", "-0.10"),
            ("M822010011", "0.04", "-0.04"),
            ("M822010009", "0.00", "-0.02")
        ]
    );
    let by_date = parse_csv(&text("by_date.csv"));
    assert_eq!(by_date.len(), 3);
    assert_eq!(by_date[0][0], "settlement_date");
    assert_eq!(by_date[0].len(), 1 + 3 * 14);

    // Not empty: refused, left alone.
    let (code, stdout, stderr) = diff(dir.path(), &["a", "b", "--out", "report"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("--out exists and is not empty"), "{stderr}");
    assert_eq!(read_tree(&dir.path().join("report")), files);
    let (code, _, stderr) = diff(
        dir.path(),
        &["a", "b", "--out", "other", "--out-format", "xlsx"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(!dir.path().join("other").exists());
}

/// `--out-format parquet` writes the same breakdowns typed: amounts
/// DECIMAL(18,2), counts INT64, settlement_date a DATE; the totals table's
/// counts share a column with amounts and become exact decimals.
#[test]
fn out_format_parquet_writes_the_same_breakdowns_typed() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
    use arrow_schema::DataType;
    let dir = what_if(&[]);
    let (code, _, stderr) = diff(
        dir.path(),
        &["a", "b", "--out", "pq", "--out-format", "parquet"],
    );
    assert_eq!(code, 0, "{stderr}");
    let files = read_tree(&dir.path().join("pq"));
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "by_category.parquet",
            "by_date.parquet",
            "config_changes.parquet",
            "merchants.parquet",
            "totals.parquet"
        ]
    );
    let batch = |name: &str| {
        let bytes = bytes::Bytes::from(files[name].clone());
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1, "{name}: one batch");
        batches.into_iter().next().unwrap()
    };
    // totals: "fees,3.72,3.56,-0.16" and "settlement_rows,7,7,0" (as in the
    // CSV test above), with 7 as the decimal 7.00.
    let totals = batch("totals.parquet");
    assert_eq!(
        totals.schema().field(3).data_type(),
        &DataType::Decimal128(18, 2)
    );
    let figure = totals.column(0).as_string::<i32>();
    let delta = totals.column(3).as_primitive::<Decimal128Type>();
    let a = totals.column(1).as_primitive::<Decimal128Type>();
    let row = |name: &str| {
        (0..totals.num_rows())
            .find(|&k| figure.value(k) == name)
            .unwrap()
    };
    assert_eq!(delta.value(row("fees")), -16);
    assert_eq!(a.value(row("settlement_rows")), 700);
    // by_category: dining credit fees 1.93 -> 1.77, 4 purchases.
    let by_category = batch("by_category.parquet");
    assert_eq!(by_category.num_rows(), 3);
    let count = by_category.column(2).as_primitive::<Int64Type>();
    let fees_delta = by_category.column(10).as_primitive::<Decimal128Type>();
    assert_eq!((count.value(1), fees_delta.value(1)), (4, -16));
    // by_date: two dates, each a DATE.
    let by_date = batch("by_date.parquet");
    assert_eq!(by_date.num_rows(), 2);
    let day = by_date.column(0).as_primitive::<Date32Type>();
    assert_eq!(day.value(1) - day.value(0), 1, "consecutive dates");
    // The same figures as the CSV files of the same diff: each date's
    // settlement_date and fees_delta.
    let (code, _, stderr) = diff(dir.path(), &["a", "b", "--out", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    let csv = parse_csv(
        &String::from_utf8(std::fs::read(dir.path().join("csv/by_date.csv")).unwrap()).unwrap(),
    );
    let at = csv[0].iter().position(|c| c == "fees_delta").unwrap();
    let fees = by_date.column(at).as_primitive::<Decimal128Type>();
    for k in 0..2 {
        assert_eq!(fen(&csv[k + 1][at]), i64::try_from(fees.value(k)).unwrap());
    }
}

/// The same comparison from runs made with other thread counts gives the
/// same bytes (table, JSON and --out files); runs made with --detail
/// (per-transaction journals) give the same figures.
#[test]
fn the_diff_does_not_depend_on_how_the_runs_were_made() {
    let outputs = |threads_a: &str, threads_b: &str| {
        let dir = case_dir(TRANSACTIONS);
        run(
            dir.path(),
            "settle.toml",
            "transactions.csv",
            "a",
            &["--threads", threads_a],
        );
        run(
            dir.path(),
            "settle-b.toml",
            "transactions.csv",
            "b",
            &["--threads", threads_b],
        );
        let table = diff(dir.path(), &["a", "b"]);
        let json = diff(dir.path(), &["a", "b", "--json"]);
        let (code, _, stderr) = diff(dir.path(), &["a", "b", "--out", "report"]);
        assert_eq!(code, 0, "{stderr}");
        (table, json, read_tree(&dir.path().join("report")))
    };
    let one = outputs("1", "3");
    let other = outputs("4", "2");
    assert_eq!(one.0.0, 0);
    assert_eq!(one, other);

    let detail = what_if(&["--detail"]);
    let grouped = what_if(&[]);
    let figures = |dir: &Path| {
        let doc = diff_json(dir, &["a", "b"]);
        [
            doc.at("totals").clone(),
            doc.at("by_category").clone(),
            doc.at("by_date").clone(),
            doc.at("merchants").clone(),
        ]
    };
    assert_eq!(figures(detail.path()), figures(grouped.path()));
}

/// Bad input: a folder that is not a run, a run without its journal, a
/// settlement file edited so that it no longer sums to control.json:
/// each exit 2 with one sentence naming the file.
#[test]
fn bad_run_folders_are_named() {
    let dir = what_if(&[]);
    let (code, _, stderr) = diff(dir.path(), &["a", "nowhere"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("nowhere is not a run folder"), "{stderr}");

    let copy = |from: &str, to: &str| {
        let target = dir.path().join(to);
        std::fs::create_dir_all(&target).unwrap();
        for (name, bytes) in read_tree(&dir.path().join(from)) {
            let path: PathBuf = target.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    };
    copy("b", "no-journal");
    std::fs::remove_file(dir.path().join("no-journal/journal-2026-11-03.csv")).unwrap();
    let (code, stdout, stderr) = diff(dir.path(), &["a", "no-journal"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("no-journal has no journal"), "{stderr}");

    copy("b", "edited");
    let path = dir.path().join("edited/settlement-2026-11-02.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(",104.53,0.00\n", ",104.54,0.00\n")).unwrap();
    let (code, _, stderr) = diff(dir.path(), &["a", "edited"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "settle: error: {}: totals.payouts is 835.14 but the settlement files sum to 835.15\n",
            Path::new("edited").join("control.json").display()
        )
    );
}

/// `--report FILE.html` writes the what-if page: the changed key, the fee
/// change worked out by hand in the first test (3.72 -> 3.56, -0.16), inline
/// SVG charts and nothing to fetch; a page path that is not .html is
/// refused before anything is written, --out included.
#[test]
fn report_writes_the_what_if_page() {
    let dir = what_if(&[]);
    let (code, _, stderr) = diff(dir.path(), &["a", "b", "--report", "what-if.html"]);
    assert_eq!(code, 0, "{stderr}");
    let page = String::from_utf8(std::fs::read(dir.path().join("what-if.html")).unwrap()).unwrap();
    assert!(
        page.contains("category.dining_entertainment.credit_rate"),
        "the changed key"
    );
    assert!(
        page.contains(
            "<td class=\"num\">3.72</td><td class=\"num\">3.56</td><td class=\"num\">-0.16</td>"
        ),
        "the fee totals"
    );
    assert!(page.matches("<svg").count() >= 2, "two charts");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing to fetch"
    );

    let (code, _, stderr) = diff(
        dir.path(),
        &["a", "b", "--out", "tables", "--report", "what-if.pdf"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("must end in .html"), "{stderr}");
    assert!(!dir.path().join("tables").exists());
    assert!(!dir.path().join("what-if.pdf").exists());
}
