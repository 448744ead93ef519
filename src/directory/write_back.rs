//! The write-back primitives: read and change attributes of one object as the service account.
//! Hybrid write-back (cloud-mastered Exchange attributes, `engine::write_back`) is built on them.

use std::collections::{HashMap, HashSet};

use ldap3::{Mod, Scope};

use super::connection::DirectoryConnection;
use super::dn::Dn;
use super::error::DirectoryError;
use super::forest;
use crate::guid::Guid;

/// One change to one attribute. Values are bytes: some write-back attributes are binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeEdit {
    /// Adds values, keeping the ones there (an `X500:` proxy address is added, never replacing).
    AddValues {
        attribute: String,
        values: Vec<Vec<u8>>,
    },
    RemoveValues {
        attribute: String,
        values: Vec<Vec<u8>>,
    },
    /// Sets the attribute to exactly these values; no values clears it.
    Replace {
        attribute: String,
        values: Vec<Vec<u8>>,
    },
}

impl AttributeEdit {
    pub fn attribute(&self) -> &str {
        match self {
            AttributeEdit::AddValues { attribute, .. }
            | AttributeEdit::RemoveValues { attribute, .. }
            | AttributeEdit::Replace { attribute, .. } => attribute,
        }
    }

    fn to_mod(&self) -> Mod<Vec<u8>> {
        let set = |values: &[Vec<u8>]| -> HashSet<Vec<u8>> { values.iter().cloned().collect() };
        match self {
            AttributeEdit::AddValues { attribute, values } => {
                Mod::Add(attribute.as_bytes().to_vec(), set(values))
            }
            AttributeEdit::RemoveValues { attribute, values } => {
                Mod::Delete(attribute.as_bytes().to_vec(), set(values))
            }
            AttributeEdit::Replace { attribute, values } => {
                Mod::Replace(attribute.as_bytes().to_vec(), set(values))
            }
        }
    }
}

/// The object with this objectGUID, as an extended DN (MS-ADTS 3.1.1.3.1.2.4): a write aimed at
/// it reaches that object wherever it is now, never whatever holds a stored DN since a rename.
pub fn guid_dn(anchor: Guid) -> String {
    format!("<GUID={anchor}>")
}

/// Applies `edits` to the object `anchor` in one modify operation: all of them or none. `dn`
/// names it in messages.
pub async fn modify_attributes(
    connection: &DirectoryConnection,
    anchor: Guid,
    dn: &Dn,
    edits: &[AttributeEdit],
) -> Result<(), DirectoryError> {
    if edits.is_empty() {
        return Ok(());
    }
    let modifications = edits.iter().map(AttributeEdit::to_mod).collect();
    match connection
        .modify_entry(
            "write back attributes",
            &guid_dn(anchor),
            modifications,
            Vec::new(),
        )
        .await
    {
        Err(DirectoryError::Refused {
            rc: 50,
            server_message,
            ..
        }) => Err(DirectoryError::WriteDenied {
            dn: dn.to_string(),
            attributes: edits
                .iter()
                .map(AttributeEdit::attribute)
                .collect::<Vec<_>>()
                .join(", "),
            server_message,
        }),
        other => other,
    }
}

/// Whether `error` is the directory refusing a value (its size, syntax, or a value already
/// there), as opposed to refusing the writer or failing to answer.
pub fn is_value_refused(error: &DirectoryError) -> bool {
    // constraintViolation, invalidAttributeSyntax, attributeOrValueExists, noSuchAttribute,
    // undefinedAttributeType, objectClassViolation.
    matches!(
        error,
        DirectoryError::Refused {
            rc: 16 | 17 | 19 | 20 | 21 | 65,
            ..
        }
    )
}

/// The current values of `attributes` on the object `anchor`, keyed by the lowercase attribute
/// name (absent when the object has none). Binary values come back as they are.
pub async fn read_attributes(
    connection: &DirectoryConnection,
    anchor: Guid,
    attributes: &[&str],
) -> Result<HashMap<String, Vec<Vec<u8>>>, DirectoryError> {
    let entries = connection
        .search(
            "read the attributes write-back changes",
            &guid_dn(anchor),
            Scope::Base,
            "(objectClass=*)",
            attributes,
        )
        .await?;
    let mut values = HashMap::new();
    if let Some(entry) = entries.first() {
        for attribute in attributes {
            let found = forest::binary_values(entry, attribute);
            if !found.is_empty() {
                values.insert(attribute.to_ascii_lowercase(), found);
            }
        }
    }
    Ok(values)
}
