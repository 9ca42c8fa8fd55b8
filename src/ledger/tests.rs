//! One test per ledger rule, each worked out by hand in its comments.

use super::*;
use crate::calendar::parse_date;

fn day(text: &str) -> Day {
    parse_date(text.as_bytes()).expect("a test date")
}

/// Lag 1, target 1000.00 within 5 days, fee 199.00, return window 30 days.
fn settings() -> Settings {
    crate::config::parse(
        std::path::Path::new("test.toml"),
        r#"
[deposit]
refund_volume = "1000.00"
refund_window_days = 5
[deactivation]
fee = "199.00"
return_window_days = 30
[[category]]
name = "general"
default = true
debit_rate = "0"
credit_rate = "0"
"#,
    )
    .expect("test settings")
}

fn merchant(activated: &str, deposit_fen: i64, deactivated: Option<&str>) -> Merchant {
    Merchant {
        id: "M".into(),
        mcc: 5999,
        activated_on: day(activated),
        deposit_fen,
        deactivated_on: deactivated.map(day),
    }
}

fn purchases(on: &str, amount_fen: i128) -> (Day, DayTotals) {
    (
        day(on),
        DayTotals {
            txn_count: 1,
            purchases_fen: amount_fen,
            refunds_fen: 0,
            fees_fen: 0,
        },
    )
}

fn settle(
    merchant: &Merchant,
    days: &[(Day, DayTotals)],
    adjustments: &[(Day, i128)],
    span: (&str, &str),
) -> Vec<Row> {
    let input = MerchantInput {
        index: 0,
        merchant,
        opening: MerchantState::new(),
        days,
        adjustments,
        purchased_in_run: days.iter().any(|(_, t)| t.txn_count > 0),
    };
    let span = Span {
        start: day(span.0),
        horizon: day(span.1),
    };
    settle_merchant(&input, &settings(), Some(span))
        .expect("amounts fit")
        .0
}

#[test]
fn deposit_is_collected_across_settlements() {
    // Deposit 299.00; proceeds 100.00, 150.00, 100.00 (volume stays < 1000).
    // Held 100.00, then 150.00, then the remaining 49.00: payouts 0, 0, 51.00.
    let m = merchant("2026-11-01", 29_900, None);
    let days = [
        purchases("2026-11-01", 10_000),
        purchases("2026-11-02", 15_000),
        purchases("2026-11-03", 10_000),
    ];
    let rows = settle(&m, &days, &[], ("2026-11-01", "2026-11-03"));
    let held: Vec<i64> = rows.iter().map(|r| r.deposit_held_fen).collect();
    let paid: Vec<i64> = rows.iter().map(|r| r.payout_fen).collect();
    assert_eq!(held, [10_000, 15_000, 4_900]);
    assert_eq!(paid, [0, 0, 5_100]);
}

#[test]
fn deposit_is_released_when_volume_reaches_the_target() {
    // 11-01: 600.00, all 299.00 held (payout 301.00). 11-02: 500.00, volume
    // 1100.00 ≥ 1000.00, so the settlement of 11-03 releases 299.00 and holds
    // nothing: payout 500.00 + 299.00 = 799.00.
    let m = merchant("2026-11-01", 29_900, None);
    let days = [
        purchases("2026-11-01", 60_000),
        purchases("2026-11-02", 50_000),
    ];
    let rows = settle(&m, &days, &[], ("2026-11-01", "2026-11-02"));
    assert_eq!(
        (rows[0].deposit_held_fen, rows[0].payout_fen),
        (29_900, 30_100)
    );
    assert_eq!(rows[1].settlement_day, day("2026-11-03"));
    assert_eq!(
        (
            rows[1].deposit_held_fen,
            rows[1].deposit_released_fen,
            rows[1].payout_fen
        ),
        (0, 29_900, 79_900)
    );
}

