//! The dashboard's frame, driven by role and label through egui_kittest on a synthetic home (a
//! temporary directory with a configuration and a run history written through the store), with
//! no network and no lab: the history, a run's counters and the objects they list, an error's
//! hint, export, the deletion threshold's confirmation, settings, search, and every view as an
//! image in the light and the dark theme.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dirsync::config::{CloudConfig, Config, DirectoryConfig, ScopeConfig, SyncOptions};
use dirsync::home::Home;
use dirsync::store::StateStore;
use dirsync::store::runs::{
    AttributeValues, ErrorRecord, ObjectChangeRecord, RunId, StepCounters, WarningRecord,
};
use dirsync::store::vocabulary::{
    ChangeKind, ObjectKind, RunMode, RunStatus, RunTrigger, StepKind,
};
use dirsync::ui::DirsyncApp;
use dirsync::ui::dashboard::{DashboardOptions, Tab};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use serde_json::{Value, json};

#[path = "support/software_renderer.rs"]
mod software_renderer;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

/// "Now" for the dashboard: 2026-11-21 14:03:07Z. Every time in the history is before it.
const FIXED_NOW_MS: i64 = 1_795_269_787_000;
const MINUTE_MS: i64 = 60_000;

const NAMING_CONTEXT: &str = "DC=corp,DC=dirsync,DC=test";
const INCLUDED_OU: &str = "OU=Corp,DC=corp,DC=dirsync,DC=test";
const EXCLUDED_OU: &str = "OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test";

/// The run the synchronization step's error is in.
const ERROR_RUN: RunId = 3;
/// The run with the multi-valued attribute's update.
const DIFF_RUN: RunId = 5;
/// The run the deletion threshold stopped: the newest sync run (a password run came after).
const THRESHOLD_RUN: RunId = 7;
const RUN_COUNT: usize = 8;

/// An object of the synthetic directory.
#[derive(Debug, Clone, Copy)]
struct Object {
    dn: &'static str,
    anchor: &'static str,
    cloud_id: &'static str,
    kind: ObjectKind,
    /// The user's UPN (empty for a group).
    upn: &'static str,
}

const fn user(
    dn: &'static str,
    anchor: &'static str,
    cloud_id: &'static str,
    upn: &'static str,
) -> Object {
    Object {
        dn,
        anchor,
        cloud_id,
        kind: ObjectKind::User,
        upn,
    }
}

const JOHN: Object = user(
    "CN=John Doe,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
    "6f9619ff-8b86-d011-b42d-00c04fc96401",
    "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0001",
    "jdoe@corp.dirsync.test",
);
const ALICE: Object = user(
    "CN=Alice Smith,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
    "6f9619ff-8b86-d011-b42d-00c04fc96402",
    "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0002",
    "asmith@corp.dirsync.test",
);
const ANN: Object = user(
    "CN=Ann Bee,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
    "6f9619ff-8b86-d011-b42d-00c04fc96403",
    "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0003",
    "abee@corp.dirsync.test",
);
const CAROL: Object = user(
    "CN=Carol Lee,OU=Engineering,OU=Corp,DC=corp,DC=dirsync,DC=test",
    "6f9619ff-8b86-d011-b42d-00c04fc96404",
    "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0004",
    "clee@corp.dirsync.test",
);
const BOB: Object = user(
    "CN=Bob Wong,OU=Engineering,OU=Corp,DC=corp,DC=dirsync,DC=test",
    "6f9619ff-8b86-d011-b42d-00c04fc96405",
    "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0005",
    "bwong@corp.dirsync.test",
);
const SALES_TEAM: Object = Object {
    dn: "CN=Sales Team,OU=Groups,OU=Corp,DC=corp,DC=dirsync,DC=test",
    anchor: "6f9619ff-8b86-d011-b42d-00c04fc96406",
    cloud_id: "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0006",
    kind: ObjectKind::Group,
    upn: "",
};
/// The Paris OU's users, in the order the first run added them (and the threshold run would
/// delete them): the OU was excluded from the scope since.
const PARIS: [Object; 7] = [
    user(
        "CN=Amélie Laurent,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96411",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0011",
        "alaurent@corp.dirsync.test",
    ),
    user(
        "CN=Baptiste Moreau,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96412",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0012",
        "bmoreau@corp.dirsync.test",
    ),
    user(
        "CN=Camille Dubois,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96413",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0013",
        "cdubois@corp.dirsync.test",
    ),
    user(
        "CN=Julien Bernard,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96414",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0014",
        "jbernard@corp.dirsync.test",
    ),
    user(
        "CN=Léa Petit,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96415",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0015",
        "lpetit@corp.dirsync.test",
    ),
    user(
        "CN=Hugo Martin,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96416",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0016",
        "hmartin@corp.dirsync.test",
    ),
    user(
        "CN=Chloé Fontaine,OU=Paris,OU=Sales,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96417",
        "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0017",
        "cfontaine@corp.dirsync.test",
    ),
];

const UPN_HINT: &str = "Remove the space from the UPN in AD, then sync again";
const UPN_MESSAGE: &str = "userPrincipalName 'a b@corp.test' contains a space";

/// Every object the first run added, in the order it added them.
fn first_run_objects() -> Vec<Object> {
    let mut objects = vec![JOHN, ALICE, ANN, CAROL, BOB, SALES_TEAM];
    objects.extend(PARIS);
    objects
}

