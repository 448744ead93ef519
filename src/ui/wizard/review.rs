//! Step 7: every choice on one page, what is not ready (with the objects named), and a preview of
//! what the first sync would do, from the engine's own preview cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::Handle;

use super::WizardState;
use crate::secret::Secret;
use crate::setup::preview::{
    FirstSyncPreview, PreviewForest, PreviewObject, ReadinessFinding, preview_first_sync,
};
use crate::setup::{AdminSession, CloudSession, SetupFailure};
use crate::ui::alerts_form::{AlertsForm, alerts_form_ui, alerts_problem_ui};
use crate::ui::task::Lookup;
use crate::ui::theme;

/// Tells each preview's scratch directory apart within this process.
static PREVIEWS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default)]
pub struct ReviewStep {
    /// Run the first sync as soon as setup is applied. Off unless asked for.
    pub start_sync: bool,
    preview: Lookup<FirstSyncPreview>,
    /// The answers the preview was made for: a change on an earlier page makes a new one.
    previewed: String,
    /// Where alerts go (optional).
    pub alerts: AlertsForm,
    /// Forests the saved configuration syncs that these answers leave out, with what dirsync
    /// manages there (README, "Several forests"), read for the forests named in `removals_for`.
    removals: Lookup<Vec<RemovedForest>>,
    removals_for: String,
}

/// A forest the saved configuration syncs and the answers remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedForest {
    pub name: String,
    /// Its objects dirsync holds (their cloud objects go at the next run).
    pub objects: u64,
    /// The deletion threshold that holds for them.
    pub threshold: usize,
}

impl ReviewStep {
    pub fn passed(&self) -> bool {
        self.preview.done().is_some()
            && self
                .alerts
                .apply_to(&mut crate::config::MonitoringConfig::default())
                .is_ok()
    }

    pub fn busy(&self) -> bool {
        self.preview.is_running()
    }

    pub fn preview(&self) -> Option<&FirstSyncPreview> {
        self.preview.done()
    }
}

pub fn review_ui(ui: &mut egui::Ui, state: &mut WizardState, runtime: &Handle) {
    state.review.preview.poll();
    ui.heading("Review");
    choices_ui(ui, state);
    ui.add_space(8.0);

    let (Some(cloud), Some(admin)) = (
        state.cloud_session().cloned(),
        state.admin_session().cloned(),
    ) else {
        let missing = if state.cloud_session().is_none() {
            "Sign in to the cloud again (step 2)."
        } else {
            "Check the enterprise admin again (step 3)."
        };
        ui.colored_label(theme::error(ui), missing);
        return;
    };
    let mut further = Vec::new();
    for (index, forest) in state.forests.forests.iter().enumerate() {
        let Some(session) = forest.admin.session() else {
            ui.colored_label(
                theme::error(ui),
                format!("Check forest {} again (Other forests).", index + 2),
            );
            return;
        };
        further.push(PreviewForest {
            admin_dn: session.check.account_dn.clone(),
            admin_password: Secret::new(forest.admin.password.clone()),
            domain: session.domain.clone(),
        });
    }
    // What the preview depends on: not the "start synchronization" box or the alerts below it.
    let answers = crate::setup::Answers {
        sync_now: false,
        monitoring: crate::config::MonitoringConfig::default(),
        ..state.answers()
    };
    let fingerprint = format!(
        "{answers:?}{}{}{:?}",
        state.cloud.generation,
        state.admin.generation,
        further
            .iter()
            .map(|forest| forest.domain.to_string())
            .collect::<Vec<_>>()
    );
    if state.review.previewed != fingerprint && !state.review.preview.is_running() {
        state.review.previewed = fingerprint;
        let password = Secret::new(state.admin.password.clone());
        state.review.preview =
            start_preview(runtime, ui.ctx(), answers, cloud, admin, password, further);
    }

    removals_ui(ui, state, runtime);
    ui.strong("The first sync");
    match &state.review.preview {
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Previewing the first sync: reading the OUs in scope and the tenant…");
            });
        }
        Lookup::Failed(message) => {
            ui.colored_label(theme::error(ui), format!("✖ {message}"));
            if ui.button("Preview again").clicked() {
                state.review.previewed.clear();
            }
        }
        Lookup::Done(preview) => preview_ui(ui, preview),
        Lookup::NotStarted => {}
    }
    ui.add_space(8.0);
    egui::CollapsingHeader::new("Alerts (optional)")
        .default_open(state.review.alerts != AlertsForm::default())
        .show(ui, |ui| {
            ui.weak("Where dirsync tells you when a run fails, deletes are held back, no run went through for too long, drift is found, the directory quota is nearly used or the credential expires. \"Send a test alert\" on the dashboard's Settings page proves they are reached.");
            alerts_form_ui(ui, &mut state.review.alerts);
            alerts_problem_ui(ui, &state.review.alerts);
        });
    ui.add_space(8.0);
    ui.checkbox(
        &mut state.review.start_sync,
        "Start synchronization when the wizard closes",
    );
    ui.weak("Apply creates the service account and the sync app and saves the configuration; nothing is exported until a sync runs.");
}

