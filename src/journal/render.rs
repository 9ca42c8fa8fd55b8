//! Writing `journal-YYYY-MM-DD.csv`: each settlement row's postings in the
//! fixed order of docs/JOURNAL.md, checked against the row as they are
//! written, so that a journal that does not sum to its row never reaches
//! the disk.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::groups::{Class, Groups, Slot, Sums};
use super::{Check, PostingKind};
use crate::calendar::{self, Day};
use crate::config::{RefundFee, Settings};
use crate::csv_field::push_field;
use crate::ingest::adjustments::Adjustment;
use crate::ingest::txn::Card;
use crate::ingest::{Merchant, Merchants};
use crate::ledger::{DepositNote, FinalNote, Row, RowNote};
use crate::money::{self, push_fen};
use crate::pipeline::Settled;

pub const JOURNAL_HEADER: &str =
    "settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail\n";

/// Everything the journal of a run explains, borrowed from the run.
pub struct Journal<'a> {
    rows: &'a [Vec<Row>],
    notes: &'a [Vec<RowNote>],
    groups: &'a Groups,
    /// Accepted adjustments, in line order.
    adjustments: &'a [Adjustment],
    /// Positions in `adjustments`, by (merchant, settlement date, line).
    adjustment_order: Vec<u32>,
    merchants: &'a Merchants,
    settings: &'a Settings,
}

/// One posting's grouping columns; empty where they do not apply.
#[derive(Default)]
struct Grouping<'a> {
    category: &'a str,
    card: Option<Card>,
    rate_ppm: Option<u32>,
    capped: Option<bool>,
    count: Option<u64>,
}

/// One settlement row's postings as they are written.
struct RowWriter<'o> {
    out: &'o mut String,
    prefix: String,
    seq: u32,
    check: Check,
}

impl RowWriter<'_> {
    fn post(
        &mut self,
        kind: PostingKind,
        amount_fen: i128,
        grouping: &Grouping,
        source: &str,
        detail: &str,
    ) {
        self.seq += 1;
        self.check
            .add(kind, amount_fen, grouping.count.unwrap_or_default());
        let out = &mut *self.out;
        out.push_str(&self.prefix);
        let _ = write!(out, "{},{},", self.seq, kind.code());
        push_fen(out, amount_fen);
        out.push(',');
        push_field(out, grouping.category);
        out.push(',');
        out.push_str(match grouping.card {
            Some(Card::Debit) => "debit",
            Some(Card::Credit) => "credit",
            _ => "",
        });
        out.push(',');
        if let Some(rate_ppm) = grouping.rate_ppm {
            out.push_str(&money::format_rate(rate_ppm));
        }
        out.push(',');
        out.push_str(match grouping.capped {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        });
        out.push(',');
        if let Some(count) = grouping.count {
            let _ = write!(out, "{count}");
        }
        out.push(',');
        push_field(out, source);
        out.push(',');
        push_field(out, detail);
        out.push('\n');
    }
}

/// "1 purchase", "3 purchases".
fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

fn card_word(card: Card) -> &'static str {
    match card {
        Card::Debit => "debit card",
        Card::Credit => "credit card",
        Card::NotApplicable => "card",
    }
}

/// A rate as a percentage, exactly: 3500 ppm is "0.35%".
fn percent(rate_ppm: u32) -> String {
    // One percent is 10,000 ppm.
    let whole = rate_ppm / 10_000;
    let frac = rate_ppm % 10_000;
    if frac == 0 {
        return format!("{whole}%");
    }
    let digits = format!("{frac:04}");
    format!("{whole}.{}%", digits.trim_end_matches('0'))
}

