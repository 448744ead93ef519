//! Several forests into one tenant (README, "Several forests"), end to end: the real binary's
//! setup and cycles against two Samba AD DCs of different forests (corp on 127.0.0.1, fabrikam
//! on 127.0.0.2, both started by `tests/lab/lab`) and the tenant emulator.
//!
//! Run alone with `keyctl session - cargo test --test forests_lab` (the keyring is the kernel's).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::installation::{ldapmodify, unique};
use common::window::{
    READ, click, open_dashboard, open_run_by_link, shows, texts, tree, wait_until,
};
use common::{Lab, Run, lab, second_forest, second_forest_down, second_forest_up};
use dirsync::ui::dashboard::DashboardOptions;
use serde_json::Value;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

/// Every computer name these tests use starts so (their service accounts are removed after).
const COMPUTER_PREFIX: &str = "forests-";

/// The tests stop and start the second forest's DC: one at a time.
static LAB_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn emulator() -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["contoso.test".to_owned()],
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts")
}

/// An OU of this test's users in one forest, made by the forest's administrator.
fn make_ou(lab: &Lab, parent: &str, name: &str) -> String {
    let dn = format!("OU={name},{parent}");
    ldapmodify(
        lab,
        &format!("dn: {dn}\nchangetype: add\nobjectClass: organizationalUnit\n\n"),
    );
    dn
}

/// A user: `attributes` are LDIF lines after the class.
fn add_user(lab: &Lab, ou: &str, cn: &str, sam: &str, attributes: &[(&str, &str)]) -> String {
    let dn = format!("CN={cn},{ou}");
    let mut ldif = format!(
        "dn: {dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: {sam}\nuserAccountControl: 512\n"
    );
    for (name, value) in attributes {
        ldif.push_str(&format!("{name}: {value}\n"));
    }
    ldif.push('\n');
    ldapmodify(lab, &ldif);
    dn
}

fn answers(
    emulator: &RunningEmulator,
    corp: &Lab,
    corp_ou: &str,
    fabrikam: &Lab,
    fabrikam_ou: &str,
) -> String {
    let info = &emulator.info;
    format!(
        r#"sync_now = false

[cloud]
authority = "{authority}"
graph = "{graph}"
tenant = "contoso-lab.onmicrosoft.com"
sign_in = "app"
client_id = "{client_id}"
client_secret_env = "FORESTS_TEST_CLIENT_SECRET"

[directory]
server = "{corp_url}"
ca_file = "{corp_ca}"
admin_user = "{corp_admin}"

[options]
deletion_threshold = 100
forest_join = "mail"

[scope]
included = ["{corp_ou}"]

[[forests]]
scope = {{ included = ["{fabrikam_ou}"] }}

[forests.directory]
server = "{fabrikam_url}"
ca_file = "{fabrikam_ca}"
admin_user = "{fabrikam_admin}"
admin_password_env = "FORESTS_TEST_FABRIKAM_PASSWORD"
"#,
        authority = info.authority,
        graph = info.graph,
        client_id = info.client_id,
        corp_url = corp.ldaps_url,
        corp_ca = corp.ca_file.display(),
        corp_admin = corp.admin_upn,
        fabrikam_url = fabrikam.ldaps_url,
        fabrikam_ca = fabrikam.ca_file.display(),
        fabrikam_admin = fabrikam.admin_upn,
    )
}

