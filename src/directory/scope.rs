//! Which part of the directory syncs: included OUs (each with its subtree) minus excluded OUs,
//! and what is read of each object there.

use super::dn::Dn;
use super::objects::object_attributes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncScope {
    included: Vec<Dn>,
    excluded: Vec<Dn>,
    /// Attributes read besides [`object_attributes`]: what the sync rules name (README, "Sync
    /// rules").
    also_read: Vec<String>,
}

impl SyncScope {
    pub fn new(included: Vec<Dn>, excluded: Vec<Dn>) -> SyncScope {
        SyncScope {
            included,
            excluded,
            also_read: Vec::new(),
        }
    }

    /// The scope reading `attributes` too (those dirsync reads anyway are left out).
    pub fn reading(mut self, attributes: &[String]) -> SyncScope {
        for attribute in attributes {
            let known = object_attributes().any(|known| known.eq_ignore_ascii_case(attribute))
                || self
                    .also_read
                    .iter()
                    .any(|seen| seen.eq_ignore_ascii_case(attribute));
            if !known {
                self.also_read.push(attribute.clone());
            }
        }
        self
    }

    /// The attributes read besides [`object_attributes`].
    pub fn also_read(&self) -> &[String] {
        &self.also_read
    }

    /// Every attribute an import reads.
    pub fn attributes(&self) -> Vec<&str> {
        let mut attributes: Vec<&str> = object_attributes().collect();
        attributes.extend(self.also_read.iter().map(String::as_str));
        attributes
    }

    /// True when `dn` lies in an included subtree and in no excluded one.
    pub fn contains(&self, dn: &Dn) -> bool {
        self.included.iter().any(|root| dn.is_within(root))
            && !self.excluded.iter().any(|root| dn.is_within(root))
    }

    pub fn included(&self) -> &[Dn] {
        &self.included
    }

    pub fn excluded(&self) -> &[Dn] {
        &self.excluded
    }

    /// The included DNs that are not inside another included DN: the bases a full import
    /// searches, so that nothing is read twice.
    pub fn search_bases(&self) -> Vec<Dn> {
        let mut bases: Vec<Dn> = Vec::new();
        for candidate in &self.included {
            let covered = self
                .included
                .iter()
                .any(|other| other != candidate && candidate.is_within(other));
            if !covered && !bases.contains(candidate) {
                bases.push(candidate.clone());
            }
        }
        bases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("valid DN")
    }

    #[test]
    fn excluded_subtrees_win_over_included_ones() {
        let scope = SyncScope::new(
            vec![dn("OU=Corp,DC=x"), dn("OU=Sales,OU=Corp,DC=x")],
            vec![dn("OU=Staging,OU=Corp,DC=x")],
        );
        assert!(scope.contains(&dn("CN=A,OU=Corp,DC=x")));
        assert!(scope.contains(&dn("cn=b,ou=sales,ou=corp,dc=X")));
        assert!(!scope.contains(&dn("CN=C,OU=Staging,OU=Corp,DC=x")));
        assert!(!scope.contains(&dn("CN=D,OU=Other,DC=x")));
        assert!(!scope.contains(&dn("DC=x")));
        assert_eq!(scope.search_bases(), vec![dn("OU=Corp,DC=x")]);
    }
}
