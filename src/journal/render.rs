//! Writing `journal-YYYY-MM-DD.csv`: each settlement row's postings in the
//! fixed order of docs/JOURNAL.md, checked against the row as they are
//! written, so that a journal that does not sum to its row never reaches
//! the disk.

use super::{Check, PostingKind, events};
use crate::calendar::{self, Day};
use crate::config::{RefundFee, Settings};
use crate::csv_field::push_field;
use crate::ingest::Merchants;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::{Card, Kind};
use crate::ledger::{Row, RowNote};
use crate::money::{self, push_fen};
use crate::pipeline::Settled;
use crate::pipeline::groups::{Class, Entry, MANY_ROWS, Slot};

/// Rows of a journal file whose memory is touched together before they
/// are written (see `Journal::file`).
const TOUCH_BATCH_ROWS: usize = 16;

pub const JOURNAL_HEADER: &str =
    "settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail\n";

/// Everything the journal of a run explains, borrowed from the run.
pub struct Journal<'a> {
    settled: &'a Settled,
    /// Positions in `settled.adjustments` (line order), by (merchant,
    /// settlement date, line).
    adjustment_order: Vec<u32>,
    /// Each category's debit and credit rate as a percentage, written once.
    percents: Vec<[String; 2]>,
    /// Each category's `category,card,rate,capped` columns for every
    /// (card, capped) pair (`columns_at`), written once.
    columns: Vec<[String; 9]>,
    merchants: &'a Merchants,
    settings: &'a Settings,
}

/// A settlement row as a journal file visits it: the merchant, the row's
/// place among the merchant's rows, and its transaction groups' range in
/// `Groups::of_merchant`.
pub struct RowAt {
    merchant: u32,
    row: u32,
    groups: std::ops::Range<u32>,
}

/// One posting's grouping columns; empty where they do not apply.
pub(super) struct Grouping<'a> {
    /// `category,card,rate,capped` as written (see `Journal::columns`).
    columns: &'a str,
    count: Option<u64>,
}

impl Default for Grouping<'_> {
    fn default() -> Self {
        Grouping {
            columns: ",,,",
            count: None,
        }
    }
}

/// Where a (card, capped) pair's text lies among a category's
/// `Journal::columns`: cards debit, credit, none; capped none, no, yes.
fn columns_at(card: Card, capped: Option<bool>) -> usize {
    let card_at = match card {
        Card::Debit => 0,
        Card::Credit => 1,
        Card::NotApplicable => 2,
    };
    let capped_at = match capped {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    card_at * 3 + capped_at
}

/// One settlement row's postings as they are written.
pub(super) struct RowWriter<'o> {
    out: &'o mut String,
    prefix: &'o str,
    seq: u32,
    check: Check,
    digits: itoa::Buffer,
}

impl RowWriter<'_> {
    /// Writes a posting whose detail is any text (quoted if need be).
    pub(super) fn post(
        &mut self,
        kind: PostingKind,
        amount_fen: i128,
        grouping: &Grouping,
        source: &str,
        detail: &str,
    ) {
        self.head(kind, amount_fen, grouping, source);
        push_field(self.out, detail);
        self.out.push('\n');
    }

    /// Writes a posting whose detail `write` appends straight to the file:
    /// a sentence of fixed words, numbers and rates, which never needs
    /// quoting (the hot path: most postings are of this kind).
    fn post_plain(
        &mut self,
        kind: PostingKind,
        amount_fen: i128,
        grouping: &Grouping,
        source: &str,
        write: impl FnOnce(&mut String, &mut itoa::Buffer),
    ) {
        self.head(kind, amount_fen, grouping, source);
        let start = self.out.len();
        write(self.out, &mut self.digits);
        debug_assert!(
            !self.out[start..].contains([',', '"', '\n', '\r']),
            "a plain detail needs no quoting"
        );
        self.out.push('\n');
    }

    /// Every column but the detail, each followed by its comma.
    fn head(&mut self, kind: PostingKind, amount_fen: i128, grouping: &Grouping, source: &str) {
        self.seq += 1;
        self.check
            .add(kind, amount_fen, grouping.count.unwrap_or_default());
        let out = &mut *self.out;
        out.push_str(self.prefix);
        out.push_str(self.digits.format(self.seq));
        out.push(',');
        out.push_str(kind.code());
        out.push(',');
        push_fen(out, amount_fen);
        out.push(',');
        out.push_str(grouping.columns);
        out.push(',');
        if let Some(count) = grouping.count {
            out.push_str(self.digits.format(count));
        }
        out.push(',');
        if !source.is_empty() {
            push_field(out, source);
        }
        out.push(',');
    }
}

