//! The write-back primitive: change attributes of one object as the service account. Hybrid
//! write-back (cloud-mastered Exchange attributes) is built on it.

use std::collections::HashSet;

use ldap3::Mod;

use super::connection::DirectoryConnection;
use super::dn::Dn;
use super::error::DirectoryError;

/// One change to one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeEdit {
    /// Adds values, keeping the ones there (an `X500:` proxy address is added, never replacing).
    AddValues {
        attribute: String,
        values: Vec<String>,
    },
    RemoveValues {
        attribute: String,
        values: Vec<String>,
    },
    /// Sets the attribute to exactly these values; no values clears it.
    Replace {
        attribute: String,
        values: Vec<String>,
    },
}

impl AttributeEdit {
    fn attribute(&self) -> &str {
        match self {
            AttributeEdit::AddValues { attribute, .. }
            | AttributeEdit::RemoveValues { attribute, .. }
            | AttributeEdit::Replace { attribute, .. } => attribute,
        }
    }

    fn to_mod(&self) -> Mod<Vec<u8>> {
        let set = |values: &[String]| -> HashSet<Vec<u8>> {
            values
                .iter()
                .map(|value| value.as_bytes().to_vec())
                .collect()
        };
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

/// Applies `edits` to `dn` in one modify operation: all of them or none.
pub async fn modify_attributes(
    connection: &DirectoryConnection,
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
            dn.as_str(),
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
