//! The Microsoft Graph v1.0 client: users and groups, lookups, lists, delta and `$batch`, with
//! every request admitted by the flow control and retried as Graph's guidance says.
//!
//! Pages followed:
//! - errors: https://learn.microsoft.com/en-us/graph/errors
//! - throttling: https://learn.microsoft.com/en-us/graph/throttling
//! - paging: https://learn.microsoft.com/en-us/graph/paging
//! - delta: https://learn.microsoft.com/en-us/graph/delta-query-overview
//! - batching: https://learn.microsoft.com/en-us/graph/json-batching
//! - advanced queries: https://learn.microsoft.com/en-us/graph/aad-advanced-queries
//!
//! This file holds the client and its object operations; `request.rs` a request as data,
//! `transport.rs` one exchange with its retries and verdicts, `batch.rs` `$batch`, and
//! `password_hashes.rs` the password hash endpoint, `password_profiles.rs` passwords and the
//! directory role that allows setting them.

mod batch;
mod password_hashes;
mod password_profiles;
mod request;
mod transport;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use url::Url;

use super::CloudEndpoints;
use super::auth::{Authority, Credentials, TokenSource};
use super::error::{GraphError, SignInError};
use super::flow::{FlowControl, FlowPolicy, FlowStats};
use crate::tls::{TlsSetupError, TlsTrust};

pub use batch::BATCH_LIMIT;
pub use password_hashes::{PasswordHashEndpoint, PasswordHashItem};
pub use password_profiles::{
    PASSWORD_RESET_ROLES, PasswordProfileItem, USER_ADMINISTRATOR_ROLE_ID, password_policies,
};
pub use request::{CloudQuery, GraphRequest, Method, odata_string};
use transport::with_conflicting_value;

/// The outcome of one request: its JSON body, if it had one.
pub type GraphResult = Result<Option<Value>, GraphError>;

pub use super::http::http_client;

pub use crate::object_kind::ObjectKind;

/// A user or group as Graph returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudObject {
    pub id: String,
    pub kind: ObjectKind,
    pub properties: Map<String, Value>,
}

impl CloudObject {
    fn from_value(kind: ObjectKind, value: Value) -> Result<Self, String> {
        let Value::Object(properties) = value else {
            return Err("an object was expected".to_owned());
        };
        let id = properties
            .get("id")
            .and_then(Value::as_str)
            .ok_or("the object has no id")?
            .to_owned();
        Ok(CloudObject {
            id,
            kind,
            properties,
        })
    }

    pub fn string(&self, property: &str) -> Option<&str> {
        self.properties.get(property).and_then(Value::as_str)
    }

    /// A Microsoft 365 ("Unified") group: its groupTypes contains "Unified".
    pub fn is_microsoft_365_group(&self) -> bool {
        self.strings("groupTypes")
            .iter()
            .any(|kind| kind.eq_ignore_ascii_case("Unified"))
    }

