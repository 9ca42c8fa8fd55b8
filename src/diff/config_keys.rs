//! Which configuration keys differ between two runs: both `settle.toml`
//! files are read back from the paths their control.json recorded, checked
//! against the recorded SHA-256, parsed as TOML and compared key by key.
//!
//! It owns the flattening of a TOML table into dotted keys. It must not
//! validate a configuration (that is `config`, and a run already did it):
//! a key is compared as written, whatever it means.

use std::collections::BTreeMap;
use std::path::Path;

use crate::output::control::sha256_hex;

use super::read::InputDigest;
use super::{ConfigChanges, KeyChange};

/// Keys one configuration may flatten into: far more than any real
/// `settle.toml` (a few hundred with `CATEGORIES_MAX` categories of a
/// handful of keys), so that a file that is not one stops early.
const CONFIG_KEYS_MAX: usize = 100_000;

/// Compares the configurations of runs A and B.
pub fn compare(a: &InputDigest, b: &InputDigest) -> ConfigChanges {
    if a.sha256 == b.sha256 {
        return ConfigChanges {
            same_digest: true,
            keys: Vec::new(),
            notes: Vec::new(),
        };
    }
    let mut notes = Vec::new();
    let keys_a = load("A", a, &mut notes);
    let keys_b = load("B", b, &mut notes);
    let mut keys = Vec::new();
    if let (Some(keys_a), Some(keys_b)) = (keys_a, keys_b) {
        let names: std::collections::BTreeSet<&String> =
            keys_a.keys().chain(keys_b.keys()).collect();
        for name in names {
            let (x, y) = (keys_a.get(name), keys_b.get(name));
            if x != y {
                keys.push(KeyChange {
                    key: name.clone(),
                    a: x.cloned(),
                    b: y.cloned(),
                });
            }
        }
        if keys.is_empty() {
            notes.push(
                "the two configuration files differ only in comments or layout: no key differs"
                    .to_string(),
            );
        }
    }
    ConfigChanges {
        same_digest: false,
        keys,
        notes,
    }
}

/// Reads one run's configuration back, or says in `notes` why its keys
/// cannot be listed. A relative path is read from the current folder, as
/// `settle run` read it (control.json records the path as given).
fn load(
    side: &str,
    input: &InputDigest,
    notes: &mut Vec<String>,
) -> Option<BTreeMap<String, String>> {
    let path = Path::new(&input.path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            notes.push(format!(
                "{side}'s configuration {} cannot be read ({e}): its keys cannot be listed",
                input.path
            ));
            return None;
        }
    };
    if sha256_hex(&bytes) != input.sha256 {
        notes.push(format!(
            "{side}'s configuration {} has changed since the run (its SHA-256 is not the one control.json records): its keys cannot be listed",
            input.path
        ));
        return None;
    }
    let table = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok());
    let Some(table) = table else {
        notes.push(format!(
            "{side}'s configuration {} is not TOML: its keys cannot be listed",
            input.path
        ));
        return None;
    };
    let mut keys = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut keys);
    if keys.len() > CONFIG_KEYS_MAX {
        notes.push(format!(
            "{side}'s configuration {} has more than {CONFIG_KEYS_MAX} keys: they are not listed",
            input.path
        ));
        return None;
    }
    Some(keys)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Flattens `value` into dotted keys. Tables nest with dots; an array of
