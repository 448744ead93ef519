//! Setup tests' service accounts: the lab's admin connection, and removing the `MSOL_` accounts
//! (with their rights and keyring entries) that a test's computer names made.

use std::time::Duration;

use dirsync::directory::service_account::{self, ServiceAccount};
use dirsync::directory::{DirectoryConnection, DirectoryTarget, Dn, forest};
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore, service_account_key};
use dirsync::tls::TlsTrust;

use super::Lab;

/// The lab's Administrator, over LDAPS with the lab's CA.
pub async fn admin_connection(lab: &Lab) -> DirectoryConnection {
    let target = DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap();
    DirectoryConnection::connect_and_bind(
        &target,
        &lab.admin_upn,
        &Secret::new(lab.admin_password.clone()),
    )
    .await
    .unwrap()
}

/// The service accounts whose description names a computer starting with `computer_prefix`.
pub async fn service_accounts(
    admin: &DirectoryConnection,
    lab: &Lab,
    computer_prefix: &str,
) -> Vec<ServiceAccount> {
    let entries = admin
        .search(
            "find the tests' service accounts",
            &format!("CN=Users,{}", lab.base_dn),
            ldap3::Scope::OneLevel,
            &format!("(&(sAMAccountName=MSOL_*)(description=*computer {computer_prefix}*))"),
            &["sAMAccountName", "objectSid", "objectGUID"],
        )
        .await
        .unwrap();
    entries
        .iter()
        .map(|entry| ServiceAccount {
            dn: Dn::parse(&entry.dn).unwrap(),
            sam_account_name: forest::first_value(entry, "sAMAccountName").unwrap(),
            sid: dirsync::directory::sid::Sid::from_bytes(
                &forest::binary_values(entry, "objectSid")[0],
            )
            .unwrap(),
            guid: dirsync::directory::objects::guid_value(entry, "objectGUID").unwrap(),
        })
        .collect()
}

/// Removes every service account whose description names a computer starting with
/// `computer_prefix`: this run's and any an earlier, failed run left behind.
pub async fn remove_service_accounts(lab: &Lab, computer_prefix: &str) {
    let admin = admin_connection(lab).await;
    let domain = Dn::parse(&lab.base_dn).unwrap();
    for account in service_accounts(&admin, lab, computer_prefix).await {
        service_account::delete_service_account(&admin, &domain, &account)
            .await
            .unwrap();
        OsKeyring
            .remove(&service_account_key(account.dn.as_str()))
            .unwrap();
    }
    admin.close().await;
}
