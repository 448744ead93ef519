//! Replays request/response examples taken from Microsoft Graph's and the Microsoft identity
//! platform's documentation against the tenant emulator.
//!
//! Each file under `fixtures/` is one documented example (`<doc-page-slug>--<short-name>.json`, the
//! format is described in `fixtures/README.md`). For every fixture a fresh emulator is started
//! in-process, the fixture's setup requests run, then its request, and the answer is compared with
//! the documented one:
//!
//! - the status must be equal;
//! - every header named in the documented response must be present, with the same value unless
//!   the value is `"*"`;
//! - the documented body must be contained in the emulator's body: objects key by key, recursively
//!   (extra keys in the emulator's answer are fine); arrays of objects element by element in any
//!   order (each documented element must match a different element of the answer; extra elements
//!   are fine, `lengths` pins a count); other arrays position by position with equal length; an
//!   empty documented array requires an empty answer; strings, numbers, booleans and null exactly,
//!   `error.message` included;
//! - keys listed in `generated` (ids, timestamps, request ids) must be present, their values are not
//!   compared; the matchers `{"$any": true}`, `{"$prefix": "…"}` and `{"$contains": "…"}` do the
//!   same for one value;
//! - `absent` lists JSON pointers the documentation says the answer does not carry;
//! - an expected `204` requires an empty body.
//!
//! Every fixture runs, and the test then reports all failing fixtures with their differences
//! before it fails, so one run tells the emulator's author everything that is missing. A fixture
//! the emulator cannot satisfy yet fails loudly; none is skipped. `DOC_EXAMPLES=substring` runs
//! only the fixtures whose file name contains the substring.
//!
//! The HTTP client is a small HTTP/1.1 one over `std::net::TcpStream`: the emulator listens on
//! loopback without TLS, and the crate's `reqwest` dev-dependency (feature `rustls-no-provider`)
//! panics when a client is built without a process-wide rustls crypto provider installed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tenant_emulator::{EmulatorConfig, RunningEmulator};

/// Microsoft Graph Command Line Tools: the public client the delegated administrator signs in with.
const GRAPH_CLI_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// The delegated scopes the administrator's token asks for (setup-wizard work).
const ADMIN_SCOPES: &str = "https://graph.microsoft.com/Directory.ReadWrite.All \
    https://graph.microsoft.com/User.ReadWrite.All https://graph.microsoft.com/Group.ReadWrite.All \
    https://graph.microsoft.com/Application.ReadWrite.All \
    https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All \
    https://graph.microsoft.com/OnPremDirectorySynchronization.ReadWrite.All \
    https://graph.microsoft.com/Organization.Read.All https://graph.microsoft.com/Domain.Read.All \
    offline_access";

const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_PAGES: usize = 1_000;

#[test]
fn documented_examples_replay_against_the_emulator() {
    let fixtures = load_fixtures().unwrap_or_else(|error| panic!("{error}"));
    assert!(
        !fixtures.is_empty(),
        "no fixtures under {}",
        fixtures_dir().display()
    );

    let mut report = String::new();
    let mut failed = Vec::new();
    for fixture in &fixtures {
        let failures = run_fixture(fixture);
        if failures.is_empty() {
            println!("pass  {}", fixture.name);
        } else {
            println!("FAIL  {}", fixture.name);
            let _ = writeln!(
                report,
                "\n✗ {}\n  page:    {}\n  example: {}",
                fixture.name, fixture.page, fixture.example
            );
            for failure in &failures {
                let _ = writeln!(report, "  - {}", failure.replace('\n', "\n    "));
            }
            failed.push(fixture.name.clone());
        }
    }
    if !failed.is_empty() {
        println!("{report}");
        panic!(
            "{} of {} documented examples failed against the emulator:\n  {}\n(differences above)",
            failed.len(),
            fixtures.len(),
            failed.join("\n  ")
        );
    }
}

