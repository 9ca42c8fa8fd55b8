//! `settle report`: the page of charts over published runs. The bundled
//! runs (`fixtures/expected/`, the two-week set, and the dispute trail's two
//! chained runs in `fixtures/disputes/expected/`) are reported as they are;
//! two daily runs are made by the engine from the two-week set. The page's
//! figures are compared with control.json and with sums worked out here
//! from the expected journals and settlement files (by hand for the dispute
//! trail), its charts must be inline SVG, nothing on it may point at the
//! network, the same runs must give the same bytes, and every bad input
//! exits 2 without writing. A screenshot by headless Chromium, when one is
//! installed, checks that the page renders.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BIN, Json, exec_str, fen, parse_csv};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `settle ARGS` from the repository root, with `RAYON_NUM_THREADS` when
/// given.
fn settle(args: &[&str], threads: Option<usize>) -> (i32, String) {
    let mut command = Command::new(BIN);
    command.current_dir(root()).args(args);
    if let Some(n) = threads {
        command.env("RAYON_NUM_THREADS", n.to_string());
    }
    let output = command.output().expect("run settle");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Reports `runs` into `out` and returns the page; the command must succeed.
fn report(runs: &[&Path], out: &Path) -> String {
    let mut args = vec!["report".to_string()];
    args.extend(runs.iter().map(|r| r.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = settle(&args, None);
    assert_eq!(code, 0, "settle {args:?}: {stderr}");
    std::fs::read_to_string(out).expect("the page")
}

/// Amounts as the page prints them: CNY with thousands separators. Written
/// here apart from the engine's own formatter.
fn grouped(amount_fen: i64) -> String {
    let sign = if amount_fen < 0 { "-" } else { "" };
    let magnitude = amount_fen.unsigned_abs();
    let whole = (magnitude / 100).to_string();
    let mut out = String::from(sign);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    format!("{out}.{:02}", magnitude % 100)
}

/// The part of the page inside `<section ... id="ID">`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = page[start..]
        .find("</section>")
        .map_or(page.len(), |at| start + at);
    &page[start..end]
}

/// The text of every body and footer row of every table in `html`, cell
/// by cell, with the page's escapes undone.
fn table_rows(html: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for row in html.split("<tr>").skip(1) {
        let row = row.split("</tr>").next().unwrap_or_default();
        if row.contains("<th") {
            continue;
        }
        let cells = row
            .split("<td")
            .skip(1)
            .map(|cell| {
                let text = cell.split_once('>').map_or("", |(_, rest)| rest);
                let text = text.split("</td>").next().unwrap_or_default();
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&#x27;", "'")
                    .replace("&#x2f;", "/")
                    .replace("&amp;", "&")
            })
            .collect();
        rows.push(cells);
    }
    rows
}

/// The row of `rows` whose first cell is `first`.
#[track_caller]
fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row {first:?} in {rows:#?}"))
}

/// A page is one self-contained file: inline SVG charts, no script, no
/// stylesheet, image or font fetched, no URL at all.
#[track_caller]
fn assert_self_contained(page: &str, charts: usize) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        page.matches("<svg ").count(),
        charts,
        "one inline <svg> per chart"
    );
    assert_eq!(page.matches("<figure class=\"chart\">").count(), charts);
    for banned in [
        "http://", "https://", "<script", "<link", "<img", "<iframe", "src=", "@import", "url(",
    ] {
        assert!(!page.contains(banned), "the page holds {banned:?}");
    }
}

/// Net fees by (category, card) and fee postings' counts, worked out from
/// the journal files of `dir`: −(fee + fee_returned).
fn fees_from_journals(dir: &Path) -> BTreeMap<String, (i64, i64, i64)> {
    let mut fees: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("journal-") {
            continue;
        }
        for line in parse_csv(&std::fs::read_to_string(&path).unwrap())
            .iter()
            .skip(1)
        {
            if line[3] != "fee" && line[3] != "fee_returned" {
                continue;
            }
            let entry = fees.entry(line[5].clone()).or_default();
            let net = -fen(&line[4]);
            match line[6].as_str() {
                "debit" => entry.0 += net,
                "credit" => entry.1 += net,
                other => panic!("card {other:?}"),
            }
            if line[3] == "fee" {
                entry.2 += line[9].parse::<i64>().unwrap();
            }
        }
    }
    fees
}

