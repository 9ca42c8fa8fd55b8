//! Fuzz target: arbitrary bytes as `settle.toml`, through
//! `settle::config::parse`.
//!
//! Valid UTF-8 is parsed as it is. Other bytes are parsed after a lossy
//! conversion (the real loader refuses non-UTF-8 before `parse`, but
//! `parse` must take any `&str`, and this keeps every input useful).
//!
//! What is checked, beyond "no panic":
//! - an error is a Config error (exit code 2) that names the file;
//! - a configuration that parses keeps every promise `Settings` makes to
//!   the rest of the engine: every category reachable from an MCC (0000 to
//!   9999, which includes the default category) has debit and credit rates
//!   at most max_rate, max_rate is at most 1, caps and amounts are not
//!   negative, names are not blank, and the day counts and the zone are
//!   inside their documented ranges.
#![no_main]

use libfuzzer_sys::fuzz_target;
use settle::config::{self, limits};

const FILE: &str = "fuzz-settle.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let settings = match config::parse(FILE.as_ref(), &text) {
        Ok(settings) => settings,
        Err(error) => {
            assert_eq!(error.exit_code(), 2, "a bad configuration exits 2: {error}");
            match &error {
                settle::Error::Config { file, key, .. } => {
                    assert_eq!(file, FILE, "the error names the file");
                    // An empty TOML key ('' = '') once gave an empty key here
                    // (regressions/config_loader/empty-key.toml); keys are now
                    // quoted when empty or multi-line.
                    assert!(!key.is_empty(), "the error names a key: {error}");
                    assert!(!error.to_string().contains('\n'), "one line: {error}");
                }
                other => panic!("a bad configuration is a Config error, got {other:?}"),
            }
            return;
        }
    };

    let max = settings.max_rate_ppm;
    assert!(max <= 1_000_000, "max_rate {max} ppm is above 1");
    let mut seen = [false; limits::CATEGORIES_MAX];
    for mcc in 0..=9999u16 {
        let index = settings.categories.index_of(mcc);
        assert!(
            usize::from(index) < limits::CATEGORIES_MAX,
            "MCC {mcc:04} maps to category index {index}, past the limit"
        );
        if std::mem::replace(&mut seen[usize::from(index)], true) {
            continue;
        }
        let category = settings.categories.get(index);
        assert!(
            !category.name.trim().is_empty(),
            "category {index} has a blank name"
        );
        assert!(
            category.debit_rate_ppm <= max,
            "category {} debit_rate {} ppm > max_rate {max} ppm",
            category.name,
            category.debit_rate_ppm
        );
        assert!(
            category.credit_rate_ppm <= max,
            "category {} credit_rate {} ppm > max_rate {max} ppm",
            category.name,
            category.credit_rate_ppm
        );
        for cap in [category.debit_cap_fen, category.credit_cap_fen]
            .into_iter()
            .flatten()
        {
            assert!(
                cap >= 0,
                "category {} has a negative cap {cap}",
                category.name
            );
        }
    }

    let in_range = |value: i32, low: i64, high: i64| (low..=high).contains(&i64::from(value));
    assert!(in_range(
        settings.settlement_lag_days,
        0,
        limits::SETTLEMENT_LAG_DAYS_MAX
    ));
    assert!(in_range(
        settings.refund_retention_days,
        0,
        limits::WINDOW_DAYS_MAX
    ));
    assert!(in_range(
        settings.deposit_refund_window_days,
        1,
        limits::WINDOW_DAYS_MAX
    ));
    assert!(in_range(
        settings.return_window_days,
        0,
        limits::WINDOW_DAYS_MAX
    ));
    assert!(
        settings.zone_offset_s.abs() < 24 * 3600,
        "zone offset {} s",
        settings.zone_offset_s
    );
    assert!(settings.max_txn_amount_fen >= 0);
    assert!(settings.deposit_refund_volume_fen >= 0);
    assert!(settings.deactivation_fee_fen >= 0);
});
