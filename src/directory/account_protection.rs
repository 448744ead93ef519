//! The service account's own permissions. The account may replicate directory changes, so whoever
//! can reset its password or rewrite its permissions can read the whole directory as dirsync does.
//! An account left in `CN=Users` with the permissions it inherits there can be taken over by anyone
//! delegated "reset password" on that container (a helpdesk group) and by Account Operators (the
//! `user` class's default descriptor grants them full control): the hole Microsoft closed for
//! Entra Connect's `MSOL_` account with security advisory 4056318 and its
//! `Set-ADSyncRestrictedPermissions`. dirsync gives its account the same protected descriptor:
//! owner Domain Admins, inheritance off, and only these entries:
//!
//! | trustee | access |
//! |---|---|
//! | SYSTEM, Enterprise Admins, Domain Admins, Administrators | full control |
//! | Enterprise Domain Controllers, Authenticated Users | list contents, read all properties, read permissions |
//!
//! The same check tells an account dirsync made from a look-alike: one of the same name and
//! description whose owner or permissions let someone else control it.

use super::security_descriptor::{
    ACE_FLAG_INHERITED, ACE_TYPE_ACCESS_ALLOWED, ACE_TYPE_ACCESS_ALLOWED_OBJECT, Ace, Acl,
    SecurityDescriptor,
};
use super::sid::{RID_DOMAIN_ADMINS, RID_ENTERPRISE_ADMINS, Sid};

/// SE_DACL_PROTECTED: the DACL does not inherit from the parent (MS-DTYP 2.4.6).
pub const SE_DACL_PROTECTED: u16 = 0x1000;

/// Full control of a directory object: every standard and directory-specific right (MS-ADTS
/// 5.1.3.2, `GA` in SDDL as Active Directory stores it).
const FULL_CONTROL: u32 = 0x000f_01ff;
/// List contents (`LC`), read all properties (`RP`), read permissions (`RC`).
const READ_ONLY: u32 = 0x0000_0004 | 0x0000_0010 | 0x0002_0000;
/// Rights that only read: list contents, read property, list object, read permissions. Anything
/// else an entry grants lets its trustee change the account.
const READ_RIGHTS: u32 = 0x0000_0004 | 0x0000_0010 | 0x0000_0080 | 0x0002_0000 | 0x8000_0000;

const RID_ADMINISTRATORS: u32 = 544;

/// `User-Force-Change-Password`, the Reset Password extended right (MS-ADTS 5.1.3.2.1).
const RESET_PASSWORD: &str = "00299570-246d-11d0-a768-00aa006e0529";

/// The SIDs the protected descriptor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trustees {
    /// The domain the account lives in (Domain Admins is its RID 512).
    pub domain: Sid,
    /// The forest root domain (Enterprise Admins is its RID 519).
    pub forest_root: Sid,
}

fn well_known(sub_authorities: &[u32]) -> Sid {
    Sid {
        revision: 1,
        authority: 5,
        sub_authorities: sub_authorities.to_vec(),
    }
}

pub fn system() -> Sid {
    well_known(&[18])
}

pub fn enterprise_domain_controllers() -> Sid {
    well_known(&[9])
}

pub fn authenticated_users() -> Sid {
    well_known(&[11])
}

pub fn administrators() -> Sid {
    well_known(&[32, RID_ADMINISTRATORS])
}

impl Trustees {
    pub fn domain_admins(&self) -> Sid {
        self.domain.with_rid(RID_DOMAIN_ADMINS)
    }

    pub fn enterprise_admins(&self) -> Sid {
        self.forest_root.with_rid(RID_ENTERPRISE_ADMINS)
    }

    /// The groups that administer the domain anyway: full control by them adds nothing.
    fn administrators(&self) -> [Sid; 4] {
        [
            system(),
            self.enterprise_admins(),
            self.domain_admins(),
            administrators(),
        ]
    }

    /// The descriptor setup gives the service account.
    pub fn protected_descriptor(&self) -> SecurityDescriptor {
        let allow = |mask: u32, sid: Sid| Ace::Basic {
            ace_type: ACE_TYPE_ACCESS_ALLOWED,
            flags: 0,
            mask,
            sid,
        };
        let mut aces: Vec<Ace> = self
            .administrators()
            .into_iter()
            .map(|sid| allow(FULL_CONTROL, sid))
            .collect();
        aces.push(allow(READ_ONLY, enterprise_domain_controllers()));
        aces.push(allow(READ_ONLY, authenticated_users()));
        SecurityDescriptor {
            control: SE_DACL_PROTECTED,
            owner: Some(self.domain_admins()),
            group: Some(self.domain_admins()),
            sacl: None,
            dacl: Some(Acl { revision: 2, aces }),
        }
    }

