//! Inputs for replays: compressed transaction files (`.csv.gz`,
//! `.csv.zst`), many files and folders given to `--transactions`, runs
//! published without their end state (`--no-state`), and the quiet of a run
//! whose stderr is not a terminal. Every test runs the binary.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use common::{Json, exec, exec_str, list_dir, parse_csv, read_tree, sha256_hex};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// With a content checksum, as the `zstd` command writes it.
fn zstd(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .unwrap()
}

/// A folder with the bundled configuration, master data and adjustments,
/// and the given transaction files.
fn fixtures_folder(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["settle.toml", "merchants.csv", "adjustments.csv"] {
        std::fs::write(dir.path().join(name), fixture(name)).unwrap();
    }
    for (name, bytes) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

/// `settle run` in `dir` on its settle.toml and merchants.csv; returns the
/// exit code and stderr.
fn run(dir: &Path, transactions: &[&str], out: &str, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<String> = [
        "run",
        "--config",
        "settle.toml",
        "--merchants",
        "merchants.csv",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push("--transactions".into());
    args.extend(transactions.iter().map(|t| t.to_string()));
    args.extend(["--out".to_string(), out.to_string()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let (code, _, stderr) = exec(dir, &args, None);
    (code, stderr)
}

#[track_caller]
fn run_ok(
    dir: &Path,
    transactions: &[&str],
    out: &str,
    extra: &[&str],
) -> BTreeMap<String, Vec<u8>> {
    let (code, stderr) = run(dir, transactions, out, extra);
    assert_eq!(code, 0, "settle run {transactions:?} {extra:?}: {stderr}");
    read_tree(&dir.join(out))
}

/// Asserts that two published folders hold the same files with the same
/// bytes, but for the files named in `except`.
#[track_caller]
fn assert_same_outputs(
    want: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
    except: &[&str],
) {
    let names = |files: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        files
            .keys()
            .filter(|k| !except.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(names(want), names(got), "the same files");
    for name in names(want) {
        assert!(want[&name] == got[&name], "{name} differs");
    }
}

/// The transaction entries of a published control.json.
fn inputs(files: &BTreeMap<String, Vec<u8>>) -> Vec<Json> {
    let control = Json::parse(std::str::from_utf8(&files["control.json"]).unwrap());
    control.at("inputs.transactions").arr().to_vec()
}

/// rejects.csv's rows with the file column left out.
fn rejects_without_file(files: &BTreeMap<String, Vec<u8>>) -> Vec<Vec<String>> {
    parse_csv(std::str::from_utf8(&files["rejects.csv"]).unwrap())
        .into_iter()
        .map(|row| row[1..].to_vec())
        .collect()
}

#[test]
fn compressed_fixtures_give_the_same_outputs_as_plain_ones() {
    let week1 = fixture("transactions-week1.csv");
    let week2 = fixture("transactions-week2.csv");
    let (week1_zst, week2_gz) = (zstd(&week1), gzip(&week2));
    let dir = fixtures_folder(&[
        ("w1.csv", week1.clone()),
        ("w2.csv", week2.clone()),
        ("w1.csv.zst", week1_zst.clone()),
        ("w2.csv.gz", week2_gz.clone()),
    ]);
    let extra = ["--adjustments", "adjustments.csv", "--detail"];
    let plain = run_ok(dir.path(), &["w1.csv", "w2.csv"], "plain", &extra);
    let packed = run_ok(dir.path(), &["w1.csv.zst", "w2.csv.gz"], "packed", &extra);
    // Settlement, journal, fee, adjustment and state files: the same bytes.
    assert!(packed.contains_key("state/manifest"), "{:?}", packed.keys());
    assert!(packed.keys().any(|k| k.starts_with("journal-")));
    assert!(packed.keys().any(|k| k.starts_with("fees-")));
    assert_same_outputs(&plain, &packed, &["control.json", "rejects.csv"]);
    // rejects.csv names each file as given, with the same lines.
    let rejects = parse_csv(std::str::from_utf8(&packed["rejects.csv"]).unwrap());
    let files: std::collections::BTreeSet<&str> =
        rejects[1..].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(
        files.into_iter().collect::<Vec<_>>(),
        ["adjustments.csv", "w1.csv.zst", "w2.csv.gz"]
    );
    let renamed = std::str::from_utf8(&packed["rejects.csv"])
        .unwrap()
        .replace("w1.csv.zst,", "w1.csv,")
        .replace("w2.csv.gz,", "w2.csv,");
    assert_eq!(renamed.as_bytes(), plain["rejects.csv"].as_slice());
    // control.json: `sha256` is the CSV's digest, as for the plain file,
    // and a compressed file also has its format and its stored digest.
    let (plain_inputs, packed_inputs) = (inputs(&plain), inputs(&packed));
    for (k, (csv, stored, format)) in [(&week1, &week1_zst, "zstd"), (&week2, &week2_gz, "gzip")]
        .into_iter()
        .enumerate()
    {
        let entry = &packed_inputs[k];
        assert_eq!(entry.at("sha256").str(), sha256_hex(csv));
        assert_eq!(entry.at("sha256").str(), plain_inputs[k].at("sha256").str());
        assert_eq!(entry.at("compression").str(), format);
        assert_eq!(entry.at("file_sha256").str(), sha256_hex(stored));
        assert_eq!(
            entry.at("rows_read").num(),
            plain_inputs[k].at("rows_read").num()
        );
        assert!(plain_inputs[k].get("compression").is_none());
        assert!(plain_inputs[k].get("file_sha256").is_none());
    }
    let (code, _, err) = exec_str(dir.path(), &["verify", "packed"]);
    assert_eq!(code, 0, "{err}");
}

/// Generated data (`settle gen`) in `dir/data`; returns its transactions.
fn generate(dir: &Path, rows: u64) -> Vec<u8> {
    let rows = rows.to_string();
    let (code, _, err) = exec_str(
        dir,
        &[
            "gen",
            "--merchants",
            "400",
            "--rows",
            &rows,
            "--days",
            "6",
            "--seed",
            "11",
            "--out",
            "data",
        ],
    );
    assert_eq!(code, 0, "{err}");
    for name in ["settle.toml", "merchants.csv"] {
        std::fs::copy(dir.join("data").join(name), dir.join(name)).unwrap();
    }
    std::fs::read(dir.join("data/transactions.csv")).unwrap()
}

/// `csv` cut into `parts` files of whole lines, each with the header.
fn split(csv: &[u8], parts: usize) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(csv).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let per_part = lines.len().div_ceil(parts);
    (0..parts)
        .map(|k| {
            let mut part = format!("{header}\n");
            for line in lines.iter().skip(k * per_part).take(per_part) {
                part.push_str(line);
                part.push('\n');
            }
            part.into_bytes()
        })
        .collect()
}

#[test]
fn three_hundred_compressed_files_and_their_folder_equal_one_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(dir.path(), 30_000);
    std::fs::write(dir.path().join("all.csv"), &csv).unwrap();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    let mut names = Vec::new();
    for (k, part) in split(&csv, 300).into_iter().enumerate() {
        // Mostly zstd, some gzip and some plain, as a history of daily
        // files might be.
        let (name, stored) = match k % 5 {
            0 => (format!("parts/day-{k:03}.csv.gz"), gzip(&part)),
            1 => (format!("parts/day-{k:03}.csv"), part),
            _ => (format!("parts/day-{k:03}.csv.zst"), zstd(&part)),
        };
        std::fs::write(dir.path().join(&name), stored).unwrap();
        names.push(name);
    }
    // Not transaction files: left out of the folder's list.
    std::fs::write(dir.path().join("parts/README.txt"), b"daily files\n").unwrap();
    std::fs::write(dir.path().join("parts/.day-999.csv"), b"hidden\n").unwrap();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let one = run_ok(dir.path(), &["all.csv"], "one", &[]);
    // One reader and one worker, then three of each and blocks of 16 kB:
    // rows and arenas from many streams at once are put back in order.
    let listed = run_ok(dir.path(), &names, "listed", &["--threads", "1"]);
    let small_blocks = ["--threads", "3", "--chunk-bytes", "16384"];
    let listed3 = run_ok(dir.path(), &names, "listed3", &small_blocks);
    let folder = run_ok(dir.path(), &["parts"], "folder", &small_blocks);

    assert!(one["state/manifest"].len() > 100);
    let split_differs = ["control.json", "rejects.csv"];
    assert_same_outputs(&one, &listed, &split_differs);
    assert_eq!(
        rejects_without_file(&one).len(),
        rejects_without_file(&listed).len()
    );
    // The same files in the same order, listed or as a folder: every
    // output, control.json included, is the same.
    assert_same_outputs(&listed, &listed3, &[]);
    assert_same_outputs(&listed, &folder, &[]);
    let entries = inputs(&folder);
    assert_eq!(entries.len(), 300);
    for (entry, name) in entries.iter().zip(&names) {
        assert_eq!(entry.at("path").str(), *name);
    }
    let rows: i64 = entries.iter().map(|e| e.at("rows_read").num()).sum();
    assert_eq!(rows, inputs(&one)[0].at("rows_read").num());
    assert_eq!(rows, 30_000);
}

#[test]
fn streams_between_mapped_files_keep_file_order() {
    // plain, zstd, stdin, gzip, plain: rows from streams and from mapped
    // files meet in file order.
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(dir.path(), 6_000);
    std::fs::write(dir.path().join("all.csv"), &csv).unwrap();
    let parts = split(&csv, 5);
    std::fs::write(dir.path().join("p0.csv"), &parts[0]).unwrap();
    std::fs::write(dir.path().join("p1.csv.zst"), zstd(&parts[1])).unwrap();
    std::fs::write(dir.path().join("p3.csv.gz"), gzip(&parts[3])).unwrap();
    std::fs::write(dir.path().join("p4.csv"), &parts[4]).unwrap();
    let one = run_ok(dir.path(), &["all.csv"], "one", &["--detail"]);
    let mut args: Vec<String> = [
        "run",
        "--config",
        "settle.toml",
        "--merchants",
        "merchants.csv",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(
        [
            "--transactions",
            "p0.csv",
            "p1.csv.zst",
            "-",
            "p3.csv.gz",
            "p4.csv",
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    args.extend(["--out", "mixed", "--detail", "--chunk-bytes", "8192"].map(String::from));
    let (code, _, err) = exec(dir.path(), &args, Some(&parts[2]));
    assert_eq!(code, 0, "{err}");
    let mixed = read_tree(&dir.path().join("mixed"));
    assert_same_outputs(&one, &mixed, &["control.json", "rejects.csv"]);
    let entries = inputs(&mixed);
    assert_eq!(entries[2].at("path").str(), "-");
    assert_eq!(entries[2].at("sha256").str(), sha256_hex(&parts[2]));
    assert!(entries[2].get("compression").is_none());
}

#[test]
fn no_state_publishes_everything_but_the_state_and_cannot_be_started_from() {
    let dir = fixtures_folder(&[("w1.csv", fixture("transactions-week1.csv"))]);
    let with_state = run_ok(dir.path(), &["w1.csv"], "full", &[]);
    let without = run_ok(dir.path(), &["w1.csv"], "what-if", &["--no-state"]);
    assert!(with_state.keys().any(|k| k.starts_with("state/")));
    assert!(
        !without.keys().any(|k| k.starts_with("state/")),
        "{:?}",
        without.keys()
    );
    assert!(!dir.path().join("what-if/state").exists());
    // Every other file is the same; control.json differs only by the
    // state's files and `"state": false`.
    let state_files: Vec<&str> = with_state
        .keys()
        .filter(|k| k.starts_with("state/"))
        .map(String::as_str)
        .collect();
    let mut except = vec!["control.json"];
    except.extend(&state_files);
    assert_same_outputs(&with_state, &without, &except);
    let full = Json::parse(std::str::from_utf8(&with_state["control.json"]).unwrap());
    let what_if = Json::parse(std::str::from_utf8(&without["control.json"]).unwrap());
    assert!(
        full.at("run").get("state").is_none(),
        "a default run keeps its bytes"
    );
    assert!(matches!(what_if.at("run.state"), Json::Bool(false)));
    assert!(full.at("outputs").get("state/manifest").is_some());
    assert!(what_if.at("outputs").get("state/manifest").is_none());
    assert_eq!(
        what_if.at("totals.payouts").str(),
        full.at("totals.payouts").str()
    );

    // verify accepts it, and a statement can be made from it.
    let (code, _, err) = exec_str(dir.path(), &["verify", "what-if"]);
    assert_eq!(code, 0, "{err}");
    let settlement = without
        .keys()
        .find(|k| k.starts_with("settlement-"))
        .unwrap();
    let rows = parse_csv(std::str::from_utf8(&without[settlement]).unwrap());
    let merchant = rows[1][1].clone();
    let (code, _, err) = exec_str(
        dir.path(),
        &[
            "statement",
            "what-if",
            "--merchant",
            &merchant,
            "--out",
            "m.csv",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("m.csv").is_file());

    // --state-in refuses it with a sentence that says why.
    std::fs::write(dir.path().join("w2.csv"), fixture("transactions-week2.csv")).unwrap();
    let (code, err) = run(dir.path(), &["w2.csv"], "next", &["--state-in", "what-if"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "settle: error: what-if: this run was published with --no-state and has no end state to start from\n"
    );
    assert!(!dir.path().join("next").exists());
    // The full run's state still starts the next one, and a what-if may
    // start from it too, leaving no state of its own.
    let next = run_ok(dir.path(), &["w2.csv"], "next", &["--state-in", "full"]);
    let what_if_next = run_ok(
        dir.path(),
        &["w2.csv"],
        "what-if-next",
        &["--state-in", "full", "--no-state"],
    );
    assert!(!what_if_next.keys().any(|k| k.starts_with("state/")));
    let mut except = vec!["control.json".to_string()];
    except.extend(next.keys().filter(|k| k.starts_with("state/")).cloned());
    let except: Vec<&str> = except.iter().map(String::as_str).collect();
    assert_same_outputs(&next, &what_if_next, &except);
}

#[test]
fn a_corrupt_or_truncated_compressed_file_stops_the_run_unpublished() {
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(dir.path(), 40_000);
    let good = zstd(&csv);
    std::fs::write(dir.path().join("good.csv"), &csv).unwrap();
    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    for byte in &mut damaged[middle..middle + 64] {
        *byte ^= 0xa5;
    }
    let gz = gzip(&csv);
    for (name, stored) in [
        ("cut.csv.zst", good[..good.len() * 2 / 3].to_vec()),
        ("damaged.csv.zst", damaged),
        ("cut.csv.gz", gz[..gz.len() * 2 / 3].to_vec()),
    ] {
        std::fs::write(dir.path().join(name), stored).unwrap();
        // Another file first, so that the run is well under way.
        let (code, err) = run(dir.path(), &["good.csv", name], "out", &[]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.starts_with(&format!("settle: error: {name}: its "))
                && err.contains("data is corrupt or truncated after")
                && err.ends_with("the run stops and publishes nothing\n")
                && err.lines().count() == 1,
            "{name}: {err}"
        );
        assert!(
            !dir.path().join("out").exists(),
            "{name}: nothing published"
        );
        let leftovers: Vec<String> = list_dir(dir.path())
            .into_iter()
            .filter(|n| n.contains("settle-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
}

#[test]
fn a_compressed_name_over_other_bytes_is_refused_at_open() {
    let dir = fixtures_folder(&[
        ("w1.csv", fixture("transactions-week1.csv")),
        ("plain.csv.zst", fixture("transactions-week1.csv")),
        ("gzip.csv.zst", gzip(&fixture("transactions-week1.csv"))),
    ]);
    for (name, starts) in [("plain.csv.zst", "74 78 6e 5f"), ("gzip.csv.zst", "1f 8b")] {
        let (code, err) = run(dir.path(), &["w1.csv", name], "out", &[]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!("{name}: is named .zst but is not zstd data")),
            "{err}"
        );
        assert!(err.contains(starts), "{err}");
        assert!(!dir.path().join("out").exists());
    }
}

#[test]
fn an_empty_folder_is_a_usage_error() {
    let dir = fixtures_folder(&[("empty/notes.txt", b"no data\n".to_vec())]);
    let (code, err) = run(dir.path(), &["empty"], "out", &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "settle: error: empty: the folder holds no *.csv, *.csv.gz or *.csv.zst file\n"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_run_whose_stderr_is_not_a_terminal_prints_only_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(dir.path(), 20_000);
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    for (k, part) in split(&csv, 20).into_iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("parts/{k:02}.csv.zst")),
            zstd(&part),
        )
        .unwrap();
    }
    let (code, stderr) = run(dir.path(), &["parts"], "out", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.starts_with("settle: published out (20000 rows read, "),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, no progress: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}

#[test]
fn run_help_tells_of_compressed_files_folders_no_state_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (code, help, err) = exec_str(dir.path(), &["run", "--help"]);
    assert_eq!(code, 0, "{err}");
    for words in [
        ".gz (gzip)",
        ".zst (zstd)",
        "A folder stands for",
        "--no-state",
        "progress line",
    ] {
        assert!(
            help.contains(words),
            "settle run --help does not mention {words:?}:\n{help}"
        );
    }
}