fn value(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn attribute(name: &str, old: Value, new: Value) -> AttributeValues {
    AttributeValues {
        name: name.to_owned(),
        old,
        new,
    }
}

fn change(
    step: StepKind,
    kind: ChangeKind,
    object: Object,
    attributes: Vec<AttributeValues>,
) -> ObjectChangeRecord {
    ObjectChangeRecord {
        step,
        dn: object.dn.to_owned(),
        anchor: object.anchor.to_owned(),
        object_type: object.kind,
        cloud_id: (kind != ChangeKind::Add || step == StepKind::CloudExport)
            .then(|| object.cloud_id.to_owned()),
        change_kind: kind,
        attributes,
    }
}

/// The values an add sends.
fn added(object: Object) -> Vec<AttributeValues> {
    let name = object.dn[3..].split(",OU=").next().unwrap();
    match object.kind {
        ObjectKind::User => vec![
            attribute("displayName", Value::Null, value(name)),
            attribute("userPrincipalName", Value::Null, value(object.upn)),
            attribute("mail", Value::Null, value(object.upn)),
            attribute("accountEnabled", Value::Null, json!(true)),
        ],
        ObjectKind::Group => vec![
            attribute("displayName", Value::Null, value(name)),
            attribute("mailNickname", Value::Null, value("salesteam")),
            attribute("securityEnabled", Value::Null, json!(true)),
        ],
    }
}

fn counters(adds: u64, updates: u64, deletes: u64, no_change: u64, errors: u64) -> StepCounters {
    StepCounters {
        adds,
        updates,
        renames: 0,
        deletes,
        no_change,
        errors,
    }
}

/// One run as the engine would have written it.
struct RunSpec {
    trigger: RunTrigger,
    mode: RunMode,
    status: RunStatus,
    started_at: i64,
    steps: Vec<(StepKind, StepCounters)>,
    changes: Vec<ObjectChangeRecord>,
    errors: Vec<ErrorRecord>,
    warnings: Vec<WarningRecord>,
    throttled: u64,
}

impl RunSpec {
    fn new(trigger: RunTrigger, mode: RunMode, status: RunStatus, started_at: i64) -> RunSpec {
        RunSpec {
            trigger,
            mode,
            status,
            started_at,
            steps: Vec::new(),
            changes: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            throttled: 0,
        }
    }

    fn record(self, store: &StateStore) -> RunId {
        let id = store
            .start_run(self.trigger, self.mode, self.started_at)
            .unwrap();
        let mut now = self.started_at + 350;
        for (step, counters) in &self.steps {
            store.start_step(id, *step, None, now).unwrap();
            now += match step {
                StepKind::DirectoryImport => 1_840,
                StepKind::CloudImport => 2_310,
                StepKind::Synchronization => 420,
                StepKind::CloudExport => 3_975,
                StepKind::WriteBackExport => 610,
            };
            if *step == StepKind::DirectoryImport
                && matches!(self.mode, RunMode::Full | RunMode::Delta)
            {
                store
                    .set_cursor("directory-dirsync-cookie", b"x", now)
                    .unwrap();
            }
            store.finish_step(id, *step, None, counters, now).unwrap();
        }
        store.record_changes(id, &self.changes).unwrap();
        store.record_errors(id, &self.errors).unwrap();
        store.record_warnings(id, &self.warnings).unwrap();
        if self.throttled > 0 {
            store.record_throttled(id, self.throttled).unwrap();
        }
        store.finish_run(id, self.status, now + 120).unwrap();
        id
    }
}

/// The synthetic home: a configuration and eight runs, all at fixed times.
fn write_home(dir: &Path) {
    write_home_on(dir, Default::default());
}

/// The synthetic home with its state in the store `store` names.
fn write_home_on(dir: &Path, store: dirsync::config::StoreConfig) {
    let config = Config {
        cloud: CloudConfig {
            authority: "https://login.microsoftonline.com".to_owned(),
            graph: "https://graph.microsoft.com".to_owned(),
            tenant_id: "8d2c0c52-0d3c-4d43-9a43-000000000001".to_owned(),
            client_id: "00000000-0000-0000-0000-000000000002".to_owned(),
            service_principal_id: None,
            credential_expires_at: None,
            certificate_thumbprint: None,
            directory_extensions: Vec::new(),
        },
        directory: DirectoryConfig {
            server: "ldaps://dc1.corp.dirsync.test".to_owned(),
            ca_file: None,
            insecure: false,
            naming_context: NAMING_CONTEXT.to_owned(),
            service_account_dn: "CN=MSOL_0123456789ab,CN=Users,DC=corp,DC=dirsync,DC=test"
                .to_owned(),
            service_account_guid: None,
            timeout_secs: 15,
            password_hash_socket: None,
            password_gpg_home: None,
            samba_config: None,
        },
        options: SyncOptions {
            deletion_threshold: 5,
            password_hash_sync: true,
            ..SyncOptions::default()
        },
        scope: ScopeConfig {
            included: vec![INCLUDED_OU.to_owned()],
            excluded: vec![EXCLUDED_OU.to_owned()],
        },
        monitoring: Default::default(),
        rules: Default::default(),
        forests: Vec::new(),
        store,
    };
    config.save(&dir.join("config.toml")).unwrap();

    let store = StateStore::open_home(&Home::in_dir(dir)).unwrap();
    let at = |minutes_before_now: i64, seconds: i64| {
        FIXED_NOW_MS - minutes_before_now * MINUTE_MS + seconds * 1_000
    };
    let objects = first_run_objects();
    let all = objects.len() as u64;

    // 1: the wizard's first sync, a full one: everything is added.
    let mut run = RunSpec::new(
        RunTrigger::Wizard,
        RunMode::Full,
        RunStatus::Success,
        at(242, 11),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(all, 0, 0, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, 0, 0)),
        (StepKind::Synchronization, counters(all, 0, 0, 0, 0)),
        (StepKind::CloudExport, counters(all, 0, 0, 0, 0)),
    ];
    run.changes = objects
        .iter()
        .map(|object| {
            change(
                StepKind::CloudExport,
                ChangeKind::Add,
                *object,
                added(*object),
            )
        })
        .collect();
    assert_eq!(run.record(&store), 1);

    // 2: a delta with two updates and a warning.
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Delta,
        RunStatus::Success,
        at(212, 4),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 2, 0, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, all, 0)),
        (StepKind::Synchronization, counters(0, 2, 0, all - 2, 0)),
        (StepKind::CloudExport, counters(0, 2, 0, 0, 0)),
    ];
    run.changes = vec![
        change(
            StepKind::CloudExport,
            ChangeKind::Update,
            JOHN,
            vec![
                attribute(
                    "jobTitle",
                    value("Sales Representative"),
                    value("Sales Manager"),
                ),
                attribute("department", Value::Null, value("Sales")),
            ],
        ),
        change(
            StepKind::CloudExport,
            ChangeKind::Update,
            CAROL,
            vec![attribute(
                "businessPhones",
                json!(["+1 555 0100"]),
                json!(["+1 555 0142"]),
            )],
        ),
    ];
    run.warnings = vec![WarningRecord {
        dn: CAROL.dn.to_owned(),
        anchor: CAROL.anchor.to_owned(),
        attribute: "mail".to_owned(),
        value: "clee@corp.dirsync.test ".to_owned(),
        message: "mail ends with a space; Entra ID keeps it without. Remove it in AD to keep both the same".to_owned(),
    }, WarningRecord {
        dn: JOHN.dn.to_owned(),
        anchor: JOHN.anchor.to_owned(),
        attribute: "department".to_owned(),
        value: "null".to_owned(),
        message: "drift: changed in the cloud; dirsync wrote 'Sales', the cloud has nothing; AD's value is written back (options.drift = \"restore\")".to_owned(),
    }];
    assert_eq!(run.record(&store), 2);

    // 3: a delta whose synchronization step refused an object.
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Delta,
        RunStatus::CompletedWithErrors,
        at(182, 7),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 2, 0, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, all, 0)),
        (StepKind::Synchronization, counters(0, 1, 0, all - 2, 1)),
        (StepKind::CloudExport, counters(0, 1, 0, 0, 0)),
    ];
    run.changes = vec![change(
        StepKind::CloudExport,
        ChangeKind::Update,
        JOHN,
        vec![attribute("mobilePhone", Value::Null, value("+1 555 0199"))],
    )];
    run.errors = vec![ErrorRecord {
        step: StepKind::Synchronization,
        dn: ANN.dn.to_owned(),
        anchor: Some(ANN.anchor.to_owned()),
        object_type: Some(ObjectKind::User),
        error_type: "invalid-character".to_owned(),
        code: Some("userPrincipalName".to_owned()),
        server_message: UPN_MESSAGE.to_owned(),
        hint: UPN_HINT.to_owned(),
        first_occurred_at: at(182, 10),
        retry_count: 0,
    }];
    assert_eq!(run.record(&store), ERROR_RUN);

    // 4: a password cycle.
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Password,
        RunStatus::Success,
        at(150, 2),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 1, 0, all - 1, 0)),
        (StepKind::CloudExport, counters(0, 1, 0, 0, 0)),
    ];
    run.changes = vec![change(
        StepKind::CloudExport,
        ChangeKind::Update,
        BOB,
        vec![attribute(
            "password hash",
            Value::Null,
            value("synchronized from AD"),
        )],
    )];
    assert_eq!(run.record(&store), 4);

    // 5: a delta with a multi-valued attribute's update, and Graph throttling.
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Delta,
        RunStatus::Success,
        at(122, 9),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 3, 0, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, all, 0)),
        (StepKind::Synchronization, counters(0, 3, 0, all - 3, 0)),
        (StepKind::CloudExport, counters(0, 3, 0, 0, 0)),
    ];
    run.changes = vec![
        change(
            StepKind::CloudExport,
            ChangeKind::Update,
            ALICE,
            vec![
                attribute(
                    "proxyAddresses",
                    json!(["SMTP:a@x", "smtp:b@x"]),
                    json!([
                        "SMTP:a@x",
                        "X500:/o=Corp/ou=Exchange Administrative Group/cn=Recipients/cn=asmith"
                    ]),
                ),
                attribute(
                    "mail",
                    value("alice.smith@corp.dirsync.test"),
                    value(ALICE.upn),
                ),
            ],
        ),
        change(
            StepKind::CloudExport,
            ChangeKind::Update,
            BOB,
            vec![attribute(
                "jobTitle",
                value("Engineer"),
                value("Senior Engineer"),
            )],
        ),
        change(
            StepKind::CloudExport,
            ChangeKind::Update,
            SALES_TEAM,
            vec![attribute(
                "members",
                json!([JOHN.cloud_id]),
                json!([JOHN.cloud_id, ALICE.cloud_id]),
            )],
        ),
    ];
    run.throttled = 3;
    assert_eq!(run.record(&store), DIFF_RUN);

    // 6: a preview: what would be exported, kept with the synchronization step.
    let mut run = RunSpec::new(
        RunTrigger::Manual,
        RunMode::Preview,
        RunStatus::Success,
        at(96, 30),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(1, 1, 0, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, all, 0)),
        (StepKind::Synchronization, counters(1, 1, 0, all - 1, 0)),
    ];
    let eve = user(
        "CN=Eve Park,OU=Engineering,OU=Corp,DC=corp,DC=dirsync,DC=test",
        "6f9619ff-8b86-d011-b42d-00c04fc96421",
        "",
        "epark@corp.dirsync.test",
    );
    run.changes = vec![
        change(StepKind::Synchronization, ChangeKind::Add, eve, added(eve)),
        change(
            StepKind::Synchronization,
            ChangeKind::Update,
            CAROL,
            vec![attribute(
                "department",
                value("Engineering"),
                value("Platform"),
            )],
        ),
    ];
    assert_eq!(run.record(&store), 6);

    // 7: the Paris OU left the scope: seven deletes, more than the threshold of 5.
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Delta,
        RunStatus::StoppedDeletionThreshold,
        at(92, 3),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 0, 7, 0, 0)),
        (StepKind::CloudImport, counters(0, 0, 0, all, 0)),
        (StepKind::Synchronization, counters(0, 0, 7, all - 7, 0)),
    ];
    run.changes = PARIS
        .iter()
        .map(|object| {
            change(
                StepKind::Synchronization,
                ChangeKind::Delete,
                *object,
                vec![],
            )
        })
        .collect();
    assert_eq!(run.record(&store), THRESHOLD_RUN);

    // 8: a password cycle, after the stopped run (it does not make the stopped run older).
    let mut run = RunSpec::new(
        RunTrigger::Schedule,
        RunMode::Password,
        RunStatus::Success,
        at(64, 41),
    );
    run.steps = vec![
        (StepKind::DirectoryImport, counters(0, 1, 0, all - 1, 0)),
        (StepKind::CloudExport, counters(0, 1, 0, 0, 0)),
    ];
    run.changes = vec![change(
        StepKind::CloudExport,
        ChangeKind::Update,
        JOHN,
        vec![attribute(
            "password hash",
            Value::Null,
            value("synchronized from AD"),
        )],
    )];
    assert_eq!(run.record(&store), RUN_COUNT as RunId);
}

