//! Creates whose answer never came back (lost on the wire, or the process died before the link
//! was kept): finding the object such a create may have made, before anything is created again
//! or when the AD object has gone meanwhile (README, "Joining").
//!
//! Only consistent reads are used: a user by userPrincipalName, a group by mailNickname (Graph's
//! advanced queries, which the immutableId needs, lag behind writes). What they find counts only
//! with proof that dirsync made it: the user carries the object's immutableId; the group has the
//! sync app as its owner and is not a Microsoft 365 group.

use crate::cloud::{CloudObject, CloudQuery, GraphClient, GraphError, ObjectKind};
use crate::directory::objects::immutable_id;
use crate::store::sync_state::CreateIntent;

use super::cloud_properties::{GROUP_SELECT, USER_SELECT};

/// The cloud object the create of `intent` made, if it made one. `sync_app` is the sync app's
/// service principal id (without it, no group can be proven dirsync's).
pub async fn find_own_create(
    graph: &GraphClient,
    intent: &CreateIntent,
    sync_app: Option<&str>,
) -> Result<Option<CloudObject>, GraphError> {
    match intent.kind {
        ObjectKind::User => {
            let wanted = immutable_id(intent.anchor);
            Ok(graph
                .user_by_upn(&intent.lookup, USER_SELECT)
                .await?
                .filter(|user| user.immutable_id() == Some(wanted.as_str())))
        }
        ObjectKind::Group => {
            let Some(sync_app) = sync_app else {
                return Ok(None);
            };
            let lookup = CloudQuery::Equals {
                property: "mailNickname",
                value: intent.lookup.clone(),
            };
            let candidates = graph.find(ObjectKind::Group, &lookup, GROUP_SELECT).await?;
            for group in candidates {
                if !group.is_microsoft_365_group() && owned_by(graph, &group, sync_app).await? {
                    return Ok(Some(group));
                }
            }
            Ok(None)
        }
    }
}

/// Whether the sync app is among the group's owners.
pub async fn owned_by(
    graph: &GraphClient,
    group: &CloudObject,
    sync_app: &str,
) -> Result<bool, GraphError> {
    Ok(graph
        .group_owner_ids(&group.id)
        .await?
        .iter()
        .any(|owner| owner.eq_ignore_ascii_case(sync_app)))
}
