//! Exact money: amounts in integer fen, rates in integer millionths (ppm),
//! and rounding to the fen with a named strategy.
//!
//! This module owns parsing and formatting of amounts and rates and the fee
//! arithmetic. It must not do I/O, and it must never touch floating point.
//!
//! Bounds that make overflow impossible by construction:
//! - a parsed amount is below 10^12 CNY, so below 10^14 fen (fits `i64`);
//! - a rate is at most 1 (10^6 ppm), so `amount × rate` is below 10^20 and is
//!   computed in `i128`;
//! - sums are `i128`: even 2^64 rows of 10^14 fen stay far below 2^127.
#![forbid(unsafe_code)]

#[cfg(test)]
mod tests;

/// One CNY is 100 fen.
pub const FEN_PER_CNY: i64 = 100;
/// A rate of 1 is 1,000,000 ppm: rates carry at most 6 fractional digits.
pub const PPM_PER_UNIT: i64 = 1_000_000;
/// Amounts of 10^12 CNY or more in magnitude are out of range (RULES.md 1).
pub const AMOUNT_FEN_LIMIT: i64 = 1_000_000_000_000 * FEN_PER_CNY;

/// How a fee is rounded to the fen. Every call site names one; there is no
/// default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// A half fen rounds away from zero: 0.435 → 0.44, -0.435 → -0.44.
    HalfUp,
    /// A half fen rounds to the even fen: 0.425 → 0.42, 0.435 → 0.44.
    HalfEven,
}

/// Why an amount text is not an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    /// A sign where none is allowed, or a sign without digits.
    Sign,
    /// Anything that is not `DIGITS`, `DIGITS.D` or `DIGITS.DD`.
    Syntax,
    /// More than two fractional digits; never rounded away.
    Precision,
    /// 10^12 CNY or more in magnitude.
    Range,
}

impl AmountError {
    pub fn describe(self) -> &'static str {
        match self {
            AmountError::Empty => "is empty",
            AmountError::Sign => "has a sign where none is allowed",
            AmountError::Syntax => "is not a decimal of the form DIGITS[.D[D]]",
            AmountError::Precision => "has more than 2 fractional digits",
            AmountError::Range => "is out of range (10^12 or more)",
        }
    }
}

/// Parses `DIGITS`, `DIGITS.D` or `DIGITS.DD` into fen, with a leading `-`
/// only when `signed` is true. Exact: excess precision is an error.
pub fn parse_amount_fen(text: &[u8], signed: bool) -> Result<i64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) if signed => (true, rest),
        Some((b'-' | b'+', _)) => return Err(AmountError::Sign),
        _ => (false, text),
    };
    // Amounts are short: a plain scan beats a vectorised search here.
    let (int_part, frac_part) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    if int_part.is_empty() || !int_part.iter().all(u8::is_ascii_digit) {
        return Err(if body.is_empty() {
            AmountError::Sign
        } else {
            AmountError::Syntax
        });
    }
    let frac_fen = match frac_part {
        None => 0,
        Some(frac) if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) => {
            return Err(AmountError::Syntax);
        }
        Some(frac) if frac.len() > 2 => return Err(AmountError::Precision),
        Some(frac) => {
            let tenths = i64::from(frac[0] - b'0') * 10;
            tenths + frac.get(1).map_or(0, |d| i64::from(d - b'0'))
        }
    };
    // Leading zeros are allowed, so skip them before judging the length.
    let significant = &int_part[int_part.iter().take_while(|&&d| d == b'0').count()..];
    if significant.len() > 12 {
        return Err(AmountError::Range);
    }
    let whole_cny = significant
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    let magnitude_fen = whole_cny * FEN_PER_CNY + frac_fen;
    if magnitude_fen >= AMOUNT_FEN_LIMIT {
        return Err(AmountError::Range);
    }
    Ok(if negative {
        -magnitude_fen
    } else {
        magnitude_fen
    })
}

/// Parses a rate with at most 6 fractional digits into ppm. Rates above
/// 1 are refused here; the configuration then checks them against
/// `max_rate`.
pub fn parse_rate_ppm(text: &str) -> Option<u32> {
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac_part) {
        return None;
    }
    if text.contains('.') && frac_part.is_empty() {
        return None;
    }
    if frac_part.len() > 6 || int_part.len() > 7 {
        return None;
    }
    let int_value: i64 = int_part.parse().ok()?;
    let frac_value: i64 = format!("{frac_part:0<6}").parse().ok()?;
    let ppm = int_value * PPM_PER_UNIT + frac_value;
    if ppm > PPM_PER_UNIT {
        return None;
    }
    u32::try_from(ppm).ok()
}

