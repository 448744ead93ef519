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

/// `nTSecurityDescriptor` of `dn` as ldapsearch returns it, optionally with the SD flags control
/// asking for the DACL only (BER SEQUENCE { INTEGER 4 }).
fn descriptor_bytes(dn: &str, dacl_only: bool) -> Vec<u8> {
    use base64::Engine as _;
    let lab = lab();
    let mut command = common::ldapsearch(lab);
    command.args(["-b", dn, "-s", "base"]);
    if dacl_only {
        command.args(["-E", "!1.2.840.113556.1.4.801=::MAMCAQQ="]);
    }
    command.args(["(objectClass=*)", "nTSecurityDescriptor"]);
    let text = common::stdout_of(command);
    let encoded = text
        .lines()
        .find_map(|line| line.strip_prefix("nTSecurityDescriptor:: "))
        .unwrap_or_else(|| panic!("no descriptor in: {text}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap()
}

#[test]
fn security_descriptors_from_samba_round_trip_byte_for_byte() {
    use dirsync::directory::security_descriptor::{Ace, SecurityDescriptor};
    let lab = lab();
    let users = format!("CN=Users,{}", lab.base_dn);
    for (dn, dacl_only) in [(&lab.base_dn, true), (&lab.base_dn, false), (&users, false)] {
        let bytes = descriptor_bytes(dn, dacl_only);
        let descriptor = SecurityDescriptor::from_bytes(&bytes).unwrap();
        let dacl = descriptor.dacl.as_ref().expect("a DACL");
        assert!(dacl.aces.len() > 5, "{dn}: only {} ACEs", dacl.aces.len());
        if dacl_only {
            assert_eq!(
                descriptor.owner, None,
                "the SD flags control asked for the DACL only"
            );
        } else {
            assert!(
                descriptor.owner.is_some(),
                "{dn}: the full descriptor has an owner"
            );
        }
        assert_eq!(
            descriptor.to_bytes().unwrap(),
            bytes,
            "{dn} (DACL only: {dacl_only})"
        );
    }
    // The domain root grants the domain controllers replication rights with object ACEs.
    let root = SecurityDescriptor::from_bytes(&descriptor_bytes(&lab.base_dn, true)).unwrap();
    let replicating_changes = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2";
    assert!(
        root.dacl.unwrap().aces.iter().any(|ace| matches!(
            ace,
            Ace::Object { object_type: Some(guid), .. } if guid.to_string() == replicating_changes
        )),
        "no Replicating Directory Changes ACE on the domain root"
    );
}
