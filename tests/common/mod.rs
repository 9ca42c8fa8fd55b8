//! Test harness: build a case in a temporary folder from inline strings, run
//! `settle run` on it, and read back what it published.
//!
//! Everything here is independent of the engine's own code: the CSV reader,
//! the JSON reader and SHA-256 below are small, separate implementations so
//! that a bug in the engine cannot hide itself in the tests.

#![allow(dead_code)]

pub mod nats;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_settle");

pub const SETTLEMENT_HEADER: &str = "settlement_date,merchant_id,txn_count,purchases,refunds,fees,adjustments,carried_in,proceeds,deposit_held,deposit_released,deposit_forfeited,deactivation_fee,payout,carried_out";
pub const REJECTS_HEADER: &str = "file,line,txn_id,reason,detail";
pub const DETAIL_HEADER: &str = "txn_id,merchant_id,terminal_id,type,business_date,settlement_date,amount,category,rate,fee,status";

/// The 13 columns after `settlement_date,merchant_id`, in file order. Used by
/// [`Run::assert_row`], whose expected string lists them in this order.
pub const ROW_COLUMNS: [&str; 13] = [
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
    "carried_out",
];

pub const TXN_HEADER: &str = "txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc";
pub const MERCHANT_HEADER: &str = "merchant_id,mcc,activated_on,deposit,deactivated_on";
pub const ADJ_HEADER: &str = "adj_id,merchant_id,settlement_date,amount,reason";

/// The categories most tests use.
///
/// - public_welfare: 8062, 8211, 8398, 9211..=9399 at 0 / 0
/// - dining: 5812..=5814 at 0.0049 / 0.0049, no caps
/// - lodging: 7011 at 0.0038 / 0.0049, debit cap 20.00, credit cap 30.00
/// - travel: 4511 at 0.0038 / 0.0049, debit cap 20.00 only
/// - general (default): 0.0038 debit / 0.0049 credit, no caps
pub const BASE_CATEGORIES: &str = r#"
[[category]]
name = "public_welfare"
mcc = ["8062", "8211", "8398", "9211-9399"]
debit_rate = "0"
credit_rate = "0"

[[category]]
name = "dining"
mcc = ["5812-5814"]
debit_rate = "0.0049"
credit_rate = "0.0049"

[[category]]
name = "lodging"
mcc = ["7011"]
debit_rate = "0.0038"
credit_rate = "0.0049"
debit_cap = "20.00"
credit_cap = "30.00"

[[category]]
name = "travel"
mcc = ["4511"]
debit_rate = "0.0038"
credit_rate = "0.0049"
debit_cap = "20.00"

[[category]]
name = "general"
default = true
debit_rate = "0.0038"
credit_rate = "0.0049"
"#;

/// A configuration, every setting written out. Override with struct update
/// syntax: `Cfg { lag: 2, ..Cfg::base() }`.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub timezone: &'static str,
    pub lag: u32,
    pub rounding: &'static str,
    pub max_rate: &'static str,
    pub max_txn_amount: &'static str,
    pub refund_fee: &'static str,
    pub retention_days: u32,
    pub refund_volume: &'static str,
    pub refund_window_days: u32,
    pub deactivation_fee: &'static str,
    pub return_window_days: u32,
    pub categories: &'static str,
}

impl Cfg {
    /// The RULES.md defaults, with [`BASE_CATEGORIES`].
    pub fn base() -> Cfg {
        Cfg {
            timezone: "+08:00",
            lag: 1,
            rounding: "half_up",
            max_rate: "0.0049",
            max_txn_amount: "50000.00",
            refund_fee: "kept",
            retention_days: 180,
            refund_volume: "30000.00",
            refund_window_days: 90,
            deactivation_fee: "199.00",
            return_window_days: 30,
            categories: BASE_CATEGORIES,
        }
    }

