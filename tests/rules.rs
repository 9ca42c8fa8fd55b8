//! One test per rule of /work/shared/spec/RULES.md. Every expected figure is
//! worked out by hand in the comments beside it.
//!
//! `assert_row(date, merchant, "...")` lists the 13 values of a settlement
//! row after `settlement_date,merchant_id`, in this order:
//!
//!   cnt  purch  refunds  fees  adj  c_in  proceeds  held  released  forfeited  deact  payout  c_out
//!
//! proceeds = purch − refunds − fees + adj + c_in;
//! payout = max(0, proceeds − held + released − deact); c_out = min(0, same).
//!
//! Unless a test says otherwise: timezone +08:00, lag 1, half_up, kept,
//! and merchants activated 2026-01-01 whose 90-day deposit window ended
//! (2026-03-31) long before the run's start, so the deposit plays no part.
//! Categories (common::BASE_CATEGORIES): 5999 is "general" (debit 0.0038,
//! credit 0.0049), 8062 is public welfare (rate 0, so no fee).

mod common;

use common::*;

const OLD_GENERAL: &str = "M1,5999,2026-01-01,0.00,";

// ---------------------------------------------------------------------------
// 3.1 Purchase fee: rounding

/// Four merchants, one purchase each, chosen so amount × rate is exactly
/// half a fen, and one (M6) with two such purchases, to show that rounding
/// is per purchase, not per row.
fn rounding_case(rounding: &'static str) -> Run {
    Case::new(
        &Cfg {
            rounding,
            ..Cfg::base()
        },
        &[
            "M1,5999,2026-01-01,0.00,",
            "M2,5999,2026-01-01,0.00,",
            "M3,5999,2026-01-01,0.00,",
            "M4,5999,2026-01-01,0.00,",
            "M5,5999,2026-01-01,0.00,",
            "M6,5999,2026-01-01,0.00,",
        ],
        &[
            "R1,M1,2026-11-02 10:00:00,purchase,25.00,debit,,",
            "R2,M2,2026-11-02 10:00:00,purchase,75.00,debit,,",
            "R3,M3,2026-11-02 10:00:00,purchase,50.00,credit,,",
            "R4,M4,2026-11-02 10:00:00,purchase,150.00,credit,,",
            "R5,M5,2026-11-02 10:00:00,purchase,88.88,debit,,",
            "R6,M6,2026-11-02 10:00:00,purchase,75.00,debit,,",
            "R7,M6,2026-11-02 11:00:00,purchase,75.00,debit,,",
        ],
    )
    .run()
    .ok()
}

#[test]
fn rounding_half_up_at_exact_half_fen() {
    let r = rounding_case("half_up");
    let d = "2026-11-03";
    // 25.00 × 0.0038 = 0.095 → 0.10; proceeds 25.00 − 0.10 = 24.90
    r.assert_row(
        d,
        "M1",
        "1 25.00 0.00 0.10 0.00 0.00 24.90 0.00 0.00 0.00 0.00 24.90 0.00",
    );
    // 75.00 × 0.0038 = 0.285 → 0.29 (half up); 75.00 − 0.29 = 74.71
    r.assert_row(
        d,
        "M2",
        "1 75.00 0.00 0.29 0.00 0.00 74.71 0.00 0.00 0.00 0.00 74.71 0.00",
    );
    // 50.00 × 0.0049 = 0.245 → 0.25; 50.00 − 0.25 = 49.75
    r.assert_row(
        d,
        "M3",
        "1 50.00 0.00 0.25 0.00 0.00 49.75 0.00 0.00 0.00 0.00 49.75 0.00",
    );
    // 150.00 × 0.0049 = 0.735 → 0.74; 150.00 − 0.74 = 149.26
    r.assert_row(
        d,
        "M4",
        "1 150.00 0.00 0.74 0.00 0.00 149.26 0.00 0.00 0.00 0.00 149.26 0.00",
    );
    // 88.88 × 0.0038 = 0.337744 → 0.34 (no tie); 88.88 − 0.34 = 88.54
    r.assert_row(
        d,
        "M5",
        "1 88.88 0.00 0.34 0.00 0.00 88.54 0.00 0.00 0.00 0.00 88.54 0.00",
    );
    // two × (0.285 → 0.29) = 0.58 (not round(150 × 0.0038 = 0.57)); 150.00 − 0.58 = 149.42
    r.assert_row(
        d,
        "M6",
        "2 150.00 0.00 0.58 0.00 0.00 149.42 0.00 0.00 0.00 0.00 149.42 0.00",
    );
}

#[test]
fn rounding_half_even_at_exact_half_fen() {
    let r = rounding_case("half_even");
    let d = "2026-11-03";
    // 0.095: neighbours 0.09 (odd) and 0.10 (even) → 0.10; 24.90
    r.assert_row(
        d,
        "M1",
        "1 25.00 0.00 0.10 0.00 0.00 24.90 0.00 0.00 0.00 0.00 24.90 0.00",
    );
    // 0.285: neighbours 0.28 (even) and 0.29 → 0.28; 75.00 − 0.28 = 74.72
    r.assert_row(
        d,
        "M2",
        "1 75.00 0.00 0.28 0.00 0.00 74.72 0.00 0.00 0.00 0.00 74.72 0.00",
    );
    // 0.245 → 0.24 (even); 50.00 − 0.24 = 49.76
    r.assert_row(
        d,
        "M3",
        "1 50.00 0.00 0.24 0.00 0.00 49.76 0.00 0.00 0.00 0.00 49.76 0.00",
    );
    // 0.735 → 0.74 (even); 149.26
    r.assert_row(
        d,
        "M4",
        "1 150.00 0.00 0.74 0.00 0.00 149.26 0.00 0.00 0.00 0.00 149.26 0.00",
    );
    // 0.337744 → 0.34 whatever the mode
    r.assert_row(
        d,
        "M5",
        "1 88.88 0.00 0.34 0.00 0.00 88.54 0.00 0.00 0.00 0.00 88.54 0.00",
    );
    // two × (0.285 → 0.28) = 0.56; 150.00 − 0.56 = 149.44
    r.assert_row(
        d,
        "M6",
        "2 150.00 0.00 0.56 0.00 0.00 149.44 0.00 0.00 0.00 0.00 149.44 0.00",
    );
}

// ---------------------------------------------------------------------------
// 3.1 Caps

#[test]
fn fee_caps_per_card_kind_and_per_transaction() {
    // lodging (7011): debit 0.0038 cap 20.00, credit 0.0049 cap 30.00
    // travel (4511): debit 0.0038 cap 20.00, credit uncapped
    let r = Case::new(
        &Cfg::base(),
        &[
            "L1,7011,2026-01-01,0.00,",
            "L2,7011,2026-01-01,0.00,",
            "L3,7011,2026-01-01,0.00,",
            "L4,7011,2026-01-01,0.00,",
            "L5,7011,2026-01-01,0.00,",
            "V1,4511,2026-01-01,0.00,",
            "V2,4511,2026-01-01,0.00,",
        ],
        &[
            "C1,L1,2026-11-02 10:00:00,purchase,10000.00,debit,,",
            "C2,L2,2026-11-02 10:00:00,purchase,10000.00,credit,,",
            "C3,L3,2026-11-02 10:00:00,purchase,5000.00,debit,,",
            "C4,L4,2026-11-02 10:00:00,purchase,6124.00,credit,,",
            "C5,L5,2026-11-02 10:00:00,purchase,5000.00,debit,,",
            "C6,L5,2026-11-02 11:00:00,purchase,5000.00,debit,,",
            "C7,V1,2026-11-02 10:00:00,purchase,10000.00,credit,,",
            "C8,V2,2026-11-02 10:00:00,purchase,10000.00,debit,,",
        ],
    )
    .run()
    .ok();
    let d = "2026-11-03";
    // 10000 × 0.0038 = 38.00 > debit cap → 20.00; 10000 − 20 = 9980.00
    r.assert_row(
        d,
        "L1",
        "1 10000.00 0.00 20.00 0.00 0.00 9980.00 0.00 0.00 0.00 0.00 9980.00 0.00",
    );
    // 10000 × 0.0049 = 49.00 > credit cap → 30.00; 9970.00
    r.assert_row(
        d,
        "L2",
        "1 10000.00 0.00 30.00 0.00 0.00 9970.00 0.00 0.00 0.00 0.00 9970.00 0.00",
    );
    // 5000 × 0.0038 = 19.00 < 20.00: not capped; 4981.00
    r.assert_row(
        d,
        "L3",
        "1 5000.00 0.00 19.00 0.00 0.00 4981.00 0.00 0.00 0.00 0.00 4981.00 0.00",
    );
    // 6124 × 0.0049 = 30.0076 → 30.01, then min(30.01, 30.00) = 30.00; 6094.00
    r.assert_row(
        d,
        "L4",
        "1 6124.00 0.00 30.00 0.00 0.00 6094.00 0.00 0.00 0.00 0.00 6094.00 0.00",
    );
    // the cap is per transaction: 19.00 + 19.00 = 38.00 in the row; 10000 − 38 = 9962.00
    r.assert_row(
        d,
        "L5",
        "2 10000.00 0.00 38.00 0.00 0.00 9962.00 0.00 0.00 0.00 0.00 9962.00 0.00",
    );
    // travel has no credit cap: 10000 × 0.0049 = 49.00; 9951.00
    r.assert_row(
        d,
        "V1",
        "1 10000.00 0.00 49.00 0.00 0.00 9951.00 0.00 0.00 0.00 0.00 9951.00 0.00",
    );
    // travel debit: 38.00 → cap 20.00; 9980.00
    r.assert_row(
        d,
        "V2",
        "1 10000.00 0.00 20.00 0.00 0.00 9980.00 0.00 0.00 0.00 0.00 9980.00 0.00",
    );
}

// ---------------------------------------------------------------------------
// 3.1 Category selection

#[test]
fn mcc_field_overrides_registered_mcc_on_purchase() {
    let r = Case::new(
        &Cfg::base(),
        &["M1,5999,2026-01-01,0.00,", "M2,8062,2026-01-01,0.00,"],
        &[
            // M1 registered 5999 (general), this purchase says 8062 (public welfare): fee 0
            "P1,M1,2026-11-02 10:00:00,purchase,1000.00,debit,,8062",
            // no mcc: registered 5999, 1000 × 0.0038 = 3.80
            "P2,M1,2026-11-02 11:00:00,purchase,1000.00,debit,,",
            // M2 registered 8062, this purchase says 5812 (dining): 1000 × 0.0049 = 4.90
            "P3,M2,2026-11-02 10:00:00,purchase,1000.00,debit,,5812",
            // no mcc: 8062, fee 0
            "P4,M2,2026-11-02 11:00:00,purchase,1000.00,debit,,",
        ],
    )
    .run()
    .ok();
    // M1: fees 0 + 3.80; proceeds 2000 − 3.80 = 1996.20
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 2000.00 0.00 3.80 0.00 0.00 1996.20 0.00 0.00 0.00 0.00 1996.20 0.00",
    );
    // M2: fees 4.90 + 0; 2000 − 4.90 = 1995.10
    r.assert_row(
        "2026-11-03",
        "M2",
        "2 2000.00 0.00 4.90 0.00 0.00 1995.10 0.00 0.00 0.00 0.00 1995.10 0.00",
    );
}

#[test]
fn mcc_ranges_are_inclusive_at_both_edges() {
    let codes = [
        "9210", "9211", "9399", "9400", "5811", "5812", "5814", "5815",
    ];
    let ms: Vec<String> = codes
        .iter()
        .map(|c| format!("E{c},{c},2026-01-01,0.00,"))
        .collect();
    let ts: Vec<String> = codes
        .iter()
        .map(|c| format!("T{c},E{c},2026-11-02 10:00:00,purchase,1000.00,debit,,"))
        .collect();
    let ms: Vec<&str> = ms.iter().map(String::as_str).collect();
    let ts: Vec<&str> = ts.iter().map(String::as_str).collect();
    let r = Case::new(&Cfg::base(), &ms, &ts).run().ok();
    let d = "2026-11-03";
    // 9210 is below "9211-9399": general, 1000 × 0.0038 = 3.80
    r.assert_row(
        d,
        "E9210",
        "1 1000.00 0.00 3.80 0.00 0.00 996.20 0.00 0.00 0.00 0.00 996.20 0.00",
    );
    // 9211 and 9399 are the edges: public welfare, 0
    r.assert_row(
        d,
        "E9211",
        "1 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00",
    );
    r.assert_row(
        d,
        "E9399",
        "1 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00",
    );
    // 9400 is above: general 3.80
    r.assert_row(
        d,
        "E9400",
        "1 1000.00 0.00 3.80 0.00 0.00 996.20 0.00 0.00 0.00 0.00 996.20 0.00",
    );
    // 5811 below "5812-5814": general 3.80
    r.assert_row(
        d,
        "E5811",
        "1 1000.00 0.00 3.80 0.00 0.00 996.20 0.00 0.00 0.00 0.00 996.20 0.00",
    );
    // 5812, 5814: dining debit 0.0049 → 4.90
    r.assert_row(
        d,
        "E5812",
        "1 1000.00 0.00 4.90 0.00 0.00 995.10 0.00 0.00 0.00 0.00 995.10 0.00",
    );
    r.assert_row(
        d,
        "E5814",
        "1 1000.00 0.00 4.90 0.00 0.00 995.10 0.00 0.00 0.00 0.00 995.10 0.00",
    );
    // 5815 above: general 3.80
    r.assert_row(
        d,
        "E5815",
        "1 1000.00 0.00 3.80 0.00 0.00 996.20 0.00 0.00 0.00 0.00 996.20 0.00",
    );
}

#[test]
fn codes_in_no_category_take_the_default() {
    // The default category comes first here and has rates of its own.
    let cats = r#"
[[category]]
name = "other"
default = true
debit_rate = "0.0021"
credit_rate = "0.0042"

[[category]]
name = "dining"
mcc = ["5812-5814"]
debit_rate = "0.0049"
credit_rate = "0.0049"
"#;
    let r = Case::new(
        &Cfg {
            categories: cats,
            ..Cfg::base()
        },
        &["M1,5999,2026-01-01,0.00,", "M2,5812,2026-01-01,0.00,"],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,1000.00,debit,,", // 1000 × 0.0021 = 2.10
            "P2,M1,2026-11-02 10:00:00,purchase,1000.00,credit,,", // 1000 × 0.0042 = 4.20
            "P3,M2,2026-11-02 10:00:00,purchase,1000.00,debit,,1234", // unlisted override: 2.10
            "P4,M2,2026-11-02 10:00:00,purchase,1000.00,debit,,", // dining: 4.90
        ],
    )
    .run()
    .ok();
    // M1: 2.10 + 4.20 = 6.30; 2000 − 6.30 = 1993.70
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 2000.00 0.00 6.30 0.00 0.00 1993.70 0.00 0.00 0.00 0.00 1993.70 0.00",
    );
    // M2: 2.10 + 4.90 = 7.00; 1993.00
    r.assert_row(
        "2026-11-03",
        "M2",
        "2 2000.00 0.00 7.00 0.00 0.00 1993.00 0.00 0.00 0.00 0.00 1993.00 0.00",
    );
}