    pub fn strings(&self, property: &str) -> Vec<&str> {
        match self.properties.get(property) {
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(value)) => vec![value.as_str()],
            _ => Vec::new(),
        }
    }

    pub fn immutable_id(&self) -> Option<&str> {
        self.string("onPremisesImmutableId")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeltaChange {
    Changed(CloudObject),
    /// Deleted (soft-deleted users included) or, with reason "changed", no longer visible.
    Removed {
        id: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeltaLink(pub String);

/// What one delta round returned.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaRound {
    pub changes: Vec<DeltaChange>,
    pub next: DeltaLink,
}

#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    /// `{graph}/v1.0`.
    base: Url,
    tokens: Arc<TokenSource>,
    flow: Arc<FlowControl>,
}

impl GraphClient {
    /// A client for `tenant` that signs in with `credentials`.
    pub fn new(
        endpoints: &CloudEndpoints,
        tenant: &str,
        credentials: Credentials,
        trust: &TlsTrust,
        policy: FlowPolicy,
    ) -> Result<Self, GraphSetupError> {
        let http = http_client(trust, policy.request_timeout)?;
        let authority = Authority::new(endpoints, tenant)?;
        let tokens = TokenSource::new(http.clone(), authority, credentials);
        Ok(GraphClient::with_tokens(
            http,
            endpoints,
            Arc::new(tokens),
            policy,
        ))
    }

    /// A client around an existing token source (for example an administrator's session).
    pub fn with_tokens(
        http: reqwest::Client,
        endpoints: &CloudEndpoints,
        tokens: Arc<TokenSource>,
        policy: FlowPolicy,
    ) -> Self {
        let mut base = endpoints.graph.clone();
        base.path_segments_mut()
            .expect("validated as http(s)")
            .pop_if_empty()
            .push("v1.0");
        GraphClient {
            http,
            base,
            tokens,
            flow: Arc::new(FlowControl::new(policy)),
        }
    }

    pub fn stats(&self) -> FlowStats {
        self.flow.stats()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn authority(&self) -> &Authority {
        self.tokens.authority()
    }

    /// Sends one request; the answer's JSON body, if it had one.
    pub async fn send(&self, request: &GraphRequest) -> Result<Option<Value>, GraphError> {
        let url = request.url(&self.base);
        let writes = u32::from(request.method.is_write());
        self.execute_once_if_unanswered(
            request.method,
            url,
            request.body.as_ref(),
            request.eventual,
            writes,
            request.is_create(),
        )
        .await
        .map_err(|error| with_conflicting_value(error, request.body.as_ref()))
    }

    /// A GET from Graph's beta endpoint, for what v1.0 does not offer (the directory quota).
    /// Beta can change without notice: its callers treat a failure as "not known".
    pub async fn get_beta(&self, request: &GraphRequest) -> Result<Option<Value>, GraphError> {
        let mut base = self.base.clone();
        base.path_segments_mut()
            .expect("validated as http(s)")
            .pop()
            .push("beta");
        self.execute_once_if_unanswered(
            request.method,
            request.url(&base),
            None,
            request.eventual,
            0,
            false,
        )
        .await
    }

    /// The tenant's directory quota: (used, total) objects, from the organization's
    /// `directorySizeQuota`, which only Graph's beta offers (Organization.Read.All).
    /// https://learn.microsoft.com/en-us/graph/api/resources/directorysizequota?view=graph-rest-beta
    pub async fn directory_quota(&self) -> Result<Option<(u64, u64)>, GraphError> {
        let answer = self
            .get_beta(
                &GraphRequest::get(&["organization"]).with_query("$select", "directorySizeQuota"),
            )
            .await?
            .unwrap_or(Value::Null);
        let quota = answer
            .get("value")
            .and_then(Value::as_array)
            .and_then(|values| values.first())
            .and_then(|organization| organization.get("directorySizeQuota"));
        Ok(quota
            .and_then(|quota| Some((quota.get("used")?.as_u64()?, quota.get("total")?.as_u64()?))))
    }

    async fn send_object(
        &self,
        kind: ObjectKind,
        request: &GraphRequest,
    ) -> Result<CloudObject, GraphError> {
        let value = self.send(request).await?.unwrap_or(Value::Null);
        CloudObject::from_value(kind, value).map_err(|what| self.not_graph(what))
    }

    /// Creates a user or group from its Graph properties.
    pub async fn create(
        &self,
        kind: ObjectKind,
        properties: &Value,
    ) -> Result<CloudObject, GraphError> {
        let request =
            GraphRequest::new(Method::Post, &[kind.collection()]).with_body(properties.clone());
        self.send_object(kind, &request).await
    }

    /// Changes the given properties.
    pub async fn update(
        &self,
        kind: ObjectKind,
        id: &str,
        changes: &Value,
    ) -> Result<(), GraphError> {
        let request =
            GraphRequest::new(Method::Patch, &[kind.collection(), id]).with_body(changes.clone());
        self.send(&request).await.map(drop)
    }

    /// Deletes (users go to the tenant's recycle bin for 30 days, as Graph does).
    pub async fn delete(&self, kind: ObjectKind, id: &str) -> Result<(), GraphError> {
        self.send(&GraphRequest::new(Method::Delete, &[kind.collection(), id]))
            .await
            .map(drop)
    }

    pub async fn get(
        &self,
        kind: ObjectKind,
        id: &str,
        select: &[&str],
    ) -> Result<CloudObject, GraphError> {
        let mut request = GraphRequest::get(&[kind.collection(), id]);
        if !select.is_empty() {
            request = request.with_query("$select", &select.join(","));
        }
        self.send_object(kind, &request).await
    }

    /// Every object that matches (normally none or one).
    pub async fn find(
        &self,
        kind: ObjectKind,
        lookup: &CloudQuery,
        select: &[&str],
    ) -> Result<Vec<CloudObject>, GraphError> {
        // Filters on onPremisesImmutableId are advanced queries: Graph answers them only with
        // `ConsistencyLevel: eventual` and `$count=true`, from an index that lags behind writes.
        // The default forms (userPrincipalName, mail, mailNickname, proxyAddresses) are plain,
        // consistent reads: an object made a moment ago is found
        // (https://learn.microsoft.com/en-us/graph/aad-advanced-queries).
        let mut request =
            GraphRequest::get(&[kind.collection()]).with_query("$filter", &lookup.filter());
        if lookup.needs_advanced_query() {
            request = request.with_query("$count", "true").eventual();
        }
        if !select.is_empty() {
            request = request.with_query("$select", &select.join(","));
        }
        let mut found = Vec::new();
        self.pages(kind, request, |object| found.push(object))
            .await?;
        Ok(found)
    }

    pub async fn user_by_immutable_id(
        &self,
        immutable_id: &str,
        select: &[&str],
    ) -> Result<Option<CloudObject>, GraphError> {
        let lookup = CloudQuery::Equals {
            property: "onPremisesImmutableId",
            value: immutable_id.to_owned(),
        };
        Ok(self
            .find(ObjectKind::User, &lookup, select)
            .await?
            .into_iter()
            .next())
    }

    /// The names of the directory roles a user holds (active assignments), from
    /// `/roleManagement/directory/roleAssignments` (RoleManagement.Read.Directory).
    pub async fn directory_roles_of(&self, principal_id: &str) -> Result<Vec<String>, GraphError> {
        let request = GraphRequest::get(&["roleManagement", "directory", "roleAssignments"])
            .with_query(
                "$filter",
                &format!("principalId eq {}", odata_string(principal_id)),
            )
            .with_query("$expand", "roleDefinition");
        let answer = self.send(&request).await?;
        Ok(answer
            .as_ref()
            .and_then(|answer| answer.get("value"))
            .and_then(Value::as_array)
            .map(|assignments| {
                assignments
                    .iter()
                    .map(|assignment| {
                        assignment
                            .pointer("/roleDefinition/displayName")
                            .or_else(|| assignment.get("roleDefinitionId"))
                            .and_then(Value::as_str)
                            .unwrap_or("a directory role")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The ids of a group's owners (users and service principals).
    pub async fn group_owner_ids(&self, group_id: &str) -> Result<Vec<String>, GraphError> {
        let request =
            GraphRequest::get(&["groups", group_id, "owners"]).with_query("$select", "id");
        let answer = self.send(&request).await?;
        Ok(answer
            .as_ref()
            .and_then(|answer| answer.get("value"))
            .and_then(Value::as_array)
            .map(|owners| {
                owners
                    .iter()
                    .filter_map(|owner| owner.get("id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn user_by_upn(
        &self,
        upn: &str,
        select: &[&str],
    ) -> Result<Option<CloudObject>, GraphError> {
        let lookup = CloudQuery::Equals {
            property: "userPrincipalName",
            value: upn.to_owned(),
        };
        Ok(self
            .find(ObjectKind::User, &lookup, select)
            .await?
            .into_iter()
            .next())
    }

    pub async fn by_smtp_address(
        &self,
        kind: ObjectKind,
        address: &str,
        select: &[&str],
    ) -> Result<Option<CloudObject>, GraphError> {
        let lookup = CloudQuery::SmtpAddress(address.to_owned());
        Ok(self.find(kind, &lookup, select).await?.into_iter().next())
    }

    /// Every user or group, page by page (999 a page, Graph's maximum).
    pub async fn list(
        &self,
        kind: ObjectKind,
        select: &[&str],
    ) -> Result<Vec<CloudObject>, GraphError> {
        let mut request = GraphRequest::get(&[kind.collection()]).with_query("$top", "999");
        if !select.is_empty() {
            request = request.with_query("$select", &select.join(","));
        }
        let mut all = Vec::new();
        self.pages(kind, request, |object| all.push(object)).await?;
        Ok(all)
    }

    /// Follows `@odata.nextLink` to the last page.
    async fn pages(
        &self,
        kind: ObjectKind,
        first: GraphRequest,
        mut each: impl FnMut(CloudObject),
    ) -> Result<(), GraphError> {
        let mut url = first.url(&self.base);
        loop {
            let page = self
                .execute(Method::Get, url, None, first.eventual, 0)
                .await?;
            let page = page.ok_or_else(|| self.not_graph("an empty page".to_owned()))?;
            for value in page_values(&page).map_err(|what| self.not_graph(what))? {
                each(CloudObject::from_value(kind, value).map_err(|what| self.not_graph(what))?);
            }
            match page.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) => url = self.follow(next)?,
                None => return Ok(()),
            }
        }
    }

    /// A delta round: from the start when `from` is `None`, else the changes since that link.
    pub async fn delta(
        &self,
        kind: ObjectKind,
        select: &[&str],
        from: Option<&DeltaLink>,
    ) -> Result<DeltaRound, GraphError> {
        let mut url = match from {
            Some(link) => self.follow(&link.0)?,
            None => {
                let mut request = GraphRequest::get(&[kind.collection(), "delta"]);
                if !select.is_empty() {
                    request = request.with_query("$select", &select.join(","));
                }
                request.url(&self.base)
            }
        };
        let mut changes = Vec::new();
        loop {
            let page = self.execute(Method::Get, url, None, false, 0).await?;
            let page = page.ok_or_else(|| self.not_graph("an empty page".to_owned()))?;
            for value in page_values(&page).map_err(|what| self.not_graph(what))? {
                if let Some(removed) = value.get("@removed") {
                    let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
                    let reason = removed
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("deleted");
                    changes.push(DeltaChange::Removed {
                        id: id.to_owned(),
                        reason: reason.to_owned(),
                    });
                } else {
                    let object = CloudObject::from_value(kind, value)
                        .map_err(|what| self.not_graph(what))?;
                    changes.push(DeltaChange::Changed(object));
                }
            }
            if let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) {
                url = self.follow(next)?;
            } else if let Some(link) = page.get("@odata.deltaLink").and_then(Value::as_str) {
                // Checked now, so a stored link is known to be ours.
                self.follow(link)?;
                return Ok(DeltaRound {
                    changes,
                    next: DeltaLink(link.to_owned()),
                });
            } else {
                return Err(
                    self.not_graph("a delta page with neither nextLink nor deltaLink".to_owned())
                );
            }
        }
    }

    /// Adds `member_id` (a user or group) to a group.
    /// Ends a user's sign-in sessions now (refresh tokens and session cookies are invalidated)
    /// (https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions?view=graph-rest-1.0).
    pub async fn revoke_sign_in_sessions(&self, user_id: &str) -> Result<(), GraphError> {
        self.send(&GraphRequest::new(
            Method::Post,
            &["users", user_id, "revokeSignInSessions"],
        ))
        .await
        .map(drop)
    }

    pub async fn add_member(&self, group_id: &str, member_id: &str) -> Result<(), GraphError> {
        let request = GraphRequest::new(Method::Post, &["groups", group_id, "members", "$ref"])
            .with_body(json!({ "@odata.id": self.directory_object_url(member_id) }));
        self.send(&request).await.map(drop)
    }

    pub async fn remove_member(&self, group_id: &str, member_id: &str) -> Result<(), GraphError> {
        let request = GraphRequest::new(
            Method::Delete,
            &["groups", group_id, "members", member_id, "$ref"],
        );
        self.send(&request).await.map(drop)
    }

    /// Sets a user's manager.
    pub async fn set_manager(&self, user_id: &str, manager_id: &str) -> Result<(), GraphError> {
        let request = GraphRequest::new(Method::Put, &["users", user_id, "manager", "$ref"])
            .with_body(json!({ "@odata.id": self.directory_object_url(manager_id) }));
        self.send(&request).await.map(drop)
    }

    /// The member ids of a group.
    pub async fn members(&self, group_id: &str) -> Result<Vec<String>, GraphError> {
        let request = GraphRequest::get(&["groups", group_id, "members"])
            .with_query("$select", "id")
            .with_query("$top", "999");
        let mut ids = Vec::new();
        self.pages(ObjectKind::User, request, |member| ids.push(member.id))
            .await?;
        Ok(ids)
    }

    /// The reference form Graph wants in `@odata.id` and `members@odata.bind`.
    pub fn directory_object_url(&self, id: &str) -> String {
        GraphRequest::get(&["directoryObjects", id])
            .url(&self.base)
            .to_string()
    }

    /// `{graph}/dirsync/v1/{segments}`: the services dirsync needs that Graph does not offer.
    pub(in crate::cloud) fn extension_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("validated as http(s)")
            .pop()
            .extend(["dirsync", "v1"])
            .extend(segments);
        url
    }

    /// Only links on the configured Graph host are followed: a token is never sent elsewhere.
    pub(in crate::cloud) fn follow(&self, link: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link)
            .map_err(|error| self.not_graph(format!("a link that is no URL ({error})")))?;
        if url.origin() != self.base.origin() {
            return Err(self.not_graph(format!(
                "a link to another host ({})",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    pub(in crate::cloud) fn not_graph(&self, what: String) -> GraphError {
        GraphError::NotGraph {
            url: self.base.to_string(),
            what,
        }
    }
}

fn page_values(page: &Value) -> Result<Vec<Value>, String> {
    match page.get("value") {
        Some(Value::Array(values)) => Ok(values.clone()),
        _ => Err("a page without a 'value' array".to_owned()),
    }
}

/// Building a Graph client failed before any request.
#[derive(Debug, thiserror::Error)]
pub enum GraphSetupError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
}
