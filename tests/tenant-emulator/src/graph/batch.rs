//! `POST /$batch`: up to 20 requests, each judged (authorized, throttled, faulted) alone,
//! `dependsOn` honoured (a failed dependency makes 424), responses in no particular order.
//! https://learn.microsoft.com/en-us/graph/json-batching

use serde_json::{Map, Value, json};

use super::{GraphError, GraphRequest, GraphResponse, execute};
use crate::app::{App, Stats};
use crate::identity::Caller;
use crate::util;

const MAX_REQUESTS: usize = 20;

struct Inner {
    id: String,
    method: String,
    url: String,
    depends_on: Vec<String>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn invalid(message: &str) -> GraphError {
    GraphError::bad_request("BadRequest", message)
}

fn parse(outer: &GraphRequest) -> Result<Vec<Inner>, GraphError> {
    let body = outer.json_body()?;
    let Some(Value::Array(requests)) = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("requests"))
        .map(|(_, v)| v)
    else {
        return Err(invalid("Invalid batch payload format."));
    };
    if requests.is_empty() {
        return Err(invalid("Invalid batch payload format."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(invalid("Number of requests inside batch exceed the limit."));
    }
    let mut parsed = Vec::new();
    for request in requests {
        let Some(request) = request.as_object() else {
            return Err(invalid("Invalid batch payload format."));
        };
        let field = |name: &str| {
            request
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let id = match field("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("Every request of a batch needs an 'id'.")),
        };
        let Some(method) = field("method").and_then(Value::as_str) else {
            return Err(invalid(&format!(
                "The request '{id}' of the batch has no 'method'."
            )));
        };
        let Some(url) = field("url").and_then(Value::as_str) else {
            return Err(invalid(&format!(
                "The request '{id}' of the batch has no 'url'."
            )));
        };
        let depends_on = match field("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid("'dependsOn' must list request ids."))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("'dependsOn' must list request ids.")),
        };
        let headers = match field("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect(),
            Some(_) => {
                return Err(invalid(&format!(
                    "The headers of request '{id}' must be an object."
                )));
            }
        };
        if parsed
            .iter()
            .any(|p: &Inner| p.id.eq_ignore_ascii_case(&id))
        {
            return Err(invalid(&format!(
                "The batch contains the request id '{id}' more than once."
            )));
        }
        parsed.push(Inner {
            id,
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            depends_on,
            headers,
            body: field("body").cloned(),
        });
    }
    for request in &parsed {
        for dependency in &request.depends_on {
            if !parsed.iter().any(|p| p.id.eq_ignore_ascii_case(dependency)) {
                return Err(invalid(&format!(
                    "The request '{}' depends on '{dependency}', which is not in the batch.",
                    request.id
                )));
            }
        }
    }
    Ok(parsed)
}

/// Orders the requests so that each comes after what it depends on.
fn order(requests: &[Inner]) -> Result<Vec<usize>, GraphError> {
    let mut done: Vec<usize> = Vec::new();
    while done.len() < requests.len() {
        let ready = (0..requests.len()).find(|i| {
            !done.contains(i)
                && requests[*i]
                    .depends_on
                    .iter()
                    .all(|d| done.iter().any(|j| requests[*j].id.eq_ignore_ascii_case(d)))
        });
        match ready {
            Some(i) => done.push(i),
            None => {
                return Err(invalid(
                    "The dependencies of the batch requests form a cycle.",
                ));
            }
        }
    }
    Ok(done)
}

fn run_one(app: &App, caller: &Caller, outer: &GraphRequest, request: &Inner) -> GraphResponse {
    let relative = request.url.trim();
    let mut headers = request.headers.clone();
    if let Some(id) = &outer.client_request_id
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("client-request-id"))
    {
        headers.push(("client-request-id".into(), id.clone()));
    }
    let body = request
        .body
        .as_ref()
        .map(|b| serde_json::to_vec(b).unwrap_or_default());
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let inner = GraphRequest::new(
        &request.method,
        &format!("/{}", path.trim_start_matches('/')),
        query,
        &headers,
        body,
    );
    if relative.contains("://") {
        Stats::bump(&app.stats.requests);
        return invalid("The url of a batch request must be relative, for example '/users'.")
            .into_response(&inner);
    }
    if inner
        .segments
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("$batch"))
    {
        Stats::bump(&app.stats.requests);
        return invalid("A batch cannot contain another batch.").into_response(&inner);
    }
    let mut response = execute(app, caller, &inner);
    response
        .headers
        .push(("OData-Version".into(), "4.0".into()));
    response
        .headers
        .push(("Cache-Control".into(), "no-cache".into()));
    response
}

// https://learn.microsoft.com/en-us/graph/json-batching
/// `POST /$batch`
pub fn batch(app: &App, caller: &Caller, outer: &GraphRequest) -> GraphResponse {
    Stats::bump(&app.stats.requests);
    let requests = match parse(outer).and_then(|parsed| order(&parsed).map(|order| (parsed, order)))
    {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(outer),
    };
    let (requests, sequence) = requests;
    let mut results: Vec<Option<GraphResponse>> = vec![None; requests.len()];
    for index in sequence {
        let request = &requests[index];
        let failed_dependency = request.depends_on.iter().any(|d| {
            requests
                .iter()
                .position(|r| r.id.eq_ignore_ascii_case(d))
                .and_then(|j| results[j].as_ref())
                .is_some_and(|r| r.status >= 400)
        });
        let response = if failed_dependency {
            let inner = GraphRequest::new(&request.method, "/", "", &request.headers, None);
            GraphError::new(
                424,
                "FailedDependency",
                "The request failed because a request it depends on failed.",
            )
            .into_response(&inner)
        } else {
            run_one(app, caller, outer, request)
        };
        results[index] = Some(response);
    }
    let mut responses: Vec<(String, Value)> = requests
        .iter()
        .zip(results)
        .map(|(request, response)| {
            let response = response.unwrap_or_else(GraphResponse::no_content);
            let mut headers = Map::new();
            for (name, value) in &response.headers {
                headers.insert(name.clone(), json!(value));
            }
            let mut entry = Map::new();
            entry.insert("id".into(), json!(request.id));
            entry.insert("status".into(), json!(response.status));
            entry.insert("headers".into(), Value::Object(headers));
            if let Some(body) = response.body {
                entry.insert("body".into(), body);
            }
            // Graph answers in whatever order it finished: keep clients from relying on order.
            (
                util::digest(&outer.request_id, &[&request.id]),
                Value::Object(entry),
            )
        })
        .collect();
    responses.sort_by(|a, b| a.0.cmp(&b.0));
    GraphResponse::ok(
        json!({"responses": responses.into_iter().map(|(_, v)| v).collect::<Vec<_>>()}),
    )
}