// ---------------------------------------------------------------------------
// 2. Dates: business date across midnight and offsets

/// Purchases of 1, 2, 4, ... so that each day's sum names its members.
/// M1 is public welfare (fee 0).
const MIDNIGHT_TXNS: [&str; 9] = [
    "P1,M1,2026-11-02T15:59:59Z,purchase,1.00,debit,,",
    "P2,M1,2026-11-02T16:00:00Z,purchase,2.00,debit,,",
    "P3,M1,2026-11-02T10:59:59-05:00,purchase,4.00,debit,,",
    "P4,M1,2026-11-02T11:00:00-05:00,purchase,8.00,debit,,",
    "P5,M1,2026-11-02 23:59:59,purchase,16.00,debit,,",
    "P6,M1,2026-11-03 00:00:00,purchase,32.00,debit,,",
    "P7,M1,2026-11-02T23:59:59.999999999+08:00,purchase,64.00,debit,,",
    "P8,M1,2026-11-03T00:00:00+09:00,purchase,128.00,debit,,",
    "P9,M1,2026-11-03T04:59:59Z,purchase,256.00,debit,,",
];

fn midnight_run(timezone: &'static str) -> Run {
    Case::new(
        &Cfg {
            timezone,
            ..Cfg::base()
        },
        &["M1,8062,2026-01-01,0.00,"],
        &MIDNIGHT_TXNS,
    )
    .run()
    .ok()
}

#[test]
fn business_date_midnight_in_plus_eight() {
    // At +08:00:
    //   P1 15:59:59Z = 23:59:59 on 11-02 → 11-02     P2 16:00:00Z = 00:00 on 11-03 → 11-03
    //   P3 10:59:59-05 = 15:59:59Z → 11-02          P4 11:00-05 = 16:00Z → 11-03
    //   P5 naive 11-02 23:59:59 → 11-02              P6 naive 11-03 00:00 → 11-03
    //   P7 23:59:59.999999999+08 → 11-02             P8 11-03 00:00+09 = 11-02 15:00Z = 23:00 → 11-02
    //   P9 11-03 04:59:59Z = 12:59:59 on 11-03 → 11-03
    // 11-02: P1+P3+P5+P7+P8 = 1+4+16+64+128 = 213, 5 rows; 11-03: P2+P4+P6+P9 = 2+8+32+256 = 298, 4 rows
    let r = midnight_run("+08:00");
    assert_eq!(r.settlement_dates(), names(&["2026-11-03", "2026-11-04"]));
    r.assert_row(
        "2026-11-03",
        "M1",
        "5 213.00 0.00 0.00 0.00 0.00 213.00 0.00 0.00 0.00 0.00 213.00 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M1",
        "4 298.00 0.00 0.00 0.00 0.00 298.00 0.00 0.00 0.00 0.00 298.00 0.00",
    );
}

#[test]
fn business_date_midnight_in_utc_config() {
    // At +00:00 every instant before 11-03 00:00Z is 11-02: P1..P5, P7 (15:59:59.9Z), P8 (15:00Z);
    // P6 naive 11-03 00:00 read at +00:00 → 11-03; P9 04:59:59Z → 11-03.
    // 11-02: 1+2+4+8+16+64+128 = 223, 7 rows; 11-03: 32+256 = 288, 2 rows
    let r = midnight_run("+00:00");
    r.assert_row(
        "2026-11-03",
        "M1",
        "7 223.00 0.00 0.00 0.00 0.00 223.00 0.00 0.00 0.00 0.00 223.00 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M1",
        "2 288.00 0.00 0.00 0.00 0.00 288.00 0.00 0.00 0.00 0.00 288.00 0.00",
    );
}

#[test]
fn business_date_midnight_in_minus_five_config() {
    // At -05:00: P9 04:59:59Z = 23:59:59 on 11-02 → 11-02; P6 naive 11-03 00:00 → 11-03;
    // all others are 11-02 (P2/P4 16:00Z = 11:00 on 11-02).
    // 11-02: 223 + 256 = 479, 8 rows; 11-03: 32, 1 row
    let r = midnight_run("-05:00");
    r.assert_row(
        "2026-11-03",
        "M1",
        "8 479.00 0.00 0.00 0.00 0.00 479.00 0.00 0.00 0.00 0.00 479.00 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 32.00 0.00 0.00 0.00 0.00 32.00 0.00 0.00 0.00 0.00 32.00 0.00",
    );
}

#[test]
fn settlement_lag_0_1_2() {
    let txns = [
        "P1,M1,2026-11-02 12:00:00,purchase,100.00,debit,,", // 0.38; 99.62
        "P2,M1,2026-11-30 12:00:00,purchase,200.00,debit,,", // 0.76; 199.24
        "P3,M1,2026-12-31 12:00:00,purchase,300.00,debit,,", // 1.14; 298.86
    ];
    for (lag, d1, d2, d3) in [
        (0, "2026-11-02", "2026-11-30", "2026-12-31"),
        (1, "2026-11-03", "2026-12-01", "2027-01-01"),
        (2, "2026-11-04", "2026-12-02", "2027-01-02"),
    ] {
        let r = Case::new(&Cfg { lag, ..Cfg::base() }, &[OLD_GENERAL], &txns)
            .run()
            .ok();
        assert_eq!(r.settlement_dates(), names(&[d1, d2, d3]), "lag {lag}");
        r.assert_row(
            d1,
            "M1",
            "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
        );
        r.assert_row(
            d2,
            "M1",
            "1 200.00 0.00 0.76 0.00 0.00 199.24 0.00 0.00 0.00 0.00 199.24 0.00",
        );
        r.assert_row(
            d3,
            "M1",
            "1 300.00 0.00 1.14 0.00 0.00 298.86 0.00 0.00 0.00 0.00 298.86 0.00",
        );
    }
}

// ---------------------------------------------------------------------------
// 3.2 Refunds and voids: order by instant, fractions included

#[test]
fn fraction_of_a_second_decides_refund_against_purchase() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02T10:00:00.5+08:00,purchase,100.00,debit,,",
            // 0.25 s before the purchase → bad_reference
            "R1,M1,2026-11-02T10:00:00.25+08:00,refund,10.00,,P1,",
            // 10:00:00.499999999 at +08 → 1 ns before → bad_reference
            "R2,M1,2026-11-02T02:00:00.499999999Z,refund,10.00,,P1,",
            // the very instant of the purchase (not earlier) → accepted, though "02:00Z" < "10:00+08" as text
            "R3,M1,2026-11-02T02:00:00.5Z,refund,20.00,,P1,",
            // 1 ns after → accepted
            "R4,M1,2026-11-02T10:00:00.500000001+08:00,refund,30.00,,P1,",
            // naive, read at +08: 10:00:00.4 → before → bad_reference
            "R5,M1,2026-11-02 10:00:00.4,refund,5.00,,P1,",
        ],
    )
    .run()
    .ok();
    // P1 fee 100 × 0.0038 = 0.38 (kept); refunds R3 + R4 = 50.00; 100 − 50 − 0.38 = 49.62
    r.assert_row(
        "2026-11-03",
        "M1",
        "3 100.00 50.00 0.38 0.00 0.00 49.62 0.00 0.00 0.00 0.00 49.62 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (3, "R1", "bad_reference"),
            (4, "R2", "bad_reference"),
            (7, "R5", "bad_reference")
        ])
    );
}

#[test]
fn fraction_of_a_second_decides_void_against_refund() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "PA,M1,2026-11-02T10:00:00+08:00,purchase,100.00,debit,,",
            // file order puts RA first, but VA is 0.01 s earlier: VA voids PA, then RA
            // refunds a voided purchase → bad_reference
            "RA,M1,2026-11-02T10:00:00.10+08:00,refund,10.00,,PA,",
            "VA,M1,2026-11-02T10:00:00.09+08:00,void,100.00,,PA,",
            "PB,M1,2026-11-02T10:00:00+08:00,purchase,200.00,debit,,",
            // RB (.1) comes before VB (.11): VB follows an accepted refund → bad_void
            "RB,M1,2026-11-02T10:00:00.1+08:00,refund,10.00,,PB,",
            "VB,M1,2026-11-02T10:00:00.11+08:00,void,200.00,,PB,",
            "PC,M1,2026-11-02T10:00:00+08:00,purchase,300.00,debit,,",
            // same instant: file order decides, RC first, so VC → bad_void
            "RC,M1,2026-11-02T10:00:01+08:00,refund,10.00,,PC,",
            "VC,M1,2026-11-02T10:00:01+08:00,void,300.00,,PC,",
        ],
    )
    .run()
    .ok();
    // accepted: PA (voided), VA, PB, RB, PC, RC = 6 rows
    // purchases PB + PC = 500.00; refunds RB + RC = 20.00
    // fees 200 × 0.0038 = 0.76, 300 × 0.0038 = 1.14 → 1.90; 500 − 20 − 1.90 = 478.10
    r.assert_row(
        "2026-11-03",
        "M1",
        "6 500.00 20.00 1.90 0.00 0.00 478.10 0.00 0.00 0.00 0.00 478.10 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (3, "RA", "bad_reference"),
            (7, "VB", "bad_void"),
            (10, "VC", "bad_void")
        ])
    );
}

// ---------------------------------------------------------------------------
// 3.2 Refund fees: kept and proportional

/// P1 100.00 credit (general 0.0049 → fee 0.49) on 11-02, then one refund a
/// day of 33.33, 33.33, 33.34, each day beside a 500.00 public-welfare
/// purchase (fee 0) so the rows stay positive.
fn repeated_refunds(refund_fee: &'static str) -> Run {
    Case::new(
        &Cfg {
            refund_fee,
            ..Cfg::base()
        },
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,credit,,",
            "R1,M1,2026-11-03 10:00:00,refund,33.33,,P1,",
            "Q1,M1,2026-11-03 10:00:00,purchase,500.00,debit,,8062",
            "R2,M1,2026-11-04 10:00:00,refund,33.33,,P1,",
            "Q2,M1,2026-11-04 10:00:00,purchase,500.00,debit,,8062",
            "R3,M1,2026-11-05 10:00:00,refund,33.34,,P1,",
            "Q3,M1,2026-11-05 10:00:00,purchase,500.00,debit,,8062",
        ],
    )
    .run()
    .ok()
}

#[test]
fn refund_fee_kept_returns_nothing() {
    let r = repeated_refunds("kept");
    // 100 × 0.0049 = 0.49; 100 − 0.49 = 99.51
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.49 0.00 0.00 99.51 0.00 0.00 0.00 0.00 99.51 0.00",
    );
    // 500 − 33.33 − 0 = 466.67
    r.assert_row(
        "2026-11-04",
        "M1",
        "2 500.00 33.33 0.00 0.00 0.00 466.67 0.00 0.00 0.00 0.00 466.67 0.00",
    );
    r.assert_row(
        "2026-11-05",
        "M1",
        "2 500.00 33.33 0.00 0.00 0.00 466.67 0.00 0.00 0.00 0.00 466.67 0.00",
    );
    // 500 − 33.34 = 466.66
    r.assert_row(
        "2026-11-06",
        "M1",
        "2 500.00 33.34 0.00 0.00 0.00 466.66 0.00 0.00 0.00 0.00 466.66 0.00",
    );
    assert_eq!(r.total("fees"), "0.49");
}

#[test]
fn refund_fee_proportional_returns_the_exact_remainder() {
    let r = repeated_refunds("proportional");
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.49 0.00 0.00 99.51 0.00 0.00 0.00 0.00 99.51 0.00",
    );
    // R1: round(0.49 × 33.33 / 100 = 0.163317) = 0.16 returned → fees −0.16
    //     500 − 33.33 + 0.16 = 466.83
    r.assert_row(
        "2026-11-04",
        "M1",
        "2 500.00 33.33 -0.16 0.00 0.00 466.83 0.00 0.00 0.00 0.00 466.83 0.00",
    );
    // R2: round(0.49 × 66.66 / 100 = 0.326634) = 0.33, less 0.16 before → 0.17
    //     (rounding each refund alone would give 0.16)  500 − 33.33 + 0.17 = 466.84
    r.assert_row(
        "2026-11-05",
        "M1",
        "2 500.00 33.33 -0.17 0.00 0.00 466.84 0.00 0.00 0.00 0.00 466.84 0.00",
    );
    // R3: round(0.49 × 100 / 100) = 0.49, less 0.33 → 0.16; the whole fee is back
    //     500 − 33.34 + 0.16 = 466.82
    r.assert_row(
        "2026-11-06",
        "M1",
        "2 500.00 33.34 -0.16 0.00 0.00 466.82 0.00 0.00 0.00 0.00 466.82 0.00",
    );
    // fees over the run: 0.49 − 0.16 − 0.17 − 0.16 = 0.00
    assert_eq!(r.total("fees"), "0.00");
}

#[test]
fn refund_fee_proportional_rounds_with_the_configured_mode() {
    let txns = [
        "P1,M1,2026-11-02 10:00:00,purchase,100.00,credit,,", // fee 0.49 exactly
        "R1,M1,2026-11-03 10:00:00,refund,50.00,,P1,",
        "Q1,M1,2026-11-03 10:00:00,purchase,500.00,debit,,8062",
        "R2,M1,2026-11-04 10:00:00,refund,50.00,,P1,",
        "Q2,M1,2026-11-04 10:00:00,purchase,500.00,debit,,8062",
    ];
    // R1: 0.49 × 50 / 100 = 0.245 (a tie). R2 returns the rest of 0.49.
    let up = Case::new(
        &Cfg {
            refund_fee: "proportional",
            ..Cfg::base()
        },
        &[OLD_GENERAL],
        &txns,
    )
    .run()
    .ok();
    // half_up: 0.25; 500 − 50 + 0.25 = 450.25; then 0.49 − 0.25 = 0.24 → 450.24
    up.assert_row(
        "2026-11-04",
        "M1",
        "2 500.00 50.00 -0.25 0.00 0.00 450.25 0.00 0.00 0.00 0.00 450.25 0.00",
    );
    up.assert_row(
        "2026-11-05",
        "M1",
        "2 500.00 50.00 -0.24 0.00 0.00 450.24 0.00 0.00 0.00 0.00 450.24 0.00",
    );
    let even = Case::new(
        &Cfg {
            refund_fee: "proportional",
            rounding: "half_even",
            ..Cfg::base()
        },
        &[OLD_GENERAL],
        &txns,
    )
    .run()
    .ok();
    // half_even: 0.24; 450.24; then 0.49 − 0.24 = 0.25 → 450.25
    even.assert_row(
        "2026-11-04",
        "M1",
        "2 500.00 50.00 -0.24 0.00 0.00 450.24 0.00 0.00 0.00 0.00 450.24 0.00",
    );
    even.assert_row(
        "2026-11-05",
        "M1",
        "2 500.00 50.00 -0.25 0.00 0.00 450.25 0.00 0.00 0.00 0.00 450.25 0.00",
    );
}

