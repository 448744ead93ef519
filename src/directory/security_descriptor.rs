//! Self-relative security descriptors (MS-DTYP 2.4.6), as `nTSecurityDescriptor` carries them:
//! parsed into owner, group and ACLs, and written back. Setup edits the domain root's DACL with
//! this to grant the service account its replication rights.
//!
//! ACE types dirsync does not need to understand are kept as raw bytes, so a descriptor always
//! writes back with every ACE it had.

use super::sid::Sid;
use crate::guid::Guid;

pub const ACE_TYPE_ACCESS_ALLOWED: u8 = 0x00;
pub const ACE_TYPE_ACCESS_DENIED: u8 = 0x01;
pub const ACE_TYPE_SYSTEM_AUDIT: u8 = 0x02;
pub const ACE_TYPE_ACCESS_ALLOWED_OBJECT: u8 = 0x05;
pub const ACE_TYPE_ACCESS_DENIED_OBJECT: u8 = 0x06;
pub const ACE_TYPE_SYSTEM_AUDIT_OBJECT: u8 = 0x07;

/// ACE flag: inherited by child containers (MS-DTYP 2.4.4.1).
pub const ACE_FLAG_CONTAINER_INHERIT: u8 = 0x02;
/// ACE flag: applies to children only, not to the object itself.
pub const ACE_FLAG_INHERIT_ONLY: u8 = 0x08;
/// ACE flag: this ACE was inherited from a parent.
pub const ACE_FLAG_INHERITED: u8 = 0x10;

/// Access mask: an extended right (control access), such as Replicating Directory Changes.
pub const ADS_RIGHT_DS_CONTROL_ACCESS: u32 = 0x0000_0100;
/// Access mask: write a property (or the property named by the object type).
pub const ADS_RIGHT_DS_WRITE_PROP: u32 = 0x0000_0020;

const OBJECT_TYPE_PRESENT: u32 = 0x1;
const INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ace {
    /// Allowed, denied or audit ACE with a mask and a trustee.
    Basic {
        ace_type: u8,
        flags: u8,
        mask: u32,
        sid: Sid,
    },
    /// The object-specific form: may name a property, property set or extended right
    /// (`object_type`) and the class of child objects it applies to (`inherited_object_type`).
    Object {
        ace_type: u8,
        flags: u8,
        mask: u32,
        object_type: Option<Guid>,
        inherited_object_type: Option<Guid>,
        sid: Sid,
    },
    /// Any other ACE type, kept byte for byte (header fields and body after the header).
    Other {
        ace_type: u8,
        flags: u8,
        body: Vec<u8>,
    },
}

/// An access control list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// 2, or 4 when object ACEs are present.
    pub revision: u8,
    pub aces: Vec<Ace>,
}

/// A security descriptor. Parts the reader did not ask for (the SD flags control) are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub control: u16,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    pub sacl: Option<Acl>,
    pub dacl: Option<Acl>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed security descriptor: {0}")]
