//! Crash safety: `settle run` killed with SIGKILL at random moments, many
//! times, never leaves a partial run behind and never damages the state it
//! started from.
//!
//! After each kill, `--out` either does not exist or holds a complete run:
//! `settle verify` accepts it and its files are byte-identical to those of an
//! uninterrupted run on the same inputs (the engine is deterministic). The
//! folder that holds `--out` contains nothing but published runs and staging
//! folders (`.<name>.settle-tmp-<pid>`), and a run started again into the same
//! `--out` succeeds despite any staging folder a killed run left behind. The
//! second test does the same with `--state-in`, and checks after every kill
//! that the earlier run it reads from is byte-identical to before and still
//! verifies.
//!
//! Most kills come at a moment drawn evenly from 0 to 1.3 times a typical
//! run, so that some land before the run has done anything and some after it
//! has finished. Since the output files are written in a small part of a
//! run, a third of the kills are aimed at that part instead: the harness
//! waits for the first file to appear at the top of the staging folder and
//! kills within the time the writes and the rename take.
//!
//! Both tests are slow (minutes) and ignored by default. Run them in release,
//! with the default of 100 kills or another number:
//!
//! ```text
//! cargo test --release --test crash -- --ignored --nocapture
//! SETTLE_KILLS=500 cargo test --release --test crash -- --ignored --nocapture sigkill_at_random
//! ```
//!
//! `SETTLE_CRASH_SEED` changes the kill moments (the seed is printed, so a
//! series can be replayed, up to the timing of the machine), and
//! `SETTLE_CRASH_ROWS` the size of the data set (500,000 rows by default).

#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_settle");

/// The signal number of SIGKILL, which `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;

/// Kills per test unless `SETTLE_KILLS` says otherwise.
const DEFAULT_KILLS: u64 = 100;

/// How often the harness looks at the folders of a running run.
const POLL: Duration = Duration::from_millis(1);

/// The tests take turns: run side by side they would share the cores, and
/// the run time measured by one would not be the run time the other sees.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A number from the environment, or `default` when the variable is unset.
fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={text:?} is not a whole number: {e}")),
        Err(_) => default,
    }
}

/// The middle of some durations; `times` must not be empty.
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// When a kill comes.
#[derive(Clone, Copy)]
enum Aim {
    /// This long after the run was started.
    Clock(Duration),
    /// This long after the first file appeared at the top of the run's
    /// staging folder (or `--out` appeared, or the run ended, whichever
    /// came first).
    Writes(Duration),
}

impl std::fmt::Display for Aim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Aim::Clock(delay) => write!(f, "at {:.3} s", delay.as_secs_f64()),
            Aim::Writes(delay) => write!(f, "{:.4} s into the writes", delay.as_secs_f64()),
        }
    }
}

/// SplitMix64: a small, seeded and therefore repeatable source of kill
/// moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration in `0..limit` (zero when `limit` is under a microsecond).
    fn below(&mut self, limit: Duration) -> Duration {
        let micros = limit.as_micros() as u64;
        Duration::from_micros(if micros == 0 { 0 } else { self.next() % micros })
    }

    /// The next kill: one in ten within the first 10 ms (start-up, before
    /// anything is written), one in three within 1.5 times `writes` of the
    /// first output file, and the rest spread evenly over 1.3 times
    /// `typical`, so that about a quarter of those land after the run has
    /// finished.
    fn aim(&mut self, typical: Duration, writes: Duration) -> Aim {
        match self.next() % 30 {
            0..3 => Aim::Clock(self.below(Duration::from_millis(10))),
            3..13 => Aim::Writes(self.below(writes * 3 / 2)),
            _ => Aim::Clock(self.below(typical * 13 / 10)),
        }
    }
}

/// Runs `settle` to completion and returns what it printed.
fn settle(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}; stdout: {}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// `settle verify dir`: `Ok` when it exits 0, else its exit status and what
/// it said.
fn verify(dir: &Path) -> Result<(), String> {
    let output = settle(&["verify", path_str(dir)]);
    if output.status.success() {
        Ok(())
    } else {
        Err(describe(&output))
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Generates the data set into `dir`: settle.toml, merchants.csv and
/// transactions.csv.
fn generate(dir: &Path) {
    let rows = env_number("SETTLE_CRASH_ROWS", 500_000).to_string();
    let started = Instant::now();
    let output = settle(&[
        "gen",
        "--merchants",
        "20000",
        "--rows",
        &rows,
        "--days",
        "30",
        "--seed",
        "7",
        "--out",
        path_str(dir),
    ]);
    assert!(
        output.status.success(),
        "settle gen failed: {}",
        describe(&output)
    );
    eprintln!(
        "crash: generated {rows} rows in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

/// One entry of a folder tree: a folder, or a file with all its bytes.
#[derive(PartialEq, Eq)]
enum Node {
    Folder,
    File(Vec<u8>),
    Other,
}

/// Every entry under `root`, by path relative to it, with the bytes of every
/// file: two snapshots are equal exactly when the trees are.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Node>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                into.insert(relative, Node::Folder);
                walk(root, &path, into);
            } else if kind.is_file() {
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                into.insert(relative, Node::File(bytes));
            } else {
                into.insert(relative, Node::Other);
            }
        }
    }
    let mut tree = BTreeMap::new();
    walk(root, root, &mut tree);
    tree
}