type DashboardHarness = Harness<'static, DirsyncApp>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The dashboard on a fresh synthetic home, its history read.
fn dashboard(runtime: &tokio::runtime::Runtime, dir: &Path, snapshots: bool) -> DashboardHarness {
    write_home(dir);
    dashboard_on(runtime, dir, snapshots)
}

/// The dashboard on the home already in `dir`, its history read.
fn dashboard_on(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    snapshots: bool,
) -> DashboardHarness {
    let app = DirsyncApp::with_dashboard_options(
        Home::in_dir(dir),
        runtime.handle().clone(),
        None,
        DashboardOptions {
            scheduling: false,
            read_cloud: false,
            fixed_now: Some(FIXED_NOW_MS),
        },
    );
    let builder = Harness::builder().with_size(egui::vec2(1040.0, 720.0));
    let mut harness = if snapshots {
        builder
            .renderer(software_renderer::SoftwareRenderer::default())
            .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app)
    } else {
        builder.build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app)
    };
    wait_until(&mut harness, "the run history", |harness| {
        harness.state().dashboard().unwrap().runs().len() == RUN_COUNT
    });
    harness
}

/// Steps frames until `done`, giving the background reads time; panics after 20 s with what
/// is on the screen.
#[track_caller]
fn wait_until(
    harness: &mut DashboardHarness,
    what: &str,
    done: impl Fn(&DashboardHarness) -> bool,
) {
    let started = Instant::now();
    loop {
        harness.step();
        if done(harness) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; the screen holds:\n{:#?}",
            harness.root()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

fn shows(harness: &DashboardHarness, label: &str) -> bool {
    harness.query_all_by_label(label).next().is_some()
}

fn shows_containing(harness: &DashboardHarness, label: &str) -> bool {
    harness.query_all_by_label_contains(label).next().is_some()
}

#[track_caller]
fn click(harness: &mut DashboardHarness, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(2);
}

/// Clicks the button labelled `label` that is highest on the screen (`topmost`) or lowest: a
/// tab and a button, a sort option and a column title, may say the same.
#[track_caller]
fn click_button(harness: &mut DashboardHarness, label: &str, topmost: bool) {
    let mut buttons: Vec<_> = harness
        .query_all_by_role_and_label(Role::Button, label)
        .collect();
    assert!(
        !buttons.is_empty(),
        "no button '{label}' on:\n{:#?}",
        harness.root()
    );
    buttons.sort_by(|a, b| a.rect().min.y.total_cmp(&b.rect().min.y));
    let button = if topmost {
        buttons[0]
    } else {
        buttons[buttons.len() - 1]
    };
    button.click();
    harness.run_steps(2);
}

/// Opens a tab of the dashboard.
#[track_caller]
fn open_tab(harness: &mut DashboardHarness, tab: &str) {
    click_button(harness, tab, true);
}

fn count(harness: &DashboardHarness, label: &str) -> usize {
    harness.query_all_by_label(label).count()
}

/// Opens run `id` from the history, as a user does, and waits for its counters.
#[track_caller]
fn open_run(harness: &mut DashboardHarness, id: RunId) {
    if harness.state().dashboard().unwrap().open_run_id().is_some() {
        click(harness, "⬅ Back to the history");
    }
    click(harness, &format!("Run {id}"));
    wait_until(harness, &format!("run {id}'s details"), |harness| {
        let board = harness.state().dashboard().unwrap();
        board.open_run_id() == Some(id) && board.open_run_read_in().is_some()
    });
    assert!(
        shows(harness, &format!("Run {id}")),
        "the heading names the run"
    );
}

/// Opens the objects behind a counter and waits for its list.
#[track_caller]
fn open_counter(harness: &mut DashboardHarness, counter: &str) {
    click(harness, counter);
    wait_until(harness, &format!("the list of {counter}"), |harness| {
        shows(harness, "Filter:")
    });
}

/// The texts of the labels `keep` picks, top to bottom.
fn labels_top_to_bottom(harness: &DashboardHarness, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut labels: Vec<(f32, String)> = harness
        .query_all_by(|node| matches!(node.role(), Role::Label | Role::Link))
        .filter_map(|node| {
            // A label's text is its value; a link's is its label.
            let text = node
                .value()
                .or_else(|| node.accesskit_node().label().map(|label| label.to_string()))?;
            keep(&text).then(|| (node.rect().min.y, text))
        })
        .collect();
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    labels.into_iter().map(|(_, text)| text).collect()
}

/// The DNs in the object list, top to bottom.
fn listed_dns(harness: &DashboardHarness) -> Vec<String> {
    labels_top_to_bottom(harness, |text| text.starts_with("CN="))
}

/// Types `text` into the text field labelled `label`, replacing what it held.
#[track_caller]
fn type_into(harness: &mut DashboardHarness, label: &str, text: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(1);
    harness.key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::A]);
    harness.run_steps(1);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
    assert_eq!(
        harness.get_by_label(label).value().as_deref(),
        Some(text),
        "the field '{label}' holds what was typed"
    );
}

fn is_enabled(harness: &DashboardHarness, label: &str) -> bool {
    !harness.get_by_label(label).accesskit_node().is_disabled()
}

#[test]
fn the_history_lists_every_run_newest_first() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let harness = dashboard(&runtime, dir.path(), false);
    let ids: Vec<RunId> = harness
        .state()
        .dashboard()
        .unwrap()
        .runs()
        .iter()
        .map(|run| run.id)
        .collect();
    assert_eq!(ids, vec![8, 7, 6, 5, 4, 3, 2, 1]);
    harness.get_by_label(&format!("Run history ({RUN_COUNT} runs)"));
    let tops: Vec<f32> = ids
        .iter()
        .map(|id| harness.get_by_label(&format!("Run {id}")).rect().min.y)
        .collect();
    assert!(
        tops.windows(2).all(|pair| pair[0] < pair[1]),
        "newest first, top to bottom: {tops:?}"
    );
    // Each row says what the run was.
    for status in [
        "success",
        "completed-with-errors",
        "stopped-deletion-threshold",
    ] {
        assert!(shows(&harness, status), "a run is {status}");
    }
    assert!(shows(&harness, "password") && shows(&harness, "preview") && shows(&harness, "wizard"));
}