fn dirsync(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(args)
        .env("DIRSYNC_HOME", home)
        .env_remove("DIRSYNC_ADMIN_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `dirsync setup --answers` with `answers` (saved in `home`), this test's computer name and every
/// secret the lab's answers name in their variables.
fn setup(
    home: &Path,
    name: &str,
    answers: &str,
    computer: &str,
    emulator: &RunningEmulator,
) -> Run {
    let file = home.join(name);
    std::fs::write(&file, answers).unwrap();
    dirsync(
        home,
        &["setup", "--answers", file.to_str().unwrap(), "--json"],
        &[
            ("HOSTNAME", computer),
            ("DIRSYNC_ADMIN_PASSWORD", &lab().admin_password),
            (
                "FORESTS_TEST_FABRIKAM_PASSWORD",
                &second_forest().admin_password,
            ),
            ("FORESTS_TEST_CLIENT_SECRET", &emulator.info.client_secret),
        ],
    )
}

fn sync(home: &Path) -> Value {
    let run = dirsync(home, &["sync", "--json"], &[]);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("sync printed no JSON ({error}): {run:?}"))
}

fn user_by_mail<'a>(users: &'a [Value], mail: &str) -> Vec<&'a Value> {
    users
        .iter()
        .filter(|user| {
            user["mail"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(mail))
        })
        .collect()
}

async fn remove_test_accounts(corp: &Lab, fabrikam: &Lab) {
    common::accounts::remove_service_accounts(corp, COMPUTER_PREFIX).await;
    common::accounts::remove_service_accounts(fabrikam, COMPUTER_PREFIX).await;
}

