//! The bundled data set: `settle run` on `fixtures/` must reproduce
//! `fixtures/expected/` byte for byte. Its interesting rows were worked out
//! by hand in `fixtures/README.md` before the engine first ran on it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The files of an output folder (its `state/` folder, which holds a
/// binary index, is checked by the state tests instead).
fn read_dir(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(path)
        .expect("an output folder")
        .map(|entry| entry.expect("an entry"))
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            let text = std::fs::read_to_string(entry.path()).expect("a UTF-8 output file");
            (entry.file_name().to_string_lossy().into_owned(), text)
        })
        .collect()
}

#[test]
fn fixtures_reproduce_the_expected_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().expect("a temp dir");
    let out = scratch.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_settle"))
        .current_dir(root)
        .args([
            "run",
            "--config",
            "fixtures/settle.toml",
            "--merchants",
            "fixtures/merchants.csv",
        ])
        .args([
            "--transactions",
            "fixtures/transactions-week1.csv",
            "fixtures/transactions-week2.csv",
        ])
        .args([
            "--adjustments",
            "fixtures/adjustments.csv",
            "--detail",
            "--out",
        ])
        .arg(&out)
        .status()
        .expect("settle runs");
    assert!(status.success(), "settle run failed: {status}");
    let expected = read_dir(&root.join("fixtures/expected"));
    let actual = read_dir(&out);
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
    // Spot checks of hand-worked figures (fixtures/README.md): merchant 19's
    // deposit comes back on 11-07, and merchant 20's fee refund clears its
    // carried balance on 11-14.
    assert!(expected["settlement-2026-11-07.csv"].contains(
        "2026-11-07,M822010019,1,2399.00,0.00,9.12,0.00,0.00,2389.88,0.00,299.00,0.00,0.00,2688.88,0.00\n"
    ));
    assert!(expected["settlement-2026-11-14.csv"].contains(
        "2026-11-14,M822010020,0,0.00,0.00,0.00,199.00,-121.40,77.60,0.00,0.00,0.00,0.00,77.60,0.00\n"
    ));
}
