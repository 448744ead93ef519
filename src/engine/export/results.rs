//! What Graph's answers do: each write's result becomes the link's new exported values, a change
//! record or an object error, kept with the chunk it came in.

use super::*;
use crate::engine::change_records;
use crate::store::runs::AttributeValues;

impl Exporter<'_, '_> {
    pub(super) async fn object_result(
        &mut self,
        operation: &Operation,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        match operation {
            Operation::Create { .. } => self.create_result(operation, result, outcome).await,
            Operation::Join {
                anchor,
                kind,
                dn,
                cloud_id,
                how,
                changes,
            } => self.written(
                (*anchor, *kind, dn, cloud_id),
                changes,
                Some(*how),
                result,
                outcome,
            ),
            Operation::Update {
                anchor,
                kind,
                dn,
                cloud_id,
                changes,
            } => self.written(
                (*anchor, *kind, dn, cloud_id),
                changes,
                None,
                result,
                outcome,
            ),
            Operation::Delete {
                anchor,
                kind,
                dn,
                cloud_id,
            } => match result {
                Ok(_) | Err(GraphError::NotFound { .. }) => {
                    let old = self
                        .links
                        .remove(anchor)
                        .map(|link| link.exported)
                        .unwrap_or_default();
                    outcome.changes.push(ObjectChangeRecord {
                        step: StepKind::CloudExport,
                        dn: dn.to_string(),
                        anchor: anchor.to_string(),
                        object_type: *kind,
                        cloud_id: Some(cloud_id.clone()),
                        change_kind: ChangeKind::Delete,
                        attributes: removed(&old),
                    });
                    outcome.updates.push(ExportUpdate::Removed(*anchor));
                    Ok(())
                }
                Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
            },
            Operation::Disable {
                anchor,
                dn,
                cloud_id,
            } => match result {
                Ok(_) => {
                    if let Some(link) = self.links.get_mut(anchor) {
                        link.exported
                            .insert("accountEnabled".to_owned(), json!(false));
                        link.disabled_at = Some(now_ms());
                        outcome.updates.push(ExportUpdate::Link(link.clone()));
                    }
                    outcome.changes.push(ObjectChangeRecord {
                        step: StepKind::CloudExport,
                        dn: dn.to_string(),
                        anchor: anchor.to_string(),
                        object_type: ObjectKind::User,
                        cloud_id: Some(cloud_id.clone()),
                        change_kind: ChangeKind::Update,
                        attributes: change_records::disabled(),
                    });
                    self.disabled.push((*anchor, dn.clone(), cloud_id.clone()));
                    Ok(())
                }
                // Already gone from the cloud: nothing is left to disable or delete.
                Err(GraphError::NotFound { .. }) => {
                    self.links.remove(anchor);
                    outcome.updates.push(ExportUpdate::Removed(*anchor));
                    Ok(())
                }
                Err(error) => {
                    self.object_error(*anchor, ObjectKind::User, dn.as_str(), &error, outcome)
                }
            },
            Operation::Members { .. } | Operation::Manager { .. } => Ok(()),
        }
    }

