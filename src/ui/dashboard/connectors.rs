//! Connectors: the directory, one per forest (server, service account, scope, last import,
//! cookie age, object count, its last import's failure) and the cloud (tenant, app, verified domains, object count, throttling seen), with
//! password hash sync's state and its last failure.

use tokio::runtime::Handle;

use super::read_store;
use crate::clock::human_time;
use crate::cloud::FlowPolicy;
use crate::cloud::auth::DeviceCodePrompt;
use crate::cloud::setup::CloudDomain;
use crate::config::{Config, Forest, PasswordSyncMode};
use crate::engine::cycle::sync_app_client;
use crate::home::Home;
use crate::run_report::human_duration;
use crate::setup::{RenewedCredential, renew_app_credential};
use crate::store::browse::{ConnectorFigures, ForestFigures, ForestKey};
use crate::store::runs::{RunId, RunRecord};
use crate::store::sync_state::DIRSYNC_CURSOR;
use crate::store::vocabulary::{RunMode, RunStatus};
use crate::ui::task::{Lookup, SetupEvent};
use crate::ui::theme;

/// The last password run that failed, with why.
#[derive(Debug, Clone)]
pub struct PasswordFailure {
    run_id: RunId,
    message: String,
}

#[derive(Debug)]
pub struct StoreFacts {
    figures: ConnectorFigures,
    /// Each forest's figures when several forests sync (README, "Several forests"), in their
    /// order; empty with one forest.
    forests: Vec<ForestFigures>,
    password_failure: Option<PasswordFailure>,
    /// Synced users with no password dirsync could send yet (through Microsoft Graph: set
    /// before Samba kept passwords), until their next AD password change.
    passwords_waiting: u64,
}

#[derive(Debug, Default)]
pub struct Connectors {
    /// Ask the tenant with the sync app's credential (off in tests that must not).
    pub read_cloud: bool,
    facts: Lookup<StoreFacts>,
    /// The tenant's verified domains as the sync app sees them now (a Graph call).
    tenant: Lookup<Vec<CloudDomain>>,
    renewal: Renewal,
}

/// Renewing the sync app's credential with an administrator's sign-in.
#[derive(Debug, Default)]
struct Renewal {
    task: Lookup<RenewedCredential>,
    /// The sign-in code the renewal waits on.
    prompt: Option<DeviceCodePrompt>,
    /// The success was already handed to the dashboard (which reads config.toml again).
    reported: bool,
}

impl Connectors {
    pub fn new(read_cloud: bool) -> Connectors {
        Connectors {
            read_cloud,
            ..Connectors::default()
        }
    }

    /// Reads the figures again next time the page shows (a run ended).
    pub fn forget(&mut self) {
        self.facts = Lookup::NotStarted;
    }

    /// True once after a renewal succeeded: config.toml has the new expiry.
    pub fn take_renewed(&mut self) -> bool {
        let renewed = matches!(self.renewal.task, Lookup::Done(_)) && !self.renewal.reported;
        if renewed {
            self.renewal.reported = true;
        }
        renewed
    }
}