/// Two forests set up and synced into one tenant: each forest's users arrive, the same person
/// (by mail) is one cloud user with the first forest's values winning, an unrelated user with
/// a colliding UPN is an error naming both, and a forest whose DC is down is recorded while the
/// other's changes still export and nothing of the down forest is deleted.
#[tokio::test]
async fn two_forests_sync_into_one_tenant() {
    let _turn = LAB_TURN.lock().await;
    let corp = lab();
    let fabrikam = second_forest();
    remove_test_accounts(corp, fabrikam).await;
    let tag = unique("f");
    let corp_ou = make_ou(corp, &format!("OU=Staging,{}", corp.base_dn), &tag);
    let fabrikam_ou = make_ou(fabrikam, &fabrikam.base_dn, &tag);
    let mail = |name: &str| format!("{name}.{tag}@contoso.test");
    let corp_tess = add_user(
        corp,
        &corp_ou,
        "Tess Join",
        &format!("tess{tag}"),
        &[
            ("userPrincipalName", &mail("tess")),
            ("mail", &mail("tess")),
            ("displayName", "Tess Join"),
            ("title", "Director"),
        ],
    );
    let fabrikam_tess = add_user(
        fabrikam,
        &fabrikam_ou,
        "Tess Join",
        &format!("tess{tag}"),
        &[
            (
                "userPrincipalName",
                &format!("tess.{tag}@fabrikam.dirsync.test"),
            ),
            ("mail", &mail("tess")),
            ("displayName", "Tess J. (Fabrikam)"),
            ("title", "Advisor"),
            ("department", "Research"),
        ],
    );
    add_user(
        corp,
        &corp_ou,
        "Cora Only",
        &format!("cora{tag}"),
        &[
            ("userPrincipalName", &mail("cora")),
            ("mail", &mail("cora")),
        ],
    );
    add_user(
        fabrikam,
        &fabrikam_ou,
        "Finn Only",
        &format!("finn{tag}"),
        &[
            ("userPrincipalName", &mail("finn")),
            ("mail", &mail("finn")),
        ],
    );
    // A fabrikam group whose member is the same person: the cloud group has the one user.
    let finn_dn = format!("CN=Finn Only,{fabrikam_ou}");
    ldapmodify(
        fabrikam,
        &format!(
            "dn: CN=Fab Team,{fabrikam_ou}\nchangetype: add\nobjectClass: group\nsAMAccountName: fabteam{tag}\nmember: {fabrikam_tess}\nmember: {finn_dn}\n\n"
        ),
    );
    let corp_dup = add_user(
        corp,
        &corp_ou,
        "Dana Dup",
        &format!("dana{tag}"),
        &[
            ("userPrincipalName", &mail("dana")),
            ("mail", &mail("dana")),
        ],
    );
    let fabrikam_dup = add_user(
        fabrikam,
        &fabrikam_ou,
        "Dana Other",
        &format!("danao{tag}"),
        &[
            ("userPrincipalName", &mail("dana")),
            ("mail", &mail("dana-other")),
        ],
    );

    let emulator = emulator();
    let home = tempfile::tempdir().unwrap();
    let computer = format!("{COMPUTER_PREFIX}{tag}");
    // The same forest listed twice is refused, naming the entry, before anything is saved.
    let twice = answers(&emulator, corp, &corp_ou, corp, &corp_ou)
        .replace("FORESTS_TEST_FABRIKAM_PASSWORD", "DIRSYNC_ADMIN_PASSWORD");
    let refused = setup(home.path(), "twice.toml", &twice, &computer, &emulator);
    assert_eq!(refused.status, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("forests[0]:")
            && refused
                .stderr
                .contains("corp.dirsync.test, which is already synchronized"),
        "{refused:?}"
    );
    assert!(!home.path().join("config.toml").exists());
    let mut accounts = common::ldapsearch(corp);
    accounts.args([
        "-b",
        &format!("CN=Users,{}", corp.base_dn),
        &format!("(&(sAMAccountName=MSOL_*)(description=*{computer}*))"),
        "dn",
    ]);
    assert!(
        !common::stdout_of(accounts).contains("dn: "),
        "nothing changed in AD before the forests were checked"
    );
    let setup = setup(
        home.path(),
        "answers.toml",
        &answers(&emulator, corp, &corp_ou, fabrikam, &fabrikam_ou),
        &computer,
        &emulator,
    );
    assert_eq!(setup.status, 0, "{setup:?}");
    // Each forest's UPN suffixes are checked against the tenant's verified domains.
    let warnings = serde_json::from_str::<Value>(&setup.stdout).unwrap()["warnings"].to_string();
    assert!(
        warnings.contains("fabrikam.dirsync.test: the UPN suffix fabrikam.dirsync.test is not a verified cloud domain"),
        "{warnings}"
    );
    assert!(
        warnings.contains(
            "corp.dirsync.test: the UPN suffix corp.dirsync.test is not a verified cloud domain"
        ),
        "{warnings}"
    );
    assert!(!warnings.contains("suffix contoso.test"), "{warnings}");
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    assert!(config.contains("[[forests]]"), "{config}");
    assert!(
        config.contains("DC=fabrikam,DC=dirsync,DC=test"),
        "{config}"
    );
    assert!(!config.contains(&fabrikam.admin_password));

    let report = sync(home.path());
    assert_eq!(
        report["run"]["status"], "completed-with-errors",
        "{report:#}"
    );
    let users = emulator.objects("users");
    assert_eq!(
        user_by_mail(&users, &mail("cora")).len(),
        1,
        "corp's user arrives"
    );
    assert_eq!(
        user_by_mail(&users, &mail("finn")).len(),
        1,
        "fabrikam's user arrives"
    );
    // The same person in both forests is one cloud user: corp (listed first) holds it and wins
    // each property it has; fabrikam fills what corp leaves empty.
    let tess = user_by_mail(&users, &mail("tess"));
    assert_eq!(tess.len(), 1, "{tess:#?}");
    assert_eq!(tess[0]["userPrincipalName"], mail("tess").as_str());
    assert_eq!(tess[0]["jobTitle"], "Director");
    assert_eq!(tess[0]["displayName"], "Tess Join");
    assert_eq!(tess[0]["department"], "Research");
    let groups = emulator.objects("groups");
    let team = groups
        .iter()
        .find(|group| group["displayName"] == "Fab Team")
        .unwrap_or_else(|| panic!("{groups:#?}"));
    let finn_id = &user_by_mail(&users, &mail("finn"))[0]["id"];
    let mut members: Vec<&Value> = team["members"].as_array().unwrap().iter().collect();
    members.sort_by_key(|id| id.as_str().map(str::to_owned));
    let mut wanted = vec![&tess[0]["id"], finn_id];
    wanted.sort_by_key(|id| id.as_str().map(str::to_owned));
    assert_eq!(members, wanted, "the group's members are the cloud users");
    // Unrelated users with one UPN: neither is made, and each error names the other AD object.
    assert!(
        users
            .iter()
            .all(|user| user["userPrincipalName"] != mail("dana").as_str()),
        "{users:#?}"
    );
    let run_id = report["run"]["id"].as_i64().unwrap().to_string();
    let errors = dirsync(home.path(), &["runs", "show", &run_id, "--json"], &[]);
    assert!(errors.stdout.contains(&corp_dup), "{}", errors.stdout);
    assert!(errors.stdout.contains(&fabrikam_dup), "{}", errors.stdout);
    // Each forest's import is a step of its own.
    let shown: Value = serde_json::from_str(&errors.stdout).unwrap();
    assert_eq!(
        common::step_connectors(&shown),
        ["corp.dirsync.test", "fabrikam.dirsync.test"],
        "{shown:#}"
    );

    // `dirsync trace` finds an object in whichever forest holds it.
    let traced = dirsync(home.path(), &["trace", &mail("finn"), "--json"], &[]);
    let traced: Value =
        serde_json::from_str(&traced.stdout).unwrap_or_else(|error| panic!("{error}: {traced:?}"));
    assert_eq!(traced["found"]["dn"], finn_dn.as_str(), "{traced:#}");

    // A change to the secondary's value that corp does not hold flows to the one user.
    ldapmodify(
        fabrikam,
        &format!(
            "dn: {fabrikam_tess}\nchangetype: modify\nreplace: department\ndepartment: Labs\n\n"
        ),
    );
    sync(home.path());
    let users = emulator.objects("users");
    assert_eq!(user_by_mail(&users, &mail("tess"))[0]["department"], "Labs");

    // Fabrikam's DC down: its import fails and is recorded; corp's change still exports, and
    // nothing of fabrikam is deleted.
    second_forest_down();
    ldapmodify(
        corp,
        &format!(
            "dn: {corp_tess}\nchangetype: modify\nreplace: title\ntitle: Managing Director\n\n"
        ),
    );
    let report = sync(home.path());
    second_forest_up();
    assert_eq!(
        report["run"]["status"], "completed-with-errors",
        "{report:#}"
    );
    let users = emulator.objects("users");
    assert_eq!(
        user_by_mail(&users, &mail("tess"))[0]["jobTitle"],
        "Managing Director"
    );
    assert_eq!(
        user_by_mail(&users, &mail("finn")).len(),
        1,
        "nothing of fabrikam is deleted"
    );
    assert_eq!(user_by_mail(&users, &mail("tess"))[0]["department"], "Labs");
    let run_id = report["run"]["id"].as_i64().unwrap().to_string();
    let shown = dirsync(home.path(), &["runs", "show", &run_id, "--json"], &[]);
    assert!(shown.stdout.contains("forest-failed"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("fabrikam.dirsync.test"),
        "{}",
        shown.stdout
    );

    // The window: one connector per forest, the failed one saying so, and the run's steps per
    // forest.
    let (runtime, mut window) = open_dashboard(
        home.path(),
        DashboardOptions {
            scheduling: false,
            read_cloud: false,
            fixed_now: None,
        },
    );
    click(&mut window, "Connectors");
    wait_until(&mut window, READ, "both forests' connectors", |window| {
        shows(window, "Active Directory: corp.dirsync.test")
            && shows(window, "Active Directory: fabrikam.dirsync.test")
            && shows(window, "Last import failed")
    });
    assert!(shows(&window, &fabrikam_ou), "fabrikam's scope");
    assert!(shows(&window, &corp_ou), "corp's scope");
    let failure = texts(&window)
        .into_iter()
        .find(|text| text.starts_with(&format!("run {run_id}:")))
        .unwrap_or_else(|| panic!("no failure line: {}", tree(&window)));
    assert!(failure.contains("fabrikam.dirsync.test"), "{failure}");
    click(&mut window, "Operations");
    open_run_by_link(&mut window, run_id.parse().unwrap());
    assert!(
        shows(&window, "directory-import (corp.dirsync.test)"),
        "{}",
        tree(&window)
    );
    assert!(shows(&window, "directory-import (fabrikam.dirsync.test)"));
    drop(window);
    // This test is async: the window's runtime cannot be dropped (and waited for) here.
    runtime.shutdown_background();

    // Fabrikam removed from the configuration (the wizard's "Remove this forest"): a preview
    // shows its user's delete, a run makes it, and the person of both forests loses
    // fabrikam's values.
    let config_file = home.path().join("config.toml");
    let mut config = dirsync::config::Config::load(&config_file).unwrap();
    config.forests.clear();
    config.save(&config_file).unwrap();
    let preview = dirsync(home.path(), &["sync", "--preview", "--json"], &[]);
    let preview: Value = serde_json::from_str(&preview.stdout).unwrap();
    let deletes: Vec<&str> = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["change_kind"] == "delete")
        .filter_map(|change| change["dn"].as_str())
        .collect();
    assert!(
        deletes.iter().any(|dn| dn.starts_with("CN=Finn Only")),
        "{preview:#}"
    );
    assert!(
        deletes.iter().all(|dn| dn.ends_with(&fabrikam.base_dn)),
        "{deletes:?}"
    );
    assert_eq!(
        user_by_mail(&emulator.objects("users"), &mail("finn")).len(),
        1
    );
    let report = sync(home.path());
    let users = emulator.objects("users");
    assert!(user_by_mail(&users, &mail("finn")).is_empty(), "{report:#}");
    let tess = user_by_mail(&users, &mail("tess"));
    assert_eq!(tess.len(), 1, "corp's user stays");
    assert!(tess[0]["department"].is_null(), "{tess:#?}");

    remove_test_accounts(corp, fabrikam).await;
}