#[test]
fn over_refund_is_rejected_and_does_not_count() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "Q1,M1,2026-11-02 10:00:00,purchase,1000.00,debit,,8062",
            "R1,M1,2026-11-02 11:00:00,refund,60.00,,P1,", // 60 ≤ 100
            "R2,M1,2026-11-02 12:00:00,refund,50.00,,P1,", // 110 > 100 → refund_exceeds_original
            "R3,M1,2026-11-02 13:00:00,refund,40.00,,P1,", // 60 + 40 = 100 ≤ 100 → accepted
            "R4,M1,2026-11-02 14:00:00,refund,0.01,,P1,",  // 100.01 > 100 → refund_exceeds_original
            "P2,M1,2026-11-02 10:00:00,purchase,200.00,debit,,", // 0.76
            // taken in ts order, not file order: RB (11:00) first, 100 ≤ 200;
            // then RA (12:00): 100 + 150 = 250 > 200 → refund_exceeds_original
            "RA,M1,2026-11-02 12:00:00,refund,150.00,,P2,",
            "RB,M1,2026-11-02 11:00:00,refund,100.00,,P2,",
        ],
    )
    .run()
    .ok();
    // accepted P1, Q1, R1, R3, P2, RB: purchases 1300, refunds 100 + 100 = 200,
    // fees 0.38 + 0.76 = 1.14 (kept); 1300 − 200 − 1.14 = 1098.86
    r.assert_row(
        "2026-11-03",
        "M1",
        "6 1300.00 200.00 1.14 0.00 0.00 1098.86 0.00 0.00 0.00 0.00 1098.86 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (5, "R2", "refund_exceeds_original"),
            (7, "R4", "refund_exceeds_original"),
            (9, "RA", "refund_exceeds_original")
        ])
    );
}

#[test]
fn refund_must_name_an_accepted_purchase_of_the_same_merchant() {
    let r = Case::new(
        &Cfg::base(),
        &["M1,5999,2026-01-01,0.00,", "M2,5999,2026-01-01,0.00,"],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "X1,M2,2026-11-02 11:00:00,refund,10.00,,P1,", // another merchant's purchase
            "X2,M1,2026-11-02 11:00:00,refund,10.00,,NOPE,", // no such id
            "P2,M1,2026-11-02 10:00:00,purchase,60000.00,debit,,", // over_limit
            "X3,M1,2026-11-02 11:00:00,refund,10.00,,P2,", // names a rejected purchase
            "R1,M1,2026-11-02 11:00:00,refund,10.00,,P1,", // accepted
            "X4,M1,2026-11-02 12:00:00,refund,5.00,,R1,",  // names a refund, not a purchase
            "X5,M1,2026-11-02 12:00:00,void,10.00,,R1,",   // a void naming a refund
            // the purchase may come later in the file: R2 is later in time, so accepted
            "R2,M1,2026-11-03 09:00:00,refund,20.00,,P3,",
            "P3,M1,2026-11-03 08:00:00,purchase,50.00,debit,,",
        ],
    )
    .run()
    .ok();
    // 11-02: P1 100 (0.38), R1 10 → 100 − 10 − 0.38 = 89.62
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 100.00 10.00 0.38 0.00 0.00 89.62 0.00 0.00 0.00 0.00 89.62 0.00",
    );
    // 11-03: P3 50 (50 × 0.0038 = 0.19), R2 20 → 50 − 20 − 0.19 = 29.81
    r.assert_row(
        "2026-11-04",
        "M1",
        "2 50.00 20.00 0.19 0.00 0.00 29.81 0.00 0.00 0.00 0.00 29.81 0.00",
    );
    assert_eq!(r.try_row("2026-11-03", "M2"), None);
    assert_eq!(
        r.rejects(),
        rj(&[
            (3, "X1", "bad_reference"),
            (4, "X2", "bad_reference"),
            (5, "P2", "over_limit"),
            (6, "X3", "bad_reference"),
            (8, "X4", "bad_reference"),
            (9, "X5", "bad_reference"),
        ])
    );
}

#[test]
fn refund_later_than_retention_days_is_refused() {
    let r = Case::new(
        &Cfg {
            retention_days: 2,
            ..Cfg::base()
        },
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02 00:30:00,purchase,100.00,debit,,",
            // business date 11-04 is 2 days after 11-02 (though 71 hours later) → accepted
            "R1,M1,2026-11-04 23:30:00,refund,10.00,,P1,",
            // 11-05 is 3 days after → bad_reference
            "R2,M1,2026-11-05 00:00:00,refund,10.00,,P1,",
            "Q1,M1,2026-11-04 12:00:00,purchase,50.00,debit,,8062",
        ],
    )
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    // 11-04: Q1 50 (fee 0), R1 10 → 40.00
    r.assert_row(
        "2026-11-05",
        "M1",
        "2 50.00 10.00 0.00 0.00 0.00 40.00 0.00 0.00 0.00 0.00 40.00 0.00",
    );
    // R2 rejected, so the horizon is 11-04: no settlement 11-06
    assert_eq!(r.settlement_dates(), names(&["2026-11-03", "2026-11-05"]));
    assert_eq!(r.rejects(), rj(&[(4, "R2", "bad_reference")]));
}

#[test]
fn voids_valid_wrong_amount_other_day_after_refund_after_void() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "V1,M1,2026-11-02 11:00:00,void,100,,P1,", // same amount (100 = 100.00), same day → accepted
            "P2,M1,2026-11-02 10:00:00,purchase,200.00,debit,,",
            "V2,M1,2026-11-02 11:00:00,void,150.00,,P2,", // wrong amount → bad_void
            "P3,M1,2026-11-02 10:00:00,purchase,300.00,debit,,",
            "V3,M1,2026-11-03 09:00:00,void,300.00,,P3,", // another business date → bad_void
            "P4,M1,2026-11-02 10:00:00,purchase,400.00,debit,,",
            "R4,M1,2026-11-02 10:30:00,refund,50.00,,P4,", // accepted refund
            "V4,M1,2026-11-02 11:00:00,void,400.00,,P4,",  // after an accepted refund → bad_void
            "P5,M1,2026-11-02 10:00:00,purchase,500.00,debit,,",
            "V5,M1,2026-11-02 11:00:00,void,500.00,,P5,", // accepted
            "V6,M1,2026-11-02 11:30:00,void,500.00,,P5,", // after an accepted void → bad_void
            "P6,M1,2026-11-02T23:50:00+08:00,purchase,600.00,debit,,",
            "V7,M1,2026-11-02T16:10:00Z,void,600.00,,P6,", // 00:10 on 11-03 at +08 → bad_void
            "P7,M1,2026-11-02T23:00:00+08:00,purchase,700.00,debit,,",
            "V8,M1,2026-11-02T15:30:00Z,void,700.00,,P7,", // 23:30 on 11-02 at +08 → accepted
            "P8,M1,2026-11-02 10:00:00,purchase,800.00,debit,,",
            "R8,M1,2026-11-02 10:30:00,refund,900.00,,P8,", // refund_exceeds_original
            "V9,M1,2026-11-02 11:00:00,void,800.00,,P8,", // no accepted refund before it → accepted
        ],
    )
    .run()
    .ok();
    // accepted: P1 V1 P2 P3 P4 R4 P5 V5 P6 P7 V8 P8 V9 = 13 rows (P7, P8 voided)
    // purchases not voided: P2 200 + P3 300 + P4 400 + P6 600 = 1500.00; refunds 50.00
    // fees: 0.76 + 1.14 + 1.52 + 2.28 = 5.70; 1500 − 50 − 5.70 = 1444.30
    r.assert_row(
        "2026-11-03",
        "M1",
        "13 1500.00 50.00 5.70 0.00 0.00 1444.30 0.00 0.00 0.00 0.00 1444.30 0.00",
    );
    assert_eq!(r.settlement_dates(), names(&["2026-11-03"]));
    assert_eq!(
        r.rejects(),
        rj(&[
            (5, "V2", "bad_void"),
            (7, "V3", "bad_void"),
            (10, "V4", "bad_void"),
            (13, "V6", "bad_void"),
            (15, "V7", "bad_void"),
            (19, "R8", "refund_exceeds_original"),
        ])
    );
}

#[test]
fn refund_of_a_voided_purchase_is_bad_reference() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "V1,M1,2026-11-02 11:00:00,void,100.00,,P1,",
            "R1,M1,2026-11-02 12:00:00,refund,10.00,,P1,",
            "R2,M1,2026-11-02 12:30:00,refund,500.00,,P1,", // whatever its amount: not refund_exceeds_original
            "R3,M1,2026-11-03 09:00:00,refund,100.00,,P1,",
        ],
    )
    .run()
    .ok();
    // P1 and V1 count, move nothing
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_eq!(r.settlement_dates(), names(&["2026-11-03"]));
    assert_eq!(
        r.rejects(),
        rj(&[
            (4, "R1", "bad_reference"),
            (5, "R2", "bad_reference"),
            (6, "R3", "bad_reference")
        ])
    );
}

// ---------------------------------------------------------------------------
// 3.3 Validation

#[test]
fn duplicate_ids_first_in_file_order_wins() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "T1,M1,2026-11-02 15:00:00,purchase,100.00,debit,,", // accepted (fee 0.38)
            "T1,M1,2026-11-02 09:00:00,purchase,50.00,debit,,", // earlier in time, later in file → duplicate
            "D2,MX,2026-11-02 10:00:00,purchase,10.00,debit,,", // unknown_merchant, but it takes the id
            "D2,M1,2026-11-02 10:00:00,purchase,20.00,debit,,", // duplicate_txn_id
            "E3,M1,2026-11-02 10:00:00,purchase,abc,debit,,", // bad_amount: fails step 2, takes no id
            "E3,M1,2026-11-02 10:00:00,purchase,200.00,debit,,", // accepted (0.76)
            "O4,M1,2026-11-02 10:00:00,purchase,60000.00,debit,,", // over_limit, takes the id
            "O4,M1,2026-11-02 10:00:00,purchase,30.00,debit,,", // duplicate_txn_id
            "T1,M1,2026-11-02 16:00:00,refund,10.00,,T1,", // a refund reusing T1 → duplicate_txn_id
            "F5,,2026-11-02 10:00:00,purchase,40.00,debit,,", // malformed_row: takes no id
            "F5,M1,2026-11-02 10:00:00,purchase,40.00,debit,,", // accepted (40 × 0.0038 = 0.152 → 0.15)
        ],
    )
    .run()
    .ok();
    // purchases 100 + 200 + 40 = 340.00; fees 0.38 + 0.76 + 0.15 = 1.29; 340 − 1.29 = 338.71
    r.assert_row(
        "2026-11-03",
        "M1",
        "3 340.00 0.00 1.29 0.00 0.00 338.71 0.00 0.00 0.00 0.00 338.71 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (3, "T1", "duplicate_txn_id"),
            (4, "D2", "unknown_merchant"),
            (5, "D2", "duplicate_txn_id"),
            (6, "E3", "bad_amount"),
            (8, "O4", "over_limit"),
            (9, "O4", "duplicate_txn_id"),
            (10, "T1", "duplicate_txn_id"),
            (11, "F5", "malformed_row"),
        ])
    );
}

#[test]
fn duplicate_ids_across_files_follow_file_order() {
    let a = txns(&["T1,M1,2026-11-03 10:00:00,purchase,100.00,debit,,"]);
    let b = txns(&["T1,M1,2026-11-02 10:00:00,purchase,50.00,debit,,"]);
    // a.csv first: a's T1 wins (11-03, 100 × 0.0038 = 0.38)
    let r = Case::new(&Cfg::base(), &[OLD_GENERAL], &[])
        .txn_files(&[("a.csv", a.as_bytes()), ("b.csv", b.as_bytes())])
        .run()
        .ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-04"]));
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    assert_eq!(
        r.rejects_with_file(),
        vec![(
            "b.csv".to_string(),
            2,
            "T1".to_string(),
            "duplicate_txn_id".to_string()
        )]
    );
    // b.csv first: b's T1 wins (11-02, 50 × 0.0038 = 0.19)
    let r = Case::new(&Cfg::base(), &[OLD_GENERAL], &[])
        .txn_files(&[("b.csv", b.as_bytes()), ("a.csv", a.as_bytes())])
        .run()
        .ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-03"]));
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 50.00 0.00 0.19 0.00 0.00 49.81 0.00 0.00 0.00 0.00 49.81 0.00",
    );
    assert_eq!(
        r.rejects_with_file(),
        vec![(
            "a.csv".to_string(),
            2,
            "T1".to_string(),
            "duplicate_txn_id".to_string()
        )]
    );
}

#[test]
fn unknown_merchant_is_rejected() {
    let r = Case::new(
        &Cfg::base(),
        &[OLD_GENERAL],
        &[
            "U1,MX,2026-11-02 10:00:00,purchase,10.00,debit,,",
            "U2,M1,2026-11-02 10:00:00,purchase,100.00,debit,,", // 0.38
            "U3,m1,2026-11-02 10:00:00,purchase,10.00,debit,,",  // ids are case-sensitive
            "U4, M1 ,2026-11-02 10:00:00,purchase,50.00,debit,,", // trimmed → M1 (0.19)
            "U5,MX,2026-11-02 11:00:00,refund,10.00,,U2,", // unknown_merchant before bad_reference
            "\"Q,1\",MX,2026-11-02 10:00:00,purchase,10.00,debit,,", // an id with a comma, quoted in rejects.csv
        ],
    )
    .run()
    .ok();
    // 150.00; fees 0.38 + 0.19 = 0.57; 149.43
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 150.00 0.00 0.57 0.00 0.00 149.43 0.00 0.00 0.00 0.00 149.43 0.00",
    );
    assert_eq!(r.merchants_on("2026-11-03"), names(&["M1"]));
    assert_eq!(
        r.rejects(),
        rj(&[
            (2, "U1", "unknown_merchant"),
            (4, "U3", "unknown_merchant"),
            (6, "U5", "unknown_merchant"),
            (7, "Q,1", "unknown_merchant"),
        ])
    );
    assert!(
        r.text("rejects.csv")
            .contains("\ntransactions.csv,7,\"Q,1\",unknown_merchant,")
    );
    // Each sentence names the row's own merchant_id, also for a row whose
    // neighbours in the same parse batch are known merchants.
    assert!(r.text("rejects.csv").contains(
        "\ntransactions.csv,4,U3,unknown_merchant,\"merchant_id \"\"m1\"\" is not in master data\"\n"
    ));
}