#[test]
fn a_counter_opens_exactly_its_objects_to_filter_and_sort() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_run(&mut harness, 1);
    assert!(
        !shows(&harness, "synchronization adds: 13"),
        "the synchronization step's adds are counted, not listed: a plain number"
    );
    open_counter(&mut harness, "cloud-export adds: 13");
    let as_made: Vec<String> = first_run_objects()
        .iter()
        .map(|object| object.dn.to_owned())
        .collect();
    assert_eq!(
        listed_dns(&harness),
        as_made,
        "every add, in the order made"
    );
    harness.get_by_label_contains("cloud-export adds (13 shown)");

    type_into(&mut harness, "Filter:", "ou=paris");
    let paris: Vec<String> = PARIS.iter().map(|object| object.dn.to_owned()).collect();
    assert_eq!(listed_dns(&harness), paris, "the filter keeps the Paris OU");
    harness.get_by_label_contains("(7 shown)");

    click_button(&mut harness, "DN", true);
    let by_dn: Vec<String> = [
        "Amélie Laurent",
        "Baptiste Moreau",
        "Camille Dubois",
        "Chloé Fontaine",
        "Hugo Martin",
        "Julien Bernard",
        "Léa Petit",
    ]
    .iter()
    .map(|name| format!("CN={name},{EXCLUDED_OU}"))
    .collect();
    assert_eq!(listed_dns(&harness), by_dn, "sorted by DN");
    click_button(&mut harness, "DN", true);
    let descending: Vec<String> = by_dn.iter().rev().cloned().collect();
    assert_eq!(listed_dns(&harness), descending, "DN again: descending");
    click_button(&mut harness, "As made", true);
    assert_eq!(listed_dns(&harness), paris, "back to the order made");

    type_into(&mut harness, "Filter:", "Bee");
    assert_eq!(listed_dns(&harness), vec![ANN.dn.to_owned()]);

    // Another counter lists only its own objects: run 2's updates. Its drift is listed apart
    // from its warnings, open.
    open_run(&mut harness, 2);
    assert!(shows(&harness, "Drift (1)"));
    assert!(shows(&harness, &format!("⚠ {}: department", JOHN.dn)));
    assert!(shows_containing(
        &harness,
        "dirsync wrote 'Sales', the cloud has nothing"
    ));
    assert!(shows(&harness, "Warnings (1)"));
    open_counter(&mut harness, "cloud-export updates: 2");
    assert_eq!(
        listed_dns(&harness),
        vec![JOHN.dn.to_owned(), CAROL.dn.to_owned()]
    );
}

