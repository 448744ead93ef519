//! Active Directory's GUIDs (objectGUID, schemaIDGUID, extended rights): the text form and the
//! mixed-endian wire form of MS-DTYP 2.3.4.2. The anchor of every synced object is one.

/// A GUID in its text form's field order; on the wire the first three fields are little-endian
/// and the last eight bytes are as written (MS-DTYP 2.3.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `1131f6aa-9c07-11d1-f79f-00c04fc2dcd2` (either case; dashes where they belong).
    pub fn parse(text: &str) -> Option<Guid> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        // Printing it back puts the dashes in their places; anything else was misplaced.
        Some(Guid(bytes)).filter(|guid| guid.to_string().eq_ignore_ascii_case(text))
    }

    /// From the mixed-endian wire form.
    pub fn from_wire(wire: &[u8; 16]) -> Guid {
        let mut bytes = *wire;
        bytes[0..4].reverse();
        bytes[4..6].reverse();
        bytes[6..8].reverse();
        Guid(bytes)
    }

    pub fn to_wire(self) -> [u8; 16] {
        // The swap is its own inverse.
        Guid::from_wire(&self.0).0
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_use_the_mixed_endian_wire_form() {
        let guid = Guid::parse("1131f6aa-9c07-11d1-f79f-00c04fc2dcd2").expect("valid");
        assert_eq!(
            guid.to_wire(),
            [
                0xaa, 0xf6, 0x31, 0x11, 0x07, 0x9c, 0xd1, 0x11, 0xf7, 0x9f, 0x00, 0xc0, 0x4f, 0xc2,
                0xdc, 0xd2
            ]
        );
        assert_eq!(Guid::from_wire(&guid.to_wire()), guid);
        assert_eq!(guid.to_string(), "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2");
        assert_eq!(
            Guid::parse("1131F6AA-9C07-11D1-F79F-00C04FC2DCD2"),
            Some(guid)
        );
        assert_eq!(Guid::parse("1131f6aa9c0711d1f79f00c04fc2dcd2"), None);
        assert_eq!(Guid::parse("1131f6a-a9c07-11d1-f79f-00c04fc2dcd2"), None);
    }
}
