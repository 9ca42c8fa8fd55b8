//! The per-merchant ledger: settlement rows, the deposit (押金) state
//! machine, the final settlement with its deactivation fee (注销扣费) and
//! return-window waiver (退机), and balances carried forward
//! (RULES.md 3.4 to 3.6).
//!
//! A merchant's ledger depends only on that merchant's inputs, so merchants
//! settle in parallel. This module must not read input or write output.
#![forbid(unsafe_code)]

#[cfg(test)]
mod tests;

use crate::calendar::Day;
use crate::config::Settings;
use crate::ingest::Merchant;

/// The accepted transactions of one merchant on one business date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub txn_count: u64,
    pub purchases_fen: i128,
    pub refunds_fen: i128,
    pub fees_fen: i128,
}

impl DayTotals {
    pub fn merge(&mut self, other: &DayTotals) {
        self.txn_count += other.txn_count;
        self.purchases_fen += other.purchases_fen;
        self.refunds_fen += other.refunds_fen;
        self.fees_fen += other.fees_fen;
    }
}

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepositStatus {
    Collecting,
    Released,
    Forfeited,
    /// Its window ended before this run's start: an earlier run settled it.
    Closed,
}

/// A merchant's standing between settlements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MerchantState {
    pub deposit_status: DepositStatus,
    pub deposit_held_fen: i128,
    /// Net purchase volume over the deposit window so far.
    pub window_volume_fen: i128,
    /// The balance carried forward, always ≤ 0.
    pub carried_fen: i128,
    pub final_settled: bool,
    pub ever_purchased: bool,
}

impl MerchantState {
    /// The state of a merchant that no earlier run has seen.
    pub fn new() -> MerchantState {
        MerchantState {
            deposit_status: DepositStatus::Collecting,
            deposit_held_fen: 0,
            window_volume_fen: 0,
            carried_fen: 0,
            final_settled: false,
            ever_purchased: false,
        }
    }
}

impl Default for MerchantState {
    fn default() -> Self {
        MerchantState::new()
    }
}

/// The business dates a run covers (RULES.md 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Day,
    pub horizon: Day,
}

/// One line of a settlement file (RULES.md 3.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Row<A = i64> {
    pub settlement_day: Day,
    pub merchant: u32,
    pub txn_count: u64,
    pub purchases_fen: A,
    pub refunds_fen: A,
    pub fees_fen: A,
    pub adjustments_fen: A,
    pub carried_in_fen: A,
    pub proceeds_fen: A,
    pub deposit_held_fen: A,
    pub deposit_released_fen: A,
    pub deposit_forfeited_fen: A,
    pub deactivation_fee_fen: A,
    pub payout_fen: A,
    pub carried_out_fen: A,
}

/// A settlement row's amount columns, in the settlement file's order
/// (RULES.md 4): what `Row::amounts` gives and `Row::with_amounts` takes.
pub const AMOUNT_COLUMNS: [&str; 12] = [
    "purchases",
    "refunds",
    "fees",
    "adjustments",
    "carried_in",
    "proceeds",
    "deposit_held",
    "deposit_released",
    "deposit_forfeited",
    "deactivation_fee",
    "payout",
    "carried_out",
];

impl<A: Copy> Row<A> {
    /// The amounts in the order of `AMOUNT_COLUMNS`.
    pub fn amounts(&self) -> [A; 12] {
        [
            self.purchases_fen,
            self.refunds_fen,
            self.fees_fen,
            self.adjustments_fen,
            self.carried_in_fen,
            self.proceeds_fen,
            self.deposit_held_fen,
            self.deposit_released_fen,
            self.deposit_forfeited_fen,
            self.deactivation_fee_fen,
            self.payout_fen,
            self.carried_out_fen,
        ]
    }

