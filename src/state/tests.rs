//! Segments written and read back: lookups, the newest entry deciding,
//! hash collisions, and damage caught.

use super::format::{Entry, Header, Layout, NewEntry, Purchase};
use super::index::{Index, Segment};
use super::packed::Widths;
use super::writer::{Names, write_blocks, write_segment};
use crate::calendar::Day;
use crate::ingest::txn::{Card, id_hash};
use crate::output::direct::BlockFile;

fn entry(id: &str, day: Day, purchase: bool) -> Entry {
    Entry {
        hash: id_hash(id.as_bytes()),
        id: id.as_bytes().to_vec(),
        business_day: day,
        purchase: purchase.then(|| Purchase {
            merchant_id: b"M1".to_vec(),
            category: b"general".to_vec(),
            card: Card::Credit,
            unix_s: i64::from(day) * 86_400 + 3_600,
            nanos: 250,
            amount_fen: 10_000,
            fee_fen: 49,
            voided: false,
            refunded_fen: 6_000,
            fee_returned_fen: 29,
        }),
    }
}

/// The entry as a writer takes it, with "M1" and "general" numbered 1 and 0.
/// The name tables of every test segment.
fn names() -> Names<'static> {
    Names {
        merchants: vec![b"M0", b"M1"],
        categories: vec![b"general"],
    }
}

fn new_entry(e: &Entry) -> NewEntry<'_> {
    Entry {
        hash: e.hash,
        id: &e.id,
        business_day: e.business_day,
        purchase: e.purchase.as_ref().map(|p| p.renamed(1, 0)),
    }
}

/// Writes `entries` as a segment in a new folder and opens it.
fn written(entries: &[Entry]) -> (tempfile::TempDir, std::path::PathBuf, Segment) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.seg");
    let (facts, _file) =
        write_segment(&path, &names(), entries.len(), &|i| new_entry(&entries[i])).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(facts.bytes, bytes.len() as u64);
    assert_eq!(facts.crc32, crc32fast::hash(&bytes));
    let opened = Segment::open(&path).unwrap();
    (dir, path, opened)
}

fn lookup(index: &Index, ids: &[&str]) -> Vec<(u32, Entry)> {
    let mut queries: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id_hash(id.as_bytes()), i as u32))
        .collect();
    index
        .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
        .unwrap()
}

#[test]
fn a_segment_round_trips_and_the_newest_entry_decides() {
    let (_d1, _, old) = written(&[entry("P1", 10, true), entry("R1", 11, false)]);
    let mut updated = entry("P1", 10, true);
    updated.purchase.as_mut().unwrap().refunded_fen = 10_000;
    let (_d2, _, new) = written(&[updated.clone(), entry("Q9", 12, true)]);
    let index = Index {
        segments: vec![new, old],
        first_day: 11,
    };
    let ids = ["P1", "R1", "nope", "Q9"];
    // P1's business date (10) has left the index (first day 11).
    let hits = lookup(&index, &ids);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0], (1, entry("R1", 11, false)));
    assert_eq!(hits[1], (3, entry("Q9", 12, true)));
    let index = Index {
        first_day: 0,
        ..index
    };
    assert_eq!(lookup(&index, &ids)[0], (0, updated));
}

#[test]
fn equal_hashes_are_told_apart_by_their_ids() {
    // Two ids forced onto one hash: each query finds only its own.
    let mut a = entry("A", 1, false);
    let mut b = entry("B", 2, true);
    a.hash = 7;
    b.hash = 7;
    let (_d, _, segment) = written(&[a.clone(), b.clone()]);
    let index = Index {
        segments: vec![segment],
        first_day: 0,
    };
    let ids = ["B", "A", "C"];
    let mut queries = vec![(7, 0), (7, 1), (7, 2)];
    let hits = index
        .lookup(&mut queries, &|q| ids[q as usize].as_bytes())
        .unwrap();
    assert_eq!(hits, vec![(0, b), (1, a)]);
}

#[test]
fn direct_and_buffered_writes_give_the_same_segment() {
    let entries: Vec<Entry> = (0..40_000)
        .map(|i| entry(&format!("T{i}"), i % 30, i % 4 == 0))
        .collect();
    let (dir, direct_path, _) = written(&entries);
    let buffered_path = dir.path().join("buffered.seg");
    let (facts, _file) = write_blocks(
        &buffered_path,
        BlockFile::create_buffered(&buffered_path).unwrap(),
        &names(),
        entries.len(),
        &|i| new_entry(&entries[i]),
    )
    .unwrap();
    let buffered = std::fs::read(&buffered_path).unwrap();
    assert_eq!(buffered, std::fs::read(&direct_path).unwrap());
    assert_eq!(facts.crc32, crc32fast::hash(&buffered));
    // Every part starts on a 4096-byte block, and so does the end.
    let layout = layout_of(&buffered);
    for at in [
        layout.hashes_at,
        layout.positions_at,
        layout.position_checks_at,
        layout.records_at,
        layout.checks_at,
        layout.ids_at,
        buffered.len(),
    ] {
        assert_eq!(at % 4096, 0);
    }
}