    /// Small deposit numbers for the deposit tests: 1000.00 of net volume
    /// within 5 days.
    pub fn deposit_small() -> Cfg {
        Cfg {
            refund_volume: "1000.00",
            refund_window_days: 5,
            ..Cfg::base()
        }
    }

    pub fn toml(&self) -> String {
        format!(
            "timezone = \"{}\"\nsettlement_lag_days = {}\nrounding = \"{}\"\nmax_rate = \"{}\"\n\
             max_txn_amount = \"{}\"\nrefund_fee = \"{}\"\nrefund_retention_days = {}\n\n\
             [deposit]\nrefund_volume = \"{}\"\nrefund_window_days = {}\n\n\
             [deactivation]\nfee = \"{}\"\nreturn_window_days = {}\n{}",
            self.timezone,
            self.lag,
            self.rounding,
            self.max_rate,
            self.max_txn_amount,
            self.refund_fee,
            self.retention_days,
            self.refund_volume,
            self.refund_window_days,
            self.deactivation_fee,
            self.return_window_days,
            self.categories
        )
    }
}

/// `merchants.csv` from rows (header added).
pub fn merchants(rows: &[&str]) -> String {
    with_header(MERCHANT_HEADER, rows)
}

/// A transactions file from rows (header [`TXN_HEADER`] added).
pub fn txns(rows: &[&str]) -> String {
    with_header(TXN_HEADER, rows)
}

/// An adjustments file from rows (header [`ADJ_HEADER`] added).
pub fn adjs(rows: &[&str]) -> String {
    with_header(ADJ_HEADER, rows)
}

pub fn with_header(header: &str, rows: &[&str]) -> String {
    let mut s = String::from(header);
    s.push('\n');
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// One run's inputs. Files are written into a fresh temporary folder, and
/// the engine runs with that folder as its working directory and relative
/// paths, so `rejects.csv` names files exactly as given here.
#[derive(Clone)]
pub struct Case {
    pub config: Vec<u8>,
    pub merchants: Vec<u8>,
    /// (file name, contents), passed to `--transactions` in this order.
    pub transactions: Vec<(String, Vec<u8>)>,
    pub adjustments: Option<Vec<u8>>,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    /// The `--out` argument, relative to the case folder ("out" unless set).
    pub out: String,
}

impl Case {
    pub fn new(cfg: &Cfg, merchant_rows: &[&str], txn_rows: &[&str]) -> Case {
        Case::raw(cfg.toml(), merchants(merchant_rows), txns(txn_rows))
    }

    pub fn raw(
        config: impl Into<Vec<u8>>,
        merchants: impl Into<Vec<u8>>,
        transactions: impl Into<Vec<u8>>,
    ) -> Case {
        Case {
            config: config.into(),
            merchants: merchants.into(),
            transactions: vec![("transactions.csv".to_string(), transactions.into())],
            adjustments: None,
            args: Vec::new(),
            stdin: None,
            out: "out".to_string(),
        }
    }

    /// Replace the transaction files by these (name, contents).
    pub fn txn_files(mut self, files: &[(&str, &[u8])]) -> Case {
        self.transactions = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_vec()))
            .collect();
        self
    }

    pub fn adjustments(mut self, rows: &[&str]) -> Case {
        self.adjustments = Some(adjs(rows).into_bytes());
        self
    }

    pub fn adjustments_raw(mut self, bytes: impl Into<Vec<u8>>) -> Case {
        self.adjustments = Some(bytes.into());
        self
    }

    pub fn out(mut self, out: &str) -> Case {
        self.out = out.to_string();
        self
    }

    pub fn arg(mut self, a: &str) -> Case {
        self.args.push(a.to_string());
        self
    }

    pub fn args(mut self, a: &[&str]) -> Case {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }

    /// Write the inputs into a fresh temporary folder.
    pub fn write(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("settle.toml"), &self.config).unwrap();
        std::fs::write(dir.path().join("merchants.csv"), &self.merchants).unwrap();
        for (name, contents) in &self.transactions {
            if name != "-" {
                std::fs::write(dir.path().join(name), contents).unwrap();
            }
        }
        if let Some(a) = &self.adjustments {
            std::fs::write(dir.path().join("adjustments.csv"), a).unwrap();
        }
        dir
    }

    /// The arguments of `settle run` for this case, `--out out` included.
    pub fn command_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--config".into(), "settle.toml".into()];
        a.push("--merchants".into());
        a.push("merchants.csv".into());
        a.push("--transactions".into());
        for (name, _) in &self.transactions {
            a.push(name.clone());
        }
        if self.adjustments.is_some() {
            a.push("--adjustments".into());
            a.push("adjustments.csv".into());
        }
        a.push("--out".into());
        a.push(self.out.clone());
        a.extend(self.args.iter().cloned());
        a
    }

    /// Run `settle run` in a fresh folder.
    pub fn run(&self) -> Run {
        self.run_in(self.write())
    }

    /// Run `settle run` in a folder made by [`Case::write`] (and perhaps
    /// prepared further by the test).
    pub fn run_in(&self, dir: tempfile::TempDir) -> Run {
        let args = self.command_args();
        let stdin = self.stdin.clone().or_else(|| {
            self.transactions
                .iter()
                .find(|(n, _)| n == "-")
                .map(|(_, c)| c.clone())
        });
        let (code, stdout, stderr) = exec(dir.path(), &args, stdin.as_deref());
        let out = dir.path().join(&self.out);
        let files = if out.is_dir() {
            read_tree(&out)
        } else {
            BTreeMap::new()
        };
        Run {
            code,
            stdout,
            stderr,
            out_exists: out.exists(),
            files,
            dir,
        }
    }
}