/// Checks the answers (which reads the CA file: not a frame's work) and previews the first sync.
fn start_preview(
    runtime: &Handle,
    repaint: &egui::Context,
    answers: crate::setup::Answers,
    cloud: CloudSession,
    admin: Arc<AdminSession>,
    password: Secret,
    further: Vec<PreviewForest>,
) -> Lookup<FirstSyncPreview> {
    Lookup::start(runtime, repaint, move |_| async move {
        let checked = super::check_wizard_answers(answers)?;
        let scratch = std::env::temp_dir().join(format!(
            "dirsync-preview-{}-{}",
            std::process::id(),
            PREVIEWS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch).map_err(|error| {
            SetupFailure::failed(
                None,
                format!(
                    "cannot make a scratch directory {} for the preview: {error}",
                    scratch.display()
                ),
            )
        })?;
        let preview = Box::pin(preview_first_sync(
            &checked,
            &password,
            &admin.check.account_dn,
            &admin.domain,
            &further,
            &cloud,
            &scratch,
        ))
        .await;
        let _ = std::fs::remove_dir_all(&scratch);
        preview
    })
}

/// With "Configure…": the forests the answers remove, and what leaving them out deletes.
fn removals_ui(ui: &mut egui::Ui, state: &mut WizardState, runtime: &Handle) {
    let mut kept: Vec<String> = state
        .admin_session()
        .map(|admin| admin.domain.dns_name())
        .into_iter()
        .collect();
    kept.extend(state.forests.forests.iter().filter_map(|forest| {
        forest
            .admin
            .session()
            .map(|session| session.domain.dns_name())
    }));
    let key = kept.join(",");
    let home = state.home().clone();
    let review = &mut state.review;
    review.removals.poll();
    if review.removals_for != key {
        review.removals_for = key;
        review.removals = Lookup::read(runtime, ui.ctx(), move || {
            removed_forests(&home, &kept).map_err(|error| error.to_string())
        });
    }
    let Some(removed) = review.removals.done() else {
        return;
    };
    for forest in removed {
        ui.colored_label(
            theme::warning(ui),
            format!(
                "⚠ {} is no longer synchronized: its {} object(s) leave the scope, and the next run deletes their cloud objects (more than {} and the run holds them for you to confirm).",
                forest.name, forest.objects, forest.threshold
            ),
        );
    }
    if !removed.is_empty() {
        ui.add_space(6.0);
    }
}

/// The forests `config.toml` syncs whose names are not in `kept`, with their object counts.
fn removed_forests(
    home: &crate::home::Home,
    kept: &[String],
) -> Result<Vec<RemovedForest>, crate::store::StoreError> {
    let Ok(config) = crate::config::Config::load(&home.config_file) else {
        return Ok(Vec::new());
    };
    let removed: Vec<_> = config
        .forests()
        .into_iter()
        .filter(|forest| !kept.contains(&forest.name()))
        .collect();
    if removed.is_empty() || !crate::store::StateStore::exists(home) {
        return Ok(Vec::new());
    }
    let store = crate::store::StateStore::open_home(home)?;
    removed
        .iter()
        .map(|forest| {
            let cursor = forest.cursor(crate::store::sync_state::DIRSYNC_CURSOR);
            let figures = store.forest_figures(crate::store::browse::ForestKey {
                name: &forest.name(),
                naming_context: &forest.directory.naming_context,
                cookie_cursor: &cursor,
                first: forest.position == 0,
            })?;
            Ok(RemovedForest {
                name: forest.name(),
                objects: figures.directory_objects,
                threshold: config.options.deletion_threshold,
            })
        })
        .collect()
}

fn choices_ui(ui: &mut egui::Ui, state: &WizardState) {
    let answers = state.answers();
    let on_off = |on: bool| if on { "on" } else { "off" };
    egui::Grid::new("review_choices")
        .num_columns(2)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            ui.label("Tenant");
            ui.label(match state.cloud_session() {
                Some(session) => format!(
                    "{} ({})",
                    session.tenant_name().unwrap_or("an app's tenant"),
                    session.tenant_id()
                ),
                None => answers.cloud.tenant.clone(),
            });
            ui.end_row();
            ui.label("Sign-in server");
            ui.label(&answers.cloud.authority);
            ui.end_row();
            ui.label("Sync app");
            ui.label(match &answers.cloud.client_id {
                Some(id) => format!("the existing app {id}"),
                None => format!("dirsync ({}), created or reused", state.computer),
            });
            ui.end_row();
            ui.label("Domain controller");
            ui.label(&answers.directory.server);
            ui.end_row();
            ui.label("Certificate");
            if answers.directory.insecure {
                ui.colored_label(theme::insecure(ui), "not verified (insecure)");
            } else {
                ui.label(
                    answers
                        .directory
                        .ca_file
                        .as_ref()
                        .map_or("the system's trusted roots".to_owned(), |path| {
                            format!("issued by the CA in {}", path.display())
                        }),
                );
            }
            ui.end_row();
            ui.label("Enterprise admin");
            ui.label(format!("{} (not stored)", answers.directory.admin_user));
            ui.end_row();
            ui.label("Hybrid write-back");
            ui.label(on_off(answers.options.hybrid_write_back));
            ui.end_row();
            ui.label("Password sync");
            ui.label(if answers.options.password_hash_sync {
                format!("on, {}", answers.options.password_sync_mode.label())
            } else {
                "off".to_owned()
            });
            ui.end_row();
            ui.label("Included OUs");
            ui.label(answers.scope.included.join("\n"));
            ui.end_row();
            ui.label("Excluded OUs");
            ui.label(if answers.scope.excluded.is_empty() {
                "none".to_owned()
            } else {
                answers.scope.excluded.join("\n")
            });
            ui.end_row();
            ui.label("Sync rules");
            ui.label(rules_in_words(&answers.rules));
            ui.end_row();
            for (index, forest) in answers.forests.iter().enumerate() {
                ui.label(format!("Forest {}", index + 2));
                ui.label(format!(
                    "{}, as {} (not stored); OUs: {}{}",
                    forest.directory.server,
                    forest.directory.admin_user,
                    forest.scope.included.join("; "),
                    if forest.scope.excluded.is_empty() {
                        String::new()
                    } else {
                        format!(" except {}", forest.scope.excluded.join("; "))
                    }
                ));
                ui.end_row();
            }
            ui.label("Configuration file");
            ui.label(state.home().config_file.display().to_string());
            ui.end_row();
            ui.label("State database");
            ui.label(state_database_in_words(
                &answers.store.config(),
                state.home(),
            ));
            ui.end_row();
        });
}