/// Appends "1 purchase" or "3 purchases".
pub(super) fn push_count(
    out: &mut String,
    digits: &mut itoa::Buffer,
    count: u64,
    one: &str,
    many: &str,
) {
    out.push_str(digits.format(count));
    out.push(' ');
    out.push_str(if count == 1 { one } else { many });
}

fn card_word(card: Card) -> &'static str {
    match card {
        Card::Debit => "debit card",
        Card::Credit => "credit card",
        Card::NotApplicable => "card",
    }
}

impl<'a> Journal<'a> {
    pub fn new(
        settled: &'a Settled,
        merchants: &'a Merchants,
        settings: &'a Settings,
    ) -> Journal<'a> {
        let adjustments = &settled.adjustments;
        let mut adjustment_order: Vec<u32> = (0..adjustments.len() as u32).collect();
        adjustment_order.sort_by_key(|&at| {
            let a = &adjustments[at as usize];
            (a.merchant, a.settlement_day, at)
        });
        let categories = &settings.categories;
        let percents = (0..categories.len() as u16)
            .map(|index| {
                let category = categories.get(index);
                [
                    money::format_percent(category.debit_rate_ppm),
                    money::format_percent(category.credit_rate_ppm),
                ]
            })
            .collect();
        let columns = (0..categories.len() as u16)
            .map(|index| {
                let category = categories.get(index);
                let mut name = String::new();
                push_field(&mut name, &category.name);
                std::array::from_fn(|at| {
                    let (card, rate_ppm) = match at / 3 {
                        0 => ("debit", Some(category.debit_rate_ppm)),
                        1 => ("credit", Some(category.credit_rate_ppm)),
                        _ => ("", None),
                    };
                    let rate = rate_ppm.map(money::format_rate).unwrap_or_default();
                    let capped = ["", "no", "yes"][at % 3];
                    format!("{name},{card},{rate},{capped}")
                })
            })
            .collect();
        Journal {
            settled,
            adjustment_order,
            percents,
            columns,
            merchants,
            settings,
        }
    }

    /// The rows of each settlement date in merchant order, each with where
    /// its transaction groups lie. Found here, merchant by merchant, where
    /// a merchant's rows and groups are read in order: a date's file visits
    /// merchants far apart, and a search of each row's groups there was a
    /// chain of cache misses per row.
    pub fn days(&self) -> Vec<(Day, Vec<RowAt>)> {
        let lag = self.settings.settlement_lag_days;
        let days = self
            .settled
            .rows
            .iter()
            .flatten()
            .map(|row| row.settlement_day);
        let (Some(first), Some(last)) = (days.clone().min(), days.max()) else {
            return Vec::new();
        };
        // A run spans a few hundred dates at most: one list per date, found
        // by offset, not by a map lookup per row.
        let mut by_day: Vec<Vec<RowAt>> = (first..=last).map(|_| Vec::new()).collect();
        for (merchant, rows) in self.settled.rows.iter().enumerate() {
            let groups = self.settled.groups.of_merchant(merchant as u32);
            let mut cursor = 0;
            for (k, row) in rows.iter().enumerate() {
                let business_day = row.settlement_day - lag;
                while cursor < groups.len() && groups[cursor].0 < business_day {
                    cursor += 1;
                }
                let start = cursor;
                while cursor < groups.len() && groups[cursor].0 == business_day {
                    cursor += 1;
                }
                by_day[(row.settlement_day - first) as usize].push(RowAt {
                    merchant: merchant as u32,
                    row: k as u32,
                    groups: start as u32..cursor as u32,
                });
            }
        }
        (first..=last)
            .zip(by_day)
            .filter(|(_, rows)| !rows.is_empty())
            .collect()
    }

    /// One journal file: the postings of `day`'s rows, each row checked
    /// against its postings; `Err` names the first row that does not agree.
    pub fn file(&self, day: Day, positions: &[RowAt]) -> Result<String, String> {
        let date = calendar::format_date(day);
        let mut out = String::with_capacity(JOURNAL_HEADER.len() + positions.len() * 400);
        out.push_str(JOURNAL_HEADER);
        let mut prefix = String::with_capacity(date.len() + 40);
        for batch in positions.chunks(TOUCH_BATCH_ROWS) {
            // A date's rows lie one per merchant, far apart in memory: read
            // what each row of a batch needs first, so that the batch's
            // cache misses overlap instead of each stalling its row.
            let settled = self.settled;
            let touched = batch.iter().fold(0u64, |acc, at| {
                let (m, k) = (at.merchant as usize, at.row as usize);
                let groups = settled.groups.of_merchant(at.merchant);
                acc ^ settled.rows[m][k].payout_fen as u64
                    ^ settled.notes[m][k].held_after_fen as u64
                    ^ groups
                        .get(at.groups.start as usize)
                        .map_or(0, |entry| entry.3.amount_fen as u64)
            });
            std::hint::black_box(touched);
            self.file_batch(&mut out, &mut prefix, &date, batch)?;
        }
        Ok(out)
    }

    fn file_batch(
        &self,
        out: &mut String,
        prefix: &mut String,
        date: &str,
        batch: &[RowAt],
    ) -> Result<(), String> {
        for at in batch {
            let (merchant, k) = (at.merchant, at.row as usize);
            let row = &self.settled.rows[merchant as usize][k];
            let note = &self.settled.notes[merchant as usize][k];
            let groups = &self.settled.groups.of_merchant(merchant)
                [at.groups.start as usize..at.groups.end as usize];
            prefix.clear();
            prefix.push_str(date);
            prefix.push(',');
            push_field(prefix, self.merchants.id_of(merchant));
            prefix.push(',');
            let mut writer = RowWriter {
                out,
                prefix,
                seq: 0,
                check: Check::default(),
                digits: itoa::Buffer::new(),
            };
            self.post_row(&mut writer, merchant, row, note, groups);
            let check = writer.check;
            check.against(row).map_err(|problem| {
                format!(
                    "journal of merchant {} for {date}: {problem}",
                    self.merchants.id_of(merchant)
                )
            })?;
        }
        Ok(())
    }

    fn post_row(
        &self,
        w: &mut RowWriter,
        merchant_index: u32,
        row: &Row,
        note: &RowNote,
        day_groups: &[Entry],
    ) {
        let settings = self.settings;
        let merchant = self.merchants.get(merchant_index);
        let lag = settings.settlement_lag_days;
        let business_day = row.settlement_day - lag;
        let none = Grouping::default();

        if row.carried_in_fen != 0 {
            let (source, detail) = match note.carried_from {
                Some(from) => {
                    let from = calendar::format_date(from);
                    let detail = format!("Balance owed from your settlement of {from}");
                    (format!("from={from}"), detail)
                }
                None => (
                    "from=state".to_string(),
                    "Balance owed from an earlier run's settlement".to_string(),
                ),
            };
            w.post(
                PostingKind::CarriedIn,
                row.carried_in_fen.into(),
                &none,
                &source,
                &detail,
            );
        }

        debug_assert!(day_groups.iter().all(|(day, ..)| *day == business_day));
        self.post_transactions(w, day_groups);

        for adjustment in self.adjustments_of(merchant_index, row.settlement_day) {
            w.post(
                PostingKind::Adjustment,
                adjustment.amount_fen.into(),
                &none,
                &format!("adj_id={}", adjustment.id),
                &adjustment.reason,
            );
        }

        events::post_deposit(w, settings, merchant, row, note, business_day);
        events::post_final(w, settings, merchant, row, note);

        w.post(
            PostingKind::Payout,
            -i128::from(row.payout_fen),
            &none,
            "",
            if row.payout_fen == 0 {
                "Nothing to pay out in this settlement"
            } else {
                "Paid to your bank account"
            },
        );
        if row.carried_out_fen != 0 {
            w.post(
                PostingKind::CarriedOut,
                -i128::from(row.carried_out_fen),
                &none,
                "",
                "Shortfall carried into your next settlement",
            );
        }
    }

    /// The `source` of a per-transaction posting: its ids.
    fn transaction_source(&self, row: u32) -> String {
        if row == MANY_ROWS {
            return String::new();
        }
        let parsed = &self.settled.parsed;
        let txn = &parsed.txns[row as usize];
        let id = String::from_utf8_lossy(parsed.txn_id(txn));
        match txn.kind {
            Kind::Purchase => format!("txn_id={id}"),
            Kind::Refund | Kind::Void => format!(
                "txn_id={id};orig_txn_id={}",
                String::from_utf8_lossy(parsed.orig_txn_id(txn))
            ),
        }
    }

    /// Purchases with their fees, voids, then refunds with the fee they
    /// return, per group in slot order (per transaction with `--detail`).
    fn post_transactions(&self, w: &mut RowWriter, day_groups: &[Entry]) {
        let mut at = 0;
        while at < day_groups.len() {
            let (_, slot, row, _) = day_groups[at];
            // The groups that share this one's posting: capped and uncapped
            // purchases of one (category, card) make one purchase posting.
            let same = day_groups[at..]
                .iter()
                .take_while(|(_, other, other_row, _)| {
                    (other.uncapped(), *other_row) == (slot.uncapped(), row)
                })
                .count();
            let members = &day_groups[at..at + same];
            at += same;
            let source = self.transaction_source(row);
            let count: u64 = members.iter().map(|(_, _, _, s)| u64::from(s.count)).sum();
            let amount_fen: i128 = members
                .iter()
                .map(|(_, _, _, s)| i128::from(s.amount_fen))
                .sum();
            let percent = self.percent(slot);
            let card = card_word(slot.card());
            let columns = &self.columns[slot.category() as usize];
            let grouping = |count, capped| Grouping {
                columns: &columns[columns_at(slot.card(), capped)],
                count: Some(count),
            };
            match slot.class() {
                Class::Purchase => {
                    w.post_plain(
                        PostingKind::Purchase,
                        amount_fen,
                        &grouping(count, None),
                        &source,
                        |out, digits| {
                            push_count(out, digits, count, card, card);
                            out.push_str(if count == 1 {
                                " purchase"
                            } else {
                                " purchases"
                            });
                        },
                    );
                    for (_, member, _, sums) in members {
                        let count = u64::from(sums.count);
                        w.post_plain(
                            PostingKind::Fee,
                            -i128::from(sums.fee_fen),
                            &grouping(count, Some(member.capped())),
                            &source,
                            |out, digits| {
                                out.push_str(if member.capped() {
                                    "Fee at the category's cap (rate "
                                } else {
                                    "Fee at "
                                });
                                out.push_str(percent);
                                out.push_str(if member.capped() { ") on " } else { " on " });
                                push_count(out, digits, count, "purchase", "purchases");
                            },
                        );
                    }
                }
                Class::Voided => {
                    w.post_plain(
                        PostingKind::Void,
                        0,
                        &grouping(count, None),
                        &source,
                        |out, digits| {
                            push_count(out, digits, count, "row", "rows");
                            out.push_str(
                                " of purchases cancelled by same-day voids: no amount and no fee",
                            );
                        },
                    );
                }
                Class::Refund => {
                    w.post_plain(
                        PostingKind::Refund,
                        -amount_fen,
                        &grouping(count, None),
                        &source,
                        |out, digits| {
                            push_count(out, digits, count, "refund", "refunds");
                            out.push_str(" of ");
                            out.push_str(card);
                            out.push_str(" purchases");
                        },
                    );
                    if self.settings.refund_fee == RefundFee::Proportional {
                        let returned: i128 = members
                            .iter()
                            .map(|(_, _, _, s)| i128::from(s.fee_fen))
                            .sum();
                        w.post_plain(
                            PostingKind::FeeReturned,
                            returned,
                            &grouping(count, None),
                            &source,
                            |out, _| {
                                out.push_str("Fee returned in proportion to the amount refunded")
                            },
                        );
                    }
                }
            }
        }
    }

    /// The rate of a slot's (category, card) as a percentage; empty
    /// without a card.
    fn percent(&self, slot: Slot) -> &str {
        let [debit, credit] = &self.percents[slot.category() as usize];
        match slot.card() {
            Card::Debit => debit,
            Card::Credit => credit,
            Card::NotApplicable => "",
        }
    }

    /// The accepted adjustments booked into a merchant's settlement, in
    /// line order.
    fn adjustments_of(
        &self,
        merchant: u32,
        settlement_day: Day,
    ) -> impl Iterator<Item = &'a Adjustment> + '_ {
        let adjustments = &self.settled.adjustments;
        let key = move |at: &u32| {
            let a = &adjustments[*at as usize];
            (a.merchant, a.settlement_day)
        };
        let first = self
            .adjustment_order
            .partition_point(|at| key(at) < (merchant, settlement_day));
        self.adjustment_order[first..]
            .iter()
            .take_while(move |at| key(at) == (merchant, settlement_day))
            .map(move |at| &adjustments[*at as usize])
    }
}