/// Run the binary in `cwd` with `args`; feed `stdin` if given (else an empty
/// stdin). Returns (exit code, stdout, stderr); a signal gives code -1.
pub fn exec(cwd: &Path, args: &[String], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn settle");
    {
        let mut sin = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            let bytes = bytes.to_vec();
            // Write from a thread so a large stdin cannot deadlock.
            std::thread::spawn(move || {
                let _ = sin.write_all(&bytes);
            });
        }
    }
    let out = child.wait_with_output().expect("wait settle");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn exec_str(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    exec(cwd, &args, None)
}

/// Every regular file under `root`, keyed by its path relative to `root`
/// (`/` separated).
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.is_file() {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The names directly inside a folder, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What one run did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub out_exists: bool,
    /// Output files, path relative to `--out` → contents.
    pub files: BTreeMap<String, Vec<u8>>,
    pub dir: tempfile::TempDir,
}

impl Run {
    /// Assert exit code 0 (showing stderr when not).
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected exit 0; stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn text(&self, name: &str) -> String {
        let bytes = self.files.get(name).unwrap_or_else(|| {
            panic!(
                "no output file {name}; files: {:?}",
                self.files.keys().collect::<Vec<_>>()
            )
        });
        String::from_utf8(bytes.clone()).unwrap_or_else(|_| panic!("{name} is not UTF-8"))
    }