#[test]
fn merchant_inactive_before_activation_and_after_deactivation() {
    // M1: public welfare (fee 0), active 11-03 .. 11-05, deposit 0.
    let r = Case::new(
        &Cfg::base(),
        &["M1,8062,2026-11-03,0.00,2026-11-05"],
        &[
            "I1,M1,2026-11-02T15:59:59Z,purchase,10.00,debit,,", // 23:59:59 on 11-02 → inactive
            "I2,M1,2026-11-02T16:00:00Z,purchase,100.00,debit,,", // 00:00 on 11-03 → accepted
            "I3,M1,2026-11-05T15:59:59Z,purchase,1000.00,debit,,", // 23:59:59 on 11-05 → accepted
            "I4,M1,2026-11-05T16:00:00Z,purchase,10.00,debit,,", // 00:00 on 11-06 → inactive
            "I5,M1,2026-11-06 10:00:00,refund,10.00,,I2,",       // 11-06 → inactive (before 3.2)
        ],
    )
    .run()
    .ok();
    // 11-03: 100.00; deposit 0 is never held
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    // final settlement 11-05 + 1: the device was used, fee 199.00; 1000 − 199 = 801.00
    r.assert_row(
        "2026-11-06",
        "M1",
        "1 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00 0.00 0.00 199.00 801.00 0.00",
    );
    assert_eq!(r.settlement_dates(), names(&["2026-11-04", "2026-11-06"]));
    assert_eq!(
        r.rejects(),
        rj(&[
            (2, "I1", "merchant_inactive"),
            (5, "I4", "merchant_inactive"),
            (6, "I5", "merchant_inactive")
        ])
    );
}

#[test]
fn beyond_horizon_with_through_and_step_4_order() {
    let r = Case::new(
        &Cfg::base(),
        &[
            "M1,5999,2026-01-01,0.00,",
            "M2,5999,2026-01-01,0.00,2026-10-01",
        ],
        &[
            "H1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,", // 0.38
            "H2,M1,2026-11-03 23:59:59,purchase,200.00,debit,,", // 0.76
            "H3,M1,2026-11-04 00:00:00,purchase,300.00,debit,,", // beyond_horizon
            "H4,MX,2026-11-04 10:00:00,purchase,10.00,debit,,",  // unknown_merchant comes first
            "H5,M2,2026-11-04 10:00:00,purchase,10.00,debit,,",  // merchant_inactive comes first
            "H6,M1,2026-11-04 10:00:00,refund,10.00,,H1,",       // beyond_horizon
        ],
    )
    .args(&["--through", "2026-11-03"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 200.00 0.00 0.76 0.00 0.00 199.24 0.00 0.00 0.00 0.00 199.24 0.00",
    );
    assert_eq!(r.settlement_dates(), names(&["2026-11-03", "2026-11-04"]));
    assert_eq!(
        r.rejects(),
        rj(&[
            (4, "H3", "beyond_horizon"),
            (5, "H4", "unknown_merchant"),
            (6, "H5", "merchant_inactive"),
            (7, "H6", "beyond_horizon"),
        ])
    );
    let c = r.control();
    assert_eq!(c.at("run.horizon").str(), "2026-11-03");
    assert_eq!(c.at("run.through").str(), "2026-11-03");
    assert_eq!(c.at("run.start").str(), "2026-11-02");
}

#[test]
fn over_limit_is_strictly_above_max_txn_amount() {
    let r = Case::new(
        &Cfg {
            max_txn_amount: "1000.00",
            ..Cfg::base()
        },
        &[OLD_GENERAL],
        &[
            "O1,M1,2026-11-02 10:00:00,purchase,1000.00,debit,,", // exactly at the limit → accepted
            "O2,M1,2026-11-02 10:00:00,purchase,1000.01,debit,,", // over_limit
            "O3,M1,2026-11-02 11:00:00,refund,1000.00,,O1,",      // the limit is for purchases only
        ],
    )
    .run()
    .ok();
    // 1000 × 0.0038 = 3.80 (kept); 1000 − 1000 − 3.80 = −3.80 → payout 0, carried −3.80
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 1000.00 1000.00 3.80 0.00 0.00 -3.80 0.00 0.00 0.00 0.00 0.00 -3.80",
    );
    assert_eq!(r.rejects(), rj(&[(3, "O2", "over_limit")]));
}

// ---------------------------------------------------------------------------
// 3.5 Deposit

#[test]
fn deposit_collects_across_settlements_then_forfeits_in_a_row_of_its_own() {
    // refund_volume 1000.00, window 5 days: M1's window is 11-01 .. 11-05.
    // M2 (old) trades on 11-05 so the run's horizon reaches the window's end.
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,", "M2,8062,2026-01-01,0.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "D2,M1,2026-11-02 10:00:00,purchase,150.00,debit,,",
            "D3,M1,2026-11-03 10:00:00,purchase,200.00,debit,,",
            "D4,M1,2026-11-04 10:00:00,purchase,100.00,debit,,",
            "D5,M2,2026-11-05 10:00:00,purchase,10.00,debit,,",
        ],
    )
    .run()
    .ok();
    // held = min(max(proceeds, 0), 300 − held so far)
    // 11-02: min(100, 300) = 100 held; payout 0
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    // 11-03: min(150, 200) = 150 (250 held); payout 0
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 150.00 0.00 0.00 0.00 0.00 150.00 150.00 0.00 0.00 0.00 0.00 0.00",
    );
    // 11-04: min(200, 50) = 50 (300 held); payout 150
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 200.00 0.00 0.00 0.00 0.00 200.00 50.00 0.00 0.00 0.00 150.00 0.00",
    );
    // 11-05: fully held, nothing more; payout 100
    r.assert_row(
        "2026-11-05",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    // net volume by 11-05 = 550 < 1000 → forfeit at 11-05 + 1, a row with no transaction
    r.assert_row(
        "2026-11-06",
        "M1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 300.00 0.00 0.00 0.00",
    );
    r.assert_row(
        "2026-11-06",
        "M2",
        "1 10.00 0.00 0.00 0.00 0.00 10.00 0.00 0.00 0.00 0.00 10.00 0.00",
    );
    // purchases 560 = payouts 260 + held 300
    assert_eq!(r.total("purchases"), "560.00");
    assert_eq!(r.total("payouts"), "260.00");
    assert_eq!(r.total("deposit_held"), "300.00");
    assert_eq!(r.total("deposit_released"), "0.00");
    assert_eq!(r.total("deposit_forfeited"), "300.00");
}

#[test]
fn deposit_released_on_volume_in_b_plus_lag() {
    // lag 2 so that S = B + 2 is visible; refund_volume 1000.00, window 11-01 .. 11-05
    let r = Case::new(
        &Cfg {
            lag: 2,
            ..Cfg::deposit_small()
        },
        &["M1,8062,2026-11-01,300.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,200.00,debit,,",
            "DV,M1,2026-11-01 11:00:00,purchase,5000.00,debit,,", // voided: no volume
            "VV,M1,2026-11-01 11:05:00,void,5000.00,,DV,",
            "D2,M1,2026-11-02 10:00:00,purchase,900.00,debit,,",
            "R1,M1,2026-11-02 11:00:00,refund,100.00,,D1,",
            "D3,M1,2026-11-03 10:00:00,purchase,100.00,debit,,",
        ],
    )
    .run()
    .ok();
    // B 11-01: volume 200 (DV voided) < 1000; held min(200, 300) = 200
    r.assert_row(
        "2026-11-03",
        "M1",
        "3 200.00 0.00 0.00 0.00 0.00 200.00 200.00 0.00 0.00 0.00 0.00 0.00",
    );
    // B 11-02: volume 200 + 900 − 100 = 1000 ≥ 1000 → released in S = 11-02 + 2 = 11-04:
    // all 200 held comes back, nothing held; payout 800 + 200 = 1000
    r.assert_row(
        "2026-11-04",
        "M1",
        "2 900.00 100.00 0.00 0.00 0.00 800.00 0.00 200.00 0.00 0.00 1000.00 0.00",
    );
    // released: no more holds
    r.assert_row(
        "2026-11-05",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    assert_eq!(
        r.settlement_dates(),
        names(&["2026-11-03", "2026-11-04", "2026-11-05"])
    );
}

#[test]
fn deposit_released_at_deactivation() {
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
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 50.00 0.00 0.00 0.00 0.00 50.00 50.00 0.00 0.00 0.00 0.00 0.00",
    );
    // final settlement (11-03 + 1): no hold, the 150 held is released, fee 199 (device used)
    // 100 − 0 + 150 − 199 = 51.00
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 150.00 0.00 199.00 51.00 0.00",
    );
}

#[test]
fn deposit_events_on_one_business_date_in_order() {
    // window 3 days: 11-01 .. 11-03 for all three merchants
    let r = Case::new(
        &Cfg {
            refund_window_days: 3,
            ..Cfg::deposit_small()
        },
        &[
            "A,8062,2026-11-01,300.00,2026-11-03", // volume reached on the window's last day = deactivation
            "B,8062,2026-11-01,300.00,2026-11-03", // no volume: final settlement and window end together
            "C,8062,2026-11-01,300.00,2026-11-04", // window ends the day before deactivation
        ],
        &[
            "A1,A,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "A2,A,2026-11-03 10:00:00,purchase,2000.00,debit,,",
            "B1,B,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "B2,B,2026-11-03 10:00:00,purchase,150.00,debit,,",
            "C1,C,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "C2,C,2026-11-03 10:00:00,purchase,10.00,debit,,",
            "C3,C,2026-11-04 10:00:00,purchase,300.00,debit,,",
        ],
    )
    .run()
    .ok();
    for m in ["A", "B", "C"] {
        r.assert_row(
            "2026-11-02",
            m,
            "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
        );
    }
    // A: volume 2100 ≥ 1000 on 11-03: released for volume (100), not forfeited; fee 199
    // 2000 + 100 − 199 = 1901.00
    r.assert_row(
        "2026-11-04",
        "A",
        "1 2000.00 0.00 0.00 0.00 0.00 2000.00 0.00 100.00 0.00 199.00 1901.00 0.00",
    );
    // B: volume 250; the final settlement's release comes before the forfeit: 100 released
    // 150 + 100 − 199 = 51.00
    r.assert_row(
        "2026-11-04",
        "B",
        "1 150.00 0.00 0.00 0.00 0.00 150.00 0.00 100.00 0.00 199.00 51.00 0.00",
    );
    // C: window ends 11-03 with volume 110 → forfeit 100 at 11-04 (no hold in that row); payout 10
    r.assert_row(
        "2026-11-04",
        "C",
        "1 10.00 0.00 0.00 0.00 0.00 10.00 0.00 0.00 100.00 0.00 10.00 0.00",
    );
    // C's final settlement at 11-05: forfeited, so nothing released; 300 − 199 = 101.00
    r.assert_row(
        "2026-11-05",
        "C",
        "1 300.00 0.00 0.00 0.00 0.00 300.00 0.00 0.00 0.00 199.00 101.00 0.00",
    );
    // 2760 purchases = payouts 2063 + held 300 − released 200 + deactivation fees 597
    assert_eq!(r.total("payouts"), "2063.00");
    assert_eq!(r.total("deposit_held"), "300.00");
    assert_eq!(r.total("deposit_released"), "200.00");
    assert_eq!(r.total("deposit_forfeited"), "100.00");
    assert_eq!(r.total("deactivation_fees"), "597.00");
}

#[test]
fn deposit_of_zero_is_released_or_forfeited_in_rows_of_zeros() {
    // window 11-01 .. 11-05 for Z1 and Z2, refund_volume 1000.00
    let r = Case::new(
        &Cfg::deposit_small(),
        &[
            "OLD,8062,2026-01-01,0.00,",
            "Z1,8062,2026-11-01,0.00,",
            "Z2,8062,2026-11-01,0.00,",
        ],
        &[
            "O1,OLD,2026-11-01 10:00:00,purchase,10.00,debit,,",
            "Z1a,Z1,2026-11-02 10:00:00,purchase,1000.00,debit,,", // volume 1000 → released (0.00)
            "Z2a,Z2,2026-11-01 10:00:00,purchase,10.00,debit,,",   // volume 10: forfeit at the end
            "O2,OLD,2026-11-05 10:00:00,purchase,10.00,debit,,",   // horizon 11-05
        ],
    )
    .run()
    .ok();
    // deposit 0 is never held
    r.assert_row(
        "2026-11-02",
        "Z2",
        "1 10.00 0.00 0.00 0.00 0.00 10.00 0.00 0.00 0.00 0.00 10.00 0.00",
    );
    r.assert_row(
        "2026-11-03",
        "Z1",
        "1 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00 0.00 0.00 0.00 1000.00 0.00",
    );
    // Z2 forfeits 0.00 at 11-05 + 1 in a row of zeros; Z1 was released, so no row
    r.assert_row(
        "2026-11-06",
        "Z2",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_eq!(r.merchants_on("2026-11-06"), names(&["OLD", "Z2"]));
    assert_eq!(
        r.settlement_dates(),
        names(&["2026-11-02", "2026-11-03", "2026-11-06"])
    );
}

#[test]
fn refund_volume_zero_releases_on_the_first_window_date_in_the_run() {
    let r = Case::new(
        &Cfg {
            refund_volume: "0",
            ..Cfg::deposit_small()
        },
        &[
            "OLD,8062,2026-01-01,0.00,",
            "R1,8062,2026-11-03,500.00,", // window 11-03 .. 11-07
            "R2,8062,2026-10-30,500.00,", // window 10-30 .. 11-03, run starts 11-01
        ],
        &[
            "O1,OLD,2026-11-01 10:00:00,purchase,10.00,debit,,",
            "X1,R2,2026-11-01 10:00:00,purchase,200.00,debit,,",
            "O2,OLD,2026-11-04 10:00:00,purchase,10.00,debit,,",
            "X2,R1,2026-11-04 10:00:00,purchase,100.00,debit,,",
        ],
    )
    .run()
    .ok();
    // run start 11-01, horizon 11-04
    // R2: released on 11-01 (first window date not before the start) → S 11-02, so nothing is held
    r.assert_row(
        "2026-11-02",
        "R2",
        "1 200.00 0.00 0.00 0.00 0.00 200.00 0.00 0.00 0.00 0.00 200.00 0.00",
    );
    // R1: released on 11-03 → S 11-04, a row of its own, all zeros (nothing was held)
    r.assert_row(
        "2026-11-04",
        "R1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_eq!(r.merchants_on("2026-11-04"), names(&["R1"]));
    // then nothing is held
    r.assert_row(
        "2026-11-05",
        "R1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    assert_eq!(
        r.settlement_dates(),
        names(&["2026-11-02", "2026-11-04", "2026-11-05"])
    );
    assert_eq!(r.total("deposit_held"), "0.00");
}

#[test]
fn deposit_window_that_ended_before_the_start_plays_no_part() {
    let r = Case::new(
        &Cfg::deposit_small(),
        &[
            "M1,8062,2026-10-01,300.00,",           // window 10-01 .. 10-05
            "M2,8062,2026-10-01,300.00,2026-10-20", // deactivated before the start
        ],
        &[
            "P1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "P2,M1,2026-11-06 10:00:00,purchase,50.00,debit,,",
            "P3,M2,2026-11-02 10:00:00,purchase,10.00,debit,,", // merchant_inactive
        ],
    )
    .run()
    .ok();
    // nothing held, nothing forfeited, no row for the deposit
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    r.assert_row(
        "2026-11-07",
        "M1",
        "1 50.00 0.00 0.00 0.00 0.00 50.00 0.00 0.00 0.00 0.00 50.00 0.00",
    );
    assert_eq!(r.settlement_dates(), names(&["2026-11-02", "2026-11-07"]));
    assert_eq!(r.rejects(), rj(&[(4, "P3", "merchant_inactive")]));
    assert_eq!(r.total("deposit_forfeited"), "0.00");
    assert_eq!(r.total("deactivation_fees"), "0.00");
}

#[test]
fn horizon_through_later_than_the_last_transaction_makes_a_forfeit_happen() {
    // M1's window is 11-01 .. 11-05; 100 held after its only purchase
    let case = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,"],
        &["D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,"],
    );
    let held = "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00";
    // no --through: horizon 11-01, the window's end is outside the run
    let r = case.clone().run().ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-02"]));
    r.assert_row("2026-11-02", "M1", held);
    // --through 11-04: still before the window's end
    let r = case.clone().args(&["--through", "2026-11-04"]).run().ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-02"]));
    // --through 11-05: forfeit of the 100 held at 11-06, in a row of its own
    for through in ["2026-11-05", "2026-11-09"] {
        let r = case.clone().args(&["--through", through]).run().ok();
        assert_eq!(
            r.settlement_dates(),
            names(&["2026-11-02", "2026-11-06"]),
            "--through {through}"
        );
        r.assert_row("2026-11-02", "M1", held);
        r.assert_row(
            "2026-11-06",
            "M1",
            "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00",
        );
    }
}

#[test]
fn hold_is_taken_from_proceeds_after_the_carried_balance() {
    let r = Case::new(
        &Cfg::deposit_small(),
        &["M1,8062,2026-11-01,300.00,"],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "R1,M1,2026-11-02 10:00:00,refund,100.00,,D1,",
            "D2,M1,2026-11-03 10:00:00,purchase,150.00,debit,,",
        ],
    )
    .run()
    .ok();
    // min(100, 300) = 100 held
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    // proceeds −100: min(max(−100, 0), 200) = 0 held; carried −100
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 0.00 100.00 0.00 0.00 0.00 -100.00 0.00 0.00 0.00 0.00 0.00 -100.00",
    );
    // proceeds 150 − 100 = 50: min(50, 200) = 50 held; payout 0
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 150.00 0.00 0.00 0.00 -100.00 50.00 50.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_eq!(r.total("deposit_held"), "150.00");
}