pub struct DescriptorError(String);

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SACL_PRESENT: u16 = 0x0010;
const SE_SELF_RELATIVE: u16 = 0x8000;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn slice(&self, offset: usize, length: usize, what: &str) -> Result<&[u8], DescriptorError> {
        offset
            .checked_add(length)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or_else(|| {
                DescriptorError(format!(
                    "{what} at {offset} runs past the end ({} bytes)",
                    self.bytes.len()
                ))
            })
    }

    fn u8(&self, offset: usize, what: &str) -> Result<u8, DescriptorError> {
        Ok(self.slice(offset, 1, what)?[0])
    }

    fn u16(&self, offset: usize, what: &str) -> Result<u16, DescriptorError> {
        let b = self.slice(offset, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, offset: usize, what: &str) -> Result<u32, DescriptorError> {
        let b = self.slice(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn sid(&self, offset: usize, what: &str) -> Result<Sid, DescriptorError> {
        let count = usize::from(self.u8(offset + 1, what)?);
        let bytes = self.slice(offset, 8 + 4 * count, what)?;
        Sid::from_bytes(bytes).map_err(|e| DescriptorError(format!("{what}: {e}")))
    }

    fn guid(&self, offset: usize, what: &str) -> Result<Guid, DescriptorError> {
        let bytes: [u8; 16] = self
            .slice(offset, 16, what)?
            .try_into()
            .expect("slice of 16 bytes");
        Ok(Guid::from_wire(&bytes))
    }

    fn acl(&self, offset: usize, what: &str) -> Result<Acl, DescriptorError> {
        let revision = self.u8(offset, what)?;
        let size = usize::from(self.u16(offset + 2, what)?);
        let count = self.u16(offset + 4, what)?;
        self.slice(offset, size, what)?;
        let end = offset + size;
        let mut aces = Vec::with_capacity(usize::from(count));
        let mut position = offset + 8;
        for index in 0..count {
            let what = format!("{what} ACE {index}");
            let ace_size = usize::from(self.u16(position + 2, &what)?);
            if ace_size < 4 || position + ace_size > end {
                return Err(DescriptorError(format!(
                    "{what} has an invalid size {ace_size}"
                )));
            }
            aces.push(self.ace(position, ace_size, &what)?);
            position += ace_size;
        }
        Ok(Acl { revision, aces })
    }

    fn ace(&self, offset: usize, size: usize, what: &str) -> Result<Ace, DescriptorError> {
        let ace_type = self.u8(offset, what)?;
        let flags = self.u8(offset + 1, what)?;
        let body = offset + 4;
        match ace_type {
            ACE_TYPE_ACCESS_ALLOWED | ACE_TYPE_ACCESS_DENIED | ACE_TYPE_SYSTEM_AUDIT => {
                Ok(Ace::Basic {
                    ace_type,
                    flags,
                    mask: self.u32(body, what)?,
                    sid: self.sid(body + 4, what)?,
                })
            }
            ACE_TYPE_ACCESS_ALLOWED_OBJECT
            | ACE_TYPE_ACCESS_DENIED_OBJECT
            | ACE_TYPE_SYSTEM_AUDIT_OBJECT => {
                let mask = self.u32(body, what)?;
                let object_flags = self.u32(body + 4, what)?;
                let mut position = body + 8;
                let mut optional_guid = |present: bool| -> Result<Option<Guid>, DescriptorError> {
                    if !present {
                        return Ok(None);
                    }
                    let guid = self.guid(position, what)?;
                    position += 16;
                    Ok(Some(guid))
                };
                let object_type = optional_guid(object_flags & OBJECT_TYPE_PRESENT != 0)?;
                let inherited_object_type =
                    optional_guid(object_flags & INHERITED_OBJECT_TYPE_PRESENT != 0)?;
                Ok(Ace::Object {
                    ace_type,
                    flags,
                    mask,
                    object_type,
                    inherited_object_type,
                    sid: self.sid(position, what)?,
                })
            }
            _ => Ok(Ace::Other {
                ace_type,
                flags,
                body: self.slice(body, size - 4, what)?.to_vec(),
            }),
        }
    }
}

impl SecurityDescriptor {
    /// Parses the self-relative binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let reader = Reader { bytes };
        if reader.u8(0, "revision")? != 1 {
            return Err(DescriptorError("revision is not 1".to_owned()));
        }
        let control = reader.u16(2, "control")?;
        let offset =
            |at, what| -> Result<usize, DescriptorError> { Ok(reader.u32(at, what)? as usize) };
        let (owner_at, group_at) = (offset(4, "owner offset")?, offset(8, "group offset")?);
        let (sacl_at, dacl_at) = (offset(12, "SACL offset")?, offset(16, "DACL offset")?);
        Ok(SecurityDescriptor {
            control,
            owner: (owner_at != 0)
                .then(|| reader.sid(owner_at, "owner"))
                .transpose()?,
            group: (group_at != 0)
                .then(|| reader.sid(group_at, "group"))
                .transpose()?,
            sacl: (sacl_at != 0 && control & SE_SACL_PRESENT != 0)
                .then(|| reader.acl(sacl_at, "SACL"))
                .transpose()?,
            dacl: (dacl_at != 0 && control & SE_DACL_PRESENT != 0)
                .then(|| reader.acl(dacl_at, "DACL"))
                .transpose()?,
        })
    }

    /// Writes the self-relative form in NDR's layout (as Samba does): header, owner, group, SACL,
    /// DACL. Windows puts the ACLs first; readers follow the offsets, so either is valid. A part
    /// whose size does not fit its field (an ACL over 64 KiB) is an error, never truncated.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DescriptorError> {
        let mut out = vec![0u8; 20];
        out[0] = 1;
        let mut control = self.control | SE_SELF_RELATIVE;
        let place = |out: &mut Vec<u8>, field: usize, data: Option<Vec<u8>>| {
            if let Some(data) = data {
                let at = u32::try_from(out.len())
                    .map_err(|_| DescriptorError("the descriptor is over 4 GiB".to_owned()))?;
                out[field..field + 4].copy_from_slice(&at.to_le_bytes());
                out.extend_from_slice(&data);
            }
            Ok::<(), DescriptorError>(())
        };
        place(&mut out, 4, self.owner.as_ref().map(Sid::to_bytes))?;
        place(&mut out, 8, self.group.as_ref().map(Sid::to_bytes))?;
        place(
            &mut out,
            12,
            self.sacl.as_ref().map(Acl::to_bytes).transpose()?,
        )?;
        place(
            &mut out,
            16,
            self.dacl.as_ref().map(Acl::to_bytes).transpose()?,
        )?;
        if self.sacl.is_some() {
            control |= SE_SACL_PRESENT;
        }
        if self.dacl.is_some() {
            control |= SE_DACL_PRESENT;
        }
        out[2..4].copy_from_slice(&control.to_le_bytes());
        Ok(out)
    }
}

