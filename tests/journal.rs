//! The posting journal (docs/JOURNAL.md), one test per posting kind. Every
//! expected posting is worked out by hand from /work/shared/spec/RULES.md in
//! the comments beside it, and each test compares whole journal lines.
//!
//! A journal line has 12 columns:
//!
//!   settlement_date,merchant_id,seq,kind,amount,category,card,rate,capped,count,source,detail
//!
//! so a posting with no grouping columns and no source reads
//! `…,kind,AMOUNT,,,,,,,DETAIL` (seven commas between amount and detail), and
//! one with a source but no grouping columns `…,kind,AMOUNT,,,,,,SOURCE,DETAIL`.
//! A detail holding a comma is quoted (RFC 4180 minimal quoting).
//!
//! Unless a test says otherwise: timezone +08:00, lag 1, half_up, refund fee
//! kept, common::BASE_CATEGORIES in this order: public_welfare (8062, rate 0),
//! dining (5812, 0.0049 / 0.0049), lodging (7011, 0.0038 / 0.0049, caps
//! 20.00 / 30.00), travel, general (default, 0.0038 / 0.0049). Merchants
//! activated 2026-01-01 have a 90-day deposit window that ended long before
//! the run, so the deposit plays no part for them.
//!
//! `assert_row` lists: cnt purch refunds fees adj c_in proceeds held released
//! forfeited deact payout c_out.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// The lines of `journal-DATE.csv` for one merchant, in file order, as the
/// engine wrote them (without their LF). Checks the header, that the file
/// ends with LF, and that no record spans two lines (so that lines are
/// records).
#[track_caller]
fn journal_lines(run: &Run, date: &str, merchant: &str) -> Vec<String> {
    let name = format!("journal-{date}.csv");
    let text = run.text(&name);
    assert!(text.ends_with('\n'), "{name} must end with LF");
    assert!(!text.contains('\r'), "{name} must use LF line ends only");
    let mut lines = text.split_terminator('\n');
    assert_eq!(lines.next(), Some(JOURNAL_HEADER), "{name} header");
    assert_eq!(
        parse_csv(&text).len(),
        text.split_terminator('\n').count(),
        "{name}: a record spans lines"
    );
    let prefix = format!("{date},{merchant},");
    lines
        .filter(|line| line.starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// Asserts the journal lines of one merchant's row, whole and in order.
#[track_caller]
fn assert_journal(run: &Run, date: &str, merchant: &str, expected: &[&str]) {
    let got = journal_lines(run, date, merchant);
    if got != expected {
        let mut msg = format!("journal-{date}.csv, merchant {merchant}:\n");
        for k in 0..got.len().max(expected.len()) {
            let want = expected.get(k).copied().unwrap_or("(none)");
            let have = got.get(k).map_or("(none)", String::as_str);
            let mark = if want == have { "  " } else { "!!" };
            msg.push_str(&format!("{mark} expected {want}\n   engine   {have}\n"));
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------
// carried_in, carried_out and payout

/// M1 (general, old): a purchase on 11-01, its full refund on 11-02 (the
/// shortfall is carried), a credit purchase on 11-03 (it pays it back).
fn carried_case() -> Case {
    Case::new(
        &Cfg::base(),
        &["M1,5999,2026-01-01,0.00,"],
        &[
            "P1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "R1,M1,2026-11-02 10:00:00,refund,100.00,,P1,",
            "P2,M1,2026-11-03 10:00:00,purchase,300.00,credit,,",
        ],
    )
}

#[test]
fn carried_out_posts_the_shortfall_and_payout_posts_zero() {
    let r = carried_case().run().ok();
    // 11-02: 100.00 − round(100 × 0.0038 = 0.38) = 99.62 paid
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    assert_journal(
        &r,
        "2026-11-02",
        "M1",
        &[
            "2026-11-02,M1,1,purchase,100.00,general,debit,0.0038,,1,,1 debit card purchase",
            "2026-11-02,M1,2,fee,-0.38,general,debit,0.0038,no,1,,Fee at 0.38% on 1 purchase",
            // payout −99.62: the money leaves the account to the bank
            "2026-11-02,M1,3,payout,-99.62,,,,,,,Paid to your bank account",
        ],
    );
    // 11-03: the refund of 100.00 (kept: the 0.38 fee stays charged) → −100.00:
    // payout max(0, −100) = 0, carried_out min(0, −100) = −100.00
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 0.00 100.00 0.00 0.00 0.00 -100.00 0.00 0.00 0.00 0.00 0.00 -100.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            // the refund takes the refunded purchase's category, card and rate
            "2026-11-03,M1,1,refund,-100.00,general,debit,0.0038,,1,,1 refund of debit card purchases",
            // a 0.00 payout is still posted
            "2026-11-03,M1,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            // carried_out −100.00 posts +100.00: −100 + 0 + 100 = 0, the row balances
            "2026-11-03,M1,3,carried_out,100.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
}

#[test]
fn carried_in_from_the_previous_settlement_of_the_same_run() {
    let r = carried_case().run().ok();
    // 11-04: 300.00 − round(300 × 0.0049 = 1.47) − 100.00 carried = 198.53
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 300.00 0.00 1.47 0.00 -100.00 198.53 0.00 0.00 0.00 0.00 198.53 0.00",
    );
    assert_journal(
        &r,
        "2026-11-04",
        "M1",
        &[
            // first in the row: the balance owed from M1's row of 11-03
            "2026-11-04,M1,1,carried_in,-100.00,,,,,,from=2026-11-03,Balance owed from your settlement of 2026-11-03",
            "2026-11-04,M1,2,purchase,300.00,general,credit,0.0049,,1,,1 credit card purchase",
            "2026-11-04,M1,3,fee,-1.47,general,credit,0.0049,no,1,,Fee at 0.49% on 1 purchase",
            // −100 + 300 − 1.47 − 198.53 = 0
            "2026-11-04,M1,4,payout,-198.53,,,,,,,Paid to your bank account",
        ],
    );
}

#[test]
fn carried_in_from_the_starting_state_of_a_daily_run() {
    // Run 1 covers 11-01 .. 11-02: the shortfall of 11-03 is its last carried_out.
    let cfg = Cfg::base();
    let merchants = ["M1,5999,2026-01-01,0.00,"];
    let r1 = Case::new(
        &cfg,
        &merchants,
        &[
            "P1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "R1,M1,2026-11-02 10:00:00,refund,100.00,,P1,",
        ],
    )
    .args(&["--through", "2026-11-02"])
    .run()
    .ok();
    r1.assert_row(
        "2026-11-03",
        "M1",
        "1 0.00 100.00 0.00 0.00 0.00 -100.00 0.00 0.00 0.00 0.00 0.00 -100.00",
    );
    // Run 2 is the daily run of 11-03, from run 1's state.
    let prev = r1.dir.path().join("out");
    let r2 = Case::new(
        &cfg,
        &merchants,
        &["P2,M1,2026-11-03 10:00:00,purchase,300.00,credit,,"],
    )
    .args(&["--state-in", prev.to_str().unwrap()])
    .run()
    .ok();
    assert_eq!(r2.settlement_dates(), names(&["2026-11-04"]));
    // the same figures as one run: 300 − 1.47 − 100 = 198.53
    r2.assert_row(
        "2026-11-04",
        "M1",
        "1 300.00 0.00 1.47 0.00 -100.00 198.53 0.00 0.00 0.00 0.00 198.53 0.00",
    );
    assert_journal(
        &r2,
        "2026-11-04",
        "M1",
        &[
            // the previous row is in another run: from=state
            "2026-11-04,M1,1,carried_in,-100.00,,,,,,from=state,Balance owed from an earlier run's settlement",
            "2026-11-04,M1,2,purchase,300.00,general,credit,0.0049,,1,,1 credit card purchase",
            "2026-11-04,M1,3,fee,-1.47,general,credit,0.0049,no,1,,Fee at 0.49% on 1 purchase",
            "2026-11-04,M1,4,payout,-198.53,,,,,,,Paid to your bank account",
        ],
    );
}

// ---------------------------------------------------------------------------
// purchase and fee

#[test]
fn purchase_groups_go_in_category_order_then_debit_before_credit() {
    // M1 is dining (5812, 0.0049 both cards); D4 names 5999 (general) in its
    // mcc field. The file lists the credit purchase first: the journal goes
    // by category order (dining before general), then debit before credit.
    let r = Case::new(
        &Cfg::base(),
        &["M1,5812,2026-01-01,0.00,"],
        &[
            "D1,M1,2026-11-02 09:00:00,purchase,100.00,credit,,", // 0.49
            "D4,M1,2026-11-02 09:30:00,purchase,1000.00,debit,,5999", // general: 1000 × 0.0038 = 3.80
            "D2,M1,2026-11-02 10:00:00,purchase,200.00,debit,,",      // 200 × 0.0049 = 0.98
            "D3,M1,2026-11-02 11:00:00,purchase,50.00,debit,,",       // 0.245 → 0.25 (half up)
        ],
    )
    .run()
    .ok();
    // purchases 100 + 1000 + 200 + 50 = 1350.00; fees 0.49 + 3.80 + 0.98 + 0.25 = 5.52
    // proceeds 1350 − 5.52 = 1344.48
    r.assert_row(
        "2026-11-03",
        "M1",
        "4 1350.00 0.00 5.52 0.00 0.00 1344.48 0.00 0.00 0.00 0.00 1344.48 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            // dining debit: D2 + D3 = 250.00, fees 0.98 + 0.25 = 1.23 (each rounded on its own)
            "2026-11-03,M1,1,purchase,250.00,dining,debit,0.0049,,2,,2 debit card purchases",
            "2026-11-03,M1,2,fee,-1.23,dining,debit,0.0049,no,2,,Fee at 0.49% on 2 purchases",
            // dining credit: D1
            "2026-11-03,M1,3,purchase,100.00,dining,credit,0.0049,,1,,1 credit card purchase",
            "2026-11-03,M1,4,fee,-0.49,dining,credit,0.0049,no,1,,Fee at 0.49% on 1 purchase",
            // general debit: D4
            "2026-11-03,M1,5,purchase,1000.00,general,debit,0.0038,,1,,1 debit card purchase",
            "2026-11-03,M1,6,fee,-3.80,general,debit,0.0038,no,1,,Fee at 0.38% on 1 purchase",
            // 1350 − 5.52 − 1344.48 = 0
            "2026-11-03,M1,7,payout,-1344.48,,,,,,,Paid to your bank account",
        ],
    );
}

#[test]
fn fee_postings_split_uncapped_and_capped_and_rate_zero_posts_zero() {
    // L1 is lodging (7011): debit 0.0038 capped at 20.00, credit 0.0049 capped at 30.00.
    // W1 is public welfare (8062): rate 0.
    let r = Case::new(
        &Cfg::base(),
        &["L1,7011,2026-01-01,0.00,", "W1,8062,2026-01-01,0.00,"],
        &[
            "C1,L1,2026-11-02 10:00:00,purchase,10000.00,debit,,", // 38.00 → cap 20.00
            "C2,L1,2026-11-02 10:01:00,purchase,1000.00,debit,,",  // 3.80, under the cap
            "C3,L1,2026-11-02 10:02:00,purchase,6000.00,debit,,",  // 22.80 → cap 20.00
            "C4,L1,2026-11-02 10:03:00,purchase,6124.00,credit,,", // 30.0076 → 30.01 → cap 30.00
            "C5,W1,2026-11-02 10:00:00,purchase,80.00,debit,,",    // 0
        ],
    )
    .run()
    .ok();
    // purchases 10000 + 1000 + 6000 + 6124 = 23124.00; fees 20 + 3.80 + 20 + 30 = 73.80
    // proceeds 23124 − 73.80 = 23050.20
    r.assert_row(
        "2026-11-03",
        "L1",
        "4 23124.00 0.00 73.80 0.00 0.00 23050.20 0.00 0.00 0.00 0.00 23050.20 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "L1",
        &[
            // one purchase posting for the (lodging, debit) group, capped or not: 17000.00, 3 rows
            "2026-11-03,L1,1,purchase,17000.00,lodging,debit,0.0038,,3,,3 debit card purchases",
            // uncapped before capped: C2's 3.80
            "2026-11-03,L1,2,fee,-3.80,lodging,debit,0.0038,no,1,,Fee at 0.38% on 1 purchase",
            // C1 and C3 at the 20.00 cap: 40.00
            "2026-11-03,L1,3,fee,-40.00,lodging,debit,0.0038,yes,2,,Fee at the category's cap (rate 0.38%) on 2 purchases",
            "2026-11-03,L1,4,purchase,6124.00,lodging,credit,0.0049,,1,,1 credit card purchase",
            // 30.01 capped to 30.00
            "2026-11-03,L1,5,fee,-30.00,lodging,credit,0.0049,yes,1,,Fee at the category's cap (rate 0.49%) on 1 purchase",
            // 23124 − 3.80 − 40 − 30 − 23050.20 = 0
            "2026-11-03,L1,6,payout,-23050.20,,,,,,,Paid to your bank account",
        ],
    );
    // rate 0: the fee posting is written all the same, 0.00, rate "0"
    r.assert_row(
        "2026-11-03",
        "W1",
        "1 80.00 0.00 0.00 0.00 0.00 80.00 0.00 0.00 0.00 0.00 80.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "W1",
        &[
            "2026-11-03,W1,1,purchase,80.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-03,W1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-03,W1,3,payout,-80.00,,,,,,,Paid to your bank account",
        ],
    );
}

// ---------------------------------------------------------------------------
// void

#[test]
fn void_posts_zero_and_counts_the_purchase_and_its_void() {
    let r = Case::new(
        &Cfg::base(),
        &["M1,5999,2026-01-01,0.00,"],
        &[
            "V1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "V2,M1,2026-11-02 10:05:00,void,100.00,,V1,",
            "P1,M1,2026-11-02 11:00:00,purchase,50.00,credit,,", // 0.245 → 0.25
        ],
    )
    .run()
    .ok();
    // txn_count 3 (V1, V2, P1); only P1 moves money: 50 − 0.25 = 49.75
    r.assert_row(
        "2026-11-03",
        "M1",
        "3 50.00 0.00 0.25 0.00 0.00 49.75 0.00 0.00 0.00 0.00 49.75 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,50.00,general,credit,0.0049,,1,,1 credit card purchase",
            "2026-11-03,M1,2,fee,-0.25,general,credit,0.0049,no,1,,Fee at 0.49% on 1 purchase",
            // after every purchase group: the voided purchase's (category, card, rate),
            // count 2 = V1 and V2, amount 0.00, no capped column
            "2026-11-03,M1,3,void,0.00,general,debit,0.0038,,2,,2 rows of purchases cancelled by same-day voids: no amount and no fee",
            "2026-11-03,M1,4,payout,-49.75,,,,,,,Paid to your bank account",
        ],
    );
}

// ---------------------------------------------------------------------------
// refund and fee_returned

/// M1 (general): a 200.00 credit purchase on 11-01 (fee 0.98), refunds of
/// 50.00 and 30.00 on 11-02. W1 (public welfare): 100.00 on 11-01, 40.00
/// refunded on 11-02.
fn refund_case(refund_fee: &'static str) -> Run {
    Case::new(
        &Cfg {
            refund_fee,
            ..Cfg::base()
        },
        &["M1,5999,2026-01-01,0.00,", "W1,8062,2026-01-01,0.00,"],
        &[
            "P1,M1,2026-11-01 10:00:00,purchase,200.00,credit,,", // 200 × 0.0049 = 0.98
            "Q1,W1,2026-11-01 10:00:00,purchase,100.00,debit,,",  // 0
            "R1,M1,2026-11-02 10:00:00,refund,50.00,,P1,",
            "R2,M1,2026-11-02 11:00:00,refund,30.00,,P1,",
            "S1,W1,2026-11-02 10:00:00,refund,40.00,,Q1,",
        ],
    )
    .run()
    .ok()
}

#[test]
fn refund_under_kept_posts_no_fee_returned() {
    let r = refund_case("kept");
    // 200 − 0.98 = 199.02 on 11-02
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 200.00 0.00 0.98 0.00 0.00 199.02 0.00 0.00 0.00 0.00 199.02 0.00",
    );
    // 11-03: refunds 50 + 30 = 80.00, no fee back: −80.00 carried
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 0.00 80.00 0.00 0.00 0.00 -80.00 0.00 0.00 0.00 0.00 0.00 -80.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            // one group: both refunds of the (general, credit) purchase; no fee_returned after it
            "2026-11-03,M1,1,refund,-80.00,general,credit,0.0049,,2,,2 refunds of credit card purchases",
            "2026-11-03,M1,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            "2026-11-03,M1,3,carried_out,80.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
    assert_journal(
        &r,
        "2026-11-03",
        "W1",
        &[
            "2026-11-03,W1,1,refund,-40.00,public_welfare,debit,0,,1,,1 refund of debit card purchases",
            "2026-11-03,W1,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            "2026-11-03,W1,3,carried_out,40.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
    // no fee_returned anywhere in the run
    for date in r.settlement_dates() {
        let text = r.text(&format!("journal-{date}.csv"));
        assert!(!text.contains(",fee_returned,"), "journal-{date}.csv");
    }
}

#[test]
fn fee_returned_under_proportional_follows_each_refund_group() {
    let r = refund_case("proportional");
    // P1's fee 0.98. After R1: refunded 50, returned so far round(0.98 × 50 / 200 = 0.245)
    // = 0.25 (half up). After R2: refunded 80, round(0.98 × 80 / 200 = 0.392) = 0.39,
    // R2 returns 0.39 − 0.25 = 0.14. In the row: fees −0.39; −80 + 0.39 = −79.61 carried.
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 0.00 80.00 -0.39 0.00 0.00 -79.61 0.00 0.00 0.00 0.00 0.00 -79.61",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,refund,-80.00,general,credit,0.0049,,2,,2 refunds of credit card purchases",
            // 0.25 + 0.14 = 0.39 back to the merchant
            "2026-11-03,M1,2,fee_returned,0.39,general,credit,0.0049,,2,,Fee returned in proportion to the amount refunded",
            "2026-11-03,M1,3,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            // −80 + 0.39 + 0 + 79.61 = 0
            "2026-11-03,M1,4,carried_out,79.61,,,,,,,Shortfall carried into your next settlement",
        ],
    );
    // W1: the fee was 0, so 0.00 comes back, and the posting is still written
    r.assert_row(
        "2026-11-03",
        "W1",
        "1 0.00 40.00 0.00 0.00 0.00 -40.00 0.00 0.00 0.00 0.00 0.00 -40.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "W1",
        &[
            "2026-11-03,W1,1,refund,-40.00,public_welfare,debit,0,,1,,1 refund of debit card purchases",
            "2026-11-03,W1,2,fee_returned,0.00,public_welfare,debit,0,,1,,Fee returned in proportion to the amount refunded",
            "2026-11-03,W1,3,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            "2026-11-03,W1,4,carried_out,40.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
}

// ---------------------------------------------------------------------------
// adjustment

#[test]
fn adjustment_posts_its_id_as_source_and_its_reason_as_detail() {
    // start = horizon = 11-02: the run owns settlement 11-03 only.
    let r = Case::new(
        &Cfg::base(),
        &["M1,5999,2026-01-01,0.00,"],
        &["P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"], // 0.38
    )
    .adjustments(&[
        "A1,M1,2026-11-03,10.00,\"goodwill, per ticket 7\"",
        "A2,M1,2026-11-03,-5.50,manual charge",
    ])
    .run()
    .ok();
    // adjustments 10.00 − 5.50 = 4.50; 100 − 0.38 + 4.50 = 104.12
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.38 4.50 0.00 104.12 0.00 0.00 0.00 0.00 104.12 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,100.00,general,debit,0.0038,,1,,1 debit card purchase",
            "2026-11-03,M1,2,fee,-0.38,general,debit,0.0038,no,1,,Fee at 0.38% on 1 purchase",
            // one posting per adjustment, in line order; the reason holds a comma: quoted
            "2026-11-03,M1,3,adjustment,10.00,,,,,,adj_id=A1,\"goodwill, per ticket 7\"",
            "2026-11-03,M1,4,adjustment,-5.50,,,,,,adj_id=A2,manual charge",
            // 100 − 0.38 + 10 − 5.50 − 104.12 = 0
            "2026-11-03,M1,5,payout,-104.12,,,,,,,Paid to your bank account",
        ],
    );
}

// ---------------------------------------------------------------------------
// deposit_hold, deposit_release, deposit_release_final, deposit_forfeit
// (Cfg::deposit_small: refund_volume 1000.00, window 5 days)

#[test]
fn deposit_hold_posts_what_is_held_and_the_total_so_far() {
    // M1: public welfare (fee 0), deposit 300.00, window 11-01 .. 11-05.
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "D2,M1,2026-11-02 10:00:00,purchase,250.00,debit,,",
        ],
    )
    .run()
    .ok();
    // 11-02: held min(max(100, 0), 300 − 0) = 100.00; payout 0; volume 100.00
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-02",
        "M1",
        &[
            "2026-11-02,M1,1,purchase,100.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-02,M1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-02,M1,3,deposit_hold,-100.00,,,,,,deposit=300.00;held=100.00;window=2026-11-01..2026-11-05;target=1000.00;volume=100.00,\"Deposit (押金) hold: 100.00 held, 100.00 of 300.00 so far; it comes back once net volume reaches 1000.00 within 2026-11-01..2026-11-05\"",
            "2026-11-02,M1,4,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
    // 11-03: a partial hold: min(250, 300 − 100) = 200.00 of the 250 proceeds,
    // 300.00 held in all; payout 50.00; volume 100 + 250 = 350.00
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 250.00 0.00 0.00 0.00 0.00 250.00 200.00 0.00 0.00 0.00 50.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,250.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-03,M1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-03,M1,3,deposit_hold,-200.00,,,,,,deposit=300.00;held=300.00;window=2026-11-01..2026-11-05;target=1000.00;volume=350.00,\"Deposit (押金) hold: 200.00 held, 300.00 of 300.00 so far; it comes back once net volume reaches 1000.00 within 2026-11-01..2026-11-05\"",
            // 250 − 200 − 50 = 0
            "2026-11-03,M1,4,payout,-50.00,,,,,,,Paid to your bank account",
        ],
    );
}

