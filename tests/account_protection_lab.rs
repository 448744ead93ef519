//! The service account nobody else can borrow, on the real Samba DC: setup creates it with a
//! protected descriptor (owner Domain Admins, inheritance off, only the administrators' and
//! read-only entries), so a helpdesk group delegated "reset password" on CN=Users, which can
//! reset every other account there, cannot reset this one; a look-alike account of the same name
//! and description is refused; this installation's own account gets its protection back.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::accounts::admin_connection;
use common::installation::ldapmodify;
use common::{Lab, lab, samba_tool};
use dirsync::directory::permissions;
use dirsync::directory::service_account::{self, KnownAccount, ServiceAccount, description_for};
use dirsync::directory::setup::{DirectoryOptions, DirectorySite, set_up_directory};
use dirsync::directory::sid::Sid;
use dirsync::directory::{DirectoryConnection, DirectoryError, DirectoryTarget, Dn, forest};
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore, service_account_key};
use dirsync::tls::TlsTrust;

const COMPUTER_PREFIX: &str = "protect-lab-";
/// The Reset Password extended right and the user class (MS-ADTS).
const RESET_PASSWORD: &str = "00299570-246d-11d0-a768-00aa006e0529";
const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000)
}

fn target(lab: &Lab) -> DirectoryTarget {
    DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        std::time::Duration::from_secs(15),
    )
    .unwrap()
}