/// Where run history and sync state will live, as the review step says it.
fn state_database_in_words(store: &crate::config::StoreConfig, home: &crate::home::Home) -> String {
    match store.engine {
        crate::config::StoreEngine::Sqlite => {
            format!("SQLite, {}", home.state_db.display())
        }
        crate::config::StoreEngine::Postgresql => format!(
            "PostgreSQL, {} (its password is checked, then kept with the other secrets)",
            store.place()
        ),
    }
}

/// The rules in one line per object type: how many scoping rules and mappings, and the filter.
fn rules_in_words(rules: &crate::rules::RulesConfig) -> String {
    let kind = |word: &str, rules: &crate::rules::ObjectRulesConfig| {
        if rules.is_empty() {
            return None;
        }
        Some(format!(
            "{word}: {} scoping rule(s), {} mapping(s){}",
            rules.scoping.len(),
            rules.mappings.len(),
            rules
                .ldap_filter
                .as_deref()
                .map(|filter| format!(", LDAP filter {filter}"))
                .unwrap_or_default()
        ))
    };
    let lines: Vec<String> = [kind("users", &rules.users), kind("groups", &rules.groups)]
        .into_iter()
        .flatten()
        .collect();
    if lines.is_empty() {
        "none: every user and group in the OUs, with the default flow".to_owned()
    } else {
        lines.join("\n")
    }
}

