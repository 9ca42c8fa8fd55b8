//! The integer fast path is proved equal to `rust_decimal`, exact halves
//! included, and the parsers are checked on hand-picked cases.

use super::*;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

fn decimal_strategy(rounding: Rounding) -> RoundingStrategy {
    match rounding {
        Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
    }
}

fn decimal_fee_fen(amount_fen: i64, rate_ppm: u32, rounding: Rounding) -> i64 {
    let amount = Decimal::new(amount_fen, 2);
    let rate = Decimal::new(i64::from(rate_ppm), 6);
    let fee = (amount * rate).round_dp_with_strategy(2, decimal_strategy(rounding));
    (fee * Decimal::ONE_HUNDRED)
        .try_into()
        .expect("fee fits i64")
}

fn rounding_strategy() -> impl Strategy<Value = Rounding> {
    prop_oneof![Just(Rounding::HalfUp), Just(Rounding::HalfEven)]
}

proptest! {
    #[test]
    fn fee_matches_rust_decimal(
        amount_fen in 0i64..AMOUNT_FEN_LIMIT,
        rate_ppm in 0u32..=1_000_000,
        rounding in rounding_strategy(),
    ) {
        prop_assert_eq!(fee_fen(amount_fen, rate_ppm, rounding), decimal_fee_fen(amount_fen, rate_ppm, rounding));
    }

    #[test]
    fn fee_matches_rust_decimal_at_exact_half_fen(
        fee_fen_floor in 0i64..10_000_000,
        rounding in rounding_strategy(),
    ) {
        // amount × 0.005 (5000 ppm) is exactly x.5 fen whenever amount is odd.
        let amount_fen = fee_fen_floor * 200 + 100;
        let fee = fee_fen(amount_fen, 5000, rounding);
        prop_assert_eq!(fee, decimal_fee_fen(amount_fen, 5000, rounding));
        let expected = match rounding {
            Rounding::HalfUp => fee_fen_floor + 1,
            Rounding::HalfEven => fee_fen_floor + fee_fen_floor % 2,
        };
        prop_assert_eq!(fee, expected);
    }

    #[test]
    fn fee_returned_matches_rust_decimal(
        amount_fen in 1i64..AMOUNT_FEN_LIMIT,
        fee_fen in 0i64..1_000_000_000,
        refunded_permille in 0i64..=1000,
        rounding in rounding_strategy(),
    ) {
        let fee_fen = fee_fen.min(amount_fen);
        let refunded_fen = (i128::from(amount_fen) * i128::from(refunded_permille) / 1000) as i64;
        let exact = Decimal::from(fee_fen) * Decimal::from(refunded_fen) / Decimal::from(amount_fen);
        let expected: i64 = exact.round_dp_with_strategy(0, decimal_strategy(rounding)).try_into().unwrap();
        prop_assert_eq!(fee_returned_fen(fee_fen, refunded_fen, amount_fen, rounding), expected);
    }

    #[test]
    fn amount_round_trips(amount_fen in -AMOUNT_FEN_LIMIT + 1..AMOUNT_FEN_LIMIT) {
        let text = format_fen(i128::from(amount_fen));
        prop_assert_eq!(parse_amount_fen(text.as_bytes(), true), Ok(amount_fen));
        let decimal: Decimal = text.parse().unwrap();
        prop_assert_eq!(decimal, Decimal::new(amount_fen, 2));
    }

    #[test]
    fn amount_parser_never_panics(text in proptest::collection::vec(any::<u8>(), 0..24)) {
        let _ = parse_amount_fen(&text, true);
        let _ = parse_amount_fen(&text, false);
    }
}

