//! Stream mode over a real `nats-server` (tests/common/nats.rs starts one
//! per test; without `nats-server` installed every test here passes with a
//! SKIPPED line). What is checked is the transport's promise: every row of
//! the input reaches exactly one worker, whatever is killed when, and a
//! message that is not one of ours becomes a reject instead of a stuck
//! consumer.
//!
//! A worker reports each closed day on stderr as `closed D: N rows, line
//! sum S, F foreign messages`; the rows of all partitions must add up to
//! the input's records, and their lines to the input's. Then `settle
//! merge` joins the partitions' folders, and the day must be the folder
//! `settle run --through DAY` writes over the same file, byte for byte,
//! whatever was killed on the way.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::BIN;
use common::nats::NatsServer;

const DAY: &str = "2026-11-01";

/// A generated day: settle.toml, merchants.csv and transactions.csv, with
/// rows added that the generator does not make (a txn_id reused by
/// another merchant, a row that is not a transaction).
struct Case {
    dir: tempfile::TempDir,
    /// Line number -> record text, for every record of the input.
    records: BTreeMap<u64, String>,
}

impl Case {
    fn new(rows: u64) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new(BIN)
            .args(["gen", "--merchants", "300", "--days", "1", "--seed", "7"])
            .args([
                "--bad-rows-ppm",
                "20000",
                "--rows",
                &rows.to_string(),
                "--out",
            ])
            .arg(&data)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let path = data.join("transactions.csv");
        let mut text = std::fs::read_to_string(&path).unwrap();
        let first: Vec<String> = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let other_merchant = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .find(|m| *m != first[1] && m.starts_with('M'))
            .unwrap();
        // The first row's id again, by another merchant: a duplicate that
        // crosses partitions (or not: the publisher judges it either way).
        text.push_str(&format!(
            "{},{other_merchant},{},purchase,1.00,debit,,,P0\n",
            first[0], first[2]
        ));
        // More ids reused across merchants, and refunds that name another
        // merchant's purchase: every 97th row's id again by the next row's
        // merchant, and a refund of every 101st row by the merchant after.
        let rows: Vec<Vec<String>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .filter(|f: &Vec<String>| f.len() == 9 && f[1].starts_with('M'))
            .collect();
        let mut extra = String::new();
        for (i, pair) in rows.windows(2).enumerate() {
            let (row, next) = (&pair[0], &pair[1]);
            if i % 97 == 0 && row[1] != next[1] {
                extra.push_str(&format!(
                    "{},{},{},purchase,2.00,credit,,,P1\n",
                    row[0], next[1], row[2]
                ));
            }
            if i % 101 == 0 && row[1] != next[1] && row[3] == "purchase" {
                extra.push_str(&format!(
                    "R{i},{},{},refund,1.00,,{},,P1\n",
                    next[1], row[2], row[0]
                ));
            }
        }
        text.push_str(&extra);
        text.push_str("this is not a transaction\n");
        text.push_str("X1,M00000001,2026-11-01T10:00:00+08:00,refund,1.00,,T0,,P0\n");
        std::fs::write(&path, &text).unwrap();
        let records = text
            .lines()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| (i as u64 + 1, l.to_string()))
            .collect();
        Case { dir, records }
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join("data").join(name)
    }

    fn input(&self) -> PathBuf {
        self.data("transactions.csv")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn publish(&self, server: &NatsServer, partitions: u32, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args([
                "publish",
                "--server",
                &server.url(),
                "--partitions",
                &partitions.to_string(),
            ])
            .arg("--config")
            .arg(self.data("settle.toml"))
            .arg(self.input())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Starts worker `k` of `p`; its stderr goes to work-k/stderr-N.
    fn worker(&self, server: &NatsServer, k: u32, p: u32) -> Child {
        let work = self.dir.path().join(format!("work-{k}"));
        std::fs::create_dir_all(&work).unwrap();
        let n = std::fs::read_dir(&work).unwrap().count();
        let log = std::fs::File::create(work.join(format!("stderr-{n}"))).unwrap();
        Command::new(BIN)
            .args(["worker", "--server", &server.url(), "--once", "--stats"])
            .args(["--partition", &k.to_string(), "--of", &p.to_string()])
            .arg("--work")
            .arg(&work)
            .arg("--out")
            .arg(self.out())
            .arg("--config")
            .arg(self.data("settle.toml"))
            .arg("--merchants")
            .arg(self.data("merchants.csv"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// The `closed` line of worker `k`: (rows, line sum, foreign).
    fn closed(&self, k: u32) -> (u64, u64, u64) {
        let work = self.dir.path().join(format!("work-{k}"));
        let mut found = None;
        for entry in std::fs::read_dir(&work).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("stderr-")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                if let Some(rest) = line.split_once(&format!("closed {DAY}: ")).map(|(_, r)| r) {
                    let numbers: Vec<u64> = rest
                        .split([' ', ','])
                        .filter_map(|w| w.parse().ok())
                        .collect();
                    found = Some((numbers[0], numbers[1], numbers[2]));
                }
            }
        }
        found.unwrap_or_else(|| panic!("worker {k} closed no day"))
    }

    /// Every record reached exactly one of the `p` partitions.
    fn assert_exactly_once(&self, p: u32) {
        let (mut rows, mut line_sum) = (0u64, 0u64);
        for k in 0..p {
            let (r, s, _) = self.closed(k);
            rows += r;
            line_sum = line_sum.wrapping_add(s);
        }
        let expected_sum = self.records.keys().fold(0u64, |s, l| s.wrapping_add(*l));
        assert_eq!(rows, self.records.len() as u64, "rows over all partitions");
        assert_eq!(line_sum, expected_sum, "sum of lines over all partitions");
        self.assert_equals_batch(p);
    }

    /// `settle merge` over the `p` partitions' folders equals `settle run
    /// --through DAY` over the input, file for file, byte for byte.
    fn assert_equals_batch(&self, p: u32) {
        let merged = self.dir.path().join("merged");
        let parts: Vec<PathBuf> = (0..p)
            .map(|k| self.out().join(DAY).join(format!("part-{k}-of-{p}")))
            .collect();
        let output = Command::new(BIN)
            .arg("merge")
            .args(&parts)
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let batch = self.dir.path().join("batch");
        let output = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(self.data("settle.toml"))
            .arg("--merchants")
            .arg(self.data("merchants.csv"))
            .arg("--transactions")
            .arg(self.input())
            .args(["--through", DAY, "--out"])
            .arg(&batch)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (a, b) = (common::read_tree(&batch), common::read_tree(&merged));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "P = {p}: the same files"
        );
        for (file, bytes) in &a {
            assert!(
                bytes == &b[file],
                "P = {p}: {file} differs from the batch run's"
            );
        }
    }
}

fn wait(child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
}

#[test]
fn two_workers_close_a_published_day_each_row_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(20_000);
    // One worker waits for the stream before it exists, the other starts
    // after the day is published.
    let mut first = case.worker(&server, 0, 2);
    let status = case
        .publish(&server, 2, &["--close", DAY])
        .status()
        .unwrap();
    assert!(status.success());
    let mut second = case.worker(&server, 1, 2);
    wait(&mut first, "worker 0");
    wait(&mut second, "worker 1");
    case.assert_exactly_once(2);
}

