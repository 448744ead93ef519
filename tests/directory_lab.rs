//! The directory library against the real Samba AD lab: forest facts and the enterprise-admin check.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::lab;
use dirsync::directory::forest::{AdminLevel, check_enterprise_admin, read_forest};
use dirsync::directory::ou_tree::read_children;
use dirsync::directory::{DirectoryConnection, DirectoryTarget};
use dirsync::secret::Secret;
use dirsync::tls::TlsTrust;

async fn connect(user: &str, password: &str) -> DirectoryConnection {
    let lab = lab();
    let target = DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap();
    DirectoryConnection::connect_and_bind(&target, user, &Secret::new(password))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_forest_facts_come_from_the_root_dse_and_partitions() {
    let lab = lab();
    let connection = connect(&lab.admin_upn, &lab.admin_password).await;
    let forest = read_forest(&connection).await.unwrap();
    assert_eq!(forest.root_dse.default_naming_context, lab.base_dn);
    assert!(
        forest.root_dse.supports_dirsync(),
        "Samba advertises the DirSync control"
    );
    assert!(
        forest
            .root_dse
            .dns_host_name
            .eq_ignore_ascii_case(&lab.dns_host_name)
    );
    assert_eq!(forest.domains.len(), 1);
    assert_eq!(forest.domains[0].netbios_name, "CORP");
    let suffixes = forest.upn_suffixes();
    for suffix in ["corp.dirsync.test", "contoso.test", "fabrikam.invalid"] {
        assert!(
            suffixes.iter().any(|s| s.eq_ignore_ascii_case(suffix)),
            "{suffix} missing: {suffixes:?}"
        );
    }
}

#[tokio::test]
async fn administrator_is_an_enterprise_admin() {
    let lab = lab();
    let connection = connect(&lab.admin_upn, &lab.admin_password).await;
    let forest = read_forest(&connection).await.unwrap();
    let check = check_enterprise_admin(&connection, &forest).await.unwrap();
    assert_eq!(check.level, AdminLevel::EnterpriseAdmin, "{check:?}");
    assert!(
        check.account_dn.eq_ignore_ascii_case(&lab.admin_dn),
        "{}",
        check.account_dn
    );
}

#[tokio::test]
async fn a_plain_user_is_not_an_admin() {
    let lab = lab();
    let connection = connect(&lab.plain_user_upn, &lab.plain_user_password).await;
    let forest = read_forest(&connection).await.unwrap();
    let check = check_enterprise_admin(&connection, &forest).await.unwrap();
    assert_eq!(check.level, AdminLevel::NotAdmin, "{check:?}");
    let expected = format!("CN=Plain User,OU=IT,OU=Corp,{}", lab.base_dn);
    assert!(
        check.account_dn.eq_ignore_ascii_case(&expected),
        "{}",
        check.account_dn
    );
    assert!(check.explanation.unwrap().contains("Enterprise Admins"));
}

#[tokio::test]
async fn one_level_is_one_sorted_request() {
    let lab = lab();
    let connection = connect(&lab.admin_upn, &lab.admin_password).await;
    let corp = format!("OU=Corp,{}", lab.base_dn);
    let children = read_children(&connection, &corp).await.unwrap();
    let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    for expected in ["Engineering", "IT", "Sales"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
