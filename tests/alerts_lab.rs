//! Alerts (README, "Alerts"): a failing run sends exactly one alert to the webhook and one mail,
//! its recovery exactly one "resolved" to each, with no secret in any. Against the Samba AD lab
//! and the tenant emulator, with an HTTP receiver on loopback standing in for the administrator's
//! webhook and a real SMTP server (aiosmtpd, STARTTLS required) for their mail server.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::installation::*;
use dirsync::cloud::graph::{GraphRequest, Method};
use dirsync::config::{Config, SyncOptions};
use serde_json::{Value, json};
use webhook_receiver::receiver;

/// `tests/support/smtp_receiver.py` on a free loopback port; stopped when dropped.
struct SmtpReceiver {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl SmtpReceiver {
    /// With STARTTLS required and the lab DC's certificate (for localhost, from the lab's CA),
    /// or, `plain`, with no STARTTLS at all.
    fn start(plain: bool) -> SmtpReceiver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = tempfile::tempdir().unwrap();
        let tls = common::lab().lab_dir.join("tls");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(common::repository_root().join("tests/support/smtp_receiver.py"))
            .arg(port.to_string())
            .arg(out.path().join("mail.jsonl"));
        if plain {
            command.arg("plain");
        } else {
            command
                .arg(tls.join("server.pem"))
                .arg(tls.join("server-key.pem"));
        }
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP receiver started");
        SmtpReceiver { child, port, out }
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.path().join("mail.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Alert mail to this server, checked against the lab's CA.
    fn configure(&self, config: &mut Config) {
        config.monitoring.email_smtp = Some(format!("localhost:{}", self.port));
        config.monitoring.email_from = Some("dirsync@contoso.test".to_owned());
        config.monitoring.email_to = vec!["admins@contoso.test".to_owned()];
        config.monitoring.email_ca_file = Some(common::lab().ca_file.clone());
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The subject line of a kept message.
fn subject(message: &Value) -> String {
    message["content"]
        .as_str()
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_failing_run_alerts_once_and_its_recovery_resolves_once() {
    let ou = TestOu::create("alr", &["ann"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (url, received) = receiver();
    let smtp = SmtpReceiver::start(false);
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.monitoring.webhook_url = Some(url);
    smtp.configure(&mut config);
    // Without a destination, a test alert has nowhere to go and says so.
    let run = installation.dirsync(&["test-alert"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("no alert destination is configured"),
        "{}",
        run.stderr
    );
    config.save(&installation.config_path()).unwrap();
    let run = installation.dirsync(&["test-alert"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(received.lock().unwrap().remove(0)["condition"], "test");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["tls"], true, "sent after STARTTLS");
    assert_eq!(mail[0]["to"][0], "admins@contoso.test");
    assert!(subject(&mail[0]).starts_with("[dirsync] FIRING test on "));

    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert!(received.lock().unwrap().is_empty(), "nothing to say yet");

    // The DC cannot be reached: one alert, however many runs fail.
    let working_server = config.directory.server.clone();
    config.directory.server = "ldaps://127.0.0.1:1".to_owned();
    config.save(&installation.config_path()).unwrap();
    for _ in 0..2 {
        let (status, report) = installation.sync(&[]);
        assert_ne!(status, 0, "{report}");
    }
    {
        let alerts = received.lock().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["condition"], "run-failed");
        assert_eq!(alerts[0]["state"], "firing");
        assert_eq!(alerts[0]["source"], "dirsync");
        let summary = alerts[0]["summary"].as_str().unwrap();
        assert!(summary.starts_with("sync run 2 failed: "), "{summary}");
        assert!(summary.contains("127.0.0.1:1"), "{summary}");
    }

    // Back: one "resolved".
    config.directory.server = working_server;
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let alerts = received.lock().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1]["condition"], "run-failed");
    assert_eq!(alerts[1]["state"], "resolved");
    for alert in alerts.iter() {
        installation.assert_no_secret(&alert.to_string());
    }
    // The same, once each, by mail.
    let mail = smtp.messages();
    let subjects: Vec<String> = mail.iter().map(subject).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects[1].starts_with("[dirsync] FIRING run-failed on "),
        "{subjects:?}"
    );
    assert!(
        subjects[2].starts_with("[dirsync] RESOLVED run-failed on "),
        "{subjects:?}"
    );
    let body = mail[1]["content"].as_str().unwrap();
    assert!(body.contains("sync run 2 failed: "), "{body}");
    for message in &mail {
        assert_eq!(message["tls"], true);
        installation.assert_no_secret(&message.to_string());
    }
}

/// A mail server that offers no STARTTLS is refused: alert mail never travels in clear text.
#[test]
fn a_mail_server_without_starttls_is_refused() {
    let installation = Installation::new(&[corp().as_str()], &[], SyncOptions::default());
    let smtp = SmtpReceiver::start(true);
    let mut config = Config::load(&installation.config_path()).unwrap();
    smtp.configure(&mut config);
    config.save(&installation.config_path()).unwrap();
    let run = installation.dirsync(&["test-alert"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot send to mail to admins@contoso.test"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("STARTTLS"), "{}", run.stderr);
    assert!(smtp.messages().is_empty(), "nothing was sent");
}

/// An installation of `ou` alerting to a webhook, after a first sync that went through.
fn synced_with_a_webhook(ou: &TestOu) -> (Installation, Arc<Mutex<Vec<Value>>>) {
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (url, received) = receiver();
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.monitoring.webhook_url = Some(url);
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    (installation, received)
}

/// Drift is an alert from the full cycle that finds it (and restores it) until a check finds
/// none: then "resolved".
#[test]
fn drift_found_in_the_cloud_alerts_once_and_resolves_when_a_check_finds_none() {
    let ou = TestOu::create("alrd", &["ann"]);
    let (installation, received) = synced_with_a_webhook(&ou);
    let ann = user_with_upn(&installation.cloud_users(), &ou.upn("ann")).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit =
        GraphRequest::new(Method::Patch, &["users", &ann]).with_body(json!({"jobTitle": "CEO"}));
    runtime()
        .block_on(installation.graph().send(&edit))
        .unwrap();

    let (status, report) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["drifted"], 1, "{report}");
    {
        let alerts = received.lock().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["condition"], "drift-found");
        let summary = alerts[0]["summary"].as_str().unwrap();
        assert!(summary.contains("found 1 change(s)"), "{summary}");
        assert!(summary.contains("AD's values were restored"), "{summary}");
    }
    // A delta does not check drift: nothing changes.
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(received.lock().unwrap().len(), 1);
    // The next full cycle checks and finds it restored.
    let (status, report) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{report}");
    let alerts = received.lock().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1]["condition"], "drift-found");
    assert_eq!(alerts[1]["state"], "resolved");
}

/// The directory quota: at 90 % used an alert; a create beyond it is refused by the tenant and
/// is an object error naming the quota; once raised, "resolved" and the create goes through.
#[test]
fn a_directory_quota_nearly_used_alerts_and_a_create_beyond_it_is_an_error() {
    let ou = TestOu::create("alrq", &["ann"]);
    let (installation, received) = synced_with_a_webhook(&ou);
    assert!(received.lock().unwrap().is_empty(), "far from the quota");

    // The tenant is full: the next cycle reads it and alerts; a new user cannot be created.
    let used = ["users", "groups", "applications", "servicePrincipals"]
        .iter()
        .map(|collection| installation.tenant.objects(collection).len())
        .sum::<usize>();
    installation
        .tenant
        .set_directory_quota(Some(u32::try_from(used).unwrap()));
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    {
        let alerts = received.lock().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["condition"], "directory-quota");
        let summary = alerts[0]["summary"].as_str().unwrap();
        assert!(
            summary.contains(&format!("holds {used} of its {used}")),
            "{summary}"
        );
    }
    ldapmodify(common::lab(), &user_ldif(&ou.dn, &ou.tag, "bea"));
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "{report}");
    let errors = errors_of(&report, "CN=bea,");
    assert_eq!(errors.len(), 1, "{report}");
    let said = errors[0].to_string();
    assert!(said.contains("Directory_QuotaExceeded"), "{said}");

    // Raised again: resolved, and the user is created.
    installation.tenant.set_directory_quota(None);
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("bea")).is_some());
    let alerts = received.lock().unwrap();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1]["condition"], "directory-quota");
    assert_eq!(alerts[1]["state"], "resolved");
}
