//! Calendar arithmetic: dates as day numbers, fixed UTC offsets, and the
//! timestamp grammar of RULES.md 1.
//!
//! This module owns every conversion between text and time. It must not do
//! I/O and knows nothing about money or merchants.
#![forbid(unsafe_code)]

/// Days since 1970-01-01 in the proleptic Gregorian calendar.
pub type Day = i32;

const SECONDS_PER_DAY: i64 = 86_400;
/// 0001-01-01 and 9999-12-31: the range of dates the engine reads and writes.
const FIRST_DAY: Day = -719_162;
const LAST_DAY: Day = 2_932_896;

/// An instant: seconds since the Unix epoch (UTC) and a fraction in
/// nanoseconds. Ordered as instants are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    pub unix_s: i64,
    pub nanos: u32,
}

/// Days from civil, after Howard Hinnant's public-domain algorithm.
pub fn day_from_civil(year: i32, month: u32, day: u32) -> Day {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era =
        year_of_era as u32 * 365 + year_of_era as u32 / 4 - year_of_era as u32 / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

/// Civil from days: the inverse of [`day_from_civil`].
pub fn civil_from_day(day: Day) -> (i32, u32, u32) {
    let shifted = day + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = (shifted - era * 146_097) as u32;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era as i32 + era * 400 + i32::from(month <= 2);
    (year, month, day_of_month)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// Parses `YYYY-MM-DD` (a real date, years 0001 to 9999).
pub fn parse_date(text: &[u8]) -> Option<Day> {
    if text.len() != 10 || text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = digits(&text[0..4])? as i32;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(day_from_civil(year, month, day))
}

/// Formats a day as `YYYY-MM-DD`.
pub fn format_date(day: Day) -> String {
    let (year, month, day_of_month) = civil_from_day(day);
    format!("{year:04}-{month:02}-{day_of_month:02}")
}

/// Parses a UTC offset `+hh:mm` or `-hh:mm` (hh ≤ 23, mm ≤ 59) into seconds.
pub fn parse_offset(text: &[u8]) -> Option<i32> {
    if text.len() != 6 || text[3] != b':' {
        return None;
    }
    let sign = match text[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(&text[1..3])?;
    let minutes = digits(&text[4..6])?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60) as i32)
}

/// A parsed timestamp: its instant and its business date in the configured
/// zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub instant: Instant,
    pub business_day: Day,
}

/// Parses `YYYY-MM-DD(T| )hh:mm:ss[.f{1,9}][Z|±hh:mm]`. A timestamp without
/// an offset is read in `zone_offset_s`; the business date is the calendar
/// date of the instant in `zone_offset_s`.
pub fn parse_timestamp(text: &[u8], zone_offset_s: i32) -> Option<Timestamp> {
    if text.len() < 19 || !matches!(text[10], b'T' | b' ') {
        return None;
    }
    let day = parse_date(&text[..10])?;
    let clock = &text[11..19];
    if clock[2] != b':' || clock[5] != b':' {
        return None;
    }
    let hours = digits(&clock[0..2])?;
    let minutes = digits(&clock[3..5])?;
    let seconds = digits(&clock[6..8])?;
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some((b'.', tail)) = rest.split_first() {
        let fraction_len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_len == 0 || fraction_len > 9 {
            return None;
        }
        nanos = digits(&tail[..fraction_len])? * 10u32.pow(9 - fraction_len as u32);
        rest = &tail[fraction_len..];
    }
    let offset_s = match rest {
        [] => zone_offset_s,
        [b'Z'] => 0,
        _ => parse_offset(rest)?,
    };
    let local_s =
        i64::from(day) * SECONDS_PER_DAY + i64::from(hours * 3600 + minutes * 60 + seconds);
    let unix_s = local_s - i64::from(offset_s);
    let business_day = (unix_s + i64::from(zone_offset_s)).div_euclid(SECONDS_PER_DAY) as Day;
    // The business date must itself be a date of years 0001 to 9999.
    if !(FIRST_DAY..=LAST_DAY).contains(&business_day) {
        return None;
    }
    Some(Timestamp {
        instant: Instant { unix_s, nanos },
        business_day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CST: i32 = 8 * 3600;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date(b"1970-01-01"), Some(0));
        assert_eq!(parse_date(b"2026-11-01"), Some(day_from_civil(2026, 11, 1)));
        assert_eq!(format_date(FIRST_DAY), "0001-01-01");
        assert_eq!(format_date(LAST_DAY), "9999-12-31");
        for day in [FIRST_DAY, -1, 0, 59, 20_000, LAST_DAY] {
            assert_eq!(parse_date(format_date(day).as_bytes()), Some(day), "{day}");
        }
        assert_eq!(
            parse_date(b"2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
        for bad in [
            &b"2025-02-29"[..],
            b"2026-13-01",
            b"2026-00-10",
            b"2026-1-01",
            b"0000-01-01",
            b"2026/11/01",
        ] {
            assert_eq!(parse_date(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn timestamps_follow_the_zone() {
        let nov2 = day_from_civil(2026, 11, 2);
        let nov3 = nov2 + 1;
        // 20:30 UTC is 04:30 the next day at +08:00 (the spec example's T4).
        let t4 = parse_timestamp(b"2026-11-02T20:30:00Z", CST).unwrap();
        assert_eq!(t4.business_day, nov3);
        // A naive timestamp is read at the configured offset.
        let naive = parse_timestamp(b"2026-11-02 23:59:59", CST).unwrap();
        assert_eq!(naive.business_day, nov2);
        assert_eq!(
            naive.instant.unix_s,
            i64::from(nov2) * 86_400 + 86_399 - 8 * 3600
        );
        // 23:30 at -05:00 is 12:30 the next day at +08:00.
        let west = parse_timestamp(b"2026-11-02T23:30:00-05:00", CST).unwrap();
        assert_eq!(west.business_day, nov3);
        let frac = parse_timestamp(b"2026-11-02T10:00:00.25+08:00", CST).unwrap();
        assert_eq!(frac.instant.nanos, 250_000_000);
        for bad in [
            &b"2026-11-02T24:00:00"[..],
            b"2026-11-02T10:00:60",
            b"2026-11-02t10:00:00",
            b"2026-11-02T10:00:00z",
            b"2026-11-02T10:00:00.",
            b"2026-11-02T10:00:00.1234567890",
            b"2026-11-02T10:00:00+24:00",
            b"2026-11-02T10:00:00+08",
            b"2026-11-02T10:00",
            b"2026-11-02  10:00:00",
            b"9999-12-31 23:00:00-05:00",
            b"0001-01-01 01:00:00+10:00",
        ] {
            assert_eq!(
                parse_timestamp(bad, CST),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