#[test]
fn the_two_week_run_shows_its_control_totals_and_fees_by_category() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("report.html");
    let run = root().join("fixtures/expected");
    let page = report(&[&run], &out);
    // Fees, payouts, receivables, deposits, deactivations, rejects.
    assert_self_contained(&page, 6);

    // The control totals, each exactly as control.json has it.
    let control = Json::parse(&std::fs::read_to_string(run.join("control.json")).unwrap());
    let rows = table_rows(section(&page, "summary"));
    let keys = [
        "purchases",
        "refunds",
        "fees",
        "adjustments",
        "carried_in_first",
        "payouts",
        "deposit_held",
        "deposit_released",
        "deposit_forfeited",
        "deactivation_fees",
        "carried_out_last",
    ];
    for key in keys {
        let expected = grouped(fen(control.at(&format!("totals.{key}")).str()));
        let shown = rows
            .iter()
            .find(|r| r.len() == 3 && r[1] == key)
            .unwrap_or_else(|| panic!("no total {key}"));
        assert_eq!(shown[2], expected, "{key}");
    }
    // Figures that a person reads first, as the fixture's README works
    // them out: 274,558.50 of purchases, 637.31 of fees, 642.85 owed.
    assert!(page.contains("<div class=\"k\">Purchases</div><div class=\"v\">274,558.50</div>"));
    assert!(page.contains("<div class=\"k\">Fees</div><div class=\"v\">637.31</div>"));
    assert!(
        page.contains("<div class=\"k\">Receivables at the end</div><div class=\"v\">642.85</div>")
    );
    // Both sides of the conservation equation: 274,558.50 − 15,070.95 −
    // 637.31 − 36.00 + 0.00 = 258,814.24 = 256,170.09 + 3,337.77 − 846.77
    // + 796.00 − 642.85.
    assert!(page.contains("carried in = 258,814.24 = payouts"), "{page}");
    assert!(page.contains("carried out = 258,814.24."));
    // Every input's digest.
    let inputs = control.at("inputs");
    for digest in [
        inputs.at("config.sha256").str(),
        inputs.at("merchants.sha256").str(),
        inputs.at("transactions.0.sha256").str(),
        inputs.at("transactions.1.sha256").str(),
        inputs.at("adjustments.sha256").str(),
    ] {
        assert!(page.contains(digest), "digest {digest}");
    }

    // Fees by category and card, as the journals sum them.
    let fees = fees_from_journals(&run);
    assert_eq!(fees.len(), 4, "{fees:?}");
    let rows = table_rows(section(&page, "fees"));
    let mut all = 0;
    for (category, (debit, credit, charged)) in &fees {
        let shown = row(&rows, category);
        assert_eq!(shown[1], grouped(*debit), "{category} debit");
        assert_eq!(shown[2], grouped(*credit), "{category} credit");
        assert_eq!(shown[3], grouped(debit + credit), "{category} net");
        assert_eq!(shown[4], charged.to_string(), "{category} purchases");
        all += debit + credit;
    }
    assert_eq!(all, fen(control.at("totals.fees").str()));
    assert_eq!(
        row(&rows, "general")[1..4],
        ["85.32", "291.59", "376.91"],
        "the largest category, first"
    );
    assert_eq!(rows[0][0], "general", "largest net fees first");
    assert_eq!(row(&rows, "All categories")[3], "637.31");

    // Payouts per date: the settlement files' payout column summed.
    let rows = table_rows(section(&page, "payouts"));
    for date in ["2026-11-02", "2026-11-10", "2026-11-15"] {
        let settlement = parse_csv(
            &std::fs::read_to_string(run.join(format!("settlement-{date}.csv"))).unwrap(),
        );
        let payout: i64 = settlement[1..].iter().map(|r| fen(&r[13])).sum();
        assert_eq!(row(&rows, date)[6], grouped(payout), "{date}");
    }
    // What is owed at the end is control.json's receivables.
    assert_eq!(row(&rows, "2026-11-15")[8], "642.85");
    assert_eq!(row(&rows, "All dates")[6], "256,170.09");

    // Rejects: 56 rows in rejects.csv, the most common reason first.
    let rejects = parse_csv(&std::fs::read_to_string(run.join("rejects.csv")).unwrap());
    let rows = table_rows(section(&page, "rejects"));
    assert_eq!(
        row(&rows, "All reasons")[1],
        (rejects.len() - 1).to_string()
    );
    let malformed = rejects.iter().filter(|r| r[3] == "malformed_row").count();
    assert_eq!(rows[0][0], "malformed_row");
    assert_eq!(rows[0][1], malformed.to_string());

    // The busiest merchant has the most purchases over the files.
    let mut purchases: BTreeMap<String, i64> = BTreeMap::new();
    for entry in std::fs::read_dir(&run).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("settlement-")
        {
            for r in parse_csv(&std::fs::read_to_string(&path).unwrap())
                .iter()
                .skip(1)
            {
                *purchases.entry(r[1].clone()).or_default() += fen(&r[3]);
            }
        }
    }
    let (busiest, most) = purchases
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .unwrap();
    let rows = table_rows(section(&page, "merchants"));
    assert_eq!(rows.len(), 20, "20 merchants by default");
    assert_eq!(
        rows[0][..3],
        ["1".to_string(), busiest.clone(), grouped(*most)]
    );
}

