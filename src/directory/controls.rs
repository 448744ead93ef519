//! The LDAP controls Active Directory needs beyond ldap3's own: DirSync (MS-ADTS 3.1.1.3.4.1.3),
//! SD flags (3.1.1.3.4.1.11), show deleted (3.1.1.3.4.1.14), and paged results (RFC 2696) with a
//! parser that reports a malformed answer instead of panicking.
//!
//! The values are tiny BER structures, so they are written and read here by hand.

use ldap3::controls::RawControl;

pub const DIRSYNC_OID: &str = "1.2.840.113556.1.4.841";
pub const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// DirSync flag: return only the values added to or removed from multi-valued attributes
/// (`member;range=1-1` added, `member;range=0-0` removed) instead of the whole attribute.
pub const DIRSYNC_INCREMENTAL_VALUES: i64 = 0x8000_0000;

/// SD flags: only the DACL. Reading and writing just the DACL needs no SACL privilege and
/// leaves owner, group and SACL as they are.
pub const SD_FLAGS_DACL: i64 = 0x4;
/// SD flags: owner, group and DACL (not the SACL, which needs the security privilege).
pub const SD_FLAGS_OWNER_GROUP_DACL: i64 = 0x1 | 0x2 | 0x4;

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;

/// The DirSync request: critical, as the protocol requires.
pub fn dirsync_request(flags: i64, cookie: &[u8]) -> RawControl {
    // maxBytes 0 lets the server choose; Samba ignores it anyway.
    let value = sequence(&[integer(flags), integer(0), octet_string(cookie)]);
    RawControl {
        ctype: DIRSYNC_OID.to_owned(),
        crit: true,
        val: Some(value),
    }
}

/// The SD flags control, critical so a server that would ignore it (and write a whole
/// descriptor) refuses instead.
/// LDAP_SERVER_NOTIFICATION_OID (MS-ADTS 3.1.1.3.4.1.9): a search that stays open, the DC
/// sending the entry of every object changed in its scope. It has no value.
pub fn change_notification() -> RawControl {
    RawControl {
        ctype: "1.2.840.113556.1.4.528".to_owned(),
        crit: true,
        val: None,
    }
}

pub fn sd_flags(flags: i64) -> RawControl {
    RawControl {
        ctype: SD_FLAGS_OID.to_owned(),
        crit: true,
        val: Some(sequence(&[integer(flags)])),
    }
}

pub fn show_deleted() -> RawControl {
    RawControl {
        ctype: SHOW_DELETED_OID.to_owned(),
        crit: true,
        val: None,
    }
}

pub fn paged_results(page_size: i64, cookie: &[u8]) -> RawControl {
    RawControl {
        ctype: PAGED_RESULTS_OID.to_owned(),
        crit: false,
        val: Some(sequence(&[integer(page_size), octet_string(cookie)])),
    }
}

/// The DirSync response: SEQUENCE { moreResults INTEGER, unused INTEGER, cookie OCTET STRING }.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirSyncResponse {
    pub more_results: bool,
    pub cookie: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {control} control: {reason}")]
pub struct ControlError {
    control: &'static str,
    reason: &'static str,
}

pub fn parse_dirsync_response(value: &[u8]) -> Result<DirSyncResponse, ControlError> {
    let fail = |reason| ControlError {
        control: "DirSync response",
        reason,
    };
    let (tag, body, _) = read_tlv(value).ok_or(fail("not BER"))?;
    if tag != TAG_SEQUENCE {
        return Err(fail("not a SEQUENCE"));
    }
    let (more_tag, more, rest) = read_tlv(body).ok_or(fail("no moreResults"))?;
    // Windows sends moreResults as an INTEGER; accept a BOOLEAN too.
    if more_tag != TAG_INTEGER && more_tag != TAG_BOOLEAN {
        return Err(fail("moreResults is not an INTEGER"));
    }
    let (_, _, rest) = read_tlv(rest).ok_or(fail("no unused field"))?;
    let (cookie_tag, cookie, _) = read_tlv(rest).ok_or(fail("no cookie"))?;
    if cookie_tag != TAG_OCTET_STRING {
        return Err(fail("cookie is not an OCTET STRING"));
    }
    Ok(DirSyncResponse {
        more_results: more.iter().any(|byte| *byte != 0),
        cookie: cookie.to_vec(),
    })
}