pub fn connectors_ui(
    ui: &mut egui::Ui,
    connectors: &mut Connectors,
    config: &Result<Config, String>,
    runs: &[RunRecord],
    home: &Home,
    runtime: &Handle,
    now: i64,
) {
    let repaint = &ui.ctx().clone();
    let read_cloud = connectors.read_cloud;
    let ago = |unix_ms: i64| {
        format!(
            "{} ({} ago)",
            human_time(unix_ms),
            human_duration(now - unix_ms)
        )
    };
    connectors.facts.poll();
    connectors.tenant.poll();
    for event in connectors.renewal.task.poll() {
        if let SetupEvent::DeviceCode(prompt) = event {
            connectors.renewal.prompt = Some(prompt);
        }
    }
    if !connectors.renewal.task.is_running() {
        connectors.renewal.prompt = None;
    }
    let config = match config {
        Ok(config) => config,
        Err(problem) => {
            ui.colored_label(theme::error(ui), problem);
            return;
        }
    };
    if matches!(connectors.facts, Lookup::NotStarted) {
        let last_password_run = runs
            .iter()
            .find(|run| run.mode == RunMode::Password)
            .filter(|run| run.status == RunStatus::Failed)
            .map(|run| run.id);
        let forest_keys: Vec<(String, String, String, bool)> = if config.forests.is_empty() {
            Vec::new()
        } else {
            config
                .forests()
                .iter()
                .map(|forest| {
                    (
                        forest.name(),
                        forest.directory.naming_context.clone(),
                        forest.cursor(DIRSYNC_CURSOR),
                        forest.position == 0,
                    )
                })
                .collect()
        };
        connectors.facts = read_store(home, runtime, repaint, move |store| {
            let password_failure = match last_password_run {
                Some(run_id) => store
                    .run_errors(run_id)?
                    .into_iter()
                    .find(|error| error.dn.is_empty())
                    .map(|error| PasswordFailure {
                        run_id,
                        message: format!("{} — {}", error.server_message, error.hint),
                    }),
                None => None,
            };
            let forests = forest_keys
                .iter()
                .map(|(name, naming_context, cookie_cursor, first)| {
                    store.forest_figures(ForestKey {
                        name,
                        naming_context,
                        cookie_cursor,
                        first: *first,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(StoreFacts {
                figures: store.connector_figures()?,
                forests,
                password_failure,
                passwords_waiting: store.passwords_waiting()?,
            })
        });
    }
    if read_cloud && matches!(connectors.tenant, Lookup::NotStarted) {
        let config = config.clone();
        let secrets = home.secrets();
        connectors.tenant = Lookup::start(runtime, repaint, move |_| async move {
            let failed = |error: String| crate::setup::SetupFailure::failed(None, error);
            let graph = sync_app_client(&config, &secrets, FlowPolicy::default())
                .map_err(|error| failed(error.to_string()))?;
            // The domains, as every run reads them (the sync app may not read the organization).
            crate::cloud::setup::verified_domains(&graph)
                .await
                .map_err(|error| failed(error.to_string()))
        });
    }
    let mut read_again = false;
    let facts = connectors.facts.done();
    let tenant = &connectors.tenant;
    egui::ScrollArea::vertical()
        .id_salt("connectors_scroll")
        .show(ui, |ui| {
            let forests = config.forests();
            for forest in &forests {
                // One forest: its figures are the store's; several: each its own connector.
                let figures = facts.map(|facts| match facts.forests.get(forest.position) {
                    Some(figures) => figures.clone(),
                    None => ForestFigures {
                        directory_objects: facts.figures.directory_objects,
                        last_directory_import: facts.figures.last_directory_import,
                        cookie_saved_at: facts.figures.cookie_saved_at,
                        failure: None,
                    },
                });
                if forests.len() > 1 {
                    ui.heading(format!("Active Directory: {}", forest.name()));
                } else {
                    ui.heading("Active Directory");
                }
                directory_connector_ui(ui, forest, figures.as_ref(), &ago);
                ui.add_space(12.0);
            }
            ui.heading("Microsoft Entra ID");
            facts_grid_ui(ui, "cloud_connector", |ui| {
                match tenant {
                    Lookup::Done(domains) => {
                        let initial = domains
                            .iter()
                            .find(|domain| domain.is_initial)
                            .map_or(String::new(), |domain| format!(" ({})", domain.name));
                        fact_ui(ui, "Tenant", format!("{}{initial}", config.cloud.tenant_id));
                        let names: Vec<String> =
                            domains.iter().map(|domain| domain.name.clone()).collect();
                        fact_ui(ui, "Verified domains", list_or_none(&names));
                    }
                    Lookup::Failed(problem) => {
                        fact_ui(ui, "Tenant", config.cloud.tenant_id.clone());
                        ui.strong("Verified domains");
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new(format!("cannot read them: {problem}"))
                                    .color(theme::error(ui)),
                            )
                            .wrap(),
                        );
                        ui.end_row();
                    }
                    Lookup::NotStarted if !read_cloud => {
                        fact_ui(ui, "Tenant", config.cloud.tenant_id.clone());
                        fact_ui(ui, "Verified domains", "not read in this window".to_owned());
                    }
                    Lookup::NotStarted | Lookup::Running(_) => {
                        fact_ui(ui, "Tenant", config.cloud.tenant_id.clone());
                        ui.strong("Verified domains");
                        ui.spinner();
                        ui.end_row();
                    }
                }
                fact_ui(ui, "Graph", config.cloud.graph.clone());
                fact_ui(ui, "Sync app (client id)", config.cloud.client_id.clone());
                credential_row_ui(ui, config, now);
                if let Some(facts) = facts {
                    let figures = &facts.figures;
                    fact_ui(
                        ui,
                        "Objects dirsync manages",
                        figures.cloud_objects.to_string(),
                    );
                    if config.options.disable_before_delete || figures.disabled_awaiting_delete > 0
                    {
                        let waiting = match figures.first_disabled_at {
                            Some(first) if figures.disabled_awaiting_delete > 0 => format!(
                                "{} user(s) disabled after leaving the scope; the first, disabled {}, is deleted after {} days unless it comes back",
                                figures.disabled_awaiting_delete,
                                human_time(first),
                                config.options.delete_after_days
                            ),
                            _ => "none".to_owned(),
                        };
                        fact_ui(ui, "Awaiting deletion", waiting);
                    }
                    let throttling = match figures.last_throttled_run {
                        Some(run) => format!(
                            "{} requests answered 429 in the kept history (last in run {run})",
                            figures.throttled_requests
                        ),
                        None => "none in the kept history".to_owned(),
                    };
                    fact_ui(ui, "Throttling seen", throttling);
                }
                let options = &config.options;
                fact_ui(ui, "Hybrid write-back", on_off(options.hybrid_write_back));
                fact_ui(
                    ui,
                    "Password sync",
                    if options.password_hash_sync {
                        format!(
                            "{}, every {} seconds",
                            options.password_sync_mode.label(),
                            options.password_interval_secs
                        )
                    } else {
                        "off".to_owned()
                    },
                );
                if options.password_hash_sync
                    && options.password_sync_mode == PasswordSyncMode::Graph
                    && let Some(facts) = facts
                {
                    fact_ui(
                        ui,
                        "Waiting for a password change",
                        format!(
                            "{} users (their cloud password is set at their next AD password change)",
                            facts.passwords_waiting
                        ),
                    );
                }
                if let Some(failure) = facts.and_then(|facts| facts.password_failure.as_ref()) {
                    ui.strong("Last password run");
                    ui.colored_label(
                        theme::error(ui),
                        format!("run {} failed: {}", failure.run_id, failure.message),
                    );
                    ui.end_row();
                }
            });
            ui.add_space(8.0);
            // Only dirsync's own app: an existing app the answers named is renewed in Entra.
            if crate::setup::known_app(config).is_some() {
                renewal_ui(ui, &mut connectors.renewal, home, runtime);
            }
            ui.add_space(8.0);
            read_again = ui.button("Read again").clicked();
        });
    if read_again {
        connectors.facts = Lookup::NotStarted;
        connectors.tenant = Lookup::NotStarted;
    }
}

/// One forest's connector: its domain controller, service account and scope, and what the
/// store says of it (`None`: still reading).
fn directory_connector_ui(
    ui: &mut egui::Ui,
    forest: &Forest<'_>,
    figures: Option<&ForestFigures>,
    ago: &dyn Fn(i64) -> String,
) {
    let id = if forest.position == 0 {
        "directory_connector".to_owned()
    } else {
        format!("directory_connector_{}", forest.position)
    };
    facts_grid_ui(ui, &id, |ui| {
        fact_ui(ui, "Server", forest.directory.server.clone());
        if forest.directory.insecure {
            ui.strong("Certificate");
            ui.colored_label(
                theme::insecure(ui),
                "NOT VERIFIED (directory.insecure = true)",
            );
            ui.end_row();
        }
        fact_ui(ui, "Domain", forest.directory.naming_context.clone());
        fact_ui(
            ui,
            "Service account",
            forest.directory.service_account_dn.clone(),
        );
        fact_ui(
            ui,
            "Scope: included",
            list_or_none(&forest.scope_config.included),
        );
        fact_ui(
            ui,
            "Scope: excluded",
            list_or_none(&forest.scope_config.excluded),
        );
        match figures {
            Some(figures) => {
                fact_ui(
                    ui,
                    "Objects in scope",
                    figures.directory_objects.to_string(),
                );
                fact_ui(
                    ui,
                    "Last import",
                    figures
                        .last_directory_import
                        .map_or("never".to_owned(), ago),
                );
                fact_ui(
                    ui,
                    "DirSync cookie saved",
                    figures
                        .cookie_saved_at
                        .map_or("never (the next run reads everything)".to_owned(), ago),
                );
                if let Some((run, message)) = &figures.failure {
                    ui.strong("Last import failed");
                    ui.add(
                        egui::Label::new(
                            egui::RichText::new(format!("run {run}: {message}"))
                                .color(theme::error(ui)),
                        )
                        .wrap(),
                    );
                    ui.end_row();
                }
            }
            None => {
                ui.strong("Objects in scope");
                ui.spinner();
                ui.end_row();
            }
        }
    });
}

/// When the sync app's credential expires, in warning colours from 30 days before.
fn credential_row_ui(ui: &mut egui::Ui, config: &Config, now_ms: i64) {
    ui.strong("App credential");
    match (
        config.credential_warning(now_ms / 1000),
        config.cloud.credential_expires_at.as_deref(),
    ) {
        (Some(warning), _) => {
            ui.add(egui::Label::new(egui::RichText::new(warning).color(theme::warning(ui))).wrap());
        }
        (None, Some(expires)) => {
            ui.label(format!(
                "certificate, expires {}",
                expires.split('T').next().unwrap_or(expires)
            ));
        }
        (None, None) => {
            ui.label("an existing app's secret (its expiry is in the Entra admin center)");
        }
    }
    ui.end_row();
}

/// "Renew credential…": a Global Administrator signs in with a code, dirsync gives its app a new
/// certificate, proves it, removes the old one and keeps the new expiry in config.toml.
fn renewal_ui(ui: &mut egui::Ui, renewal: &mut Renewal, home: &Home, runtime: &Handle) {
    match &renewal.task {
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(
                    "Renewing the sync app's credential: waiting for the administrator's sign-in…",
                );
            });
            if let Some(prompt) = &renewal.prompt {
                crate::ui::wizard::device_code_ui(ui, prompt);
            }
        }
        Lookup::Done(renewed) => {
            ui.colored_label(
                theme::ok(ui),
                format!(
                    "✔ The sync app has a new credential{}; {} older one(s) removed.",
                    renewed
                        .expires_at
                        .as_deref()
                        .map(|at| format!(", valid until {}", at.split('T').next().unwrap_or(at)))
                        .unwrap_or_default(),
                    renewed.removed
                ),
            );
        }
        Lookup::Failed(problem) => {
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!("The renewal failed: {problem}"))
                        .color(theme::error(ui)),
                )
                .wrap(),
            );
        }
        Lookup::NotStarted => {}
    }
    if !renewal.task.is_running()
        && ui
            .button("Renew credential…")
            .on_hover_text("A Global Administrator signs in with a code; dirsync gives its app a new certificate and removes the old one")
            .clicked()
    {
        let home = home.clone();
        let secrets = home.secrets();
        let computer = crate::setup::computer_name();
        renewal.reported = false;
        renewal.task = Lookup::start(runtime, ui.ctx(), move |mut reporter| async move {
            let previous = Config::load(&home.config_file).ok();
            let renewed = Box::pin(renew_app_credential(
                &home.config_file,
                &computer,
                &secrets,
                &mut reporter,
            ))
            .await?;
            if let Ok(saved) = Config::load(&home.config_file) {
                crate::runner::audit::record_configuration(
                    &home,
                    crate::runner::audit::Source::Dashboard,
                    "credential-renewed",
                    previous.as_ref(),
                    &saved,
                );
            }
            Ok(renewed)
        });
    }
}

/// Two columns of facts: the name in bold, the value beside it.
fn facts_grid_ui(ui: &mut egui::Ui, id: &str, add_rows: impl FnOnce(&mut egui::Ui)) {
    egui::Grid::new(id)
        .num_columns(2)
        .min_col_width(170.0)
        .spacing([16.0, 4.0])
        .show(ui, add_rows);
}

fn fact_ui(ui: &mut egui::Ui, name: &str, value: String) {
    ui.strong(name);
    ui.label(value);
    ui.end_row();
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}

fn on_off(on: bool) -> String {
    if on { "on" } else { "off" }.to_owned()
}