/// The layout of a written segment, from its header.
fn layout_of(bytes: &[u8]) -> Layout {
    let header = Header::decode(bytes).unwrap();
    let widths = Widths::from_bytes(header.widths).unwrap();
    Layout::of_version(header.version, header.count as usize, widths.record_bytes()).unwrap()
}

/// Looks `ids` up in the segment at `path`, holding `bytes` (`None` if
/// the segment does not even open).
fn lookup_in(
    path: &std::path::Path,
    bytes: &[u8],
    ids: &[&str],
) -> Option<crate::error::Result<Vec<(u32, Entry)>>> {
    std::fs::write(path, bytes).unwrap();
    let segment = Segment::open(path).ok()?;
    let index = Index {
        segments: vec![segment],
        first_day: 0,
    };
    let mut queries: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id_hash(id.as_bytes()), i as u32))
        .collect();
    Some(index.lookup(&mut queries, &|q| ids[q as usize].as_bytes()))
}

/// Whether looking `ids` up fails (`None` if the segment does not open).
fn lookup_fails(path: &std::path::Path, bytes: &[u8], ids: &[&str]) -> Option<bool> {
    lookup_in(path, bytes, ids).map(|result| result.is_err())
}

#[test]
fn damage_is_caught() {
    let entries: Vec<Entry> = (0..100).map(|i| entry(&format!("T{i}"), 5, true)).collect();
    let (_d, path, _) = written(&entries);
    let original = std::fs::read(&path).unwrap();
    let layout = layout_of(&original);
    // Ids of 2 or 3 bytes (2 bits), purchase and credit (3 bits), one date
    // (0 bits), merchant 1 (1 bit), category 0 (0 bits), 01:00 on its
    // date, 90,000 s after the start of the day before (17 bits), 250 ns (8
    // bits), amount 10,000 (14 bits), fee 49 (6 bits), 6,000 refunded (13
    // bits), fee 29 returned (5 bits): 69 bits, 9 bytes.
    assert_eq!(layout.record_bytes, 9);
    // The file ends with the name tables, then zeros to a whole block.
    let names_end = original.iter().rposition(|&b| b != 0).unwrap() + 1;
    // The header and the hash column are checked when a segment opens.
    for at in [3, 20, 60, layout.hashes_at + 17] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x40;
        assert_eq!(lookup_fails(&path, &bytes, &[]), None, "flip at {at}");
    }
    // A position, its page's check, a record, a block's check, an id or a
    // name is checked when a lookup reaches it.
    let ids: Vec<String> = (0..100).map(|i| format!("T{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for at in [
        layout.positions_at + 4 * 50 + 1, // a position
        layout.position_checks_at + 2,    // the positions' check
        layout.records_at + 9 * 50 + 4,   // an amount in record 50
        layout.checks_at + 1,             // where block 0's ids start
        layout.checks_at + 8 + 5,         // block 1's CRC
        layout.ids_at + 5,                // an id
        names_end - 1,                    // a name
    ] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        assert_eq!(
            lookup_fails(&path, &bytes, &ids),
            Some(true),
            "flip at {at}"
        );
    }
    // A hit on record 50 alone finds the flip in it; a miss reads no record.
    let mut bytes = original.clone();
    bytes[layout.records_at + 9 * 50 + 4] ^= 0x01;
    assert_eq!(lookup_fails(&path, &bytes, &["T50"]), Some(true));
    assert_eq!(lookup_fails(&path, &bytes, &["T100", "X"]), Some(false));
    // The undamaged segment passes, and truncation is caught.
    assert_eq!(lookup_fails(&path, &original, &ids), Some(false));
    assert_eq!(
        lookup_fails(&path, &original[..original.len() - 5], &ids),
        None
    );
}

#[test]
fn segments_of_earlier_layouts_are_read_and_checked() {
    // The bundled states that engines of layout versions 2 and 3 published
    // after transactions-week1.csv.
    for (folder, version) in [("state-v2", 2u32), ("state-v3", 3)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(folder)
            .join("state/index-2026-11-08-0001.seg");
        let original = std::fs::read(&path).unwrap();
        assert_eq!(Header::decode(&original).unwrap().version, version);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("s.seg");
        std::fs::write(&copy, &original).unwrap();
        let index = Index {
            segments: vec![Segment::open(&copy).unwrap()],
            first_day: 0,
        };
        // The first row: 12.50 debit at 2026-10-31T16:40:00Z, business date
        // 2026-11-01 (+08:00), merchant M822010002.
        let hits = lookup(&index, &["TX2611010001", "nope"]);
        assert_eq!(hits.len(), 1, "{folder}");
        let (query, found) = &hits[0];
        assert_eq!(*query, 0);
        assert_eq!(
            found.business_day,
            crate::calendar::parse_date(b"2026-11-01").unwrap()
        );
        let purchase = found.purchase.as_ref().unwrap();
        assert_eq!(purchase.merchant_id, b"M822010002");
        assert_eq!(purchase.amount_fen, 1250);
        assert_eq!(purchase.card, Card::Debit);
        assert_eq!(
            purchase.unix_s,
            i64::from(found.business_day) * 86_400 - 8 * 3600 + 40 * 60
        );
        // A flipped byte in its record (the first, in file order) is
        // caught on that hit.
        let count = Header::decode(&original).unwrap().count as usize;
        let layout = Layout::of_version(version, count, 0).unwrap();
        let mut bytes = original.clone();
        bytes[layout.records_at + 41] ^= 0x01;
        assert_eq!(
            lookup_fails(&copy, &bytes, &["TX2611010001"]),
            Some(true),
            "{folder}"
        );
    }
}