/// The paged results response: SEQUENCE { size INTEGER, cookie OCTET STRING }; returns the cookie
/// (empty on the last page).
pub fn parse_paged_results_cookie(value: &[u8]) -> Result<Vec<u8>, ControlError> {
    let fail = |reason| ControlError {
        control: "paged results",
        reason,
    };
    let (tag, body, _) = read_tlv(value).ok_or(fail("not BER"))?;
    if tag != TAG_SEQUENCE {
        return Err(fail("not a SEQUENCE"));
    }
    let (_, _, rest) = read_tlv(body).ok_or(fail("no size"))?;
    let (cookie_tag, cookie, _) = read_tlv(rest).ok_or(fail("no cookie"))?;
    if cookie_tag != TAG_OCTET_STRING {
        return Err(fail("cookie is not an OCTET STRING"));
    }
    Ok(cookie.to_vec())
}

fn integer(value: i64) -> Vec<u8> {
    // Minimal two's-complement big-endian form.
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let redundant_zero = bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0;
        let redundant_ones = bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0;
        if !(redundant_zero || redundant_ones) {
            break;
        }
        start += 1;
    }
    tlv(TAG_INTEGER, &bytes[start..])
}

fn octet_string(value: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, value)
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = body.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let length_bytes: Vec<u8> = length
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        out.push(0x80 | length_bytes.len() as u8);
        out.extend_from_slice(&length_bytes);
    }
    out.extend_from_slice(body);
    out
}

/// Reads one definite-length TLV: (tag, body, rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first_length, rest) = rest.split_first()?;
    let (length, rest) = if first_length < 0x80 {
        (usize::from(first_length), rest)
    } else {
        let count = usize::from(first_length & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_the_minimal_form() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(4), [0x02, 0x01, 0x04]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(-1), [0x02, 0x01, 0xff]);
        // The incremental-values flag is 0x80000000 as a positive 32-bit value on the wire.
        assert_eq!(
            integer(DIRSYNC_INCREMENTAL_VALUES),
            [0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00]
        );
    }

    #[test]
    fn sd_flags_value_is_the_documented_dacl_only_sequence() {
        // BER SEQUENCE { INTEGER 4 }, as MS-ADTS gives it (base64 MAMCAQQ=).
        assert_eq!(
            sd_flags(SD_FLAGS_DACL).val.expect("value"),
            [0x30, 0x03, 0x02, 0x01, 0x04]
        );
    }

    #[test]
    fn dirsync_request_and_response_round_trip() {
        let cookie = vec![7u8; 200];
        let request = dirsync_request(DIRSYNC_INCREMENTAL_VALUES, &cookie);
        assert!(request.crit);
        let value = request.val.expect("value");
        // The request has the response's shape (flags where moreResults is).
        let parsed = parse_dirsync_response(&value).expect("parses");
        assert!(parsed.more_results);
        assert_eq!(parsed.cookie, cookie);

        let last = sequence(&[integer(0), integer(0), octet_string(b"abc")]);
        let parsed = parse_dirsync_response(&last).expect("parses");
        assert!(!parsed.more_results);
        assert_eq!(parsed.cookie, b"abc");
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02, 0x01],
            &[0x04, 0x00],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ] {
            assert!(parse_dirsync_response(bad).is_err(), "{bad:?}");
            assert!(parse_paged_results_cookie(bad).is_err(), "{bad:?}");
        }
        let paged = sequence(&[integer(0), octet_string(b"next")]);
        assert_eq!(parse_paged_results_cookie(&paged).expect("parses"), b"next");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_bytes_are_an_answer_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = parse_dirsync_response(&bytes);
                let _ = parse_paged_results_cookie(&bytes);
            }

            #[test]
            fn a_dirsync_response_round_trips(
                more in any::<bool>(),
                unused in any::<i64>(),
                cookie in proptest::collection::vec(any::<u8>(), 0..70_000),
            ) {
                let value = sequence(&[integer(i64::from(more)), integer(unused), octet_string(&cookie)]);
                let parsed = parse_dirsync_response(&value).expect("parses");
                prop_assert_eq!(parsed.more_results, more);
                prop_assert_eq!(parsed.cookie, cookie);
            }

            #[test]
            fn a_paged_results_cookie_round_trips(
                size in any::<i64>(),
                cookie in proptest::collection::vec(any::<u8>(), 0..1000),
            ) {
                let value = sequence(&[integer(size), octet_string(&cookie)]);
                prop_assert_eq!(parse_paged_results_cookie(&value).expect("parses"), cookie);
            }

            #[test]
            fn integers_read_back(value in any::<i64>()) {
                let encoded = integer(value);
                let (tag, body, rest) = read_tlv(&encoded).expect("a TLV");
                prop_assert_eq!(tag, TAG_INTEGER);
                prop_assert!(rest.is_empty());
                let mut decoded: i64 = if body[0] & 0x80 != 0 { -1 } else { 0 };
                for byte in body {
                    decoded = (decoded << 8) | i64::from(*byte);
                }
                prop_assert_eq!(decoded, value);
            }
        }
    }
}