fn preview_ui(ui: &mut egui::Ui, preview: &FirstSyncPreview) {
    let errors: Vec<&ReadinessFinding> = preview.errors().collect();
    let warnings: Vec<&ReadinessFinding> = preview
        .findings
        .iter()
        .filter(|finding| !finding.blocks_export)
        .collect();
    ui.label(format!(
        "{} to add, {} already in the cloud to match, {} with errors (not exported), {} with warnings.",
        preview.adds.len(),
        preview.matches.len(),
        errors.len(),
        warnings.len()
    ));
    objects_ui(ui, &format!("Adds ({})", preview.adds.len()), &preview.adds);
    objects_ui(
        ui,
        &format!("Matches ({})", preview.matches.len()),
        &preview.matches,
    );
    findings_ui(ui, &format!("Errors ({})", errors.len()), &errors, true);
    findings_ui(
        ui,
        &format!("Warnings ({})", warnings.len()),
        &warnings,
        false,
    );
}

fn objects_ui(ui: &mut egui::Ui, title: &str, objects: &[PreviewObject]) {
    egui::CollapsingHeader::new(title)
        .id_salt(title.split(' ').next().unwrap_or(title))
        .show(ui, |ui| {
            let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
            egui::ScrollArea::vertical()
                .id_salt(title.split(' ').next().unwrap_or(title))
                .max_height(180.0)
                .show_rows(ui, row_height, objects.len(), |ui, range| {
                    for object in &objects[range] {
                        let kind = match object.kind {
                            crate::directory::objects::ObjectKind::User => "user",
                            crate::directory::objects::ObjectKind::Group => "group",
                        };
                        match object.how {
                            Some(how) => ui.label(format!("{kind}  {}  ({how})", object.dn)),
                            None => ui.label(format!("{kind}  {}", object.dn)),
                        };
                    }
                });
        });
}

fn findings_ui(ui: &mut egui::Ui, title: &str, findings: &[&ReadinessFinding], errors: bool) {
    egui::CollapsingHeader::new(title)
        .id_salt(title.split(' ').next().unwrap_or(title))
        .default_open(errors && !findings.is_empty())
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt(title.split(' ').next().unwrap_or(title))
                .max_height(220.0)
                .show(ui, |ui| {
                    for finding in findings {
                        let colour = if errors {
                            theme::error(ui)
                        } else {
                            theme::warning(ui)
                        };
                        ui.colored_label(colour, format!("{}  [{}]", finding.dn, finding.rule));
                        ui.label(format!("    {}", finding.statement));
                        ui.weak(format!("    What to do: {}", finding.hint));
                        if let Some(suggested) = &finding.suggested {
                            ui.weak(format!("    Suggested value: {suggested}"));
                        }
                    }
                });
        });
}