#[test]
fn after_the_final_settlement_nothing_is_held_or_forfeited() {
    // window 11-01 .. 11-05, but M1 is deactivated on 11-02
    let r = Case::new(
        &Cfg::deposit_small(),
        &[
            "M1,8062,2026-11-01,300.00,2026-11-02",
            "OLD,8062,2026-01-01,0.00,",
        ],
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "O1,OLD,2026-11-03 10:00:00,purchase,10.00,debit,,",
        ],
    )
    .adjustments(&["A1,M1,2026-11-04,150.00,fee returned"])
    .args(&["--through", "2026-11-05"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    // final settlement: 100 released, fee 199 (used): 0 + 100 − 199 = −99
    r.assert_row(
        "2026-11-03",
        "M1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 100.00 0.00 199.00 0.00 -99.00",
    );
    // an adjustment after it: −99 + 150 = 51, nothing held (the deposit was released)
    r.assert_row(
        "2026-11-04",
        "M1",
        "0 0.00 0.00 0.00 150.00 -99.00 51.00 0.00 0.00 0.00 0.00 51.00 0.00",
    );
    // no forfeit at the window's end (11-05 + 1)
    assert_eq!(
        r.settlement_dates(),
        names(&["2026-11-02", "2026-11-03", "2026-11-04"])
    );
}

// ---------------------------------------------------------------------------
// 3.6 Deactivation fee and the return window

fn deactivation_case() -> Run {
    Case::new(
        &Cfg::base(),
        &[
            "OLD,8062,2026-01-01,0.00,",
            "W1,8062,2026-11-01,0.00,2026-11-03", // never used, 2 days
            "W2,8062,2026-11-01,0.00,2026-11-03", // a purchase, voided
            "W3,8062,2026-10-02,0.00,2026-11-01", // 30 days: not < 30
            "W4,8062,2026-10-03,0.00,2026-11-01", // 29 days: < 30
            "W5,8062,2026-11-01,0.00,2026-11-03", // a purchase, fully refunded
        ],
        &[
            "O1,OLD,2026-11-01 10:00:00,purchase,10.00,debit,,",
            "O2,OLD,2026-11-03 10:00:00,purchase,10.00,debit,,",
            "V1,W2,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "V2,W2,2026-11-02 10:05:00,void,100.00,,V1,",
            "F1,W5,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "F2,W5,2026-11-02 11:00:00,refund,100.00,,F1,",
        ],
    )
    .run()
    .ok()
}

#[test]
fn deactivation_fee_waived_for_an_unused_device_within_the_return_window() {
    let r = deactivation_case();
    // W1: 11-03 − 11-01 = 2 < 30, no purchase ever → fee 0; the row is written, all zeros
    r.assert_row(
        "2026-11-04",
        "W1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    // W4: 11-01 − 10-03 = 29 < 30 → waived
    r.assert_row(
        "2026-11-02",
        "W4",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
}

#[test]
fn deactivation_fee_charged_when_a_purchase_was_voided_or_refunded() {
    let r = deactivation_case();
    // W2: purchase and void count, move nothing
    r.assert_row(
        "2026-11-03",
        "W2",
        "2 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    // final settlement 11-04: the device was used → 199.00, nothing to take it from → carried −199.00
    r.assert_row(
        "2026-11-04",
        "W2",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    // W5: 100 bought, 100 refunded (fee 0, public welfare)
    r.assert_row(
        "2026-11-03",
        "W5",
        "2 100.00 100.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "W5",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
}

#[test]
fn deactivation_fee_charged_when_deactivated_after_the_return_window() {
    let r = deactivation_case();
    // W3: 11-01 − 10-02 = 30, not < 30 → 199.00 though never used; carried −199.00
    r.assert_row(
        "2026-11-02",
        "W3",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    // receivables: W2, W3, W5 owe 199.00 each = 597.00
    let c = r.control();
    assert_eq!(c.at("receivables.total").str(), "597.00");
    let mut owed: Vec<(String, String)> = c
        .at("receivables.merchants")
        .arr()
        .iter()
        .map(|m| {
            (
                m.at("merchant_id").str().to_string(),
                m.at("amount").str().to_string(),
            )
        })
        .collect();
    owed.sort();
    assert_eq!(
        owed,
        vec![
            ("W2".to_string(), "199.00".to_string()),
            ("W3".to_string(), "199.00".to_string()),
            ("W5".to_string(), "199.00".to_string())
        ]
    );
    assert_eq!(r.total("deactivation_fees"), "597.00");
    assert_eq!(r.total("carried_out_last"), "-597.00");
}

#[test]
fn deactivation_after_the_horizon_waits_for_a_later_run() {
    let case = Case::new(
        &Cfg::base(),
        &["M1,8062,2026-01-01,0.00,2026-11-05"],
        &["P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,"],
    );
    // horizon 11-02: the deactivation on 11-05 is not this run's
    let r = case.clone().run().ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-03"]));
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    assert_eq!(r.total("deactivation_fees"), "0.00");
    // --through 11-05: the final settlement at 11-06 takes the 199.00 fee (long past the return window)
    let r = case.args(&["--through", "2026-11-05"]).run().ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-03", "2026-11-06"]));
    r.assert_row(
        "2026-11-06",
        "M1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    assert_eq!(r.total("deactivation_fees"), "199.00");
}

// ---------------------------------------------------------------------------
// 3.4 Negative balances

#[test]
fn negative_balance_is_carried_forward_and_payout_never_negative() {
    let r = Case::new(
        &Cfg::base(),
        &[
            "M1,5999,2026-01-01,0.00,",
            "M2,5999,2026-01-01,0.00,",
            "OLD,8062,2026-01-01,0.00,",
        ],
        &[
            "N1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,", // 0.38
            "N2,M1,2026-11-03 10:00:00,refund,100.00,,N1,",
            "N3,M1,2026-11-04 10:00:00,purchase,30.00,debit,,", // 30 × 0.0038 = 0.114 → 0.11
            "O1,OLD,2026-11-05 10:00:00,purchase,10.00,debit,,",
            "N4,M1,2026-11-06 10:00:00,purchase,200.00,debit,,", // 0.76
            "N5,M2,2026-11-02 10:00:00,purchase,50.00,debit,,",  // 0.19
            "N6,M2,2026-11-03 10:00:00,refund,50.00,,N5,",
        ],
    )
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    // −100.00 → payout 0, carried −100.00
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 0.00 100.00 0.00 0.00 0.00 -100.00 0.00 0.00 0.00 0.00 0.00 -100.00",
    );
    // 30 − 0.11 − 100 = −70.11
    r.assert_row(
        "2026-11-05",
        "M1",
        "1 30.00 0.00 0.11 0.00 -100.00 -70.11 0.00 0.00 0.00 0.00 0.00 -70.11",
    );
    // nothing happens to M1 on 11-05: no row, though it owes 70.11
    assert_eq!(r.merchants_on("2026-11-06"), names(&["OLD"]));
    // 200 − 0.76 − 70.11 = 129.13
    r.assert_row(
        "2026-11-07",
        "M1",
        "1 200.00 0.00 0.76 0.00 -70.11 129.13 0.00 0.00 0.00 0.00 129.13 0.00",
    );
    // M2 ends owing 50.00
    r.assert_row(
        "2026-11-03",
        "M2",
        "1 50.00 0.00 0.19 0.00 0.00 49.81 0.00 0.00 0.00 0.00 49.81 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M2",
        "1 0.00 50.00 0.00 0.00 0.00 -50.00 0.00 0.00 0.00 0.00 0.00 -50.00",
    );
    let c = r.control();
    assert_eq!(c.at("receivables.total").str(), "50.00");
    let owed = c.at("receivables.merchants").arr();
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].at("merchant_id").str(), "M2");
    assert_eq!(owed[0].at("amount").str(), "50.00");
    // purchases 100 + 30 + 10 + 200 + 50 = 390.00; refunds 150.00; fees 0.38+0.11+0.76+0.19 = 1.44
    // payouts 99.62 + 10 + 129.13 + 49.81 = 288.56; 390 − 150 − 1.44 = 238.56 = 288.56 − 50
    assert_eq!(r.total("purchases"), "390.00");
    assert_eq!(r.total("refunds"), "150.00");
    assert_eq!(r.total("fees"), "1.44");
    assert_eq!(r.total("payouts"), "288.56");
    assert_eq!(r.total("carried_in_first"), "0.00");
    assert_eq!(r.total("carried_out_last"), "-50.00");
    assert_eq!(c.at("balanced"), &Json::Bool(true));
}

// ---------------------------------------------------------------------------
// 1.3 Adjustments

#[test]
fn adjustments_booked_and_rejected() {
    // run: start 11-02, horizon 11-04 → owns settlements 11-03 .. 11-05
    let r = Case::new(
        &Cfg::base(),
        &["M1,8062,2026-01-01,0.00,", "M2,8062,2026-11-10,100.00,"],
        &[
            "T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "T2,M1,2026-11-04 10:00:00,purchase,100.00,debit,,",
        ],
    )
    .adjustments(&[
        "A1,M1,2026-11-03,25.50,\"goodwill, per ticket 7\"", // line 2: booked
        "A2,M1,2026-11-04,-10.00,manual charge",             // line 3: booked, a row of its own
        "A3,M1,2026-11-02,5.00,too early",                   // line 4: before start + lag
        "A4,M1,2026-11-06,5.00,too late",                    // line 5: after horizon + lag
        "A1,M1,2026-11-03,1.00,duplicate",                   // line 6: adj_id taken
        "A5,MX,2026-11-03,1.00,unknown merchant",            // line 7
        "A6,M1,2026-11-03,0.00,zero",                        // line 8
        "A5,M1,2026-11-05,1.00,id free again", // line 9: A5 was never accepted → booked
        "A7,M2,2026-11-04,80.00,before activation", // line 10: booked, held
        "A8,M2,2026-11-05,50.00,before activation", // line 11: booked, held
        "A9,M1,2026-11-05,1.00",               // line 12: 4 fields
        "A10,M1,2026-11-05,1.005,three decimals", // line 13
        "A11,M1,2026-11-05,1.00,",             // line 14: empty reason
        "A12,M1,2026-11-31,1.00,no such date", // line 15
        "A13,M1,2026-11-05,-0.00,negative zero is zero", // line 16
        "A14,M1,2026-11-05,1000000000000.00,out of range", // line 17
        "A15,M1,2026-11-05,-1000000000000,out of range", // line 18
    ])
    .run()
    .ok();
    // 11-03: T1 100 (fee 0) + A1 25.50 = 125.50
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.00 25.50 0.00 125.50 0.00 0.00 0.00 0.00 125.50 0.00",
    );
    // 11-04: only A2 −10.00 → payout 0, carried −10.00
    r.assert_row(
        "2026-11-04",
        "M1",
        "0 0.00 0.00 0.00 -10.00 0.00 -10.00 0.00 0.00 0.00 0.00 0.00 -10.00",
    );
    // 11-05: T2 100 + A5 1.00 − 10.00 carried = 91.00
    r.assert_row(
        "2026-11-05",
        "M1",
        "1 100.00 0.00 0.00 1.00 -10.00 91.00 0.00 0.00 0.00 0.00 91.00 0.00",
    );
    // M2 (activated 11-10, deposit 100.00): rows before activation, and they hold:
    // 11-04: min(80, 100 − 0) = 80 held, payout 0
    r.assert_row(
        "2026-11-04",
        "M2",
        "0 0.00 0.00 0.00 80.00 0.00 80.00 80.00 0.00 0.00 0.00 0.00 0.00",
    );
    // 11-05: min(50, 100 − 80) = 20 held, payout 30
    r.assert_row(
        "2026-11-05",
        "M2",
        "0 0.00 0.00 0.00 50.00 0.00 50.00 20.00 0.00 0.00 0.00 30.00 0.00",
    );
    assert_eq!(
        r.rejects_with_file(),
        [
            (4, "A3"),
            (5, "A4"),
            (6, "A1"),
            (7, "A5"),
            (8, "A6"),
            (12, ""),
            (13, "A10"),
            (14, "A11"),
            (15, "A12"),
            (16, "A13"),
            (17, "A14"),
            (18, "A15"),
        ]
        .iter()
        .map(|(l, id)| (
            "adjustments.csv".to_string(),
            *l,
            id.to_string(),
            "bad_adjustment".to_string()
        ))
        .collect::<Vec<_>>()
    );
    // 25.50 − 10.00 + 1.00 + 80.00 + 50.00 = 146.50
    assert_eq!(r.total("adjustments"), "146.50");
    assert_eq!(r.total("deposit_held"), "100.00");
    let c = r.control();
    assert_eq!(c.at("inputs.adjustments.rows_read").num(), 17);
    assert_eq!(c.at("inputs.adjustments.rows_accepted").num(), 5);
    assert_eq!(c.at("inputs.adjustments.rows_rejected").num(), 12);
}

#[test]
fn adjustment_range_follows_the_lag() {
    // lag 2, business dates 11-02 .. 11-03 → owns settlements 11-04 .. 11-05
    let r = Case::new(
        &Cfg {
            lag: 2,
            ..Cfg::base()
        },
        &["M1,8062,2026-01-01,0.00,"],
        &[
            "T1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,",
            "T2,M1,2026-11-03 10:00:00,purchase,100.00,debit,,",
        ],
    )
    .adjustments(&[
        "A1,M1,2026-11-03,1.00,before", // 2
        "A2,M1,2026-11-04,2.00,first",  // 3
        "A3,M1,2026-11-05,3.00,last",   // 4
        "A4,M1,2026-11-06,4.00,after",  // 5
    ])
    .run()
    .ok();
    // 100 + 2.00 = 102.00; 100 + 3.00 = 103.00
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.00 2.00 0.00 102.00 0.00 0.00 0.00 0.00 102.00 0.00",
    );
    r.assert_row(
        "2026-11-05",
        "M1",
        "1 100.00 0.00 0.00 3.00 0.00 103.00 0.00 0.00 0.00 0.00 103.00 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[(2, "A1", "bad_adjustment"), (5, "A4", "bad_adjustment")])
    );
}

#[test]
fn adjustments_in_a_run_without_a_start_are_rejected() {
    let case = Case::new(&Cfg::base(), &["M1,8062,2026-01-01,0.00,"], &[])
        .adjustments(&["A1,M1,2026-11-03,10.00,nothing to book into"]);
    // no accepted transaction: no start, no horizon
    let r = case.clone().run().ok();
    assert!(r.settlement_files().is_empty());
    assert_eq!(r.rejects(), rj(&[(2, "A1", "bad_adjustment")]));
    assert_eq!(r.control().at("run.start"), &Json::Null);
    // --through gives a horizon but still no start
    let r = case.args(&["--through", "2026-11-02"]).run().ok();
    assert!(r.settlement_files().is_empty());
    assert_eq!(r.rejects(), rj(&[(2, "A1", "bad_adjustment")]));
}

// ---------------------------------------------------------------------------
// 1. Inputs: physical lines, headers, malformed rows

#[test]
fn reject_lines_are_physical_lines() {
    let mut t: Vec<u8> = Vec::new();
    t.extend_from_slice("\u{FEFF}\r\n".as_bytes()); // 1: BOM, then a blank line
    t.extend_from_slice(b"txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc,note\r\n"); // 2: header
    t.extend_from_slice(b"K1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,,\r\n"); // 3: ok
    t.extend_from_slice(b"\r\n"); // 4: blank
    t.extend_from_slice(b"K2,M1,2026-11-02 10:00:00,purchase,abc,debit,,,\r\n"); // 5: bad_amount
    t.extend_from_slice(b"K3,M1,2026-11-02 10:00:00,purchase,10.00,debit,,,\"two\r\nlines\"\r\n"); // 6-7: ok
    t.extend_from_slice(b"K4,M1,2026-11-02 10:00:00,sale,10.00,debit,,,\r\n"); // 8: bad_type
    t.extend_from_slice(b"K5,M1,2026-11-02 10:00:00,purchase,10.00,visa,,,\"a\n\nb\"\n"); // 9-11: bad_card
    t.extend_from_slice(b"K6,M1,2026-11-02 25:00:00,purchase,10.00,debit,,,\r"); // 12: bad_timestamp, lone CR
    t.extend_from_slice(b"K7,M1,2026-11-02 10:00:00,purchase,20.00,debit,,,\n"); // 13: ok
    t.extend_from_slice(b"\n"); // 14: blank
    t.extend_from_slice(b"   \n"); // 15: a line of spaces: one field → malformed_row
    t.extend_from_slice(b"\r"); // 16: blank (lone CR)
    t.extend_from_slice(b"K8,MX,2026-11-02 10:00:00,purchase,10.00,debit,,,"); // 17: unknown_merchant, no final newline
    let mut a: Vec<u8> = Vec::new();
    a.extend_from_slice("\u{FEFF}adj_id,merchant_id,settlement_date,amount,reason\r\n".as_bytes()); // 1
    a.extend_from_slice(b"\r\n"); // 2: blank
    a.extend_from_slice(b"A1,M1,2026-11-03,5.00,ok\r\n"); // 3: booked
    a.extend_from_slice(b"A2,MX,2026-11-03,5.00,\"multi\r\nline\"\r\n"); // 4-5: unknown merchant
    a.extend_from_slice(b"A3,M9,2026-11-03,1.00,x"); // 6: unknown merchant
    let r = Case::raw(
        Cfg::base().toml(),
        merchants(&["M1,8062,2026-01-01,0.00,"]),
        t,
    )
    .adjustments_raw(a)
    .run()
    .ok();
    // K1 + K3 + K7 = 130.00 (fee 0) + A1 5.00 = 135.00
    r.assert_row(
        "2026-11-03",
        "M1",
        "3 130.00 0.00 0.00 5.00 0.00 135.00 0.00 0.00 0.00 0.00 135.00 0.00",
    );
    assert_eq!(
        r.rejects_with_file(),
        vec![
            (
                "transactions.csv".to_string(),
                5,
                "K2".to_string(),
                "bad_amount".to_string()
            ),
            (
                "transactions.csv".to_string(),
                8,
                "K4".to_string(),
                "bad_type".to_string()
            ),
            (
                "transactions.csv".to_string(),
                9,
                "K5".to_string(),
                "bad_card".to_string()
            ),
            (
                "transactions.csv".to_string(),
                12,
                "K6".to_string(),
                "bad_timestamp".to_string()
            ),
            (
                "transactions.csv".to_string(),
                15,
                "".to_string(),
                "malformed_row".to_string()
            ),
            (
                "transactions.csv".to_string(),
                17,
                "K8".to_string(),
                "unknown_merchant".to_string()
            ),
            (
                "adjustments.csv".to_string(),
                4,
                "A2".to_string(),
                "bad_adjustment".to_string()
            ),
            (
                "adjustments.csv".to_string(),
                6,
                "A3".to_string(),
                "bad_adjustment".to_string()
            ),
        ]
    );
    let c = r.control();
    assert_eq!(c.at("inputs.transactions.0.rows_read").num(), 9);
    assert_eq!(c.at("inputs.transactions.0.rows_accepted").num(), 3);
    assert_eq!(c.at("inputs.transactions.0.rows_rejected").num(), 6);
}

#[test]
fn reject_lines_are_physical_lines_in_a_large_file() {
    // ~12 MB, so the engine reads it in several pieces: CR LF, LF and lone CR line ends,
    // quoted line ends every 97th row, a blank line after every 1001st, and a row for an
    // unknown merchant every 503rd. The line of each row is counted here as it is written.
    let n = 200_000u64;
    let mut t: Vec<u8> =
        b"txn_id,merchant_id,ts,type,amount,card,orig_txn_id,mcc,note\r\n".to_vec();
    let mut line = 2u64;
    let mut want = Vec::new();
    for i in 0..n {
        let bad = i % 503 == 0;
        let quoted = i % 97 == 0;
        let end = match i % 7 {
            3 => "\r",
            5 => "\n",
            _ => "\r\n",
        };
        let note = if quoted { "\"x\r\ny\"" } else { "n" };
        let merchant = if bad { "MX" } else { "M1" };
        t.extend_from_slice(
            format!("L{i},{merchant},2026-11-02 10:00:00,purchase,1.00,debit,,,{note}{end}")
                .as_bytes(),
        );
        if bad {
            want.push((line, format!("L{i}"), "unknown_merchant".to_string()));
        }
        line += 1 + quoted as u64;
        if i % 1001 == 0 {
            t.extend_from_slice(b"\r\n");
            line += 1;
        }
    }
    let r = Case::raw(
        Cfg::base().toml(),
        merchants(&["M1,8062,2026-01-01,0.00,"]),
        t,
    )
    .args(&["--threads", "4"])
    .run()
    .ok();
    let accepted = n - want.len() as u64; // 200000 − 398 = 199602, each 1.00, fee 0
    assert_eq!(want.len(), 398);
    r.assert_row(
        "2026-11-03",
        "M1",
        &format!("{accepted} {accepted}.00 0.00 0.00 0.00 0.00 {accepted}.00 0.00 0.00 0.00 0.00 {accepted}.00 0.00"),
    );
    assert_eq!(r.rejects(), want);
}

#[test]
fn malformed_rows() {
    let id65 = "X".repeat(65);
    let id64 = "Y".repeat(64);
    let id64_cjk = format!("{}a", "号".repeat(21)); // 21 × 3 + 1 = 64 bytes
    let id66_cjk = "号".repeat(22); // 66 bytes, 22 characters
    let m33 = "M".repeat(33);
    let mut t = String::from(TXN_HEADER);
    t.push('\n');
    let rows: Vec<String> = vec![
        "G1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,".into(), // 2 ok
        "G2,M1,2026-11-02 10:00:00,purchase,100.00,debit,".into(),  // 3: 7 fields
        "G3,M1,2026-11-02 10:00:00,purchase,100.00,debit,,,extra".into(), // 4: 9 fields
        "G4,,2026-11-02 10:00:00,purchase,100.00,debit,,".into(),   // 5: empty merchant_id
        "G5,M1,,purchase,100.00,debit,,".into(),                    // 6: empty ts
        "G6,M1,2026-11-02 10:00:00,purchase,100.00,,,".into(),      // 7: purchase without card
        "G7,M1,2026-11-02 10:00:00,refund,10.00,,,".into(),         // 8: refund without orig_txn_id
        "G8,M1,2026-11-02 10:00:00,void,100.00,,  ,".into(),        // 9: orig_txn_id of spaces
        "G9,M1,2026-11-02 10:00:00,Purchase,100.00,,,".into(), // 10: not exactly "purchase": bad_type
        "G10,M1,2026-11-02 10:00:00,purchase,,debit,,".into(), // 11: empty amount
        ",M1,2026-11-02 10:00:00,purchase,100.00,debit,,".into(), // 12: empty txn_id
        "@@UTF8@@".into(),                                     // 13: invalid UTF-8 (below)
        format!("{id65},M1,2026-11-02 10:00:00,purchase,100.00,debit,,"), // 14: 65 bytes
        format!("{id64},M1,2026-11-02 10:00:00,purchase,1.00,debit,,"), // 15: 64 bytes, ok
        format!("{id64_cjk},M1,2026-11-02 10:00:00,purchase,2.00,debit,,"), // 16: 64 bytes, ok
        format!("{id66_cjk},M1,2026-11-02 10:00:00,purchase,3.00,debit,,"), // 17: 66 bytes
        format!("G12,{m33},2026-11-02 10:00:00,purchase,3.00,debit,,"), // 18: merchant_id 33 bytes
        format!("{id65},M1,2026-11-02 10:00:00,purchase,abc,debit,,"), // 19: step 1 before step 2
        "G13,M1,2026-11-02 11:00:00,refund,10.00,,G1,".into(), // 20 ok
        "G14,M1,2026-11-02 11:00:00,refund,10.00,bogus,G1,".into(), // 21 ok: card only checked on purchases
    ];
    for r in &rows {
        t.push_str(r);
        t.push('\n');
    }
    let mut bytes = t.into_bytes();
    let marker = b"@@UTF8@@";
    let pos = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    bytes.splice(
        pos..pos + marker.len(),
        b"G11,M1,2026-11-02 10:00:00,purchase,5.00,debit,,58\xff2"
            .iter()
            .cloned(),
    );
    let r = Case::raw(
        Cfg::base().toml(),
        merchants(&["M1,8062,2026-01-01,0.00,"]),
        bytes,
    )
    .run()
    .ok();
    // accepted: G1 100 + id64 1 + id64_cjk 2 = 103.00; refunds G13 + G14 = 20.00; fee 0; 83.00
    r.assert_row(
        "2026-11-03",
        "M1",
        "5 103.00 20.00 0.00 0.00 0.00 83.00 0.00 0.00 0.00 0.00 83.00 0.00",
    );
    assert_eq!(
        r.rejects(),
        vec![
            (3, "".to_string(), "malformed_row".to_string()),
            (4, "".to_string(), "malformed_row".to_string()),
            (5, "G4".to_string(), "malformed_row".to_string()),
            (6, "G5".to_string(), "malformed_row".to_string()),
            (7, "G6".to_string(), "malformed_row".to_string()),
            (8, "G7".to_string(), "malformed_row".to_string()),
            (9, "G8".to_string(), "malformed_row".to_string()),
            (10, "G9".to_string(), "bad_type".to_string()),
            (11, "G10".to_string(), "malformed_row".to_string()),
            (12, "".to_string(), "malformed_row".to_string()),
            (13, "G11".to_string(), "malformed_row".to_string()),
            (14, id65.clone(), "malformed_row".to_string()),
            (17, id66_cjk.clone(), "malformed_row".to_string()),
            (18, "G12".to_string(), "malformed_row".to_string()),
            (19, id65.clone(), "malformed_row".to_string()),
        ]
    );
}

#[test]
fn validation_steps_in_order() {
    let r = Case::new(
        &Cfg::base(),
        &["M1,8062,2026-01-01,0.00,"],
        &[
            "V1,M1,2026-13-01 10:00:00,purchase,abc,debit,,", // amount before ts
            "V2,M1,2026-13-01 10:00:00,sale,10.00,debit,,",   // ts before type
            "V3,M1,2026-11-02 10:00:00,sale,10.00,visa,,58a1", // type before card
            "V4,M1,2026-11-02 10:00:00,purchase,10.00,visa,,58a1", // card before mcc
            "V5,M1,2026-11-02 10:00:00,purchase,10.00,debit,,58a1", // mcc
            "V6,MX,2026-11-02 10:00:00,purchase,10.00,debit,,58a1", // step 2 before step 4
            "V7,MX,2026-11-02 10:00:00,purchase,60000.00,debit,,", // step 4 before step 5
            "V8,M1,2026-11-02 10:00:00,refund,10.00,,NOPE,12345", // mcc is checked on every row
            "V9,M1,2026-11-02 10:00:00,refund,10.00,,NOPE,",  // step 6
            "V0,M1,2026-11-02 10:00:00,purchase,10.00,debit,,5812", // dining: 0.049 → 0.05
        ],
    )
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 10.00 0.00 0.05 0.00 0.00 9.95 0.00 0.00 0.00 0.00 9.95 0.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (2, "V1", "bad_amount"),
            (3, "V2", "bad_timestamp"),
            (4, "V3", "bad_type"),
            (5, "V4", "bad_card"),
            (6, "V5", "bad_mcc"),
            (7, "V6", "bad_mcc"),
            (8, "V7", "unknown_merchant"),
            (9, "V8", "bad_mcc"),
            (10, "V9", "bad_reference"),
        ])
    );
}

