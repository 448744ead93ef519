//! The wizard's preview of the first sync, before anything is created: the engine's own cycle in
//! preview mode, reading AD as the enterprise admin and the cloud as the signed-in session, and
//! recorded in a throwaway store. What it finds is what the first real run will do.

use std::path::Path;

use super::{CheckedAnswers, CloudSession, SetupFailure, config_for};
use crate::directory::Dn;
use crate::directory::objects::ObjectKind;
use crate::directory::reader::{DirectoryReader, RetryPolicy};
use crate::engine::cycle::{Connections, CycleRequest, StopSignal, read_tenant_domains, run_cycle};
use crate::engine::plan::{JoinKind, Operation};
use crate::engine::validation::Severity;
use crate::secret::Secret;
use crate::store::StateStore;
use crate::store::vocabulary::RunTrigger;

/// One object the first sync would touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewObject {
    pub dn: String,
    pub kind: ObjectKind,
    /// For a match: how it was matched (`hard-match`, `soft-match-smtp`, …).
    pub how: Option<&'static str>,
}

/// Something to fix or know before the first sync, on a named object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessFinding {
    pub dn: String,
    /// `invalid-character`, `duplicate`, `unverified-suffix`, …
    pub rule: &'static str,
    /// What is wrong, with the attribute and its value.
    pub statement: String,
    /// What to do about it.
    pub hint: String,
    /// The object is not exported (an error) or is exported changed (a warning).
    pub blocks_export: bool,
    /// A value that passes the rule, as `dirsync check` suggests it.
    pub suggested: Option<String>,
}

/// What the first sync would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstSyncPreview {
    pub adds: Vec<PreviewObject>,
    /// Objects that already exist in the cloud and would be taken over.
    pub matches: Vec<PreviewObject>,
    /// Objects the first sync would not export, and objects it exports with a change.
    pub findings: Vec<ReadinessFinding>,
}

impl FirstSyncPreview {
    pub fn errors(&self) -> impl Iterator<Item = &ReadinessFinding> {
        self.findings.iter().filter(|finding| finding.blocks_export)
    }
}

/// A further forest as the preview reads it: as its enterprise admin (README, "Several forests").
#[derive(Debug, Clone)]
pub struct PreviewForest {
    pub admin_dn: String,
    pub admin_password: Secret,
    /// Its domain, as the admin check found it.
    pub domain: Dn,
}

/// Runs a preview cycle of the answers' scope, every forest's. `scratch` is an empty directory
/// for the throwaway store; `further` are the answers' further forests, in their order.
pub async fn preview_first_sync(
    checked: &CheckedAnswers,
    admin_password: &Secret,
    admin_dn: &str,
    domain: &Dn,
    further: &[PreviewForest],
    cloud: &CloudSession,
    scratch: &Path,
) -> Result<FirstSyncPreview, SetupFailure> {
    let mut config = config_for(
        checked,
        cloud.tenant_id(),
        "preview",
        None,
        domain,
        admin_dn,
        None,
    );
    let mut further_forests = Vec::new();
    for (forest, checked_forest) in further.iter().zip(&checked.forests) {
        let directory = &checked_forest.answers.directory;
        config.forests.push(crate::config::ForestConfig {
            directory: crate::config::DirectoryConfig {
                server: directory.server.trim().to_owned(),
                ca_file: directory.ca_file.clone(),
                insecure: directory.insecure,
                naming_context: forest.domain.to_string(),
                service_account_dn: forest.admin_dn.clone(),
                service_account_guid: None,
                timeout_secs: directory.timeout_secs,
                password_hash_socket: None,
                password_gpg_home: None,
                samba_config: None,
            },
            scope: checked_forest.answers.scope.clone(),
            rules: checked_forest.answers.rules.clone(),
        });
        further_forests.push(DirectoryReader::new(
            checked_forest.directory_target.clone(),
            forest.admin_dn.clone(),
            forest.admin_password.clone(),
            forest.domain.clone(),
            RetryPolicy::default(),
        ));
    }
    let store = StateStore::open(&scratch.join("preview.db"))
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let mut connections = Connections {
        directory: DirectoryReader::new(
            checked.directory_target.clone(),
            checked.answers.directory.admin_user.clone(),
            admin_password.clone(),
            domain.clone(),
            RetryPolicy::default(),
        ),
        further_forests,
        graph: cloud.client().clone(),
    };
    let request = CycleRequest {
        trigger: RunTrigger::Wizard,
        full: true,
        preview: true,
        confirmed_deletes: None,
        only: None,
    };
    let report = Box::pin(run_cycle(
        &config,
        &mut connections,
        &store,
        request,
        &|_| {},
        &StopSignal::default(),
    ))
    .await
    .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    if let Some(failure) = report.failure {
        return Err(SetupFailure::failed(
            None,
            format!("the preview of the first sync failed: {failure}"),
        ));
    }
    let mut preview = FirstSyncPreview::default();
    for operation in &report.plan.operations {
        match operation {
            Operation::Create { kind, dn, .. } => preview.adds.push(PreviewObject {
                dn: dn.to_string(),
                kind: *kind,
                how: None,
            }),
            Operation::Join { kind, dn, how, .. } => preview.matches.push(PreviewObject {
                dn: dn.to_string(),
                kind: *kind,
                how: Some(join_word(*how)),
            }),
            _ => {}
        }
    }
    for object in report.plan.errors.iter().chain(&report.plan.warnings) {
        for issue in &object.issues {
            preview.findings.push(ReadinessFinding {
                dn: object.dn.to_string(),
                rule: issue.rule.word(),
                statement: issue.statement(),
                hint: issue.hint(),
                blocks_export: issue.severity == Severity::Error,
                suggested: None,
            });
        }
    }
    // `dirsync check` over the same objects: its suggested values, and IdFix's checks a cycle
    // does not make (README, "Checking the directory before syncing").
    let objects = store
        .pending_objects()
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let domains = read_tenant_domains(cloud.client()).await.ok();
    for found in crate::engine::check::check(&objects, domains.as_ref(), &config.sync_rules()) {
        let known = preview.findings.iter_mut().find(|finding| {
            finding.dn == found.dn
                && finding.rule == found.rule
                && finding.statement == found.problem
        });
        match known {
            Some(finding) => finding.suggested = found.suggested,
            None => preview.findings.push(ReadinessFinding {
                dn: found.dn,
                rule: found.rule,
                statement: found.problem,
                hint: found.fix,
                blocks_export: found.severity == "error",
                suggested: found.suggested,
            }),
        }
    }
    Ok(preview)
}

fn join_word(how: JoinKind) -> &'static str {
    match how {
        JoinKind::HardMatch => "hard match on the immutable id",
        JoinKind::SoftMatchSmtp => "soft match on the primary SMTP address",
        JoinKind::SoftMatchUpn => "soft match on the user principal name",
        JoinKind::OwnCreate => "the group dirsync created earlier",
        JoinKind::ConfirmedGroupMatch => "the cloud group the administrator confirmed",
    }
}