/// The first difference between two snapshots, in words, or `None` when
/// they are equal.
fn difference(want: &BTreeMap<PathBuf, Node>, got: &BTreeMap<PathBuf, Node>) -> Option<String> {
    for (path, node) in want {
        match got.get(path) {
            None => return Some(format!("{} is missing", path.display())),
            Some(other) if other != node => {
                return Some(format!("{} differs", path.display()));
            }
            Some(_) => {}
        }
    }
    got.keys()
        .find(|path| !want.contains_key(*path))
        .map(|path| format!("{} is new", path.display()))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number from [`days_from_civil`], as YYYY-MM-DD.
fn civil_from_days(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn parse_date(text: &str) -> i64 {
    let parts: Vec<i64> = text
        .split('-')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("not a date: {text:?}")))
        .collect();
    assert_eq!(parts.len(), 3, "not a date: {text:?}");
    days_from_civil(parts[0], parts[1], parts[2])
}

/// The `run` section's `start` and `horizon` of a published run.
fn period(run: &Path) -> (String, String) {
    let text = std::fs::read_to_string(run.join("control.json")).unwrap();
    let control: serde_json::Value = serde_json::from_str(&text).unwrap();
    let date = |key: &str| {
        control["run"][key]
            .as_str()
            .unwrap_or_else(|| panic!("control.json has no run.{key}"))
            .to_string()
    };
    (date("start"), date("horizon"))
}

/// What a killed run left before publishing: judged by its own staging
/// folder after the kill.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Left {
    /// No staging folder.
    Nothing,
    /// A staging folder without any file at its top (state files, if any,
    /// sit in a folder below it).
    Staging,
    /// A staging folder with output files in it.
    StagingWithFiles,
}

/// What happened to one run that was sent SIGKILL.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Killed before `--out` appeared.
    BeforePublish(Left),
    /// Killed after `--out` appeared, before the process ended.
    AfterPublish,
    /// The run had already ended, successfully, when the kill came.
    FinishedFirst,
}

impl std::fmt::Display for Fate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fate::BeforePublish(Left::Nothing) => "before publish, no staging folder",
            Fate::BeforePublish(Left::Staging) => "before publish, staging folder without files",
            Fate::BeforePublish(Left::StagingWithFiles) => {
                "before publish, staging folder with files"
            }
            Fate::AfterPublish => "after publish",
            Fate::FinishedFirst => "after the run had finished",
        })
    }
}

/// The figures of one test.
#[derive(Default)]
struct Tally {
    kills: usize,
    before_publish: [usize; 3],
    after_publish: usize,
    finished_first: usize,
    /// Staging folders left by killed runs, and how many of them the next
    /// run into the same `--out` removed.
    leftovers: usize,
    leftovers_removed: usize,
    verified: usize,
}

impl Tally {
    fn count(&mut self, fate: Fate) {
        self.kills += 1;
        match fate {
            Fate::BeforePublish(left) => self.before_publish[left as usize] += 1,
            Fate::AfterPublish => self.after_publish += 1,
            Fate::FinishedFirst => self.finished_first += 1,
        }
    }
}

/// The name of the staging folder of the run with process id `pid` that
/// publishes `out`.
fn staging_path(out: &Path, pid: u32) -> PathBuf {
    let name = out.file_name().unwrap().to_string_lossy();
    out.with_file_name(format!(".{name}.settle-tmp-{pid}"))
}

/// `.<name>.settle-tmp-<pid>`: the name of a staging folder.
fn is_staging_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".settle-tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `dir` holds a regular file at its top.
fn holds_a_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_file()))
    })
}

/// Waits, looking every [`POLL`], until the run has begun writing its
/// output files into `staging`, has published `out`, or has ended, or until
/// `limit` has passed.
fn wait_for_writes(child: &mut Child, staging: &Path, out: &Path, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit
        && !holds_a_file(staging)
        && !out.exists()
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(POLL);
    }
}

