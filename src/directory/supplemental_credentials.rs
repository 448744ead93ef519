//! `supplementalCredentials`, as MS-SAMR 2.2.10.1 (USER_PROPERTIES) and 2.2.10.2
//! (USER_PROPERTY) define it: the packages a DC keeps beside a user's NT hash. Password sync
//! through Microsoft Graph needs only two of them (README, "Password sync through Microsoft
//! Graph"):
//!
//! - `Primary:CLEARTEXT`: the password as UTF-16LE, kept only for accounts set to store their
//!   password with reversible encryption;
//! - `Primary:SambaGPG`: the same UTF-16LE password, GPG-encrypted (ASCII-armored) to the keys
//!   smb.conf's `password hash gpg key ids` names; Samba's own package.
//!
//! Pure parsing: nothing here decrypts, logs or keeps a value.

use zeroize::Zeroizing;

/// Where USER_PROPERTIES' PropertySignature sits: Reserved1 (4), Length (4), Reserved2 (2),
/// Reserved3 (2) and Reserved4 (96 bytes) come first.
const SIGNATURE_OFFSET: usize = 108;
/// MS-SAMR: "PropertySignature (2 bytes): MUST be 0x50."
const PROPERTY_SIGNATURE: u16 = 0x50;

/// The packages password sync uses, still as the DC stored them.
#[derive(Default, PartialEq, Eq)]
pub struct StoredPasswords {
    /// `Primary:CLEARTEXT`: the password, UTF-16LE.
    pub cleartext_utf16: Option<Zeroizing<Vec<u8>>>,
    /// `Primary:SambaGPG`: an ASCII-armored OpenPGP message holding the UTF-16LE password.
    pub samba_gpg: Option<Vec<u8>>,
}

impl std::fmt::Debug for StoredPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPasswords")
            .field("cleartext", &self.cleartext_utf16.as_ref().map(|_| "***"))
            .field("samba_gpg", &self.samba_gpg.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why a `supplementalCredentials` value could not be read. Says where, never what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedCredentials {
    #[error("supplementalCredentials is {0} bytes, shorter than its header")]
    TooShort(usize),
    #[error("supplementalCredentials has the signature {0:#06x}, not 0x0050 (MS-SAMR 2.2.10.1)")]
    Signature(u16),
    #[error("supplementalCredentials' property {0} runs past the end of the value")]
    Truncated(usize),
    #[error("supplementalCredentials' property {0} is not hexadecimal (MS-SAMR 2.2.10.2)")]
    NotHex(usize),
}

/// The password packages in one `supplementalCredentials` value. A value with no properties
/// (a user without a password, or one set before the packages existed) gives neither.
pub fn parse(value: &[u8]) -> Result<StoredPasswords, MalformedCredentials> {
    let mut found = StoredPasswords::default();
    // Samba writes a zero-length header-only value for accounts with no packages.
    if value.len() < SIGNATURE_OFFSET + 4 {
        if value.len() <= SIGNATURE_OFFSET {
            return Ok(found);
        }
        return Err(MalformedCredentials::TooShort(value.len()));
    }
    let signature = u16_at(value, SIGNATURE_OFFSET);
    if signature != PROPERTY_SIGNATURE {
        return Err(MalformedCredentials::Signature(signature));
    }
    let count = usize::from(u16_at(value, SIGNATURE_OFFSET + 2));
    let mut at = SIGNATURE_OFFSET + 4;
    for index in 0..count {
        // NameLength (2), ValueLength (2), Reserved (2), then the name (UTF-16LE) and the value
        // (the package's bytes as ASCII hex).
        if at + 6 > value.len() {
            return Err(MalformedCredentials::Truncated(index));
        }
        let name_length = usize::from(u16_at(value, at));
        let value_length = usize::from(u16_at(value, at + 2));
        let name_start = at + 6;
        let value_start = name_start + name_length;
        let end = value_start + value_length;
        if end > value.len() {
            return Err(MalformedCredentials::Truncated(index));
        }
        let name = utf16_name(&value[name_start..value_start]);
        let hex = &value[value_start..end];
        match name.as_str() {
            "Primary:CLEARTEXT" => {
                found.cleartext_utf16 = Some(Zeroizing::new(
                    from_hex(hex).ok_or(MalformedCredentials::NotHex(index))?,
                ));
            }
            "Primary:SambaGPG" => {
                found.samba_gpg = Some(from_hex(hex).ok_or(MalformedCredentials::NotHex(index))?);
            }
            _ => {}
        }
        at = end;
    }
    Ok(found)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn utf16_name(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn from_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16);
    hex.chunks_exact(2)
        .map(|pair| u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok())
        .collect()
}

/// A `supplementalCredentials` value with these packages, as a DC writes it (for tests).
#[cfg(test)]
pub(crate) fn encode(packages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut properties = Vec::new();
    for (name, value) in packages {
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let hex: String = value.iter().map(|byte| format!("{byte:02X}")).collect();
        properties.extend((name.len() as u16).to_le_bytes());
        properties.extend((hex.len() as u16).to_le_bytes());
        properties.extend(0u16.to_le_bytes());
        properties.extend(name);
        properties.extend(hex.into_bytes());
    }
    let mut value = Vec::new();
    value.extend(0u32.to_le_bytes());
    value.extend(((properties.len() + 96 + 4 + 4) as u32).to_le_bytes());
    value.extend(0u32.to_le_bytes());
    value.extend(std::iter::repeat_n([0x20u8, 0x00], 48).flatten());
    value.extend(PROPERTY_SIGNATURE.to_le_bytes());
    value.extend((packages.len() as u16).to_le_bytes());
    value.extend(properties);
    value.push(0);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn the_password_packages_are_found_among_the_others() {
        let value = encode(&[
            ("Primary:Kerberos-Newer-Keys", &[1, 2, 3]),
            ("Primary:CLEARTEXT", &utf16("Päss-1")),
            ("Packages", &utf16("Kerberos")),
            ("Primary:SambaGPG", b"-----BEGIN PGP MESSAGE-----"),
        ]);
        let found = parse(&value).expect("well formed");
        assert_eq!(found.cleartext_utf16.as_deref(), Some(&utf16("Päss-1")));
        assert_eq!(
            found.samba_gpg.as_deref(),
            Some(&b"-----BEGIN PGP MESSAGE-----"[..])
        );
        assert!(!format!("{found:?}").contains("P\0"), "{found:?}");
    }

    #[test]
    fn a_value_without_the_packages_gives_neither() {
        let found = parse(&encode(&[("Primary:Kerberos", &[9; 8])])).expect("well formed");
        assert_eq!(found, StoredPasswords::default());
        assert_eq!(parse(&[]).expect("empty"), StoredPasswords::default());
    }

    #[test]
    fn damaged_values_are_refused_saying_where() {
        let good = encode(&[("Primary:SambaGPG", b"abc")]);
        assert_eq!(
            parse(&good[..good.len() - 4]),
            Err(MalformedCredentials::Truncated(0))
        );
        let mut bad_signature = good.clone();
        bad_signature[SIGNATURE_OFFSET] = 0x51;
        assert_eq!(
            parse(&bad_signature),
            Err(MalformedCredentials::Signature(0x51))
        );
        let mut not_hex = good;
        let last_hex = not_hex.len() - 2;
        not_hex[last_hex] = b'Z';
        assert_eq!(parse(&not_hex), Err(MalformedCredentials::NotHex(0)));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse(&bytes);
        }
    }
}