    /// `settlement-*.csv` file names, sorted.
    pub fn settlement_files(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|k| k.starts_with("settlement-") && k.ends_with(".csv") && !k.contains('/'))
            .cloned()
            .collect()
    }

    /// The dates of the settlement files, sorted.
    pub fn settlement_dates(&self) -> Vec<String> {
        self.settlement_files()
            .iter()
            .map(|f| f["settlement-".len()..f.len() - 4].to_string())
            .collect()
    }

    /// The rows of one settlement file as maps column → value (header checked).
    #[track_caller]
    pub fn settlement(&self, date: &str) -> Vec<BTreeMap<String, String>> {
        let name = format!("settlement-{date}.csv");
        let text = self.text(&name);
        assert!(text.ends_with('\n'), "{name} must end with LF");
        assert!(!text.contains('\r'), "{name} must use LF line ends only");
        let rows = parse_csv(&text);
        assert_eq!(rows[0].join(","), SETTLEMENT_HEADER, "{name} header");
        rows[1..]
            .iter()
            .map(|r| {
                assert_eq!(r.len(), 15, "{name}: row {r:?}");
                assert_eq!(r[0], date, "{name}: settlement_date column");
                SETTLEMENT_HEADER
                    .split(',')
                    .map(String::from)
                    .zip(r.iter().cloned())
                    .collect()
            })
            .collect()
    }

    /// The merchants with a row in one settlement file, in file order.
    #[track_caller]
    pub fn merchants_on(&self, date: &str) -> Vec<String> {
        self.settlement(date)
            .iter()
            .map(|r| r["merchant_id"].clone())
            .collect()
    }

    /// One settlement row as a map column → value, if present.
    #[track_caller]
    pub fn try_row(&self, date: &str, merchant: &str) -> Option<BTreeMap<String, String>> {
        if !self.files.contains_key(&format!("settlement-{date}.csv")) {
            return None;
        }
        let mut found: Vec<_> = self
            .settlement(date)
            .into_iter()
            .filter(|r| r["merchant_id"] == merchant)
            .collect();
        assert!(found.len() <= 1, "two rows for {merchant} on {date}");
        found.pop()
    }

    /// One settlement row as a map column → value.
    #[track_caller]
    pub fn row(&self, date: &str, merchant: &str) -> BTreeMap<String, String> {
        self.try_row(date, merchant).unwrap_or_else(|| {
            panic!(
                "no row for {merchant} on {date}; settlement files: {:?}; stderr: {}",
                self.settlement_files(),
                self.stderr
            )
        })
    }

    /// Assert a whole row. `expected` lists the 13 values of
    /// [`ROW_COLUMNS`], whitespace separated:
    /// txn_count purchases refunds fees adjustments carried_in proceeds
    /// deposit_held deposit_released deposit_forfeited deactivation_fee payout carried_out
    #[track_caller]
    pub fn assert_row(&self, date: &str, merchant: &str, expected: &str) {
        let want: Vec<&str> = expected.split_whitespace().collect();
        assert_eq!(
            want.len(),
            13,
            "assert_row needs 13 values, got {expected:?}"
        );
        let row = self.row(date, merchant);
        let got: Vec<&str> = ROW_COLUMNS.iter().map(|c| row[*c].as_str()).collect();
        if got != want {
            let mut msg = format!("settlement {date} merchant {merchant}:\n");
            for (i, c) in ROW_COLUMNS.iter().enumerate() {
                let mark = if got[i] == want[i] { "  " } else { "!!" };
                msg.push_str(&format!(
                    "{mark} {c:<18} expected {:>12}  engine {:>12}\n",
                    want[i], got[i]
                ));
            }
            panic!("{msg}");
        }
    }

    /// Assert some columns of a row.
    #[track_caller]
    pub fn assert_cols(&self, date: &str, merchant: &str, cols: &[(&str, &str)]) {
        let row = self.row(date, merchant);
        for (c, v) in cols {
            assert_eq!(
                row.get(*c).map(String::as_str),
                Some(*v),
                "settlement {date} merchant {merchant} column {c}"
            );
        }
    }

    /// All rows of `rejects.csv` (header checked), each as its 5 fields.
    #[track_caller]
    pub fn rejects_full(&self) -> Vec<Vec<String>> {
        let text = self.text("rejects.csv");
        assert!(text.ends_with('\n'), "rejects.csv must end with LF");
        let rows = parse_csv(&text);
        assert_eq!(rows[0].join(","), REJECTS_HEADER, "rejects.csv header");
        for r in &rows[1..] {
            assert_eq!(r.len(), 5, "rejects.csv row {r:?}");
            assert!(
                !r[4].trim().is_empty(),
                "rejects.csv row without a detail sentence: {r:?}"
            );
        }
        rows[1..].to_vec()
    }

    /// `rejects.csv` as (line, txn_id, reason), in file order.
    #[track_caller]
    pub fn rejects(&self) -> Vec<(u64, String, String)> {
        self.rejects_full()
            .into_iter()
            .map(|r| {
                (
                    r[1].parse::<u64>()
                        .unwrap_or_else(|_| panic!("line {:?} is not a number", r[1])),
                    r[2].clone(),
                    r[3].clone(),
                )
            })
            .collect()
    }

    /// `rejects.csv` as (file, line, txn_id, reason), in file order.
    #[track_caller]
    pub fn rejects_with_file(&self) -> Vec<(String, u64, String, String)> {
        self.rejects_full()
            .into_iter()
            .map(|r| {
                (
                    r[0].clone(),
                    r[1].parse::<u64>().unwrap(),
                    r[2].clone(),
                    r[3].clone(),
                )
            })
            .collect()
    }

    #[track_caller]
    pub fn control(&self) -> Json {
        Json::parse(&self.text("control.json"))
    }

    /// A total of control.json (`totals.NAME`), as its string.
    #[track_caller]
    pub fn total(&self, name: &str) -> String {
        self.control()
            .at(&format!("totals.{name}"))
            .str()
            .to_string()
    }
}