/// Every fixture parses, names its page, and is named after that page.
#[test]
fn fixtures_are_well_formed() {
    let fixtures = load_fixtures().unwrap_or_else(|error| panic!("{error}"));
    let mut problems = Vec::new();
    for fixture in &fixtures {
        if !fixture.page.starts_with("https://learn.microsoft.com/") {
            problems.push(format!(
                "{}: page is not a learn.microsoft.com page: {}",
                fixture.name, fixture.page
            ));
        }
        let slug = page_slug(&fixture.page);
        if !fixture.name.starts_with(&format!("{slug}--")) {
            problems.push(format!(
                "{}: file name should start with '{slug}--'",
                fixture.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "malformed fixtures:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Principal {
    /// The emulator's pre-registered sync app (client credentials).
    App,
    /// The global administrator, delegated (password grant through the Graph CLI public client).
    Admin,
    /// No token.
    None,
}

#[derive(Debug)]
struct Fixture {
    name: String,
    page: String,
    example: String,
    principal: Principal,
    auto_approve: bool,
    setup: Vec<Step>,
    request: Step,
    response: Expect,
    generated: Vec<String>,
    then: Vec<Check>,
}

#[derive(Debug)]
struct Step {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    principal: Option<Principal>,
    /// Variable name → JSON pointer into the answer.
    save: Vec<(String, String)>,
    follow_next_links: bool,
    repeat: Option<Repeat>,
    /// For setup steps: the status that must come back (any 2xx when not given).
    expect_status: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
struct Repeat {
    until_status: u16,
    max: usize,
}

#[derive(Debug)]
struct Expect {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    absent: Vec<String>,
    lengths: Vec<(String, usize)>,
}

#[derive(Debug)]
struct Check {
    request: Step,
    response: Expect,
    generated: Vec<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn load_fixtures() -> Result<Vec<Fixture>, String> {
    let dir = fixtures_dir();
    let entries = std::fs::read_dir(&dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let only = std::env::var("DOC_EXAMPLES").ok();
    let mut fixtures = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_deref().is_some_and(|only| !name.contains(only)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{name}: {error}"))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|error| format!("{name}: not JSON: {error}"))?;
        fixtures
            .push(parse_fixture(name.clone(), &value).map_err(|error| format!("{name}: {error}"))?);
    }
    Ok(fixtures)
}

fn parse_fixture(name: String, value: &Value) -> Result<Fixture, String> {
    let object = as_object(value, "fixture")?;
    check_keys(
        object,
        &[
            "page",
            "example",
            "source",
            "note",
            "as",
            "emulator",
            "setup",
            "request",
            "response",
            "generated",
            "then",
        ],
        "fixture",
    )?;
    let mut auto_approve = true;
    if let Some(emulator) = object.get("emulator") {
        let emulator = as_object(emulator, "emulator")?;
        check_keys(emulator, &["auto_approve"], "emulator")?;
        if let Some(flag) = emulator.get("auto_approve") {
            auto_approve = flag
                .as_bool()
                .ok_or("emulator.auto_approve must be a boolean")?;
        }
    }
    let setup = match object.get("setup") {
        Some(steps) => as_array(steps, "setup")?
            .iter()
            .map(parse_step)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let then = match object.get("then") {
        Some(checks) => as_array(checks, "then")?
            .iter()
            .map(parse_check)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Fixture {
        name,
        page: required_str(object, "page")?.to_owned(),
        example: required_str(object, "example")?.to_owned(),
        principal: parse_principal(object.get("as").ok_or("missing \"as\"")?)?,
        auto_approve,
        setup,
        request: parse_step(object.get("request").ok_or("missing \"request\"")?)?,
        response: parse_expect(object.get("response").ok_or("missing \"response\"")?)?,
        generated: parse_strings(object.get("generated"), "generated")?,
        then,
    })
}

fn parse_check(value: &Value) -> Result<Check, String> {
    let object = as_object(value, "then[]")?;
    check_keys(object, &["request", "response", "generated"], "then[]")?;
    Ok(Check {
        request: parse_step(object.get("request").ok_or("then[]: missing \"request\"")?)?,
        response: parse_expect(
            object
                .get("response")
                .ok_or("then[]: missing \"response\"")?,
        )?,
        generated: parse_strings(object.get("generated"), "then[].generated")?,
    })
}

fn parse_step(value: &Value) -> Result<Step, String> {
    let object = as_object(value, "request")?;
    check_keys(
        object,
        &[
            "method",
            "url",
            "headers",
            "body",
            "as",
            "save_id_as",
            "save",
            "follow_next_links",
            "repeat",
            "expect_status",
        ],
        "request",
    )?;
    let mut save = Vec::new();
    if let Some(name) = object.get("save_id_as") {
        let name = name.as_str().ok_or("save_id_as must be a string")?;
        save.push((name.to_owned(), "/id".to_owned()));
    }
    if let Some(pointers) = object.get("save") {
        for (name, pointer) in as_object(pointers, "save")? {
            let pointer = pointer
                .as_str()
                .ok_or("save values must be JSON pointers")?;
            save.push((name.clone(), pointer.to_owned()));
        }
    }
    let repeat = match object.get("repeat") {
        Some(repeat) => {
            let repeat = as_object(repeat, "repeat")?;
            check_keys(repeat, &["until_status", "max"], "repeat")?;
            Some(Repeat {
                until_status: repeat
                    .get("until_status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or("repeat.until_status must be a status code")?,
                max: repeat
                    .get("max")
                    .and_then(Value::as_u64)
                    .and_then(|m| usize::try_from(m).ok())
                    .ok_or("repeat.max must be a count")?,
            })
        }
        None => None,
    };
    Ok(Step {
        method: required_str(object, "method")?.to_owned(),
        url: required_str(object, "url")?.to_owned(),
        headers: parse_headers(object.get("headers"))?,
        body: object.get("body").cloned(),
        principal: object.get("as").map(parse_principal).transpose()?,
        save,
        follow_next_links: object
            .get("follow_next_links")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        repeat,
        expect_status: object
            .get("expect_status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok()),
    })
}

fn parse_expect(value: &Value) -> Result<Expect, String> {
    let object = as_object(value, "response")?;
    check_keys(
        object,
        &["status", "headers", "body", "absent", "lengths"],
        "response",
    )?;
    let mut lengths = Vec::new();
    if let Some(map) = object.get("lengths") {
        for (pointer, length) in as_object(map, "lengths")? {
            let length = length
                .as_u64()
                .and_then(|l| usize::try_from(l).ok())
                .ok_or("lengths values must be counts")?;
            lengths.push((pointer.clone(), length));
        }
    }
    Ok(Expect {
        status: object
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("response.status must be a status code")?,
        headers: parse_headers(object.get("headers"))?,
        body: object.get("body").cloned(),
        absent: parse_strings(object.get("absent"), "absent")?,
        lengths,
    })
}

fn parse_principal(value: &Value) -> Result<Principal, String> {
    match value.as_str() {
        Some("app") => Ok(Principal::App),
        Some("admin") => Ok(Principal::Admin),
        Some("none") => Ok(Principal::None),
        _ => Err(format!(
            "\"as\" must be \"app\", \"admin\" or \"none\", not {value}"
        )),
    }
}

fn parse_headers(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    as_object(value, "headers")?
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .ok_or_else(|| format!("header {name} must be a string"))?;
            Ok((name.clone(), value.to_owned()))
        })
        .collect()
}

fn parse_strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    as_array(value, what)?
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{what} must list strings"))
        })
        .collect()
}

fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

fn as_array<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} must be an array"))
}

fn required_str<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string \"{key}\""))
}