#[test]
fn deposit_is_forfeited_at_the_window_end_in_a_row_of_its_own() {
    // Window 11-01..11-05. 11-01: 100.00, all held. Nothing else happens; the
    // window ends on 11-05 below target, so the settlement of 11-06 is a row
    // of its own: 100.00 forfeited, payout 0.
    let m = merchant("2026-11-01", 29_900, None);
    let rows = settle(
        &m,
        &[purchases("2026-11-01", 10_000)],
        &[],
        ("2026-11-01", "2026-11-07"),
    );
    assert_eq!(rows.len(), 2);
    let forfeit = rows[1];
    assert_eq!(forfeit.settlement_day, day("2026-11-06"));
    assert_eq!(
        (
            forfeit.txn_count,
            forfeit.deposit_forfeited_fen,
            forfeit.payout_fen
        ),
        (0, 10_000, 0)
    );
}

#[test]
fn final_settlement_releases_the_deposit_and_takes_the_fee() {
    // Activated 10-20 (window ended 10-24, before the run: no deposit events).
    // Deactivated 11-02: final settlement 11-03. Deposit not collecting, so no
    // release; fee 199.00 against proceeds 50.00: carried -149.00.
    let m = merchant("2026-10-20", 29_900, Some("2026-11-02"));
    let rows = settle(
        &m,
        &[purchases("2026-11-02", 5_000)],
        &[],
        ("2026-11-01", "2026-11-02"),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].deactivation_fee_fen,
            rows[0].payout_fen,
            rows[0].carried_out_fen
        ),
        (19_900, 0, -14_900)
    );
    assert_eq!(rows[0].deposit_released_fen, 0);

    // Collecting deposit: 11-01 holds 100.00; final settlement of 11-02
    // (deactivated) releases it: 100.00 + 50.00 − 199.00 = −49.00 carried.
    let m = merchant("2026-11-01", 29_900, Some("2026-11-02"));
    let days = [
        purchases("2026-11-01", 10_000),
        purchases("2026-11-02", 5_000),
    ];
    let rows = settle(&m, &days, &[], ("2026-11-01", "2026-11-02"));
    assert_eq!(rows[0].deposit_held_fen, 10_000);
    let last = rows[1];
    assert_eq!(
        (
            last.deposit_held_fen,
            last.deposit_released_fen,
            last.deactivation_fee_fen
        ),
        (0, 10_000, 19_900)
    );
    assert_eq!((last.payout_fen, last.carried_out_fen), (0, -4_900));
}

#[test]
fn fee_is_waived_for_an_unused_device_returned_in_time() {
    // Deactivated 2 days after activation, no purchase: fee 0, all-zero row.
    let m = merchant("2026-11-01", 10_000, Some("2026-11-03"));
    let rows = settle(&m, &[], &[], ("2026-11-01", "2026-11-04"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].settlement_day, day("2026-11-04"));
    assert_eq!(
        rows[0],
        Row {
            settlement_day: day("2026-11-04"),
            ..Row::default()
        }
    );
}

#[test]
fn negative_balance_is_carried_and_then_cleared() {
    // Final settlement takes 199.00 from nothing: carried -199.00. A later
    // adjustment of +250.00 meets carried_in -199.00: payout 51.00.
    let m = merchant("2026-10-01", 0, Some("2026-11-01"));
    let rows = settle(
        &m,
        &[purchases("2026-11-01", 0)],
        &[(day("2026-11-03"), 25_000)],
        ("2026-11-01", "2026-11-02"),
    );
    assert_eq!(rows[0].carried_out_fen, -19_900);
    assert_eq!(
        (
            rows[1].carried_in_fen,
            rows[1].proceeds_fen,
            rows[1].payout_fen
        ),
        (-19_900, 5_100, 5_100)
    );
}