/// Expected rejects from a compact list.
pub fn rj(list: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    list.iter()
        .map(|(l, t, r)| (*l, t.to_string(), r.to_string()))
        .collect()
}

/// A list of names as owned strings.
pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// An RFC 4180 reader for the engine's outputs (LF or CR LF line ends,
/// quoted fields may hold commas, quotes and line ends). A trailing line
/// end does not make an empty record.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    let mut it = text.chars().peekable();
    let mut dirty = false; // something read since the last record end
    while let Some(c) = it.next() {
        if in_quotes {
            if c == '"' {
                if it.peek() == Some(&'"') {
                    it.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
                dirty = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                quoted = false;
                dirty = true;
            }
            '\r' | '\n' => {
                if c == '\r' && it.peek() == Some(&'\n') {
                    it.next();
                }
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                quoted = false;
                dirty = false;
            }
            _ => {
                field.push(c);
                dirty = true;
            }
        }
    }
    if dirty || !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Write one CSV record with RFC 4180 minimal quoting, LF ended.
pub fn csv_line(fields: &[String]) -> String {
    let f: Vec<String> = fields
        .iter()
        .map(|s| {
            if s.contains(',') || s.contains('"') || s.contains('\n') || s.contains('\r') {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.clone()
            }
        })
        .collect();
    format!("{}\n", f.join(","))
}

/// True when `n` appears in `text` as a whole number (a maximal run of
/// digits equal to it).
pub fn mentions_number(text: &str, n: u64) -> bool {
    let want = n.to_string();
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run == want)
}

// ---------------------------------------------------------------------------
// The posting journal (docs/JOURNAL.md), read back independently.

pub const JOURNAL_HEADER: &str =
    "settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail";

/// An amount text (`-12.30`, `0.00`) in fen, read independently of the
/// engine, without floating point. Panics on anything but exactly two
/// decimals, and on `-0.00`.
pub fn fen(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits
        .split_once('.')
        .unwrap_or_else(|| panic!("amount {text:?} has no fraction"));
    assert_eq!(frac.len(), 2, "amount {text:?}");
    assert!(
        whole.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit()),
        "amount {text:?}"
    );
    let value = whole.parse::<i64>().expect("whole part") * 100 + frac.parse::<i64>().expect("fen");
    assert!(!(negative && value == 0), "-0.00 written: {text:?}");
    if negative { -value } else { value }
}

