//! Monitoring (README, "Monitoring"): `dirsync service` serving `/metrics` and `/healthz`, against
//! the Samba AD lab and the tenant emulator, with the service as a real process and Prometheus's
//! own `promtool` checking the format.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::installation::*;
use dirsync::config::{Config, SyncOptions};
use serde_json::Value;

/// `GET path` on the service's monitoring address: the status code and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// The sample values of one metric family, by their label set.
fn samples(metrics: &str, name: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            (labels.is_empty() || labels.starts_with('{'))
                .then(|| (labels.to_owned(), value.parse().unwrap()))
        })
        .collect()
}

#[test]
fn the_service_serves_metrics_promtool_accepts_and_health_that_follows_the_runs() {
    let ou = TestOu::create("mon", &["ann", "bob"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let address = free_address();
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.monitoring.address = Some(address.clone());
    // Only the runs this test makes: no watch between them.
    config.options.watch_secs = 0;
    config.save(&installation.config_path()).unwrap();

    // The service syncs at once (nothing synced yet), and serves while it runs; its log, as
    // JSON lines, goes to a file.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut service = Service(
        installation
            .command(&["--log-format", "json", "service"])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let healthy = loop {
        if std::net::TcpStream::connect(&address).is_ok() {
            let (status, body) = get(&address, "/healthz");
            if status == 200 {
                break body;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service never became healthy"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(healthy.starts_with("ok: run 1 ended success"), "{healthy}");

    // Two more runs, then the figures equal `dirsync runs --json`.
    for _ in 0..2 {
        let (status, report) = installation.sync(&[]);
        assert_eq!(status, 0, "{report}");
    }
    let (status, metrics) = get(&address, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &metrics).unwrap();
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .output()
        .expect("promtool (Debian's prometheus package) runs");
    assert!(
        promtool.status.success() && promtool.stdout.is_empty() && promtool.stderr.is_empty(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    let listed: Value =
        serde_json::from_str(&installation.dirsync(&["runs", "--json"]).stdout).unwrap();
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    let mut added = 0.0;
    for run in listed["runs"].as_array().unwrap() {
        let key = format!(
            "{{mode=\"{}\",status=\"{}\"}}",
            run["mode"].as_str().unwrap(),
            run["status"].as_str().unwrap()
        );
        *expected.entry(key).or_default() += 1.0;
        for step in run["steps"].as_array().unwrap() {
            if step["step"] == "cloud-export" {
                added += step["adds"].as_f64().unwrap();
            }
        }
    }
    assert_eq!(expected.values().sum::<f64>(), 3.0, "{listed}");
    assert_eq!(
        samples(&metrics, "dirsync_runs_total"),
        expected,
        "{metrics}"
    );
    let exported_adds =
        samples(&metrics, "dirsync_step_objects_total")["{step=\"cloud-export\",change=\"add\"}"];
    assert_eq!(exported_adds, added, "{metrics}\n{listed}");
    assert_eq!(
        samples(&metrics, "dirsync_objects_linked")[""],
        3.0,
        "{metrics}"
    );
    assert_eq!(samples(&metrics, "dirsync_healthy")[""], 1.0);
    // The tenant's directory quota as the last cycle read it: a verified domain gives 300,000,
    // and the tenant holds at least the three objects synced.
    assert_eq!(
        samples(&metrics, "dirsync_directory_quota_objects")[""],
        300_000.0,
        "{metrics}"
    );
    assert!(samples(&metrics, "dirsync_directory_quota_used_objects")[""] >= 3.0);

    // The DC cannot be reached: the next run fails, and /healthz says so with the reason.
    let mut broken = Config::load(&installation.config_path()).unwrap();
    let working_server = broken.directory.server.clone();
    broken.directory.server = "ldaps://127.0.0.1:1".to_owned();
    broken.save(&installation.config_path()).unwrap();
    let failing = installation.dirsync(&["--log-format", "json", "sync", "--json"]);
    assert_ne!(failing.status, 0, "{}", failing.stdout);
    // Its failure is one JSON line with the event's name and the run's id (README, "Logs").
    let failed: Vec<Value> = failing
        .stderr
        .lines()
        // The command's progress lines ("dirsync: directory-import…") are not log lines.
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .filter(|line: &Value| line["fields"]["event"] == "run.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", failing.stderr);
    assert_eq!(failed[0]["fields"]["run_id"], 4, "{}", failing.stderr);
    assert_eq!(failed[0]["level"], "ERROR");
    let (status, body) = get(&address, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("the last sync run (run 4) ended failed: ")
            && body.contains("127.0.0.1:1"),
        "{body}"
    );
    assert_eq!(
        samples(&get(&address, "/metrics").1, "dirsync_healthy")[""],
        0.0
    );

    // Back: healthy again.
    broken.directory.server = working_server;
    broken.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (status, body) = get(&address, "/healthz");
    assert_eq!(status, 200, "{body}");

    // Anything else is refused plainly.
    assert_eq!(get(&address, "/").0, 404);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(stream, "POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");

    // The service's own log: one JSON object per line, each with a stable event name; the first
    // run's end carries its id.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &service.0.id().to_string()])
        .status();
    service.0.wait().unwrap();
    let text = std::fs::read_to_string(log.path()).unwrap();
    installation.assert_no_secret(&text);
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["fields"]["event"].as_str())
        .collect();
    for expected in [
        "service.started",
        "monitoring.listening",
        "run.ended",
        "service.stopping",
        "service.stopped",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} not in {events:?}\n{text}"
        );
    }
    let first_run = lines
        .iter()
        .find(|line| line["fields"]["event"] == "run.ended")
        .unwrap();
    assert_eq!(first_run["fields"]["run_id"], 1, "{text}");
    assert_eq!(first_run["fields"]["status"], "success", "{text}");
}