    /// The outcome of a create: the new link, a lost answer settled, or a conflict with the
    /// object's own earlier copy (README, "Joining").
    async fn create_result(
        &mut self,
        operation: &Operation,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        let Operation::Create {
            anchor,
            kind,
            dn,
            properties,
        } = operation
        else {
            return Ok(());
        };
        // What the run's record says of a create whose answer was lost.
        let mut settled = None;
        let result = match result {
            Err(error @ GraphError::OutcomeUnknown { .. }) => {
                match self.settle_lost_create(operation, error).await {
                    Ok((body, how)) => {
                        settled = Some(how);
                        Ok(body)
                    }
                    Err(error) => Err(error),
                }
            }
            other => other,
        };
        match result {
            Ok(body) => {
                let Some(cloud_id) = body
                    .as_ref()
                    .and_then(|body| body.get("id"))
                    .and_then(Value::as_str)
                else {
                    let error = GraphError::Failed {
                        status: 201,
                        code: "noId".to_owned(),
                        message: "the create was answered without the new object's id".to_owned(),
                    };
                    return self.object_error(*anchor, *kind, dn.as_str(), &error, outcome);
                };
                self.created((*anchor, *kind, dn), cloud_id, properties, outcome);
                if let (Some(how), Some(record)) = (settled, outcome.changes.last_mut()) {
                    record.attributes.insert(
                        0,
                        AttributeValues {
                            name: "(answer lost)".to_owned(),
                            old: Value::Null,
                            new: json!(how),
                        },
                    );
                }
                Ok(())
            }
            Err(GraphError::Conflict {
                property,
                value,
                message,
            }) if *kind == ObjectKind::User
                && (property.eq_ignore_ascii_case("onPremisesImmutableId")
                    || property.eq_ignore_ascii_case("userPrincipalName")) =>
            {
                // Maybe already there: made by a run that was stopped before it kept the
                // link. Graph names one conflicting property, in an order it does not
                // document (see the emulator's README), so either is looked up the same way:
                // the user with this UPN is ours if it carries this object's immutableId.
                // Linked; its values are compared and written next run.
                let intent = create_intent(operation, now_ms()).expect("a create");
                match crate::engine::lost_creates::find_own_create(
                    self.graph,
                    &intent,
                    self.sync_app,
                )
                .await
                {
                    Ok(Some(cloud)) => {
                        let link = Link {
                            anchor: *anchor,
                            kind: *kind,
                            dn: dn.clone(),
                            cloud_id: cloud.id.clone(),
                            exported: cloud.properties,
                            members: Default::default(),
                            manager: None,
                            disabled_at: None,
                        };
                        outcome.updates.push(ExportUpdate::Link(link.clone()));
                        outcome
                            .updates
                            .push(ExportUpdate::ReferrersPending(dn.clone()));
                        self.links.insert(*anchor, link);
                        self.deferred.insert(*anchor);
                        Ok(())
                    }
                    Ok(None) => {
                        let error = if property.eq_ignore_ascii_case("onPremisesImmutableId") {
                            GraphError::Conflict {
                                property,
                                value,
                                message: "Graph reports the immutableId in use but no user has it yet; the next run tries again".to_owned(),
                            }
                        } else {
                            // Another user's UPN: nothing was made.
                            outcome.updates.push(ExportUpdate::IntentSettled(*anchor));
                            GraphError::Conflict {
                                property,
                                value,
                                message,
                            }
                        };
                        self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
                    }
                    Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
                }
            }
            Err(error) => {
                if refused_outright(&error) {
                    // Graph made nothing: no lookup is owed next run.
                    outcome.updates.push(ExportUpdate::IntentSettled(*anchor));
                }
                self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
            }
        }
    }

    /// A create whose answer was lost, settled: looked up with a consistent read and, only when
    /// it made nothing, sent again (a few times). Returns what the create's answer would have
    /// been. A group that cannot be proven dirsync's (no sync app id) is never sent again: the
    /// intent stays, and the error says the outcome is unknown.
    async fn settle_lost_create(
        &self,
        operation: &Operation,
        mut error: GraphError,
    ) -> Result<(Option<Value>, &'static str), GraphError> {
        const TRIES: usize = 3;
        let intent = create_intent(operation, now_ms()).expect("only creates are settled");
        if intent.kind == ObjectKind::Group && self.sync_app.is_none() {
            return Err(error);
        }
        for _ in 0..TRIES {
            let graph = self.graph;
            if let Some(cloud) =
                crate::engine::lost_creates::find_own_create(graph, &intent, self.sync_app).await?
            {
                tracing::info!(dn = %intent.dn, cloud_id = %cloud.id, "the answer to a create was lost; the object it made was found");
                return Ok((
                    Some(json!({ "id": cloud.id })),
                    "Graph had made it: found by a consistent lookup, not created twice",
                ));
            }
            let Some(request) = self.object_write(operation).request else {
                break;
            };
            match graph.send(&request).await {
                Err(lost @ GraphError::OutcomeUnknown { .. }) => error = lost,
                answered => {
                    return answered.map(|body| {
                        (
                            body,
                            "Graph had not made it (a consistent lookup found nothing): sent again",
                        )
                    });
                }
            }
        }
        Err(error)
    }

    /// A new cloud object: its link, its change record, and its referrers evaluated again.
    fn created(
        &mut self,
        (anchor, kind, dn): (Guid, ObjectKind, &Dn),
        cloud_id: &str,
        properties: &Map<String, Value>,
        outcome: &mut ChunkOutcome,
    ) {
        let link = Link {
            anchor,
            kind,
            dn: dn.clone(),
            cloud_id: cloud_id.to_owned(),
            exported: properties.clone(),
            members: Default::default(),
            manager: None,
            disabled_at: None,
        };
        outcome.changes.push(ObjectChangeRecord {
            step: StepKind::CloudExport,
            dn: dn.to_string(),
            anchor: anchor.to_string(),
            object_type: kind,
            cloud_id: Some(link.cloud_id.clone()),
            change_kind: ChangeKind::Add,
            attributes: added(properties),
        });
        outcome.updates.push(ExportUpdate::Link(link.clone()));
        outcome
            .updates
            .push(ExportUpdate::ReferrersPending(dn.clone()));
        self.created.insert(link.cloud_id.clone());
        self.links.insert(anchor, link);
    }