#[test]
fn deposit_hold_is_not_posted_when_nothing_is_held() {
    // The hold rule applies, but proceeds are 0: min(max(0, 0), 300) = 0 → no posting.
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "R1,M1,2026-11-01 11:00:00,refund,100.00,,D1,",
        ],
    )
    .run()
    .ok();
    r.assert_row(
        "2026-11-02",
        "M1",
        "2 100.00 100.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-02",
        "M1",
        &[
            "2026-11-02,M1,1,purchase,100.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-02,M1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-02,M1,3,refund,-100.00,public_welfare,debit,0,,1,,1 refund of debit card purchases",
            "2026-11-02,M1,4,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
}

#[test]
fn deposit_release_for_volume_names_the_date_the_target_was_reached() {
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "D2,M1,2026-11-02 10:00:00,purchase,950.00,debit,,",
        ],
    )
    .run()
    .ok();
    // 11-02: 100.00 held
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    // B 11-02: volume 100 + 950 = 1050.00 ≥ 1000.00 → released in S 11-03: the 100.00
    // comes back, nothing held; payout 950 + 100 = 1050.00
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 950.00 0.00 0.00 0.00 0.00 950.00 0.00 100.00 0.00 0.00 1050.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,950.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-03,M1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-03,M1,3,deposit_release,100.00,,,,,,deposit=300.00;window=2026-11-01..2026-11-05;target=1000.00;volume=1050.00;reached_on=2026-11-02,\"Deposit released: net volume 1050.00 reached the 1000.00 target on 2026-11-02, inside the window 2026-11-01..2026-11-05\"",
            // 950 + 100 − 1050 = 0
            "2026-11-03,M1,4,payout,-1050.00,,,,,,,Paid to your bank account",
        ],
    );
}

