//! Alerts (README, "Alerts"): the conditions an administrator must hear about, each sent once
//! when it begins and "resolved" once when it ends, to the webhook `monitoring.webhook_url` and
//! the mail `monitoring.email_*` name. Whoever ends a run (the service, a `dirsync sync`, a
//! window) looks; the service also looks between runs, for what time alone brings (no run for
//! too long, the credential).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::load_config;
use super::monitoring::{is_sync, newest_sync_run, went_through};
use crate::clock::{iso_time, now_ms};
use crate::config::Config;
use crate::home::Home;
use crate::log_events;
use crate::store::StateStore;
use crate::store::monitoring::DirectoryQuota;
use crate::store::runs::RunRecord;
use crate::store::vocabulary::{RunMode, RunStatus};
use crate::tls::TlsTrust;

/// Runs read to judge the conditions: far more than the newest of each kind needs.
const RUNS_READ: usize = 500;
/// The `directory-quota` condition holds from this share of the quota used.
const QUOTA_ALERT_PERCENT: f64 = 90.0;

/// A condition that holds now, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// A stable word: `run-failed`, `deletion-threshold`, `no-success`, `password-failed`,
    /// `drift-found`, `directory-quota`, `credential-expiring`.
    pub name: &'static str,
    pub summary: String,
}

/// The newest drift check: the run that made it and how many properties and memberships it
/// found changed in the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftCheck {
    pub run: i64,
    pub found: usize,
}

/// The conditions that hold, given the run history (newest first), the newest sync run's
/// failure, if it failed, the newest drift check and the directory quota the last cycle read.
pub fn conditions(
    runs: &[RunRecord],
    last_failure: Option<&str>,
    drift: Option<DriftCheck>,
    quota: Option<DirectoryQuota>,
    config: &Config,
    now_ms: i64,
) -> Vec<Condition> {
    let mut holding = Vec::new();
    if let Some(newest) = newest_sync_run(runs) {
        match newest.status {
            RunStatus::Failed => holding.push(Condition {
                name: "run-failed",
                summary: format!(
                    "sync run {} failed{}",
                    newest.id,
                    last_failure
                        .map(|failure| format!(": {failure}"))
                        .unwrap_or_default()
                ),
            }),
            RunStatus::StoppedDeletionThreshold => holding.push(Condition {
                name: "deletion-threshold",
                summary: format!(
                    "sync run {} stopped at the deletion threshold and deleted nothing: look at its deletes in the dashboard, then confirm them (dirsync sync --confirm-deletes N) or fix the scope",
                    newest.id
                ),
            }),
            _ => {}
        }
        let allowed_minutes = config.monitoring.no_success_minutes.unwrap_or(
            u64::from(config.monitoring.health_intervals) * config.options.interval_minutes,
        );
        let last_success = runs
            .iter()
            .find(|run| is_sync(run) && went_through(run))
            .map(|run| run.ended_at.unwrap_or(run.started_at));
        let since = last_success.unwrap_or(newest.started_at);
        let minutes = (now_ms - since) / 60_000;
        if minutes > allowed_minutes as i64 {
            holding.push(Condition {
                name: "no-success",
                summary: format!(
                    "no sync run went through for {minutes} minutes (alert after {allowed_minutes})"
                ),
            });
        }
    }
    // A password cycle that finds nothing leaves no run: a failure counts while no later cycle
    // could have run, two intervals.
    if config.options.password_hash_sync
        && let Some(newest) = runs
            .iter()
            .find(|run| run.mode == RunMode::Password && run.status != RunStatus::Running)
        && newest.status == RunStatus::Failed
        && now_ms - newest.started_at
            < 2 * (config.options.password_interval_secs.max(60) as i64) * 1000
    {
        holding.push(Condition {
            name: "password-failed",
            summary: format!("password cycle {} failed", newest.id),
        });
    }
    // Drift holds until a later check finds none (a check runs on every full cycle and daily).
    if let Some(check) = drift
        && check.found > 0
    {
        holding.push(Condition {
            name: "drift-found",
            summary: format!(
                "sync run {} found {} change(s) made in the cloud behind dirsync's back ({}); the run's warnings list them",
                check.run,
                check.found,
                match config.options.drift {
                    crate::config::DriftAction::Restore => "AD's values were restored",
                    crate::config::DriftAction::Report => "reported only: options.drift = \"report\"",
                }
            ),
        });
    }
    // DirSync's administrators met the quota as a failed export: say so at 90 %.
    if let Some(quota) = quota
        && quota.percent_used() >= QUOTA_ALERT_PERCENT
    {
        holding.push(Condition {
            name: "directory-quota",
            summary: format!(
                "the tenant holds {} of its {} directory objects ({:.0} %): creates fail once it is full; delete unused objects (deleted items count until purged) or ask Microsoft support to raise the quota",
                quota.used,
                quota.total,
                quota.percent_used()
            ),
        });
    }
    if let Some(expires) = config
        .cloud
        .credential_expires_at
        .as_deref()
        .and_then(crate::credential_expiry::parse_rfc3339)
        && let Some(warning) = crate::credential_expiry::expiry_warning(expires, now_ms / 1000)
    {
        holding.push(Condition {
            name: "credential-expiring",
            summary: warning,
        });
    }
    holding
}