#[test]
fn an_object_shows_its_change_side_by_side() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_run(&mut harness, DIFF_RUN);
    open_counter(&mut harness, "cloud-export updates: 3");
    click(&mut harness, ALICE.dn);
    wait_until(&mut harness, "the change's values", |harness| {
        shows(harness, "proxyAddresses")
    });
    harness.get_by_label("Object details");
    for label in ["Anchor", "Cloud object id", "Attribute", "Old", "New"] {
        harness.get_by_label(label);
    }
    // "DN" and "Type" are also the list's column titles and sort options.
    assert_eq!(count(&harness, "DN"), 3);
    assert_eq!(count(&harness, "Type"), 3);
    harness.get_by_label(ALICE.anchor);
    harness.get_by_label(ALICE.cloud_id);
    // The kept value plain on both sides, the removed and the added one marked.
    assert_eq!(harness.query_all_by_label("SMTP:a@x").count(), 2);
    harness.get_by_label("- smtp:b@x");
    harness.get_by_label_contains("+ X500:/o=Corp/");
    harness.get_by_label("- alice.smith@corp.dirsync.test");
    harness.get_by_label(&format!("+ {}", ALICE.upn));
    click(&mut harness, "Close");
    assert!(!shows(&harness, "Object details"));
}

#[test]
fn an_error_shows_its_hint_and_the_servers_message() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_run(&mut harness, ERROR_RUN);
    open_counter(&mut harness, "synchronization errors: 1");
    assert_eq!(listed_dns(&harness), vec![ANN.dn.to_owned()]);
    click(&mut harness, ANN.dn);
    wait_until(&mut harness, "the error's details", |harness| {
        shows(harness, "Object details")
    });
    harness.get_by_label(&format!("Hint: {UPN_HINT}"));
    harness.get_by_label(UPN_MESSAGE);
    harness.get_by_label("Server's message");
    for label in ["Code", "First occurred", "Retries"] {
        harness.get_by_label(label);
    }
    // "Error" is also the list's column title, and the error's type its first cell.
    assert_eq!(count(&harness, "Error"), 2);
    assert_eq!(count(&harness, "invalid-character"), 2);
    harness.get_by_label("userPrincipalName");
    harness.get_by_label("2026-11-21 11:01:17Z");
}

#[test]
fn a_group_that_is_not_ours_can_be_taken_over_from_its_error() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    write_home(dir.path());
    // The error run also met a cloud group with the mailNickname of an AD group, and proposed it.
    let group_dn = "CN=Finance,OU=Groups,OU=Corp,DC=corp,DC=dirsync,DC=test";
    let anchor = "6f9619ff-8b86-d011-b42d-00c04fc96499";
    let cloud_id = "0c1e6a52-3b7e-4f39-9c1d-5a4f2b7e0099";
    let store = StateStore::open(&dir.path().join("state.db")).unwrap();
    store
        .record_errors(
            ERROR_RUN,
            &[ErrorRecord {
                step: StepKind::Synchronization,
                dn: group_dn.to_owned(),
                anchor: Some(anchor.to_owned()),
                object_type: Some(ObjectKind::Group),
                error_type: "group-not-ours".to_owned(),
                code: Some("mailNickname".to_owned()),
                server_message: format!("the cloud group 'Finance' ({cloud_id}) has the mailNickname 'finance', and dirsync did not create it"),
                hint: "dirsync neither changes nor deletes a cloud group it did not create".to_owned(),
                first_occurred_at: FIXED_NOW_MS,
                retry_count: 0,
            }],
        )
        .unwrap();
    let anchor_guid = dirsync::guid::Guid::parse(anchor).unwrap();
    store
        .propose_group_match(anchor_guid, cloud_id, FIXED_NOW_MS)
        .unwrap();
    let mut harness = dashboard_on(&runtime, dir.path(), false);
    open_run(&mut harness, ERROR_RUN);
    open_counter(&mut harness, "synchronization errors: 1");
    click(&mut harness, group_dn);
    wait_until(&mut harness, "the proposed match", |harness| {
        shows(harness, "Take it over on the next run")
    });
    assert!(shows_containing(
        &harness,
        &format!("The cloud group {cloud_id} has this group's mailNickname")
    ));
    assert!(store.confirmed_group_matches().unwrap().is_empty());
    click(&mut harness, "Take it over on the next run");
    wait_until(&mut harness, "the confirmation", |harness| {
        shows_containing(
            harness,
            "Confirmed: the next run takes over the cloud group",
        )
    });
    assert_eq!(
        store.confirmed_group_matches().unwrap().get(&anchor_guid),
        Some(&cloud_id.to_owned())
    );
}

#[test]
fn export_writes_the_runs_changes_and_errors() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let exports = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    harness
        .state_mut()
        .dashboard_mut()
        .unwrap()
        .export_folder_override = Some(exports.path().to_owned());
    open_run(&mut harness, ERROR_RUN);

    click(&mut harness, "Export CSV…");
    let csv_path = exports.path().join(format!("dirsync-run-{ERROR_RUN}.csv"));
    let saved = format!("Saved 1 change and 1 error to {}", csv_path.display());
    wait_until(&mut harness, "the CSV export", |harness| {
        shows(harness, &saved)
    });
    let text = std::fs::read_to_string(&csv_path).unwrap();
    assert!(text.ends_with("\r\n"), "rows end with CRLF");
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "run",
            "row",
            "step",
            "change",
            "object_type",
            "dn",
            "anchor",
            "cloud_id",
            "attributes",
            "error_type",
            "code",
            "message",
            "hint",
            "retry_count"
        ]
    );
    assert_eq!(rows.len(), 3, "a header, one change, one error: {rows:?}");
    let change = &rows[1];
    assert_eq!(
        change[..8],
        [
            "3",
            "change",
            "cloud-export",
            "update",
            "user",
            JOHN.dn,
            JOHN.anchor,
            JOHN.cloud_id
        ]
    );
    assert_eq!(change[8], "mobilePhone: (none) -> +1 555 0199");
    assert!(change[9..].iter().all(String::is_empty));
    let error = &rows[2];
    assert_eq!(
        error[..],
        [
            "3",
            "error",
            "synchronization",
            "",
            "user",
            ANN.dn,
            ANN.anchor,
            "",
            "",
            "invalid-character",
            "userPrincipalName",
            UPN_MESSAGE,
            UPN_HINT,
            "0"
        ]
    );
    assert!(
        text.contains(&format!("\"{}\"", JOHN.dn)),
        "a DN's commas are quoted"
    );

    // A run with several attributes per change: its cell holds one line per attribute.
    open_run(&mut harness, DIFF_RUN);
    click(&mut harness, "Export CSV…");
    let csv_path = exports.path().join(format!("dirsync-run-{DIFF_RUN}.csv"));
    wait_until(&mut harness, "the second CSV export", |harness| {
        shows_containing(harness, "Saved 3 changes and 0 errors")
    });
    let rows = parse_csv(&std::fs::read_to_string(&csv_path).unwrap());
    let dns: Vec<&str> = rows[1..].iter().map(|row| row[5].as_str()).collect();
    assert_eq!(dns, [ALICE.dn, BOB.dn, SALES_TEAM.dn]);
    assert_eq!(
        rows[1][8],
        "proxyAddresses: [SMTP:a@x; smtp:b@x] -> [SMTP:a@x; X500:/o=Corp/ou=Exchange Administrative Group/cn=Recipients/cn=asmith]\nmail: alice.smith@corp.dirsync.test -> asmith@corp.dirsync.test"
    );

    open_run(&mut harness, ERROR_RUN);
    click(&mut harness, "Export JSON…");
    let json_path = exports.path().join(format!("dirsync-run-{ERROR_RUN}.json"));
    wait_until(&mut harness, "the JSON export", |harness| {
        shows_containing(harness, &format!("to {}", json_path.display()))
    });
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(document["run"]["id"], json!(ERROR_RUN));
    assert_eq!(document["run"]["status"], json!("completed-with-errors"));
    let changes = document["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["dn"], json!(JOHN.dn));
    assert_eq!(changes[0]["change_kind"], json!("update"));
    assert_eq!(changes[0]["step"], json!("cloud-export"));
    assert_eq!(changes[0]["attributes"][0]["name"], json!("mobilePhone"));
    let errors = document["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["dn"], json!(ANN.dn));
    assert_eq!(errors[0]["error_type"], json!("invalid-character"));
    assert_eq!(errors[0]["code"], json!("userPrincipalName"));
    assert_eq!(errors[0]["server_message"], json!(UPN_MESSAGE));
    assert_eq!(errors[0]["hint"], json!(UPN_HINT));
    let leftovers: Vec<PathBuf> = std::fs::read_dir(exports.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "partial")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "no partial file is left: {leftovers:?}"
    );
}

