//! The source anchor written back (README, "The source anchor"): once a user is in the cloud,
//! its objectGUID goes into its `mS-DS-ConsistencyGuid`, as Entra Connect does, so that a
//! migration tool copying that attribute to another forest keeps the user's cloud object.

use ldap3::Mod;

use crate::directory::objects::CONSISTENCY_GUID;

use super::*;

impl Cycle<'_> {
    /// Writes `mS-DS-ConsistencyGuid` on each user of this run that is linked now and has
    /// none. An object whose attribute was set meanwhile keeps its value (the write only adds);
    /// one the service account may not write is an error of the export step, and the user
    /// stays anchored by its objectGUID until the write goes through.
    pub(super) async fn write_source_anchors(
        &mut self,
        objects: &[DirectoryObject],
    ) -> Result<(), CycleError> {
        let without: Vec<&DirectoryObject> = objects
            .iter()
            .filter(|object| {
                object.kind == ObjectKind::User && object.first(CONSISTENCY_GUID).is_none()
            })
            .collect();
        if without.is_empty() {
            return Ok(());
        }
        let links = self.store.links()?;
        let forests: Vec<(usize, Dn)> = self
            .config
            .forests()
            .iter()
            .map(|forest| (forest.position, forest.naming_context()))
            .collect();
        let mut errors = Vec::new();
        for object in without {
            if !links.contains_key(&object.anchor) {
                continue;
            }
            let Some((position, _)) = forests
                .iter()
                .find(|(_, naming_context)| object.dn.is_within(naming_context))
            else {
                continue;
            };
            let connection = self.connections.forest(*position).connection().await?;
            let written = connection
                .modify_entry(
                    "write the source anchor (mS-DS-ConsistencyGuid)",
                    object.dn.as_str(),
                    vec![Mod::Add(
                        CONSISTENCY_GUID.as_bytes().to_vec(),
                        [object.anchor.to_wire().to_vec()].into(),
                    )],
                    Vec::new(),
                )
                .await;
            match written {
                Ok(()) => {}
                // Attribute or value exists: set meanwhile (by a migration tool, say).
                Err(DirectoryError::Refused { rc: 20, .. }) => {}
                Err(error) if error.is_transient() => return Err(error.into()),
                Err(error) => errors.push(ErrorRecord {
                    step: StepKind::CloudExport,
                    dn: object.dn.to_string(),
                    anchor: Some(object.anchor.to_string()),
                    object_type: Some(ObjectKind::User),
                    error_type: "source-anchor".to_owned(),
                    code: Some(CONSISTENCY_GUID.to_owned()),
                    server_message: error.to_string(),
                    hint: "run setup again: it gives the service account write access to mS-DS-ConsistencyGuid of users in the included OUs".to_owned(),
                    first_occurred_at: now_ms(),
                    retry_count: 0,
                }),
            }
        }
        if !errors.is_empty() {
            self.recorder.report.export.errors += errors.len();
            self.store.record_errors(self.recorder.run_id(), &errors)?;
        }
        Ok(())
    }
}
