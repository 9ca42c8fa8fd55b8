//! Criterion benches of each stage on in-memory data: parse, fee, link,
//! ledger, and the whole pipeline. Each sets its throughput in bytes and
//! asserts its result inside the loop, so a bench that stops doing the work
//! fails instead of getting faster.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use settle::config::{self, Settings};
use settle::datagen::{self, GenOptions};
use settle::ingest::header::{self, Header};
use settle::ingest::txn::{self, RowContext};
use settle::ingest::{Merchants, Source, merchants};
use settle::ledger::{self, DayTotals, MerchantInput, MerchantState, Span};
use settle::money::{self, Rounding};
use settle::pipeline::stats::ChunkLatencies;
use settle::pipeline::{self, Input, Plan, TxnFile, link, parse};

const ROWS: u64 = 200_000;

struct Data {
    settings: Settings,
    merchants: Merchants,
    source: Source,
    header: Header,
}

fn data() -> Data {
    let dir = tempfile::tempdir().expect("a temp dir");
    let options = GenOptions {
        merchants: 5_000,
        rows: ROWS,
        days: 30,
        seed: 7,
        bad_rows_ppm: 1000,
        out: dir.path().to_path_buf(),
    };
    datagen::generate(&options).expect("generated data");
    let read = |name: &str| std::fs::read(dir.path().join(name)).expect("a generated file");
    let settings = config::parse(
        Path::new("settle.toml"),
        &String::from_utf8(read("settle.toml")).expect("UTF-8"),
    )
    .expect("the generated configuration is valid");
    let merchants =
        merchants::parse(&read("merchants.csv"), "merchants.csv").expect("valid merchants");
    let source = Source::Owned(read("transactions.csv"));
    let header = header::read(&source, "transactions.csv", &txn::COLUMNS).expect("a valid header");
    Data {
        settings,
        merchants,
        source,
        header,
    }
}

fn stages(c: &mut Criterion) {
    let data = data();
    let bytes = data.source.len() as u64;
    let context = RowContext {
        settings: &data.settings,
        merchants: &data.merchants,
        through: None,
        state_horizon: None,
        terminal_ids: false,
    };
    let files = [TxnFile {
        name: "bench",
        input: Input::Bytes(&data.source),
        header: &data.header,
    }];
    let parse_all = || {
        parse::parse_files(&files, &context, 1 << 20, &ChunkLatencies::default(), None)
            .expect("mapped files parse")
    };

    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);

    group.bench_function("parse", |b| {
        b.iter(|| {
            let parsed = parse_all();
            assert_eq!(parsed.rows_read_per_file[0], ROWS);
            black_box(parsed.txns.len())
        })
    });

    let parsed = parse_all();
    let accepted_purchases = parsed
        .txns
        .iter()
        .filter(|t| t.kind == txn::Kind::Purchase)
        .count();
    group.bench_function("fee", |b| {
        b.iter(|| {
            let total: i64 = parsed
                .txns
                .iter()
                .map(|t| money::fee_fen(t.amount_fen, 3800, Rounding::HalfUp))
                .sum();
            assert!(total > 0);
            black_box(total)
        })
    });

    group.bench_function("link", |b| {
        b.iter(|| {
            let linked = link::link(&parsed, &data.settings, &data.merchants, None).unwrap();
            assert_eq!(linked.rejected.len(), parsed.txns.len());
            assert!(linked.rejected.iter().filter(|r| r.is_none()).count() >= accepted_purchases);
            black_box(linked.fee_fen.len())
        })
    });

    group.bench_function("end_to_end", |b| {
        b.iter(|| {
            let plan = Plan {
                settings: &data.settings,
                merchants: &data.merchants,
                txn_files: vec![TxnFile {
                    name: "bench",
                    input: Input::Bytes(&data.source),
                    header: &data.header,
                }],
                adjustments: None,
                through: None,
                chunk_bytes: 1 << 20,
                prior: None,
                terminal_ids: false,
                journal_per_transaction: false,
                progress: None,
                duplicates: None,
            };
            let settled = pipeline::run(&plan).expect("a balanced run");
            assert_eq!(settled.txn_counts[0].rows_read, ROWS);
            black_box(settled.rows.len())
        })
    });
    group.finish();
}

fn ledger_bench(c: &mut Criterion) {
    let data = data();
    let merchant = data.merchants.get(0);
    // Thirty busy days for one merchant, settled over and over.
    let days: Vec<(i32, DayTotals)> = (0..30)
        .map(|d| {
            let totals = DayTotals {
                txn_count: 40,
                purchases_fen: 320_000,
                refunds_fen: 8_000,
                fees_fen: 1_200,
            };
            (merchant.activated_on.max(20_393) + d, totals)
        })
        .collect();
    let span = Span {
        start: days[0].0,
        horizon: days[29].0,
    };
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Bytes(
        (days.len() * std::mem::size_of::<(i32, DayTotals)>()) as u64,
    ));
    group.bench_function("settle_merchant_30_days", |b| {
        b.iter(|| {
            let input = MerchantInput {
                index: 0,
                merchant,
                opening: MerchantState::new(),
                days: &days,
                adjustments: &[],
                purchased_in_run: true,
            };
            let (rows, _, _) =
                ledger::settle_merchant(&input, &data.settings, Some(span)).expect("amounts fit");
            assert!(rows.len() >= 30);
            black_box(rows.len())
        })
    });
    group.finish();
}

criterion_group!(benches, stages, ledger_bench);
criterion_main!(benches);