/// The runs of one test: the same arguments each time, into `runs/out-<i>`.
struct Harness {
    /// The folder that holds every `--out` and nothing else.
    runs: PathBuf,
    /// The arguments after `run`, without `--out`.
    args: Vec<String>,
    /// An uninterrupted run with these arguments, which every complete run
    /// must equal byte for byte.
    reference: BTreeMap<PathBuf, Node>,
    /// The durations of the latest uninterrupted runs, and of their writes:
    /// the kill moments follow their medians, so that they keep up with a
    /// machine whose load changes.
    took: Vec<Duration>,
    writes: Vec<Duration>,
}

impl Harness {
    /// Runs `args` three times without interruption, checks that the runs
    /// verify and agree, and keeps the first as the reference.
    fn new(runs: PathBuf, args: Vec<String>) -> Harness {
        std::fs::create_dir_all(&runs).unwrap();
        let mut harness = Harness {
            runs,
            args,
            reference: BTreeMap::new(),
            took: Vec::new(),
            writes: Vec::new(),
        };
        for i in 0..3 {
            let out = harness.runs.join(format!("reference-{i}"));
            let watched = harness.watched_run(&out);
            assert!(
                watched.status.success(),
                "an uninterrupted `settle run {}` failed: {}",
                harness.args.join(" "),
                describe(&watched)
            );
            if let Err(problem) = verify(&out) {
                panic!("an uninterrupted run does not verify: {problem}");
            }
            let tree = snapshot(&out);
            if i == 0 {
                harness.reference = tree;
            } else if let Some(diff) = difference(&harness.reference, &tree) {
                panic!("two uninterrupted runs differ ({diff}); the engine must be deterministic");
            }
            std::fs::remove_dir_all(&out).unwrap();
        }
        harness
    }

    /// The median time of the latest uninterrupted runs.
    fn typical(&self) -> Duration {
        median(&self.took[self.took.len().saturating_sub(7)..])
    }

    /// The median time the latest uninterrupted runs spent between their
    /// first output file and publishing, at least a millisecond.
    fn typical_writes(&self) -> Duration {
        median(&self.writes[self.writes.len().saturating_sub(7)..]).max(Duration::from_millis(1))
    }

    fn command(&self, out: &Path) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .args(&self.args)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs into `out` without interruption and returns what it printed.
    /// When it succeeds, its length and the time from its first output file
    /// to `out` appearing join those the kill moments are drawn from.
    fn watched_run(&mut self, out: &Path) -> Output {
        let started = Instant::now();
        let mut child = self.command(out).spawn().unwrap();
        let staging = staging_path(out, child.id());
        let (mut first_file, mut published) = (None, None);
        while child.try_wait().unwrap().is_none() {
            if published.is_none() && out.exists() {
                published = Some(started.elapsed());
            }
            if first_file.is_none() && (published.is_some() || holds_a_file(&staging)) {
                first_file = Some(published.unwrap_or_else(|| started.elapsed()));
            }
            std::thread::sleep(POLL);
        }
        let took = started.elapsed();
        let output = child.wait_with_output().unwrap();
        let published = published.unwrap_or(took);
        let writes = published.saturating_sub(first_file.unwrap_or(published));
        if output.status.success() {
            self.took.push(took);
            self.writes.push(writes);
        }
        output
    }

    /// Checks that `out` is a complete run: `settle verify` accepts it and
    /// it equals the reference.
    fn assert_complete(&self, out: &Path, what: &str) {
        assert!(out.is_dir(), "{what}: {} is not a folder", out.display());
        if let Err(problem) = verify(out) {
            panic!("{what}: settle verify rejects {}: {problem}", out.display());
        }
        if let Some(diff) = difference(&self.reference, &snapshot(out)) {
            panic!(
                "{what}: {} verifies but is not the complete run: {diff}",
                out.display()
            );
        }
    }