/// Writes a rate in its shortest decimal form: `0`, `0.0049`, `1`.
pub fn format_rate(rate_ppm: u32) -> String {
    let int_value = rate_ppm / 1_000_000;
    let frac_value = rate_ppm % 1_000_000;
    if frac_value == 0 {
        return int_value.to_string();
    }
    let frac = format!("{frac_value:06}");
    format!("{int_value}.{}", frac.trim_end_matches('0'))
}

/// Writes a rate as an exact percentage: `0.49%`, `0.385%`, `0%`, `100%`.
pub fn format_percent(rate_ppm: u32) -> String {
    // One percent is 10,000 ppm.
    let whole = rate_ppm / 10_000;
    let frac = rate_ppm % 10_000;
    if frac == 0 {
        return format!("{whole}%");
    }
    let digits = format!("{frac:04}");
    format!("{whole}.{}%", digits.trim_end_matches('0'))
}

/// `numerator ÷ denominator` rounded to an integer with `rounding`.
/// The denominator must be positive.
pub fn div_round(numerator: i128, denominator: i128, rounding: Rounding) -> i128 {
    assert!(denominator > 0, "div_round needs a positive denominator");
    let magnitude = numerator.unsigned_abs();
    let denominator = denominator.unsigned_abs();
    let quotient = magnitude / denominator;
    let twice_remainder = (magnitude % denominator) * 2;
    let round_up = match twice_remainder.cmp(&denominator) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match rounding {
            Rounding::HalfUp => true,
            Rounding::HalfEven => quotient % 2 == 1,
        },
    };
    let rounded = (quotient + u128::from(round_up)) as i128;
    if numerator < 0 { -rounded } else { rounded }
}

/// The fee on `amount_fen` at `rate_ppm`, rounded to the fen (RULES.md 3.1).
pub fn fee_fen(amount_fen: i64, rate_ppm: u32, rounding: Rounding) -> i64 {
    debug_assert!(amount_fen.unsigned_abs() < AMOUNT_FEN_LIMIT as u64);
    let exact = i128::from(amount_fen) * i128::from(rate_ppm);
    let fee = div_round(exact, i128::from(PPM_PER_UNIT), rounding);
    // |fee| ≤ |amount| because the rate is at most 1, so it fits an i64.
    fee as i64
}

/// The fee returned so far for a purchase after `refunded_fen` of its
/// `amount_fen` was refunded, under `refund_fee = "proportional"` (3.2).
pub fn fee_returned_fen(
    fee_fen: i64,
    refunded_fen: i64,
    amount_fen: i64,
    rounding: Rounding,
) -> i64 {
    assert!(amount_fen > 0, "a purchase amount is positive");
    debug_assert!(refunded_fen <= amount_fen);
    let exact = i128::from(fee_fen) * i128::from(refunded_fen);
    div_round(exact, i128::from(amount_fen), rounding) as i64
}

/// Formats fen as CNY with exactly two fractional digits: `0.00`, `-12.30`.
/// Zero is never written as `-0.00`.
pub fn format_fen(amount_fen: i128) -> String {
    let mut text = String::with_capacity(16);
    push_fen(&mut text, amount_fen);
    text
}

/// Formats fen as CNY with thousands separators: `-1,234,567.89`, for
/// pages that people read (`settle statement`, `settle report`). Grouping is
/// done on the integer's decimal text, so it is as exact as `format_fen`.
pub fn format_fen_grouped(amount_fen: i128) -> String {
    let plain = format_fen(amount_fen);
    let (sign, body) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, cents) = body.split_once('.').expect("format_fen writes a point");
    let mut out = String::with_capacity(plain.len() + whole.len() / 3);
    out.push_str(sign);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out.push('.');
    out.push_str(cents);
    out
}

/// Appends the text of [`format_fen`] to `out`, without a temporary string.
pub fn push_fen(out: &mut String, amount_fen: i128) {
    // Most columns of most settlement rows are zero.
    if amount_fen == 0 {
        out.push_str("0.00");
        return;
    }
    let magnitude = amount_fen.unsigned_abs();
    if amount_fen < 0 {
        out.push('-');
    }
    // Integer formatting without the fmt machinery: this runs for every
    // amount of every output row. Amounts almost always fit `u64`, whose
    // division and formatting are several times cheaper than `u128`'s.
    let mut digits = itoa::Buffer::new();
    let cents = match u64::try_from(magnitude) {
        Ok(small) => {
            out.push_str(digits.format(small / 100));
            (small % 100) as u8
        }
        Err(_) => {
            out.push_str(digits.format(magnitude / 100));
            (magnitude % 100) as u8
        }
    };
    out.push('.');
    out.push(char::from(b'0' + cents / 10));
    out.push(char::from(b'0' + cents % 10));
}
