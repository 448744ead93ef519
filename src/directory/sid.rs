//! Security identifiers (MS-DTYP 2.4.2): the binary form LDAP returns and the `S-1-5-21-…` text form.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    pub revision: u8,
    /// 48-bit identifier authority (5 = NT Authority).
    pub authority: u64,
    pub sub_authorities: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid binary SID: {0}")]
pub struct SidError(&'static str);

impl Sid {
    /// Parses the binary form: revision, count, 6-byte big-endian authority, then little-endian
    /// 32-bit sub-authorities.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SidError> {
        let [revision, count, authority @ ..] = bytes else {
            return Err(SidError("shorter than its header"));
        };
        if *revision != 1 {
            return Err(SidError("revision is not 1"));
        }
        let count = usize::from(*count);
        if authority.len() != 6 + 4 * count {
            return Err(SidError("length does not match its sub-authority count"));
        }
        let authority_value = authority[..6]
            .iter()
            .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
        let sub_authorities = authority[6..]
            .chunks_exact(4)
            .map(|chunk| u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        Ok(Sid {
            revision: *revision,
            authority: authority_value,
            sub_authorities,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![self.revision, self.sub_authorities.len() as u8];
        bytes.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for sub in &self.sub_authorities {
            bytes.extend_from_slice(&sub.to_le_bytes());
        }
        bytes
    }

    /// The SID of a well-known group of this domain: `domain_sid.with_rid(519)` is Enterprise Admins.
    pub fn with_rid(&self, rid: u32) -> Sid {
        let mut sid = self.clone();
        sid.sub_authorities.push(rid);
        sid
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-{}", self.revision, self.authority)?;
        for sub in &self.sub_authorities {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

/// Relative identifiers of the groups the admin check looks for (MS-DTYP 2.4.2.4).
pub const RID_DOMAIN_ADMINS: u32 = 512;
pub const RID_ENTERPRISE_ADMINS: u32 = 519;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_text_forms_round_trip() {
        // S-1-5-21-1004336348-1177238915-682003330-512, as AD returns it.
        let bytes = [
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46,
            0x82, 0x8b, 0xa6, 0x28, 0x00, 0x02, 0x00, 0x00,
        ];
        let sid = Sid::from_bytes(&bytes).expect("valid");
        assert_eq!(
            sid.to_string(),
            "S-1-5-21-1004336348-1177238915-682003330-512"
        );
        assert_eq!(sid.to_bytes(), bytes);
    }

    #[test]
    fn rid_is_appended() {
        let domain = Sid {
            revision: 1,
            authority: 5,
            sub_authorities: vec![21, 1, 2, 3],
        };
        assert_eq!(
            domain.with_rid(RID_ENTERPRISE_ADMINS).to_string(),
            "S-1-5-21-1-2-3-519"
        );
    }

    #[test]
    fn malformed_sids_are_rejected() {
        assert!(Sid::from_bytes(&[]).is_err());
        assert!(Sid::from_bytes(&[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0]).is_err());
        assert!(Sid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 5]).is_err());
    }
}
