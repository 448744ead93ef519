//! Hybrid write-back tests' helpers: the service account's write-back rights, mailbox values
//! in AD as `ldapsearch` shows them, and the write-back parts of a run report.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use dirsync::config::SyncOptions;
use dirsync::directory::permissions::{self, RightsPlan, WriteBackGrant};
use dirsync::directory::{DirectoryConnection, Dn, forest};
use dirsync::secret::Secret;
use serde_json::Value;

use super::installation::*;
use super::{Lab, lab};

/// Grants the service account write-back rights on OU=Staging, where the test OUs live, on the
/// write-back attributes the lab's schema has, as setup does for the synced OUs with hybrid
/// write-back on (once: every grant replaces the last).
pub fn grant_write_back_on_staging() {
    static GRANTED: OnceLock<()> = OnceLock::new();
    GRANTED.get_or_init(|| {
        let lab = lab();
        let account = service_account();
        runtime().block_on(async {
            let admin = DirectoryConnection::connect_and_bind(
                &target(lab),
                &lab.admin_upn,
                &Secret::new(lab.admin_password.clone()),
            )
            .await
            .unwrap();
            let forest = forest::read_forest(&admin).await.unwrap();
            let (attributes, _) =
                permissions::write_back_schema(&admin, &forest.root_dse.schema_naming_context)
                    .await
                    .unwrap();
            permissions::apply_rights(
                &admin,
                &RightsPlan {
                    domain: Dn::parse(&lab.base_dn).unwrap(),
                    account: account.sid.clone(),
                    replicate_secrets: false,
                    write_back: Some(WriteBackGrant {
                        attributes,
                        included: vec![Dn::parse(&format!("OU=Staging,{}", lab.base_dn)).unwrap()],
                        excluded: Vec::new(),
                    }),
                    source_anchor: None,
                },
            )
            .await
            .unwrap();
        });
    });
}

pub fn write_back_on() -> SyncOptions {
    SyncOptions {
        hybrid_write_back: true,
        ..SyncOptions::default()
    }
}

/// The values of `dn`'s write-back attributes as `ldapsearch` shows them (binary ones in
/// base64), by attribute name.
pub fn ad_values(lab: &Lab, dn: &str) -> BTreeMap<String, Vec<String>> {
    let mut command = super::ldapsearch(lab);
    command.args(["-b", dn, "-s", "base", "(objectClass=*)"]);
    command.args(permissions::WRITE_BACK_ATTRIBUTES);
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in super::stdout_of(command).lines() {
        let (name, value) = if let Some((name, value)) = line.split_once(":: ") {
            (name, value.to_owned())
        } else if let Some((name, value)) = line.split_once(": ") {
            (name, value.to_owned())
        } else {
            continue;
        };
        if name != "dn" {
            values.entry(name.to_owned()).or_default().push(value);
        }
    }
    values
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn cloud_id(install: &Installation, upn: &str) -> String {
    let users = install.cloud_users();
    user_with_upn(&users, upn).unwrap_or_else(|| panic!("{upn} is not in the tenant"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn legacy_dn(name: &str) -> String {
    format!(
        "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={name}"
    )
}

pub fn counters(report: &Value, name: &str) -> (u64, u64, u64, u64) {
    let step = step(report, name);
    let count = |field: &str| step[field].as_u64().unwrap();
    (
        count("adds"),
        count("updates"),
        count("no_change"),
        count("errors"),
    )
}

pub fn write_back_changes(report: &Value) -> Vec<&Value> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["step"] == "write-back-export")
        .collect()
}
