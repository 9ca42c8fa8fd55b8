//! What a worker knows of a row the moment it arrives: whether it passes
//! steps 1 and 2 of RULES.md 3.3, and for a purchase of a registered
//! merchant its fee (RULES.md 3.1), with the time from publish to that
//! moment in a histogram (`settle worker --stats`).
//!
//! The fee here is the one the close computes for an accepted purchase;
//! the later steps (late, horizon, links, caps of refunds, balances) are
//! the close's. This module must not decide the settlement: it only makes
//! the fee known early and measures how early.

use std::path::Path;

use hdrhistogram::Histogram;

use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::ingest::csv::{Record, Tokenizer};
use crate::ingest::txn::{self, Card, Kind, RowContext, TxnColumns};
use crate::ingest::{Merchants, header, merchants};
use crate::money;

use super::{FileHead, Row};

/// The longest latency the histogram holds: a minute.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Cuts `bytes` as one record; `None` unless they are exactly one record
/// (a message that is not one is not a row of ours).
pub fn cut_one(bytes: &[u8], record: &mut Record) -> bool {
    let mut tokenizer = Tokenizer::new(bytes, 0);
    if !tokenizer.next_record(record) || record.start != 0 || record.end != bytes.len() {
        return false;
    }
    let mut again = Record::default();
    !tokenizer.next_record(&mut again)
}

/// The arrival side of a worker.
pub struct Arrival {
    settings: Settings,
    merchants: Merchants,
    /// Per file index: its columns, or `None` before its head arrives.
    columns: Vec<Option<TxnColumns>>,
    record: Record,
    arena: Vec<u8>,
    latency_ns: Histogram<u64>,
    pub rows: u64,
    pub fees_known: u64,
    pub fee_sum_fen: i64,
}

impl Arrival {
    pub fn new(config_path: &Path, merchants_path: &Path) -> Result<Arrival> {
        let settings = config::load(config_path)?;
        let bytes = std::fs::read(merchants_path)
            .map_err(|e| Error::io(format!("reading {}", merchants_path.display()), e))?;
        let merchants = merchants::parse(&bytes, &merchants_path.display().to_string())?;
        Ok(Arrival {
            settings,
            merchants,
            columns: Vec::new(),
            record: Record::default(),
            arena: Vec::new(),
            latency_ns: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
                .expect("valid histogram bounds"),
            rows: 0,
            fees_known: 0,
            fee_sum_fen: 0,
        })
    }

    /// Reads a file's header; `false` when its head has none (then its
    /// rows get no early fee, and the close rejects or refuses them).
    pub fn start_file(&mut self, index: u32, head: &FileHead) -> bool {
        let index = index as usize;
        if self.columns.len() <= index {
            self.columns.resize_with(index + 1, || None);
        }
        self.columns[index] = header::read(&head.head, &head.name, &txn::COLUMNS)
            .ok()
            .map(|h| TxnColumns::new(h.field_count, &h.columns));
        self.columns[index].is_some()
    }

    /// Forgets the files of a closed day.
    pub fn end_day(&mut self) {
        self.columns.clear();
    }

    /// The fee of `row` if it is a purchase that passes steps 1 and 2 by a
    /// registered merchant.
    pub fn fee_fen(&mut self, row: &Row) -> Option<i64> {
        self.rows += 1;
        let columns = self.columns.get(row.file_index as usize)?.as_ref()?;
        if !cut_one(&row.bytes, &mut self.record) {
            return None;
        }
        let context = RowContext {
            settings: &self.settings,
            merchants: &self.merchants,
            through: None,
            state_horizon: None,
            terminal_ids: false,
        };
        self.arena.clear();
        let (txn, merchant_id) = txn::parse_row(
            &self.record,
            &row.bytes,
            columns,
            &context,
            &mut self.arena,
            0,
        )
        .ok()?;
        if !matches!(txn.kind, Kind::Purchase) {
            return None;
        }
        let merchant = self.merchants.index_of(merchant_id)?;
        let mcc = if txn.mcc == txn::MCC_NONE {
            self.merchants.hot(merchant).mcc
        } else {
            txn.mcc
        };
        let category = self
            .settings
            .categories
            .get(self.settings.categories.index_of(mcc));
        let (rate_ppm, cap_fen) = match txn.card {
            Card::Debit => (category.debit_rate_ppm, category.debit_cap_fen),
            Card::Credit => (category.credit_rate_ppm, category.credit_cap_fen),
            Card::NotApplicable => return None,
        };
        let fee_fen = money::fee_fen(txn.amount_fen, rate_ppm, self.settings.rounding);
        let fee_fen = cap_fen.map_or(fee_fen, |cap| fee_fen.min(cap));
        self.fees_known += 1;
        self.fee_sum_fen += fee_fen;
        Some(fee_fen)
    }

    /// Records the time from `published_ns` to now.
    pub fn record_latency(&mut self, published_ns: u64) {
        if published_ns == 0 {
            return;
        }
        let ns = super::nats::now_ns().saturating_sub(published_ns);
        self.latency_ns
            .saturating_record(ns.clamp(1, LATENCY_NS_MAX));
    }

    /// One line: p50, p99, p99.9 and max of publish -> fee known.
    pub fn latency_line(&self) -> String {
        let h = &self.latency_ns;
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "latency publish -> fee known over {} rows: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs",
            h.len(),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max())
        )
    }
}