/// The dispute trail, by hand (fixtures/README.md): run 1 settles
/// 2026-12-05..07, run 2 (`--state-in` run 1) 2026-12-08.
#[test]
fn a_chain_of_two_runs_is_reported_as_one_period() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("chain.html");
    let run1 = root().join("fixtures/disputes/expected/run1");
    let run2 = root().join("fixtures/disputes/expected/run2");
    // Given in reverse order: the report sorts them by start.
    let page = report(&[&run2, &run1], &out);
    assert!(page.contains("Settlement dates 2026-12-05 – 2026-12-08 · 2 run folders"));

    // Fees, from the fee postings of both runs:
    // general debit 13.87 + 20.00 (capped) + 9.04 = 42.91, credit 57.60 +
    // 71.50 − 4.55 returned = 124.55; dining_entertainment debit 0.33 +
    // 0.17 + 20.00 + 0.35 = 20.85, credit 0.87 + 0.43 − 0.25 + 0.18 = 1.23;
    // essential debit 0.24 + 0.05 + 0.08 + 0.16 = 0.53, credit 0.48 + 0.16
    // + 0.24 + 0.37 = 1.25. In all 191.32 = 185.77 (run 1) + 5.55 (run 2).
    // Shares of 191.32 in basis points, half up: 167.46 is 87.528…%,
    // 22.08 is 11.540…%, 1.78 is 0.930…%.
    let expected = [
        ["general", "42.91", "124.55", "167.46", "5", "87.53%"],
        [
            "dining_entertainment",
            "20.85",
            "1.23",
            "22.08",
            "8",
            "11.54%",
        ],
        ["essential", "0.53", "1.25", "1.78", "9", "0.93%"],
        [
            "All categories",
            "64.29",
            "127.03",
            "191.32",
            "22",
            "100.00%",
        ],
    ];
    assert_eq!(table_rows(section(&page, "fees")), expected);

    // Totals summed over the runs: purchases 44,123.80 + 2,631.00;
    // carried in −199.00 (run 2's shop, from run 1's state).
    let rows = table_rows(section(&page, "summary"));
    let total = |key: &str| rows.iter().find(|r| r.len() == 3 && r[1] == key).unwrap()[2].clone();
    assert_eq!(total("purchases"), "46,754.80");
    assert_eq!(total("payouts"), "45,503.48");
    assert_eq!(total("adjustments"), "450.07");
    assert_eq!(total("carried_in_first"), "-199.00");
    // 46,754.80 − 1,060.00 − 191.32 + 450.07 − 199.00 = 45,754.55 =
    // 45,503.48 + 550.07 − 299.00 + 199.00 − 199.00.
    assert!(page.contains(
        "summed over the runs: purchases − refunds − fees + adjustments + carried in = 45,754.55"
    ));

    // Receivables: the shop's 199.00 fee left it owing from 12-06 until
    // run 2's adjustment gave it back on 12-08.
    let rows = table_rows(section(&page, "payouts"));
    let owed: Vec<&str> = ["2026-12-05", "2026-12-06", "2026-12-07", "2026-12-08"]
        .iter()
        .map(|d| row(&rows, d)[8].as_str())
        .collect();
    assert_eq!(owed, ["0.00", "199.00", "199.00", "0.00"]);

    // The waiver (12-05, the florist) and the fee taken (12-06, the shop).
    let rows = table_rows(section(&page, "deactivations"));
    assert_eq!(row(&rows, "2026-12-05")[1..], ["0", "0.00", "1"]);
    assert_eq!(row(&rows, "2026-12-06")[1..], ["1", "199.00", "0"]);
    // Deposits: held 193.78 + 299.00 + 57.29 in 3 holds; 299.00 released
    // for volume on 12-06, beside two final settlements that release the
    // nothing they held (posted all the same, docs/JOURNAL.md); the
    // bakery's 251.07 forfeited on 12-07.
    let rows = table_rows(section(&page, "deposits"));
    assert_eq!(
        row(&rows, "All dates")[1..],
        ["550.07", "3", "299.00", "3", "251.07", "1"]
    );
    // One reject in each run.
    let rows = table_rows(section(&page, "rejects"));
    assert_eq!(row(&rows, "bad_adjustment")[1], "1");
    assert_eq!(row(&rows, "late_transaction")[1], "1");
    // The busiest: M822020003 with 16,450.00 + 22,768.00 + 2,380.00; the
    // two merchants without purchases last, by id.
    let rows = table_rows(section(&page, "merchants"));
    let order: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("M822020003", "41,598.00"),
            ("M822020004", "4,675.80"),
            ("M822020002", "481.00"),
            ("M822020001", "0.00"),
            ("M822020005", "0.00"),
        ]
    );
}

