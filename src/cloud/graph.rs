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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use url::Url;

use super::CloudEndpoints;
use super::auth::{Authority, Credentials, TokenSource};
use super::error::{GraphError, SignInError};
use super::flow::{FlowControl, FlowPolicy, FlowStats};
use super::http::{
    BodyError, MAX_GRAPH_BODY_BYTES, describe_transport_error, parse_retry_after, read_capped,
    snippet,
};
use crate::tls::{TlsSetupError, TlsTrust};

/// The outcome of one request: its JSON body, if it had one.
pub type GraphResult = Result<Option<Value>, GraphError>;

/// Graph's limit on requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;

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

/// HTTP methods Graph is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    fn is_write(self) -> bool {
        self != Method::Get
    }

    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One Graph request, relative to `/v1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphRequest {
    pub method: Method,
    /// Path segments, unescaped: `["users", id, "manager", "$ref"]`.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Sends `ConsistencyLevel: eventual`, which advanced queries (`any()` filters, `$count`)
    /// require.
    pub eventual: bool,
}

impl GraphRequest {
    pub fn new(method: Method, segments: &[&str]) -> Self {
        GraphRequest {
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            eventual: false,
        }
    }

    pub fn get(segments: &[&str]) -> Self {
        GraphRequest::new(Method::Get, segments)
    }

    pub fn with_query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn eventual(mut self) -> Self {
        self.eventual = true;
        self
    }

    fn url(&self, base: &Url) -> Url {
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("validated as http(s)")
            .pop_if_empty()
            .extend(&self.segments);
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        url
    }

    /// The form `$batch` wants: relative to the version, starting with `/`.
    fn relative_url(&self) -> String {
        let base = Url::parse("http://relative.invalid/").expect("constant URL");
        let url = self.url(&base);
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }
}

/// One answer of a paged list or delta round.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaChange {
    Changed(CloudObject),
    /// Deleted (soft-deleted users included) or, with reason "changed", no longer visible.
    Removed {
        id: String,
        reason: String,
    },
}

/// Whether the tenant has the password hash endpoint (README, "Password hash sync").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordHashEndpoint {
    Available {
        max_batch: usize,
    },
    /// What `url` answered instead.
    Missing {
        url: String,
        answer: String,
    },
}

/// One user's password hash credential for [`GraphClient::set_password_hashes`]. The credential
/// is a secret: it is only ever put in the request body.
pub struct PasswordHashItem<'a> {
    pub user_id: &'a str,
    pub credential: &'a str,
}

impl std::fmt::Debug for PasswordHashItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashItem")
            .field("user_id", &self.user_id)
            .field("credential", &"***")
            .finish()
    }
}

/// Where the next delta round starts. Opaque; store it as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeltaLink(pub String);

/// What one delta round returned.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaRound {
    pub changes: Vec<DeltaChange>,
    pub next: DeltaLink,
}

/// How to look an object up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudQuery {
    /// `property eq 'value'`.
    Equals {
        property: &'static str,
        value: String,
    },
    /// `proxyAddresses/any(p:p eq 'smtp:value')`: any SMTP address, primary or alias.
    SmtpAddress(String),
}

impl CloudQuery {
    fn filter(&self) -> String {
        match self {
            CloudQuery::Equals { property, value } => {
                format!("{property} eq {}", odata_string(value))
            }
            // Graph compares proxyAddresses case-insensitively: this finds primary (SMTP:) and
            // secondary (smtp:) addresses alike.
            CloudQuery::SmtpAddress(address) => format!(
                "proxyAddresses/any(p:p eq {})",
                odata_string(&format!("smtp:{address}"))
            ),
        }
    }
}

/// An OData string literal: single quotes, inner quotes doubled.
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Talks to Graph for one tenant with one set of credentials.
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
        self.execute(
            request.method,
            url,
            request.body.as_ref(),
            request.eventual,
            writes,
        )
        .await
        .map_err(|error| with_conflicting_value(error, request.body.as_ref()))
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
        // Filters on onPremisesImmutableId (and other non-default forms) are advanced queries:
        // Graph answers them only with `ConsistencyLevel: eventual` and `$count=true`. Every
        // lookup sends both, which Graph accepts for the default forms too.
        let mut request = GraphRequest::get(&[kind.collection()])
            .with_query("$filter", &lookup.filter())
            .with_query("$count", "true")
            .eventual();
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

    /// Sends any number of requests as `$batch`es of up to 20, several batches at once. Results
    /// come back in the order of `requests`. Each request is judged alone: a throttled or failed
    /// part is retried on its own, and one part's error does not touch the others.
    pub async fn batch(&self, requests: &[GraphRequest]) -> Vec<GraphResult> {
        let chunks: Vec<Vec<usize>> = (0..requests.len())
            .collect::<Vec<_>>()
            .chunks(BATCH_LIMIT)
            .map(<[usize]>::to_vec)
            .collect();
        let concurrency = self.flow.policy().max_concurrent.max(1);
        let answered: Vec<Vec<(usize, GraphResult)>> = futures::stream::iter(chunks)
            .map(|chunk| self.send_batch(requests, chunk))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut results: Vec<Option<GraphResult>> = vec![None; requests.len()];
        for (index, result) in answered.into_iter().flatten() {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|result| result.expect("every request of a chunk is answered"))
            .collect()
    }

    async fn send_batch(
        &self,
        requests: &[GraphRequest],
        mut pending: Vec<usize>,
    ) -> Vec<(usize, GraphResult)> {
        let started = Instant::now();
        let mut done = Vec::with_capacity(pending.len());
        let mut attempt = 0;
        loop {
            let parts: Vec<Value> = pending
                .iter()
                .map(|&index| batch_part(index, &requests[index]))
                .collect();
            let writes = pending
                .iter()
                .filter(|&&index| requests[index].method.is_write())
                .count();
            let url = GraphRequest::new(Method::Post, &["$batch"]).url(&self.base);
            let body = json!({ "requests": parts });
            let answer = match self
                .execute(Method::Post, url, Some(&body), false, writes as u32)
                .await
            {
                Ok(answer) => answer,
                Err(error) => {
                    done.extend(pending.into_iter().map(|index| (index, Err(error.clone()))));
                    return done;
                }
            };
            let responses = answer
                .as_ref()
                .and_then(|answer| answer.get("responses"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut by_index: BTreeMap<usize, Value> = BTreeMap::new();
            for response in responses {
                if let Some(index) = response
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse().ok())
                {
                    by_index.insert(index, response);
                }
            }
            let mut again = Vec::new();
            let mut last_failure = String::from("no answer for some parts of the batch");
            let mut throttled_only = true;
            let mut longest_wait = Duration::ZERO;
            for index in pending {
                let Some(response) = by_index.remove(&index) else {
                    again.push(index);
                    throttled_only = false;
                    continue;
                };
                match self.judge_part(&response) {
                    Verdict::Done(body) => done.push((index, Ok(body))),
                    Verdict::Failed(error) => done.push((
                        index,
                        Err(with_conflicting_value(error, requests[index].body.as_ref())),
                    )),
                    Verdict::Throttled { retry_after, last } => {
                        self.flow.throttled(retry_after);
                        longest_wait = longest_wait.max(retry_after);
                        last_failure = last;
                        again.push(index);
                    }
                    Verdict::Retry { retry_after, last } => {
                        self.flow.server_error();
                        throttled_only = false;
                        last_failure = last;
                        if let Some(retry_after) = retry_after {
                            self.flow.pause(retry_after);
                            longest_wait = longest_wait.max(retry_after);
                        }
                        again.push(index);
                    }
                    Verdict::TokenRejected(error) => done.push((index, Err(error))),
                }
            }
            if again.is_empty() {
                return done;
            }
            attempt += 1;
            if started.elapsed() + longest_wait >= self.flow.policy().give_up_after {
                let error = given_up(throttled_only, attempt, started, last_failure);
                done.extend(again.into_iter().map(|index| (index, Err(error.clone()))));
                return done;
            }
            self.flow.retrying();
            if !throttled_only {
                tokio::time::sleep(self.flow.backoff(attempt)).await;
            }
            pending = again;
        }
    }

    fn judge_part(&self, response: &Value) -> Verdict {
        let status = response.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        let retry_after = response
            .get("headers")
            .and_then(|headers| headers.as_object())
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, value)| value.as_str().and_then(parse_retry_after))
            });
        let body = response.get("body").cloned().filter(|body| !body.is_null());
        judge(status, retry_after, body, &self.base)
    }

    /// One HTTP exchange with retries: admits it through the flow control, signs it, and sends
    /// it again after 429, 5xx, a dropped connection, or an expired token.
    pub(super) async fn execute(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        eventual: bool,
        writes: u32,
    ) -> Result<Option<Value>, GraphError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut signed_in_again = false;
        let mut last_throttle = None;
        loop {
            // A Retry-After longer than the time left is not waited out: give up now.
            let paused_for = self.flow.paused_for();
            if paused_for > Duration::ZERO
                && started.elapsed() + paused_for >= self.flow.policy().give_up_after
            {
                return Err(GraphError::Throttled {
                    waited: started.elapsed(),
                    last: last_throttle.unwrap_or_else(|| {
                        format!("Graph asked to wait {} s more", paused_for.as_secs())
                    }),
                });
            }
            let permit = self.flow.admit(writes).await;
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .request(method.reqwest(), url.clone())
                .bearer_auth(token.expose())
                .header("Accept", "application/json");
            if eventual {
                request = request.header("ConsistencyLevel", "eventual");
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            tracing::debug!(method = method.as_str(), url = %url.path(), "graph request");
            let verdict = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(parse_retry_after);
                    let is_json = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|value| value.to_str().ok())
                        .is_some_and(|value| value.contains("json"));
                    match read_capped(response, MAX_GRAPH_BODY_BYTES).await {
                        Ok(bytes) => self.judge_http(status, retry_after, is_json, &bytes),
                        Err(BodyError::Transport(error)) => self.dropped(&error),
                        Err(too_large @ BodyError::TooLarge { .. }) => {
                            Verdict::Failed(GraphError::NotGraph {
                                url: self.base.to_string(),
                                what: too_large.describe(),
                            })
                        }
                    }
                }
                Err(error) if error.is_builder() => {
                    // Nothing was sent: give the slots back.
                    self.flow.writes_answered(writes, Instant::now());
                    return Err(GraphError::NotGraph {
                        url: self.base.to_string(),
                        what: describe_transport_error(&error),
                    });
                }
                Err(error) => self.dropped(&error),
            };
            self.flow.writes_answered(writes, Instant::now());
            drop(permit);
            let (wait, last, throttled) = match verdict {
                Verdict::Done(body) => return Ok(body),
                Verdict::Failed(error) => return Err(error),
                Verdict::TokenRejected(error) => {
                    if signed_in_again {
                        return Err(error);
                    }
                    // The token expired early or was revoked: sign in once more, then retry.
                    signed_in_again = true;
                    self.tokens.forget().await;
                    continue;
                }
                Verdict::Throttled { retry_after, last } => {
                    // The flow control holds every request until Retry-After has passed.
                    self.flow.throttled(retry_after);
                    last_throttle = Some(last.clone());
                    (retry_after, last, true)
                }
                Verdict::Retry { retry_after, last } => {
                    attempt += 1;
                    (
                        retry_after.unwrap_or_else(|| self.flow.backoff(attempt)),
                        last,
                        false,
                    )
                }
            };
            if started.elapsed() + wait >= self.flow.policy().give_up_after {
                return Err(given_up(throttled, attempt, started, last));
            }
            tracing::debug!(%last, wait_ms = wait.as_millis() as u64, "graph request will be retried");
            self.flow.retrying();
            if !throttled {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// `{graph}/dirsync/v1/passwordHashes`: the cloud side of password hash sync. It is not part
    /// of Microsoft Graph (public Graph has no such endpoint; the tenant emulator provides it,
    /// standing in for Entra Connect's private password-sync service).
    fn password_hash_url(&self) -> Url {
        self.extension_url(&["passwordHashes"])
    }

    /// `{graph}/dirsync/v1/{segments}`: the services dirsync needs that Graph does not offer.
    pub(super) fn extension_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("validated as http(s)")
            .pop()
            .extend(["dirsync", "v1"])
            .extend(segments);
        url
    }

    /// Whether this tenant accepts password hashes, and how many per request.
    pub async fn password_hash_endpoint(&self) -> Result<PasswordHashEndpoint, GraphError> {
        let url = self.password_hash_url();
        match self.execute(Method::Get, url.clone(), None, false, 0).await {
            Ok(body) => {
                let max_batch = body
                    .as_ref()
                    .and_then(|body| body.get("maxBatchSize"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if max_batch == 0 {
                    return Ok(PasswordHashEndpoint::Missing {
                        url: url.to_string(),
                        answer: "an answer without maxBatchSize".to_owned(),
                    });
                }
                Ok(PasswordHashEndpoint::Available {
                    max_batch: usize::try_from(max_batch).unwrap_or(usize::MAX),
                })
            }
            // Public Graph answers an unknown path with 400 ("Invalid version") or 404.
            Err(
                error @ (GraphError::NotFound { .. }
                | GraphError::BadRequest { .. }
                | GraphError::NotGraph { .. }
                | GraphError::Failed { .. }),
            ) => Ok(PasswordHashEndpoint::Missing {
                url: url.to_string(),
                answer: error.to_string(),
            }),
            Err(other) => Err(other),
        }
    }

    /// Sends one request of password hashes (at most the endpoint's `max_batch`). Each user's
    /// outcome comes back in order; `Err` means the request as a whole failed.
    pub async fn set_password_hashes(
        &self,
        items: &[PasswordHashItem<'_>],
    ) -> Result<Vec<Result<(), GraphError>>, GraphError> {
        let body = json!({
            "value": items
                .iter()
                .map(|item| json!({ "id": item.user_id, "credential": item.credential }))
                .collect::<Vec<_>>()
        });
        let answer = self
            .execute(
                Method::Post,
                self.password_hash_url(),
                Some(&body),
                false,
                1,
            )
            .await?;
        let results = answer
            .as_ref()
            .and_then(|answer| answer.get("value"))
            .and_then(Value::as_array)
            .filter(|results| results.len() == items.len())
            .ok_or_else(|| {
                self.not_graph("a password hash answer without one result per user".to_owned())
            })?;
        Ok(results
            .iter()
            .map(|result| {
                let status = result
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|status| u16::try_from(status).ok())
                    .unwrap_or(0);
                match judge(status, None, Some(result.clone()), &self.base) {
                    Verdict::Done(_) => Ok(()),
                    Verdict::Failed(error) | Verdict::TokenRejected(error) => Err(error),
                    Verdict::Throttled { last, .. } | Verdict::Retry { last, .. } => {
                        Err(GraphError::Failed {
                            status,
                            code: String::new(),
                            message: last,
                        })
                    }
                }
            })
            .collect())
    }

    fn dropped(&self, error: &reqwest::Error) -> Verdict {
        self.flow.dropped();
        Verdict::Retry {
            retry_after: None,
            last: describe_transport_error(error),
        }
    }

    fn judge_http(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        is_json: bool,
        bytes: &[u8],
    ) -> Verdict {
        if !is_json && !bytes.is_empty() && status < 500 && status != 429 {
            return Verdict::Failed(self.not_graph(format!(
                "HTTP {status} with a non-JSON answer: {}",
                snippet(bytes)
            )));
        }
        let body = if bytes.is_empty() {
            None
        } else {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(body) => Some(body),
                Err(_) if status >= 500 || status == 429 => None,
                Err(error) => {
                    return Verdict::Failed(
                        self.not_graph(format!("its answer is not JSON: {error}")),
                    );
                }
            }
        };
        if status >= 500 {
            self.flow.server_error();
        }
        judge(status, retry_after, body, &self.base)
    }

    /// Only links on the configured Graph host are followed: a token is never sent elsewhere.
    pub(super) fn follow(&self, link: &str) -> Result<Url, GraphError> {
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

    pub(super) fn not_graph(&self, what: String) -> GraphError {
        GraphError::NotGraph {
            url: self.base.to_string(),
            what,
        }
    }
}

/// The error for a request given up after retrying since `started`.
fn given_up(throttled: bool, attempts: u32, started: Instant, last: String) -> GraphError {
    let waited = started.elapsed();
    if throttled {
        GraphError::Throttled { waited, last }
    } else {
        GraphError::Unavailable {
            attempts,
            waited,
            last,
        }
    }
}

/// What to do with one answer.
#[derive(Debug)]
enum Verdict {
    Done(Option<Value>),
    Failed(GraphError),
    Throttled {
        retry_after: Duration,
        last: String,
    },
    Retry {
        retry_after: Option<Duration>,
        last: String,
    },
    TokenRejected(GraphError),
}

/// Judges a Graph answer (a whole response or one part of a batch).
fn judge(status: u16, retry_after: Option<Duration>, body: Option<Value>, base: &Url) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Done(body);
    }
    let (code, message, details) = error_parts(body.as_ref());
    let last = format!("HTTP {status} {code}: {message}");
    match status {
        429 => Verdict::Throttled {
            // Graph always sends Retry-After with 429; when a proxy strips it, wait a little.
            retry_after: retry_after.unwrap_or(Duration::from_secs(2)),
            last,
        },
        500 | 502 | 503 | 504 => Verdict::Retry { retry_after, last },
        400 => {
            let conflicting = details
                .iter()
                .find(|(detail_code, _)| detail_code == "ObjectConflict")
                .map(|(_, target)| target.clone())
                .or_else(|| conflict_property(&message));
            match conflicting {
                Some(property) => Verdict::Failed(GraphError::Conflict {
                    property,
                    value: None,
                    message,
                }),
                None => Verdict::Failed(GraphError::BadRequest { code, message }),
            }
        }
        401 => Verdict::TokenRejected(GraphError::Unauthorized { code, message }),
        403 => Verdict::Failed(GraphError::Forbidden { code, message }),
        404 => Verdict::Failed(GraphError::NotFound {
            resource: base.to_string(),
            message,
        }),
        _ => Verdict::Failed(GraphError::Failed {
            status,
            code,
            message,
        }),
    }
}

/// `error.code`, `error.message` and each `details[]` (code, target) of a Graph error body.
fn error_parts(body: Option<&Value>) -> (String, String, Vec<(String, String)>) {
    let error = body.and_then(|body| body.get("error"));
    let text = |value: Option<&Value>, name: &str| {
        value
            .and_then(|value| value.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let details = error
        .and_then(|error| error.get("details"))
        .and_then(Value::as_array)
        .map(|details| {
            details
                .iter()
                .map(|detail| (text(Some(detail), "code"), text(Some(detail), "target")))
                .collect()
        })
        .unwrap_or_default();
    let code = text(error, "code");
    let message = text(error, "message");
    (
        if code.is_empty() {
            "no error code".to_owned()
        } else {
            code
        },
        if message.is_empty() {
            "no message".to_owned()
        } else {
            message
        },
        details,
    )
}

/// "Another object with the same value for property userPrincipalName already exists."
fn conflict_property(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Another object with the same value for property ")?;
    let property = rest.split_whitespace().next()?;
    Some(property.trim_end_matches('.').to_owned())
}

/// Names the value that collided, from what was sent.
fn with_conflicting_value(error: GraphError, body: Option<&Value>) -> GraphError {
    match error {
        GraphError::Conflict {
            property,
            value: None,
            message,
        } => {
            let value = body
                .and_then(|body| body.get(&property))
                .map(|value| match value {
                    Value::String(text) => text.clone(),
                    Value::Array(values) => values
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                });
            GraphError::Conflict {
                property,
                value,
                message,
            }
        }
        other => other,
    }
}

fn batch_part(index: usize, request: &GraphRequest) -> Value {
    let mut headers = Map::new();
    if request.body.is_some() {
        headers.insert("Content-Type".to_owned(), json!("application/json"));
    }
    if request.eventual {
        headers.insert("ConsistencyLevel".to_owned(), json!("eventual"));
    }
    let mut part = json!({
        "id": index.to_string(),
        "method": request.method.as_str(),
        "url": request.relative_url(),
        "headers": headers,
    });
    if let Some(body) = &request.body {
        part["body"] = body.clone();
    }
    part
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

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://graph.microsoft.com/v1.0").expect("valid")
    }

    #[test]
    fn lookups_are_odata_filters() {
        let upn = CloudQuery::Equals {
            property: "userPrincipalName",
            value: "o'neil@contoso.com".to_owned(),
        };
        assert_eq!(upn.filter(), "userPrincipalName eq 'o''neil@contoso.com'");
        let smtp = CloudQuery::SmtpAddress("a@contoso.com".to_owned());
        assert!(smtp.filter().contains("p eq 'smtp:a@contoso.com'"));
    }

    #[test]
    fn batch_urls_are_relative_and_escaped() {
        let request = GraphRequest::get(&["users"]).with_query("$filter", "mail eq 'a+b@x.com'");
        assert_eq!(
            request.relative_url(),
            "/users?%24filter=mail+eq+%27a%2Bb%40x.com%27"
        );
        let member = GraphRequest::new(Method::Delete, &["groups", "g1", "members", "u/1", "$ref"]);
        assert_eq!(member.relative_url(), "/groups/g1/members/u%2F1/$ref");
    }

    #[test]
    fn conflicts_name_the_property_and_the_value_sent() {
        let body = json!({"error": {"code": "Request_BadRequest",
            "message": "Another object with the same value for property userPrincipalName already exists.",
            "details": [{"code": "ObjectConflict", "target": "userPrincipalName"}]}});
        let Verdict::Failed(error) = judge(400, None, Some(body), &base()) else {
            panic!("a conflict is final");
        };
        let sent = json!({"userPrincipalName": "ann@contoso.com"});
        let error = with_conflicting_value(error, Some(&sent));
        assert_eq!(
            error,
            GraphError::Conflict {
                property: "userPrincipalName".to_owned(),
                value: Some("ann@contoso.com".to_owned()),
                message: "Another object with the same value for property userPrincipalName already exists.".to_owned(),
            }
        );
        // Without details, the message alone names the property.
        let body = json!({"error": {"code": "Request_BadRequest",
            "message": "Another object with the same value for property proxyAddresses already exists."}});
        let Verdict::Failed(GraphError::Conflict { property, .. }) =
            judge(400, None, Some(body), &base())
        else {
            panic!("a conflict");
        };
        assert_eq!(property, "proxyAddresses");
    }

    #[test]
    fn statuses_are_judged_as_graph_documents() {
        assert!(matches!(
            judge(204, None, None, &base()),
            Verdict::Done(None)
        ));
        assert!(matches!(
            judge(429, Some(Duration::from_secs(9)), None, &base()),
            Verdict::Throttled { retry_after, .. } if retry_after == Duration::from_secs(9)
        ));
        assert!(matches!(
            judge(503, None, None, &base()),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(401, None, None, &base()),
            Verdict::TokenRejected(_)
        ));
        let forbidden = json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}});
        let Verdict::Failed(error) = judge(403, None, Some(forbidden), &base()) else {
            panic!("403 is final");
        };
        assert_eq!(error.kind(), super::super::error::ErrorKind::Forbidden);
        assert!(error.to_string().contains("Insufficient privileges"));
    }

    #[test]
    fn snippets_are_short_and_single_line() {
        let html = b"<html>\n<body>Sign in</body></html>";
        assert_eq!(snippet(html), "'<html> <body>Sign in</body></html>'");
        assert!(snippet(&[b'x'; 500]).ends_with("…'"));
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::super::*;

        /// Any JSON value, nested a few levels: what a server may send as an error body.
        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::String),
                Just(Value::String("ObjectConflict".to_owned())),
                Just(Value::String("Request_BadRequest".to_owned())),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                let key = prop_oneof![
                    Just("error".to_owned()),
                    Just("code".to_owned()),
                    Just("message".to_owned()),
                    Just("details".to_owned()),
                    Just("target".to_owned()),
                    Just("innerError".to_owned()),
                    any::<String>(),
                ];
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    proptest::collection::btree_map(key, inner, 0..6)
                        .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Graph's error bodies, whatever their shape: a verdict, never a panic.
            #[test]
            fn any_error_body_gets_a_verdict(
                status in 100u16..600,
                retry_after_secs in proptest::option::of(any::<u64>()),
                body in proptest::option::of(any_json()),
            ) {
                let base = Url::parse("https://graph.microsoft.com/v1.0/").expect("URL");
                let retry_after = retry_after_secs.map(Duration::from_secs);
                let verdict = judge(status, retry_after, body, &base);
                let _ = format!("{verdict:?}");
            }

            /// The same as bytes on the wire: JSON or not, the client decides without panicking.
            #[test]
            fn any_error_bytes_get_a_verdict(
                status in 100u16..600,
                bytes in proptest::collection::vec(any::<u8>(), 0..200),
            ) {
                let body = serde_json::from_slice::<Value>(&bytes).ok();
                let base = Url::parse("https://graph.microsoft.com/v1.0/").expect("URL");
                let _ = judge(status, None, body, &base);
            }
        }
    }
}