/// Looks at the conditions and sends what changed: an alert for each that began, "resolved"
/// for each that ended, to each destination (the webhook, the mail). A send that fails is tried
/// again at the next look. Nothing happens without a destination.
pub async fn look(home: &Home) -> Result<(), String> {
    let failed = |error: &dyn std::fmt::Display| error.to_string();
    let config = load_config(home).map_err(|error| failed(&error))?;
    if destinations(&config).is_empty() {
        return Ok(());
    }
    let store = StateStore::open_home(home).map_err(|error| failed(&error))?;
    look_with(&store, &config).await
}

/// Where alerts go. Each keeps its own record of what it was sent, so that one that failed is
/// tried again without the other hearing twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Webhook,
    Email,
}

impl Destination {
    /// The key of `condition`'s record in `alerts_firing` (the webhook's are the bare names).
    fn key(self, condition: &str) -> String {
        match self {
            Destination::Webhook => condition.to_owned(),
            Destination::Email => format!("email:{condition}"),
        }
    }

    /// The condition a record of this destination is about.
    fn condition_of(self, key: &str) -> Option<&str> {
        match self {
            Destination::Webhook => (!key.contains(':')).then_some(key),
            Destination::Email => key.strip_prefix("email:"),
        }
    }
}

fn destinations(config: &Config) -> Vec<Destination> {
    let mut destinations = Vec::new();
    if config.monitoring.webhook_url.is_some() {
        destinations.push(Destination::Webhook);
    }
    if config.monitoring.email_smtp.is_some() {
        destinations.push(Destination::Email);
    }
    destinations
}

/// One alert as it is sent.
#[derive(Debug)]
struct Alert<'a> {
    condition: &'a str,
    /// `firing` or `resolved`.
    state: &'a str,
    summary: &'a str,
    since: i64,
    at: i64,
}

/// A destination ready to send: its client built.
enum Sender {
    Webhook {
        client: reqwest::Client,
        url: String,
    },
    Email(Box<mail::Mailer>),
}

impl Sender {
    fn new(destination: Destination, config: &Config) -> Result<Sender, String> {
        match destination {
            Destination::Webhook => {
                let trust = match &config.monitoring.webhook_ca_file {
                    Some(ca_file) => TlsTrust::CaFile(ca_file.clone()),
                    None => TlsTrust::SystemRoots,
                };
                let client = crate::cloud::http::http_client(&trust, Duration::from_secs(15))
                    .map_err(|error| error.to_string())?;
                Ok(Sender::Webhook {
                    client,
                    url: config.monitoring.webhook_url.clone().unwrap_or_default(),
                })
            }
            Destination::Email => Ok(Sender::Email(Box::new(mail::Mailer::new(
                &config.monitoring,
            )?))),
        }
    }

    /// Where it sends, in words.
    fn describe(&self) -> String {
        match self {
            Sender::Webhook { url, .. } => url.clone(),
            Sender::Email(mailer) => mailer.describe(),
        }
    }

    async fn send(&self, alert: &Alert<'_>) -> Result<(), String> {
        match self {
            Sender::Webhook { client, url } => send_webhook(client, url, alert).await,
            Sender::Email(mailer) => mailer.send(alert).await,
        }
    }
}

