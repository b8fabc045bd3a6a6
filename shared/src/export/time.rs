//! Timestamps of billing files as UTC milliseconds (FOCUS Date/Time, as the
//! rollup writes ChargePeriodStart).

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Milliseconds since the epoch of a billing timestamp: RFC 3339
/// (`2023-11-01T00:00:00.000Z`, `...+00:00`), CUR's `2023-11-01T00:00Z`,
/// FOCUS samples' `2024-09-18 22:00:00` (UTC), or a bare date. `None` for
/// anything else.
pub fn parse_ms(text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(naive, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The first instant of billing period `YYYY-MM` and of the next one, in ms.
pub fn period_bounds_ms(period: &str) -> Option<(i64, i64)> {
    let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    Some((ms(first)?, ms(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_timestamps() {
        let day = 1_698_796_800_000; // 2023-11-01T00:00:00Z
        assert_eq!(parse_ms(b"2023-11-01T00:00:00.000Z"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01T00:00:00Z"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01T00:00Z"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01T01:00:00+01:00"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01 00:00:00"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01"), Some(day));
        assert_eq!(parse_ms(b"2023-11-01T00:00:00.5Z"), Some(day + 500));
        assert_eq!(parse_ms(b"11/01/2023"), None);
        assert_eq!(parse_ms(b""), None);
        assert_eq!(
            period_bounds_ms("2023-12"),
            Some((1_701_388_800_000, 1_704_067_200_000))
        );
        assert_eq!(period_bounds_ms("2023-13"), None);
    }
}