    /// The staging folders in `runs`. Panics on anything else except `out`:
    /// a regular file, a link, or a folder with another name would be a
    /// half-written or misplaced output.
    fn staging_folders(&self, out: &Path, what: &str) -> Vec<PathBuf> {
        let out_name = out.file_name().unwrap().to_str().unwrap();
        let mut staging = Vec::new();
        for entry in std::fs::read_dir(&self.runs).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if name == out_name {
                assert!(kind.is_dir(), "{what}: {out_name} is not a folder");
            } else if is_staging_name(&name) {
                assert!(
                    kind.is_dir(),
                    "{what}: staging entry {name} is not a folder"
                );
                staging.push(entry.path());
            } else {
                panic!(
                    "{what}: unexpected {name:?} beside --out (a {}); only published runs \
                     and staging folders may appear there",
                    if kind.is_dir() { "folder" } else { "file" }
                );
            }
        }
        staging
    }

    /// Starts a run into `runs/out-<i>`, kills it as `aim` says, checks what
    /// it left, and, when it left no run, runs again into the same `--out`
    /// beside whatever staging folder the killed run left.
    fn kill_once(&mut self, i: usize, aim: Aim, tally: &mut Tally) -> Fate {
        let out = self.runs.join(format!("out-{i}"));
        let what = format!("kill {i} ({aim})");
        let mut child = self.command(&out).stdout(Stdio::null()).spawn().unwrap();
        let own_staging = staging_path(&out, child.id());
        match aim {
            Aim::Clock(delay) => std::thread::sleep(delay),
            Aim::Writes(delay) => {
                let limit = self.typical() * 10 + Duration::from_secs(10);
                wait_for_writes(&mut child, &own_staging, &out, limit);
                std::thread::sleep(delay);
            }
        }
        // Killing a child that has already ended is not an error.
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let killed = output.status.signal() == Some(SIGKILL);
        assert!(
            killed || output.status.success(),
            "{what}: the run failed on its own: {}",
            describe(&output)
        );

        let published = out.exists();
        let staging = self.staging_folders(&out, &what);
        let fate = match (published, killed) {
            (false, true) if !own_staging.exists() => Fate::BeforePublish(Left::Nothing),
            (false, true) if holds_a_file(&own_staging) => {
                Fate::BeforePublish(Left::StagingWithFiles)
            }
            (false, true) => Fate::BeforePublish(Left::Staging),
            (false, false) => panic!("{what}: the run exited 0 but {} is missing", out.display()),
            (true, true) => Fate::AfterPublish,
            (true, false) => Fate::FinishedFirst,
        };
        if published {
            self.assert_complete(&out, &what);
            tally.verified += 1;
            assert!(
                staging.is_empty(),
                "{what}: the run was published but staging folders remain: {staging:?}"
            );
        } else {
            // The leftover staging folder must neither stop a new run nor
            // be taken for one.
            let watched = self.watched_run(&out);
            assert!(
                watched.status.success(),
                "{what}: the run after the kill failed (leftover staging folders: {staging:?}): {}",
                describe(&watched)
            );
            self.assert_complete(&out, &format!("{what}, run again"));
            tally.verified += 1;
            tally.leftovers += staging.len();
            tally.leftovers_removed += staging.iter().filter(|f| !f.exists()).count();
            let after = self.staging_folders(&out, &format!("{what}, run again"));
            assert!(
                after.iter().all(|f| staging.contains(f)),
                "{what}: the run after the kill left a staging folder of its own: {after:?}"
            );
        }
        // Clean up, so that a long series does not fill the disk.
        std::fs::remove_dir_all(&out).unwrap();
        for folder in staging.iter().filter(|f| f.exists()) {
            std::fs::remove_dir_all(folder).unwrap();
        }
        tally.count(fate);
        fate
    }

    /// Kills `SETTLE_KILLS` runs at moments drawn from the seeded generator.
    /// `after_each` runs after each kill's own checks.
    fn kill_many(&mut self, test: &str, mut after_each: impl FnMut(usize)) {
        let kills = env_number("SETTLE_KILLS", DEFAULT_KILLS) as usize;
        let seed = env_number("SETTLE_CRASH_SEED", 20_261_101);
        let mut rng = Rng(seed);
        let mut tally = Tally::default();
        let started = Instant::now();
        let (first_typical, first_writes) = (self.typical(), self.typical_writes());
        eprintln!(
            "crash: {test}: {kills} kills, seed {seed}; an uninterrupted run takes {:.2} s, \
             {:.4} s of it from the first output file to publishing",
            first_typical.as_secs_f64(),
            first_writes.as_secs_f64()
        );
        for i in 0..kills {
            let aim = rng.aim(self.typical(), self.typical_writes());
            let fate = self.kill_once(i, aim, &mut tally);
            after_each(i);
            eprintln!("crash: kill {i} ({aim}): {fate}");
        }
        let [nothing, staging, files] = tally.before_publish;
        eprintln!(
            "crash: {test}: {kills} kills in {:.1} s (seed {seed}; a run took {:.2} s at first, \
             {:.2} s at the end): {} killed before publish ({nothing} before a staging folder \
             existed, {staging} with a staging folder but no output file, {files} while output \
             files were being written), {} after publish ({} of them after the run had \
             finished); the next run removed {} of {} staging folders left behind; {} runs \
             verified",
            started.elapsed().as_secs_f64(),
            first_typical.as_secs_f64(),
            self.typical().as_secs_f64(),
            nothing + staging + files,
            tally.after_publish + tally.finished_first,
            tally.finished_first,
            tally.leftovers_removed,
            tally.leftovers,
            tally.verified,
        );
        assert_eq!(tally.kills, kills);
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
#[ignore = "slow: run with cargo test --release --test crash -- --ignored"]
fn sigkill_at_random_moments_never_leaves_a_partial_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    generate(&data);
    let inputs = snapshot(&data);
    let mut harness = Harness::new(
        root.path().join("runs"),
        strings(&[
            "--config",
            path_str(&data.join("settle.toml")),
            "--merchants",
            path_str(&data.join("merchants.csv")),
            "--transactions",
            path_str(&data.join("transactions.csv")),
        ]),
    );
    harness.kill_many(
        "sigkill_at_random_moments_never_leaves_a_partial_run",
        |_| {},
    );
    if let Some(diff) = difference(&inputs, &snapshot(&data)) {
        panic!("the inputs changed: {diff}");
    }
}

