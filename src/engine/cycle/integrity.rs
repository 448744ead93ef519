//! The cycle's integrity checks against the cloud as it is (README, "Joining", "Drift"): what a
//! lost create made for an object that has gone since, the directory roles of the cloud users a
//! run would take over, and drift.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::store::sync_state::{CreateIntent, Link};

use crate::store::sync_state::DRIFT_CHECK_CURSOR as DRIFT_CURSOR;
/// Drift is checked on every full cycle and at least this often.
const DRIFT_CHECK_EVERY_MS: i64 = 24 * 60 * 60 * 1000;

impl Cycle<'_> {
    /// Gone objects without a link whose create was sent and never confirmed: what that create
    /// made (looked up as `engine::lost_creates` says) is linked here so that the plan deletes
    /// it. The intents that made nothing come back, to settle when the run exports.
    pub(super) async fn find_lost_creates_of_gone(
        &self,
        gone: &[Guid],
        intents: &HashMap<Guid, CreateIntent>,
        links: &mut HashMap<Guid, Link>,
    ) -> Result<Vec<ExportUpdate>, CycleError> {
        let sync_app = self.config.cloud.service_principal_id.as_deref();
        let mut settled = Vec::new();
        for anchor in gone {
            let Some(intent) = intents.get(anchor).filter(|_| !links.contains_key(anchor)) else {
                continue;
            };
            let graph = &self.connections.graph;
            match crate::engine::lost_creates::find_own_create(graph, intent, sync_app).await? {
                Some(cloud) => {
                    tracing::info!(dn = %intent.dn, cloud_id = %cloud.id, "found the object a lost create made; it is deleted, as its AD object is gone");
                    links.insert(
                        *anchor,
                        Link {
                            anchor: *anchor,
                            kind: intent.kind,
                            dn: intent.dn.clone(),
                            cloud_id: cloud.id,
                            exported: cloud.properties,
                            members: Default::default(),
                            manager: None,
                            disabled_at: None,
                        },
                    );
                }
                None => settled.push(ExportUpdate::IntentSettled(*anchor)),
            }
        }
        Ok(settled)
    }

    /// The directory roles each of these cloud users holds. A user whose roles cannot be read
    /// (the sync app lacks RoleManagement.Read.Directory) is left out: the plan then refuses to
    /// join it.
    pub(super) async fn directory_roles(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, Vec<String>>, CycleError> {
        let graph = &self.connections.graph;
        let reads: Vec<_> = users
            .iter()
            .map(|user| async move { (user, graph.directory_roles_of(user).await) })
            .collect();
        let answers: Vec<_> = futures::stream::iter(reads)
            .buffer_unordered(LOOKUPS_IN_FLIGHT)
            .collect()
            .await;
        let mut roles = HashMap::new();
        for (user, answer) in answers {
            match answer {
                Ok(held) => {
                    roles.insert(user.clone(), held);
                }
                Err(GraphError::Forbidden { .. }) => {
                    tracing::warn!(cloud_id = %user, "cannot read directory roles (RoleManagement.Read.Directory); the join is refused");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(roles)
    }

    /// Whether a day has passed since the last drift check (full cycles always check).
    pub(super) fn drift_check_due(&self) -> Result<bool, CycleError> {
        let last = self
            .store
            .cursor(DRIFT_CURSOR)?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(i64::from_be_bytes);
        Ok(last.is_none_or(|last| now_ms() - last >= DRIFT_CHECK_EVERY_MS))
    }

    /// Compares what the cloud holds of every linked object with what dirsync last wrote
    /// (`engine::drift`). Each drifted property is a warning of the run; with `drift = "restore"`
    /// the link is told what the cloud holds, so that the plan writes AD's value back (the
    /// object's update shows the cloud's value as old and AD's as new).
    pub(super) async fn check_drift(
        &mut self,
        links: &mut HashMap<Guid, Link>,
        objects: &mut Vec<DirectoryObject>,
        gone: &[Guid],
    ) -> Result<(), CycleError> {
        // A preview looks too, but leaves the day's check to a real run.
        if !self.request.preview {
            self.store
                .set_cursor(DRIFT_CURSOR, &now_ms().to_be_bytes(), now_ms())?;
        }
        if links.is_empty() {
            return Ok(());
        }
        let graph = &self.connections.graph;
        let mut cloud = graph.list(ObjectKind::User, USER_SELECT).await?;
        cloud.extend(graph.list(ObjectKind::Group, GROUP_SELECT).await?);
        let by_id: HashMap<&str, &CloudObject> = cloud
            .iter()
            .map(|object| (object.id.as_str(), object))
            .collect();
        let gone: HashSet<&Guid> = gone.iter().collect();
        let read: Vec<&str> = USER_SELECT
            .iter()
            .chain(GROUP_SELECT)
            .copied()
            .filter(|property| *property != "id")
            .collect();
        let drift: Vec<crate::engine::drift::Drift> =
            crate::engine::drift::find_drift(links, &by_id, &read)
                .into_iter()
                .filter(|drift| !gone.contains(&drift.anchor))
                .collect();
        let restore = self.config.options.drift == crate::config::DriftAction::Restore;
        let mut warnings = Vec::new();
        // The objects the plan sees: a restored one that is not pending is added to them.
        let mut planned: HashSet<Guid> = objects.iter().map(|object| object.anchor).collect();
        for item in &drift {
            let Some(link) = links.get_mut(&item.anchor) else {
                continue;
            };
            let shown = |value: &serde_json::Value| match value {
                serde_json::Value::String(text) => format!("'{text}'"),
                serde_json::Value::Null => "nothing".to_owned(),
                other => other.to_string(),
            };
            warnings.push(crate::store::runs::WarningRecord {
                dn: link.dn.to_string(),
                anchor: item.anchor.to_string(),
                attribute: item.property.clone(),
                value: item.found.to_string(),
                message: format!(
                    "{} changed in the cloud; dirsync wrote {}, the cloud has {}; {}",
                    crate::engine::drift::WARNING_PREFIX,
                    shown(&item.wrote),
                    shown(&item.found),
                    if restore {
                        "AD's value is written back (options.drift = \"restore\")"
                    } else {
                        "left as it is (options.drift = \"report\"); change it in AD or in the cloud"
                    }
                ),
            });
            if restore {
                link.exported
                    .insert(item.property.clone(), item.found.clone());
                self.plan_again(item.anchor, objects, &mut planned)?;
            }
        }
        let member_drift = self.check_member_drift(links, &gone).await?;
        for item in &member_drift {
            let Some(link) = links.get(&item.anchor) else {
                continue;
            };
            let dn_of = |anchor: &Guid| {
                links
                    .get(anchor)
                    .map_or_else(|| anchor.to_string(), |link| link.dn.to_string())
            };
            let mut what = Vec::new();
            if !item.missing.is_empty() {
                let removed: Vec<String> = item.missing.iter().map(dn_of).collect();
                what.push(format!("removed in the cloud: {}", removed.join("; ")));
            }
            if !item.added.is_empty() {
                let added: Vec<String> = item.added.iter().map(dn_of).collect();
                what.push(format!("added in the cloud: {}", added.join("; ")));
            }
            let fix = if restore && (!item.missing.is_empty() || !item.added.is_empty()) {
                "AD's members are written back (options.drift = \"restore\")"
            } else if restore {
                "nothing to restore"
            } else {
                "left as they are (options.drift = \"report\")"
            };
            let unmanaged = if item.unmanaged.is_empty() {
                String::new()
            } else {
                format!(
                    "; cloud objects dirsync does not manage were added ({}) and are left in the group",
                    item.unmanaged.join(", ")
                )
            };
            warnings.push(crate::store::runs::WarningRecord {
                dn: link.dn.to_string(),
                anchor: item.anchor.to_string(),
                attribute: "members".to_owned(),
                value: String::new(),
                message: format!(
                    "{} members changed in the cloud; {}; {fix}{unmanaged}",
                    crate::engine::drift::WARNING_PREFIX,
                    if what.is_empty() {
                        "dirsync's members are all there".to_owned()
                    } else {
                        what.join("; ")
                    },
                ),
            });
            if restore && (!item.missing.is_empty() || !item.added.is_empty()) {
                if let Some(link) = links.get_mut(&item.anchor) {
                    link.members = item.found(&link.members);
                }
                self.plan_again(item.anchor, objects, &mut planned)?;
            }
        }
        if !drift.is_empty() || !member_drift.is_empty() {
            tracing::warn!(
                properties = drift.len(),
                groups = member_drift.len(),
                "drift: changed in the cloud"
            );
        }
        self.recorder.report.drifted = drift.len() + member_drift.len();
        self.store
            .record_warnings(self.recorder.run_id(), &warnings)?;
        Ok(())
    }

    /// Puts `anchor`'s directory object before the plan (once), so that its restored link is
    /// compared with AD.
    fn plan_again(
        &self,
        anchor: Guid,
        objects: &mut Vec<DirectoryObject>,
        planned: &mut HashSet<Guid>,
    ) -> Result<(), CycleError> {
        if planned.insert(anchor)
            && let Some(object) = self.store.directory_object(anchor)?
        {
            objects.push(object);
        }
        Ok(())
    }

    /// The member drift of every linked group still in scope (one members read each).
    async fn check_member_drift(
        &self,
        links: &HashMap<Guid, Link>,
        gone: &HashSet<&Guid>,
    ) -> Result<Vec<crate::engine::drift::MemberDrift>, CycleError> {
        let graph = &self.connections.graph;
        let anchor_of: HashMap<&str, Guid> = links
            .values()
            .map(|link| (link.cloud_id.as_str(), link.anchor))
            .collect();
        let groups: Vec<&Link> = links
            .values()
            .filter(|link| link.kind == ObjectKind::Group && !gone.contains(&link.anchor))
            .collect();
        let reads: Vec<_> = groups
            .iter()
            .map(|link| async move { (*link, graph.members(&link.cloud_id).await) })
            .collect();
        let answers: Vec<_> = futures::stream::iter(reads)
            .buffer_unordered(LOOKUPS_IN_FLIGHT)
            .collect()
            .await;
        let mut drift = Vec::new();
        for (link, members) in answers {
            match members {
                Ok(members) => drift.extend(crate::engine::drift::find_member_drift(
                    link, &members, &anchor_of,
                )),
                // Deleted in the cloud behind dirsync's back: the run's update finds that out.
                Err(GraphError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        drift.sort_by_key(|item| item.anchor);
        Ok(drift)
    }
}