#[test]
fn a_worker_killed_mid_day_restarts_without_loss_or_double_count() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(12_000);
    let mut publisher = case
        .publish(&server, 2, &["--rate", "4000", "--close", DAY])
        .spawn()
        .unwrap();
    let mut victim = case.worker(&server, 0, 2);
    let mut other = case.worker(&server, 1, 2);
    for pause_ms in [400, 700, 900] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        kill9(&mut victim);
        victim = case.worker(&server, 0, 2);
    }
    wait(&mut publisher, "publisher");
    wait(&mut victim, "worker 0");
    wait(&mut other, "worker 1");
    case.assert_exactly_once(2);
}

#[test]
fn workers_resume_after_a_server_restart() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(6_000);
    let status = case.publish(&server, 2, &[]).status().unwrap();
    assert!(status.success());
    let mut workers = [case.worker(&server, 0, 2), case.worker(&server, 1, 2)];
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let status = Command::new(BIN)
        .args(["close", "--server", &server.url(), "--date", DAY])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for (k, worker) in workers.iter_mut().enumerate() {
        wait(worker, &format!("worker {k}"));
    }
    case.assert_exactly_once(2);
}

/// A client of the test's own, to publish what `settle publish` never
/// would and to read the stream back.
fn client<T>(
    server: &NatsServer,
    body: impl AsyncFnOnce(async_nats::jetstream::Context) -> T,
) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        body(async_nats::jetstream::new(client)).await
    })
}

