//! Tidy checks over the source tree: rules that a reviewer would otherwise
//! have to remember.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of code that mention a word, comments left out.
fn offending_lines(dirs: &[&str], is_bad: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in dirs {
        let path = root.join(dir);
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.push(path);
        }
    }
    assert!(!files.is_empty(), "the tidy check found no source files");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if is_bad(code) {
                found.push(format!(
                    "{}:{}: {}",
                    file.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().last();
        let after = code[at + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

#[test]
fn no_floating_point_near_money() {
    let dirs = [
        "src/money",
        "src/ledger",
        "src/output",
        "src/config",
        "src/ingest",
        "src/pipeline/link.rs",
        "src/pipeline/references.rs",
        "src/pipeline/carry.rs",
        "src/pipeline/aggregate.rs",
        "src/pipeline/mod.rs",
        "src/state",
        "src/calendar.rs",
        "src/statement",
        "src/report",
        "src/diff",
    ];
    let found = offending_lines(&dirs, |code| has_word(code, "f32") || has_word(code, "f64"));
    assert!(
        found.is_empty(),
        "floating point in money code:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_word_check_can_fail() {
    assert!(has_word("let x: f64 = 1.0;", "f64"));
    assert!(!has_word("let buf64 = 1;", "f64"));
    assert!(!has_word("let f64_count = 1;", "f64"));
}

#[test]
fn unsafe_lives_only_in_the_mmap_module() {
    let found = offending_lines(&["src"], |code| has_word(code, "unsafe"));
    let outside: Vec<_> = found
        .iter()
        .filter(|line| !line.contains("src/ingest/mmap.rs"))
        .collect();
    assert!(
        outside.is_empty(),
        "unsafe outside src/ingest/mmap.rs:\n{outside:#?}"
    );
    assert!(
        found.iter().any(|line| line.contains("src/ingest/mmap.rs")),
        "the mmap module holds the one unsafe block"
    );
}
