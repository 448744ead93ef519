//! Who holds a value the cloud refused as taken (README, "The dashboard": the error workbench).
//! Graph's conflict answer names the property, never the object, so the holder is looked up
//! live by the value, as an administrator would in the Entra admin center.

use std::collections::HashMap;

use serde::Serialize;

use crate::cloud::{CloudObject, CloudQuery, GraphClient, GraphError, ObjectKind};
use crate::guid::Guid;
use crate::store::sync_state::Link;

/// What a holder is read with: enough to tell whose it is and since when.
const HOLDER_SELECT: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "createdDateTime",
    "onPremisesImmutableId",
];

/// A cloud object holding the value, as Graph answers now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    pub cloud_id: String,
    pub kind: ObjectKind,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub created: Option<String>,
    pub immutable_id: Option<String>,
    /// The AD object dirsync synced it from, when dirsync manages it.
    pub synced_from: Option<String>,
}

impl Holder {
    /// What to do about it, in plain words.
    pub fn fix(&self, property: &str) -> String {
        match &self.synced_from {
            Some(dn) => format!(
                "dirsync synced this object from {dn}: two AD objects in scope hold the same {property}; change it on one of them in AD"
            ),
            None if self.immutable_id.is_some() => format!(
                "another directory synced this object (its onPremisesImmutableId is not one of dirsync's): remove the {property} there, or give the AD object another value"
            ),
            None => format!(
                "a cloud-only object dirsync did not make: remove the {property} from it in the Entra admin center (or delete it if it is a leftover), or give the AD object another value"
            ),
        }
    }
}

/// The cloud objects holding `value` in `property`, other than the one linked to `anchor`.
/// An empty list when the property is not one Graph can be searched by.
pub async fn holders(
    graph: &GraphClient,
    links: &HashMap<Guid, Link>,
    anchor: Option<Guid>,
    property: &str,
    value: &str,
) -> Result<Vec<Holder>, GraphError> {
    let own_cloud_id = anchor
        .and_then(|anchor| links.get(&anchor))
        .map(|link| link.cloud_id.as_str());
    let synced_from: HashMap<&str, &Link> = links
        .values()
        .map(|link| (link.cloud_id.as_str(), link))
        .collect();
    let mut found: Vec<CloudObject> = Vec::new();
    for (kind, lookup) in lookups(property, value) {
        for object in graph.find(kind, &lookup, HOLDER_SELECT).await? {
            if Some(object.id.as_str()) != own_cloud_id
                && !found.iter().any(|known| known.id == object.id)
            {
                found.push(object);
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|object| {
            let text = |name: &str| {
                object
                    .properties
                    .get(name)
                    .and_then(|value| value.as_str())
                    .map(str::to_owned)
            };
            Holder {
                display_name: text("displayName"),
                user_principal_name: text("userPrincipalName"),
                created: text("createdDateTime"),
                immutable_id: text("onPremisesImmutableId"),
                synced_from: synced_from
                    .get(object.id.as_str())
                    .map(|link| link.dn.to_string()),
                kind: object.kind,
                cloud_id: object.id,
            }
        })
        .collect())
}

/// The searches that find a holder of `value` in `property`. A conflict on proxyAddresses
/// names them all as sent (`SMTP:a@x, smtp:b@x`); Graph's uniqueness covers mail and every
/// SMTP address together, so addresses are looked up among both.
fn lookups(property: &str, value: &str) -> Vec<(ObjectKind, CloudQuery)> {
    let both = |query: CloudQuery| {
        vec![
            (ObjectKind::User, query.clone()),
            (ObjectKind::Group, query),
        ]
    };
    match property {
        "userPrincipalName" => vec![(
            ObjectKind::User,
            CloudQuery::Equals {
                property: "userPrincipalName",
                value: value.to_owned(),
            },
        )],
        "mailNickname" => both(CloudQuery::Equals {
            property: "mailNickname",
            value: value.to_owned(),
        }),
        "mail" | "proxyAddresses" => value
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(|address| {
                let address = match address.split_once(':') {
                    Some((prefix, rest)) if prefix.eq_ignore_ascii_case("smtp") => rest,
                    _ => address,
                };
                address.to_owned()
            })
            .flat_map(|address| {
                let mut searches = both(CloudQuery::Equals {
                    property: "mail",
                    value: address.clone(),
                });
                searches.extend(both(CloudQuery::SmtpAddress(address)));
                searches
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_looked_up_without_their_prefix_in_mail_and_proxy_addresses() {
        let searches = lookups("proxyAddresses", "SMTP:a@contoso.test, smtp:b@contoso.test");
        let filters: Vec<String> = searches
            .iter()
            .map(|(kind, query)| format!("{kind:?} {query:?}"))
            .collect();
        assert_eq!(searches.len(), 8, "{filters:#?}");
        assert!(
            filters
                .iter()
                .any(|f| f.contains("SmtpAddress(\"b@contoso.test\")"))
        );
        assert!(
            !filters
                .iter()
                .any(|f| f.contains("smtp:") || f.contains("SMTP:"))
        );
    }

    #[test]
    fn a_property_graph_cannot_search_by_has_no_lookup() {
        assert!(lookups("onPremisesSamAccountName", "x").is_empty());
        assert_eq!(lookups("userPrincipalName", "a@contoso.test").len(), 1);
    }
}