#[test]
fn timestamp_forms() {
    let good = [
        "2026-11-02T10:00:00+08:00",
        "2026-11-02 10:00:00",
        "2026-11-02 10:00:00.1",
        "2026-11-02T10:00:00.123456789Z",
        "2026-11-02T23:00:00+23:59", // 2026-11-01T23:01Z = 07:01 on 11-02 at +08
        "2026-11-01T10:00:00-23:59", // 2026-11-02T09:59Z = 17:59 on 11-02 at +08
        "2026-11-02T23:59:59",
        "2026-11-02T00:00:00",
        "2026-11-02T10:00:00+00:00",
        "\" 2026-11-02T10:00:00Z \"", // trimmed after unquoting
    ];
    let bad = [
        "2026-02-29 10:00:00", // 2026 is not a leap year
        "2026-04-31 10:00:00",
        "2026-11-02T24:00:00",
        "2026-11-02T23:59:60",
        "2026-11-02t10:00:00",
        "2026-11-02T10:00:00z",
        "2026-11-02T10:00:00.1234567890",
        "2026-11-02T10:00:00.",
        "2026-11-02T10:00:00+24:00",
        "2026-11-02T10:00:00+08:60",
        "2026-11-02T10:00",
        "2026-11-02  10:00:00",
        "2026-11-2 10:00:00",
        "2026-11-02T10:00:00+0800",
        "2026-11-02T10:00:00 +08:00",
        "2026-11-02",
        "2026-11-02T10:00:00+08",
    ];
    let mut rows = Vec::new();
    for (i, ts) in good.iter().enumerate() {
        rows.push(format!("G{i},M1,{ts},purchase,1.00,debit,,"));
    }
    for (i, ts) in bad.iter().enumerate() {
        rows.push(format!("B{i},M1,{ts},purchase,1.00,debit,,"));
    }
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let r = Case::new(&Cfg::base(), &["M1,8062,2026-01-01,0.00,"], &rows)
        .run()
        .ok();
    // 10 good timestamps, all on business date 11-02: 10 × 1.00
    assert_eq!(r.settlement_dates(), names(&["2026-11-03"]));
    r.assert_row(
        "2026-11-03",
        "M1",
        "10 10.00 0.00 0.00 0.00 0.00 10.00 0.00 0.00 0.00 0.00 10.00 0.00",
    );
    let want: Vec<(u64, String, String)> = (0..bad.len())
        .map(|i| {
            (
                (good.len() + i + 2) as u64,
                format!("B{i}"),
                "bad_timestamp".to_string(),
            )
        })
        .collect();
    assert_eq!(r.rejects(), want);
}

