//! Password sync's test helpers: passwords set on the lab DC as an administrator would, and the
//! emulator's resource-owner sign-in that proves which password the cloud accepts.

use std::time::Duration;

use dirsync::cloud::auth::SETUP_CLIENT_ID;
use dirsync::cloud::graph::http_client;
use dirsync::config::Config;
use dirsync::tls::TlsTrust;
use serde_json::Value;

use super::installation::{Installation, TestOu, runtime};
use super::{lab, samba_db_args, samba_tool_command, stdout_of};

/// AADSTS codes of the resource-owner password grant.
pub const WRONG_PASSWORD: i64 = 50_126;
pub const ACCOUNT_DISABLED: i64 = 50_057;

/// The lab DC's privileged LDAP socket (what `directory.password_hash_socket` names).
pub fn lab_socket() -> std::path::PathBuf {
    lab().lab_dir.join("private/ldap_priv/ldapi")
}

/// Points an installation's password sync at the lab DC: its socket, smb.conf and GnuPG home.
pub fn use_lab_dc(installation: &Installation, socket: &std::path::Path) {
    let lab = lab();
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.directory.password_hash_socket = Some(socket.to_owned());
    config.directory.samba_config = Some(lab.smb_conf.clone());
    config.directory.password_gpg_home = Some(lab.gpg_home.clone());
    config.save(&installation.config_path()).unwrap();
}

/// Sets a user's password as an administrator on the DC would (`samba-tool user setpassword`).
pub fn set_password(ou: &TestOu, user: &str, password: &str) {
    let lab = lab();
    let filter = format!("(distinguishedName={})", ou.user_dn(user));
    let mut command = samba_tool_command(lab);
    command
        .args(["user", "setpassword", "--filter", &filter])
        .arg(format!("--newpassword={password}"))
        .args(samba_db_args(lab));
    stdout_of(command);
}

/// The emulator's answer to a resource-owner password sign-in: `Ok(())` or the AADSTS code.
pub fn sign_in(installation: &Installation, upn: &str, password: &str) -> Result<(), i64> {
    sign_in_to(&installation.tenant, upn, password)
}

/// [`sign_in`] to any running tenant.
pub fn sign_in_to(
    tenant: &tenant_emulator::RunningEmulator,
    upn: &str,
    password: &str,
) -> Result<(), i64> {
    let info = &tenant.info;
    let url = format!("{}/{}/oauth2/v2.0/token", info.authority, info.tenant_id);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "password"),
            ("client_id", SETUP_CLIENT_ID),
            ("scope", "User.Read"),
            ("username", upn),
            ("password", password),
        ])
        .finish();
    let (status, answer): (u16, Value) = runtime().block_on(async {
        let client = http_client(&TlsTrust::SystemRoots, Duration::from_secs(15)).unwrap();
        let response = client
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    });
    if status == 200 {
        return Ok(());
    }
    Err(answer["error_codes"][0].as_i64().unwrap_or(-1))
}