/// Two daily runs made by the engine from the two-week set (`--through`
/// 2026-11-01, then `--state-in` it `--through` 2026-11-02) give, on their
/// two settlement dates, the figures of the one run over two weeks.
#[test]
fn two_daily_runs_match_the_long_run_on_their_dates() {
    let scratch = tempfile::tempdir().unwrap();
    let day1 = scratch.path().join("day1");
    let day2 = scratch.path().join("day2");
    let base = [
        "run",
        "--config",
        "fixtures/settle.toml",
        "--merchants",
        "fixtures/merchants.csv",
        "--transactions",
        "fixtures/transactions-week1.csv",
    ];
    let (d1, d2) = (day1.to_str().unwrap(), day2.to_str().unwrap());
    let (code, stderr) = settle(
        &[&base[..], &["--through", "2026-11-01", "--out", d1]].concat(),
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = settle(
        &[
            &base[..],
            &["--through", "2026-11-02", "--state-in", d1, "--out", d2],
        ]
        .concat(),
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let daily = report(&[&day1, &day2], &scratch.path().join("daily.html"));
    let long = report(
        &[&root().join("fixtures/expected")],
        &scratch.path().join("long.html"),
    );
    assert!(daily.contains("Settlement dates 2026-11-02 – 2026-11-03 · 2 run folders"));
    let (daily_rows, long_rows) = (
        table_rows(section(&daily, "payouts")),
        table_rows(section(&long, "payouts")),
    );
    for date in ["2026-11-02", "2026-11-03"] {
        assert_eq!(row(&daily_rows, date), row(&long_rows, date), "{date}");
    }
    assert_eq!(daily_rows.len(), 3, "two dates and the totals");
}

#[test]
fn the_same_runs_give_the_same_bytes_whatever_the_threads_and_order() {
    let scratch = tempfile::tempdir().unwrap();
    let run1 = root().join("fixtures/disputes/expected/run1");
    let run2 = root().join("fixtures/disputes/expected/run2");
    let mut pages = Vec::new();
    for (k, (threads, runs)) in [
        (1, [&run1, &run2]),
        (4, [&run2, &run1]),
        (2, [&run1, &run2]),
    ]
    .into_iter()
    .enumerate()
    {
        let out = scratch.path().join(format!("p{k}.html"));
        let (code, stderr) = settle(
            &[
                "report",
                runs[0].to_str().unwrap(),
                runs[1].to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            Some(threads),
        );
        assert_eq!(code, 0, "{stderr}");
        pages.push(std::fs::read(&out).unwrap());
    }
    assert!(pages[0].len() > 10_000);
    assert_eq!(pages[0], pages[1]);
    assert_eq!(pages[0], pages[2]);
}

#[test]
fn top_lists_as_many_merchants_as_asked() {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("top.html");
    let (code, stderr) = settle(
        &[
            "report",
            "fixtures/expected",
            "--top",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let page = std::fs::read_to_string(&out).unwrap();
    let rows = table_rows(section(&page, "merchants"));
    assert_eq!(rows.len(), 3);
    assert!(
        page.contains("The 3 merchants with the most purchases of the 35 with a settlement row")
    );
}

/// A copy of the two-week run, to spoil.
fn copy_run(to: &Path) -> PathBuf {
    let from = root().join("fixtures/expected");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    to.to_path_buf()
}

#[test]
fn bad_input_exits_2_with_one_sentence_and_writes_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let out = dir.join("out.html");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let no_journal = copy_run(&dir.join("no-journal"));
    std::fs::remove_file(no_journal.join("journal-2026-11-05.csv")).unwrap();
    let no_rejects = copy_run(&dir.join("no-rejects"));
    std::fs::remove_file(no_rejects.join("rejects.csv")).unwrap();
    // One fen more payout in a settlement file: control.json's total no
    // longer sums the files.
    let edited = copy_run(&dir.join("edited"));
    let path = edited.join("settlement-2026-11-03.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(",522.15,0.00\n", ",522.16,0.00\n", 1);
    std::fs::write(&path, text).unwrap();
    // One fen more fee in a journal: its fees no longer sum the file's.
    let fee = copy_run(&dir.join("fee"));
    let path = fee.join("journal-2026-11-03.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(",fee,-0.83,", ",fee,-0.84,", 1);
    std::fs::write(&path, text).unwrap();

    let s = |p: &Path| p.to_str().unwrap().to_string();
    let week = "fixtures/expected".to_string();
    let disputes = "fixtures/disputes/expected/run1".to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![s(&empty)], "is not a run folder"),
        (vec![s(&dir.join("missing"))], "is not a run folder"),
        (vec![week.clone(), disputes.clone()], "do not chain (a gap)"),
        (
            vec![week.clone(), week.clone()],
            "do not chain (an overlap)",
        ),
        (vec![s(&no_journal)], "has no journal"),
        (vec![s(&no_rejects)], "rejects.csv is missing"),
        (
            vec![s(&edited)],
            "totals.payouts is 256170.09 but the settlement files' payout column sums to 256170.10",
        ),
        (
            vec![s(&fee)],
            "journal-2026-11-03.csv: the fee postings sum to 136.75 but the settlement file's column to 136.74",
        ),
    ];
    for (runs, message) in cases {
        let mut args = vec!["report".to_string()];
        args.extend(runs.iter().cloned());
        args.extend(["--out".to_string(), s(&out)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = settle(&args, None);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // An --out other than .html, or --top beyond its limit.
    for (args, message) in [
        (
            vec!["report", "fixtures/expected", "--out", "r.pdf"],
            "must end in .html",
        ),
        (
            vec![
                "report",
                "fixtures/expected",
                "--top",
                "1001",
                "--out",
                "r.html",
            ],
            "--top 1001 is more than 1000",
        ),
    ] {
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        let last = args.len() - 1;
        args[last] = s(&dir.join(&args[last]));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = settle(&args, None);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(!Path::new(args[args.len() - 1]).exists());
    }
    // No folder at all is clap's usage error.
    let (code, _, _) = exec_str(dir, &["report", "--out", "x.html"]);
    assert_eq!(code, 2);
    assert!(!dir.join("x.html").exists());
}

#[test]
fn chromium_renders_the_page() {
    let Some(browser) = common::chromium() else {
        println!("skipped: no chromium or chromium-browser on PATH");
        return;
    };
    // Kept under target/ so that a person can look at it.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let html = shots.join("report.html");
    report(&[&root().join("fixtures/expected")], &html);
    let png = shots.join("report.png");
    let bytes = common::screenshot(&browser, &html, &png, 1200, 2400);
    assert!(bytes.len() > 50_000, "a page with charts, not a blank");
}