async fn look_with(store: &StateStore, config: &Config) -> Result<(), String> {
    let failed = |error: &dyn std::fmt::Display| error.to_string();
    let runs = store.runs(RUNS_READ).map_err(|error| failed(&error))?;
    let last_failure = match newest_sync_run(&runs) {
        Some(run) if run.status == RunStatus::Failed => {
            store.run_failure(run.id).map_err(|error| failed(&error))?
        }
        _ => None,
    };
    let drift = newest_drift_check(store, &runs).map_err(|error| failed(&error))?;
    let now = now_ms();
    let holding: BTreeMap<&str, Condition> = conditions(
        &runs,
        last_failure.as_deref(),
        drift,
        store.directory_quota().map_err(|error| failed(&error))?,
        config,
        now,
    )
    .into_iter()
    .map(|condition| (condition.name, condition))
    .collect();
    let firing = store.alerts_firing().map_err(|error| failed(&error))?;
    for destination in destinations(config) {
        let began: Vec<&Condition> = holding
            .values()
            .filter(|condition| !firing.contains_key(&destination.key(condition.name)))
            .collect();
        let ended: Vec<(&str, &(i64, String))> = firing
            .iter()
            .filter_map(|(key, record)| {
                let condition = destination.condition_of(key)?;
                (!holding.contains_key(condition)).then_some((condition, record))
            })
            .collect();
        if began.is_empty() && ended.is_empty() {
            // The usual case: nothing to send, no client to build.
            continue;
        }
        let sender = Sender::new(destination, config)?;
        for condition in began {
            let key = destination.key(condition.name);
            // Claimed first: of two processes looking at once, one sends.
            if !store
                .claim_alert(&key, now, &condition.summary)
                .map_err(|error| failed(&error))?
            {
                continue;
            }
            let alert = Alert {
                condition: condition.name,
                state: "firing",
                summary: &condition.summary,
                since: now,
                at: now,
            };
            match sender.send(&alert).await {
                Ok(()) => tracing::warn!(
                    event = log_events::ALERT_SENT,
                    condition = condition.name,
                    to = sender.describe(),
                    "alert: {}",
                    condition.summary
                ),
                Err(error) => {
                    store.clear_alert(&key).map_err(|error| failed(&error))?;
                    tracing::warn!(event = log_events::ALERT_FAILED, condition = condition.name, to = sender.describe(), %error, "cannot send the alert: {error}");
                }
            }
        }
        for (condition, (since, summary)) in ended {
            let key = destination.key(condition);
            if !store.clear_alert(&key).map_err(|error| failed(&error))? {
                continue;
            }
            let alert = Alert {
                condition,
                state: "resolved",
                summary,
                since: *since,
                at: now,
            };
            match sender.send(&alert).await {
                Ok(()) => tracing::info!(
                    event = log_events::ALERT_RESOLVED,
                    condition,
                    to = sender.describe(),
                    "resolved: {summary}"
                ),
                Err(error) => {
                    store
                        .claim_alert(&key, *since, summary)
                        .map_err(|error| failed(&error))?;
                    tracing::warn!(event = log_events::ALERT_FAILED, condition, to = sender.describe(), %error, "cannot send the alert's resolution: {error}");
                }
            }
        }
    }
    Ok(())
}

/// The newest drift check: the run whose span holds the drift cursor's time, with its drift
/// warnings counted. `None` before the first check, or once its run left the history.
fn newest_drift_check(
    store: &StateStore,
    runs: &[RunRecord],
) -> Result<Option<DriftCheck>, crate::store::StoreError> {
    let Some(bytes) = store.cursor(crate::store::sync_state::DRIFT_CHECK_CURSOR)? else {
        return Ok(None);
    };
    let Ok(bytes) = <[u8; 8]>::try_from(bytes.as_slice()) else {
        return Ok(None);
    };
    let checked_at = i64::from_be_bytes(bytes);
    let Some(run) = runs.iter().find(|run| {
        is_sync(run)
            && run.started_at <= checked_at
            && run.ended_at.is_none_or(|ended| checked_at <= ended)
    }) else {
        return Ok(None);
    };
    let found = store
        .run_warnings(run.id)?
        .iter()
        .filter(|warning| {
            warning
                .message
                .starts_with(crate::engine::drift::WARNING_PREFIX)
        })
        .count();
    Ok(Some(DriftCheck { run: run.id, found }))
}

/// Sends a test alert (condition `test`) to every configured destination, to prove each is
/// reached. Returns where it went; the first that cannot be reached is the error.
pub async fn send_test(home: &Home) -> Result<Vec<String>, String> {
    let config = load_config(home).map_err(|error| error.to_string())?;
    let destinations = destinations(&config);
    if destinations.is_empty() {
        return Err(format!(
            "no alert destination is configured: set monitoring.webhook_url, or monitoring.email_smtp, email_from and email_to, in {}",
            home.config_file.display()
        ));
    }
    let now = now_ms();
    let alert = Alert {
        condition: "test",
        state: "firing",
        summary: "a test alert from dirsync: alerts reach you",
        since: now,
        at: now,
    };
    let mut reached = Vec::new();
    for destination in destinations {
        let sender = Sender::new(destination, &config)?;
        sender
            .send(&alert)
            .await
            .map_err(|error| format!("cannot send to {}: {error}", sender.describe()))?;
        reached.push(sender.describe());
    }
    Ok(reached)
}