#[test]
fn amount_forms() {
    let good = ["1", "1.5", "0.01", "\t2.25 ", "007.00"]; // 1 + 1.50 + 0.01 + 2.25 + 7.00 = 11.76
    let bad = [
        "0",
        "0.00",
        "1.",
        ".5",
        "+1.00",
        "-1.00",
        "1e2",
        "\"1,000.00\"",
        "1.234",
        "1 000",
        "1000000000000",
        "1000000000000.00",
        "abc",
        "１",
        "1.00.0",
    ];
    let mut rows = Vec::new();
    for (i, a) in good.iter().enumerate() {
        rows.push(format!("G{i},M1,2026-11-02 10:00:00,purchase,{a},debit,,"));
    }
    for (i, a) in bad.iter().enumerate() {
        rows.push(format!("B{i},M1,2026-11-02 10:00:00,purchase,{a},debit,,"));
    }
    // under 10^12 but over max_txn_amount: a valid amount, over_limit
    rows.push("L1,M1,2026-11-02 10:00:00,purchase,999999999999.99,debit,,".to_string());
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let r = Case::new(&Cfg::base(), &["M1,8062,2026-01-01,0.00,"], &rows)
        .run()
        .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "5 11.76 0.00 0.00 0.00 0.00 11.76 0.00 0.00 0.00 0.00 11.76 0.00",
    );
    let mut want: Vec<(u64, String, String)> = (0..bad.len())
        .map(|i| {
            (
                (good.len() + i + 2) as u64,
                format!("B{i}"),
                "bad_amount".to_string(),
            )
        })
        .collect();
    want.push((
        (good.len() + bad.len() + 2) as u64,
        "L1".to_string(),
        "over_limit".to_string(),
    ));
    assert_eq!(r.rejects(), want);
}

#[test]
fn columns_by_name_in_any_order_unknown_and_empty_names_ignored() {
    // no mcc column (optional); an empty header name and an unknown column
    let t = "amount,,type,ts,card,merchant_id,extra,txn_id,orig_txn_id\n\
             100.00,whatever,purchase,2026-11-02 10:00:00,debit,M1,foo,H1,\n\
             10.00,,refund,2026-11-02 11:00:00,,M1,bar,H2,H1\n";
    let r = Case::raw(Cfg::base().toml(), merchants(&[OLD_GENERAL]), t)
        .run()
        .ok();
    // 100 × 0.0038 = 0.38; 100 − 10 − 0.38 = 89.62
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 100.00 10.00 0.38 0.00 0.00 89.62 0.00 0.00 0.00 0.00 89.62 0.00",
    );
    // rejects.csv is always written: here the header alone
    assert_eq!(r.text("rejects.csv"), "file,line,txn_id,reason,detail\n");
}

#[test]
fn header_names_are_unquoted_and_trimmed() {
    let t = "\"txn_id\", merchant_id ,\tts,\"type\",amount,card\n\
             H1,M1,2026-11-02 10:00:00,purchase,100.00,debit\n";
    let r = Case::raw(Cfg::base().toml(), merchants(&[OLD_GENERAL]), t)
        .run()
        .ok();
    // 100 × 0.0038 = 0.38; 99.62
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
}

#[test]
fn settlement_rows_sorted_bytewise_and_minimally_quoted() {
    let r = Case::new(
        &Cfg::base(),
        &[
            "M2,8062,2026-01-01,0.00,",
            "M10,8062,2026-01-01,0.00,",
            "Z,8062,2026-01-01,0.00,",
            "a,8062,2026-01-01,0.00,",
            "É,8062,2026-01-01,0.00,",
            "\"M,2\",8062,2026-01-01,0.00,",
        ],
        &[
            "T1,M2,2026-11-02 10:00:00,purchase,1.00,debit,,",
            "T2,M10,2026-11-02 10:00:00,purchase,1.00,debit,,",
            "T3,Z,2026-11-02 10:00:00,purchase,1.00,debit,,",
            "T4,a,2026-11-02 10:00:00,purchase,1.00,debit,,",
            "T5,É,2026-11-02 10:00:00,purchase,1.00,debit,,",
            "T6,\"M,2\",2026-11-02 10:00:00,purchase,1.00,debit,,",
        ],
    )
    .run()
    .ok();
    // bytes: ',' 0x2C < '1' 0x31 < '2' 0x32; 'M' 0x4D < 'Z' 0x5A < 'a' 0x61 < 'É' 0xC3 0x89
    assert_eq!(
        r.merchants_on("2026-11-03"),
        names(&["M,2", "M10", "M2", "Z", "a", "É"])
    );
    let text = r.text("settlement-2026-11-03.csv");
    assert!(
        text.contains(
            "\n2026-11-03,\"M,2\",1,1.00,0.00,0.00,0.00,0.00,1.00,0.00,0.00,0.00,0.00,1.00,0.00\n"
        ),
        "a merchant_id with a comma is quoted, nothing else is:\n{text}"
    );
    assert_eq!(
        text.matches('"').count(),
        2,
        "only the one field is quoted:\n{text}"
    );
}

#[test]
fn files_may_order_columns_differently_and_each_may_have_a_bom() {
    let a =
        "txn_id,merchant_id,ts,type,amount,card\nP1,M1,2026-11-02 10:00:00,purchase,100.00,debit\n";
    let b = "\u{FEFF}orig_txn_id,type,amount,ts,merchant_id,txn_id\r\nP1,refund,30.00,2026-11-02 11:00:00,M1,R1\r\n";
    let r = Case::new(&Cfg::base(), &[OLD_GENERAL], &[])
        .txn_files(&[("a.csv", a.as_bytes()), ("b.csv", b.as_bytes())])
        .run()
        .ok();
    // 100 − 30 − 0.38 = 69.62
    r.assert_row(
        "2026-11-03",
        "M1",
        "2 100.00 30.00 0.38 0.00 0.00 69.62 0.00 0.00 0.00 0.00 69.62 0.00",
    );
    assert!(r.rejects().is_empty());
}

#[test]
fn optional_columns_absent_make_rows_that_need_them_malformed() {
    // no card, no orig_txn_id: the header is fine, purchases and refunds are malformed
    let t = "txn_id,merchant_id,ts,type,amount\n\
             C1,M1,2026-11-02 10:00:00,purchase,100.00\n\
             C2,M1,2026-11-02 11:00:00,refund,10.00\n\
             C3,M1,2026-11-02 11:00:00,void,100.00\n";
    let r = Case::raw(Cfg::base().toml(), merchants(&[OLD_GENERAL]), t)
        .run()
        .ok();
    assert!(r.settlement_files().is_empty());
    assert_eq!(
        r.rejects(),
        rj(&[
            (2, "C1", "malformed_row"),
            (3, "C2", "malformed_row"),
            (4, "C3", "malformed_row")
        ])
    );
}

// ---------------------------------------------------------------------------
// 4. Outputs: never −0.00

#[test]
fn negative_zero_is_never_written() {
    let r = Case::new(
        &Cfg {
            refund_fee: "proportional",
            ..Cfg::base()
        },
        &["M1,8062,2026-01-01,0.00,", "M2,5999,2026-01-01,0.00,"],
        &[
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,", // fee 0
            "R1,M1,2026-11-03 10:00:00,refund,100.00,,P1,",      // returns round(0 × 1) − 0 = 0
            "P2,M2,2026-11-02 10:00:00,purchase,0.01,debit,,",   // 0.01 × 0.0038 = 0.000038 → 0.00
            "R2,M2,2026-11-03 10:00:00,refund,0.01,,P2,",        // returns 0
        ],
    )
    .adjustments(&[
        "A1,M1,2026-11-05,100.00,clears the balance",
        "A2,M2,2026-11-05,0.01,clears the balance",
    ])
    .args(&["--through", "2026-11-04", "--detail"])
    .run()
    .ok();
    r.assert_row(
        "2026-11-03",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 0.00 0.00 0.00 0.00 100.00 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 0.00 100.00 0.00 0.00 0.00 -100.00 0.00 0.00 0.00 0.00 0.00 -100.00",
    );
    // −100 + 100 = 0: carried_out min(0, 0) = 0.00, not −0.00
    r.assert_row(
        "2026-11-05",
        "M1",
        "0 0.00 0.00 0.00 100.00 -100.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    r.assert_row(
        "2026-11-03",
        "M2",
        "1 0.01 0.00 0.00 0.00 0.00 0.01 0.00 0.00 0.00 0.00 0.01 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "M2",
        "1 0.00 0.01 0.00 0.00 0.00 -0.01 0.00 0.00 0.00 0.00 0.00 -0.01",
    );
    r.assert_row(
        "2026-11-05",
        "M2",
        "0 0.00 0.00 0.00 0.01 -0.01 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    assert_eq!(r.total("fees"), "0.00");
    assert_eq!(r.total("carried_out_last"), "0.00");
    for (name, bytes) in &r.files {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("-0.00"), "{name} contains -0.00:\n{text}");
    }
    assert!(
        r.files.keys().any(|k| k.starts_with("fees-")),
        "--detail writes fees files"
    );
}

// ---------------------------------------------------------------------------
// 1.4 Configuration defaults

#[test]
fn settings_left_out_take_the_documented_defaults() {
    let cfg = BASE_CATEGORIES.to_string(); // categories only
    let r = Case::raw(
        cfg.clone(),
        merchants(&[
            "M1,5999,2026-01-01,0.00,",
            "N1,8062,2026-11-01,100.00,",
            "N2,8062,2026-11-01,100.00,",
            "N3,8062,2026-08-05,100.00,", // 90-day window 08-05 .. 11-02: ended before the start
            "N4,8062,2026-08-06,100.00,", // window 08-06 .. 11-03: ends in the run
            "D1,8062,2026-10-04,0.00,2026-11-03", // 30 days: not within the 30-day return window
        ]),
        txns(&[
            "P1,M1,2026-11-02T16:00:00Z,purchase,75.00,debit,,", // +08:00 → 11-03; 0.285 → 0.29 (half_up)
            "P2,M1,2026-11-03 10:00:00,purchase,50000.00,debit,,", // at max_txn_amount: 190.00
            "P3,M1,2026-11-03 10:00:00,purchase,50000.01,debit,,", // over_limit
            "R1,M1,2026-11-03 11:00:00,refund,10.00,,P1,",       // kept: no fee back
            "Q1,N1,2026-11-03 10:00:00,purchase,30000.00,debit,,", // volume 30000 → released
            "Q2,N2,2026-11-03 10:00:00,purchase,29999.99,debit,,", // short by 0.01 → 100 held
        ]),
    )
    .run()
    .ok();
    // everything on business date 11-03 → settlement 11-04 (lag 1)
    assert_eq!(r.settlement_dates(), names(&["2026-11-04"]));
    assert_eq!(
        r.merchants_on("2026-11-04"),
        names(&["D1", "M1", "N1", "N2", "N4"])
    );
    // M1: 75 + 50000 = 50075.00; fees 0.29 + 190.00 = 190.29; 50075 − 10 − 190.29 = 49874.71
    r.assert_row(
        "2026-11-04",
        "M1",
        "3 50075.00 10.00 190.29 0.00 0.00 49874.71 0.00 0.00 0.00 0.00 49874.71 0.00",
    );
    r.assert_row(
        "2026-11-04",
        "N1",
        "1 30000.00 0.00 0.00 0.00 0.00 30000.00 0.00 0.00 0.00 0.00 30000.00 0.00",
    );
    // N2: min(29999.99, 100) = 100 held; 29899.99
    r.assert_row(
        "2026-11-04",
        "N2",
        "1 29999.99 0.00 0.00 0.00 0.00 29999.99 100.00 0.00 0.00 0.00 29899.99 0.00",
    );
    // N4: window ends 11-03 with nothing held: forfeits 0.00 in a row of zeros
    r.assert_row(
        "2026-11-04",
        "N4",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00",
    );
    // D1: fee 199.00
    r.assert_row(
        "2026-11-04",
        "D1",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    assert_eq!(r.rejects(), rj(&[(4, "P3", "over_limit")]));

    // default refund_retention_days = 180: 11-03 + 180 days = 2027-05-02
    let r = Case::raw(
        cfg,
        merchants(&["M1,5999,2026-01-01,0.00,"]),
        txns(&[
            "P1,M1,2026-11-03 10:00:00,purchase,100.00,debit,,",
            "R1,M1,2027-05-02 10:00:00,refund,10.00,,P1,", // 180 days → accepted
            "R2,M1,2027-05-03 10:00:00,refund,10.00,,P1,", // 181 days → bad_reference
        ]),
    )
    .run()
    .ok();
    assert_eq!(r.settlement_dates(), names(&["2026-11-04", "2027-05-03"]));
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 100.00 0.00 0.38 0.00 0.00 99.62 0.00 0.00 0.00 0.00 99.62 0.00",
    );
    r.assert_row(
        "2027-05-03",
        "M1",
        "1 0.00 10.00 0.00 0.00 0.00 -10.00 0.00 0.00 0.00 0.00 0.00 -10.00",
    );
    assert_eq!(r.rejects(), rj(&[(4, "R2", "bad_reference")]));
}