fn check_keys(object: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(format!("{what}: unknown key \"{key}\"")),
        None => Ok(()),
    }
}

/// `https://learn.microsoft.com/en-us/graph/api/user-post-users?view=graph-rest-1.0` → `user-post-users`;
/// a resource page (`…/api/resources/user`) → `resources-user`.
fn page_slug(page: &str) -> String {
    let path = page
        .split(['?', '#'])
        .next()
        .unwrap_or(page)
        .trim_end_matches('/');
    let mut segments = path.rsplit('/');
    let last = segments.next().unwrap_or_default();
    match segments.next() {
        Some("resources") => format!("resources-{last}"),
        _ => last.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Running one fixture

/// What the emulator announced when it became ready, as strings.
#[derive(Debug, Clone)]
struct Tenant {
    authority: String,
    graph: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    admin_user: String,
    admin_password: String,
}

struct Run<'a> {
    tenant: Tenant,
    vars: HashMap<String, String>,
    tokens: HashMap<Principal, String>,
    fixture: &'a Fixture,
}

fn run_fixture(fixture: &Fixture) -> Vec<String> {
    let config = EmulatorConfig {
        // The pages' tenant: contoso.onmicrosoft.com, with contoso.com verified.
        initial_domain: "contoso.onmicrosoft.com".into(),
        verified_domains: vec!["contoso.com".into()],
        auto_approve: fixture.auto_approve,
        ..EmulatorConfig::default()
    };
    let emulator = match RunningEmulator::start(config) {
        Ok(emulator) => emulator,
        Err(error) => return vec![format!("the emulator did not start: {error}")],
    };
    let info = &emulator.info;
    let tenant = Tenant {
        authority: info.authority.trim_end_matches('/').to_owned(),
        graph: info.graph.trim_end_matches('/').to_owned(),
        tenant_id: info.tenant_id.clone(),
        client_id: info.client_id.clone(),
        client_secret: info.client_secret.clone(),
        admin_user: info.admin_user.clone(),
        admin_password: info.admin_password.clone(),
    };
    let mut run = Run {
        tenant,
        vars: HashMap::new(),
        tokens: HashMap::new(),
        fixture,
    };
    let failures = run.execute();
    emulator.stop();
    failures
}

impl Run<'_> {
    fn execute(&mut self) -> Vec<String> {
        let fixture = self.fixture;
        for (index, step) in fixture.setup.iter().enumerate() {
            let label = format!("setup[{index}] {} {}", step.method, step.url);
            let response = match self.send_step(step) {
                Ok(response) => response,
                Err(error) => return vec![format!("{label}: {error}")],
            };
            let status_ok = match step.expect_status {
                Some(status) => response.status == status,
                None => (200..300).contains(&response.status),
            };
            if !status_ok {
                return vec![format!(
                    "{label}: setup failed with status {} (expected {}); body: {}",
                    response.status,
                    step.expect_status
                        .map_or_else(|| "2xx".to_owned(), |s| s.to_string()),
                    response.snippet()
                )];
            }
            if let Err(error) = self.save(step, &response) {
                return vec![format!("{label}: {error}")];
            }
        }

        let mut failures = Vec::new();
        let label = format!("request {} {}", fixture.request.method, fixture.request.url);
        match self.send_step(&fixture.request) {
            Ok(response) => {
                let differences =
                    self.compare_response(&fixture.response, &response, &fixture.generated);
                failures.extend(
                    differences
                        .into_iter()
                        .map(|difference| format!("{label}: {difference}")),
                );
                if let Err(error) = self.save(&fixture.request, &response) {
                    failures.push(format!("{label}: {error}"));
                }
            }
            Err(error) => failures.push(format!("{label}: {error}")),
        }
        if !failures.is_empty() {
            return failures;
        }

        for (index, check) in fixture.then.iter().enumerate() {
            let label = format!(
                "then[{index}] {} {}",
                check.request.method, check.request.url
            );
            match self.send_step(&check.request) {
                Ok(response) => {
                    let differences =
                        self.compare_response(&check.response, &response, &check.generated);
                    failures.extend(
                        differences
                            .into_iter()
                            .map(|difference| format!("{label}: {difference}")),
                    );
                    if let Err(error) = self.save(&check.request, &response) {
                        failures.push(format!("{label}: {error}"));
                    }
                }
                Err(error) => failures.push(format!("{label}: {error}")),
            }
        }
        failures
    }

    fn save(&mut self, step: &Step, response: &HttpResponse) -> Result<(), String> {
        if step.save.is_empty() {
            return Ok(());
        }
        let body = response
            .json()
            .map_err(|error| format!("cannot save values: {error}"))?;
        for (name, pointer) in &step.save {
            let value = body.pointer(pointer).ok_or_else(|| {
                format!(
                    "cannot save {name}: the answer has no {pointer} (body: {})",
                    response.snippet()
                )
            })?;
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            self.vars.insert(name.clone(), text);
        }
        Ok(())
    }

    /// Sends a step (repeating it or following its next links when it asks to).
    fn send_step(&mut self, step: &Step) -> Result<HttpResponse, String> {
        let principal = step.principal.unwrap_or(self.fixture.principal);
        if let Some(repeat) = step.repeat {
            let mut last = None;
            for attempt in 1..=repeat.max {
                let response = self.send_once(step, principal, Some(attempt))?;
                let done = response.status == repeat.until_status
                    || !(200..300).contains(&response.status);
                last = Some(response);
                if done {
                    break;
                }
            }
            return last.ok_or_else(|| "repeat.max is 0".to_owned());
        }
        let first = self.send_once(step, principal, None)?;
        if step.follow_next_links && first.status == 200 {
            return self.follow_next_links(first, principal);
        }
        Ok(first)
    }

    fn send_once(
        &mut self,
        step: &Step,
        principal: Principal,
        attempt: Option<usize>,
    ) -> Result<HttpResponse, String> {
        let url = self.url(&self.substitute(&step.url, attempt)?);
        let mut headers = Vec::new();
        for (name, value) in &step.headers {
            headers.push((name.clone(), self.substitute(value, attempt)?));
        }
        if principal != Principal::None
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            let token = self.token(principal)?;
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        let body = match &step.body {
            Some(body) => Some(encode_body(
                &self.substitute_value(body, attempt)?,
                &headers,
            )?),
            None => None,
        };
        http(&step.method, &url, &headers, body.as_deref())
    }

    /// Follows `@odata.nextLink` until the last page; the result is the last page with the
    /// `value` arrays of all pages merged.
    fn follow_next_links(
        &mut self,
        first: HttpResponse,
        principal: Principal,
    ) -> Result<HttpResponse, String> {
        let mut page = first;
        let mut body = page.json()?;
        let mut values: Vec<Value> = body
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for _ in 0..MAX_PAGES {
            let Some(next) = body
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                if let Some(object) = body.as_object_mut() {
                    object.insert("value".to_owned(), Value::Array(values));
                }
                page.body = serde_json::to_vec(&body).map_err(|error| error.to_string())?;
                return Ok(page);
            };
            if !next.starts_with(&self.tenant.graph) {
                return Err(format!(
                    "@odata.nextLink {next} does not point at the emulator's Graph URL {}",
                    self.tenant.graph
                ));
            }
            let mut headers = Vec::new();
            if principal != Principal::None {
                headers.push((
                    "Authorization".to_owned(),
                    format!("Bearer {}", self.token(principal)?),
                ));
            }
            page = http("GET", &next, &headers, None)?;
            if page.status != 200 {
                return Err(format!(
                    "following @odata.nextLink {next} answered {}: {}",
                    page.status,
                    page.snippet()
                ));
            }
            body = page.json()?;
            values.extend(
                body.get("value")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        Err(format!("more than {MAX_PAGES} pages of @odata.nextLink"))
    }

    fn token(&mut self, principal: Principal) -> Result<String, String> {
        if let Some(token) = self.tokens.get(&principal) {
            return Ok(token.clone());
        }
        let tenant = &self.tenant;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            tenant.authority, tenant.tenant_id
        );
        let form: Vec<(&str, &str)> = match principal {
            Principal::App => vec![
                ("client_id", tenant.client_id.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_secret", tenant.client_secret.as_str()),
                ("grant_type", "client_credentials"),
            ],
            Principal::Admin => vec![
                ("client_id", GRAPH_CLI_CLIENT_ID),
                ("scope", ADMIN_SCOPES),
                ("username", tenant.admin_user.as_str()),
                ("password", tenant.admin_password.as_str()),
                ("grant_type", "password"),
            ],
            Principal::None => return Err("no token for \"none\"".to_owned()),
        };
        let body = form_encode(form.iter().map(|(name, value)| (*name, *value)));
        let headers = [(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let response = http("POST", &url, &headers, Some(body.as_bytes()))?;
        let token = response
            .json()
            .ok()
            .and_then(|body| {
                body.get("access_token")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .filter(|_| response.status == 200)
            .ok_or_else(|| {
                format!(
                    "could not get the {principal:?} token: status {}, body {}",
                    response.status,
                    response.snippet()
                )
            })?;
        self.tokens.insert(principal, token.clone());
        Ok(token)
    }

    fn url(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.tenant.graph)
        } else {
            url.to_owned()
        }
    }

    /// Replaces `{graph}`, `{authority}`, `{tenant_id}`, `{client_id}`, `{client_secret}`,
    /// `{admin_user}`, `{admin_password}`, `{n}` (the attempt of a repeated request) and
    /// `{id:NAME}` / `{var:NAME}` (saved values). Other braces are left alone.
    fn substitute(&self, text: &str, attempt: Option<usize>) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('}') else {
                out.push_str(after);
                return Ok(out);
            };
            let name = &after[1..end];
            let tenant = &self.tenant;
            let replacement = match name {
                "graph" => Some(tenant.graph.clone()),
                "authority" => Some(tenant.authority.clone()),
                "tenant_id" => Some(tenant.tenant_id.clone()),
                "client_id" => Some(tenant.client_id.clone()),
                "client_secret" => Some(tenant.client_secret.clone()),
                "admin_user" => Some(tenant.admin_user.clone()),
                "admin_password" => Some(tenant.admin_password.clone()),
                "n" => attempt.map(|n| n.to_string()),
                _ => match name.split_once(':') {
                    Some(("id" | "var", var)) => Some(
                        self.vars
                            .get(var)
                            .cloned()
                            .ok_or_else(|| format!("{{{name}}} is used before a step saved it"))?,
                    ),
                    _ => None,
                },
            };
            match replacement {
                Some(replacement) => out.push_str(&replacement),
                None => out.push_str(&after[..=end]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn substitute_value(&self, value: &Value, attempt: Option<usize>) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => Value::String(self.substitute(text, attempt)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.substitute_value(item, attempt))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(object) => {
                let mut out = Map::new();
                for (key, item) in object {
                    out.insert(key.clone(), self.substitute_value(item, attempt)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn compare_response(
        &self,
        expect: &Expect,
        response: &HttpResponse,
        generated: &[String],
    ) -> Vec<String> {
        let mut differences = Vec::new();
        if response.status != expect.status {
            differences.push(format!(
                "status: expected {}, got {}; body: {}",
                expect.status,
                response.status,
                response.snippet()
            ));
            return differences;
        }
        for (name, value) in &expect.headers {
            match response.header(name) {
                None => differences.push(format!("header {name}: missing")),
                Some(actual) if value != "*" && actual != value => {
                    differences.push(format!("header {name}: expected {value:?}, got {actual:?}"));
                }
                Some(_) => {}
            }
        }
        if expect.status == 204 && !response.body.is_empty() {
            differences.push(format!(
                "204 must have no body, got: {}",
                response.snippet()
            ));
        }
        let needs_body =
            expect.body.is_some() || !expect.absent.is_empty() || !expect.lengths.is_empty();
        if !needs_body {
            return differences;
        }
        let actual = match response.json() {
            Ok(actual) => actual,
            Err(error) => {
                differences.push(error);
                return differences;
            }
        };
        if let Some(expected) = &expect.body {
            match self.substitute_value(expected, None) {
                Ok(expected) => compare(&expected, &actual, "$", generated, &mut differences),
                Err(error) => differences.push(error),
            }
        }
        for pointer in &expect.absent {
            if let Some(value) = actual.pointer(pointer) {
                differences.push(format!(
                    "{pointer}: the documentation has no such value, the emulator sent {}",
                    compact(value)
                ));
            }
        }
        for (pointer, length) in &expect.lengths {
            match actual.pointer(pointer).and_then(Value::as_array) {
                Some(items) if items.len() == *length => {}
                Some(items) => differences.push(format!(
                    "{pointer}: expected {length} elements, got {}: {}",
                    items.len(),
                    compact_list(items)
                )),
                None => differences.push(format!(
                    "{pointer}: expected an array of {length} elements, found none"
                )),
            }
        }
        differences
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// Checks that `expected` is contained in `actual`, adding one line per difference.
fn compare(
    expected: &Value,
    actual: &Value,
    path: &str,
    generated: &[String],
    out: &mut Vec<String>,
) {
    if let Some(matcher) = matcher(expected) {
        if let Err(difference) = matcher.check(actual) {
            out.push(format!("{path}: {difference}"));
        }
        return;
    }
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, expected_value) in expected {
                let child = format!("{path}.{key}");
                match actual.get(key) {
                    None => out.push(format!(
                        "{child}: missing (documented: {})",
                        compact(expected_value)
                    )),
                    Some(_) if generated.iter().any(|name| name == key) => {}
                    Some(actual_value) => {
                        compare(expected_value, actual_value, &child, generated, out);
                    }
                }
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            compare_arrays(expected, actual, path, generated, out);
        }
        (Value::Number(expected_number), Value::Number(actual_number)) => {
            if expected_number.as_f64() != actual_number.as_f64() {
                out.push(format!(
                    "{path}: expected {expected_number}, got {actual_number}"
                ));
            }
        }
        _ => {
            if expected != actual {
                out.push(format!(
                    "{path}: expected {}, got {}",
                    compact(expected),
                    compact(actual)
                ));
            }
        }
    }
}

fn compare_arrays(
    expected: &[Value],
    actual: &[Value],
    path: &str,
    generated: &[String],
    out: &mut Vec<String>,
) {
    if expected.is_empty() {
        if !actual.is_empty() {
            out.push(format!(
                "{path}: expected an empty array, got {}",
                compact_list(actual)
            ));
        }
        return;
    }
    if expected
        .iter()
        .all(|item| item.is_object() && matcher(item).is_none())
    {
        let mut used = vec![false; actual.len()];
        for (index, expected_item) in expected.iter().enumerate() {
            let found = actual.iter().enumerate().find(|(candidate, actual_item)| {
                let mut scratch = Vec::new();
                !used[*candidate] && {
                    compare(expected_item, actual_item, path, generated, &mut scratch);
                    scratch.is_empty()
                }
            });
            match found {
                Some((candidate, _)) => used[candidate] = true,
                None => {
                    let mut line = format!(
                        "{path}[{index}]: no element matches {}",
                        compact(expected_item)
                    );
                    // Show why against the most similar element (fewest differences).
                    let closest = actual
                        .iter()
                        .enumerate()
                        .filter(|(candidate, _)| !used[*candidate])
                        .map(|(_, actual_item)| {
                            let mut scratch = Vec::new();
                            compare(
                                expected_item,
                                actual_item,
                                &format!("{path}[?]"),
                                generated,
                                &mut scratch,
                            );
                            scratch
                        })
                        .min_by_key(Vec::len);
                    match closest {
                        Some(differences) => {
                            let _ = write!(
                                line,
                                "\n  closest element differs: {}",
                                differences.join("; ")
                            );
                        }
                        None => line.push_str("\n  (no unmatched elements left)"),
                    }
                    let _ = write!(line, "\n  elements sent: {}", compact_list(actual));
                    out.push(line);
                }
            }
        }
        return;
    }
    if expected.len() != actual.len() {
        out.push(format!(
            "{path}: expected {} elements {}, got {} {}",
            expected.len(),
            compact_list(expected),
            actual.len(),
            compact_list(actual)
        ));
        return;
    }
    for (index, (expected_item, actual_item)) in expected.iter().zip(actual).enumerate() {
        compare(
            expected_item,
            actual_item,
            &format!("{path}[{index}]"),
            generated,
            out,
        );
    }
}

/// `{"$any": true}`, `{"$prefix": "…"}`, `{"$contains": "…"}` (prefix and contains may combine).
#[derive(Debug)]
struct Matcher<'a> {
    prefix: Option<&'a str>,
    contains: Option<&'a str>,
}

fn matcher(value: &Value) -> Option<Matcher<'_>> {
    let object = value.as_object()?;
    if object.is_empty() || !object.keys().all(|key| key.starts_with('$')) {
        return None;
    }
    Some(Matcher {
        prefix: object.get("$prefix").and_then(Value::as_str),
        contains: object.get("$contains").and_then(Value::as_str),
    })
}

impl Matcher<'_> {
    fn check(&self, actual: &Value) -> Result<(), String> {
        if self.prefix.is_none() && self.contains.is_none() {
            return Ok(());
        }
        let Some(text) = actual.as_str() else {
            return Err(format!("expected a string, got {}", compact(actual)));
        };
        if let Some(prefix) = self.prefix
            && !text.starts_with(prefix)
        {
            return Err(format!(
                "expected a string starting with {prefix:?}, got {text:?}"
            ));
        }
        if let Some(needle) = self.contains
            && !text.contains(needle)
        {
            return Err(format!(
                "expected a string containing {needle:?}, got {text:?}"
            ));
        }
        Ok(())
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 400 {
        format!("{}…", text.chars().take(400).collect::<String>())
    } else {
        text
    }
}

fn compact_list(items: &[Value]) -> String {
    compact(&Value::Array(items.to_vec()))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 over loopback

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|error| format!("the body is not JSON ({error}): {}", self.snippet()))
    }

    fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        if text.is_empty() {
            "(empty)".to_owned()
        } else if text.chars().count() > 600 {
            format!("{}…", text.chars().take(600).collect::<String>())
        } else {
            text.into_owned()
        }
    }
}

fn encode_body(body: &Value, headers: &[(String, String)]) -> Result<Vec<u8>, String> {
    let form = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-type")
            && value.starts_with("application/x-www-form-urlencoded")
    });
    match body {
        Value::String(raw) => Ok(raw.clone().into_bytes()),
        Value::Object(fields) if form => {
            let pairs: Vec<(String, String)> = fields
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (name.clone(), value)
                })
                .collect();
            Ok(form_encode(
                pairs
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .into_bytes())
        }
        other => serde_json::to_vec(other).map_err(|error| error.to_string()),
    }
}