/// One attribute of one entry, base64 as ldapsearch prints binary values (`name:: …`), or the
/// text of a text value.
fn attribute_of(lab: &Lab, dn: &str, attribute: &str) -> Option<String> {
    let mut search = common::ldapsearch(lab);
    search.args(["-b", dn, "-s", "base", "(objectClass=*)", attribute]);
    let printed = common::stdout_of(search);
    printed.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case(attribute)
            .then(|| value.trim_start_matches(':').trim().to_owned())
    })
}

/// Lets the service account see deletions on a Samba DC, as the advice setup prints says.
fn show_deletions_to(lab: &Lab, account_dn: &str) {
    use base64::Engine as _;
    let sid_bytes = base64::engine::general_purpose::STANDARD
        .decode(attribute_of(lab, account_dn, "objectSid").unwrap())
        .unwrap();
    let sid = dirsync::directory::sid::Sid::from_bytes(&sid_bytes).unwrap();
    common::installation::follow_deleted_objects_advice(lab, &sid, "MSOL");
}

/// A user moved from one forest to the other with its mS-DS-ConsistencyGuid (as a migration
/// tool copies it) keeps its cloud user: the same id and sign-in name. Setup gave a new
/// installation that anchor, the first sync wrote it from the objectGUID, and the service
/// account may write that attribute and nothing else of a user.
#[tokio::test]
async fn a_user_moved_between_forests_keeps_its_cloud_user() {
    use base64::Engine as _;
    let _turn = LAB_TURN.lock().await;
    let corp = lab();
    let fabrikam = second_forest();
    let tag = unique("m");
    let corp_ou = make_ou(corp, &format!("OU=Staging,{}", corp.base_dn), &tag);
    let fabrikam_ou = make_ou(fabrikam, &fabrikam.base_dn, &tag);
    let upn = format!("mo.{tag}@contoso.test");
    let corp_mo = add_user(
        corp,
        &corp_ou,
        "Mo Ved",
        &format!("mo{tag}"),
        &[
            ("userPrincipalName", &upn),
            ("mail", &upn),
            ("department", "Sales"),
        ],
    );

    let emulator = emulator();
    let home = tempfile::tempdir().unwrap();
    let computer = format!("{COMPUTER_PREFIX}{tag}");
    let setup = setup(
        home.path(),
        "answers.toml",
        &answers(&emulator, corp, &corp_ou, fabrikam, &fabrikam_ou),
        &computer,
        &emulator,
    );
    assert_eq!(setup.status, 0, "{setup:?}");
    let config = dirsync::config::Config::load(&home.path().join("config.toml")).unwrap();
    assert_eq!(
        config.options.source_anchor,
        Some(dirsync::config::SourceAnchor::ConsistencyGuid)
    );
    show_deletions_to(fabrikam, &config.forests[0].directory.service_account_dn);

    sync(home.path());
    let cloud = user_by_mail(&emulator.objects("users"), &upn)[0].clone();
    // The first sync wrote the objectGUID into mS-DS-ConsistencyGuid.
    let object_guid = attribute_of(corp, &corp_mo, "objectGUID").unwrap();
    assert_eq!(
        attribute_of(corp, &corp_mo, "mS-DS-ConsistencyGuid").as_deref(),
        Some(object_guid.as_str())
    );
    assert_eq!(cloud["onPremisesImmutableId"], object_guid.as_str());

    // Least privilege: the service account writes that attribute, not the user's others.
    let account = &config.directory.service_account_dn;
    let password = {
        use dirsync::secret_store::SecretStore as _;
        dirsync::secret_store::OsKeyring
            .load(&dirsync::secret_store::service_account_key(account))
            .unwrap()
            .unwrap()
    };
    let refused = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", &corp.ca_file)
        .args([
            "-x",
            "-H",
            &corp.ldaps_url,
            "-D",
            account,
            "-w",
            password.expose(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(
                format!(
                    "dn: {corp_mo}\nchangetype: modify\nreplace: department\ndepartment: Taken\n\n"
                )
                .as_bytes(),
            )?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        !refused.status.success(),
        "the service account wrote a department"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Insufficient access"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The migration: fabrikam gets the user with its mS-DS-ConsistencyGuid, corp loses it.
    let fabrikam_mo = add_user(
        fabrikam,
        &fabrikam_ou,
        "Mo Ved",
        &format!("mo{tag}"),
        &[
            ("userPrincipalName", &upn),
            ("mail", &upn),
            ("department", "Research"),
            ("mS-DS-ConsistencyGuid:", &object_guid),
        ],
    );
    assert_ne!(
        attribute_of(fabrikam, &fabrikam_mo, "objectGUID").unwrap(),
        object_guid
    );
    // While both accounts exist, the later read wins (README, "The source anchor"): here corp's,
    // changed after fabrikam's was read. Its deletion then must not delete the user fabrikam has.
    sync(home.path());
    ldapmodify(
        corp,
        &format!("dn: {corp_mo}\nchangetype: modify\nreplace: title\ntitle: Leaving\n\n"),
    );
    sync(home.path());
    let users = emulator.objects("users");
    assert_eq!(user_by_mail(&users, &upn)[0]["jobTitle"], "Leaving");
    show_deletions_to(corp, account);
    ldapmodify(corp, &format!("dn: {corp_mo}\nchangetype: delete\n\n"));
    let report = sync(home.path());
    let users = emulator.objects("users");
    let moved = user_by_mail(&users, &upn);
    assert_eq!(moved.len(), 1, "{report:#}");
    assert_eq!(moved[0]["id"], cloud["id"], "the same cloud user");
    assert_eq!(moved[0]["userPrincipalName"], upn.as_str());
    assert_eq!(moved[0]["onPremisesImmutableId"], object_guid.as_str());
    assert_eq!(moved[0]["department"], "Research");
    assert_eq!(report["run"]["status"], "success", "{report:#}");

    // Deleted in its new forest (DirSync names it by its new objectGUID): its cloud user goes.
    ldapmodify(
        fabrikam,
        &format!("dn: {fabrikam_mo}\nchangetype: delete\n\n"),
    );
    let report = sync(home.path());
    let users = emulator.objects("users");
    let gone = user_by_mail(&users, &upn);
    assert!(gone.is_empty(), "{report:#}");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&object_guid)
        .unwrap();
    assert_eq!(decoded.len(), 16);

    remove_test_accounts(corp, fabrikam).await;
}