/// tables that all have a distinct string `name` (the `[[category]]`
/// tables) is keyed by name, `category.dining.credit_rate`, so that adding
/// a category does not shift the others, and its order becomes one key of
/// its own (`category.(order)`); any other array of tables is keyed by
/// position (`x[0].y`); other values are shown as written.
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    if out.len() > CONFIG_KEYS_MAX {
        return;
    }
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                flatten(&join(prefix, key), value, out);
            }
        }
        toml::Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.is_table()) => {
            let names: Vec<Option<&str>> = items
                .iter()
                .map(|item| item.get("name").and_then(toml::Value::as_str))
                .collect();
            let distinct: std::collections::BTreeSet<_> = names.iter().flatten().collect();
            if names.iter().all(Option::is_some) && distinct.len() == names.len() {
                let order: Vec<&str> = names.iter().flatten().copied().collect();
                out.insert(join(prefix, "(order)"), order.join(", "));
                for (item, name) in items.iter().zip(order) {
                    if let toml::Value::Table(table) = item {
                        for (key, value) in table.iter().filter(|(key, _)| *key != "name") {
                            flatten(&join(&join(prefix, name), key), value, out);
                        }
                    }
                }
            } else {
                for (k, item) in items.iter().enumerate() {
                    flatten(&format!("{prefix}[{k}]"), item, out);
                }
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        flatten("", &toml::Value::Table(text.parse().unwrap()), &mut out);
        out
    }

    #[test]
    fn categories_are_keyed_by_name_and_values_shown_as_written() {
        let flat = keys(
            "rounding = \"half_up\"\nsettlement_lag_days = 1\n[deposit]\nrefund_window_days = 14\n\
             [[category]]\nname = \"dining\"\nmcc = [\"5811-5814\", \"7832\"]\ncredit_rate = \"0.0049\"\n\
             [[category]]\nname = \"general\"\ndefault = true\n",
        );
        let want: Vec<(&str, &str)> = vec![
            ("category.(order)", "dining, general"),
            ("category.dining.credit_rate", "0.0049"),
            ("category.dining.mcc", "[\"5811-5814\", \"7832\"]"),
            ("category.general.default", "true"),
            ("deposit.refund_window_days", "14"),
            ("rounding", "half_up"),
            ("settlement_lag_days", "1"),
        ];
        let got: Vec<(&str, &str)> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
        // Without distinct names, tables are keyed by position.
        let flat = keys("[[x]]\ny = 1\n[[x]]\ny = 2\n");
        assert_eq!(flat.get("x[1].y").map(String::as_str), Some("2"));
    }

    fn write(dir: &Path, name: &str, text: &str) -> InputDigest {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        InputDigest {
            path: path.display().to_string(),
            sha256: sha256_hex(text.as_bytes()),
        }
    }

    #[test]
    fn changed_added_and_removed_keys_are_listed_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.toml",
            "rounding = \"half_up\"\n[[category]]\nname = \"dining\"\ncredit_rate = \"0.0049\"\n",
        );
        let b = write(
            dir.path(),
            "b.toml",
            "rounding = \"half_up\"\n[[category]]\nname = \"dining\"\ncredit_rate = \"0.0045\"\ncredit_cap = \"20.00\"\n",
        );
        let changes = compare(&a, &b);
        assert!(!changes.same_digest);
        assert!(changes.notes.is_empty(), "{:?}", changes.notes);
        let shown: Vec<String> = changes.keys.iter().map(KeyChange::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "category.dining.credit_cap: (absent) -> 20.00",
                "category.dining.credit_rate: 0.0049 -> 0.0045",
            ]
        );
        // Comments only: no key, and a note saying so.
        let c = write(
            dir.path(),
            "c.toml",
            "# a comment\nrounding = \"half_up\"\n[[category]]\nname = \"dining\"\ncredit_rate = \"0.0049\"\n",
        );
        let changes = compare(&a, &c);
        assert!(changes.keys.is_empty());
        assert_eq!(changes.notes.len(), 1);
    }

    #[test]
    fn a_file_gone_or_changed_is_said_instead() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", "rounding = \"half_up\"\n");
        let mut b = write(dir.path(), "b.toml", "rounding = \"half_even\"\n");
        std::fs::write(dir.path().join("b.toml"), "rounding = \"edited\"\n").unwrap();
        let changes = compare(&a, &b);
        assert!(changes.keys.is_empty());
        assert_eq!(changes.notes.len(), 1);
        assert!(
            changes.notes[0].starts_with("B's configuration"),
            "{:?}",
            changes.notes
        );
        assert!(
            changes.notes[0].contains("has changed since the run"),
            "{:?}",
            changes.notes
        );
        b.path = dir.path().join("gone.toml").display().to_string();
        let changes = compare(&a, &b);
        assert!(
            changes.notes[0].contains("cannot be read"),
            "{:?}",
            changes.notes
        );
    }
}