    /// A row from its amounts in the order of `AMOUNT_COLUMNS`.
    pub fn with_amounts(settlement_day: Day, merchant: u32, txn_count: u64, a: [A; 12]) -> Row<A> {
        let [
            purchases_fen,
            refunds_fen,
            fees_fen,
            adjustments_fen,
            carried_in_fen,
            proceeds_fen,
            deposit_held_fen,
            deposit_released_fen,
            deposit_forfeited_fen,
            deactivation_fee_fen,
            payout_fen,
            carried_out_fen,
        ] = a;
        Row {
            settlement_day,
            merchant,
            txn_count,
            purchases_fen,
            refunds_fen,
            fees_fen,
            adjustments_fen,
            carried_in_fen,
            proceeds_fen,
            deposit_held_fen,
            deposit_released_fen,
            deposit_forfeited_fen,
            deactivation_fee_fen,
            payout_fen,
            carried_out_fen,
        }
    }
}

impl Row<i128> {
    /// The row in `i64` fen, as stored and written; `None` when an amount
    /// does not fit (over 92 trillion CNY in one row).
    pub fn narrow(&self) -> Option<Row> {
        let wide = self.amounts();
        let mut narrow = [0i64; 12];
        for (to, from) in narrow.iter_mut().zip(wide) {
            *to = i64::try_from(from).ok()?;
        }
        Some(Row::with_amounts(
            self.settlement_day,
            self.merchant,
            self.txn_count,
            narrow,
        ))
    }
}

/// The deposit rule that applied in a settlement row (RULES.md 3.5, 3.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DepositNote {
    /// No deposit rule applied: nothing to hold, or the deposit is settled.
    #[default]
    None,
    /// The hold rule applied (it may have held 0.00).
    Hold,
    ReleaseForVolume,
    ReleaseAtFinal,
    Forfeit,
}

/// Whether a row is the merchant's final settlement, and how its fee went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinalNote {
    #[default]
    NotFinal,
    FeeTaken,
    /// Deactivated inside the return window with no purchase ever (退机).
    FeeWaived,
}

/// Why a settlement row's deposit, deactivation and carried figures are
/// what they are: the decisions the posting journal explains, taken here so
/// that the journal never decides a rule again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowNote {
    pub deposit: DepositNote,
    /// The deposit held after this row.
    pub held_after_fen: i64,
    /// Net purchase volume of the deposit window at the end of the row's
    /// business date (settlement date − lag), earlier runs included.
    pub window_volume_fen: i64,
    pub final_settlement: FinalNote,
    /// Whether an accepted purchase was ever seen, as the final settlement
    /// judged it (false in other rows).
    pub purchases_seen: bool,
    /// The merchant's previous settlement date in this run, where the row's
    /// `carried_in` comes from; `None` when it comes from the starting state.
    pub carried_from: Option<Day>,
}

/// A settlement row whose amounts do not fit `i64` fen: the run stops
/// rather than write a wrong figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    pub merchant: u32,
    pub settlement_day: Day,
}

/// Everything one merchant's settlement needs.
pub struct MerchantInput<'a> {
    pub index: u32,
    pub merchant: &'a Merchant,
    pub opening: MerchantState,
    /// Accepted transactions by business date, ascending.
    pub days: &'a [(Day, DayTotals)],
    /// Accepted adjustments summed by settlement date, ascending.
    pub adjustments: &'a [(Day, i128)],
    /// An accepted purchase of this merchant in this run (voided ones too).
    pub purchased_in_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum DepositEvent {
    // Declared in the order of RULES.md 3.6 for events on one date.
    ReleaseForVolume,
    ReleaseAtFinal,
    Forfeit,
}

