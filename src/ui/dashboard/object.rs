//! Object details: DN, anchor, cloud object id, type, and the change as a side-by-side diff of
//! old and new values; for an error, its type, code, the server's literal message, when it first
//! occurred, how often it was retried, and the hint that says what to fix.

use serde_json::Value;
use tokio::runtime::Handle;

use super::read_store;
use crate::clock::human_time;
use crate::engine::cycle::trace::Trace;
use crate::store::vocabulary::{RunStatus, RunTrigger};

/// How long a push from the window waits for a running cycle (as `dirsync push` by default).
const PUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
use crate::guid::Guid;
use crate::home::Home;
use crate::run_report::{printable, scalar_text, trace_stages};
use crate::store::runs::{ErrorRecord, ObjectChangeRecord};
use crate::ui::task::Lookup;
use crate::ui::theme;

/// What to open.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectSource {
    /// A recorded change, by its id in the store (`imported`: what a directory import read).
    Change {
        id: i64,
        imported: bool,
    },
    Error(Box<ErrorRecord>),
    /// What the administrator typed in Search (a DN, UPN, sAMAccountName or objectGUID), traced
    /// straight from AD: an object that never synced has no history to open.
    Query(String),
}

#[derive(Debug)]
pub struct OpenObject {
    source: ObjectSource,
    change: Lookup<Option<ObjectChangeRecord>>,
    /// For a `group-not-ours` error: the cloud group a run proposed to match, and whether the
    /// administrator confirmed it (README, "Joining").
    proposal: Lookup<Option<(String, bool)>>,
    /// The administrator's confirmation of that match, once asked for.
    confirmation: Lookup<bool>,
    /// The object traced through a cycle's stages as AD and the cloud hold it now (README,
    /// "Tracing one object"), once asked for.
    trace: Lookup<Trace>,
    /// A push of this object (README, "Pushing one user now"), once asked for: the run's id and
    /// status, whether sessions were revoked, whether the user is held disabled in the cloud.
    push: Lookup<(i64, RunStatus, bool, bool)>,
    /// Whether a push also ends the user's cloud sign-in sessions.
    pub revoke_sessions: bool,
    /// Push with `--disable`: disabled in the cloud until AD disables the account too.
    pub disable_in_cloud: bool,
    home: Home,
    runtime: Handle,
    repaint: egui::Context,
}

/// The error type of a group that has a cloud group's mailNickname it may take over.
const GROUP_NOT_OURS: &str = "group-not-ours";

impl OpenObject {
    pub fn open(
        source: ObjectSource,
        home: &Home,
        runtime: &Handle,
        repaint: &egui::Context,
    ) -> OpenObject {
        let change = match &source {
            ObjectSource::Change { id, imported } => {
                let (id, imported) = (*id, *imported);
                read_store(home, runtime, repaint, move |store| {
                    store.object_change(id, imported)
                })
            }
            ObjectSource::Error(_) | ObjectSource::Query(_) => Lookup::NotStarted,
        };
        let proposal = match &source {
            ObjectSource::Error(error) if error.error_type == GROUP_NOT_OURS => {
                match error.anchor.as_deref().and_then(Guid::parse) {
                    Some(anchor) => read_store(home, runtime, repaint, move |store| {
                        store.group_match_proposal(anchor)
                    }),
                    _ => Lookup::NotStarted,
                }
            }
            _ => Lookup::NotStarted,
        };
        let traced_at_once = matches!(source, ObjectSource::Query(_));
        let mut object = OpenObject {
            source,
            change,
            proposal,
            confirmation: Lookup::NotStarted,
            trace: Lookup::NotStarted,
            push: Lookup::NotStarted,
            revoke_sessions: false,
            disable_in_cloud: false,
            home: home.clone(),
            runtime: runtime.clone(),
            repaint: repaint.clone(),
        };
        if traced_at_once {
            object.start_trace();
        }
        object
    }

    pub fn poll(&mut self) {
        self.change.poll();
        self.proposal.poll();
        self.confirmation.poll();
        self.trace.poll();
        self.push.poll();
    }