#[test]
fn amounts_parse_exactly() {
    assert_eq!(parse_amount_fen(b"12", false), Ok(1200));
    assert_eq!(parse_amount_fen(b"12.3", false), Ok(1230));
    assert_eq!(parse_amount_fen(b"12.34", false), Ok(1234));
    assert_eq!(parse_amount_fen(b"007.05", false), Ok(705));
    assert_eq!(parse_amount_fen(b"-199.00", true), Ok(-19900));
    assert_eq!(
        parse_amount_fen(b"999999999999.99", false),
        Ok(99_999_999_999_999)
    );
    assert_eq!(
        parse_amount_fen(b"1000000000000", false),
        Err(AmountError::Range)
    );
    assert_eq!(
        parse_amount_fen(b"0001000000000000.00", false),
        Err(AmountError::Range)
    );
    assert_eq!(
        parse_amount_fen(b"12.345", false),
        Err(AmountError::Precision)
    );
    assert_eq!(parse_amount_fen(b"-5", false), Err(AmountError::Sign));
    assert_eq!(parse_amount_fen(b"+5", true), Err(AmountError::Sign));
    assert_eq!(parse_amount_fen(b"-", true), Err(AmountError::Sign));
    assert_eq!(parse_amount_fen(b"", true), Err(AmountError::Empty));
    for bad in [
        &b"12."[..],
        b".5",
        b"1e3",
        b"1,000",
        b"1.2.3",
        b" 1",
        b"0x10",
        b"--1",
    ] {
        assert!(
            parse_amount_fen(bad, true).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn rates_parse_exactly() {
    assert_eq!(parse_rate_ppm("0"), Some(0));
    assert_eq!(parse_rate_ppm("0.0049"), Some(4900));
    assert_eq!(parse_rate_ppm("0.000001"), Some(1));
    assert_eq!(parse_rate_ppm("1"), Some(1_000_000));
    assert_eq!(parse_rate_ppm("0.0000001"), None);
    assert_eq!(parse_rate_ppm("1.000001"), None);
    assert_eq!(parse_rate_ppm("-0.1"), None);
    assert_eq!(parse_rate_ppm("0."), None);
    assert_eq!(parse_rate_ppm(".1"), None);
    assert_eq!(format_rate(4900), "0.0049");
    assert_eq!(format_rate(0), "0");
    assert_eq!(format_rate(1_000_000), "1");
    assert_eq!(format_rate(123_450), "0.12345");
}

#[test]
fn rounding_worked_examples() {
    // 88.88 × 0.0049 = 0.435512 → 0.44 either way (the spec example's T11).
    assert_eq!(fee_fen(8888, 4900, Rounding::HalfUp), 44);
    assert_eq!(fee_fen(8888, 4900, Rounding::HalfEven), 44);
    // 85.00 × 0.005 = 0.425: half up 0.43, half even 0.42.
    assert_eq!(fee_fen(8500, 5000, Rounding::HalfUp), 43);
    assert_eq!(fee_fen(8500, 5000, Rounding::HalfEven), 42);
    // 87.00 × 0.005 = 0.435: 0.44 both ways (4 is even).
    assert_eq!(fee_fen(8700, 5000, Rounding::HalfEven), 44);
    assert_eq!(div_round(-5, 2, Rounding::HalfUp), -3);
    assert_eq!(div_round(-5, 2, Rounding::HalfEven), -2);
}

#[test]
fn fen_formatting_never_writes_negative_zero() {
    assert_eq!(format_fen(0), "0.00");
    assert_eq!(format_fen(-1230), "-12.30");
    assert_eq!(format_fen(-5), "-0.05");
    assert_eq!(format_fen(123_456), "1234.56");
}

#[test]
fn fen_formatting_is_the_same_on_both_sides_of_u64() {
    // The u64 fast path and the u128 path meet at 2^64: worked by hand,
    // 2^64 − 1 = 18446744073709551615 fen.
    let edge = i128::from(u64::MAX);
    assert_eq!(format_fen(edge), "184467440737095516.15");
    assert_eq!(format_fen(edge + 1), "184467440737095516.16");
    assert_eq!(format_fen(-edge - 1), "-184467440737095516.16");
    assert_eq!(
        format_fen(i128::MIN + 1),
        format!("-{}.{:02}", (i128::MAX) / 100, (i128::MAX) % 100)
    );
}

#[test]
fn rates_read_as_exact_percentages() {
    assert_eq!(format_percent(3_500), "0.35%");
    assert_eq!(format_percent(4_900), "0.49%");
    assert_eq!(format_percent(0), "0%");
    assert_eq!(format_percent(10_000), "1%");
    assert_eq!(format_percent(3_805), "0.3805%");
}

#[test]
fn grouped_amounts_keep_every_fen() {
    assert_eq!(format_fen_grouped(0), "0.00");
    assert_eq!(format_fen_grouped(-5), "-0.05");
    assert_eq!(format_fen_grouped(99_999), "999.99");
    assert_eq!(format_fen_grouped(100_000), "1,000.00");
    assert_eq!(format_fen_grouped(-123_456_789), "-1,234,567.89");
    assert_eq!(
        format_fen_grouped(i128::from(i64::MAX)),
        "92,233,720,368,547,758.07"
    );
}