/// RFC 4180: quoted cells may hold commas, quotes (doubled) and line breaks; rows end with CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a CR outside quotes ends a row");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => {
                assert_ne!(c, '\n', "a bare LF outside quotes");
                cell.push(c);
            }
        }
    }
    assert!(
        !quoted && row.is_empty() && cell.is_empty(),
        "the file ends a row"
    );
    rows
}

#[test]
fn the_threshold_panel_asks_for_the_exact_count() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_run(&mut harness, THRESHOLD_RUN);
    harness.get_by_label("Stopped by the deletion threshold");
    harness
        .get_by_label_contains("would have deleted 7 cloud objects, more than the threshold of 5");
    let confirm = "Delete 7 objects and sync";
    assert!(!is_enabled(&harness, confirm), "nothing typed yet");
    type_into(&mut harness, "Number of deletes to confirm:", "6");
    assert!(!is_enabled(&harness, confirm), "6 is not the count");
    type_into(&mut harness, "Number of deletes to confirm:", "77");
    assert!(!is_enabled(&harness, confirm), "77 is not the count");
    type_into(&mut harness, "Number of deletes to confirm:", "7");
    assert!(is_enabled(&harness, confirm), "7 is");
    // The deletes are listed under the synchronization step (not clicked: it would sync).
    open_counter(&mut harness, "synchronization deletes: 7");
    let paris: Vec<String> = PARIS.iter().map(|object| object.dn.to_owned()).collect();
    assert_eq!(listed_dns(&harness), paris);
    assert!(
        !shows(&harness, "directory-import deletes: 7"),
        "the import's deletes are counted, not listed"
    );

    // A run the threshold did not stop has no panel.
    open_run(&mut harness, 1);
    assert!(!shows(&harness, "Stopped by the deletion threshold"));
}

#[test]
fn settings_save_to_the_configuration_and_refuse_a_non_number() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    let config_file = dir.path().join("config.toml");
    open_tab(&mut harness, "Settings");
    assert_eq!(harness.state().dashboard().unwrap().tab, Tab::Settings);
    assert_eq!(
        harness
            .get_by_label("Deletion threshold")
            .value()
            .as_deref(),
        Some("5")
    );
    for label in [
        "Sync interval (minutes)",
        "Keep run history (days)",
        "Password sync interval (seconds)",
        "Staging mode",
        "Configure…",
    ] {
        harness.get_by_label(label);
    }
    type_into(&mut harness, "Deletion threshold", "42");
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Saved to");
    let saved = Config::load(&config_file).unwrap();
    assert_eq!(saved.options.deletion_threshold, 42);
    assert_eq!(saved.options.interval_minutes, 30, "the rest is kept");
    assert_eq!(saved.scope.excluded, vec![EXCLUDED_OU.to_owned()]);
    let before = std::fs::read(&config_file).unwrap();

    type_into(&mut harness, "Deletion threshold", "many");
    click(&mut harness, "Save settings");
    let problem = harness
        .get_by_label_contains("is not a whole number")
        .value()
        .unwrap();
    assert!(problem.contains("Deletion threshold"), "{problem}");
    assert!(problem.contains("'many'"), "{problem}");
    assert_eq!(
        std::fs::read(&config_file).unwrap(),
        before,
        "a refused value writes nothing"
    );

    // A number the configuration refuses is refused too, and writes nothing.
    type_into(&mut harness, "Deletion threshold", "42");
    type_into(&mut harness, "Sync interval (minutes)", "0");
    click(&mut harness, "Save settings");
    let problem = harness
        .get_by_label_contains("Sync interval: '0'")
        .value()
        .unwrap();
    assert!(!problem.starts_with("Saved"), "{problem}");
    assert_eq!(std::fs::read(&config_file).unwrap(), before);
    type_into(&mut harness, "Sync interval (minutes)", "30");

    // The threshold panel reads the saved threshold.
    // The share limit, disabling before deleting, and drift.
    type_into(&mut harness, "Deletion threshold (%)", "150");
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Deletion threshold (%): 150 is more than 100");
    assert_eq!(std::fs::read(&config_file).unwrap(), before);
    type_into(&mut harness, "Deletion threshold (%)", "20");
    click(&mut harness, "Disable before deleting");
    type_into(&mut harness, "Delete after (days)", "14");
    click(&mut harness, "Restore drift");
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Saved to");
    let saved = Config::load(&config_file).unwrap();
    assert_eq!(saved.options.deletion_threshold_percent, 20);
    assert!(saved.options.disable_before_delete);
    assert_eq!(saved.options.delete_after_days, 14);
    assert_eq!(saved.options.drift, dirsync::config::DriftAction::Report);

    // Where alerts go: a wrong field is named in the form's words and writes nothing.
    let before = std::fs::read(&config_file).unwrap();
    type_into(
        &mut harness,
        "Alert webhook",
        "http://hooks.example.com/dirsync",
    );
    click(&mut harness, "Save settings");
    harness.get_by_label_contains(
        "Alert webhook: 'http://hooks.example.com/dirsync' must be https://",
    );
    assert_eq!(std::fs::read(&config_file).unwrap(), before);
    type_into(
        &mut harness,
        "Alert webhook",
        "https://hooks.example.com/dirsync",
    );
    type_into(&mut harness, "Alert mail server", "smtp.example.com");
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Alert mail from: is missing");
    assert_eq!(std::fs::read(&config_file).unwrap(), before);
    type_into(&mut harness, "Alert mail from", "dirsync@example.com");
    type_into(
        &mut harness,
        "Alert mail to",
        "admins@example.com, oncall@example.com",
    );
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Saved to");
    let saved = Config::load(&config_file).unwrap();
    assert_eq!(
        saved.monitoring.webhook_url.as_deref(),
        Some("https://hooks.example.com/dirsync")
    );
    assert_eq!(
        saved.monitoring.email_smtp.as_deref(),
        Some("smtp.example.com")
    );
    assert_eq!(
        saved.monitoring.email_to,
        ["admins@example.com", "oncall@example.com"]
    );

    type_into(&mut harness, "Deletion threshold", "6");
    click(&mut harness, "Save settings");
    open_tab(&mut harness, "Operations");
    open_run(&mut harness, THRESHOLD_RUN);
    harness.get_by_label_contains("more than the threshold of 6");
}