fn unicode_pwd(password: &str) -> String {
    let bytes: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A user in CN=Users with a password, as an administrator makes one.
fn add_user(lab: &Lab, name: &str, password: &str, description: Option<&str>) -> String {
    let dn = format!("CN={name},CN=Users,{}", lab.base_dn);
    let description = description
        .map(|text| format!("description: {text}\n"))
        .unwrap_or_default();
    ldapmodify(
        lab,
        &format!(
            "dn: {dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: {name}\n{description}userAccountControl: 512\nunicodePwd:: {}\n",
            unicode_pwd(password)
        ),
    );
    dn
}

fn delete(lab: &Lab, dn: &str) {
    ldapmodify(lab, &format!("dn: {dn}\nchangetype: delete\n"));
}

async fn sid_of(admin: &DirectoryConnection, dn: &str) -> Sid {
    let entry = admin
        .read_entry("read the SID", dn, &["objectSid"])
        .await
        .unwrap();
    Sid::from_bytes(&forest::binary_values(&entry, "objectSid")[0]).unwrap()
}

/// Resets `dn`'s password signed in as `user`.
async fn reset_as(lab: &Lab, user: &str, password: &str, dn: &str) -> Result<(), DirectoryError> {
    let connection =
        DirectoryConnection::connect_and_bind(&target(lab), user, &Secret::new(password))
            .await
            .unwrap();
    let new_password = format!("\"Reset-{}-Aa1!\"", unique(""));
    let value: Vec<u8> = new_password
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let result = connection
        .modify_entry(
            "reset a password",
            dn,
            vec![ldap3::Mod::Replace(
                b"unicodePwd".to_vec(),
                std::iter::once(value).collect(),
            )],
            Vec::new(),
        )
        .await;
    connection.close().await;
    result
}

async fn set_up(
    lab: &Lab,
    admin: &DirectoryConnection,
    computer: &str,
    known_account: KnownAccount,
) -> Result<dirsync::directory::setup::DirectorySetup, dirsync::directory::setup::SetupError> {
    let forest = forest::read_forest(admin).await.unwrap();
    let domain = Dn::parse(&lab.base_dn).unwrap();
    set_up_directory(
        admin,
        &target(lab),
        &DirectorySite {
            domain: &domain,
            root_domain_naming_context: &forest.root_dse.root_domain_naming_context,
            schema_naming_context: &forest.root_dse.schema_naming_context,
            computer,
            known_account,
        },
        &DirectoryOptions::default(),
        &OsKeyring,
    )
    .await
}

fn sddl(lab: &Lab, dn: &str) -> String {
    samba_tool(lab, &["dsacl", "get", &format!("--objectdn={dn}")])
}

#[tokio::test]
async fn a_helpdesk_delegate_cannot_take_over_the_service_account_and_look_alikes_are_refused() {
    let lab = lab();
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
    let admin = admin_connection(lab).await;
    let domain = Dn::parse(&lab.base_dn).unwrap();
    let users = format!("CN=Users,{}", lab.base_dn);

    // A helpdesk account delegated "reset password" on the users of CN=Users, as many domains
    // have one; and an ordinary account there.
    let helpdesk_name = unique("helpdesk-");
    let helpdesk_password = "Helpdesk-Lab-2026!";
    let helpdesk = add_user(lab, &helpdesk_name, helpdesk_password, None);
    let helpdesk_sid = sid_of(&admin, &helpdesk).await;
    let ordinary = add_user(lab, &unique("ordinary-"), "Ordinary-Lab-2026!", None);
    samba_tool(
        lab,
        &[
            "dsacl",
            "set",
            &format!("--objectdn={users}"),
            &format!("--sddl=(OA;CIIO;CR;{RESET_PASSWORD};{USER_CLASS};{helpdesk_sid})"),
        ],
    );
    let helpdesk_upn = format!("{helpdesk_name}@corp.dirsync.test");
    reset_as(lab, &helpdesk_upn, helpdesk_password, &ordinary)
        .await
        .expect("the delegation works: the helpdesk resets an ordinary account in CN=Users");

    // The service account setup makes: protected, and out of the helpdesk's reach.
    let computer = unique(COMPUTER_PREFIX);
    let setup = set_up(lab, &admin, &computer, KnownAccount::default())
        .await
        .unwrap();
    let account = setup.account.clone();
    // Set up again: the same account, found protected, nothing to restore.
    let again = set_up(lab, &admin, &computer, KnownAccount::default())
        .await
        .unwrap();
    assert_eq!(again.account, account);
    assert!(!again.protection_restored);
    let descriptor = sddl(lab, account.dn.as_str());
    assert!(descriptor.contains("O:DAG:DAD:P"), "{descriptor}");
    assert!(
        !descriptor.contains(&helpdesk_sid.to_string()),
        "{descriptor}"
    );
    assert!(
        !descriptor.contains(";AO)"),
        "no Account Operators: {descriptor}"
    );
    let refused = reset_as(lab, &helpdesk_upn, helpdesk_password, account.dn.as_str())
        .await
        .expect_err("the helpdesk may not reset the service account's password");
    assert!(
        matches!(refused, DirectoryError::Refused { rc: 50, .. }),
        "{refused:?}"
    );

    // A look-alike: an account of the same name pattern and description, made the ordinary way
    // (it inherits the helpdesk's right and the user class's defaults).
    let look_alike_computer = unique(COMPUTER_PREFIX);
    let look_alike = add_user(
        lab,
        &format!("MSOL_{}", &unique("")[..6]),
        "LookAlike-Lab-2026!",
        Some(&description_for(&look_alike_computer)),
    );
    let error = set_up(lab, &admin, &look_alike_computer, KnownAccount::default())
        .await
        .expect_err("a look-alike is refused");
    let message = error.to_string();
    assert!(message.contains(&look_alike), "{message}");
    assert!(message.contains("inherits permissions"), "{message}");
    assert!(
        message.contains(&format!(
            "{helpdesk_name} ({helpdesk_sid}) may reset its password"
        )),
        "{message}"
    );
    // Nothing was granted to it.
    let look_alike_sid = sid_of(&admin, &look_alike).await;
    assert!(
        !sddl(lab, &lab.base_dn).contains(&look_alike_sid.to_string()),
        "no right on the domain root"
    );

    // This installation's own account, its protection weakened since: found without the
    // configuration it is a look-alike; with it, setup takes it back.
    samba_tool(
        lab,
        &[
            "dsacl",
            "set",
            &format!("--objectdn={}", account.dn),
            &format!("--sddl=(OA;;CR;{RESET_PASSWORD};;{helpdesk_sid})"),
        ],
    );
    reset_as(lab, &helpdesk_upn, helpdesk_password, account.dn.as_str())
        .await
        .expect("the added right works");
    let error = set_up(lab, &admin, &computer, KnownAccount::default())
        .await
        .expect_err("weakened and not named by a configuration: refused");
    assert!(
        error.to_string().contains("may reset its password"),
        "{error}"
    );
    let known = KnownAccount {
        dn: None,
        guid: Some(account.guid),
    };
    let again = set_up(lab, &admin, &computer, known).await.unwrap();
    assert_eq!(again.account, account);
    assert!(again.protection_restored);
    assert!(
        reset_as(lab, &helpdesk_upn, helpdesk_password, account.dn.as_str())
            .await
            .is_err(),
        "the right is gone"
    );

    // Clean up: the delegation, the accounts.
    permissions::revoke_rights(&admin, &domain, &helpdesk_sid)
        .await
        .unwrap();
    assert!(!sddl(lab, &users).contains(&helpdesk_sid.to_string()));
    for dn in [&helpdesk, &ordinary, &look_alike] {
        delete(lab, dn);
    }
    remove(&admin, &domain, &account).await;
    admin.close().await;
}

async fn remove(admin: &DirectoryConnection, domain: &Dn, account: &ServiceAccount) {
    service_account::delete_service_account(admin, domain, account)
        .await
        .unwrap();
    OsKeyring
        .remove(&service_account_key(account.dn.as_str()))
        .unwrap();
}