impl<'a> Journal<'a> {
    pub fn new(
        settled: &'a Settled,
        groups: &'a Groups,
        merchants: &'a Merchants,
        settings: &'a Settings,
    ) -> Journal<'a> {
        let adjustments = &settled.adjustments;
        let mut adjustment_order: Vec<u32> = (0..adjustments.len() as u32).collect();
        adjustment_order.sort_by_key(|&at| {
            let a = &adjustments[at as usize];
            (a.merchant, a.settlement_day, at)
        });
        Journal {
            rows: &settled.rows,
            notes: &settled.notes,
            groups,
            adjustments,
            adjustment_order,
            merchants,
            settings,
        }
    }

    /// The rows of each settlement date, as (merchant, row) positions in
    /// merchant order.
    pub fn days(&self) -> Vec<(Day, Vec<(u32, u32)>)> {
        let mut by_day: BTreeMap<Day, Vec<(u32, u32)>> = BTreeMap::new();
        for (merchant, rows) in self.rows.iter().enumerate() {
            for (k, row) in rows.iter().enumerate() {
                by_day
                    .entry(row.settlement_day)
                    .or_default()
                    .push((merchant as u32, k as u32));
            }
        }
        by_day.into_iter().collect()
    }

    /// One journal file: the postings of `day`'s rows, each row checked
    /// against its postings; `Err` names the first row that does not agree.
    pub fn file(&self, day: Day, positions: &[(u32, u32)]) -> Result<String, String> {
        let date = calendar::format_date(day);
        let mut out = String::with_capacity(JOURNAL_HEADER.len() + positions.len() * 400);
        out.push_str(JOURNAL_HEADER);
        for &(merchant, k) in positions {
            let row = &self.rows[merchant as usize][k as usize];
            let note = &self.notes[merchant as usize][k as usize];
            let mut prefix = String::with_capacity(date.len() + 24);
            prefix.push_str(&date);
            prefix.push(',');
            push_field(&mut prefix, self.merchants.id_of(merchant));
            prefix.push(',');
            let mut writer = RowWriter {
                out: &mut out,
                prefix,
                seq: 0,
                check: Check::default(),
            };
            self.post_row(&mut writer, merchant, row, note);
            let check = writer.check;
            check.against(row).map_err(|problem| {
                format!(
                    "journal of merchant {} for {date}: {problem}",
                    self.merchants.id_of(merchant)
                )
            })?;
        }
        Ok(out)
    }

    fn post_row(&self, w: &mut RowWriter, merchant_index: u32, row: &Row, note: &RowNote) {
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

        let groups = self.groups.of_merchant(merchant_index);
        let first = groups.partition_point(|(day, _, _)| *day < business_day);
        let day_groups: Vec<(Slot, Sums)> = groups[first..]
            .iter()
            .take_while(|(day, _, _)| *day == business_day)
            .map(|(_, slot, sums)| (*slot, *sums))
            .collect();
        self.post_transactions(w, &day_groups);

        let booked = self.adjustments_of(merchant_index, row.settlement_day);
        for adjustment in booked {
            w.post(
                PostingKind::Adjustment,
                adjustment.amount_fen.into(),
                &none,
                &format!("adj_id={}", adjustment.id),
                &adjustment.reason,
            );
        }

        self.post_deposit(w, merchant, row, note, business_day);
        post_final(w, settings, merchant, row, note);

        w.post(
            PostingKind::Payout,
            -i128::from(row.payout_fen),
            &none,
            "",
            "Paid to your bank account",
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

    /// Purchases with their fees, voids, then refunds with the fee they
    /// return, per group in slot order.
    fn post_transactions(&self, w: &mut RowWriter, day_groups: &[(Slot, Sums)]) {
        let categories = &self.settings.categories;
        let rate_of = |slot: Slot| {
            let category = categories.get(slot.category());
            match slot.card() {
                Card::Debit => Some(category.debit_rate_ppm),
                Card::Credit => Some(category.credit_rate_ppm),
                Card::NotApplicable => None,
            }
        };
        let grouping = |slot: Slot, count: u32| Grouping {
            category: &categories.get(slot.category()).name,
            card: Some(slot.card()).filter(|card| *card != Card::NotApplicable),
            rate_ppm: rate_of(slot),
            capped: None,
            count: Some(u64::from(count)),
        };
        let mut at = 0;
        while at < day_groups.len() {
            let (slot, _) = day_groups[at];
            // The groups that share this one's posting: capped and uncapped
            // purchases of one (category, card) make one purchase posting.
            let same = day_groups[at..]
                .iter()
                .take_while(|(other, _)| other.uncapped() == slot.uncapped())
                .count();
            let members = &day_groups[at..at + same];
            at += same;
            let count: u32 = members.iter().map(|(_, sums)| sums.count).sum();
            let amount_fen: i128 = members.iter().map(|(_, s)| i128::from(s.amount_fen)).sum();
            let category = &categories.get(slot.category()).name;
            let card = card_word(slot.card());
            match slot.class() {
                Class::Purchase => {
                    let what = plural(count.into(), "purchase", "purchases");
                    w.post(
                        PostingKind::Purchase,
                        amount_fen,
                        &grouping(slot, count),
                        "",
                        &format!("{what} by {card} in {category}"),
                    );
                    for (member, sums) in members {
                        let rate = rate_of(*member).map(percent).unwrap_or_default();
                        let what = plural(sums.count.into(), "purchase", "purchases");
                        let detail = if member.capped() {
                            format!("Fee at {rate} on {what}, each capped at the category's cap")
                        } else {
                            format!("Fee at {rate} on {what}")
                        };
                        w.post(
                            PostingKind::Fee,
                            -i128::from(sums.fee_fen),
                            &Grouping {
                                capped: Some(member.capped()),
                                ..grouping(*member, sums.count)
                            },
                            "",
                            &detail,
                        );
                    }
                }
                Class::Voided => {
                    let what = plural(count.into(), "row", "rows");
                    w.post(
                        PostingKind::Void,
                        0,
                        &grouping(slot, count),
                        "",
                        &format!(
                            "{what}: {card} purchases in {category} cancelled by same-day voids, no amount and no fee"
                        ),
                    );
                }
                Class::Refund => {
                    let what = plural(count.into(), "refund", "refunds");
                    w.post(
                        PostingKind::Refund,
                        -amount_fen,
                        &grouping(slot, count),
                        "",
                        &format!("{what} of {card} purchases in {category}"),
                    );
                    if self.settings.refund_fee == RefundFee::Proportional {
                        let returned: i128 =
                            members.iter().map(|(_, s)| i128::from(s.fee_fen)).sum();
                        w.post(
                            PostingKind::FeeReturned,
                            returned,
                            &grouping(slot, count),
                            "",
                            "Fee returned in proportion to the amount refunded",
                        );
                    }
                }
            }
        }
    }

    /// The accepted adjustments booked into a merchant's settlement, in
    /// line order.
    fn adjustments_of(&self, merchant: u32, settlement_day: Day) -> Vec<&'a Adjustment> {
        let key = |at: &u32| {
            let a = &self.adjustments[*at as usize];
            (a.merchant, a.settlement_day)
        };
        let first = self
            .adjustment_order
            .partition_point(|at| key(at) < (merchant, settlement_day));
        self.adjustment_order[first..]
            .iter()
            .take_while(|at| key(at) == (merchant, settlement_day))
            .map(|at| &self.adjustments[*at as usize])
            .collect()
    }

    fn post_deposit(
        &self,
        w: &mut RowWriter,
        merchant: &Merchant,
        row: &Row,
        note: &RowNote,
        business_day: Day,
    ) {
        let settings = self.settings;
        let none = Grouping::default();
        let deposit = money::format_fen(merchant.deposit_fen.into());
        let window_first = merchant.activated_on;
        let window_last = window_first + settings.deposit_refund_window_days - 1;
        let window = format!(
            "{}..{}",
            calendar::format_date(window_first),
            calendar::format_date(window_last)
        );
        let target = money::format_fen(settings.deposit_refund_volume_fen.into());
        let volume = money::format_fen(note.window_volume_fen.into());
        match note.deposit {
            DepositNote::None => {}
            DepositNote::Hold => {
                if row.deposit_held_fen > 0 {
                    let held = money::format_fen(row.deposit_held_fen.into());
                    let held_after = money::format_fen(note.held_after_fen.into());
                    w.post(
                        PostingKind::DepositHold,
                        -i128::from(row.deposit_held_fen),
                        &none,
                        &format!(
                            "deposit={deposit};held={held_after};window={window};target={target};volume={volume}"
                        ),
                        &format!(
                            "Deposit (押金) hold: {held} held, {held_after} of {deposit} so far; it comes back once net volume reaches {target} within {window}"
                        ),
                    );
                }
            }
            DepositNote::ReleaseForVolume => {
                let reached_on = calendar::format_date(business_day);
                w.post(
                    PostingKind::DepositRelease,
                    row.deposit_released_fen.into(),
                    &none,
                    &format!(
                        "deposit={deposit};window={window};target={target};volume={volume};reached_on={reached_on}"
                    ),
                    &format!(
                        "Deposit released: net volume {volume} reached the {target} target on {reached_on}, inside the window {window}"
                    ),
                );
            }
            DepositNote::ReleaseAtFinal => {
                let deactivated_on = merchant
                    .deactivated_on
                    .map(calendar::format_date)
                    .unwrap_or_default();
                w.post(
                    PostingKind::DepositReleaseFinal,
                    row.deposit_released_fen.into(),
                    &none,
                    &format!("deposit={deposit};deactivated_on={deactivated_on}"),
                    &format!(
                        "Deposit released in the final settlement: the merchant was deactivated on {deactivated_on}"
                    ),
                );
            }
            DepositNote::Forfeit => {
                let forfeited = money::format_fen(row.deposit_forfeited_fen.into());
                w.post(
                    PostingKind::DepositForfeit,
                    row.deposit_forfeited_fen.into(),
                    &none,
                    &format!("deposit={deposit};window={window};target={target};volume={volume}"),
                    &format!(
                        "Deposit forfeited: the window {window} ended with net volume {volume}, below the {target} target; the {forfeited} held is kept (memo: no money moves in this row)"
                    ),
                );
            }
        }
    }
}

