//! The cloud import step: what the tenant holds that unlinked objects could join, and the
//! tenant's verified domains.

use std::collections::HashMap;

use super::*;

impl Cycle<'_> {
    /// What the tenant holds, for joining objects that have no link yet. A few such objects are
    /// looked up one by one (by immutableId, SMTP address, UPN or group nickname), so a run with
    /// a handful of new objects never lists a large tenant; many are read with one listing.
    ///
    /// Returns also the groups found whose owners include the sync app, among those that an
    /// object with a create intent could be (see `engine::lost_creates`).
    pub(super) async fn cloud_import(
        &mut self,
        objects: &[DirectoryObject],
        links: &HashMap<Guid, crate::store::sync_state::Link>,
        intents: &HashMap<Guid, crate::store::sync_state::CreateIntent>,
    ) -> Result<(Vec<CloudObject>, HashSet<String>, StepCounters), CycleError> {
        let unlinked: Vec<&DirectoryObject> = objects
            .iter()
            .filter(|object| !links.contains_key(&object.anchor) && !object.is_system_object())
            .collect();
        let graph = &self.connections.graph;
        let cloud = if unlinked.len() > LOOKUP_LIMIT {
            let mut cloud = graph.list(ObjectKind::User, USER_SELECT).await?;
            cloud.extend(graph.list(ObjectKind::Group, GROUP_SELECT).await?);
            cloud
        } else {
            let soft_match_upn = self.config.options.soft_match_upn;
            let lookups: Vec<(ObjectKind, CloudQuery)> = unlinked
                .iter()
                .flat_map(|object| lookups_for(object, soft_match_upn))
                .chain(
                    // What a create that was never confirmed made, found by a consistent read.
                    unlinked
                        .iter()
                        .filter_map(|object| intents.get(&object.anchor))
                        .filter(|intent| intent.kind == ObjectKind::User)
                        .map(|intent| {
                            let lookup = CloudQuery::Equals {
                                property: "userPrincipalName",
                                value: intent.lookup.clone(),
                            };
                            (ObjectKind::User, lookup)
                        }),
                )
                .collect();
            // The futures are collected first: a closure left inside the stream would keep the
            // cycle's future from being `Send` (rustc cannot prove it for borrowed arguments).
            let finds: Vec<_> = lookups
                .iter()
                .map(|(kind, lookup)| {
                    let select = match kind {
                        ObjectKind::User => USER_SELECT,
                        ObjectKind::Group => GROUP_SELECT,
                    };
                    graph.find(*kind, lookup, select)
                })
                .collect();
            let found: Vec<Result<Vec<CloudObject>, GraphError>> = futures::stream::iter(finds)
                .buffer_unordered(LOOKUPS_IN_FLIGHT)
                .collect()
                .await;
            let mut by_id: HashMap<String, CloudObject> = HashMap::new();
            for result in found {
                for object in result? {
                    by_id.insert(object.id.clone(), object);
                }
            }
            by_id.into_values().collect()
        };
        let linked: HashSet<&str> = links.values().map(|link| link.cloud_id.as_str()).collect();
        let owned_groups = self.owned_groups(&cloud, &linked, intents).await?;
        let mut counters = StepCounters::default();
        for object in &cloud {
            if linked.contains(object.id.as_str()) {
                counters.no_change += 1;
            } else {
                counters.adds += 1;
            }
        }
        self.recorder.progress(Progress::Objects {
            step: StepKind::CloudImport,
            done: cloud.len() as u64,
            total: Some(cloud.len() as u64),
        });
        Ok((cloud, owned_groups, counters))
    }

    /// Of the unlinked groups found, those that have the mailNickname of a create that was
    /// never confirmed and the sync app as their owner.
    async fn owned_groups(
        &self,
        cloud: &[CloudObject],
        linked: &HashSet<&str>,
        intents: &HashMap<Guid, crate::store::sync_state::CreateIntent>,
    ) -> Result<HashSet<String>, CycleError> {
        let Some(sync_app) = self.config.cloud.service_principal_id.as_deref() else {
            return Ok(HashSet::new());
        };
        let nicknames: HashSet<String> = intents
            .values()
            .filter(|intent| intent.kind == ObjectKind::Group)
            .map(|intent| intent.lookup.to_lowercase())
            .collect();
        let mut owned = HashSet::new();
        for group in cloud {
            let candidate = group.kind == ObjectKind::Group
                && !linked.contains(group.id.as_str())
                && group
                    .string("mailNickname")
                    .is_some_and(|nickname| nicknames.contains(&nickname.to_lowercase()));
            if candidate
                && crate::engine::lost_creates::owned_by(&self.connections.graph, group, sync_app)
                    .await?
            {
                owned.insert(group.id.clone());
            }
        }
        Ok(owned)
    }

    pub(super) async fn tenant_domains(&self) -> Result<TenantDomains, CycleError> {
        read_tenant_domains(&self.connections.graph).await
    }
}

/// The tenant's domains, as the sync app reads them.
pub async fn read_tenant_domains(
    graph: &crate::cloud::GraphClient,
) -> Result<TenantDomains, CycleError> {
    let domains = crate::cloud::setup::verified_domains(graph).await?;
    Ok(TenantDomains {
        initial: domains
            .iter()
            .find(|domain| domain.is_initial)
            .map(|domain| domain.name.clone())
            .unwrap_or_default(),
        verified: domains.into_iter().map(|domain| domain.name).collect(),
    })
}

/// The lookups that find any cloud object the plan could join `object` to.
pub(super) fn lookups_for(
    object: &DirectoryObject,
    soft_match_upn: bool,
) -> Vec<(ObjectKind, CloudQuery)> {
    let equals = |property: &'static str, value: &str| CloudQuery::Equals {
        property,
        value: value.to_owned(),
    };
    match object.kind {
        ObjectKind::Group => mail_nickname(object)
            .map(|nickname| vec![(ObjectKind::Group, equals("mailNickname", &nickname))])
            .unwrap_or_default(),
        ObjectKind::User => {
            let mut lookups = vec![(
                ObjectKind::User,
                equals("onPremisesImmutableId", &object.immutable_id()),
            )];
            if let Some(smtp) = primary_smtp(object).or_else(|| object.first("mail")) {
                lookups.push((ObjectKind::User, CloudQuery::SmtpAddress(smtp.to_owned())));
                lookups.push((ObjectKind::User, equals("mail", smtp)));
            }
            if soft_match_upn && let Some(upn) = object.first("userPrincipalName") {
                lookups.push((ObjectKind::User, equals("userPrincipalName", upn)));
            }
            lookups
        }
    }
}
