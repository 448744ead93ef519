//! Time, in the forms dirsync keeps and shows it: the store's Unix milliseconds, RFC 3339 for
//! JSON and Graph, `2026-11-21 14:03:07Z` for people, and HTTP dates for servers' clocks. All UTC,
//! through the `time` and `httpdate` crates.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Now, in Unix milliseconds (what the store keeps).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn from_unix_ms(unix_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The store's Unix milliseconds as `2026-11-21 14:03:07Z`.
pub fn human_time(unix_ms: i64) -> String {
    from_unix_ms(unix_ms)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// The store's Unix milliseconds as RFC 3339 with milliseconds, `2026-11-21T14:03:07.123Z`.
pub fn iso_time(unix_ms: i64) -> String {
    from_unix_ms(unix_ms)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339, `2028-12-02T15:31:00Z` (Graph's DateTimeOffset).
pub fn rfc3339(unix_secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The Unix seconds of an RFC 3339 timestamp, if it is one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 5.6.7).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 23:59:59.999 UTC: a leap day, the last millisecond.
        assert_eq!(iso_time(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(human_time(1_709_251_200_000), "2024-03-01 00:00:00Z");
        // 2026-11-21 14:03:07 UTC.
        assert_eq!(human_time(1_795_269_787_000), "2026-11-21 14:03:07Z");
        // Before 1970 still counts the right way.
        assert_eq!(human_time(-1000), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_rfc3339("2000-02-29T01:00:00+01:00"),
            Some(951_782_400)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn http_dates_are_read() {
        let seconds = |text| {
            parse_http_date(text).map(|date| {
                date.duration_since(UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs()
            })
        };
        assert_eq!(seconds("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(
            seconds("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        assert_eq!(seconds("yesterday"), None);
    }
}