    /// Pushes the object now, alone (waiting for a running cycle as `dirsync push` does).
    fn start_push(&mut self) {
        let Some(query) = self.trace_query() else {
            return;
        };
        let home = self.home.clone();
        let revoke = self.revoke_sessions;
        let hold = if self.disable_in_cloud {
            crate::runner::AccountHold::Disable
        } else {
            crate::runner::AccountHold::FollowAd
        };
        self.push = Lookup::start(&self.runtime, &self.repaint, move |_| async move {
            let ran = crate::runner::run_one_object(
                &home,
                &query,
                RunTrigger::Push,
                PUSH_WAIT,
                revoke,
                hold,
                &|_| {},
            )
            .await
            .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))?;
            crate::runner::audit::record_push(
                &home,
                crate::runner::audit::Source::Dashboard,
                &query,
                &ran,
                hold,
                revoke,
            );
            Ok((
                ran.ran.report.run_id,
                ran.ran.report.status,
                ran.revoked.is_some(),
                ran.held_disabled,
            ))
        });
    }

    /// Whether the object is a group (which has no account to disable).
    fn is_group(&self) -> bool {
        let kind = match (&self.source, &self.change) {
            (ObjectSource::Error(error), _) => error.object_type,
            (ObjectSource::Change { .. }, Lookup::Done(Some(change))) => Some(change.object_type),
            _ => None,
        };
        kind == Some(crate::cloud::ObjectKind::Group)
    }

    /// What a trace looks the object up by: its objectGUID, else its DN.
    fn trace_query(&self) -> Option<String> {
        let (anchor, dn) = match (&self.source, &self.change) {
            (ObjectSource::Query(query), _) => return Some(query.clone()),
            (ObjectSource::Error(error), _) => (error.anchor.clone(), error.dn.clone()),
            (ObjectSource::Change { .. }, Lookup::Done(Some(change))) => {
                (Some(change.anchor.clone()), change.dn.clone())
            }
            _ => return None,
        };
        anchor
            .filter(|anchor| !anchor.is_empty())
            .or_else(|| (!dn.is_empty()).then_some(dn))
    }

    /// Traces the object in the background (reads AD and the tenant; writes nothing).
    fn start_trace(&mut self) {
        let Some(query) = self.trace_query() else {
            return;
        };
        let home = self.home.clone();
        self.trace = Lookup::start(&self.runtime, &self.repaint, move |_| async move {
            crate::runner::trace_object(&home, &query)
                .await
                .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
        });
    }

    /// Confirms the proposed match (in the background): the next run joins the groups.
    fn confirm(&mut self, cloud_id: String) {
        let ObjectSource::Error(error) = &self.source else {
            return;
        };
        let Some(anchor) = error.anchor.as_deref().and_then(Guid::parse) else {
            return;
        };
        self.confirmation = read_store(&self.home, &self.runtime, &self.repaint, move |store| {
            store.confirm_group_match(anchor, &cloud_id, crate::clock::now_ms())
        });
    }
}

/// The details panel. Returns true when closed.
pub fn object_ui(ui: &mut egui::Ui, object: &mut OpenObject) -> bool {
    let mut confirm = None;
    let mut start_trace = false;
    let mut start_push = false;
    let mut close = false;
    ui.horizontal(|ui| {
        ui.heading("Object details");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Close").clicked() {
                close = true;
            }
        });
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("object_details_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            match &object.source {
                ObjectSource::Query(query) => {
                    ui.label(format!("Traced from what was asked in Search: {query}"));
                }
                ObjectSource::Error(error) => {
                    error_ui(ui, error);
                    if error.error_type == GROUP_NOT_OURS {
                        confirm = group_match_ui(ui, &object.proposal, &object.confirmation);
                    }
                }
                ObjectSource::Change { .. } => match &object.change {
                    Lookup::Done(Some(change)) => change_ui(ui, change),
                    Lookup::Done(None) => {
                        ui.label("This change is no longer in the history (retention removed it).");
                    }
                    Lookup::Failed(problem) => {
                        ui.colored_label(theme::error(ui), problem.to_string());
                    }
                    Lookup::NotStarted | Lookup::Running(_) => {
                        ui.spinner();
                    }
                },
            }
            start_push = push_ui(ui, object);
            start_trace = trace_ui(ui, object);
        });
    if let Some(cloud_id) = confirm {
        object.confirm(cloud_id);
    }
    if start_trace {
        object.start_trace();
    }
    if start_push {
        object.start_push();
    }
    close
}