#[test]
fn deposit_release_final_and_a_fee_taken_inside_the_return_window() {
    // M1: deposit 300.00, activated 11-01, deactivated 11-03 (2 days: inside the
    // 30-day return window), but it bought: the fee is taken.
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,2026-11-03"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "D2,M1,2026-11-02 10:00:00,purchase,50.00,debit,,",
            "D3,M1,2026-11-03 10:00:00,purchase,100.00,debit,,",
        ],
    )
    .run()
    .ok();
    // 11-02: 100 held; 11-03: 50 held (150 in all)
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 50.00 0.00 0.00 0.00 0.00 50.00 50.00 0.00 0.00 0.00 0.00 0.00",
    );
    // final settlement 11-03 + 1: no hold, the 150.00 held is released, fee 199.00:
    // 100 + 150 − 199 = 51.00
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 150.00 0.00 199.00 51.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-04",
        "M1",
        &[
            "2026-11-04,M1,1,purchase,100.00,public_welfare,debit,0,,1,,1 debit card purchase",
            "2026-11-04,M1,2,fee,0.00,public_welfare,debit,0,no,1,,Fee at 0% on 1 purchase",
            "2026-11-04,M1,3,deposit_release_final,150.00,,,,,,deposit=300.00;deactivated_on=2026-11-03,Deposit released in the final settlement: the merchant was deactivated on 2026-11-03",
            // days = 11-03 − 11-01 = 2 < 30, purchases_seen=yes
            "2026-11-04,M1,4,deactivation_fee,-199.00,,,,,,activated_on=2026-11-01;deactivated_on=2026-11-03;days=2;return_window_days=30;purchases_seen=yes,\"Deactivation fee (注销扣费): deactivated 2 days after activation, within the 30-day return window, but the device was used (a purchase was accepted)\"",
            // 100 + 150 − 199 − 51 = 0
            "2026-11-04,M1,5,payout,-51.00,,,,,,,Paid to your bank account",
        ],
    );
}