#[test]
fn poison_messages_become_rejects_not_a_stuck_consumer() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(2_000);
    assert!(case.publish(&server, 1, &[]).status().unwrap().success());
    let sha = common::sha256_hex(&std::fs::read(case.input()).unwrap());
    client(&server, async |js| {
        let ack = js
            .publish("txn.0", "not CSV, no headers".into())
            .await
            .unwrap();
        ack.await.unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Settle-Kind", "bogus");
        let ack = js
            .publish_with_headers("txn.0", headers, "x".into())
            .await
            .unwrap();
        ack.await.unwrap();
        // A row of our file whose body is two lines, not one CSV record.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Settle-Kind", "row");
        headers.insert("Settle-File", "0");
        headers.insert("Settle-Line", "90000");
        headers.insert("Nats-Msg-Id", format!("{}.0.90000", &sha[..16]));
        let ack = js
            .publish_with_headers("txn.0", headers, "a,b\nc,d\n".into())
            .await
            .unwrap();
        ack.await.unwrap();
    });
    let status = Command::new(BIN)
        .args(["close", "--server", &server.url(), "--date", DAY])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut worker = case.worker(&server, 0, 1);
    wait(&mut worker, "worker 0");
    case.assert_exactly_once(1);
    assert_eq!(case.closed(0).2, 3, "three foreign messages");
    let rejects =
        std::fs::read_to_string(case.out().join(DAY).join("part-0-of-1.nats-rejects.csv")).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines[0], "file,line,txn_id,reason,detail");
    assert_eq!(lines.len(), 4, "{rejects}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("nats:txn.0,")),
        "{rejects}"
    );
}