/// The push button, and how the last push went. Returns true when it was clicked.
fn push_ui(ui: &mut egui::Ui, object: &mut OpenObject) -> bool {
    if object.trace_query().is_none() {
        return false;
    }
    ui.add_space(8.0);
    ui.separator();
    let mut start = false;
    ui.horizontal(|ui| {
        ui.strong("Push");
        if !object.push.is_running()
            && ui
                .button("Push now")
                .on_hover_text("Send this object's AD state to the cloud now, without waiting for the next cycle (a run of its own)")
                .clicked()
        {
            start = true;
        }
        // A group has no sign-in sessions nor an account to disable.
        if object.is_group() {
            object.revoke_sessions = false;
            object.disable_in_cloud = false;
            return;
        }
        ui.checkbox(&mut object.revoke_sessions, "and end its cloud sign-in sessions");
        ui.checkbox(&mut object.disable_in_cloud, "and disable it in the cloud now")
            .on_hover_text("Disabled in the cloud even while AD has the account enabled; every cycle keeps it so until AD disables it too (dirsync push --enable takes it back)");
    });
    match &object.push {
        Lookup::NotStarted => {}
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Pushing (after any running cycle)…");
            });
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
        }
        Lookup::Done((run, status, revoked, held)) => {
            let sessions = if *revoked {
                "; sign-in sessions revoked"
            } else {
                ""
            };
            let hold = if *held {
                "; held disabled in the cloud until AD disables the account too"
            } else {
                ""
            };
            ui.label(format!(
                "Pushed: run {run} ended {}{sessions}{hold}",
                status.as_str()
            ));
        }
    }
    start
}

/// The object's trace, or the button that starts one. Returns true when it was clicked.
fn trace_ui(ui: &mut egui::Ui, object: &OpenObject) -> bool {
    if object.trace_query().is_none() {
        return false;
    }
    ui.add_space(8.0);
    ui.separator();
    let mut start = false;
    ui.horizontal(|ui| {
        ui.strong("Trace");
        let label = match object.trace {
            Lookup::NotStarted => "Trace this object",
            _ => "Trace again",
        };
        if !object.trace.is_running()
            && ui
                .button(label)
                .on_hover_text("Follow it through every stage of a cycle, as AD and the cloud hold it now (changes nothing)")
                .clicked()
        {
            start = true;
        }
    });
    match &object.trace {
        Lookup::NotStarted => {
            ui.weak("Why is it (not) in the cloud: scope, join, attribute flow, validation, and the requests the next cycle sends.");
        }
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading AD and the tenant…");
            });
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
        }
        Lookup::Done(trace) => {
            ui.strong(format!("Verdict: {}", trace.verdict));
            // A panel per stage, named as `dirsync trace` names them; the lines under a
            // heading open with it.
            for (index, stage) in trace_stages(trace).into_iter().enumerate() {
                if stage.details.is_empty() {
                    ui.add(egui::Label::new(&stage.heading).wrap());
                    continue;
                }
                egui::CollapsingHeader::new(&stage.heading)
                    .id_salt(("trace_stage", index))
                    .default_open(true)
                    .show(ui, |ui| {
                        egui::ScrollArea::horizontal()
                            .id_salt(("trace_stage_scroll", index))
                            .show(ui, |ui| {
                                for detail in &stage.details {
                                    ui.add(egui::Label::new(
                                        egui::RichText::new(detail).monospace(),
                                    ));
                                }
                            });
                    });
            }
        }
    }
    start
}

/// The proposed match of a `group-not-ours` error, with the button that confirms it. Returns
/// the cloud group to confirm when the button was clicked.
fn group_match_ui(
    ui: &mut egui::Ui,
    proposal: &Lookup<Option<(String, bool)>>,
    confirmation: &Lookup<bool>,
) -> Option<String> {
    ui.add_space(8.0);
    ui.strong("Proposed match");
    let (cloud_id, confirmed) = match proposal {
        Lookup::Done(Some(found)) => found,
        Lookup::Done(None) => {
            ui.weak("No match is proposed for this group (it is a Microsoft 365 group, or a later run joined or changed it).");
            return None;
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
            return None;
        }
        Lookup::NotStarted | Lookup::Running(_) => {
            ui.spinner();
            return None;
        }
    };
    let done = |ui: &mut egui::Ui| {
        ui.label(format!(
            "Confirmed: the next run takes over the cloud group {cloud_id} (its properties and members then follow AD, and it is deleted when the AD group goes)."
        ));
    };
    match confirmation {
        _ if *confirmed => done(ui),
        Lookup::Done(true) => done(ui),
        Lookup::Done(false) => {
            ui.colored_label(
                theme::error(ui),
                "The proposal changed since this run: open the latest run's errors.",
            );
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
        }
        Lookup::Running(_) => {
            ui.spinner();
        }
        Lookup::NotStarted => {
            ui.add(
                egui::Label::new(format!(
                    "The cloud group {cloud_id} has this group's mailNickname, and dirsync did not create it. If it is this group's copy, dirsync can take it over."
                ))
                .wrap(),
            );
            if ui.button("Take it over on the next run").clicked() {
                return Some(cloud_id.clone());
            }
        }
    }
    None
}

