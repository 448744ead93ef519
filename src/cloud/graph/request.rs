//! One Graph request as data: its method, path, query and body, and how to look an object up.

use serde_json::Value;
use url::Url;

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    pub(super) fn is_write(self) -> bool {
        self != Method::Get
    }

    pub(super) fn reqwest(self) -> reqwest::Method {
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

    /// A create (`POST /users`, `POST /groups`): sent twice, it may make two objects, so an
    /// answer that is lost is never answered by sending it again (see `GraphError::OutcomeUnknown`).
    pub fn is_create(&self) -> bool {
        self.method == Method::Post
            && matches!(self.segments.as_slice(), [collection] if collection == "users" || collection == "groups")
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

    pub(super) fn eventual(mut self) -> Self {
        self.eventual = true;
        self
    }

    pub(super) fn url(&self, base: &Url) -> Url {
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
    pub(super) fn relative_url(&self) -> String {
        let base = Url::parse("http://relative.invalid/").expect("constant URL");
        let url = self.url(&base);
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }
}

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
    /// Graph answers this filter only as an advanced query (eventually consistent).
    pub(super) fn needs_advanced_query(&self) -> bool {
        matches!(self, CloudQuery::Equals { property, .. } if *property == "onPremisesImmutableId")
    }

    pub(super) fn filter(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