/// Looks, and says in the log what went wrong instead of failing the caller (a run that ended
/// is not undone by an alert that could not be sent).
pub async fn look_or_log(home: &Home) {
    if let Err(error) = look(home).await {
        tracing::warn!(event = log_events::ALERT_FAILED, %error, "cannot look at the alerts: {error}");
    }
}

/// The webhook's JSON document.
async fn send_webhook(
    client: &reqwest::Client,
    url: &str,
    alert: &Alert<'_>,
) -> Result<(), String> {
    let document = json!({
        "source": "dirsync",
        "host": crate::setup::computer_name(),
        "condition": alert.condition,
        "state": alert.state,
        "summary": alert.summary,
        "since": iso_time(alert.since),
        "at": iso_time(alert.at),
    });
    let answer = client
        .post(url)
        .json(&document)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", answer.status()))
    }
}

/// Alert mail: SMTP with STARTTLS required (a server that does not offer it is an error, never a
/// clear-text fallback), the server's certificate checked against the system's roots or
/// `monitoring.email_ca_file`.
mod mail {
    use std::time::Duration;

    use lettre::message::Mailbox;
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

    use super::Alert;
    use crate::clock::iso_time;
    use crate::config::MonitoringConfig;

    pub struct Mailer {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        server: String,
        from: Mailbox,
        to: Vec<Mailbox>,
    }

    impl Mailer {
        pub fn new(monitoring: &MonitoringConfig) -> Result<Mailer, String> {
            let (host, port) = monitoring
                .smtp_server()
                .ok_or("monitoring.email_smtp is not set")??;
            let mut tls = TlsParameters::builder(host.clone());
            if let Some(ca_file) = &monitoring.email_ca_file {
                let pem = std::fs::read(ca_file).map_err(|error| {
                    format!(
                        "monitoring.email_ca_file: cannot read {}: {error}",
                        ca_file.display()
                    )
                })?;
                let certificate = Certificate::from_pem(&pem).map_err(|error| {
                    format!(
                        "monitoring.email_ca_file: {} is not a PEM certificate: {error}",
                        ca_file.display()
                    )
                })?;
                tls = tls
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(certificate);
            }
            let tls = tls.build_rustls().map_err(|error| error.to_string())?;
            let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                .port(port)
                .tls(Tls::Required(tls))
                .timeout(Some(Duration::from_secs(15)))
                .hello_name(ClientId::Domain(crate::setup::computer_name()))
                .build();
            let mailbox = |field: &str, text: &str| {
                text.trim()
                    .parse::<Mailbox>()
                    .map_err(|error| format!("{field}: '{text}' is not a mail address: {error}"))
            };
            Ok(Mailer {
                transport,
                server: format!("{host}:{port}"),
                from: mailbox(
                    "monitoring.email_from",
                    monitoring.email_from.as_deref().unwrap_or_default(),
                )?,
                to: monitoring
                    .email_to
                    .iter()
                    .map(|to| mailbox("monitoring.email_to", to))
                    .collect::<Result<_, _>>()?,
            })
        }

        pub fn describe(&self) -> String {
            let to: Vec<String> = self.to.iter().map(ToString::to_string).collect();
            format!("mail to {} through {}", to.join(", "), self.server)
        }

        pub async fn send(&self, alert: &Alert<'_>) -> Result<(), String> {
            let host = crate::setup::computer_name();
            let mut message = Message::builder()
                .from(self.from.clone())
                .subject(format!(
                    "[dirsync] {} {} on {host}: {}",
                    alert.state.to_uppercase(),
                    alert.condition,
                    first_line(alert.summary)
                ))
                .header(ContentType::TEXT_PLAIN);
            for to in &self.to {
                message = message.to(to.clone());
            }
            let body = format!(
                "{}\n\ncondition: {}\nstate:     {}\nhost:      {host}\nsince:     {}\nat:        {}\n\nThe dashboard and `dirsync runs` show the runs (README, \"Alerts\").\n",
                alert.summary,
                alert.condition,
                alert.state,
                iso_time(alert.since),
                iso_time(alert.at),
            );
            let message = message.body(body).map_err(|error| error.to_string())?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    }