fn identity_ui(
    ui: &mut egui::Ui,
    dn: &str,
    anchor: Option<&str>,
    cloud_id: Option<&str>,
    kind: &str,
) {
    egui::Grid::new("object_identity")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            let row = |ui: &mut egui::Ui, name: &str, value: &str| {
                ui.strong(name);
                ui.add(egui::Label::new(printable(value)).wrap());
                ui.end_row();
            };
            row(
                ui,
                "DN",
                if dn.is_empty() {
                    "(the run itself)"
                } else {
                    dn
                },
            );
            row(ui, "Anchor", anchor.unwrap_or("–"));
            row(ui, "Cloud object id", cloud_id.unwrap_or("–"));
            row(ui, "Type", kind);
        });
}

fn change_ui(ui: &mut egui::Ui, change: &ObjectChangeRecord) {
    identity_ui(
        ui,
        &change.dn,
        Some(&change.anchor),
        change.cloud_id.as_deref(),
        change.object_type.as_str(),
    );
    ui.add_space(6.0);
    ui.label(format!("{} in step {}", change.change_kind, change.step));
    ui.add_space(6.0);
    if change.attributes.is_empty() {
        ui.weak("No attribute values recorded for this change.");
        return;
    }
    // The two value columns share the width; the attribute name takes what it needs.
    let spacing = 12.0;
    let name_width = 130.0;
    let value_width = ((ui.available_width() - name_width - 2.0 * spacing) / 2.0).max(80.0);
    egui::Grid::new("object_diff")
        .striped(true)
        .num_columns(3)
        .spacing([spacing, 4.0])
        .show(ui, |ui| {
            ui.strong("Attribute");
            ui.strong("Old");
            ui.strong("New");
            ui.end_row();
            for attribute in &change.attributes {
                ui.scope(|ui| {
                    ui.set_width(name_width);
                    ui.add(egui::Label::new(printable(&attribute.name)).wrap());
                });
                let old = values(&attribute.old);
                let new = values(&attribute.new);
                ui.vertical(|ui| {
                    ui.set_width(value_width);
                    values_ui(ui, &old, &new, "- ", theme::removed(ui));
                });
                ui.vertical(|ui| {
                    ui.set_width(value_width);
                    values_ui(ui, &new, &old, "+ ", theme::added(ui));
                });
                ui.end_row();
            }
        });
}

/// A value as a list of texts: one per value of a multi-valued attribute.
fn values(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(values) => values.iter().map(scalar_text).collect(),
        other => vec![scalar_text(other)],
    }
}

/// One side of the diff: values not on the other side are coloured and marked (`- ` removed,
/// `+ ` added, for those who do not see the colour).
fn values_ui(
    ui: &mut egui::Ui,
    side: &[String],
    other: &[String],
    marker: &str,
    changed: egui::Color32,
) {
    if side.is_empty() {
        ui.weak("(none)");
        return;
    }
    for value in side {
        let text = printable(value);
        if other.contains(value) {
            ui.add(egui::Label::new(text).wrap());
        } else {
            ui.add(
                egui::Label::new(egui::RichText::new(format!("{marker}{text}")).color(changed))
                    .wrap(),
            );
        }
    }
}

fn error_ui(ui: &mut egui::Ui, error: &ErrorRecord) {
    identity_ui(
        ui,
        &error.dn,
        error.anchor.as_deref(),
        None,
        error.object_type.map_or("–", |kind| kind.as_str()),
    );
    ui.add_space(8.0);
    egui::Grid::new("object_error")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.strong("Error");
            ui.colored_label(theme::error(ui), &error.error_type);
            ui.end_row();
            ui.strong("Code");
            ui.label(error.code.as_deref().unwrap_or("–"));
            ui.end_row();
            ui.strong("Step");
            ui.label(error.step.as_str());
            ui.end_row();
            ui.strong("First occurred");
            ui.label(human_time(error.first_occurred_at));
            ui.end_row();
            ui.strong("Retries");
            ui.label(error.retry_count.to_string());
            ui.end_row();
        });
    ui.add_space(8.0);
    ui.strong("Server's message");
    // The server's words as they came: what a support case quotes.
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.add(
            egui::Label::new(egui::RichText::new(printable(&error.server_message)).monospace())
                .wrap(),
        );
    });
    ui.add_space(8.0);
    ui.strong("What to fix");
    ui.add(egui::Label::new(format!("Hint: {}", error.hint)).wrap());
}
