//! Graph's error body: `{"error":{"code","message","innerError":{"date","request-id",
//! "client-request-id"}[,"details":[…]]}}`
//! (https://learn.microsoft.com/en-us/graph/errors).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{GraphRequest, GraphResponse};
use crate::model::Kind;
use crate::util::{inner_error_date, retry_after_secs, unix_now};

#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub extra: Box<Extra>,
}

/// The less common parts of an error, boxed to keep `Result`s small.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub details: Vec<Value>,
    pub headers: Vec<(String, String)>,
    /// More members of `innerError`.
    pub inner: Vec<(String, Value)>,
}

impl GraphError {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        GraphError {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            extra: Box::default(),
        }
    }

    pub fn bad_request(code: &str, message: &str) -> Self {
        GraphError::new(400, code, message)
    }

    /// 404 `Request_ResourceNotFound`.
    pub fn not_found(id: &str) -> Self {
        GraphError::new(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    /// 403 `Authorization_RequestDenied`.
    pub fn forbidden() -> Self {
        GraphError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    /// 400 `Request_BadRequest` for a uniqueness conflict, with the `ObjectConflict` detail.
    pub fn conflict(property: &str) -> Self {
        let message =
            format!("Another object with the same value for property {property} already exists.");
        let mut error = GraphError::new(400, "Request_BadRequest", &message);
        error.extra.details = vec![
            json!({"code": "ObjectConflict", "message": message, "target": property}),
            json!({"code": "ConflictingObjects", "message": message, "target": "ConflictingObjects"}),
        ];
        error
    }

    /// 400 for a property Graph does not let anyone write.
    pub fn read_only(property: &str) -> Self {
        GraphError::new(
            400,
            "Request_BadRequest",
            &format!("Property '{property}' is read-only and cannot be set."),
        )
    }

    /// 400 `Request_BadRequest` "Invalid value specified for property 'x' of resource 'User'."
    pub fn invalid_value(kind: Kind, property: &str) -> Self {
        let mut error = GraphError::new(
            400,
            "Request_BadRequest",
            &format!(
                "Invalid value specified for property '{property}' of resource '{}'.",
                kind.resource_name()
            ),
        );
        error.extra.details = vec![json!({"code": "InvalidValue", "target": property})];
        error
    }

    /// 400 for a missing required property.
    pub fn required(property: &str) -> Self {
        GraphError::new(
            400,
            "Request_BadRequest",
            &format!("Property {property} value is required but is empty or missing."),
        )
    }

    /// 400 for a property the type does not have.
    pub fn unknown_property(kind: Kind, property: &str) -> Self {
        GraphError::new(
            400,
            "BadRequest",
            &format!(
                "The property '{property}' does not exist on type '{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                kind.type_name()
            ),
        )
    }

    /// 400 `Directory_QuotaExceeded`: a create in a tenant whose directory size quota is used
    /// up (the service limits page; the code and message as Entra reports them).
    pub fn quota_exceeded() -> Self {
        GraphError::new(
            400,
            "Directory_QuotaExceeded",
            "The directory object quota limit for the Tenant has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.",
        )
    }

    pub fn unsupported_query(message: &str) -> Self {
        GraphError::new(400, "Request_UnsupportedQuery", message)
    }

    /// 429 `TooManyRequests` with `Retry-After` and the identity service's throttling headers.
    pub fn throttled(wait: Duration, scope: &str, client_id: &str, information: &str) -> Self {
        // The sample response of https://learn.microsoft.com/en-us/graph/throttling
        let mut error = GraphError::new(429, "TooManyRequests", "Please retry again later.");
        error.extra.inner = vec![
            ("code".into(), json!("429")),
            ("message".into(), json!("Please retry after")),
            ("status".into(), json!("429")),
        ];
        error.extra.headers = vec![
            ("Retry-After".into(), retry_after_secs(wait).to_string()),
            ("x-ms-throttle-scope".into(), format!("{scope}/{client_id}")),
            ("x-ms-throttle-information".into(), information.to_owned()),
        ];
        error
    }

    /// 503 `serviceNotAvailable` with `Retry-After: 1`.
    pub fn unavailable() -> Self {
        let mut error = GraphError::new(
            503,
            "serviceNotAvailable",
            "The service is not available. Try the request again after a delay. There may be a Retry-After header.",
        );
        error.extra.headers = vec![("Retry-After".into(), "1".into())];
        error
    }

    /// The error object for a request.
    pub fn body(&self, req: &GraphRequest) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        let mut inner = json!({
            "date": inner_error_date(unix_now()),
            "request-id": req.request_id,
            "client-request-id": req.client_request_id.clone().unwrap_or_else(|| req.request_id.clone()),
        });
        for (key, value) in &self.extra.inner {
            inner[key] = value.clone();
        }
        error.insert("innerError".into(), inner);
        if !self.extra.details.is_empty() {
            error.insert("details".into(), Value::Array(self.extra.details.clone()));
        }
        json!({ "error": error })
    }

    pub fn into_response(self, req: &GraphRequest) -> GraphResponse {
        let body = self.body(req);
        GraphResponse {
            status: self.status,
            headers: self.extra.headers,
            body: Some(body),
        }
    }
}
