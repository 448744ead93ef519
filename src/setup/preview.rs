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
use crate::store::SqliteStore;
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

/// Runs a preview cycle of the answers' scope. `scratch` is an empty directory for the
/// throwaway store.
pub async fn preview_first_sync(
    checked: &CheckedAnswers,
    admin_password: &Secret,
    admin_dn: &str,
    domain: &Dn,
    cloud: &CloudSession,
    scratch: &Path,
) -> Result<FirstSyncPreview, SetupFailure> {
    let config = config_for(
        checked,
        cloud.tenant_id(),
        "preview",
        None,
        domain,
        admin_dn,
        None,
    );
    let store = SqliteStore::open(&scratch.join("preview.db"))
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let mut connections = Connections {
        directory: DirectoryReader::new(
            checked.directory_target.clone(),
            checked.answers.directory.admin_user.clone(),
            admin_password.clone(),
            domain.clone(),
            RetryPolicy::default(),
        ),
        further_forests: Vec::new(),
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