#[test]
fn lookups_find_every_id_among_many() {
    // More entries than one writer block, so blocks and their offsets join.
    let entries: Vec<Entry> = (0..70_000)
        .map(|i| entry(&format!("T{i}"), i % 30, i % 3 == 0))
        .collect();
    let (_d, _, segment) = written(&entries);
    let index = Index {
        segments: vec![segment],
        first_day: 0,
    };
    let ids: Vec<String> = (0..50_000).map(|i| format!("T{}", i * 2)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let hits = lookup(&index, &ids);
    assert_eq!(hits.len(), 35_000);
    for (query, found) in hits {
        assert_eq!(found, entries[query as usize * 2]);
    }
}

#[test]
fn a_run_with_more_entries_than_a_segment_holds_writes_parts() {
    let entries: Vec<Entry> = (0..10)
        .map(|i| entry(&format!("T{i}"), 5, i % 2 == 0))
        .collect();
    let staging = tempfile::tempdir().unwrap();
    // A kept segment named like this run's first part moves the run to "b".
    let kept_dir = tempfile::tempdir().unwrap();
    let kept = super::Kept {
        segments: vec![super::SegmentRecord {
            file: "index-2026-11-05-0002-1of4.seg".into(),
            facts: super::SegmentFacts {
                bytes: 0,
                crc32: 0,
                entries: 0,
                first_day: 0,
                last_day: 0,
            },
        }],
        dir: Some(kept_dir.path()),
    };
    std::fs::write(kept_dir.path().join("index-2026-11-05-0002-1of4.seg"), b"").unwrap();
    let written = super::write_index_in_parts(
        staging.path(),
        crate::calendar::parse_date(b"2026-11-05"),
        &kept,
        &names(),
        &super::Entries {
            count: entries.len(),
            entry_at: &|i: usize| new_entry(&entries[i]),
        },
        3,
    )
    .unwrap();
    let files: Vec<&str> = written.segments.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "index-2026-11-05-0002b-1of4.seg",
            "index-2026-11-05-0002b-2of4.seg",
            "index-2026-11-05-0002b-3of4.seg",
            "index-2026-11-05-0002b-4of4.seg",
            "index-2026-11-05-0002-1of4.seg",
        ]
    );
    let counts: Vec<u64> = written.segments.iter().map(|s| s.facts.entries).collect();
    assert_eq!(counts, [3, 3, 3, 1, 0]);
    let segments = written.segments[..4]
        .iter()
        .map(|s| Segment::open(&staging.path().join("state").join(&s.file)).unwrap())
        .collect();
    let index = Index {
        segments,
        first_day: 0,
    };
    let ids: Vec<String> = (0..12).map(|i| format!("T{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let hits = lookup(&index, &ids);
    assert_eq!(hits.len(), 10);
    for (query, found) in hits {
        assert_eq!(found, entries[query as usize]);
    }
}

#[test]
fn no_damage_makes_the_reader_panic() {
    // Random flips anywhere: opening or looking up fails, or the answers
    // are those of the undamaged segment (the flips fell in padding). And
    // random header fields with the header's CRC made right again, so that
    // the counts, dates and widths are trusted: no panic, whatever they say.
    let entries: Vec<Entry> = (0..300)
        .map(|i| entry(&format!("T{i}"), 5 + i % 3, i % 4 != 0))
        .collect();
    let (_d, path, _) = written(&entries);
    let original = std::fs::read(&path).unwrap();
    let ids: Vec<String> = (0..300).map(|i| format!("T{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let answers = lookup_in(&path, &original, &ids).unwrap().unwrap();
    assert_eq!(answers.len(), 300);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut bytes = original.clone();
        if round % 2 == 0 {
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (next() % 8);
            }
            if let Some(Ok(found)) = lookup_in(&path, &bytes, &ids) {
                assert!(found == answers, "round {round}: damage gave other answers");
            }
        } else {
            let at = 8 + (next() % 56) as usize;
            bytes[at] = next() as u8;
            let crc = crc32fast::hash(&bytes[..64]);
            bytes[64..68].copy_from_slice(&crc.to_le_bytes());
            let _ = lookup_in(&path, &bytes, &ids);
        }
    }
}
