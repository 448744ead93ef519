//! `$batch`: up to 20 requests in one exchange, each part judged and retried on its own
//! (https://learn.microsoft.com/en-us/graph/json-batching).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::transport::{Verdict, given_up, judge, with_conflicting_value};
use super::{GraphClient, GraphError, GraphRequest, GraphResult, Method};
use crate::cloud::http::parse_retry_after;

/// Graph's limit on requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;

impl GraphClient {
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
        // Collected first so that no closure stays in the stream (which would keep the caller's
        // future from being `Send`).
        let sends: Vec<_> = chunks
            .into_iter()
            .map(|chunk| self.send_batch(requests, chunk))
            .collect();
        let answered: Vec<Vec<(usize, GraphResult)>> = futures::stream::iter(sends)
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
            let creates = pending.iter().any(|&index| requests[index].is_create());
            let answer = match self
                .execute_once_if_unanswered(
                    Method::Post,
                    url,
                    Some(&body),
                    false,
                    writes as u32,
                    creates,
                )
                .await
            {
                Ok(answer) => answer,
                Err(error @ GraphError::OutcomeUnknown { .. }) => {
                    // The creates may have been made: they are not sent again. The other parts
                    // are safe to send again (an update writes the same values twice).
                    let (unknown, others): (Vec<usize>, Vec<usize>) = pending
                        .into_iter()
                        .partition(|&index| requests[index].is_create());
                    done.extend(unknown.into_iter().map(|index| (index, Err(error.clone()))));
                    if others.is_empty() {
                        return done;
                    }
                    attempt += 1;
                    self.flow.retrying();
                    tokio::time::sleep(self.flow.backoff(attempt)).await;
                    pending = others;
                    continue;
                }
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
                let create = requests[index].is_create();
                let Some(response) = by_index.remove(&index) else {
                    if create {
                        let last = "the batch's answer had no part for this create".to_owned();
                        done.push((index, Err(GraphError::OutcomeUnknown { last })));
                    } else {
                        again.push(index);
                        throttled_only = false;
                    }
                    continue;
                };
                match self.judge_part(&response) {
                    Verdict::Retry { last, .. } if create => {
                        self.flow.server_error();
                        done.push((index, Err(GraphError::OutcomeUnknown { last })));
                    }
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