fn form_encode<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(name, value)| format!("{}={}", form_escape(name), form_escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

/// Percent-encodes what may not appear raw in a request target (spaces, quotes, `#`, `+`,
/// non-ASCII); existing `%XX` escapes and OData punctuation (`$ ' ( ) , : = &`) stay as they are.
fn escape_target(target: &str) -> String {
    let mut out = String::new();
    for byte in target.bytes() {
        match byte {
            b' '
            | b'"'
            | b'#'
            | b'+'
            | b'<'
            | b'>'
            | b'`'
            | b'{'
            | b'}'
            | b'|'
            | b'\\'
            | b'^'
            | 0..=0x1F
            | 0x7F..=0xFF => {
                let _ = write!(out, "%{byte:02X}");
            }
            _ => out.push(char::from(byte)),
        }
    }
    out
}

fn http(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs on the emulator are supported"))?;
    let (host, target) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)
        .map_err(|error| format!("{method} {url}: cannot connect: {error}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|error| error.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|error| error.to_string())?;

    let mut request = format!(
        "{method} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n",
        escape_target(target)
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT") {
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            && !body.is_empty()
        {
            request.push_str("Content-Type: application/json\r\n");
        }
        let _ = write!(request, "Content-Length: {}\r\n", body.len());
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .map_err(|error| format!("{method} {url}: cannot send: {error}"))?;

    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|error| format!("{method} {url}: cannot read the answer: {error}"))?;
    parse_response(&raw).map_err(|error| format!("{method} {url}: {error}"))
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no complete HTTP header in the answer ({} bytes)",
                raw.len()
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    if header("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(length) =
        header("content-length").and_then(|value| value.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or("truncated chunked body")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".to_owned());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