impl Acl {
    pub fn to_bytes(&self) -> Result<Vec<u8>, DescriptorError> {
        let mut out = vec![self.revision, 0, 0, 0, 0, 0, 0, 0];
        for ace in &self.aces {
            out.extend_from_slice(&ace.to_bytes()?);
        }
        let too_large = |what: &str| {
            DescriptorError(format!(
                "the ACL's {what} does not fit the 16 bits MS-DTYP gives it ({} ACEs, {} bytes); remove entries",
                self.aces.len(),
                out.len()
            ))
        };
        let size = u16::try_from(out.len()).map_err(|_| too_large("size"))?;
        let count = u16::try_from(self.aces.len()).map_err(|_| too_large("ACE count"))?;
        out[2..4].copy_from_slice(&size.to_le_bytes());
        out[4..6].copy_from_slice(&count.to_le_bytes());
        Ok(out)
    }
}

impl Ace {
    pub fn to_bytes(&self) -> Result<Vec<u8>, DescriptorError> {
        let (ace_type, flags, body) = match self {
            Ace::Basic {
                ace_type,
                flags,
                mask,
                sid,
            } => {
                let mut body = mask.to_le_bytes().to_vec();
                body.extend_from_slice(&sid.to_bytes());
                (*ace_type, *flags, body)
            }
            Ace::Object {
                ace_type,
                flags,
                mask,
                object_type,
                inherited_object_type,
                sid,
            } => {
                let mut object_flags = 0;
                if object_type.is_some() {
                    object_flags |= OBJECT_TYPE_PRESENT;
                }
                if inherited_object_type.is_some() {
                    object_flags |= INHERITED_OBJECT_TYPE_PRESENT;
                }
                let mut body = mask.to_le_bytes().to_vec();
                body.extend_from_slice(&object_flags.to_le_bytes());
                for guid in [object_type, inherited_object_type].into_iter().flatten() {
                    body.extend_from_slice(&guid.to_wire());
                }
                body.extend_from_slice(&sid.to_bytes());
                (*ace_type, *flags, body)
            }
            Ace::Other {
                ace_type,
                flags,
                body,
            } => (*ace_type, *flags, body.clone()),
        };
        let size = u16::try_from(4 + body.len()).map_err(|_| {
            DescriptorError(format!(
                "an ACE of {} bytes does not fit the 16 bits MS-DTYP gives its size",
                4 + body.len()
            ))
        })?;
        let mut out = vec![ace_type, flags];
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(text_subs: &[u32]) -> Sid {
        Sid {
            revision: 1,
            authority: 5,
            sub_authorities: text_subs.to_vec(),
        }
    }

    #[test]
    fn a_descriptor_round_trips() {
        let replicating = Guid::parse("1131f6aa-9c07-11d1-f79f-00c04fc2dcd2").expect("valid");
        let descriptor = SecurityDescriptor {
            control: 0x8c14,
            owner: Some(sid(&[21, 1, 2, 3, 512])),
            group: Some(sid(&[21, 1, 2, 3, 513])),
            sacl: None,
            dacl: Some(Acl {
                revision: 4,
                aces: vec![
                    Ace::Basic {
                        ace_type: ACE_TYPE_ACCESS_ALLOWED,
                        flags: 0,
                        mask: 0x000f_01ff,
                        sid: sid(&[18]),
                    },
                    Ace::Object {
                        ace_type: ACE_TYPE_ACCESS_ALLOWED_OBJECT,
                        flags: ACE_FLAG_CONTAINER_INHERIT | ACE_FLAG_INHERIT_ONLY,
                        mask: ADS_RIGHT_DS_CONTROL_ACCESS,
                        object_type: Some(replicating),
                        inherited_object_type: None,
                        sid: sid(&[21, 1, 2, 3, 1105]),
                    },
                    Ace::Other {
                        ace_type: 0x11,
                        flags: 0,
                        body: vec![1, 2, 3, 4],
                    },
                ],
            }),
        };
        let bytes = descriptor.to_bytes().expect("encodes");
        let parsed = SecurityDescriptor::from_bytes(&bytes).expect("parses");
        assert_eq!(parsed, descriptor);
        assert_eq!(parsed.to_bytes().expect("encodes"), bytes);
    }

    #[test]
    fn truncated_or_corrupt_input_is_an_error_not_a_panic() {
        let descriptor = SecurityDescriptor {
            control: 0,
            owner: Some(sid(&[21, 9, 512])),
            group: None,
            sacl: None,
            dacl: Some(Acl {
                revision: 2,
                aces: vec![Ace::Basic {
                    ace_type: 0,
                    flags: 0,
                    mask: 1,
                    sid: sid(&[11]),
                }],
            }),
        };
        let bytes = descriptor.to_bytes().expect("encodes");
        for length in 0..bytes.len() {
            assert!(
                SecurityDescriptor::from_bytes(&bytes[..length]).is_err(),
                "truncated to {length}"
            );
        }
        for index in 0..bytes.len() {
            for value in [0u8, 0x7f, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[index] = value;
                // Must not panic; may or may not parse.
                let _ = SecurityDescriptor::from_bytes(&corrupt);
            }
        }
    }

    #[test]
    fn a_descriptor_too_large_to_encode_is_an_error() {
        let ace = Ace::Basic {
            ace_type: ACE_TYPE_ACCESS_ALLOWED,
            flags: 0,
            mask: 1,
            sid: sid(&[21, 1, 2, 3, 1105]),
        };
        let descriptor = SecurityDescriptor {
            control: 0,
            owner: None,
            group: None,
            sacl: None,
            // 36 bytes each: past the 65,535 bytes an ACL's size field holds.
            dacl: Some(Acl {
                revision: 2,
                aces: vec![ace; 2_000],
            }),
        };
        let error = descriptor.to_bytes().expect_err("too large");
        assert!(error.to_string().contains("16 bits"), "{error}");
        let huge_body = Ace::Other {
            ace_type: 0x11,
            flags: 0,
            body: vec![0; 70_000],
        };
        assert!(huge_body.to_bytes().is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn any_sid() -> impl Strategy<Value = Sid> {
            (
                0u64..(1 << 48),
                proptest::collection::vec(any::<u32>(), 0..16),
            )
                .prop_map(|(authority, sub_authorities)| Sid {
                    revision: 1,
                    authority,
                    sub_authorities,
                })
        }

        fn any_guid() -> impl Strategy<Value = Option<Guid>> {
            proptest::option::of(any::<[u8; 16]>().prop_map(Guid))
        }

        fn any_ace() -> impl Strategy<Value = Ace> {
            prop_oneof![
                (
                    prop_oneof![
                        Just(ACE_TYPE_ACCESS_ALLOWED),
                        Just(ACE_TYPE_ACCESS_DENIED),
                        Just(ACE_TYPE_SYSTEM_AUDIT)
                    ],
                    any::<u8>(),
                    any::<u32>(),
                    any_sid(),
                )
                    .prop_map(|(ace_type, flags, mask, sid)| Ace::Basic {
                        ace_type,
                        flags,
                        mask,
                        sid
                    }),
                (
                    prop_oneof![
                        Just(ACE_TYPE_ACCESS_ALLOWED_OBJECT),
                        Just(ACE_TYPE_ACCESS_DENIED_OBJECT),
                        Just(ACE_TYPE_SYSTEM_AUDIT_OBJECT)
                    ],
                    any::<u8>(),
                    any::<u32>(),
                    any_guid(),
                    any_guid(),
                    any_sid(),
                )
                    .prop_map(
                        |(ace_type, flags, mask, object_type, inherited_object_type, sid)| {
                            Ace::Object {
                                ace_type,
                                flags,
                                mask,
                                object_type,
                                inherited_object_type,
                                sid,
                            }
                        }
                    ),
                // Types dirsync does not parse (callback, mandatory label, …), kept as bytes.
                (
                    9u8..19,
                    any::<u8>(),
                    proptest::collection::vec(any::<[u8; 4]>(), 0..8)
                )
                    .prop_map(|(ace_type, flags, words)| Ace::Other {
                        ace_type,
                        flags,
                        body: words.concat(),
                    }),
            ]
        }

        fn any_acl() -> impl Strategy<Value = Option<Acl>> {
            proptest::option::of(
                (
                    prop_oneof![Just(2u8), Just(4u8)],
                    proptest::collection::vec(any_ace(), 0..12),
                )
                    .prop_map(|(revision, aces)| Acl { revision, aces }),
            )
        }

        fn any_descriptor() -> impl Strategy<Value = SecurityDescriptor> {
            (
                any::<u16>(),
                proptest::option::of(any_sid()),
                proptest::option::of(any_sid()),
                any_acl(),
                any_acl(),
            )
                .prop_map(|(control, owner, group, sacl, dacl)| {
                    let mut control =
                        (control & !(SE_DACL_PRESENT | SE_SACL_PRESENT)) | SE_SELF_RELATIVE;
                    if sacl.is_some() {
                        control |= SE_SACL_PRESENT;
                    }
                    if dacl.is_some() {
                        control |= SE_DACL_PRESENT;
                    }
                    SecurityDescriptor {
                        control,
                        owner,
                        group,
                        sacl,
                        dacl,
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_000))]

            #[test]
            fn every_descriptor_round_trips(descriptor in any_descriptor()) {
                let bytes = descriptor.to_bytes().expect("encodes");
                let parsed = SecurityDescriptor::from_bytes(&bytes).expect("parses");
                prop_assert_eq!(&parsed, &descriptor);
                prop_assert_eq!(parsed.to_bytes().expect("encodes"), bytes);
            }

            #[test]
            fn damaged_bytes_give_an_error_or_a_descriptor_never_a_panic(
                descriptor in any_descriptor(),
                damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
                keep in any::<prop::sample::Index>(),
            ) {
                let mut bytes = descriptor.to_bytes().expect("encodes");
                for (at, value) in damage {
                    let at = at.index(bytes.len());
                    bytes[at] = value;
                }
                let _ = SecurityDescriptor::from_bytes(&bytes);
                let kept = keep.index(bytes.len() + 1);
                let _ = SecurityDescriptor::from_bytes(&bytes[..kept]);
            }

            #[test]
            fn any_bytes_give_an_error_or_a_descriptor(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(parsed) = SecurityDescriptor::from_bytes(&bytes) {
                    // What parses also writes back.
                    let _ = parsed.to_bytes();
                }
            }
        }
    }
}
