//! The state format (issue 5, RULES.md 6): a corrupt, truncated, foreign or
//! missing state stops the next run with exit 2 and a message naming the
//! file, before anything is written; `settle verify` checks every state
//! file, the index segments included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn settle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_settle"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("settle runs")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `settle run` on the bundled fixtures' configuration and merchants.
fn settle_fixtures(transactions: &[&str], extra: &[&str], out: &Path) -> Output {
    let mut args = vec![
        "run",
        "--config",
        "fixtures/settle.toml",
        "--merchants",
        "fixtures/merchants.csv",
        "--transactions",
    ];
    args.extend(transactions);
    args.extend(extra);
    args.extend(["--out", text(out)]);
    settle(&args)
}

/// Settles the bundled fixtures through 2026-11-07 into `out`.
fn first_week(out: &Path) {
    let result = settle_fixtures(
        &[
            "fixtures/transactions-week1.csv",
            "fixtures/transactions-week2.csv",
        ],
        &["--through", "2026-11-07"],
        out,
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// The second week from `state`: (exit code, stderr, whether out exists).
fn second_week(state: &Path, out: &Path) -> (i32, String, bool) {
    let result = settle_fixtures(
        &["fixtures/transactions-week2.csv"],
        &["--state-in", text(state)],
        out,
    );
    (
        result.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&result.stderr).into_owned(),
        out.exists(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn segment_of(out: &Path) -> PathBuf {
    std::fs::read_dir(out.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment")
}

#[test]
fn a_damaged_state_stops_the_run_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("week1");
    first_week(&good);
    // The good state works.
    let (code, stderr, _) = second_week(&good, &dir.path().join("ok"));
    assert_eq!(code, 0, "{stderr}");

    type Damage = fn(&Path);
    let damages: [(&str, Damage, &str); 9] = [
        (
            "a flipped byte in the manifest",
            |out| flip(&out.join("state/manifest"), 200),
            "state/manifest: the state cannot be read: its SHA-256 does not match",
        ),
        (
            "a foreign manifest",
            |out| std::fs::write(out.join("state/manifest"), "{\"hello\": 1}\n").unwrap(),
            "not a settle state manifest",
        ),
        (
            "a later format version",
            |out| {
                let path = out.join("state/manifest");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(
                    &path,
                    text.replacen("settle-state 1 ", "settle-state 2 ", 1),
                )
                .unwrap();
            },
            "state format version \"2\"",
        ),
        (
            "a flipped byte in merchants.csv",
            |out| flip(&out.join("state/merchants.csv"), 120),
            "state/merchants.csv: the state cannot be read: its SHA-256 differs",
        ),
        (
            "a truncated segment",
            |out| {
                let path = segment_of(out);
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            },
            "where the manifest says",
        ),
        (
            "a flipped byte in a segment's hash column",
            // The hash column starts at the second 4096-byte block.
            |out| flip(&segment_of(out), 4096 + 9),
            "hash column checksum mismatch",
        ),
        (
            "a flipped byte in every block of records",
            // Layout 4: 257 entries put the records at the fifth 4096-byte
            // block, in checked blocks of 64; the header lists the bits of
            // each record field at bytes 52 to 62.
            |out| {
                let path = segment_of(out);
                let bytes = std::fs::read(&path).unwrap();
                let bits: u32 = bytes[52..63].iter().map(|&w| u32::from(w)).sum();
                let record_bytes = bits.div_ceil(8) as usize;
                for block in 0..257usize.div_ceil(64) {
                    flip(&path, 4 * 4096 + block * 64 * record_bytes);
                }
            },
            ".seg: the state's index segment is corrupt or not a settle segment (record block",
        ),
        (
            "a missing segment",
            |out| std::fs::remove_file(segment_of(out)).unwrap(),
            ".seg: the state cannot be read",
        ),
        (
            "no state folder at all",
            |out| std::fs::remove_dir_all(out.join("state")).unwrap(),
            "no settle state here",
        ),
    ];
    for (what, damage, message) in damages {
        let state = dir.path().join("damaged");
        let out = dir.path().join("out");
        let _ = std::fs::remove_dir_all(&state);
        copy_dir(&good, &state);
        damage(&state);
        let (code, stderr, out_exists) = second_week(&state, &out);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(stderr.contains(message), "{what}: {stderr}");
        assert!(!out_exists, "{what}: nothing is written");
    }
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_checks_every_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("week1");
    first_week(&out);
    assert!(settle(&["verify", text(&out)]).status.success());
    // A flip inside an index entry: a run notices only if it reads that
    // entry, but verify reads every byte.
    let segment = segment_of(&out);
    let length = std::fs::metadata(&segment).unwrap().len() as usize;
    flip(&segment, length / 2);
    let result = settle(&["verify", text(&out)]);
    assert_eq!(result.status.code(), Some(1));
    let report = String::from_utf8_lossy(&result.stdout).into_owned()
        + &String::from_utf8_lossy(&result.stderr);
    assert!(report.contains("size or CRC-32 differs"), "{report}");
    // merchants.csv is listed in control.json with its SHA-256.
    flip(&segment, length / 2);
    flip(&out.join("state/merchants.csv"), 150);
    let result = settle(&["verify", text(&out)]);
    assert_eq!(result.status.code(), Some(1));
}

/// Every published file of a run, keyed by its path under the folder.
fn published(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out)
        .expect("a published run")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn states_with_the_segment_layouts_of_earlier_engines_still_carry() {
    // fixtures/state-v2 and fixtures/state-v3 are the end states of `settle
    // run` over transactions-week1.csv alone, published by the engines of
    // segment layout 2 (packed parts) and 3 (aligned parts, 72-byte
    // records). This engine writes layout 4.
    let dir = tempfile::tempdir().unwrap();
    let week1 = dir.path().join("week1");
    let result = settle_fixtures(&["fixtures/transactions-week1.csv"], &[], &week1);
    assert!(result.status.success());
    let v4_segment = std::fs::read(week1.join("state/index-2026-11-08-0001.seg")).unwrap();
    assert_eq!(&v4_segment[8..12], &4u32.to_le_bytes());
    assert_eq!(v4_segment.len() % 4096, 0, "version 4 pads to whole blocks");
    let from_v4 = dir.path().join("from-v4");
    assert_eq!(second_week(&week1, &from_v4).0, 0);
    // Settlements, rejects and merchant states are the same; control.json
    // differs only where it names the state it started from.
    let without_control = |out: &Path| {
        let mut files = published(out);
        files.retain(|(name, _)| name != "control.json");
        files
    };
    for version in [2u32, 3] {
        let fixture = PathBuf::from(format!("fixtures/state-v{version}"));
        let segment = std::fs::read(fixture.join("state/index-2026-11-08-0001.seg"))
            .expect("the bundled state");
        assert_eq!(&segment[8..12], &version.to_le_bytes());
        let from_old = dir.path().join(format!("from-v{version}"));
        let (code, stderr, _) = second_week(&fixture, &from_old);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(without_control(&from_old), without_control(&from_v4));
        assert_eq!(
            std::fs::read(from_old.join("state/merchants.csv")).unwrap(),
            std::fs::read(from_v4.join("state/merchants.csv")).unwrap()
        );
        assert!(
            String::from_utf8_lossy(&std::fs::read(from_old.join("rejects.csv")).unwrap())
                .contains("duplicate_txn_id"),
            "week 2 repeats week 1 ids, so the lookups reach the old segment"
        );
        // The new state keeps the old segment beside its own version 4 one,
        // and verify checks both.
        let versions: Vec<u32> = std::fs::read_dir(from_old.join("state"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .map(|p| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap()))
            .collect();
        assert_eq!(versions.len(), 2);
        assert!(versions.contains(&version) && versions.contains(&4));
        assert_eq!(settle(&["verify", text(&from_old)]).status.code(), Some(0));
    }
}
