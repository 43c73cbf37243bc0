//! Times as the store keeps them (ms since the epoch, UTC), LiteLLM's durations ("30s", "1h",
//! "30d", "1mo", "daily", ...) and the standardized budget reset times LiteLLM uses: budgets
//! reset on round boundaries (the next midnight, Monday, the 1st of the month), not at a time
//! that depends on when the budget was set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECOND: i64 = 1000;
const DAY: i64 = 86_400 * SECOND;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A LiteLLM duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Seconds(i64),
    Days(i64),
    Weeks(i64),
    Months(i64),
}

/// Parses `<n>s`, `<n>m`, `<n>h`, `<n>d`, `<n>w`, `<n>mo`, and the words `hourly`, `daily`,
/// `weekly`, `monthly`.
pub fn parse_period(text: &str) -> Result<Period, String> {
    let text = text.trim();
    let text = match text.to_ascii_lowercase().as_str() {
        "hourly" => "1h".to_string(),
        "daily" => "24h".to_string(),
        "weekly" => "7d".to_string(),
        "monthly" => "30d".to_string(),
        other => other.to_string(),
    };
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let bad = || {
        format!(
            "{text:?} is not a duration: use a number and a unit, e.g. \"30s\", \"30m\", \"1h\", \"30d\", \"1w\", \"1mo\""
        )
    };
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n > 100_000 {
        return Err(format!("{text:?} is too long a duration"));
    }
    Ok(match unit {
        "s" => Period::Seconds(n),
        "m" => Period::Seconds(n * 60),
        "h" => Period::Seconds(n * 3600),
        "d" => Period::Days(n),
        "w" => Period::Weeks(n),
        "mo" => Period::Months(n),
        _ => return Err(bad()),
    })
}

/// When a key created now with this `duration` expires: exactly that long from now.
pub fn expiry(period: Period, now: i64) -> i64 {
    match period {
        Period::Seconds(s) => now + s * SECOND,
        Period::Days(d) => now + d * DAY,
        Period::Weeks(w) => now + 7 * w * DAY,
        Period::Months(m) => add_months(now, m),
    }
}

/// When a budget with this `budget_duration` next starts again from 0, as LiteLLM computes it
/// (UTC): seconds, minutes and hours on multiples of the period since midnight; 1d at the next
/// midnight, 7d and 1w on the next Monday, 30d and 1mo on the 1st of the next month, other
/// day counts that many days after today's midnight.
pub fn next_reset(period: Period, now: i64) -> i64 {
    let midnight = now.div_euclid(DAY) * DAY;
    match period {
        Period::Seconds(s) => {
            let step = (s * SECOND).max(SECOND);
            midnight + ((now - midnight) / step + 1) * step
        }
        Period::Days(1) => midnight + DAY,
        Period::Days(7) | Period::Weeks(1) => next_monday(now),
        Period::Days(30) | Period::Months(1) => first_of_month(midnight, 1),
        Period::Days(d) => midnight + d.max(1) * DAY,
        Period::Weeks(w) => midnight + 7 * w.max(1) * DAY,
        Period::Months(m) => first_of_month(midnight, m.max(1)),
    }
}

/// A budget period must move time forward.
pub fn parse_budget_period(text: &str) -> Result<Period, String> {
    let period = parse_period(text)?;
    let positive = match period {
        Period::Seconds(n) | Period::Days(n) | Period::Weeks(n) | Period::Months(n) => n > 0,
    };
    if positive {
        Ok(period)
    } else {
        Err(format!("{text:?}: a budget period must be longer than 0"))
    }
}

fn next_monday(now: i64) -> i64 {
    let days = now.div_euclid(DAY);
    // 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays.
    let weekday = (days + 3).rem_euclid(7);
    (days + 7 - weekday) * DAY
}

fn first_of_month(midnight: i64, months_ahead: i64) -> i64 {
    let (y, m, _) = civil_from_days(midnight.div_euclid(DAY));
    let total = y * 12 + (m - 1) + months_ahead;
    days_from_civil(total.div_euclid(12), total.rem_euclid(12) + 1, 1) * DAY
}

