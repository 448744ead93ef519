//! Several forests into one tenant (README, "Several forests"): the same person in two forests
//! (the same value of the join attribute) is one cloud user. The forest listed first holds the
//! user: its object is the primary, whose anchor and link the cloud user keeps, and each
//! property comes from the first forest that has a value for it. Pure: the cycle gives what the
//! store holds and applies what this decides.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::directory::Dn;
use crate::directory::objects::DirectoryObject;
use crate::guid::Guid;

/// A user the store holds, with its join attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub anchor: Guid,
    pub dn: Dn,
    /// The join attribute's value as AD holds it.
    pub key: String,
    /// Deleted in AD or out of scope, its cloud object still to handle.
    pub gone: bool,
}

/// Who is one person with whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joins {
    /// A live secondary object → the primary whose cloud user it joins.
    pub primary_of: HashMap<Guid, Guid>,
    /// A live primary → its live secondaries, first forest first.
    pub secondaries: HashMap<Guid, Vec<Guid>>,
    /// A gone object of a group → the group's live primary: a gone secondary changes what its
    /// primary exports; a gone primary hands its cloud user on.
    pub successor_of_gone: HashMap<Guid, Guid>,
}

/// Finds the people present in several forests. `forests` are the forests' naming contexts in
/// their order; a live candidate outside all of them is left alone, a gone one (of a forest no
/// longer configured) still hands on to its group. Two live objects of one forest with the same
/// value are different people to the join (each is an object error for the duplicate, as
/// within one forest): such a value joins nobody.
pub fn find_joins(candidates: &[Candidate], forests: &[Dn]) -> Joins {
    let forest_of = |dn: &Dn| forests.iter().position(|forest| dn.is_within(forest));
    let mut groups: BTreeMap<String, Vec<(usize, &Candidate)>> = BTreeMap::new();
    for candidate in candidates {
        let key = candidate.key.trim().to_lowercase();
        if key.is_empty() {
            continue;
        }
        match forest_of(&candidate.dn) {
            Some(forest) => groups.entry(key).or_default().push((forest, candidate)),
            None if candidate.gone => groups.entry(key).or_default().push((usize::MAX, candidate)),
            None => {}
        }
    }
    let mut joins = Joins::default();
    for group in groups.into_values() {
        let mut live: Vec<(usize, &Candidate)> = group
            .iter()
            .copied()
            .filter(|(_, candidate)| !candidate.gone)
            .collect();
        live.sort_by_key(|(forest, candidate)| (*forest, candidate.anchor));
        let ambiguous = live.windows(2).any(|pair| pair[0].0 == pair[1].0);
        let forests_in_group: BTreeSet<usize> = group.iter().map(|(forest, _)| *forest).collect();
        if ambiguous || forests_in_group.len() < 2 || live.is_empty() {
            continue;
        }
        let primary = live[0].1.anchor;
        let secondaries: Vec<Guid> = live[1..].iter().map(|(_, other)| other.anchor).collect();
        for secondary in &secondaries {
            joins.primary_of.insert(*secondary, primary);
        }
        if !secondaries.is_empty() {
            joins.secondaries.insert(primary, secondaries);
        }
        for (_, gone) in group.iter().filter(|(_, candidate)| candidate.gone) {
            joins.successor_of_gone.insert(gone.anchor, primary);
        }
    }
    joins
}

/// One person's object as the cloud gets it: the primary's anchor, DN and values, and each
/// attribute the primary has no value for from the first secondary that has one.
pub fn merge(primary: &DirectoryObject, secondaries: &[DirectoryObject]) -> DirectoryObject {
    let mut merged = primary.clone();
    for secondary in secondaries {
        for (name, values) in &secondary.attributes {
            if values.is_empty() || FROM_THE_PRIMARY_ONLY.contains(&name.as_str()) {
                continue;
            }
            merged
                .attributes
                .entry(name.clone())
                .or_insert_with(|| values.clone());
        }
    }
    merged
}