    /// A subject stays one short line.
    fn first_line(text: &str) -> String {
        let line = text.lines().next().unwrap_or_default();
        match line.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::vocabulary::RunTrigger;

    const MINUTE: i64 = 60_000;

    fn run(id: i64, mode: RunMode, status: RunStatus, ended_at: i64) -> RunRecord {
        RunRecord {
            id,
            trigger: RunTrigger::Schedule,
            mode,
            status,
            started_at: ended_at - 1_000,
            ended_at: Some(ended_at),
            steps: Vec::new(),
            throttled: 0,
            progress: None,
            host: None,
        }
    }

    fn config() -> Config {
        let text = r#"
[cloud]
authority = "https://login.microsoftonline.com"
graph = "https://graph.microsoft.com"
tenant_id = "8d2c0c52-0d3c-4d43-9a43-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"
[directory]
server = "ldaps://dc1:636"
naming_context = "DC=corp,DC=test"
service_account_dn = "CN=MSOL_1,CN=Users,DC=corp,DC=test"
[options]
password_hash_sync = true
[scope]
included = ["OU=Corp,DC=corp,DC=test"]
"#;
        crate::config::parse_toml(std::path::Path::new("config.toml"), text).expect("parses")
    }

    fn names(conditions: &[Condition]) -> Vec<&str> {
        conditions.iter().map(|condition| condition.name).collect()
    }

    #[test]
    fn each_condition_holds_while_its_cause_does() {
        let now = 10_000 * MINUTE;
        let config = config();
        let failed = [
            run(3, RunMode::Delta, RunStatus::Failed, now - MINUTE),
            run(2, RunMode::Delta, RunStatus::Success, now - 10 * MINUTE),
        ];
        let holding = conditions(
            &failed,
            Some("cannot reach dc1:636"),
            None,
            None,
            &config,
            now,
        );
        assert_eq!(names(&holding), ["run-failed"]);
        assert_eq!(
            holding[0].summary,
            "sync run 3 failed: cannot reach dc1:636"
        );
        let recovered = [
            run(4, RunMode::Delta, RunStatus::Success, now),
            run(3, RunMode::Delta, RunStatus::Failed, now - MINUTE),
        ];
        assert!(conditions(&recovered, None, None, None, &config, now).is_empty());
        let stopped = [run(
            5,
            RunMode::Delta,
            RunStatus::StoppedDeletionThreshold,
            now,
        )];
        assert_eq!(
            names(&conditions(&stopped, None, None, None, &config, now)),
            ["deletion-threshold"]
        );
        let stale = [run(
            2,
            RunMode::Delta,
            RunStatus::Success,
            now - 91 * MINUTE,
        )];
        assert_eq!(
            names(&conditions(&stale, None, None, None, &config, now)),
            ["no-success"]
        );
        let password = [
            run(7, RunMode::Password, RunStatus::Failed, now - MINUTE),
            run(6, RunMode::Delta, RunStatus::Success, now - MINUTE),
        ];
        assert_eq!(
            names(&conditions(&password, None, None, None, &config, now)),
            ["password-failed"]
        );
        // Long after, later quiet password cycles (which leave no run) have cleared it.
        assert!(
            conditions(&password, None, None, None, &config, now + 10 * MINUTE)
                .iter()
                .all(|condition| condition.name != "password-failed")
        );
        // Drift holds from the check that found it to a check that finds none.
        let checked = [run(9, RunMode::Full, RunStatus::Success, now - MINUTE)];
        let found = conditions(
            &checked,
            None,
            Some(DriftCheck { run: 9, found: 3 }),
            None,
            &config,
            now,
        );
        assert_eq!(names(&found), ["drift-found"]);
        assert!(found[0].summary.starts_with("sync run 9 found 3 change(s)"));
        assert!(
            conditions(
                &checked,
                None,
                Some(DriftCheck { run: 9, found: 0 }),
                None,
                &config,
                now
            )
            .is_empty()
        );
        // The quota from 90 % used.
        let quota = |used| {
            Some(DirectoryQuota {
                used,
                total: 50_000,
                read_at: now,
            })
        };
        let full = conditions(&checked, None, None, quota(45_000), &config, now);
        assert_eq!(names(&full), ["directory-quota"]);
        assert!(
            full[0]
                .summary
                .starts_with("the tenant holds 45000 of its 50000 directory objects (90 %)")
        );
        assert!(conditions(&checked, None, None, quota(44_999), &config, now).is_empty());
    }
}
