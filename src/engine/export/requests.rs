//! The Graph requests an operation of the plan becomes: the object's own write (create, join,
//! update, delete), then its references (members, manager), sent once their targets exist.

use super::*;

impl Exporter<'_, '_> {
    pub(super) fn object_write<'p>(&self, operation: &'p Operation) -> Write<'p> {
        let request = match operation {
            Operation::Create {
                kind, properties, ..
            } => {
                let mut body = properties.clone();
                if *kind == ObjectKind::User {
                    // Graph requires a password on create. Nobody signs in with it: it is random,
                    // never kept, and password hash sync (when on) replaces it.
                    body.insert(
                        "passwordProfile".to_owned(),
                        json!({
                            "password": initial_password(),
                            "forceChangePasswordNextSignIn": false,
                        }),
                    );
                }
                if *kind == ObjectKind::Group
                    && let Some(sync_app) = self.sync_app
                {
                    // The sync app owns the groups it makes: the proof that a group found
                    // after a lost answer is dirsync's (README, "Joining").
                    body.insert(
                        "owners@odata.bind".to_owned(),
                        json!([self.graph.directory_object_url(sync_app)]),
                    );
                }
                Some(
                    GraphRequest::new(Method::Post, &[collection(*kind)])
                        .with_body(Value::Object(body)),
                )
            }
            Operation::Join {
                kind,
                cloud_id,
                changes,
                ..
            }
            | Operation::Update {
                kind,
                cloud_id,
                changes,
                ..
            } => (!changes.is_empty()).then(|| {
                let body: Map<String, Value> = changes
                    .iter()
                    .map(|change| {
                        let value = match (&change.new, empty_complex(&change.property)) {
                            (Value::Null, Some(empty)) => empty,
                            (value, _) => value.clone(),
                        };
                        (change.property.clone(), value)
                    })
                    .collect();
                GraphRequest::new(Method::Patch, &[collection(*kind), cloud_id])
                    .with_body(Value::Object(body))
            }),
            _ => None,
        };
        Write {
            operation,
            request,
            reference: None,
        }
    }

    pub(super) fn reference_writes<'p>(&self, operation: &'p Operation) -> Vec<Write<'p>> {
        let cloud_id = |anchor: &Guid| self.links.get(anchor).map(|link| link.cloud_id.clone());
        let write = |request: Option<GraphRequest>, reference: Reference| Write {
            operation,
            request,
            reference: Some(reference),
        };
        match operation {
            Operation::Members { group, add, remove } => {
                // A group whose own write failed has no link: its members wait for next run.
                let Some(group_id) = cloud_id(group) else {
                    return Vec::new();
                };
                let mut writes = Vec::new();
                for member in add {
                    // A member without a cloud object yet is added when it is created (its
                    // create marks this group pending again).
                    if let Some(member_id) = cloud_id(member) {
                        writes.push(write(
                            Some(self.reference_to(
                                Method::Post,
                                &["groups", &group_id, "members", "$ref"],
                                &member_id,
                            )),
                            Reference::AddMember(*member),
                        ));
                    }
                }
                for member in remove {
                    // A member that is no longer in the cloud is no longer a member.
                    let request = cloud_id(member).map(|member_id| {
                        GraphRequest::new(
                            Method::Delete,
                            &["groups", &group_id, "members", &member_id, "$ref"],
                        )
                    });
                    writes.push(write(request, Reference::RemoveMember(*member)));
                }
                writes
            }
            Operation::Manager { user, manager } => {
                let Some(user_id) = cloud_id(user) else {
                    return Vec::new();
                };
                match manager {
                    Some(manager) => match cloud_id(manager) {
                        Some(manager_id) => vec![write(
                            Some(self.reference_to(
                                Method::Put,
                                &["users", &user_id, "manager", "$ref"],
                                &manager_id,
                            )),
                            Reference::SetManager(*manager),
                        )],
                        None => Vec::new(),
                    },
                    None => vec![write(
                        Some(GraphRequest::new(
                            Method::Delete,
                            &["users", &user_id, "manager", "$ref"],
                        )),
                        Reference::RemoveManager,
                    )],
                }
            }
            _ => Vec::new(),
        }
    }

    /// A `$ref` write pointing at the directory object `target_id`.
    pub(super) fn reference_to(
        &self,
        method: Method,
        segments: &[&str],
        target_id: &str,
    ) -> GraphRequest {
        GraphRequest::new(method, segments)
            .with_body(json!({ "@odata.id": self.graph.directory_object_url(target_id) }))
    }
}

pub(super) fn collection(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => ObjectKind::User.collection(),
        ObjectKind::Group => ObjectKind::Group.collection(),
    }
}

/// A random password for a new cloud user (Graph requires one). 64 characters of every class.
pub(super) fn initial_password() -> String {
    crate::directory::service_account::random_password()
        .map(|secret| secret.expose().to_owned())
        // The system's random source failing is not something a run can fix; Graph refuses an
        // empty password and the object is reported as an error, never created with a weak one.
        .unwrap_or_default()
}