/// What describes the account itself rather than the person: only the primary forest's account
/// says it (a secondary's would enable or name an account the primary forest does not have).
const FROM_THE_PRIMARY_ONLY: &[&str] = &[
    "userAccountControl",
    "sAMAccountName",
    "userPrincipalName",
    "objectSid",
    "pwdLastSet",
    "accountExpires",
    "manager",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ObjectKind;

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("dn")
    }

    fn candidate(byte: u8, dn_text: &str, key: &str, gone: bool) -> Candidate {
        Candidate {
            anchor: Guid([byte; 16]),
            dn: dn(dn_text),
            key: key.to_owned(),
            gone,
        }
    }

    fn forests() -> Vec<Dn> {
        vec![dn("DC=corp,DC=test"), dn("DC=fabrikam,DC=test")]
    }

    #[test]
    fn the_first_forest_s_object_is_the_primary() {
        let found = find_joins(
            &[
                candidate(2, "CN=Ann,DC=fabrikam,DC=test", "Ann@Contoso.test", false),
                candidate(1, "CN=Ann,DC=corp,DC=test", "ann@contoso.test", false),
                candidate(3, "CN=Bob,DC=corp,DC=test", "bob@contoso.test", false),
            ],
            &forests(),
        );
        assert_eq!(found.primary_of, [(Guid([2; 16]), Guid([1; 16]))].into());
        assert_eq!(
            found.secondaries,
            [(Guid([1; 16]), vec![Guid([2; 16])])].into()
        );
    }

    #[test]
    fn two_objects_of_one_forest_with_one_value_join_nobody() {
        let found = find_joins(
            &[
                candidate(1, "CN=Ann,DC=corp,DC=test", "ann@contoso.test", false),
                candidate(2, "CN=Ann 2,DC=corp,DC=test", "ann@contoso.test", false),
                candidate(3, "CN=Ann,DC=fabrikam,DC=test", "ann@contoso.test", false),
            ],
            &forests(),
        );
        assert_eq!(found, Joins::default());
    }

    #[test]
    fn a_gone_primary_hands_its_user_to_the_other_forest() {
        let found = find_joins(
            &[
                candidate(1, "CN=Ann,DC=corp,DC=test", "ann@contoso.test", true),
                candidate(2, "CN=Ann,DC=fabrikam,DC=test", "ann@contoso.test", false),
            ],
            &forests(),
        );
        assert!(found.primary_of.is_empty());
        assert_eq!(
            found.successor_of_gone,
            [(Guid([1; 16]), Guid([2; 16]))].into()
        );
    }

    #[test]
    fn a_gone_object_of_a_removed_forest_still_names_its_primary() {
        let found = find_joins(
            &[
                candidate(1, "CN=Ann,DC=corp,DC=test", "ann@contoso.test", false),
                candidate(2, "CN=Ann,DC=gone,DC=test", "ann@contoso.test", true),
            ],
            &forests()[..1],
        );
        assert_eq!(
            found.successor_of_gone,
            [(Guid([2; 16]), Guid([1; 16]))].into()
        );
    }

    #[test]
    fn the_primary_s_values_win_and_the_others_fill_gaps() {
        let object = |byte: u8, pairs: &[(&str, &str)]| DirectoryObject {
            anchor: Guid([byte; 16]),
            dn: dn("CN=Ann,DC=corp,DC=test"),
            kind: ObjectKind::User,
            attributes: pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), vec![(*value).to_owned()]))
                .collect(),
            object_sid: None,
            problems: Vec::new(),
        };
        let primary = object(
            1,
            &[("department", "Executive"), ("userAccountControl", "512")],
        );
        let secondary = object(
            2,
            &[
                ("department", "Research"),
                ("facsimileTelephoneNumber", "+44 20 7000 0001"),
                ("userAccountControl", "514"),
                ("sAMAccountName", "ann.other"),
            ],
        );
        let merged = merge(&primary, &[secondary]);
        assert_eq!(merged.anchor, Guid([1; 16]));
        assert_eq!(merged.values("department"), ["Executive"]);
        assert_eq!(
            merged.values("facsimileTelephoneNumber"),
            ["+44 20 7000 0001"]
        );
        assert_eq!(merged.values("userAccountControl"), ["512"]);
        assert!(merged.values("sAMAccountName").is_empty());
    }
}