#[test]
fn zero_deposit_and_zero_target_release_on_the_first_window_date() {
    // refund_volume 0 is met at the end of the first window date the run
    // covers; a deposit of 0 is released all the same, in a row of its own.
    let mut settings = settings();
    settings.deposit_refund_volume_fen = 0;
    let m = merchant("2026-11-03", 0, None);
    let input = MerchantInput {
        index: 0,
        merchant: &m,
        opening: MerchantState::new(),
        days: &[],
        adjustments: &[],
        purchased_in_run: false,
    };
    let span = Span {
        start: day("2026-11-01"),
        horizon: day("2026-11-09"),
    };
    let (rows, _, state) = settle_merchant(&input, &settings, Some(span)).expect("amounts fit");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].settlement_day, day("2026-11-04"));
    assert_eq!(state.deposit_status, DepositStatus::Released);
}

#[test]
fn a_release_for_volume_comes_before_the_release_at_final_settlement() {
    // Deactivated on 11-02, when volume also reaches 1000.00: the deposit is
    // released for volume; the final settlement still takes the fee.
    let m = merchant("2026-11-01", 29_900, Some("2026-11-02"));
    let days = [
        purchases("2026-11-01", 10_000),
        purchases("2026-11-02", 100_000),
    ];
    let mut input = MerchantInput {
        index: 0,
        merchant: &m,
        opening: MerchantState::new(),
        days: &days,
        adjustments: &[],
        purchased_in_run: true,
    };
    let span = Some(Span {
        start: day("2026-11-01"),
        horizon: day("2026-11-02"),
    });
    let (rows, _, _) = settle_merchant(&input, &settings(), span).expect("amounts fit");
    assert_eq!(
        (rows[1].deposit_released_fen, rows[1].deactivation_fee_fen),
        (10_000, 19_900)
    );
    // 100.00 held + 1000.00 proceeds − 199.00 fee = 901.00 paid.
    assert_eq!(rows[1].payout_fen, 90_100);
    input.days = &days[..1];
    let (rows, _, state) = settle_merchant(&input, &settings(), span).expect("amounts fit");
    assert_eq!(rows[1].deposit_released_fen, 10_000);
    assert_eq!(state.deposit_status, DepositStatus::Released);
}

#[test]
fn a_merchant_deactivated_before_the_start_has_no_deposit_events() {
    // Activated 10-30, window 10-30..11-03, deactivated 11-01. The run starts
    // 11-02: the final settlement (and its release of the deposit) belonged
    // to an earlier run, so no forfeit on 11-03 and no row at all.
    let m = merchant("2026-10-30", 12_050, Some("2026-11-01"));
    let rows = settle(&m, &[], &[], ("2026-11-02", "2026-11-09"));
    assert_eq!(rows, []);
    // An adjustment still gets its row, with no hold: the deposit is closed.
    let rows = settle(
        &m,
        &[],
        &[(day("2026-11-05"), 10_000)],
        ("2026-11-02", "2026-11-09"),
    );
    assert_eq!(
        (rows.len(), rows[0].deposit_held_fen, rows[0].payout_fen),
        (1, 0, 10_000)
    );
}

#[test]
fn a_row_that_does_not_fit_64_bit_fen_stops_the_run() {
    // Adjustments are summed in i128; a settlement row of more than
    // i64::MAX fen cannot be written exactly, so the ledger refuses it.
    let m = merchant("2026-11-01", 0, None);
    let huge = [(day("2026-11-02"), i128::from(i64::MAX) + 1)];
    let input = MerchantInput {
        index: 7,
        merchant: &m,
        opening: MerchantState::new(),
        days: &[],
        adjustments: &huge,
        purchased_in_run: false,
    };
    let span = Span {
        start: day("2026-11-01"),
        horizon: day("2026-11-01"),
    };
    let result = settle_merchant(&input, &settings(), Some(span));
    assert_eq!(
        result.err(),
        Some(Overflow {
            merchant: 7,
            settlement_day: day("2026-11-02")
        })
    );
}