// ---------------------------------------------------------------------------
// 6. Runs that carry state

fn state_merchants() -> [&'static str; 4] {
    [
        "M1,8062,2026-11-01,300.00,", // deposit 300, window 11-01 .. 11-05, volume 1000
        "M2,5999,2026-01-01,0.00,",
        "M3,5999,2026-01-01,0.00,",
        "W,8062,2026-11-01,0.00,2026-11-04", // deactivated 3 days after activation
    ]
}

fn state_cfg() -> Cfg {
    Cfg {
        refund_fee: "proportional",
        ..Cfg::deposit_small()
    }
}

/// Run 1: business dates 11-01 .. 11-02.
fn state_run_1() -> Run {
    Case::new(
        &state_cfg(),
        &state_merchants(),
        &[
            "D1,M1,2026-11-01 10:00:00,purchase,100.00,debit,,",
            "P1,M2,2026-11-02 10:00:00,purchase,100.00,credit,,", // 0.49
            "R1,M2,2026-11-02 11:00:00,refund,60.00,,P1,", // round(0.49 × 0.6 = 0.294) = 0.29 back
            "X1,M3,2026-11-01 10:00:00,purchase,50.00,debit,,", // 0.19
            "X2,M3,2026-11-02 10:00:00,refund,50.00,,X1,", // the whole 0.19 back
            "W1,W,2026-11-02 10:00:00,purchase,10.00,debit,,",
        ],
    )
    .args(&["--through", "2026-11-02"])
    .run()
    .ok()
}

#[test]
fn state_run_1_rows() {
    let r = state_run_1();
    r.assert_row(
        "2026-11-02",
        "M1",
        "1 100.00 0.00 0.00 0.00 0.00 100.00 100.00 0.00 0.00 0.00 0.00 0.00",
    );
    // 50 − 0.19 = 49.81
    r.assert_row(
        "2026-11-02",
        "M3",
        "1 50.00 0.00 0.19 0.00 0.00 49.81 0.00 0.00 0.00 0.00 49.81 0.00",
    );
    // fees 0.49 − 0.29 = 0.20; 100 − 60 − 0.20 = 39.80
    r.assert_row(
        "2026-11-03",
        "M2",
        "2 100.00 60.00 0.20 0.00 0.00 39.80 0.00 0.00 0.00 0.00 39.80 0.00",
    );
    // −50 + 0.19 = −49.81 carried
    r.assert_row(
        "2026-11-03",
        "M3",
        "1 0.00 50.00 -0.19 0.00 0.00 -49.81 0.00 0.00 0.00 0.00 0.00 -49.81",
    );
    r.assert_row(
        "2026-11-03",
        "W",
        "1 10.00 0.00 0.00 0.00 0.00 10.00 0.00 0.00 0.00 0.00 10.00 0.00",
    );
}

#[test]
fn state_carries_deposit_balances_refunds_fees_and_ids_into_the_next_run() {
    let r1 = state_run_1();
    let prev = r1.dir.path().join("out");
    let r = Case::new(
        &state_cfg(),
        &state_merchants(),
        &[
            "L1,M2,2026-11-02 23:00:00,purchase,10.00,debit,,", // 2: not after the state's horizon
            "D1,M2,2026-11-03 10:00:00,purchase,10.00,debit,,", // 3: D1 is in the state's index
            "R2,M2,2026-11-03 10:00:00,refund,50.00,,P1,",      // 4: 60 + 50 > 100
            "R3,M2,2026-11-03 11:00:00,refund,40.00,,P1,", // 5: 60 + 40 = 100: the rest of the fee, 0.49 − 0.29 = 0.20
            "V1,M2,2026-11-03 12:00:00,void,100.00,,P1,",  // 6: after refunds, another day
            "D2,M1,2026-11-03 10:00:00,purchase,950.00,debit,,", // 7: volume 100 + 950 = 1050 ≥ 1000
            "Q1,M2,2026-11-04 10:00:00,purchase,100.00,debit,,8062", // 8: fee 0
            "X3,M3,2026-11-03 10:00:00,purchase,80.00,debit,,",  // 9: 0.304 → 0.30
            "W2,W,2026-11-05 10:00:00,purchase,5.00,debit,,",    // 10: after W's deactivation
        ],
    )
    .args(&["--state-in", prev.to_str().unwrap()])
    .run()
    .ok();
    // start 11-03 (the day after the state's horizon), horizon 11-04
    assert_eq!(r.settlement_dates(), names(&["2026-11-04", "2026-11-05"]));
    // M1: released for volume: the 100 held in run 1 comes back; 950 + 100 = 1050
    r.assert_row(
        "2026-11-04",
        "M1",
        "1 950.00 0.00 0.00 0.00 0.00 950.00 0.00 100.00 0.00 0.00 1050.00 0.00",
    );
    // M2: refund 40, fee back 0.20: −40 + 0.20 = −39.80 carried
    r.assert_row(
        "2026-11-04",
        "M2",
        "1 0.00 40.00 -0.20 0.00 0.00 -39.80 0.00 0.00 0.00 0.00 0.00 -39.80",
    );
    r.assert_row(
        "2026-11-05",
        "M2",
        "1 100.00 0.00 0.00 0.00 -39.80 60.20 0.00 0.00 0.00 0.00 60.20 0.00",
    );
    // M3: carried −49.81 from run 1: 80 − 0.30 − 49.81 = 29.89
    r.assert_row(
        "2026-11-04",
        "M3",
        "1 80.00 0.00 0.30 0.00 -49.81 29.89 0.00 0.00 0.00 0.00 29.89 0.00",
    );
    // W: final settlement 11-05; it bought in run 1, so the fee is not waived
    r.assert_row(
        "2026-11-05",
        "W",
        "0 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 199.00 0.00 -199.00",
    );
    assert_eq!(
        r.rejects(),
        rj(&[
            (2, "L1", "late_transaction"),
            (3, "D1", "duplicate_txn_id"),
            (4, "R2", "refund_exceeds_original"),
            (6, "V1", "bad_void"),
            (10, "W2", "merchant_inactive"),
        ])
    );
    // purchases 950 + 100 + 80 = 1130.00; refunds 40.00; fees −0.20 + 0.30 = 0.10
    // first carried_in: M3 −49.81; payouts 1050 + 60.20 + 29.89 = 1140.09
    // 1130 − 40 − 0.10 − 49.81 = 1040.09 = 1140.09 − 100 + 199 − 199
    let c = r.control();
    for (k, v) in [
        ("purchases", "1130.00"),
        ("refunds", "40.00"),
        ("fees", "0.10"),
        ("carried_in_first", "-49.81"),
        ("payouts", "1140.09"),
        ("deposit_held", "0.00"),
        ("deposit_released", "100.00"),
        ("deactivation_fees", "199.00"),
        ("carried_out_last", "-199.00"),
    ] {
        assert_eq!(c.at(&format!("totals.{k}")).str(), v, "totals.{k}");
    }
    assert_eq!(c.at("run.start").str(), "2026-11-03");
    assert_eq!(c.at("run.horizon").str(), "2026-11-04");
    assert_eq!(c.at("balanced"), &Json::Bool(true));
}

#[test]
fn state_through_not_after_its_horizon_and_unreadable_state_are_usage_errors() {
    let r1 = state_run_1();
    let prev = r1.dir.path().join("out");
    let case = Case::new(
        &state_cfg(),
        &state_merchants(),
        &["Z1,M2,2026-11-03 10:00:00,purchase,10.00,debit,,"],
    );
    // --through equal to the state's horizon (11-02)
    let r = case
        .clone()
        .args(&[
            "--state-in",
            prev.to_str().unwrap(),
            "--through",
            "2026-11-02",
        ])
        .run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.out_exists);
    // a state folder that does not exist
    let r = case.clone().args(&["--state-in", "no-such-folder"]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.out_exists);
    // a folder with no state in it
    let empty = tempfile::tempdir().unwrap();
    let r = case
        .args(&["--state-in", empty.path().to_str().unwrap()])
        .run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.out_exists);
}

// ---------------------------------------------------------------------------
// 3.7 Conservation, and the fee rule, over random inputs.

mod property {
    use super::*;
    use proptest::prelude::*;

    /// round(amount_fen × rate_millionths / 10^6) to a whole fen, half up or half even,
    /// in integers only.
    fn fee_fen(amount_fen: i128, rate_millionths: i128, half_even: bool) -> i128 {
        let num = amount_fen * rate_millionths;
        let (q, r) = (num / 1_000_000, num % 1_000_000);
        if r * 2 > 1_000_000 || (r * 2 == 1_000_000 && (!half_even || q % 2 == 1)) {
            q + 1
        } else {
            q
        }
    }

    fn money(fen: i128) -> String {
        let sign = if fen < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        /// Random purchases, one merchant each, at a random 6-digit rate:
        /// every row's fee is the integer-rounded product, and the row adds up.
        #[test]
        fn every_fee_is_the_rounded_product(
            rate in 0i128..=4900,
            half_even in any::<bool>(),
            amounts in proptest::collection::vec(1i128..=5_000_000, 1..40),
        ) {
            let rate_str = format!("{}.{:06}", rate / 1_000_000, rate % 1_000_000);
            let cats: &'static str = Box::leak(format!(
                "[[category]]\nname = \"only\"\ndefault = true\ndebit_rate = \"{rate_str}\"\ncredit_rate = \"{rate_str}\"\n"
            ).into_boxed_str());
            let cfg = Cfg { categories: cats, rounding: if half_even { "half_even" } else { "half_up" }, ..Cfg::base() };
            let ms: Vec<String> = (0..amounts.len()).map(|i| format!("M{i:03},5999,2026-01-01,0.00,")).collect();
            let ts: Vec<String> = amounts.iter().enumerate()
                .map(|(i, a)| format!("P{i},M{i:03},2026-11-02 10:00:00,purchase,{},debit,,", money(*a)))
                .collect();
            let ms: Vec<&str> = ms.iter().map(String::as_str).collect();
            let ts: Vec<&str> = ts.iter().map(String::as_str).collect();
            let r = Case::new(&cfg, &ms, &ts).run().ok();
            for (i, a) in amounts.iter().enumerate() {
                let f = fee_fen(*a, rate, half_even);
                let net = money(a - f);
                r.assert_row("2026-11-03", &format!("M{i:03}"),
                    &format!("1 {} 0.00 {} 0.00 0.00 {net} 0.00 0.00 0.00 0.00 {net} 0.00", money(*a), money(f)));
            }
        }
    }
}

#[test]
fn a_refund_of_a_purchase_that_left_the_index_is_a_bad_reference_that_says_why() {
    // refund_retention_days = 3: run 1 through 11-05 keeps ids of 11-03 .. 11-05.
    let cfg = Cfg {
        retention_days: 3,
        ..Cfg::base()
    };
    let merchants = ["M1,5999,2026-01-01,0.00,"];
    let r1 = Case::new(
        &cfg,
        &merchants,
        &[
            "P0,M1,2026-11-02 09:00:00,purchase,100.00,debit,,", // left the index
            "P1,M1,2026-11-02 10:00:00,purchase,100.00,debit,,", // left the index
            "P2,M1,2026-11-03 10:00:00,purchase,100.00,debit,,", // still in it
        ],
    )
    .args(&["--through", "2026-11-05"])
    .run()
    .ok();
    let prev = r1.dir.path().join("out");
    let r = Case::new(
        &cfg,
        &merchants,
        &[
            "R1,M1,2026-11-06 10:00:00,refund,10.00,,P0,", // 4 days after: gone
            "R2,M1,2026-11-06 10:00:00,refund,10.00,,P2,", // 3 days after: accepted
            "P1,M1,2026-11-06 11:00:00,purchase,5.00,debit,,", // P1's id is free again
        ],
    )
    .args(&["--state-in", prev.to_str().unwrap()])
    .run()
    .ok();
    assert_eq!(r.rejects(), rj(&[(2, "R1", "bad_reference")]));
    let rejects = r.rejects_full();
    let detail = &rejects[0][4];
    assert!(
        detail.contains("nor in the index of earlier runs, which keeps ids from 2026-11-03 on"),
        "{detail}"
    );
    // 11-06: purchase 5.00 (fee 0.02), refund 10.00 (fee kept): 5 − 0.02 − 10 = −5.02
    r.assert_row(
        "2026-11-07",
        "M1",
        "2 5.00 10.00 0.02 0.00 0.00 -5.02 0.00 0.00 0.00 0.00 0.00 -5.02",
    );
}

#[test]
fn the_detail_of_a_refund_of_an_earlier_runs_purchase_shows_that_purchases_rate() {
    // P1 was a credit purchase of M2 (general, 0.0049) in run 1; R3 refunds
    // the remaining 40.00 of it in run 2, returning the last 0.20 of its fee.
    let r1 = state_run_1();
    let prev = r1.dir.path().join("out");
    let r = Case::new(
        &state_cfg(),
        &state_merchants(),
        &["R3,M2,2026-11-03 11:00:00,refund,40.00,,P1,"],
    )
    .args(&["--state-in", prev.to_str().unwrap(), "--detail"])
    .run()
    .ok();
    let detail = r.text("fees-2026-11-04.csv");
    assert!(
        detail.contains(",refund,2026-11-03,2026-11-04,40.00,general,0.0049,-0.20,refund\n"),
        "{detail}"
    );
}

#[test]
fn a_category_renamed_between_runs_keeps_earlier_purchases_linkable() {
    // Run 2 renames "general" (the default) to "everyday". Refunding P1 of run 1
    // writes P1 again into run 2's index under the old name, which run 2's
    // configuration no longer lists; run 3 must still read P1 with its totals.
    let r1 = state_run_1();
    let renamed: &'static str = Box::leak(
        BASE_CATEGORIES
            .replace("name = \"general\"", "name = \"everyday\"")
            .into_boxed_str(),
    );
    let cfg = Cfg {
        categories: renamed,
        ..state_cfg()
    };
    let r2 = Case::new(
        &cfg,
        &state_merchants(),
        &["R3,M2,2026-11-03 11:00:00,refund,40.00,,P1,"],
    )
    .args(&[
        "--state-in",
        r1.dir.path().join("out").to_str().unwrap(),
        "--detail",
    ])
    .run()
    .ok();
    // The old name is not in this configuration: the default category's rate (D43).
    assert!(
        r2.text("fees-2026-11-04.csv")
            .contains(",refund,2026-11-03,2026-11-04,40.00,everyday,0.0049,-0.20,refund\n")
    );
    let r3 = Case::new(
        &cfg,
        &state_merchants(),
        &["R4,M2,2026-11-05 11:00:00,refund,1.00,,P1,"],
    )
    .args(&["--state-in", r2.dir.path().join("out").to_str().unwrap()])
    .run()
    .ok();
    // 60.00 (run 1) + 40.00 (run 2) already refunded: nothing is left.
    assert_eq!(r3.rejects(), rj(&[(2, "R4", "refund_exceeds_original")]));
}