/// The deposit's first event in the run, if any: its business date and kind.
fn deposit_event(
    input: &MerchantInput,
    settings: &Settings,
    span: Span,
    opening: &MerchantState,
) -> Option<(Day, DepositEvent)> {
    if opening.deposit_status != DepositStatus::Collecting {
        return None;
    }
    let merchant = input.merchant;
    let window_first = merchant.activated_on;
    let window_last = merchant.activated_on + settings.deposit_refund_window_days - 1;
    let mut candidates = Vec::with_capacity(3);
    let check_from = window_first.max(span.start);
    let check_to = window_last.min(span.horizon);
    if check_from <= check_to {
        // Net volume at the end of each window date, from the first one the
        // run covers; only dates with transactions can change it.
        let target = i128::from(settings.deposit_refund_volume_fen);
        let volume_on = |day: Day| {
            input
                .days
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, t)| t.purchases_fen - t.refunds_fen)
                .sum::<i128>()
        };
        let mut volume = opening.window_volume_fen + volume_on(check_from);
        let mut release_day = (volume >= target).then_some(check_from);
        for &(day, totals) in input
            .days
            .iter()
            .filter(|(day, _)| (check_from + 1..=check_to).contains(day))
        {
            if release_day.is_some() {
                break;
            }
            volume += totals.purchases_fen - totals.refunds_fen;
            release_day = (volume >= target).then_some(day);
        }
        if let Some(day) = release_day {
            candidates.push((day, DepositEvent::ReleaseForVolume));
        }
    }
    if let Some(last_day) = merchant.deactivated_on
        && !opening.final_settled
        && (span.start..=span.horizon).contains(&last_day)
    {
        candidates.push((last_day, DepositEvent::ReleaseAtFinal));
    }
    if (span.start..=span.horizon).contains(&window_last) {
        candidates.push((window_last, DepositEvent::Forfeit));
    }
    candidates.into_iter().min()
}

/// What one merchant's settlement yields: its rows in settlement-date
/// order, a note per row (the same order), and its closing state.
pub type Settlement = (Vec<Row>, Vec<RowNote>, MerchantState);

