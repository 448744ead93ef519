//! The directory side of syncing against the real Samba AD lab: the service account and its
//! rights, change tracking with DirSync, the full import and the write-back primitive. Changes
//! are made the way an administrator makes them, with `samba-tool`.
//!
//! These tests change the directory, so they take turns (`SERIAL`): an incremental read must
//! see only the changes its own test made.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Lab, lab, samba_tool};
use dirsync::directory::forest;
use dirsync::directory::import::{
    self, ChangeBatch, DirSyncCookie, DirectoryChange, FullImport, MemberChanges,
};
use dirsync::directory::objects::{DirectoryObject, ObjectKind};
use dirsync::directory::permissions::{
    self, RightsPlan, WriteBackGrant, apply_rights, can_see_deleted_objects,
};
use dirsync::directory::scope::SyncScope;
use dirsync::directory::service_account::KnownAccount;
use dirsync::directory::service_account::{
    self, AccountOutcome, SERVICE_ACCOUNT_UAC, ServiceAccount,
};
use dirsync::directory::setup::{
    DirectoryOptions, DirectorySetup, DirectorySite, set_up_directory,
};
use dirsync::directory::write_back::{AttributeEdit, modify_attributes};
use dirsync::directory::{DirectoryConnection, DirectoryError, DirectoryTarget, Dn};
use dirsync::guid::Guid;
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore, service_account_key};
use dirsync::tls::TlsTrust;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn target() -> DirectoryTarget {
    let lab = lab();
    DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap()
}

async fn connect(user: &str, password: &Secret) -> DirectoryConnection {
    DirectoryConnection::connect_and_bind(&target(), user, password)
        .await
        .unwrap()
}

async fn admin() -> DirectoryConnection {
    let lab = lab();
    connect(&lab.admin_upn, &Secret::new(lab.admin_password.clone())).await
}

fn domain() -> Dn {
    Dn::parse(&lab().base_dn).unwrap()
}

async fn object_guid(admin: &DirectoryConnection, dn: &Dn) -> Guid {
    let entry = admin
        .read_entry("read the object's GUID", dn.as_str(), &["objectGUID"])
        .await
        .unwrap();
    dirsync::directory::objects::guid_value(&entry, "objectGUID").unwrap()
}

fn dn(text: &str) -> Dn {
    Dn::parse(&format!("{text},{}", lab().base_dn)).unwrap()
}

/// A name no earlier run of the tests used (the lab keeps its directory between runs).
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000)
}

/// Removes service accounts (and their ACEs) that an earlier, failed run of these tests left
/// behind in the lab; runs once per test binary.
async fn sweep_earlier_test_accounts() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let admin = admin().await;
            for account in common::accounts::service_accounts(&admin, lab(), "host-").await {
                tear_down(&account).await;
            }
        })
        .await;
}

/// Runs the directory half of setup for `computer`: the account, its password in the OS keyring,
/// its rights. Returns the account and its password as read back from the keyring.
async fn set_up_account(
    computer: &str,
    password_hash_sync: bool,
    write_back: Option<WriteBackGrant>,
) -> (ServiceAccount, Secret) {
    let setup = set_up(computer, password_hash_sync, write_back).await;
    let password = OsKeyring.load(&setup.keyring_key).unwrap().unwrap();
    (setup.account, password)
}

async fn set_up(
    computer: &str,
    password_hash_sync: bool,
    write_back: Option<WriteBackGrant>,
) -> DirectorySetup {
    sweep_earlier_test_accounts().await;
    let admin = admin().await;
    let forest = forest::read_forest(&admin).await.unwrap();
    let options = DirectoryOptions {
        replicate_secrets: password_hash_sync,
        write_back_scope: write_back.map(|grant| (grant.included, grant.excluded)),
        source_anchor_scope: None,
    };
    set_up_directory(
        &admin,
        &target(),
        &DirectorySite {
            domain: &domain(),
            root_domain_naming_context: &forest.root_dse.root_domain_naming_context,
            schema_naming_context: &forest.root_dse.schema_naming_context,
            computer,
            known_account: KnownAccount::default(),
        },
        &options,
        &OsKeyring,
    )
    .await
    .unwrap()
}

