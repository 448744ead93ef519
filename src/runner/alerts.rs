//! Alerts (README, "Alerts"): the conditions an administrator must hear about, each sent once
//! when it begins and "resolved" once when it ends, to the webhook `monitoring.webhook_url`
//! names. Whoever ends a run (the service, a `dirsync sync`, a window) looks; the service also
//! looks between runs, for what time alone brings (no run for too long, the credential).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::load_config;
use super::monitoring::{is_sync, newest_sync_run, went_through};
use crate::clock::{iso_time, now_ms};
use crate::config::Config;
use crate::home::Home;
use crate::log_events;
use crate::store::SqliteStore;
use crate::store::runs::RunRecord;
use crate::store::vocabulary::{RunMode, RunStatus};
use crate::tls::TlsTrust;

/// Runs read to judge the conditions: far more than the newest of each kind needs.
const RUNS_READ: usize = 500;

/// A condition that holds now, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// A stable word: `run-failed`, `deletion-threshold`, `no-success`, `password-failed`,
    /// `credential-expiring`.
    pub name: &'static str,
    pub summary: String,
}

/// The conditions that hold, given the run history (newest first) and the newest sync run's
/// failure, if it failed.
pub fn conditions(
    runs: &[RunRecord],
    last_failure: Option<&str>,
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
/// for each that ended. A send that fails is tried again at the next look. Nothing happens
/// without a webhook.
pub async fn look(home: &Home) -> Result<(), String> {
    let failed = |error: &dyn std::fmt::Display| error.to_string();
    let config = load_config(home).map_err(|error| failed(&error))?;
    let Some(url) = config.monitoring.webhook_url.clone() else {
        return Ok(());
    };
    let store = SqliteStore::open(&home.state_db).map_err(|error| failed(&error))?;
    look_with(&store, &config, &url)
        .await
        .map_err(|error| failed(&error))
}

/// The HTTP client for the webhook: the system's roots, or `webhook_ca_file`'s CA.
fn webhook_client(config: &Config) -> Result<reqwest::Client, crate::tls::TlsSetupError> {
    let trust = match &config.monitoring.webhook_ca_file {
        Some(ca_file) => TlsTrust::CaFile(ca_file.clone()),
        None => TlsTrust::SystemRoots,
    };
    crate::cloud::http::http_client(&trust, Duration::from_secs(15))
}

async fn look_with(
    store: &SqliteStore,
    config: &Config,
    url: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let runs = store.runs(RUNS_READ)?;
    let last_failure = match newest_sync_run(&runs) {
        Some(run) if run.status == RunStatus::Failed => store.run_failure(run.id)?,
        _ => None,
    };
    let now = now_ms();
    let holding: BTreeMap<&str, Condition> =
        conditions(&runs, last_failure.as_deref(), config, now)
            .into_iter()
            .map(|condition| (condition.name, condition))
            .collect();
    let firing = store.alerts_firing()?;
    let began: Vec<&Condition> = holding
        .values()
        .filter(|condition| !firing.contains_key(condition.name))
        .collect();
    let ended: Vec<(String, (i64, String))> = firing
        .into_iter()
        .filter(|(name, _)| !holding.contains_key(name.as_str()))
        .collect();
    if began.is_empty() && ended.is_empty() {
        // The usual case: nothing to send, no client to build.
        return Ok(());
    }
    let client = webhook_client(config)?;
    for condition in began {
        // Claimed first: of two processes looking at once, one sends.
        if !store.claim_alert(condition.name, now, &condition.summary)? {
            continue;
        }
        match send(
            &client,
            url,
            condition.name,
            "firing",
            &condition.summary,
            now,
            now,
        )
        .await
        {
            Ok(()) => tracing::warn!(
                event = log_events::ALERT_SENT,
                condition = condition.name,
                "alert: {}",
                condition.summary
            ),
            Err(error) => {
                store.clear_alert(condition.name)?;
                tracing::warn!(event = log_events::ALERT_FAILED, condition = condition.name, %error, "cannot send the alert: {error}");
            }
        }
    }
    for (name, (since, summary)) in ended {
        if !store.clear_alert(&name)? {
            continue;
        }
        match send(&client, url, &name, "resolved", &summary, since, now).await {
            Ok(()) => tracing::info!(
                event = log_events::ALERT_RESOLVED,
                condition = name.as_str(),
                "resolved: {summary}"
            ),
            Err(error) => {
                store.claim_alert(&name, since, &summary)?;
                tracing::warn!(event = log_events::ALERT_FAILED, condition = name.as_str(), %error, "cannot send the alert's resolution: {error}");
            }
        }
    }
    Ok(())
}

/// Sends a test alert (condition `test`) to the configured webhook, to prove it is reached.
/// Returns the webhook's URL.
pub async fn send_test(home: &Home) -> Result<String, String> {
    let config = load_config(home).map_err(|error| error.to_string())?;
    let Some(url) = config.monitoring.webhook_url.clone() else {
        return Err(format!(
            "no webhook is configured: set monitoring.webhook_url in {}",
            home.config_file.display()
        ));
    };
    let client = webhook_client(&config).map_err(|error| error.to_string())?;
    let now = now_ms();
    send(
        &client,
        &url,
        "test",
        "firing",
        "a test alert from dirsync: alerts reach you",
        now,
        now,
    )
    .await
    .map_err(|error| format!("cannot send to {url}: {error}"))?;
    Ok(url)
}

/// Looks, and says in the log what went wrong instead of failing the caller (a run that ended
/// is not undone by an alert that could not be sent).
pub async fn look_or_log(home: &Home) {
    if let Err(error) = look(home).await {
        tracing::warn!(event = log_events::ALERT_FAILED, %error, "cannot look at the alerts: {error}");
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    condition: &str,
    state: &str,
    summary: &str,
    since: i64,
    now: i64,
) -> Result<(), String> {
    let document = json!({
        "source": "dirsync",
        "host": crate::setup::computer_name(),
        "condition": condition,
        "state": state,
        "summary": summary,
        "since": iso_time(since),
        "at": iso_time(now),
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
        let holding = conditions(&failed, Some("cannot reach dc1:636"), &config, now);
        assert_eq!(names(&holding), ["run-failed"]);
        assert_eq!(
            holding[0].summary,
            "sync run 3 failed: cannot reach dc1:636"
        );
        let recovered = [
            run(4, RunMode::Delta, RunStatus::Success, now),
            run(3, RunMode::Delta, RunStatus::Failed, now - MINUTE),
        ];
        assert!(conditions(&recovered, None, &config, now).is_empty());
        let stopped = [run(
            5,
            RunMode::Delta,
            RunStatus::StoppedDeletionThreshold,
            now,
        )];
        assert_eq!(
            names(&conditions(&stopped, None, &config, now)),
            ["deletion-threshold"]
        );
        let stale = [run(
            2,
            RunMode::Delta,
            RunStatus::Success,
            now - 91 * MINUTE,
        )];
        assert_eq!(
            names(&conditions(&stale, None, &config, now)),
            ["no-success"]
        );
        let password = [
            run(7, RunMode::Password, RunStatus::Failed, now - MINUTE),
            run(6, RunMode::Delta, RunStatus::Success, now - MINUTE),
        ];
        assert_eq!(
            names(&conditions(&password, None, &config, now)),
            ["password-failed"]
        );
        // Long after, later quiet password cycles (which leave no run) have cleared it.
        assert!(
            conditions(&password, None, &config, now + 10 * MINUTE)
                .iter()
                .all(|condition| condition.name != "password-failed")
        );
    }
}