/// One merchant's postings in one journal file, summed.
#[derive(Default)]
struct Posted {
    /// Settlement column (and `txn_count`) → the postings' figure for it.
    columns: BTreeMap<&'static str, i64>,
    /// Σ amount over every posting but the memo `deposit_forfeit`.
    balance: i64,
    /// The `seq` column, in file order.
    seqs: Vec<u64>,
}

/// Checks every settlement file of `files` against its journal, recomputing
/// each row's columns from its postings (docs/JOURNAL.md, "What the journal
/// proves"). Returns the number of rows and postings checked.
pub fn check_journals_against_rows(files: &BTreeMap<String, Vec<u8>>) -> (usize, usize) {
    let columns = ROW_COLUMNS;
    let (mut rows_checked, mut postings_checked) = (0, 0);
    for (name, bytes) in files {
        let Some(date) = name
            .strip_prefix("settlement-")
            .and_then(|rest| rest.strip_suffix(".csv"))
        else {
            continue;
        };
        let journal_name = format!("journal-{date}.csv");
        let journal = files
            .get(&journal_name)
            .unwrap_or_else(|| panic!("{name} has no {journal_name}"));
        let settlement = parse_csv(std::str::from_utf8(bytes).unwrap());
        assert_eq!(settlement[0].join(","), SETTLEMENT_HEADER);
        let postings = parse_csv(std::str::from_utf8(journal).unwrap());
        assert_eq!(postings[0].join(","), JOURNAL_HEADER);
        let mut sums: BTreeMap<String, Posted> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for p in &postings[1..] {
            assert_eq!(p.len(), 12, "{journal_name}: {p:?}");
            assert_eq!(p[0], date, "{journal_name}: settlement_date of {p:?}");
            let merchant = p[1].clone();
            if order.last() != Some(&merchant) {
                assert!(
                    !order.contains(&merchant),
                    "{journal_name}: {merchant}'s postings are not together"
                );
                order.push(merchant.clone());
            }
            let Posted {
                columns: cols,
                balance,
                seqs,
            } = sums.entry(merchant).or_default();
            seqs.push(p[2].parse().expect("seq"));
            let amount = fen(&p[4]);
            let count: i64 = if p[9].is_empty() {
                0
            } else {
                p[9].parse().expect("count")
            };
            // (column, sign that turns the amount into the column's figure)
            let (column, sign) = match p[3].as_str() {
                "carried_in" => ("carried_in", 1),
                "purchase" => ("purchases", 1),
                "fee" | "fee_returned" => ("fees", -1),
                "void" => ("", 0),
                "refund" => ("refunds", -1),
                "adjustment" => ("adjustments", 1),
                "deposit_hold" => ("deposit_held", -1),
                "deposit_release" | "deposit_release_final" => ("deposit_released", 1),
                "deposit_forfeit" => ("deposit_forfeited", 1),
                "deactivation_fee" | "deactivation_fee_waived" => ("deactivation_fee", -1),
                "payout" => ("payout", -1),
                "carried_out" => ("carried_out", -1),
                other => panic!("{journal_name}: unknown kind {other:?}"),
            };
            if !column.is_empty() {
                *cols.entry(column).or_default() += sign * amount;
            }
            if matches!(p[3].as_str(), "purchase" | "void" | "refund") {
                *cols.entry("txn_count").or_default() += count;
            } else if !matches!(p[3].as_str(), "fee" | "fee_returned") {
                assert!(p[9].is_empty(), "{journal_name}: count on {p:?}");
            }
            if p[3] == "void" {
                assert_eq!(amount, 0, "{journal_name}: {p:?}");
            }
            if p[3] == "deposit_forfeit" {
                assert!(amount >= 0, "{journal_name}: {p:?}");
            } else {
                *balance += amount;
            }
            postings_checked += 1;
        }
        // The rows, in the journal's merchant order.
        let mut row_order = Vec::new();
        for row in &settlement[1..] {
            assert_eq!(row.len(), 15, "{name}: {row:?}");
            let merchant = row[1].clone();
            row_order.push(merchant.clone());
            let Posted {
                columns: cols,
                balance,
                seqs,
            } = sums
                .remove(&merchant)
                .unwrap_or_else(|| panic!("{journal_name}: no postings for {merchant}"));
            assert_eq!(
                balance, 0,
                "{journal_name} {merchant}: the postings do not balance"
            );
            let want: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, want, "{journal_name} {merchant}: seq");
            for (k, column) in columns.iter().enumerate() {
                let in_row = if *column == "txn_count" {
                    row[2].parse::<i64>().expect("txn_count")
                } else {
                    fen(&row[2 + k])
                };
                let posted = if *column == "proceeds" {
                    cols.get("purchases").copied().unwrap_or(0)
                        - cols.get("refunds").copied().unwrap_or(0)
                        - cols.get("fees").copied().unwrap_or(0)
                        + cols.get("adjustments").copied().unwrap_or(0)
                        + cols.get("carried_in").copied().unwrap_or(0)
                } else {
                    cols.get(column).copied().unwrap_or(0)
                };
                assert_eq!(
                    posted, in_row,
                    "{journal_name} {merchant}: {column}: postings {posted}, row {in_row}"
                );
            }
            rows_checked += 1;
        }
        assert!(
            sums.is_empty(),
            "{journal_name}: postings without a row: {:?}",
            sums.keys()
        );
        assert_eq!(order, row_order, "{journal_name}: merchant order");
    }
    (rows_checked, postings_checked)
}