    /// What in `actual` lets someone other than the domain's administrators control the account,
    /// in words (SIDs named by `name`); empty when it is protected as setup makes it.
    pub fn differences(
        &self,
        actual: &SecurityDescriptor,
        name: &dyn Fn(&Sid) -> String,
    ) -> Vec<String> {
        let admins = self.administrators();
        let mut differences = Vec::new();
        match &actual.owner {
            Some(owner) if admins.contains(owner) => {}
            Some(owner) => differences.push(format!(
                "its owner is {} (setup makes Domain Admins the owner; an owner can always change the permissions)",
                name(owner)
            )),
            None => differences.push("its owner could not be read".to_owned()),
        }
        if actual.control & SE_DACL_PROTECTED == 0 {
            differences.push(
                "it inherits permissions from its container (setup turns inheritance off)"
                    .to_owned(),
            );
        }
        let Some(dacl) = &actual.dacl else {
            differences.push("it has no DACL, which lets everyone do everything".to_owned());
            return differences;
        };
        for ace in &dacl.aces {
            let (mask, sid, object_type, flags) = match ace {
                Ace::Basic {
                    ace_type: ACE_TYPE_ACCESS_ALLOWED,
                    flags,
                    mask,
                    sid,
                } => (*mask, sid, None, *flags),
                Ace::Object {
                    ace_type: ACE_TYPE_ACCESS_ALLOWED_OBJECT,
                    flags,
                    mask,
                    object_type,
                    sid,
                    ..
                } => (*mask, sid, *object_type, *flags),
                // Denies take rights away; audit entries grant nothing.
                _ => continue,
            };
            if admins.contains(sid) || mask & !READ_RIGHTS == 0 {
                continue;
            }
            let inherited = if flags & ACE_FLAG_INHERITED != 0 {
                " (inherited)"
            } else {
                ""
            };
            differences.push(format!(
                "{} may {}{inherited}",
                name(sid),
                rights_in_words(mask, object_type.map(|guid| guid.to_string()).as_deref())
            ));
        }
        differences
    }
}

/// An access mask as an administrator reads it: "reset its password", "write its properties".
fn rights_in_words(mask: u32, object_type: Option<&str>) -> String {
    if mask & FULL_CONTROL == FULL_CONTROL || mask & 0x1000_0000 != 0 {
        return "do anything to it (full control)".to_owned();
    }
    let mut words = Vec::new();
    let named = [
        (0x0008_0000, "take ownership"),
        (0x0004_0000, "change its permissions"),
        (0x0001_0000, "delete it"),
        (0x0000_0040, "delete its subtree"),
        (0x0000_0001 | 0x0000_0002, "create or delete children"),
        (0x0000_0008, "make validated writes"),
        (0x4000_0000, "write it (generic write)"),
    ];
    for (bits, word) in named {
        if mask & bits != 0 {
            words.push(word.to_owned());
        }
    }
    if mask & 0x0000_0020 != 0 {
        words.push(match object_type {
            Some(attribute) => format!("write the property {attribute}"),
            None => "write all its properties".to_owned(),
        });
    }
    if mask & 0x0000_0100 != 0 {
        words.push(match object_type {
            Some(RESET_PASSWORD) => "reset its password".to_owned(),
            Some(right) => format!("use the extended right {right}"),
            None => "use every extended right (reset its password among them)".to_owned(),
        });
    }
    if words.is_empty() {
        words.push(format!("use the rights 0x{mask:08x}"));
    }
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::Guid;

    fn trustees() -> Trustees {
        Trustees {
            domain: well_known(&[21, 1, 2, 3]),
            forest_root: well_known(&[21, 1, 2, 3]),
        }
    }

    fn names(sid: &Sid) -> String {
        format!("<{sid}>")
    }

    #[test]
    fn the_protected_descriptor_has_no_differences() {
        let trustees = trustees();
        let descriptor = trustees.protected_descriptor();
        assert_eq!(
            trustees.differences(&descriptor, &names),
            Vec::<String>::new()
        );
        assert_eq!(descriptor.control & SE_DACL_PROTECTED, SE_DACL_PROTECTED);
        assert_eq!(descriptor.owner, Some(trustees.domain_admins()));
        // It survives the wire form.
        let bytes = descriptor.to_bytes().expect("encodes");
        let parsed = SecurityDescriptor::from_bytes(&bytes).expect("parses");
        assert_eq!(trustees.differences(&parsed, &names), Vec::<String>::new());
    }

    #[test]
    fn a_look_alike_says_what_differs() {
        let trustees = trustees();
        let helpdesk = well_known(&[21, 1, 2, 3, 1200]);
        let mut descriptor = trustees.protected_descriptor();
        descriptor.control = 0;
        descriptor.owner = Some(helpdesk.clone());
        if let Some(dacl) = &mut descriptor.dacl {
            dacl.aces.push(Ace::Object {
                ace_type: ACE_TYPE_ACCESS_ALLOWED_OBJECT,
                flags: ACE_FLAG_INHERITED,
                mask: 0x100,
                object_type: Guid::parse(RESET_PASSWORD),
                inherited_object_type: None,
                sid: helpdesk.clone(),
            });
            // Read access for anyone is fine.
            dacl.aces.push(Ace::Basic {
                ace_type: ACE_TYPE_ACCESS_ALLOWED,
                flags: 0,
                mask: READ_ONLY,
                sid: helpdesk.clone(),
            });
        }
        let differences = trustees.differences(&descriptor, &names);
        assert_eq!(differences.len(), 3, "{differences:?}");
        assert!(differences[0].contains(&format!("owner is <{helpdesk}>")));
        assert!(differences[1].contains("inherits"));
        assert_eq!(
            differences[2],
            format!("<{helpdesk}> may reset its password (inherited)")
        );
    }

    #[test]
    fn rights_read_as_words() {
        assert_eq!(
            rights_in_words(FULL_CONTROL, None),
            "do anything to it (full control)"
        );
        assert_eq!(
            rights_in_words(0x0004_0000 | 0x20, None),
            "change its permissions, write all its properties"
        );
    }
}