#[test]
fn a_killed_publisher_restarted_stores_each_row_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(9_000);
    let mut publisher = case
        .publish(&server, 2, &["--rate", "3000"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    kill9(&mut publisher);
    let status = case
        .publish(&server, 2, &["--close", DAY])
        .status()
        .unwrap();
    assert!(status.success());
    let rows = case.records.len() as u64;
    let (heads, lines, closes) = client(&server, async |js| {
        let stream = js.get_stream("SETTLE").await.unwrap();
        let last = stream.cached_info().state.last_sequence;
        let (mut heads, mut lines, mut closes) = (0u64, Vec::new(), 0u64);
        for seq in 1..=last {
            let message = stream.get_raw_message(seq).await.unwrap();
            match message.headers.get("Settle-Kind").map(|v| v.as_str()) {
                Some("file") => heads += 1,
                Some("close") => closes += 1,
                Some("row") => lines.push(
                    message
                        .headers
                        .get("Settle-Line")
                        .unwrap()
                        .as_str()
                        .parse::<u64>()
                        .unwrap(),
                ),
                other => panic!("unexpected message kind {other:?}"),
            }
        }
        (heads, lines, closes)
    });
    assert_eq!((heads, closes), (2, 2));
    let unique: HashSet<u64> = lines.iter().copied().collect();
    assert_eq!(unique.len(), lines.len(), "a row stored twice");
    assert_eq!(lines.len() as u64, rows);
    assert!(case.records.keys().all(|l| unique.contains(l)));
}

/// The kill harness (issue 16): while a paced publisher runs, workers are
/// killed (SIGKILL) at pseudo-random moments and restarted, the server is
/// killed and restarted, and a publisher that fails or is killed is
/// restarted; every row must still reach exactly one worker. Slow, so
/// ignored; run it with
/// `SETTLE_KILLS=50 SETTLE_SERVER_RESTARTS=5 cargo test --test stream_nats kill_harness -- --ignored --nocapture`.
#[test]
#[ignore]
fn kill_harness() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let kills: u32 = std::env::var("SETTLE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let restarts: u32 = std::env::var("SETTLE_SERVER_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // SETTLE_HARD_RESTARTS=1 kills the server with SIGKILL instead of
    // stopping it: nats-server 2.9 may then lose messages it had acked
    // but not yet written, and a publisher that had finished cannot know.
    let hard = std::env::var_os("SETTLE_HARD_RESTARTS").is_some();
    let case = Case::new(60_000);
    let p = 2;
    let publish = |server: &NatsServer| {
        case.publish(server, p, &["--rate", "5000", "--close", DAY])
            .spawn()
            .unwrap()
    };
    let mut publisher = Some(publish(&server));
    let mut workers: Vec<Child> = (0..p).map(|k| case.worker(&server, k, p)).collect();
    let mut random = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let (mut killed, mut restarted, mut publisher_restarts) = (0u32, 0u32, 0u32);
    // Spread the faults over the publish (about 12 s at 5000 rows/s).
    let step = Duration::from_millis(10_000 / u64::from(kills + restarts).max(1));
    while killed < kills || restarted < restarts {
        std::thread::sleep(step + Duration::from_millis(next() % 50));
        if restarted < restarts && next() % u64::from(kills + restarts) < u64::from(restarts) {
            if hard {
                server.restart_hard();
            } else {
                server.restart();
            }
            restarted += 1;
        } else if killed < kills {
            let k = (next() % u64::from(p)) as usize;
            kill9(&mut workers[k]);
            workers[k] = case.worker(&server, k as u32, p);
            killed += 1;
        }
        // A publisher that lost the server exits 1; it resumes when run again.
        if let Some(status) = publisher.as_mut().and_then(|c| c.try_wait().unwrap()) {
            if status.success() {
                publisher = None;
            } else {
                publisher = Some(publish(&server));
                publisher_restarts += 1;
            }
        }
    }
    loop {
        let Some(mut child) = publisher.take() else {
            break;
        };
        let status = child.wait().unwrap();
        if !status.success() {
            publisher = Some(publish(&server));
            publisher_restarts += 1;
        }
    }
    for (k, worker) in workers.iter_mut().enumerate() {
        wait(worker, &format!("worker {k}"));
    }
    eprintln!(
        "kill harness: {killed} worker kills, {restarted} server restarts, {publisher_restarts} publisher restarts"
    );
    case.assert_exactly_once(p);
}

#[test]
fn a_worker_killed_during_its_close_redoes_it_on_restart() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let case = Case::new(3_000);
    assert!(
        case.publish(&server, 2, &["--close", DAY])
            .status()
            .unwrap()
            .success()
    );
    // Alone, worker 0 logs the close and waits for partition 1's fact.
    let mut alone = case.worker(&server, 0, 2);
    let log = case.dir.path().join("work-0").join("stderr-0");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("waiting for partition 1")
    {
        assert!(
            Instant::now() < deadline,
            "worker 0 never waited for partition 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill9(&mut alone);
    let mut again = case.worker(&server, 0, 2);
    let mut other = case.worker(&server, 1, 2);
    wait(&mut again, "worker 0");
    wait(&mut other, "worker 1");
    case.assert_exactly_once(2);
}

/// The whole way, for P = 1, 2 and 4, over a generated day of 200k rows
/// with ids reused across merchants, refunds of other merchants' purchases
/// and bad rows: publish, P workers close the day,
/// `settle merge` joins their folders, and the result equals `settle run
/// --through DAY` over the same file byte for byte.
#[test]
fn a_day_through_nats_merges_to_the_batch_run() {
    for p in [1u32, 2, 4] {
        let Some(server) = NatsServer::start() else {
            return;
        };
        let case = Case::new(200_000);
        let status = case
            .publish(&server, p, &["--close", DAY])
            .status()
            .unwrap();
        assert!(status.success());
        let mut workers: Vec<Child> = (0..p).map(|k| case.worker(&server, k, p)).collect();
        for (k, worker) in workers.iter_mut().enumerate() {
            wait(worker, &format!("worker {k} of {p}"));
        }
        case.assert_exactly_once(p);
    }
}