    /// The outcome of a join's or an update's PATCH.
    pub(super) fn written(
        &mut self,
        (anchor, kind, dn, cloud_id): (Guid, ObjectKind, &Dn, &String),
        changes: &[AttributeChange],
        join: Option<JoinKind>,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        let anchor = &anchor;
        let kind = &kind;
        match result {
            Ok(_) => {
                let exported = match (join, self.objects.get(anchor)) {
                    // A join knows the wanted values, not what the cloud had.
                    (Some(_), Some(object)) => {
                        cloud_shape(object, self.domains, self.rules).properties
                    }
                    _ => {
                        let mut exported = self
                            .links
                            .get(anchor)
                            .map(|link| link.exported.clone())
                            .unwrap_or_default();
                        for change in changes {
                            exported.insert(change.property.clone(), change.new.clone());
                        }
                        exported
                    }
                };
                let link = self.links.entry(*anchor).or_insert_with(|| Link {
                    anchor: *anchor,
                    kind: *kind,
                    dn: dn.clone(),
                    cloud_id: cloud_id.clone(),
                    exported: Map::new(),
                    members: Default::default(),
                    manager: None,
                    disabled_at: None,
                });
                link.dn = dn.clone();
                link.exported = exported;
                // Written from AD: a user disabled when it left the scope is back.
                link.disabled_at = None;
                let attributes = match join {
                    Some(how) => change_records::joined(how, changes),
                    None => change_records::changed(changes),
                };
                outcome.changes.push(ObjectChangeRecord {
                    step: StepKind::CloudExport,
                    dn: dn.to_string(),
                    anchor: anchor.to_string(),
                    object_type: *kind,
                    cloud_id: Some(cloud_id.clone()),
                    change_kind: ChangeKind::Update,
                    attributes,
                });
                outcome.updates.push(ExportUpdate::Link(link.clone()));
                if join.is_some() {
                    outcome
                        .updates
                        .push(ExportUpdate::ReferrersPending(dn.clone()));
                }
                Ok(())
            }
            Err(error @ GraphError::NotFound { .. }) => {
                // Deleted in the cloud behind dirsync's back: forget the link; the next
                // run joins or creates the object again.
                self.links.remove(anchor);
                outcome.updates.push(ExportUpdate::Unlinked(*anchor));
                self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
            }
            Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
        }
    }

    pub(super) fn reference_result(
        &mut self,
        operation: &Operation,
        reference: Reference,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
        changes: &mut HashMap<Guid, ReferenceChange>,
    ) -> Result<(), Halt> {
        let (owner, kind) = match operation {
            Operation::Members { group, .. } => (*group, ObjectKind::Group),
            Operation::Manager { user, .. } => (*user, ObjectKind::User),
            _ => return Ok(()),
        };
        let done = match (&result, reference) {
            (Ok(_), _) => true,
            // Already a member (a group dirsync found again, or took over, brings its members along).
            (Err(GraphError::BadRequest { message, .. }), Reference::AddMember(_)) => {
                message.to_ascii_lowercase().contains("already exist")
            }
            (
                Err(GraphError::NotFound { .. }),
                Reference::RemoveMember(_) | Reference::RemoveManager,
            ) => true,
            _ => false,
        };
        if !done {
            let error = result.err().unwrap_or_else(|| GraphError::Failed {
                status: 0,
                code: "unknown".to_owned(),
                message: "no answer".to_owned(),
            });
            let dn = self
                .links
                .get(&owner)
                .map(|link| link.dn.to_string())
                .unwrap_or_default();
            return self.object_error(owner, kind, &dn, &error, outcome);
        }
        let Some(link) = self.links.get_mut(&owner) else {
            return Ok(());
        };
        let change = changes.entry(owner).or_default();
        match reference {
            Reference::AddMember(member) => {
                link.members.insert(member);
                change.added.push(member);
            }
            Reference::RemoveMember(member) => {
                link.members.remove(&member);
                change.removed.push(member);
            }
            Reference::SetManager(manager) => {
                change.manager = Some((link.manager, Some(manager)));
                link.manager = Some(manager);
            }
            Reference::RemoveManager => {
                change.manager = Some((link.manager, None));
                link.manager = None;
            }
        }
        Ok(())
    }