/// The deactivation fee of a final settlement, or its waiver (退机).
fn post_final(
    w: &mut RowWriter,
    settings: &Settings,
    merchant: &Merchant,
    row: &Row,
    note: &RowNote,
) {
    let (kind, waived) = match note.final_settlement {
        FinalNote::NotFinal => return,
        FinalNote::FeeTaken => (PostingKind::DeactivationFee, false),
        FinalNote::FeeWaived => (PostingKind::DeactivationFeeWaived, true),
    };
    let deactivated_on = merchant.deactivated_on.unwrap_or(merchant.activated_on);
    let days = deactivated_on - merchant.activated_on;
    let window_days = settings.return_window_days;
    let source = format!(
        "activated_on={};deactivated_on={};days={days};return_window_days={window_days};purchases_seen={}",
        calendar::format_date(merchant.activated_on),
        calendar::format_date(deactivated_on),
        if note.purchases_seen { "yes" } else { "no" }
    );
    let detail = if waived {
        format!(
            "Deactivation fee (注销扣费) waived: the device was returned unused {days} days after activation, within the {window_days}-day return window (退机)"
        )
    } else if days < window_days {
        format!(
            "Deactivation fee (注销扣费): deactivated {days} days after activation, within the {window_days}-day return window, but the device was used (a purchase was accepted)"
        )
    } else {
        format!(
            "Deactivation fee (注销扣费): deactivated {days} days after activation, after the {window_days}-day return window"
        )
    };
    w.post(
        kind,
        -i128::from(row.deactivation_fee_fen),
        &Grouping::default(),
        &source,
        &detail,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_exact_percentages() {
        assert_eq!(percent(3_500), "0.35%");
        assert_eq!(percent(4_900), "0.49%");
        assert_eq!(percent(0), "0%");
        assert_eq!(percent(10_000), "1%");
        assert_eq!(percent(3_805), "0.3805%");
    }
}
