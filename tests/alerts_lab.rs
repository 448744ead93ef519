//! Alerts (README, "Alerts"): a failing run sends exactly one alert to the webhook, its recovery
//! exactly one "resolved", with no secret in either. Against the Samba AD lab and the tenant
//! emulator, with an HTTP receiver on loopback standing in for the administrator's webhook.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::installation::*;
use dirsync::config::{Config, SyncOptions};
use serde_json::Value;

/// An HTTP server that keeps every POST's JSON body and answers 200.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            kept.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, received)
}

#[test]
fn a_failing_run_alerts_once_and_its_recovery_resolves_once() {
    let ou = TestOu::create("alr", &["ann"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (url, received) = receiver();
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.monitoring.webhook_url = Some(url);
    // Without a webhook, a test alert has nowhere to go and says so.
    let run = installation.dirsync(&["test-alert"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("no webhook is configured"),
        "{}",
        run.stderr
    );
    config.save(&installation.config_path()).unwrap();
    let run = installation.dirsync(&["test-alert"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(received.lock().unwrap().remove(0)["condition"], "test");

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
}