    pub(super) fn reference_record(
        &self,
        owner: Guid,
        change: &ReferenceChange,
    ) -> Option<ObjectChangeRecord> {
        let link = self.links.get(&owner)?;
        let dn_of = |anchor: &Guid| -> Value {
            self.links
                .get(anchor)
                .map(|link| link.dn.to_string())
                .or_else(|| self.objects.get(anchor).map(|object| object.dn.to_string()))
                .map_or(Value::Null, Value::String)
        };
        let attributes =
            change_records::references(&change.added, &change.removed, change.manager, &dn_of);
        (!attributes.is_empty()).then(|| ObjectChangeRecord {
            step: StepKind::CloudExport,
            dn: link.dn.to_string(),
            anchor: owner.to_string(),
            object_type: link.kind,
            cloud_id: Some(link.cloud_id.clone()),
            change_kind: ChangeKind::Update,
            attributes,
        })
    }

    pub(super) fn object_error(
        &mut self,
        anchor: Guid,
        kind: ObjectKind,
        dn: &str,
        error: &GraphError,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        let (error_type, code, hint) = describe(error);
        let history = self.store.object_error_seen(anchor, error_type, now_ms())?;
        if self.failed.insert(anchor) {
            self.counters.errors += 1;
            self.report.errors += 1;
        }
        outcome.errors.push(ErrorRecord {
            step: StepKind::CloudExport,
            dn: dn.to_owned(),
            anchor: Some(anchor.to_string()),
            object_type: Some(kind),
            error_type: error_type.to_owned(),
            code,
            server_message: error.to_string(),
            hint,
            first_occurred_at: history.first_occurred_at,
            retry_count: history.retry_count,
        });
        Ok(())
    }
}

#[derive(Debug, Default)]
pub(super) struct ReferenceChange {
    added: Vec<Guid>,
    removed: Vec<Guid>,
    manager: Option<(Option<Guid>, Option<Guid>)>,
}

/// The error's type and code for the run record, and what the administrator should do.
pub(super) fn describe(error: &GraphError) -> (&'static str, Option<String>, String) {
    match error {
        GraphError::Conflict {
            property, value, ..
        } => (
            "conflict",
            Some(property.clone()),
            format!(
                "another cloud object already has {property}{}: find it in the Entra admin center, then change the value on this object in Active Directory or remove it from the other object; the next run tries again",
                value.as_deref().map(|v| format!(" '{v}'")).unwrap_or_default()
            ),
        ),
        GraphError::NotFound { .. } => (
            "not-found",
            None,
            "the cloud object was deleted outside dirsync; the next run creates it again (restore it from Deleted users within 30 days to keep its licenses and mailbox)".to_owned(),
        ),
        GraphError::Forbidden { code, .. } => (
            "forbidden",
            Some(code.clone()),
            "the sync app may not change this cloud object (Graph refuses, for example, to change an administrator's account with User.ReadWrite.All): leave the object out of the scope, or remove its administrator role in the cloud; the next run tries again".to_owned(),
        ),
        GraphError::BadRequest { code, .. } => (
            "rejected",
            Some(code.clone()),
            "Microsoft Graph refused a value of this object; correct the attribute the message names in Active Directory; the next run tries again".to_owned(),
        ),
        other => (
            "failed",
            None,
            match other.kind() {
                ErrorKind::Transient => {
                    "Microsoft Graph was unavailable; the next run tries again".to_owned()
                }
                _ => "see the message; the next run tries again".to_owned(),
            },
        ),
    }
}

/// A create Graph refused as such (nothing was made): a bad value, a conflict, a permission.
fn refused_outright(error: &GraphError) -> bool {
    matches!(
        error,
        GraphError::BadRequest { .. } | GraphError::Conflict { .. } | GraphError::Forbidden { .. }
    )
}

/// The intent a create leaves in the store before it is sent (see `engine::lost_creates`).
pub(super) fn create_intent(operation: &Operation, now: i64) -> Option<CreateIntent> {
    let Operation::Create {
        anchor,
        kind,
        dn,
        properties,
    } = operation
    else {
        return None;
    };
    let lookup_property = match kind {
        ObjectKind::User => "userPrincipalName",
        ObjectKind::Group => "mailNickname",
    };
    Some(CreateIntent {
        anchor: *anchor,
        kind: *kind,
        dn: dn.clone(),
        lookup: properties
            .get(lookup_property)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        requested_at: now,
    })
}