#[test]
fn deposit_forfeit_is_a_memo_posted_even_when_nothing_was_held() {
    // Window 11-01 .. 11-05; --through 11-05 so that it ends inside the run.
    // M1 (deposit 300.00): a purchase refunded the same day: proceeds 0, nothing
    // held, volume 100 − 100 = 0.00. M2 (deposit 50.00): 80.00 on 11-01, 50.00 held.
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,", "M2,8062,2026-11-01,50.00,"],
        &[
            "F1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "F2,M1,2026-11-02 11:00:00,refund,100.00,,F1,",
            "G1,M2,2026-11-01 10:00:00,purchase,80.00,debit,,",
        ],
    )
    .args(&["--through", "2026-11-05"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 100.00 100.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    // M2 11-02: held min(80, 50) = 50.00, payout 30.00
    r.assert_row(
        "2026-11-02",
        "M2",
        "1 80.00 0.00 0.00 0.00 0.00 80.00 50.00 0.00 0.00 0.00 30.00 0.00",
    );
    // The window ends 11-05 below 1000.00: forfeit in S 11-06, in rows of their own.
    r.assert_row(
        "2026-11-06",
        "M1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-06",
        "M1",
        &[
            // 0.00 forfeited: the memo posting is still written so the event can be shown
            "2026-11-06,M1,1,deposit_forfeit,0.00,,,,,,deposit=300.00;window=2026-11-01..2026-11-05;target=1000.00;volume=0.00,\"Deposit forfeited: the window 2026-11-01..2026-11-05 ended with net volume 0.00, below the 1000.00 target; the 0.00 held is kept (memo: no money moves in this row)\"",
            "2026-11-06,M1,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
    r.assert_row(
        "2026-11-06",
        "M2",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 50.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-06",
        "M2",
        &[
            // memo 50.00: the column's figure; it stays out of the balance (0.00 payout)
            "2026-11-06,M2,1,deposit_forfeit,50.00,,,,,,deposit=50.00;window=2026-11-01..2026-11-05;target=1000.00;volume=80.00,\"Deposit forfeited: the window 2026-11-01..2026-11-05 ended with net volume 80.00, below the 1000.00 target; the 50.00 held is kept (memo: no money moves in this row)\"",
            "2026-11-06,M2,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
}

// ---------------------------------------------------------------------------
// deactivation_fee and deactivation_fee_waived

#[test]
fn deactivation_fee_after_the_window_and_inside_it_after_a_voided_purchase() {
    // Cfg::deposit_small: 5-day deposit windows.
    // OLD trades on 11-01 and 11-03: start 11-01, horizon 11-03.
    // W3: activated 10-02, deactivated 11-01: 30 days, not < 30 → fee, though never
    //     used. Its window (10-02 .. 10-06) ended before the start: no deposit posting.
    // U1: deposit 0.00, activated 11-01, deactivated 11-03 (2 days), a purchase
    //     voided on 11-02: the device was used → fee. Its window 11-01 .. 11-05 is
    //     still collecting at the final settlement: a release of 0.00 is posted.
    let r = Case::new(
        &Cfg::deposit_small(),
        &[
            "OLD,8062,2026-01-01,0.00,",
            "W3,8062,2026-10-02,0.00,2026-11-01",
            "U1,8062,2026-11-01,0.00,2026-11-03",
        ],
        &[
            "O1,OLD,2026-11-01 10:00:00,purchase,10.00,debit,,",
            "O2,OLD,2026-11-03 10:00:00,purchase,10.00,debit,,",
            "V1,U1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "V2,U1,2026-11-02 10:05:00,void,100.00,,V1,",
        ],
    )
    .run()
    .ok();
    // W3: final settlement 11-02: fee 199.00 and nothing to take it from
    r.assert_row(
        "2026-11-02",
        "W3",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    assert_journal(
        &r,
        "2026-11-02",
        "W3",
        &[
            "2026-11-02,W3,1,deactivation_fee,-199.00,,,,,,activated_on=2026-10-02;deactivated_on=2026-11-01;days=30;return_window_days=30;purchases_seen=no,\"Deactivation fee (注销扣费): deactivated 30 days after activation, after the 30-day return window\"",
            "2026-11-02,W3,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            // −199 + 0 + 199 = 0
            "2026-11-02,W3,3,carried_out,199.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
    // U1 11-03: V1 and its void, nothing moves; a deposit of 0 is never held
    r.assert_row(
        "2026-11-03",
        "U1",
        "2 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "U1",
        &[
            "2026-11-03,U1,1,void,0.00,public_welfare,debit,0,,2,,2 rows of purchases cancelled by same-day voids: no amount and no fee",
            "2026-11-03,U1,2,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
    // U1 final settlement 11-04: released 0.00, fee 199.00 (a voided purchase counts)
    r.assert_row(
        "2026-11-04",
        "U1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    assert_journal(
        &r,
        "2026-11-04",
        "U1",
        &[
            "2026-11-04,U1,1,deposit_release_final,0.00,,,,,,deposit=0.00;deactivated_on=2026-11-03,Deposit released in the final settlement: the merchant was deactivated on 2026-11-03",
            "2026-11-04,U1,2,deactivation_fee,-199.00,,,,,,activated_on=2026-11-01;deactivated_on=2026-11-03;days=2;return_window_days=30;purchases_seen=yes,\"Deactivation fee (注销扣费): deactivated 2 days after activation, within the 30-day return window, but the device was used (a purchase was accepted)\"",
            "2026-11-04,U1,3,payout,0.00,,,,,,,Nothing to pay out in this settlement",
            "2026-11-04,U1,4,carried_out,199.00,,,,,,,Shortfall carried into your next settlement",
        ],
    );
}

#[test]
fn deactivation_fee_waived_posts_zero_with_purchases_seen_no() {
    // W1: activated 11-01, deactivated 11-03 (2 days), never used → waived.
    // W2: activated 11-01, deactivated 11-02 (1 day), never used → waived.
    // Both have deposit 0.00 and windows 11-01 .. 11-05, collecting at their final
    // settlements: a release of 0.00 each. OLD sets the start (11-01); --through 11-03.
    let r = Case::new(
        &Cfg::deposit_small(),
        &[
            "OLD,8062,2026-01-01,0.00,",
            "W1,8062,2026-11-01,0.00,2026-11-03",
            "W2,8062,2026-11-01,0.00,2026-11-02",
        ],
        &["O1,OLD,2026-11-01 10:00:00,purchase,10.00,debit,,"],
    )
    .args(&["--through", "2026-11-03"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-04",
        "W1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-04",
        "W1",
        &[
            "2026-11-04,W1,1,deposit_release_final,0.00,,,,,,deposit=0.00;deactivated_on=2026-11-03,Deposit released in the final settlement: the merchant was deactivated on 2026-11-03",
            "2026-11-04,W1,2,deactivation_fee_waived,0.00,,,,,,activated_on=2026-11-01;deactivated_on=2026-11-03;days=2;return_window_days=30;purchases_seen=no,\"Deactivation fee (注销扣费) waived: the device was returned unused 2 days after activation, within the 30-day return window (退机)\"",
            "2026-11-04,W1,3,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
    r.assert_row(
        "2026-11-03",
        "W2",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "W2",
        &[
            "2026-11-03,W2,1,deposit_release_final,0.00,,,,,,deposit=0.00;deactivated_on=2026-11-02,Deposit released in the final settlement: the merchant was deactivated on 2026-11-02",
            // "1 day", singular
            "2026-11-03,W2,2,deactivation_fee_waived,0.00,,,,,,activated_on=2026-11-01;deactivated_on=2026-11-02;days=1;return_window_days=30;purchases_seen=no,\"Deactivation fee (注销扣费) waived: the device was returned unused 1 day after activation, within the 30-day return window (退机)\"",
            "2026-11-03,W2,3,payout,0.00,,,,,,,Nothing to pay out in this settlement",
        ],
    );
}

// ---------------------------------------------------------------------------
// payout

#[test]
fn payout_is_the_last_posting_of_every_row() {
    // A row made of a single adjustment: adjustment +25.00, payout −25.00.
    let r = Case::new(
        &Cfg::base(),
        &["M1,8062,2026-01-01,0.00,", "M2,8062,2026-01-01,0.00,"],
        &["P1,M1,2026-11-02 10:00:00,purchase,10.00,debit,,"],
    )
    .adjustments(&["A1,M2,2026-11-03,25.00,goodwill"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M2",
        "0 0.00 0.00 0.00 25.00 0.00 25.00 0.00 0.00 0.00 0.00 25.00 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M2",
        &[
            "2026-11-03,M2,1,adjustment,25.00,,,,,,adj_id=A1,goodwill",
            "2026-11-03,M2,2,payout,-25.00,,,,,,,Paid to your bank account",
        ],
    );
    // every row of every journal ends with its payout, or its payout then carried_out
    for date in r.settlement_dates() {
        let text = r.text(&format!("journal-{date}.csv"));
        let mut last: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for record in &parse_csv(&text)[1..] {
            last.entry(record[1].clone())
                .or_default()
                .push(record[3].clone());
        }
        for (merchant, kinds) in last {
            let n = kinds.len();
            let tail: Vec<&str> = kinds[n.saturating_sub(2)..]
                .iter()
                .map(String::as_str)
                .collect();
            assert!(
                tail.last() == Some(&"payout") || tail == ["payout", "carried_out"],
                "{date} {merchant}: {kinds:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// --detail: one posting per transaction, with its ids

#[test]
fn detail_posts_each_transaction_with_its_ids() {
    let case = Case::new(
        &Cfg {
            refund_fee: "proportional",
            ..Cfg::base()
        },
        &["M1,5999,2026-01-01,0.00,"],
        &[
            "P0,M1,2026-11-01 10:00:00,purchase,50.00,credit,,", // 0.245 → 0.25
            "P1,M1,2026-11-02 09:00:00,purchase,100.00,debit,,", // 0.38
            "P2,M1,2026-11-02 10:00:00,purchase,200.00,debit,,", // 0.76
            "V1,M1,2026-11-02 11:00:00,purchase,30.00,debit,,",
            "V2,M1,2026-11-02 11:05:00,void,30.00,,V1,",
            "R1,M1,2026-11-02 12:00:00,refund,20.00,,P0,", // round(0.25 × 20 / 50 = 0.10) = 0.10 back
        ],
    );
    let r = case.clone().arg("--detail").run().ok();
    // 11-03: txn_count 5 (P1, P2, V1, V2, R1); purchases 300.00; refunds 20.00;
    // fees 0.38 + 0.76 − 0.10 = 1.04; 300 − 20 − 1.04 = 278.96
    r.assert_row(
        "2026-11-03",
        "M1",
        "5 300.00 20.00 1.04 0.00 0.00 278.96 0.00 0.00 0.00 0.00 278.96 0.00",
    );
    assert_journal(
        &r,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,100.00,general,debit,0.0038,,1,txn_id=P1,1 debit card purchase",
            "2026-11-03,M1,2,fee,-0.38,general,debit,0.0038,no,1,txn_id=P1,Fee at 0.38% on 1 purchase",
            "2026-11-03,M1,3,purchase,200.00,general,debit,0.0038,,1,txn_id=P2,1 debit card purchase",
            "2026-11-03,M1,4,fee,-0.76,general,debit,0.0038,no,1,txn_id=P2,Fee at 0.38% on 1 purchase",
            // the voided purchase and its void, one row each
            "2026-11-03,M1,5,void,0.00,general,debit,0.0038,,1,txn_id=V1,1 row of purchases cancelled by same-day voids: no amount and no fee",
            "2026-11-03,M1,6,void,0.00,general,debit,0.0038,,1,txn_id=V2;orig_txn_id=V1,1 row of purchases cancelled by same-day voids: no amount and no fee",
            // the refund of 11-01's credit purchase
            "2026-11-03,M1,7,refund,-20.00,general,credit,0.0049,,1,txn_id=R1;orig_txn_id=P0,1 refund of credit card purchases",
            "2026-11-03,M1,8,fee_returned,0.10,general,credit,0.0049,,1,txn_id=R1;orig_txn_id=P0,Fee returned in proportion to the amount refunded",
            "2026-11-03,M1,9,payout,-278.96,,,,,,,Paid to your bank account",
        ],
    );
    // Without --detail: the same row, grouped postings without ids.
    let grouped = case.run().ok();
    assert_eq!(
        grouped.text("settlement-2026-11-03.csv"),
        r.text("settlement-2026-11-03.csv")
    );
    assert_journal(
        &grouped,
        "2026-11-03",
        "M1",
        &[
            "2026-11-03,M1,1,purchase,300.00,general,debit,0.0038,,2,,2 debit card purchases",
            "2026-11-03,M1,2,fee,-1.14,general,debit,0.0038,no,2,,Fee at 0.38% on 2 purchases",
            "2026-11-03,M1,3,void,0.00,general,debit,0.0038,,2,,2 rows of purchases cancelled by same-day voids: no amount and no fee",
            "2026-11-03,M1,4,refund,-20.00,general,credit,0.0049,,1,,1 refund of credit card purchases",
            "2026-11-03,M1,5,fee_returned,0.10,general,credit,0.0049,,1,,Fee returned in proportion to the amount refunded",
            "2026-11-03,M1,6,payout,-278.96,,,,,,,Paid to your bank account",
        ],
    );
}

// ---------------------------------------------------------------------------
// Every row of a medium run: postings balance and sum to the row

#[test]
fn postings_balance_and_sum_to_every_row_of_a_medium_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = exec_str(
        dir.path(),
        &[
            "gen",
            "--merchants",
            "300",
            "--rows",
            "30000",
            "--days",
            "14",
            "--seed",
            "7",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "settle gen: {err}");
    // A few adjustments, both signs, into settlements the run owns (11-02 .. 11-15).
    let merchants = std::fs::read_to_string(data.join("merchants.csv")).unwrap();
    let ids: Vec<&str> = merchants
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let mut adjustments = String::from(ADJ_HEADER);
    adjustments.push('\n');
    for (k, id) in ids.iter().step_by(7).enumerate() {
        let sign = if k % 2 == 0 { "" } else { "-" };
        adjustments.push_str(&format!(
            "ADJ{k},{id},2026-11-{:02},{sign}{}.{:02},\"correction, case {k}\"\n",
            2 + k % 14,
            10 + k * 3,
            k % 100
        ));
    }
    std::fs::write(dir.path().join("adj.csv"), adjustments).unwrap();
    for (out, detail) in [("grouped", false), ("detailed", true)] {
        let mut args: Vec<String> = [
            "run",
            "--config",
            "data/settle.toml",
            "--merchants",
            "data/merchants.csv",
            "--transactions",
            "data/transactions.csv",
            "--adjustments",
            "adj.csv",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec();
        if detail {
            args.push("--detail".into());
        }
        let (code, _, err) = exec(dir.path(), &args, None);
        assert_eq!(code, 0, "settle run: {err}");
        let files = read_tree(&dir.path().join(out));
        let (rows, postings) = check_journals_against_rows(&files);
        assert!(rows > 1000, "{out}: only {rows} rows");
        assert!(postings > rows * 2, "{out}: only {postings} postings");
        // every kind turns up in a run this size
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for (name, bytes) in &files {
            if name.starts_with("journal-") {
                for p in &parse_csv(std::str::from_utf8(bytes).unwrap())[1..] {
                    *kinds.entry(p[3].clone()).or_default() += 1;
                }
            }
        }
        for kind in [
            "carried_in",
            "purchase",
            "fee",
            "void",
            "refund",
            "fee_returned",
            "adjustment",
            "deposit_hold",
            "deposit_release",
            "deposit_forfeit",
            "payout",
            "carried_out",
        ] {
            assert!(
                kinds.contains_key(kind),
                "{out}: no {kind} posting: {kinds:?}"
            );
        }
        let rejected = read_tree(&dir.path().join(out))["rejects.csv"].clone();
        assert!(
            !String::from_utf8_lossy(&rejected).contains("bad_adjustment"),
            "every adjustment is booked"
        );
    }
}

// ---------------------------------------------------------------------------
// `settle verify` recomputes the journal

/// A run with a capped fee posting: L1 (lodging), 10000.00 debit → 20.00 cap.
fn verify_case() -> Run {
    let r = Case::new(
        &Cfg::base(),
        &["L1,7011,2026-01-01,0.00,"],
        &["C1,L1,2026-11-02 10:00:00,purchase,10000.00,debit,,"],
    )
    .run()
    .ok();
    assert_journal(
        &r,
        "2026-11-03",
        "L1",
        &[
            "2026-11-03,L1,1,purchase,10000.00,lodging,debit,0.0038,,1,,1 debit card purchase",
            "2026-11-03,L1,2,fee,-20.00,lodging,debit,0.0038,yes,1,,Fee at the category's cap (rate 0.38%) on 1 purchase",
            "2026-11-03,L1,3,payout,-9980.00,,,,,,,Paid to your bank account",
        ],
    );
    r
}

/// Replaces the digest of `name` in `out/control.json` by the SHA-256 of its
/// current bytes, so that the digest check alone passes.
fn rewrite_digest(out: &Path, name: &str, old: &[u8]) {
    let control_path = out.join("control.json");
    let control = std::fs::read_to_string(&control_path).unwrap();
    let old_digest = sha256_hex(old);
    let new_digest = sha256_hex(&std::fs::read(out.join(name)).unwrap());
    assert_eq!(
        Json::parse(&control).at("outputs").get(name),
        Some(&Json::Str(old_digest.clone())),
        "control.json lists {name} with its digest"
    );
    assert_eq!(control.matches(&old_digest).count(), 1);
    std::fs::write(&control_path, control.replace(&old_digest, &new_digest)).unwrap();
}

#[test]
fn verify_accepts_an_unedited_run() {
    let r = verify_case();
    let (code, out, err) = exec_str(r.dir.path(), &["verify", "out"]);
    assert_eq!(code, 0, "settle verify: {out}{err}");
}

#[test]
fn verify_catches_a_one_fen_edit_of_a_fee_posting_behind_a_matching_digest() {
    let r = verify_case();
    let out = r.dir.path().join("out");
    let name = "journal-2026-11-03.csv";
    let old = std::fs::read(out.join(name)).unwrap();
    let text = String::from_utf8(old.clone()).unwrap();
    let line = ",L1,2,fee,-20.00,lodging,";
    assert_eq!(text.matches(line).count(), 1);
    // one fen more fee: −20.01
    std::fs::write(
        out.join(name),
        text.replace(line, ",L1,2,fee,-20.01,lodging,"),
    )
    .unwrap();
    rewrite_digest(&out, name, &old);
    let (code, stdout, stderr) = exec_str(r.dir.path(), &["verify", "out"]);
    let said = format!("{stdout}{stderr}");
    assert_eq!(code, 1, "settle verify must refuse the edit: {said}");
    // the digest matches: only the journal's recomputation catches it
    assert!(!said.contains("SHA-256"), "{said}");
    let problem = said
        .lines()
        .find(|l| l.contains(name) && l.contains("L1") && l.contains("fees"))
        .unwrap_or_else(|| panic!("no line names {name}, L1 and fees: {said}"));
    // the postings now sum to 20.01 of fees, the row says 20.00
    assert!(
        problem.contains("20.01") && problem.contains("20.00"),
        "{problem}"
    );
}

#[test]
fn verify_names_a_deleted_journal_file() {
    let r = verify_case();
    let name = "journal-2026-11-03.csv";
    std::fs::remove_file(r.dir.path().join("out").join(name)).unwrap();
    let (code, stdout, stderr) = exec_str(r.dir.path(), &["verify", "out"]);
    let said = format!("{stdout}{stderr}");
    assert_eq!(
        code, 1,
        "settle verify must refuse a missing journal: {said}"
    );
    assert!(said.contains(name), "{said}");
}

#[test]
fn the_independent_journal_check_catches_a_one_fen_edit() {
    let r = verify_case();
    assert_eq!(check_journals_against_rows(&r.files), (1, 3));
    // fee −20.01 against a row that says 20.00: fees and the balance are off
    let mut edited = r.files.clone();
    let name = "journal-2026-11-03.csv";
    let text = String::from_utf8(edited[name].clone()).unwrap();
    edited.insert(
        name.to_string(),
        text.replace(",fee,-20.00,", ",fee,-20.01,").into_bytes(),
    );
    assert_ne!(edited[name], r.files[name]);
    let caught = std::panic::catch_unwind(|| check_journals_against_rows(&edited));
    assert!(caught.is_err(), "the edit must be caught");
}