async fn tear_down(account: &ServiceAccount) {
    service_account::delete_service_account(&admin().await, &domain(), account)
        .await
        .unwrap();
    OsKeyring
        .remove(&service_account_key(account.dn.as_str()))
        .unwrap();
}

/// The domain root's (or `object`'s) DACL as `samba-tool dsacl get` prints it.
fn dsacl(lab: &Lab, object: &Dn) -> String {
    samba_tool(lab, &["dsacl", "get", &format!("--objectdn={object}")])
}

fn aces_naming(sddl: &str, account: &ServiceAccount) -> Vec<String> {
    let trustee = format!(";{}", account.sid);
    sddl.split('(')
        .filter_map(|part| part.split_once(')').map(|(ace, _)| ace))
        .filter(|ace| ace.ends_with(&trustee))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_service_account_dirsync_made_reads_changes_and_a_plain_user_cannot() {
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let computer = unique("host-a-");
    let setup = set_up(&computer, false, None).await;
    assert_eq!(setup.outcome, AccountOutcome::Created);
    assert!(setup.write_back_skipped.is_empty());
    let advice = setup
        .deleted_objects_advice
        .as_deref()
        .expect("a new account cannot see deletions yet");
    assert!(advice.contains("CN=Deleted Objects"), "{advice}");
    let account = setup.account.clone();

    // As DirSync made it: CN=MSOL_<12 hex>,CN=Users, password never expires, described.
    let name = account.sam_account_name.as_str();
    assert!(name.starts_with("MSOL_") && name.len() == 17, "{name}");
    assert_eq!(account.dn, dn(&format!("CN={name},CN=Users")));
    let shown = samba_tool(lab, &["user", "show", name]);
    assert!(
        shown.contains(&format!("userAccountControl: {SERVICE_ACCOUNT_UAC}")),
        "{shown}"
    );
    assert!(shown.contains("Account created by dirsync"), "{shown}");
    assert!(shown.contains(&computer), "{shown}");

    // The password is in the OS keyring, and only there.
    let key = service_account_key(account.dn.as_str());
    assert_eq!(setup.keyring_key, key);
    let stored = OsKeyring.load(&key).unwrap().expect("saved in the keyring");
    assert_eq!(stored.expose().len(), 64);
    assert!(!format!("{setup:?}").contains(stored.expose()));
    let service = connect(account.dn.as_str(), &stored).await;
    let cookie = import::current_cookie(&service, &domain()).await.unwrap();
    assert!(!cookie.as_bytes().is_empty());
    let scope = SyncScope::new(vec![domain()], Vec::new());
    import::read_changes(&service, &domain(), &scope, &cookie)
        .await
        .unwrap();

    let plain = connect(
        &lab.plain_user_upn,
        &Secret::new(lab.plain_user_password.clone()),
    )
    .await;
    let error = import::current_cookie(&plain, &domain())
        .await
        .expect_err("a plain user has no replication right");
    assert!(
        matches!(error, DirectoryError::MissingReplicationRight { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "dirsync needs Replicating Directory Changes on {}",
            lab.base_dn
        )),
        "{message}"
    );
    assert!(!message.contains(&lab.plain_user_password));

    tear_down(&account).await;
    assert!(OsKeyring.load(&key).unwrap().is_none());
}

#[tokio::test]
async fn setup_again_resets_the_password_and_leaves_one_set_of_aces() {
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let computer = unique("host-b-");
    let (account, first_password) = set_up_account(&computer, true, None).await;
    let root = dsacl(lab, &domain());
    let granted = aces_naming(&root, &account);
    assert_eq!(
        granted,
        vec![
            "OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;".to_owned() + &account.sid.to_string(),
            "OA;;CR;1131f6ad-9c07-11d1-f79f-00c04fc2dcd2;;".to_owned() + &account.sid.to_string(),
        ],
        "{root}"
    );

    // Setup again: the same account, a new password, the same two ACEs. (Samba, like Windows
    // for NTLM, still accepts the previous password for an hour, so the reset shows in pwdLastSet.)
    let password_set_before = pwd_last_set(lab, &account);
    let admin = admin().await;
    let again = set_up(&computer, true, None).await;
    assert_eq!(again.outcome, AccountOutcome::PasswordReset);
    assert_eq!(again.account, account);
    assert!(again.rights.changed.is_empty(), "{:?}", again.rights);
    let second_password = OsKeyring.load(&again.keyring_key).unwrap().unwrap();
    assert_ne!(first_password.expose(), second_password.expose());
    let plan = |replicate_secrets| RightsPlan {
        domain: domain(),
        account: account.sid.clone(),
        replicate_secrets,
        write_back: None,
        source_anchor: None,
    };
    let report = apply_rights(&admin, &plan(true)).await.unwrap();
    assert!(report.changed.is_empty(), "{report:?}");
    assert_eq!(aces_naming(&dsacl(lab, &domain()), &account), granted);
    connect(account.dn.as_str(), &second_password).await;
    assert!(pwd_last_set(lab, &account) > password_set_before);

    // Password hash sync off: Replicating Directory Changes All goes.
    apply_rights(&admin, &plan(false)).await.unwrap();
    assert_eq!(
        aces_naming(&dsacl(lab, &domain()), &account),
        granted[..1].to_vec()
    );

    tear_down(&account).await;
    assert!(aces_naming(&dsacl(lab, &domain()), &account).is_empty());
}

#[tokio::test]
async fn write_back_rights_cover_exactly_the_write_back_attributes_of_scoped_users() {
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let admin = admin().await;
    let forest = forest::read_forest(&admin).await.unwrap();
    let (attributes, missing) =
        permissions::write_back_schema(&admin, &forest.root_dse.schema_naming_context)
            .await
            .unwrap();
    // Samba's base schema has proxyAddresses and none of the msExch* attributes.
    assert_eq!(
        attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["proxyAddresses"]
    );
    assert_eq!(missing.len(), 5, "{missing:?}");

    let corp = dn("OU=Corp");
    let sales = dn("OU=Sales,OU=Corp");
    let grant = WriteBackGrant {
        attributes,
        included: vec![corp.clone()],
        excluded: vec![sales.clone()],
    };
    let computer = unique("host-c-");
    let (account, password) = set_up_account(&computer, false, Some(grant.clone())).await;
    let sid = account.sid.to_string();
    let proxy_addresses = "bf967a06-0de6-11d0-a285-00aa003049e2";
    let user_class = "bf967aba-0de6-11d0-a285-00aa003049e2";
    assert_eq!(
        aces_naming(&dsacl(lab, &corp), &account),
        [format!("OA;CIIO;WP;{proxy_addresses};{user_class};{sid}")]
    );
    assert_eq!(
        aces_naming(&dsacl(lab, &sales), &account)
            .into_iter()
            .filter(|ace| !ace.contains(";ID;") && !ace.contains("CIIOID"))
            .collect::<Vec<_>>(),
        [format!("OD;CIIO;WP;{proxy_addresses};{user_class};{sid}")]
    );

    let service = connect(account.dn.as_str(), &password).await;
    let x500 = format!("X500:/o=ExchangeLabs/ou=Test/cn={}", unique("wb"));
    let add = [AttributeEdit::AddValues {
        attribute: "proxyAddresses".to_owned(),
        values: vec![x500.clone().into_bytes()],
    }];
    let remove = [AttributeEdit::RemoveValues {
        attribute: "proxyAddresses".to_owned(),
        values: vec![x500.clone().into_bytes()],
    }];
    let in_scope = dn("CN=Plain User,OU=IT,OU=Corp");
    let in_scope_guid = object_guid(&admin, &in_scope).await;
    modify_attributes(&service, in_scope_guid, &in_scope, &add)
        .await
        .unwrap();
    let shown = samba_tool(lab, &["user", "show", "plain.user"]);
    assert!(shown.contains(&x500), "{shown}");
    assert!(
        shown.contains("proxyAddresses: SMTP:"),
        "added, not replaced: {shown}"
    );
    modify_attributes(&service, in_scope_guid, &in_scope, &remove)
        .await
        .unwrap();

    // Another attribute of the same user, a user in an excluded OU, a user out of scope.
    let title = [AttributeEdit::Replace {
        attribute: "title".to_owned(),
        values: vec![b"Boss".to_vec()],
    }];
    let excluded_user = Dn::parse(&first_user_dn(lab, "OU=Sales,OU=Corp")).unwrap();
    let outside_user = Dn::parse(&first_user_dn(lab, "OU=Staging")).unwrap();
    for (object, edits) in [
        (&in_scope, &title[..]),
        (&excluded_user, &add[..]),
        (&outside_user, &add[..]),
    ] {
        let error = modify_attributes(&service, object_guid(&admin, object).await, object, edits)
            .await
            .expect_err("no right to write this");
        assert!(
            matches!(error, DirectoryError::WriteDenied { .. }),
            "{object}: {error:?}"
        );
        assert!(error.to_string().contains(object.as_str()));
    }

    // Write-back turned off: the OU ACEs go and writing is refused again.
    apply_rights(
        &admin,
        &RightsPlan {
            domain: domain(),
            account: account.sid.clone(),
            replicate_secrets: false,
            write_back: None,
            source_anchor: None,
        },
    )
    .await
    .unwrap();
    assert!(aces_naming(&dsacl(lab, &corp), &account).is_empty());
    assert!(
        modify_attributes(&service, in_scope_guid, &in_scope, &add)
            .await
            .is_err()
    );

    tear_down(&account).await;
}

fn pwd_last_set(lab: &Lab, account: &ServiceAccount) -> u64 {
    let shown = samba_tool(
        lab,
        &[
            "user",
            "show",
            &account.sam_account_name,
            "--attributes=pwdLastSet",
        ],
    );
    shown
        .lines()
        .find_map(|line| line.strip_prefix("pwdLastSet: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn first_user_dn(lab: &Lab, ou: &str) -> String {
    let mut command = common::ldapsearch(lab);
    command.args([
        "-b",
        &format!("{ou},{}", lab.base_dn),
        "-s",
        "one",
        "(objectClass=user)",
        "dn",
    ]);
    let out = common::stdout_of(command);
    out.lines()
        .find_map(|line| line.strip_prefix("dn: "))
        .unwrap()
        .to_owned()
}

/// Reads all changes since `cookie` (looping on moreResults) and returns them with the new cookie.
async fn read_all(
    service: &DirectoryConnection,
    scope: &SyncScope,
    cookie: &DirSyncCookie,
) -> (Vec<DirectoryChange>, DirSyncCookie) {
    let mut changes = Vec::new();
    let mut cookie = cookie.clone();
    loop {
        let ChangeBatch {
            changes: batch,
            cookie: next,
            more_results,
        } = import::read_changes(service, &domain(), scope, &cookie)
            .await
            .unwrap();
        changes.extend(batch);
        cookie = next;
        if !more_results {
            return (changes, cookie);
        }
    }
}

/// A change summarized for comparison: kind, name (RDN value or GUID), and details.
fn summary(change: &DirectoryChange) -> String {
    match change {
        DirectoryChange::InScope {
            object,
            changed_attributes,
            members,
        } => {
            let members = match members {
                MemberChanges::Unchanged => String::new(),
                MemberChanges::Complete => format!(" members={}", object.values("member").len()),
                MemberChanges::Delta { added, removed } => {
                    format!(" +{} -{}", added.len(), removed.len())
                }
            };
            let attributes: Vec<&str> = changed_attributes
                .iter()
                .map(String::as_str)
                .filter(|name| ["name", "displayName", "description"].contains(name))
                .collect();
            format!(
                "in {} [{}]{members}",
                object.dn.rdn_value().unwrap(),
                attributes.join(",")
            )
        }
        DirectoryChange::OutOfScope { dn, .. } => format!("out {}", dn.rdn_value().unwrap()),
        DirectoryChange::Deleted { anchor } => format!("deleted {anchor}"),
    }
}

fn summaries(changes: &[DirectoryChange]) -> BTreeSet<String> {
    changes.iter().map(summary).collect()
}

fn guid_of(lab: &Lab, sam: &str) -> String {
    let shown = samba_tool(lab, &["user", "show", sam, "--attributes=objectGUID"]);
    shown
        .lines()
        .find_map(|line| line.strip_prefix("objectGUID: "))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn incremental_reads_report_exactly_the_changes_made() {
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let tag = unique("t");
    let tracked = format!("OU=Tracked-{tag},OU=Staging");
    let outside = format!("OU=Outside-{tag},OU=Staging");
    samba_tool(lab, &["ou", "create", &tracked]);
    samba_tool(lab, &["ou", "create", &outside]);
    let scope = SyncScope::new(vec![dn(&tracked)], Vec::new());

    let (account, password) = set_up_account(&unique("host-d-"), false, None).await;
    let service = connect(account.dn.as_str(), &password).await;

    // Deletions are invisible until the DC's SYSTEM grants read on CN=Deleted Objects; dirsync
    // says so and gives the command. Run it as the administrator would.
    assert!(!can_see_deleted_objects(&service, &domain()).await.unwrap());
    common::installation::follow_deleted_objects_advice(
        lab,
        &account.sid,
        &account.sam_account_name,
    );
    assert!(can_see_deleted_objects(&service, &domain()).await.unwrap());

    let cookie = import::current_cookie(&service, &domain()).await.unwrap();
    let (nothing, cookie) = read_all(&service, &scope, &cookie).await;
    assert!(nothing.is_empty(), "{:?}", summaries(&nothing));

    // Adds: two users and a group in the tracked OU, one user outside.
    let (ann, bob, out) = (
        format!("ann{tag}"),
        format!("bob{tag}"),
        format!("out{tag}"),
    );
    let group = format!("grp{tag}");
    let password_arg = "--random-password";
    samba_tool(
        lab,
        &[
            "user",
            "create",
            &ann,
            password_arg,
            &format!("--userou={tracked}"),
            "--given-name=Ann",
            "--surname=Tracked",
        ],
    );
    samba_tool(
        lab,
        &[
            "user",
            "create",
            &bob,
            password_arg,
            &format!("--userou={tracked}"),
        ],
    );
    samba_tool(
        lab,
        &[
            "user",
            "create",
            &out,
            password_arg,
            &format!("--userou={outside}"),
        ],
    );
    samba_tool(
        lab,
        &["group", "create", &group, &format!("--groupou={tracked}")],
    );
    samba_tool(
        lab,
        &["group", "addmembers", &group, &format!("{ann},{bob}")],
    );
    let (changes, cookie) = read_all(&service, &scope, &cookie).await;
    assert_eq!(
        summaries(&changes),
        BTreeSet::from([
            "in Ann Tracked [displayName,name]".to_owned(),
            format!("in {bob} [name]"),
            format!("in {group} [name] members=2"),
            format!("out {out}"),
        ]),
    );
    let ann_object = in_scope_object(&changes, "Ann Tracked");
    assert_eq!(ann_object.kind, ObjectKind::User);
    assert_eq!(ann_object.first("givenName"), Some("Ann"));
    assert_eq!(
        ann_object.anchor.to_string(),
        guid_of(lab, &ann),
        "the anchor is objectGUID"
    );

    // Nothing happened: nothing is reported.
    let (nothing, cookie) = read_all(&service, &scope, &cookie).await;
    assert!(nothing.is_empty(), "{:?}", summaries(&nothing));

    // A modify, a move out, a move in, a membership change.
    samba_tool(lab, &["user", "rename", &bob, "--display-name=Bob Renamed"]);
    samba_tool(lab, &["user", "move", &ann, &outside]);
    samba_tool(lab, &["user", "move", &out, &tracked]);
    samba_tool(lab, &["group", "removemembers", &group, &bob]);
    let (changes, cookie) = read_all(&service, &scope, &cookie).await;
    assert_eq!(
        summaries(&changes),
        BTreeSet::from([
            format!("in {bob} [displayName]"),
            "out Ann Tracked".to_owned(),
            format!("in {out} [name]"),
            format!("in {group} [] +0 -1"),
        ]),
    );

    // A delete, and a change outside the scope (reported as out of scope, never in).
    let bob_guid = guid_of(lab, &bob);
    samba_tool(lab, &["user", "delete", &bob]);
    samba_tool(lab, &["user", "rename", &ann, "--display-name=Ann Outside"]);
    let (changes, cookie) = read_all(&service, &scope, &cookie).await;
    assert_eq!(
        summaries(&changes),
        BTreeSet::from([format!("deleted {bob_guid}"), "out Ann Tracked".to_owned()]),
    );

    // Renaming the OU moves everything in it: each object is reported with its new DN.
    let renamed = format!("Renamed-{tag}");
    samba_tool(
        lab,
        &[
            "ou",
            "rename",
            &tracked,
            &format!("OU={renamed},OU=Staging"),
        ],
    );
    let moved_scope = SyncScope::new(vec![dn(&format!("OU={renamed},OU=Staging"))], Vec::new());
    let (changes, _) = read_all(&service, &moved_scope, &cookie).await;
    let moved: BTreeSet<String> = changes
        .iter()
        .filter_map(|change| match change {
            DirectoryChange::InScope { object, .. } => Some(object.dn.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        moved.contains(&dn(&format!("CN={out},OU={renamed},OU=Staging")).to_string()),
        "{moved:?}"
    );
    assert!(
        moved
            .iter()
            .any(|dn| dn.starts_with(&format!("CN={group},OU={renamed}"))),
        "{moved:?}"
    );

    tear_down(&account).await;
    for ou in [format!("OU={renamed},OU=Staging"), outside] {
        samba_tool(lab, &["ou", "delete", &ou, "--force-subtree-delete"]);
    }
}

fn in_scope_object<'a>(changes: &'a [DirectoryChange], rdn: &str) -> &'a DirectoryObject {
    changes
        .iter()
        .find_map(|change| match change {
            DirectoryChange::InScope { object, .. } if object.dn.rdn_value() == Some(rdn) => {
                Some(object)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{rdn} not reported in scope"))
}

#[tokio::test]
async fn a_cookie_the_server_rejects_calls_for_a_full_import() {
    let _turn = SERIAL.lock().await;
    let (account, password) = set_up_account(&unique("host-e-"), false, None).await;
    let service = connect(account.dn.as_str(), &password).await;
    let scope = SyncScope::new(vec![domain()], Vec::new());
    let garbage = DirSyncCookie::from_bytes(b"not a cookie".to_vec());
    let error = import::read_changes(&service, &domain(), &scope, &garbage)
        .await
        .expect_err("the server refuses it");
    assert!(
        matches!(error, DirectoryError::CookieRejected { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("a full import replaces it"));
    tear_down(&account).await;
}

#[tokio::test]
async fn the_full_import_reads_what_ldapsearch_reads() {
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let (account, password) = set_up_account(&unique("host-f-"), false, None).await;
    let service = connect(account.dn.as_str(), &password).await;
    let scope = SyncScope::new(vec![dn("OU=Corp")], vec![dn("OU=Sales,OU=Corp")]);
    let mut import = FullImport::new(&service, &scope);
    let mut objects = Vec::new();
    while let Some(page) = import.next_page().await.unwrap() {
        objects.extend(page);
    }

    let mut command = common::ldapsearch(lab);
    command.args([
        "-b",
        &format!("OU=Corp,{}", lab.base_dn),
        "-E",
        "pr=1000/noprompt",
        import::USERS_AND_GROUPS_FILTER,
        "dn",
    ]);
    let sales = dn("OU=Sales,OU=Corp");
    let expected: BTreeSet<String> = common::stdout_of(command)
        .lines()
        .filter_map(|line| line.strip_prefix("dn: "))
        .map(|text| Dn::parse(text).unwrap())
        .filter(|dn| !dn.is_within(&sales))
        .map(|dn| dn.normalized().to_owned())
        .collect();
    let got: BTreeSet<String> = objects
        .iter()
        .map(|object| object.dn.normalized().to_owned())
        .collect();
    assert_eq!(got, expected);
    assert!(got.len() > 20, "{}", got.len());

    let plain = objects
        .iter()
        .find(|object| object.first("sAMAccountName") == Some("plain.user"))
        .unwrap();
    assert_eq!(plain.account_enabled(), Some(true));
    let groups: Vec<&DirectoryObject> = objects
        .iter()
        .filter(|object| object.kind == ObjectKind::Group)
        .collect();
    assert!(groups.iter().any(|group| group.values("member").len() >= 3));
    assert!(objects.iter().all(|object| object.problems.is_empty()));
    tear_down(&account).await;
}

#[tokio::test]
async fn a_connection_dropped_mid_read_is_read_again_from_the_same_cookie() {
    use dirsync::directory::reader::{DirectoryReader, RetryPolicy};
    let _turn = SERIAL.lock().await;
    let lab = lab();
    let (account, password) = set_up_account(&unique("host-g-"), false, None).await;
    let scope = SyncScope::new(vec![dn("OU=Corp")], Vec::new());
    // An empty cookie reads everything: an answer far larger than the proxy lets through.
    let from_the_start = DirSyncCookie::from_bytes(Vec::new());
    let service = connect(account.dn.as_str(), &password).await;
    let direct = import::read_changes(&service, &domain(), &scope, &from_the_start)
        .await
        .unwrap();
    assert!(direct.changes.len() > 20, "{}", direct.changes.len());

    let upstream = lab
        .ldaps_url
        .trim_start_matches("ldaps://")
        .parse()
        .unwrap();
    let proxy = common::DroppingProxy::start(upstream, 20_000);
    let through_proxy = DirectoryTarget::new(
        &format!("ldaps://127.0.0.1:{}", proxy.port),
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap();
    let mut reader = DirectoryReader::new(
        through_proxy,
        account.dn.to_string(),
        password.clone(),
        domain(),
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(100),
        },
    );
    let retried = reader.read_changes(&scope, &from_the_start).await.unwrap();
    assert_eq!(reader.reconnects(), 1, "the first connection was cut");
    assert_eq!(summaries(&retried.changes), summaries(&direct.changes));
    assert_eq!(retried.changes.len(), direct.changes.len());
    tear_down(&account).await;
}

#[tokio::test]
async fn a_ranged_member_attribute_is_read_completely() {
    // Samba sends all values at once unless asked for a range, so ask for the first two, as
    // Windows would send a large group's first 1,500, and let dirsync fetch the rest.
    let admin = admin().await;
    let group = dn("CN=IT Admins,OU=Groups,OU=Corp");
    let mut entry = admin
        .read_entry("read a range", group.as_str(), &["member;range=0-1"])
        .await
        .unwrap();
    assert_eq!(entry.attrs["member;range=0-1"].len(), 2, "{entry:?}");
    import::complete_ranged_values(&admin, &mut entry)
        .await
        .unwrap();
    let all = admin
        .read_entry("read all members", group.as_str(), &["member"])
        .await
        .unwrap();
    let completed: BTreeSet<&String> = entry.attrs["member"].iter().collect();
    let expected: BTreeSet<&String> = all.attrs["member"].iter().collect();
    assert_eq!(entry.attrs["member"].len(), expected.len(), "no duplicates");
    assert_eq!(completed, expected);
    assert!(expected.len() >= 5);
    assert!(!entry.attrs.keys().any(|name| name.contains(";range=")));
}
