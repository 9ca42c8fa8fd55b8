//! The postings of a settlement row's deposit and deactivation events
//! (docs/JOURNAL.md, seq 6 and 7): what the ledger decided (`RowNote`),
//! told with the figures that decided it, so that a merchant can check a
//! hold, a release, a forfeit or a deactivation fee and its waiver.

use super::PostingKind;
use super::render::{Grouping, RowWriter, push_count};
use crate::calendar::{self, Day};
use crate::config::Settings;
use crate::ingest::Merchant;
use crate::ledger::{DepositNote, FinalNote, Row, RowNote};
use crate::money;

/// The deposit's posting of a row, if a deposit rule moved (or decided)
/// anything in it (RULES.md 3.5, 3.6).
pub(super) fn post_deposit(
    w: &mut RowWriter,
    settings: &Settings,
    merchant: &Merchant,
    row: &Row,
    note: &RowNote,
    business_day: Day,
) {
    if note.deposit == DepositNote::None
        || (note.deposit == DepositNote::Hold && row.deposit_held_fen == 0)
    {
        return;
    }
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

/// The deactivation fee of a final settlement, or its waiver (退机).
pub(super) fn post_final(
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
    let mut after = String::new();
    push_count(
        &mut after,
        &mut itoa::Buffer::new(),
        days.unsigned_abs().into(),
        "day",
        "days",
    );
    let source = format!(
        "activated_on={};deactivated_on={};days={days};return_window_days={window_days};purchases_seen={}",
        calendar::format_date(merchant.activated_on),
        calendar::format_date(deactivated_on),
        if note.purchases_seen { "yes" } else { "no" }
    );
    let detail = if waived {
        format!(
            "Deactivation fee (注销扣费) waived: the device was returned unused {after} after activation, within the {window_days}-day return window (退机)"
        )
    } else if days < window_days {
        format!(
            "Deactivation fee (注销扣费): deactivated {after} after activation, within the {window_days}-day return window, but the device was used (a purchase was accepted)"
        )
    } else {
        format!(
            "Deactivation fee (注销扣费): deactivated {after} after activation, after the {window_days}-day return window"
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