fn add_months(now: i64, months: i64) -> i64 {
    let days = now.div_euclid(DAY);
    let time_of_day = now - days * DAY;
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m - 1) + months;
    let (y2, m2) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    // The 31st of a shorter month is its last day, as LiteLLM does.
    let last = days_from_civil(y2 + (m2 / 12), m2 % 12 + 1, 1) - days_from_civil(y2, m2, 1);
    days_from_civil(y2, m2, d.min(last)) * DAY + time_of_day
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2026-12-01T18:56:55.123Z`.
pub fn iso(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// `2026-12-01`, the UTC day of a time (the spend aggregates' day).
pub fn day(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A `YYYY-MM-DD` day (its midnight, UTC) or an RFC 3339 time, in ms.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a date: use YYYY-MM-DD or an RFC 3339 time");
    let text = text.trim();
    let parsed = if text.len() == 10 {
        humantime::parse_rfc3339(&format!("{text}T00:00:00Z"))
    } else {
        humantime::parse_rfc3339_weak(text)
    };
    let t = parsed.map_err(|_| bad())?;
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_time(text).unwrap_or(-1)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_period("30s"), Ok(Period::Seconds(30)));
        assert_eq!(parse_period("30m"), Ok(Period::Seconds(1800)));
        assert_eq!(parse_period("1h"), Ok(Period::Seconds(3600)));
        assert_eq!(parse_period("30d"), Ok(Period::Days(30)));
        assert_eq!(parse_period("2w"), Ok(Period::Weeks(2)));
        assert_eq!(parse_period("1mo"), Ok(Period::Months(1)));
        assert_eq!(parse_period("daily"), Ok(Period::Seconds(86_400)));
        assert_eq!(parse_period("monthly"), Ok(Period::Days(30)));
        for bad in ["", "d", "10", "1y", "-1d", "1.5h"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert!(parse_budget_period("0d").is_err());
    }

    #[test]
    fn expiry_is_exact_and_months_are_calendar_months() {
        let now = at("2026-01-31T10:00:00Z");
        assert_eq!(
            expiry(Period::Seconds(3600), now),
            at("2026-01-31T11:00:00Z")
        );
        assert_eq!(expiry(Period::Days(30), now), at("2026-03-02T10:00:00Z"));
        assert_eq!(expiry(Period::Months(1), now), at("2026-02-28T10:00:00Z"));
        assert_eq!(expiry(Period::Months(12), now), at("2027-01-31T10:00:00Z"));
    }

    #[test]
    fn resets_are_standardized() {
        // A Tuesday.
        let now = at("2026-12-01T18:56:55Z");
        let reset = |p: &str| next_reset(parse_budget_period(p).unwrap_or(Period::Days(1)), now);
        assert_eq!(reset("30s"), at("2026-12-01T18:57:00Z"));
        assert_eq!(reset("15m"), at("2026-12-01T19:00:00Z"));
        assert_eq!(reset("1h"), at("2026-12-01T19:00:00Z"));
        assert_eq!(reset("5h"), at("2026-12-01T20:00:00Z"));
        assert_eq!(reset("1d"), at("2026-12-02"));
        assert_eq!(reset("daily"), at("2026-12-02"));
        assert_eq!(reset("7d"), at("2026-12-07"));
        assert_eq!(reset("1w"), at("2026-12-07"));
        assert_eq!(reset("30d"), at("2027-01-01"));
        assert_eq!(reset("1mo"), at("2027-01-01"));
        assert_eq!(reset("3mo"), at("2027-03-01"));
        assert_eq!(reset("10d"), at("2026-12-11"));
        // On a Monday, the next Monday.
        assert_eq!(
            next_reset(Period::Weeks(1), at("2026-12-07T00:00:00Z")),
            at("2026-12-14")
        );
        assert_eq!(
            next_reset(Period::Seconds(3600), at("2026-12-31T23:30:00Z")),
            at("2027-01-01")
        );
    }

    #[test]
    fn days_and_times() {
        assert_eq!(day(at("2026-12-01T23:59:59Z")), "2026-12-01");
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(
            iso(at("2026-12-01T18:56:55.123Z")),
            "2026-12-01T18:56:55.123Z"
        );
        assert!(parse_time("yesterday").is_err());
        for d in [-1000, 0, 59, 10_000, 20_454] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
