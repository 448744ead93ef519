//! Just enough DER to read what Entra ID reads of an app's certificate credential
//! (https://learn.microsoft.com/en-us/graph/api/resources/keycredential?view=graph-rest-1.0): its
//! RSA public key (to verify client assertions), its validity, and its thumbprints. Like Entra,
//! the emulator checks no chain: an app's certificate is usually self-signed.

use ring::digest;

use crate::util::parse_rfc3339;

/// A certificate an app registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The `RSAPublicKey` (PKCS #1) of its subject public key info.
    pub rsa_public_key: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-1 and SHA-256 of the DER, as `x5t` and `x5t#S256` carry them.
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const OBJECT_IDENTIFIER: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One definite-length TLV: (tag, body, rest).
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, body, rest) = read(input)?;
    (found == tag).then_some((body, rest))
}

fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, body, rest) = read(input)?;
    let text = std::str::from_utf8(body).ok()?.strip_suffix('Z')?;
    let full = match tag {
        // YYMMDDHHMMSS: years 50–99 are 19xx (RFC 5280 4.1.2.5.1).
        UTC_TIME if text.len() == 12 => {
            let year: u32 = text[..2].parse().ok()?;
            format!("{}{text}", if year >= 50 { "19" } else { "20" })
        }
        GENERALIZED_TIME if text.len() == 14 => text.to_owned(),
        _ => return None,
    };
    if !full.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    Some((parse_rfc3339(&rfc3339)?, rest))
}

/// The certificate in `der`, if it is an X.509 certificate with an RSA key.
pub fn parse(der: &[u8]) -> Option<Certificate> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((VERSION, _, after)) = read(rest) {
        rest = after;
    }
    let (_serial, _, rest) = read(rest)?;
    let (_, rest) = expect(rest, SEQUENCE)?; // signature algorithm
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (not_before, after) = time(validity)?;
    let (not_after, _) = time(after)?;
    let (_, rest) = expect(rest, SEQUENCE)?; // subject
    let (spki, _) = expect(rest, SEQUENCE)?;
    let (algorithm, rest) = expect(spki, SEQUENCE)?;
    let (oid, _) = expect(algorithm, OBJECT_IDENTIFIER)?;
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (bits, _) = expect(rest, BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 || key.is_empty() {
        return None;
    }
    Some(Certificate {
        rsa_public_key: key.to_vec(),
        not_before,
        not_after,
        sha1: digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)
            .as_ref()
            .to_vec(),
        sha256: digest::digest(&digest::SHA256, der).as_ref().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
        for length in 0..64 {
            let bytes: Vec<u8> = (0..length).map(|n| (n * 37 % 256) as u8).collect();
            let _ = parse(&bytes);
        }
    }
}