#[test]
fn search_finds_an_object_by_its_upn_and_shows_its_history() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_tab(&mut harness, "Search");
    type_into(&mut harness, "Find an object:", "abee");
    click_button(&mut harness, "Search", false);
    let found = format!("{}   (user, anchor {})", ANN.dn, ANN.anchor);
    wait_until(&mut harness, "the search's result", |harness| {
        shows(harness, &found)
    });
    harness.get_by_label("1 object(s)");
    click(&mut harness, &found);
    wait_until(&mut harness, "the object's history", |harness| {
        shows(harness, "error: invalid-character")
    });
    harness.get_by_label(&format!("History of {}", ANN.dn));
    let runs = labels_top_to_bottom(&harness, |text| {
        text.strip_prefix("Run ")
            .is_some_and(|id| id.parse::<RunId>().is_ok())
    });
    assert_eq!(
        runs,
        ["Run 3", "Run 1"],
        "both runs that touched it, newest first"
    );
    harness.get_by_label("add");

    // An entry opens the object's details.
    click(&mut harness, "error: invalid-character");
    wait_until(&mut harness, "the error's details", |harness| {
        shows(harness, "Object details")
    });
    harness.get_by_label(&format!("Hint: {UPN_HINT}"));
    click(&mut harness, "add");
    wait_until(&mut harness, "the add's values", |harness| {
        shows(harness, "userPrincipalName")
    });
    assert_eq!(
        count(&harness, &format!("+ {}", ANN.upn)),
        2,
        "its UPN and its mail"
    );

    // A run in the history opens that run.
    click(&mut harness, "Run 3");
    wait_until(&mut harness, "run 3 open in Operations", |harness| {
        let dashboard = harness.state().dashboard().unwrap();
        dashboard.tab == Tab::Operations && dashboard.open_run_id() == Some(3)
    });
    click(&mut harness, "Search");

    // Nothing found says so.
    type_into(&mut harness, "Find an object:", "nobody-at-all");
    click_button(&mut harness, "Search", false);
    wait_until(&mut harness, "an empty result", |harness| {
        shows_containing(harness, "Nothing found")
    });
}

#[test]
fn every_view_looks_as_it_did_in_the_light_theme() {
    every_view_looks_as_it_did(egui::Theme::Light, "light");
}

#[test]
fn every_view_looks_as_it_did_in_the_dark_theme() {
    every_view_looks_as_it_did(egui::Theme::Dark, "dark");
}

/// Every view as an image (drawn on the CPU, the same on every machine), compared with
/// `tests/snapshots/dashboard_{view}_{name}.png`. `UPDATE_SNAPSHOTS=1` writes new ones after a
/// deliberate change.
fn every_view_looks_as_it_did(theme: egui::Theme, name: &str) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), true);
    harness.ctx.set_theme(theme);
    let snapshot = |harness: &mut DashboardHarness, view: &str| {
        // No pointer over a widget (no hover, no tooltip), and no spinner left.
        harness.remove_cursor();
        harness.run_steps(4);
        harness.snapshot(format!("dashboard_{view}_{name}"));
    };

    snapshot(&mut harness, "operations");

    open_run(&mut harness, DIFF_RUN);
    open_counter(&mut harness, "cloud-export updates: 3");
    click(&mut harness, ALICE.dn);
    wait_until(&mut harness, "the change's values", |harness| {
        shows(harness, "proxyAddresses")
    });
    snapshot(&mut harness, "run_details");

    open_run(&mut harness, 2);
    snapshot(&mut harness, "drift");

    open_run(&mut harness, ERROR_RUN);
    open_counter(&mut harness, "synchronization errors: 1");
    click(&mut harness, ANN.dn);
    wait_until(&mut harness, "the error's details", |harness| {
        shows(harness, "Object details")
    });
    snapshot(&mut harness, "error");

    open_run(&mut harness, THRESHOLD_RUN);
    open_counter(&mut harness, "synchronization deletes: 7");
    snapshot(&mut harness, "threshold");

    click(&mut harness, "⬅ Back to the history");
    open_tab(&mut harness, "Errors");
    wait_until(&mut harness, "the errors by cause", |harness| {
        shows(harness, "Errors by cause") && shows_containing(harness, "(trend ")
    });
    snapshot(&mut harness, "errors");

    open_tab(&mut harness, "Connectors");
    wait_until(&mut harness, "the connectors' figures", |harness| {
        shows(harness, "DirSync cookie saved")
    });
    snapshot(&mut harness, "connectors");

    open_tab(&mut harness, "Search");
    type_into(&mut harness, "Find an object:", "abee");
    click_button(&mut harness, "Search", false);
    let found = format!("{}   (user, anchor {})", ANN.dn, ANN.anchor);
    wait_until(&mut harness, "the search's result", |harness| {
        shows(harness, &found)
    });
    click(&mut harness, &found);
    wait_until(&mut harness, "the object's history", |harness| {
        shows(harness, "error: invalid-character")
    });
    snapshot(&mut harness, "search");

    open_tab(&mut harness, "Settings");
    snapshot(&mut harness, "settings");

    click(&mut harness, "Stop synchronizing…");
    wait_until(&mut harness, "what uninstalling removes", |harness| {
        shows(harness, "Will be removed:")
    });
    assert!(
        !is_enabled(&harness, "Remove all this"),
        "nothing is removed without an admin"
    );
    // The preview names this home's temporary paths: looked at, not kept as a snapshot.
    assert!(shows_containing(
        &harness,
        "the AD service account CN=MSOL_0123456789ab"
    ));
    assert!(shows_containing(&harness, "Stays:"));
}

#[test]
fn a_run_of_another_process_shows_live_from_the_store() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    // `dirsync service` (another process) is in the middle of an export, and says how far.
    let store = StateStore::open(&dir.path().join("state.db")).unwrap();
    let started = FIXED_NOW_MS + MINUTE_MS;
    let run = store
        .start_run(RunTrigger::Schedule, RunMode::Delta, started)
        .unwrap();
    for (offset, step) in [
        StepKind::DirectoryImport,
        StepKind::CloudImport,
        StepKind::Synchronization,
    ]
    .into_iter()
    .enumerate()
    {
        let at = started + offset as i64 * 1_000;
        store.start_step(run, step, None, at).unwrap();
        store
            .finish_step(run, step, None, &StepCounters::default(), at + 1_000)
            .unwrap();
    }
    store
        .start_step(run, StepKind::CloudExport, None, started + 3_000)
        .unwrap();
    store
        .record_running_progress(400, Some(1_000), started + 5_000)
        .unwrap();
    let line = format!(
        "Run {run} (schedule, delta) in another process running: cloud-export, 400 of 1000 objects, 200/s, about 3.0 s left"
    );
    wait_until(&mut harness, "the other process's run, live", |harness| {
        shows_containing(harness, &line)
    });
    assert!(
        !harness.state().dashboard().unwrap().is_syncing(),
        "the window runs nothing itself"
    );
    assert!(
        !is_enabled(&harness, "Stop"),
        "the window cannot stop another process's run"
    );
}