/// Copies the rows of `source` (a transactions file whose third column is
/// the timestamp) into `early` when their date is at most `through`, else
/// into `late`; both get the header.
fn split_by_date(source: &Path, through: &str, early: &Path, late: &Path) {
    let text = std::fs::read_to_string(source).unwrap();
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    let mut first = format!("{header}\n");
    let mut second = first.clone();
    for line in lines {
        let date = line.split(',').nth(2).unwrap_or("");
        let into = if date.get(..10).unwrap_or(date) <= through {
            &mut first
        } else {
            &mut second
        };
        into.push_str(line);
        into.push('\n');
    }
    std::fs::write(early, first).unwrap();
    std::fs::write(late, second).unwrap();
}

#[test]
#[ignore = "slow: run with cargo test --release --test crash -- --ignored"]
fn sigkill_never_damages_the_state_a_run_starts_from() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let help = settle(&["run", "--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--state-in"),
        "this settle binary has no `run --state-in` yet (`settle run --help` does not list \
         it), so this test cannot run"
    );

    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    generate(&data);
    let config = data.join("settle.toml");
    let merchants = data.join("merchants.csv");
    let transactions = data.join("transactions.csv");

    // The period of the data, from an uninterrupted run over all of it; the
    // first run covers its first third.
    let whole = root.path().join("whole");
    let output = settle(&[
        "run",
        "--config",
        path_str(&config),
        "--merchants",
        path_str(&merchants),
        "--transactions",
        path_str(&transactions),
        "--out",
        path_str(&whole),
    ]);
    assert!(
        output.status.success(),
        "a run over all the data failed: {}",
        describe(&output)
    );
    let (start, horizon) = period(&whole);
    std::fs::remove_dir_all(&whole).unwrap();
    let (first_day, last_day) = (parse_date(&start), parse_date(&horizon));
    let through = civil_from_days(first_day + (last_day - first_day) / 3);
    let early = data.join("transactions-early.csv");
    let late = data.join("transactions-late.csv");
    split_by_date(&transactions, &through, &early, &late);

    let first = root.path().join("first");
    let output = settle(&[
        "run",
        "--config",
        path_str(&config),
        "--merchants",
        path_str(&merchants),
        "--transactions",
        path_str(&early),
        "--through",
        &through,
        "--out",
        path_str(&first),
    ]);
    assert!(
        output.status.success(),
        "the first run (through {through}) failed: {}",
        describe(&output)
    );
    if let Err(problem) = verify(&first) {
        panic!("the first run does not verify: {problem}");
    }
    assert!(
        first.join("state").is_dir(),
        "the first run published no state/ folder"
    );
    let state = snapshot(&first);
    eprintln!(
        "crash: the first run covers {start} to {through} of {horizon} and holds {} entries",
        state.len()
    );

    let mut harness = Harness::new(
        root.path().join("runs"),
        strings(&[
            "--config",
            path_str(&config),
            "--merchants",
            path_str(&merchants),
            "--transactions",
            path_str(&late),
            "--state-in",
            path_str(&first),
        ]),
    );
    harness.kill_many("sigkill_never_damages_the_state_a_run_starts_from", |i| {
        if let Some(diff) = difference(&state, &snapshot(&first)) {
            panic!("kill {i}: the run that --state-in reads from changed: {diff}");
        }
        if let Err(problem) = verify(&first) {
            panic!("kill {i}: the run that --state-in reads from no longer verifies: {problem}");
        }
    });
}
