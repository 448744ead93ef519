//! Small helpers with no dependency on the rest of the emulator: time stamps, random
//! identifiers, a keyed digest (HMAC-SHA256), base64url, percent-decoding.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The UTC date-time of `unix` (clamped to what `time` can represent).
fn utc(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(if unix < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

fn format(unix: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    utc(unix).format(format).unwrap_or_default()
}

/// `2024-05-01T12:34:56Z`: Graph's DateTimeOffset form.
pub fn rfc3339(unix: i64) -> String {
    format(
        unix,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// `2024-05-01T12:34:56`: the form of `innerError.date`.
pub fn inner_error_date(unix: i64) -> String {
    format(
        unix,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
}

/// `2024-05-01 12:34:56Z`: the identity platform's `timestamp` form.
pub fn sts_timestamp(unix: i64) -> String {
    format(
        unix,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"),
    )
}

/// Parses an ISO 8601 / RFC 3339 date-time (`Z` or `±hh:mm`, optional fraction, `T` or a space
/// between date and time; no offset means UTC, as Graph reads one), or a bare date.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() == 10 {
        let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
        return Some(date.midnight().assume_utc().unix_timestamp());
    }
    let (date, time) = text.split_at_checked(10)?;
    let time = time
        .strip_prefix(['T', 't', ' '])
        .filter(|time| time.is_char_boundary(8))?;
    let offset = &time[8..];
    let offset = offset.strip_prefix('.').map_or(offset, |fraction| {
        fraction.trim_start_matches(|c: char| c.is_ascii_digit())
    });
    if offset.len() == 6 && offset.get(1..3).is_some_and(|hours| hours >= "24") {
        // RFC 3339's offset hours are 00 to 23; `time` reads more.
        return None;
    }
    let zone = if offset.is_empty() { "Z" } else { "" };
    let normalized = format!("{date}T{time}{zone}");
    OffsetDateTime::parse(&normalized, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// An `Edm.DateTimeOffset` literal as Graph's OData reader takes it in a request body: a date,
/// a time and a time zone (`Z` or `±hh:mm`), fractional seconds allowed; None otherwise (a
/// date alone or a time without a zone is refused, as the OData library refuses a
/// DateTimeOffset without time zone information).
pub fn parse_date_time_offset(text: &str) -> Option<i64> {
    let time = text.get(10..)?;
    if !time.starts_with(['T', 't']) {
        return None;
    }
    let zoned = text.ends_with(['Z', 'z'])
        || text
            .len()
            .checked_sub(6)
            .and_then(|at| text.get(at..))
            .is_some_and(|zone| {
                let bytes = zone.as_bytes();
                matches!(bytes[0], b'+' | b'-')
                    && bytes[1].is_ascii_digit()
                    && bytes[2].is_ascii_digit()
                    && bytes[3] == b':'
                    && bytes[4].is_ascii_digit()
                    && bytes[5].is_ascii_digit()
            });
    if !zoned {
        return None;
    }
    parse_rfc3339(text)
}

/// 16 random bytes from the operating system (through uuid's v4 generator).
pub fn random_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// A new object identifier in the directory's form.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random string of `len` characters from `alphabet`.
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    let mut pool = Vec::new();
    while out.len() < len {
        if pool.is_empty() {
            pool.extend_from_slice(&random_bytes());
        }
        let byte = pool.pop().unwrap_or_default();
        // Rejection sampling keeps the distribution uniform.
        let limit = 256 - 256 % alphabet.len();
        if usize::from(byte) < limit {
            out.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
        }
    }
    out
}

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER_ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// The characters Entra uses in generated client secrets.
pub const SECRET_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";

/// HMAC-SHA256 (RFC 2104, FIPS 180-4) of `parts` under `key`, as 64 lowercase hex digits. Each
/// part goes in as its length (8 bytes, big-endian) and then its bytes, so that ("ab", "") and
/// ("a", "b") differ. A fixed algorithm: state files keep digests made with it (salted secret
/// and password digests), and tokens are signed with it.
pub fn digest(key: &str, parts: &[&str]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    let tag = context.sign();
    let mut out = String::with_capacity(64);
    for byte in tag.as_ref() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`); invalid escapes stay as they are.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(high), Some(low)) => {
                        out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes what must be escaped in a query value.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.' | b'_' | b'~' | b'$' | b',' | b'(' | b')' | b':' | b'@' | b'/'
            )
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whole seconds, rounded up, at least 1: the form of a `Retry-After` header.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(inner_error_date(1_700_000_000), "2023-11-14T22:13:20");
        assert_eq!(sts_timestamp(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.1234567Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            parse_rfc3339("2023-11-14T17:13:20-05:00"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5+00:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
    }

    #[test]
    fn offsets_out_of_range_are_refused_not_overflowed() {
        for text in [
            "2030-01-01T00:00:00+99999999999999999:00",
            "2030-01-01T00:00:00-99999999999999999:00",
            "2030-01-01T00:00:00+00:99999999999999999",
            "2030-01-01T00:00:00+24:00",
            "2030-01-01T00:00:00+01:60",
            "2030-01-01T00:00:00+1:00",
            "2030-01-01T00:00:00+01:0",
            "2030-01-01T00:00:00+0a:00",
            "2030-01-01T00:00:00++1:00",
            "2030-01-01T00:00:00+01",
            "2030-01-01T00:00:00.é",
            "2030-01-01T00:00:00é",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
        assert!(parse_rfc3339("2030-01-01T00:00:00+23:59").is_some());
    }

    #[test]
    fn date_time_offsets_need_a_time_and_a_zone() {
        assert_eq!(
            parse_date_time_offset("2023-11-14T22:13:20Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_date_time_offset("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000)
        );
        for text in [
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "14/11/2023",
            "",
            "2023-11-14T22:13:20+1:00",
            "2030-01-01T00:00:00+24:00",
            "2023-11-14T22:13:20é",
        ] {
            assert_eq!(parse_date_time_offset(text), None, "{text}");
        }
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%23x%2", false), "#x%2");
        assert_eq!(percent_decode("100%", false), "100%");
    }

    #[test]
    fn digests_depend_on_key_and_input() {
        let one = digest("k", &["a", "b"]);
        assert_eq!(one.len(), 64);
        assert_eq!(one, digest("k", &["a", "b"]));
        assert_ne!(one, digest("k2", &["a", "b"]));
        assert_ne!(one, digest("k", &["ab", ""]));
    }

    #[test]
    fn digests_are_a_fixed_algorithm() {
        // HMAC-SHA256 under "salt" of 00 00 00 00 00 00 00 06 "secret", as Python's
        // `hmac.new(b"salt", (6).to_bytes(8, "big") + b"secret", hashlib.sha256)` gives it.
        // State files hold digests made this way: a change of algorithm must not go unnoticed.
        assert_eq!(
            digest("salt", &["secret"]),
            "00b445ab720478efb46a63db9b8dbd735c34ef06f66a61e3c9f49e7dd7ce472c"
        );
    }

    #[test]
    fn random_strings_use_the_alphabet() {
        let text = random_string(40, UPPER_ALNUM);
        assert_eq!(text.len(), 40);
        assert!(text.bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_ne!(text, random_string(40, UPPER_ALNUM));
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(retry_after_secs(Duration::from_millis(0)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