/// From 30 days before the sync app's credential expires, every page says so and leads to the
/// Connectors page, where "Renew credential…" renews it.
#[test]
fn an_expiring_credential_is_shown_above_every_page_with_the_way_to_renew_it() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    write_home(dir.path());
    let config_file = dir.path().join("config.toml");
    let mut config = Config::load(&config_file).unwrap();
    let in_twelve_days = FIXED_NOW_MS / 1000 + 12 * 86_400 - 60;
    config.cloud.credential_expires_at = Some(dirsync::credential_expiry::rfc3339(in_twelve_days));
    // dirsync's own app (setup registered it): it can renew the credential.
    config.cloud.service_principal_id = Some("5e1f0c2e-1d7a-4f43-9a59-0c6f3e2b8d11".to_owned());
    config.save(&config_file).unwrap();
    let mut harness = dashboard_on(&runtime, dir.path(), true);
    harness.run_steps(4);
    harness.snapshot("dashboard_credential_warning");
    assert!(
        shows_containing(&harness, "expires on") && shows_containing(&harness, "in 12 days"),
        "{:#?}",
        harness.root()
    );
    click_button(&mut harness, "Renew on the Connectors page", true);
    assert!(shows(&harness, "App credential"), "{:#?}", harness.root());
    assert!(
        harness
            .query_all_by_role_and_label(Role::Button, "Renew credential…")
            .next()
            .is_some(),
        "{:#?}",
        harness.root()
    );
}

#[test]
fn the_audit_lists_a_settings_change_made_in_the_dashboard_with_old_and_new_values() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    open_tab(&mut harness, "Settings");
    type_into(&mut harness, "Deletion threshold", "42");
    click(&mut harness, "Save settings");
    harness.get_by_label_contains("Saved to");

    open_tab(&mut harness, "Audit");
    let change = "options.deletion_threshold: 5 -> 42";
    let started = Instant::now();
    while !shows_containing(&harness, change) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the audit never listed the change:\n{:#?}",
            harness.root()
        );
        // The trail is written beside the window's thread: read it again until it is there.
        if shows(&harness, "Read again") {
            click(&mut harness, "Read again");
        }
        harness.run_steps(2);
        std::thread::sleep(Duration::from_millis(20));
    }
    let user = dirsync::runner::audit::os_user();
    assert!(
        shows_containing(&harness, &format!("settings-saved  (dashboard, {user})")),
        "{:#?}",
        harness.root()
    );
    // Only what changed is listed.
    assert!(!shows_containing(&harness, "options.interval_minutes"));
}

#[test]
fn the_first_page_says_at_a_glance_whether_it_is_healthy() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    write_home(dir.path());
    // The tenant's quota as a cycle read it, 91 % used.
    StateStore::open(&dir.path().join("state.db"))
        .unwrap()
        .set_directory_quota(&dirsync::store::monitoring::DirectoryQuota {
            used: 45_500,
            total: 50_000,
            read_at: 1,
        })
        .unwrap();
    let mut harness = dashboard_on(&runtime, dir.path(), false);
    wait_until(&mut harness, "the figures at a glance", |harness| {
        shows_containing(harness, "Waiting to export: ")
    });
    assert!(shows(
        &harness,
        "Directory quota: 45500 of 50000 objects (91.0 %)"
    ));
    // This window does not run the schedule (the test turned it off), and says so.
    assert!(shows(&harness, "Next sync: not scheduled in this window"));
    // The newest sync run stopped at the deletion threshold: what /healthz would say.
    assert!(shows(&harness, "Needs attention"), "{:#?}", harness.root());
    assert!(shows_containing(
        &harness,
        "the last sync run (run 7) ended stopped-deletion-threshold"
    ));
    assert!(shows_containing(&harness, "Last successful sync: run 5"));
    assert!(shows_containing(
        &harness,
        "With errors: 0 (errors per run: 0, 0, 1, 0, 0)"
    ));
    assert!(shows_containing(
        &harness,
        "The last 5 sync runs, oldest first: changes and errors"
    ));
}

#[test]
fn settings_send_a_test_alert_to_the_webhook() {
    // The administrator's webhook: keeps each POST's body and answers 200.
    let (url, received) = webhook_receiver::receiver();
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut harness = dashboard(&runtime, dir.path(), false);
    let config_file = dir.path().join("config.toml");
    let mut config = Config::load(&config_file).unwrap();
    config.monitoring.webhook_url = Some(url.clone());
    config.save(&config_file).unwrap();

    open_tab(&mut harness, "Settings");
    click(&mut harness, "Send a test alert");
    wait_until(&mut harness, "the test alert", |harness| {
        shows_containing(harness, "Sent a test alert to")
    });
    assert!(shows(&harness, &format!("Sent a test alert to {url}")));
    let alerts = received.lock().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["condition"], "test");
    assert_eq!(alert["state"], "firing");
}

#[test]
fn the_export_lease_strip_promotes_and_steps_down_this_host_on_a_shared_store() {
    use dirsync::secret_store::{OsKeyring, SecretStore};
    let (store, password) = dirsync::store::lab_postgres();
    OsKeyring
        .save(
            dirsync::store::POSTGRES_PASSWORD_KEY,
            &dirsync::secret::Secret::new(password),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_home_on(dir.path(), store);
    let runtime = runtime();
    let mut harness = dashboard_on(&runtime, dir.path(), false);
    wait_until(&mut harness, "the export lease", |harness| {
        shows_containing(harness, "No host holds the export lease")
    });
    click(&mut harness, "Promote this host");
    wait_until(&mut harness, "the promotion", |harness| {
        shows(harness, "Promoted: this host exports from its next cycle")
    });
    wait_until(&mut harness, "the lease read again", |harness| {
        shows_containing(harness, "holds the export lease (renewed until")
            && !is_enabled(harness, "Promote this host")
    });
    click(&mut harness, "Step down");
    wait_until(&mut harness, "the step down", |harness| {
        shows(
            harness,
            "Stepped down: this host exports nothing until promoted",
        )
    });
    wait_until(&mut harness, "the lease read again", |harness| {
        shows_containing(
            harness,
            "was stepped down and takes no lease until promoted",
        )
    });
    // Both are in the audit trail, from the dashboard.
    let entries = StateStore::open_home(&Home::in_dir(dir.path()))
        .unwrap()
        .audit_entries(10)
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| (entry.action.as_str(), entry.source.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("stepped-down", "dashboard"), ("promoted", "dashboard")]
    );
}