/// Settles one merchant over the run.
pub fn settle_merchant(
    input: &MerchantInput,
    settings: &Settings,
    span: Option<Span>,
) -> Result<Settlement, Overflow> {
    let mut state = input.opening;
    state.ever_purchased |= input.purchased_in_run;
    let Some(span) = span else {
        return Ok((Vec::new(), Vec::new(), state));
    };
    let merchant = input.merchant;
    let lag = settings.settlement_lag_days;
    let window_last = merchant.activated_on + settings.deposit_refund_window_days - 1;
    // What lies before the start belongs to earlier runs (RULES.md 2): a
    // window that ended there, or a final settlement there, which released
    // any deposit still collecting.
    let deactivated_before_start = merchant.deactivated_on.is_some_and(|day| day < span.start);
    if state.deposit_status == DepositStatus::Collecting
        && (window_last < span.start || deactivated_before_start)
    {
        state.deposit_status = DepositStatus::Closed;
    }
    state.final_settled |= deactivated_before_start;
    let event = deposit_event(input, settings, span, &state);
    let final_day = merchant
        .deactivated_on
        .filter(|day| !state.final_settled && (span.start..=span.horizon).contains(day));

    // Every settlement date on which something happens, ascending.
    let mut settlement_days: Vec<Day> = input.days.iter().map(|(day, _)| day + lag).collect();
    settlement_days.extend(input.adjustments.iter().map(|(day, _)| *day));
    settlement_days.extend(event.map(|(day, _)| day + lag));
    settlement_days.extend(final_day.map(|day| day + lag));
    settlement_days.sort_unstable();
    settlement_days.dedup();

    let mut rows = Vec::with_capacity(settlement_days.len());
    let mut notes = Vec::with_capacity(settlement_days.len());
    let (mut day_cursor, mut adjustment_cursor) = (0, 0);
    let window = merchant.activated_on..=window_last;
    let mut window_volume_fen = state.window_volume_fen;
    let mut previous_settlement: Option<Day> = None;
    for settlement_day in settlement_days {
        let mut note = RowNote {
            carried_from: previous_settlement,
            ..RowNote::default()
        };
        let mut row: Row<i128> = Row {
            settlement_day,
            merchant: input.index,
            ..Row::default()
        };
        if let Some((_, totals)) = input
            .days
            .get(day_cursor)
            .filter(|(day, _)| day + lag == settlement_day)
        {
            day_cursor += 1;
            if window.contains(&(settlement_day - lag)) {
                window_volume_fen += totals.purchases_fen - totals.refunds_fen;
            }
            row.txn_count = totals.txn_count;
            row.purchases_fen = totals.purchases_fen;
            row.refunds_fen = totals.refunds_fen;
            row.fees_fen = totals.fees_fen;
        }
        if let Some((_, amount)) = input
            .adjustments
            .get(adjustment_cursor)
            .filter(|(day, _)| *day == settlement_day)
        {
            adjustment_cursor += 1;
            row.adjustments_fen = *amount;
        }
        row.carried_in_fen = state.carried_fen;
        row.proceeds_fen = row.purchases_fen - row.refunds_fen - row.fees_fen
            + row.adjustments_fen
            + row.carried_in_fen;
        let is_final = final_day.is_some_and(|day| day + lag == settlement_day);
        match event.filter(|(day, _)| day + lag == settlement_day) {
            Some((_, kind @ (DepositEvent::ReleaseForVolume | DepositEvent::ReleaseAtFinal))) => {
                note.deposit = if kind == DepositEvent::ReleaseForVolume {
                    DepositNote::ReleaseForVolume
                } else {
                    DepositNote::ReleaseAtFinal
                };
                row.deposit_released_fen = state.deposit_held_fen;
                state.deposit_held_fen = 0;
                state.deposit_status = DepositStatus::Released;
            }
            Some((_, DepositEvent::Forfeit)) => {
                note.deposit = DepositNote::Forfeit;
                row.deposit_forfeited_fen = state.deposit_held_fen;
                state.deposit_held_fen = 0;
                state.deposit_status = DepositStatus::Forfeited;
            }
            None => {
                let deposit_fen = i128::from(merchant.deposit_fen);
                if state.deposit_status == DepositStatus::Collecting
                    && state.deposit_held_fen < deposit_fen
                    && !is_final
                {
                    note.deposit = DepositNote::Hold;
                    row.deposit_held_fen = row
                        .proceeds_fen
                        .max(0)
                        .min(deposit_fen - state.deposit_held_fen);
                    state.deposit_held_fen += row.deposit_held_fen;
                }
            }
        }
        if is_final {
            state.final_settled = true;
            let waived = !state.ever_purchased
                && i64::from(final_day.unwrap_or_default()) - i64::from(merchant.activated_on)
                    < i64::from(settings.return_window_days);
            row.deactivation_fee_fen = if waived {
                0
            } else {
                i128::from(settings.deactivation_fee_fen)
            };
            note.purchases_seen = state.ever_purchased;
            note.final_settlement = if waived {
                FinalNote::FeeWaived
            } else {
                FinalNote::FeeTaken
            };
        }
        let net = row.proceeds_fen - row.deposit_held_fen + row.deposit_released_fen
            - row.deactivation_fee_fen;
        row.payout_fen = net.max(0);
        row.carried_out_fen = net.min(0);
        state.carried_fen = row.carried_out_fen;
        let overflow = Overflow {
            merchant: input.index,
            settlement_day,
        };
        note.held_after_fen = i64::try_from(state.deposit_held_fen).map_err(|_| overflow)?;
        note.window_volume_fen = i64::try_from(window_volume_fen).map_err(|_| overflow)?;
        rows.push(row.narrow().ok_or(overflow)?);
        notes.push(note);
        previous_settlement = Some(settlement_day);
    }
    assert_eq!(
        day_cursor,
        input.days.len(),
        "every transaction day has its row"
    );
    assert_eq!(
        adjustment_cursor,
        input.adjustments.len(),
        "every adjustment has its row"
    );

    // The window volume carried to the next run: window days up to the horizon.
    let window = merchant.activated_on..=window_last.min(span.horizon);
    state.window_volume_fen += input
        .days
        .iter()
        .filter(|(day, _)| window.contains(day))
        .map(|(_, totals)| totals.purchases_fen - totals.refunds_fen)
        .sum::<i128>();
    Ok((rows, notes, state))
}
