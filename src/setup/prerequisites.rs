//! What dirsync needs of this computer before setup: a keyring for its secrets, a clock the
//! cloud agrees with (sign-in tokens are refused when it is off by minutes), and the network to
//! the sign-in server and the domain controller.

use std::time::{Duration, SystemTime};

use crate::cloud::graph::http_client;
use crate::secret::Secret;
use crate::secret_store::SecretStore;
use crate::tls::TlsTrust;

/// How far this computer's clock may be from the sign-in server's before sign-ins fail.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(5 * 60);
const TIMEOUT: Duration = Duration::from_secs(5);
/// The keyring entry written and removed to prove the keyring works.
const PROBE_KEY: &str = "dirsync-keyring-check";

/// One check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    pub what: &'static str,
    /// What was found, or what is wrong and what to do.
    pub outcome: Result<String, String>,
    /// Setup cannot go on without it (the network ones can be fixed in their own steps).
    pub required: bool,
}

/// Runs every check. `authority` and `server` are the sign-in server's and the domain
/// controller's URLs as entered so far (empty: not checked yet).
pub async fn check_prerequisites(
    secrets: &dyn SecretStore,
    authority: &str,
    server: &str,
) -> Vec<Prerequisite> {
    let mut checks = vec![Prerequisite {
        what: "OS keyring",
        outcome: check_keyring(secrets),
        required: true,
    }];
    if !authority.trim().is_empty() {
        checks.push(Prerequisite {
            what: "Sign-in server and clock",
            outcome: check_authority(authority.trim()).await,
            required: false,
        });
    }
    if !server.trim().is_empty() {
        checks.push(Prerequisite {
            what: "Domain controller",
            outcome: check_server(server.trim()).await,
            required: false,
        });
    }
    checks
}

fn check_keyring(secrets: &dyn SecretStore) -> Result<String, String> {
    let probe = Secret::new("dirsync checks that the keyring keeps secrets");
    secrets
        .save(PROBE_KEY, &probe)
        .and_then(|()| secrets.load(PROBE_KEY))
        .and_then(|loaded| {
            secrets.remove(PROBE_KEY)?;
            Ok(loaded)
        })
        .map_err(|error| error.to_string())
        .and_then(|loaded| match loaded {
            Some(value) if value.expose() == probe.expose() => Ok(format!(
                "secrets can be stored and read back (tried in {})",
                secrets.places(PROBE_KEY).join(", ")
            )),
            _ => Err("the keyring did not give back what was stored in it".to_owned()),
        })
}

async fn check_authority(authority: &str) -> Result<String, String> {
    let http = http_client(&TlsTrust::SystemRoots, TIMEOUT).map_err(|error| error.to_string())?;
    let response = http.get(authority).send().await.map_err(|error| {
        format!("cannot reach {authority}: {error}; check the network, a proxy or the URL")
    })?;
    let Some(date) = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::clock::parse_http_date)
    else {
        return Ok(format!(
            "{authority} answered (it sent no date to compare the clock with)"
        ));
    };
    let skew = match SystemTime::now().duration_since(date) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    if skew > CLOCK_TOLERANCE {
        return Err(format!(
            "this computer's clock is {} minutes off {authority}'s; sign-ins will fail: set the clock (timedatectl set-ntp true)",
            skew.as_secs() / 60
        ));
    }
    Ok(format!(
        "{authority} answered; the clocks agree (within {} s)",
        skew.as_secs()
    ))
}

async fn check_server(server: &str) -> Result<String, String> {
    let url = url::Url::parse(server)
        .map_err(|error| format!("'{server}' is not a URL ({error}); use ldaps://host"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("'{server}' names no host"))?
        .to_owned();
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "ldap" { 389 } else { 636 });
    match tokio::time::timeout(
        TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(format!("{host}:{port} accepts connections")),
        Ok(Err(error)) => Err(format!(
            "cannot connect to {host}:{port}: {error}; check that the domain controller is up and reachable"
        )),
        Err(_) => Err(format!(
            "{host}:{port} did not answer within {} s; check the network or a firewall",
            TIMEOUT.as_secs()
        )),
    }
}
