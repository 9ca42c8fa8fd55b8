//! Fuzz target: arbitrary bytes as a published state (`OUT/state/`),
//! through `settle::state::read` and index lookups.
//!
//! The first byte picks what the fuzzer controls:
//! - even: an index segment's bytes, inside an otherwise valid state (the
//!   manifest lists the segment with its true size, so the segment's own
//!   header, checksums and entries are what is exercised); ids cut from the
//!   input are then looked up in it;
//! - odd: the manifest's JSON body and `merchants.csv` (split at the first
//!   0xFF byte), with the digests the reader checks filled in, so that the
//!   JSON and CSV parsing behind them is reached.
//!
//! What is checked, beyond "no panic": every failure is a usage error
//! (exit 2) that names a file of the state.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use settle::output::control::sha256_hex;

const MERCHANTS_HEADER: &str = "merchant_id,deposit_status,deposit_held_fen,window_volume_fen,carried_fen,final_settled,ever_purchased\n";

fn probe() -> String {
    format!(
        "{:016x}",
        settle::ingest::txn::id_hash(b"settle id hash probe")
    )
}

fn folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("settle-fuzz-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).expect("a scratch folder");
    dir
}

fn write_manifest(dir: &std::path::Path, body: &str) {
    let manifest = format!(
        "settle-state 1 sha256={}\n{body}",
        sha256_hex(body.as_bytes())
    );
    std::fs::write(dir.join("state/manifest"), manifest).expect("manifest written");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = folder();
    if mode % 2 == 0 {
        std::fs::write(dir.join("state/index-x.seg"), rest).expect("segment written");
        std::fs::write(dir.join("state/merchants.csv"), MERCHANTS_HEADER)
            .expect("merchants written");
        let body = json!({
            "format": "settle-state",
            "version": 1,
            "horizon": "2026-11-30",
            "index_first_day": "2026-06-04",
            "id_hash_probe": probe(),
            "merchants": {"file": "merchants.csv", "sha256": sha256_hex(MERCHANTS_HEADER.as_bytes()), "rows": 0},
            "segments": [{"file": "index-x.seg", "bytes": rest.len(), "crc32": "00000000",
                          "entries": 0, "first_day": "2026-11-01", "last_day": "2026-11-30"}],
        });
        write_manifest(&dir, &body.to_string());
    } else {
        let cut = rest.iter().position(|&b| b == 0xFF).unwrap_or(rest.len());
        let (body, merchants) = (&rest[..cut], rest.get(cut + 1..).unwrap_or(&[]));
        std::fs::write(dir.join("state/merchants.csv"), merchants).expect("merchants written");
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut object)) => {
                object.insert("id_hash_probe".into(), Value::String(probe()));
                if let Some(Value::Object(entry)) = object.get_mut("merchants") {
                    entry.insert("sha256".into(), Value::String(sha256_hex(merchants)));
                }
                Value::Object(object).to_string()
            }
            _ => String::from_utf8_lossy(body).into_owned(),
        };
        write_manifest(&dir, &body);
    }
    match settle::state::read(&dir) {
        Ok(state) => {
            // Look up ids cut from the input: decoding entries must not panic.
            let ids: Vec<&[u8]> = data.chunks(7).take(64).collect();
            let mut queries: Vec<(u64, u32)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (settle::ingest::txn::id_hash(id), i as u32))
                .collect();
            let _ = state.index.lookup(&mut queries, &|q| ids[q as usize]);
            // A few hashes straight from the input too, to hit stored ones.
            let _ = state.merchant("M1");
        }
        Err(error) => {
            assert_eq!(error.exit_code(), 2, "a bad state exits 2: {error}");
            assert!(
                error.to_string().contains("state") || error.to_string().contains(".seg"),
                "{error}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