// ---------------------------------------------------------------------------
// A small JSON reader.

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    #[track_caller]
    pub fn parse(text: &str) -> Json {
        let b = text.as_bytes();
        let mut i = 0;
        let v = parse_value(b, &mut i);
        skip_ws(b, &mut i);
        assert_eq!(i, b.len(), "trailing characters after JSON value");
        v
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follow a dot-separated path of object keys and array indexes.
    #[track_caller]
    pub fn at(&self, path: &str) -> &Json {
        let mut cur = self;
        for part in path.split('.') {
            cur = match (cur, part.parse::<usize>()) {
                (Json::Arr(a), Ok(i)) => a
                    .get(i)
                    .unwrap_or_else(|| panic!("JSON path {path}: no index {i}")),
                _ => cur
                    .get(part)
                    .unwrap_or_else(|| panic!("JSON path {path}: no key {part} in {cur:?}")),
            };
        }
        cur
    }

    #[track_caller]
    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a JSON string, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn num(&self) -> i64 {
        match self {
            Json::Num(s) => s.parse().unwrap_or_else(|_| panic!("not an integer: {s}")),
            other => panic!("expected a JSON number, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("expected a JSON array, got {other:?}"),
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
        *i += 1;
    }
}

fn parse_value(b: &[u8], i: &mut usize) -> Json {
    skip_ws(b, i);
    assert!(*i < b.len(), "unexpected end of JSON");
    match b[*i] {
        b'{' => {
            *i += 1;
            let mut kv = Vec::new();
            skip_ws(b, i);
            if b[*i] == b'}' {
                *i += 1;
                return Json::Obj(kv);
            }
            loop {
                skip_ws(b, i);
                let k = match parse_value(b, i) {
                    Json::Str(s) => s,
                    other => panic!("JSON object key must be a string, got {other:?}"),
                };
                skip_ws(b, i);
                assert_eq!(b[*i], b':', "expected ':' in JSON object");
                *i += 1;
                let v = parse_value(b, i);
                kv.push((k, v));
                skip_ws(b, i);
                match b[*i] {
                    b',' => *i += 1,
                    b'}' => {
                        *i += 1;
                        return Json::Obj(kv);
                    }
                    c => panic!("unexpected {:?} in JSON object", c as char),
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut a = Vec::new();
            skip_ws(b, i);
            if b[*i] == b']' {
                *i += 1;
                return Json::Arr(a);
            }
            loop {
                a.push(parse_value(b, i));
                skip_ws(b, i);
                match b[*i] {
                    b',' => *i += 1,
                    b']' => {
                        *i += 1;
                        return Json::Arr(a);
                    }
                    c => panic!("unexpected {:?} in JSON array", c as char),
                }
            }
        }
        b'"' => {
            *i += 1;
            let mut s = Vec::new();
            loop {
                let c = b[*i];
                *i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let e = b[*i];
                        *i += 1;
                        match e {
                            b'"' => s.push(b'"'),
                            b'\\' => s.push(b'\\'),
                            b'/' => s.push(b'/'),
                            b'b' => s.push(8),
                            b'f' => s.push(12),
                            b'n' => s.push(b'\n'),
                            b'r' => s.push(b'\r'),
                            b't' => s.push(b'\t'),
                            b'u' => {
                                let hex = std::str::from_utf8(&b[*i..*i + 4]).unwrap();
                                *i += 4;
                                let mut cp = u32::from_str_radix(hex, 16).unwrap();
                                if (0xD800..0xDC00).contains(&cp)
                                    && b[*i] == b'\\'
                                    && b[*i + 1] == b'u'
                                {
                                    let lo = u32::from_str_radix(
                                        std::str::from_utf8(&b[*i + 2..*i + 6]).unwrap(),
                                        16,
                                    )
                                    .unwrap();
                                    *i += 6;
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                                let mut buf = [0u8; 4];
                                s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            c => panic!("bad JSON escape \\{}", c as char),
                        }
                    }
                    c => s.push(c),
                }
            }
            Json::Str(String::from_utf8(s).expect("JSON string is UTF-8"))
        }
        b't' if b[*i..].starts_with(b"true") => {
            *i += 4;
            Json::Bool(true)
        }
        b'f' if b[*i..].starts_with(b"false") => {
            *i += 5;
            Json::Bool(false)
        }
        b'n' if b[*i..].starts_with(b"null") => {
            *i += 4;
            Json::Null
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            assert!(*i > start, "unexpected {:?} in JSON", b[start] as char);
            Json::Num(String::from_utf8(b[start..*i].to_vec()).unwrap())
        }
    }
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), to check the input digests in control.json.

pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for t in 0..16 {
            w[t] = u32::from_be_bytes([
                chunk[4 * t],
                chunk[4 * t + 1],
                chunk[4 * t + 2],
                chunk[4 * t + 3],
            ]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for t in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

// ---------------------------------------------------------------------------
// Harness self-checks (they run with every test binary that includes this).

#[test]
fn harness_sha256_known_vectors() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

#[test]
fn harness_csv_and_json_readers() {
    let rows = parse_csv("a,b\n\"x,1\",\"say \"\"hi\"\"\nthere\"\n,\n");
    assert_eq!(
        rows,
        vec![
            vec!["a", "b"],
            vec!["x,1", "say \"hi\"\nthere"],
            vec!["", ""]
        ]
    );
    let j = Json::parse(r#"{"a": {"b": ["x", 2, null, true]}, "c": "\u00e9\n"}"#);
    assert_eq!(j.at("a.b.0").str(), "x");
    assert_eq!(j.at("a.b.1").num(), 2);
    assert_eq!(j.at("c").str(), "é\n");
    assert!(!mentions_number("lines 3, 15 and 2026-11-05", 5));
    assert!(mentions_number("lines 3, 15 and 2026-11-05", 15));
}

/// The Chromium binary on PATH, if any (the page tests skip without one).
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Screenshots `html` at `width`×`height` into `png` with headless
/// Chromium (a fresh profile, no background network), within 120 s, and
/// returns the PNG's bytes.
pub fn screenshot(browser: &Path, html: &Path, png: &Path, width: u32, height: u32) -> Vec<u8> {
    let _ = std::fs::remove_file(png);
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
            &format!("file://{}", html.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took more than 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let bytes = std::fs::read(png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    bytes
}
