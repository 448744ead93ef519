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

/// Graph runs a batch either fully parallel (no request has `dependsOn`) or fully sequential
/// (every request but the first depends on another); a mix is refused with 400 "Batch should
/// be either fully sequential or fully parallel." (reported against the json-batching page,
/// https://github.com/microsoftgraph/microsoft-graph-docs/issues/16280, and fixed there).
fn check_sequencing(requests: &[Inner]) -> Result<(), GraphError> {
    let independent = requests.iter().filter(|r| r.depends_on.is_empty()).count();
    if independent < requests.len() && independent > 1 {
        return Err(invalid(
            "Batch should be either fully sequential or fully parallel.",
        ));
    }
    Ok(())
}

/// A permutation of `0..n` by `key`, never the identity when `n > 1`: clients must not rely on
/// the order of the batch.
fn shuffled(n: usize, key: impl Fn(usize) -> String) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_cached_key(|i| key(*i));
    if n > 1 && order.iter().enumerate().all(|(at, i)| at == *i) {
        order.rotate_left(1);
    }
    order
}

/// The order to run the requests in: each after what it depends on, the independent ones in
/// a shuffled order (seeded by the batch's request id) rather than the order of the array,
/// since Graph may run them in any order, or at once.
fn order(requests: &[Inner], seed: &str) -> Result<Vec<usize>, GraphError> {
    let preference = shuffled(requests.len(), |i| {
        util::digest(seed, &["run", &requests[i].id])
    });
    let mut done: Vec<usize> = Vec::new();
    while done.len() < requests.len() {
        let ready = preference.iter().copied().find(|i| {
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
    let planned = parse(outer).and_then(|parsed| {
        check_sequencing(&parsed)?;
        let sequence = order(&parsed, &outer.request_id)?;
        Ok((parsed, sequence))
    });
    let (requests, sequence) = match planned {
        Ok(planned) => planned,
        Err(error) => return error.into_response(outer),
    };
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
    let mut responses: Vec<Option<Value>> = requests
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
            Some(Value::Object(entry))
        })
        .collect();
    // Graph answers in whatever order it finished: keep clients from relying on order.
    let answer_order = shuffled(requests.len(), |i| {
        util::digest(&outer.request_id, &["answer", &requests[i].id])
    });
    let responses: Vec<Value> = answer_order
        .into_iter()
        .filter_map(|i| responses.get_mut(i).and_then(Option::take))
        .collect();
    GraphResponse::ok(json!({ "responses": responses }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, depends_on: &[&str]) -> Inner {
        Inner {
            id: id.to_owned(),
            method: "GET".into(),
            url: "/domains".into(),
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            headers: Vec::new(),
            body: None,
        }
    }

    #[test]
    fn independent_requests_run_in_a_shuffled_order_dependent_ones_after_their_dependency() {
        let parallel: Vec<Inner> = (0..5).map(|n| request(&n.to_string(), &[])).collect();
        for seed in ["a", "b", "c", "d"] {
            let sequence = order(&parallel, seed).expect("no cycle");
            assert_ne!(sequence, vec![0, 1, 2, 3, 4], "seed {seed}");
            let mut sorted = sequence.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        }
        // Two requests: never in array order either.
        let two = [request("1", &[]), request("2", &[])];
        for seed in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(order(&two, seed).expect("ok"), vec![1, 0]);
        }
        let chain = [
            request("1", &[]),
            request("2", &["1"]),
            request("4", &["2"]),
            request("3", &["4"]),
        ];
        assert_eq!(order(&chain, "x").expect("ok"), vec![0, 1, 2, 3]);
        let cycle = [request("1", &["2"]), request("2", &["1"])];
        assert!(order(&cycle, "x").is_err());
    }

    #[test]
    fn a_batch_is_fully_parallel_or_fully_sequential() {
        let parallel = [request("1", &[]), request("2", &[]), request("3", &[])];
        assert!(check_sequencing(&parallel).is_ok());
        let sequential = [
            request("1", &[]),
            request("2", &["1"]),
            request("3", &["2"]),
        ];
        assert!(check_sequencing(&sequential).is_ok());
        let same = [
            request("1", &[]),
            request("2", &["1"]),
            request("3", &["1"]),
        ];
        assert!(check_sequencing(&same).is_ok());
        let mixed = [request("1", &[]), request("2", &["1"]), request("3", &[])];
        let error = check_sequencing(&mixed).expect_err("mixed");
        assert_eq!(
            (error.status, error.message.as_str()),
            (
                400,
                "Batch should be either fully sequential or fully parallel."
            )
        );
    }
}
