//! The password hash transform of password hash sync (README, "Password hash sync"), byte-exact as Microsoft documents
//! it for Entra Connect: the cloud never receives the NT hash itself, only
//! `PBKDF2-HMAC-SHA256(UTF-16LE(uppercase hex of the NT hash), 10 random salt bytes, 1,000
//! iterations, 32 bytes)`, serialized `v1;PPH1_MD4,<salt hex>,<iterations>,<hash hex>;`.
//!
//! Both the NT hash and the derived credential are secrets: their `Debug` never shows them, and
//! nothing here logs, stores or formats them into errors.

use std::fmt;
use std::num::NonZeroU32;

use ring::rand::SecureRandom as _;
use zeroize::{Zeroize as _, Zeroizing};

use crate::directory::password_hashes::NtHash;

/// Microsoft's fixed parameters.
pub const ITERATIONS: u32 = 1000;
pub const SALT_LEN: usize = 10;
const DERIVED_LEN: usize = 32;

/// What the cloud receives for one user. Still a secret (it verifies the AD password), so it is
/// only ever sent, never shown or kept, and overwritten in memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct CloudCredential(Zeroizing<String>);

impl CloudCredential {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CloudCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloudCredential(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomUnavailable;

/// The credential for `nt_hash` with a fresh random salt.
pub fn cloud_credential(nt_hash: &NtHash) -> Result<CloudCredential, RandomUnavailable> {
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| RandomUnavailable)?;
    Ok(cloud_credential_with_salt(nt_hash, &salt))
}

/// The transform itself, with a given salt (pure; the test vectors check it).
pub fn cloud_credential_with_salt(nt_hash: &NtHash, salt: &[u8; SALT_LEN]) -> CloudCredential {
    // Every intermediate form of the hash is overwritten once used.
    let hex_hash = Zeroizing::new(hex(nt_hash.expose()).to_ascii_uppercase());
    let password: Zeroizing<Vec<u8>> =
        Zeroizing::new(hex_hash.encode_utf16().flat_map(u16::to_le_bytes).collect());
    let mut derived = Zeroizing::new([0u8; DERIVED_LEN]);
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        &password,
        derived.as_mut(),
    );
    let mut derived_hex = hex(derived.as_ref());
    let credential = format!("v1;PPH1_MD4,{},{ITERATIONS},{derived_hex};", hex(salt));
    derived_hex.zeroize();
    CloudCredential(Zeroizing::new(credential))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect()
    }

    /// Vectors computed by OpenSSL (MD4) and Python's hashlib / `openssl kdf` (PBKDF2): see
    /// `tests/data/make-password-hash-vectors`.
    #[test]
    fn matches_the_independently_computed_vectors() {
        let vectors = include_str!("../../tests/data/password-hash-vectors.tsv");
        let mut checked = 0;
        for line in vectors.lines().filter(|line| !line.starts_with('#')) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [_password, nt_hash, salt, iterations, credential] = fields.as_slice() else {
                panic!("bad vector line {line:?}");
            };
            assert_eq!(*iterations, "1000");
            let nt_hash = NtHash::from_bytes(&from_hex(nt_hash)).expect("16 bytes");
            let salt: [u8; SALT_LEN] = from_hex(salt).try_into().expect("10 bytes");
            assert_eq!(
                cloud_credential_with_salt(&nt_hash, &salt).expose(),
                *credential
            );
            checked += 1;
        }
        assert_eq!(checked, 5);
    }

    #[test]
    fn a_fresh_salt_each_time_and_the_documented_shape() {
        let nt_hash = NtHash::from_bytes(&[7u8; 16]).expect("16 bytes");
        let first = cloud_credential(&nt_hash).expect("random");
        let second = cloud_credential(&nt_hash).expect("random");
        assert_ne!(first, second, "the salt is random");
        let text = first.expose();
        let body = text
            .strip_prefix("v1;PPH1_MD4,")
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("v1;PPH1_MD4,…;");
        let parts: Vec<&str> = body.split(',').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].len(), 2 * SALT_LEN);
        assert_eq!(parts[1], "1000");
        assert_eq!(parts[2].len(), 64);
        assert!(
            body.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == ',')
        );
    }

    #[test]
    fn secrets_do_not_format() {
        let nt_hash = NtHash::from_bytes(&[0xab; 16]).expect("16 bytes");
        let credential = cloud_credential_with_salt(&nt_hash, &[0; SALT_LEN]);
        let shown = format!("{credential:?}");
        assert!(!shown.contains("PPH1"), "{shown}");
    }
}
