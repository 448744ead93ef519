//! The configuration wizard: the list of steps on the left, the current page in the middle, Back,
//! Next and Cancel at the bottom. Each step proves itself with a real call before Next opens the
//! next one, and every call is setup's own (`crate::setup`): the wizard gathers the answers and
//! shows what setup says, and its Apply step runs the same `apply_setup` as
//! `dirsync setup --answers`.

mod apply;
mod cloud;
mod directory;
pub mod forests;
mod options;
mod review;
pub mod scope;
mod welcome;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::config::{
    Config, MonitoringConfig, PasswordPaths, PasswordSyncMode, ScopeConfig, SyncOptions,
};
use crate::directory::password_hashes::SAMBA_PRIVILEGED_SOCKET;
use crate::directory::samba_gpg::SAMBA_CONFIG;
use crate::home::Home;
use crate::setup::answers::{
    Answers, CloudAnswers, DEFAULT_ADMIN_PASSWORD_ENV, DirectoryAnswers, SignIn,
};
use crate::setup::{AdminSession, CheckedAnswers, CloudSession, check_answers};
use crate::ui::theme;

pub use apply::ApplyStep;
pub use cloud::{CloudStep, device_code_ui};
pub use directory::AdminStep;
pub use options::{PasswordStep, WriteBackStep};
pub use review::ReviewStep;
pub use welcome::WelcomeStep;

/// The wizard's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WizardStep {
    #[default]
    Welcome,
    Cloud,
    EnterpriseAdmin,
    OtherForests,
    HybridWriteBack,
    PasswordSync,
    Scope,
    Rules,
    Review,
    Apply,
}

impl WizardStep {
    pub const ALL: [WizardStep; 10] = [
        WizardStep::Welcome,
        WizardStep::Cloud,
        WizardStep::EnterpriseAdmin,
        WizardStep::OtherForests,
        WizardStep::HybridWriteBack,
        WizardStep::PasswordSync,
        WizardStep::Scope,
        WizardStep::Rules,
        WizardStep::Review,
        WizardStep::Apply,
    ];

    pub fn title(self) -> &'static str {
        match self {
            WizardStep::Welcome => "Welcome",
            WizardStep::Cloud => "Cloud",
            WizardStep::EnterpriseAdmin => "Enterprise admin",
            WizardStep::OtherForests => "Other forests",
            WizardStep::HybridWriteBack => "Hybrid write-back",
            WizardStep::PasswordSync => "Password sync",
            WizardStep::Scope => "Scope",
            WizardStep::Rules => "Rules",
            WizardStep::Review => "Review",
            WizardStep::Apply => "Apply",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|step| *step == self)
            .expect("every step is listed")
    }

    fn next(self) -> Option<WizardStep> {
        Self::ALL.get(self.index() + 1).copied()
    }

    fn previous(self) -> Option<WizardStep> {
        self.index().checked_sub(1).map(|index| Self::ALL[index])
    }
}

/// How the wizard ended, for the window to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WizardOutcome {
    /// Setup was applied: open the dashboard.
    Applied,
    /// The administrator cancelled.
    Cancelled,
}

/// Everything the administrator entered and every check's answer. Secrets entered here (the
/// enterprise admin's password, an existing app's secret) live only in memory.
#[derive(Debug)]
pub struct WizardState {
    pub step: WizardStep,
    /// The furthest step reached; steps up to it can be revisited from the list.
    furthest: WizardStep,
    pub welcome: WelcomeStep,
    pub cloud: CloudStep,
    pub admin: AdminStep,
    /// Further forests (optional; README, "Several forests").
    pub forests: forests::ForestsStep,
    pub write_back: WriteBackStep,
    pub passwords: PasswordStep,
    pub scope: scope::OuPicker,
    pub review: ReviewStep,
    pub apply: ApplyStep,
    /// Options the wizard has no page for (interval, threshold…): kept from the saved
    /// configuration or the answers file, else the defaults.
    other_options: SyncOptions,
    /// The monitoring settings: kept as the configuration had them, with the alert destinations
    /// the review step asks for.
    monitoring: MonitoringConfig,
    /// The sync rules (optional): from the configuration or the answers file, edited on the
    /// Rules page.
    pub rules: crate::ui::rules_editor::RulesEditor,
    timeout_secs: u64,
    /// Where the state lives: kept from the saved configuration or the answers file (README,
    /// "Where the state lives"); the review step names it.
    store: crate::setup::answers::StoreAnswers,
    /// Cancel was pressed: the confirmation is showing.
    cancel_asked: bool,
    pub outcome: Option<WizardOutcome>,
    /// This computer's name: it names the service account and the sync app as this
    /// installation's (as `dirsync setup` does).
    pub computer: String,
    runtime: Handle,
    home: Home,
}

impl WizardState {
    /// A wizard with the defaults (the global cloud, nothing else filled in).
    pub fn new(runtime: Handle, home: Home) -> WizardState {
        // A saved configuration names the app this installation registered: setup reuses it.
        let known_app = Config::load(&home.config_file)
            .ok()
            .as_ref()
            .and_then(crate::setup::known_app);
        WizardState {
            step: WizardStep::Welcome,
            furthest: WizardStep::Welcome,
            welcome: WelcomeStep::default(),
            cloud: CloudStep::default().with_known_app(known_app),
            admin: AdminStep::default(),
            forests: forests::ForestsStep::default(),
            write_back: WriteBackStep::default(),
            passwords: PasswordStep::default(),
            scope: scope::OuPicker::default(),
            review: ReviewStep::default(),
            apply: ApplyStep::default(),
            other_options: SyncOptions::default(),
            monitoring: MonitoringConfig::default(),
            rules: crate::ui::rules_editor::RulesEditor::default(),
            timeout_secs: 15,
            store: crate::setup::answers::StoreAnswers::from_config(
                &crate::config::StoreConfig::read(&home.config_file),
            ),
            cancel_asked: false,
            outcome: None,
            computer: crate::setup::computer_name(),
            runtime,
            home,
        }
    }

    /// Pre-filled from an answers file (the demo's, or an administrator's).
    pub fn from_answers(runtime: Handle, home: Home, answers: &Answers) -> WizardState {
        let mut wizard = WizardState::new(runtime, home);
        wizard.cloud =
            CloudStep::from_answers(&answers.cloud).with_known_app(wizard.cloud.known_app.take());
        wizard.admin = AdminStep::from_answers(&answers.directory);
        wizard.forests = forests::ForestsStep::from_answers(&answers.forests);
        wizard.fill_options(&answers.options, &answers.directory.password_paths());
        wizard.monitoring = answers.monitoring.clone();
        wizard.rules = crate::ui::rules_editor::RulesEditor::from_config(&answers.rules);
        wizard.review.alerts = crate::ui::alerts_form::AlertsForm::from_config(&answers.monitoring);
        wizard.scope.marks =
            scope::ScopeMarks::from_scope(&answers.scope.included, &answers.scope.excluded);
        wizard.review.start_sync = answers.sync_now;
        wizard.timeout_secs = answers.directory.timeout_secs;
        wizard.store = answers.store.clone();
        wizard
    }

    /// "Configure…": starts from the saved configuration. Secrets are not in it: the
    /// administrator signs in again.
    pub fn from_config(runtime: Handle, home: Home, config: &Config) -> WizardState {
        let mut wizard = WizardState::new(runtime, home);
        wizard.cloud = CloudStep::from_config(config).with_known_app(wizard.cloud.known_app.take());
        wizard.admin = AdminStep::from_config(config);
        wizard.forests = forests::ForestsStep::from_config(config);
        wizard.fill_options(&config.options, &config.directory.password_paths());
        wizard.scope.marks =
            scope::ScopeMarks::from_scope(&config.scope.included, &config.scope.excluded);
        wizard.timeout_secs = config.directory.timeout_secs;
        wizard.store = crate::setup::answers::StoreAnswers::from_config(&config.store);
        wizard.monitoring = config.monitoring.clone();
        wizard.rules = crate::ui::rules_editor::RulesEditor::from_config(&config.rules);
        wizard.review.alerts = crate::ui::alerts_form::AlertsForm::from_config(&config.monitoring);
        wizard
    }

    fn fill_options(&mut self, options: &SyncOptions, paths: &PasswordPaths) {
        self.write_back.enabled = options.hybrid_write_back;
        self.passwords.enabled = options.password_hash_sync;
        self.passwords.mode = options.password_sync_mode;
        self.passwords.disable_strong_password = options.disable_strong_password;
        if let Some(socket) = &paths.socket {
            self.passwords.socket = socket.display().to_string();
        }
        if let Some(samba_config) = &paths.samba_config {
            self.passwords.samba_config = samba_config.display().to_string();
        }
        if let Some(gpg_home) = &paths.gpg_home {
            self.passwords.gpg_home = gpg_home.display().to_string();
        }
        self.other_options = options.clone();
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The cloud session the cloud step proved, if it still matches what is entered.
    pub fn cloud_session(&self) -> Option<&CloudSession> {
        self.cloud.session()
    }

    /// The enterprise admin the directory step checked, if it still matches what is entered.
    pub fn admin_session(&self) -> Option<&Arc<AdminSession>> {
        self.admin.session()
    }

    /// The answers the wizard's fields make: the same file `dirsync setup --answers` reads.
    pub fn answers(&self) -> Answers {
        let socket = self.passwords.socket.trim();
        let password_hash_socket =
            (self.passwords.enabled && !socket.is_empty() && socket != SAMBA_PRIVILEGED_SOCKET)
                .then(|| PathBuf::from(socket));
        let through_graph =
            self.passwords.enabled && self.passwords.mode == PasswordSyncMode::Graph;
        let gpg_home = self.passwords.gpg_home.trim();
        let samba_config = self.passwords.samba_config.trim();
        let ca_file = self.admin.ca_file.trim();
        Answers {
            sync_now: self.review.start_sync,
            cloud: CloudAnswers {
                authority: self.cloud.authority.trim().to_owned(),
                graph: self.cloud.graph.trim().to_owned(),
                tenant: self.cloud.tenant.trim().to_owned(),
                sign_in: self.cloud.sign_in,
                client_id: (self.cloud.sign_in == SignIn::App)
                    .then(|| self.cloud.client_id.trim().to_owned()),
                client_secret_env: None,
            },
            directory: DirectoryAnswers {
                server: self.admin.server.trim().to_owned(),
                ca_file: (!ca_file.is_empty() && !self.admin.insecure)
                    .then(|| PathBuf::from(ca_file)),
                insecure: self.admin.insecure,
                admin_user: self.admin.user.trim().to_owned(),
                admin_password_env: DEFAULT_ADMIN_PASSWORD_ENV.to_owned(),
                timeout_secs: self.timeout_secs,
                password_hash_socket,
                password_gpg_home: (through_graph && !gpg_home.is_empty())
                    .then(|| PathBuf::from(gpg_home)),
                samba_config: (through_graph
                    && !samba_config.is_empty()
                    && samba_config != SAMBA_CONFIG)
                    .then(|| PathBuf::from(samba_config)),
            },
            options: SyncOptions {
                hybrid_write_back: self.write_back.enabled,
                password_hash_sync: self.passwords.enabled,
                password_sync_mode: self.passwords.mode,
                disable_strong_password: self.passwords.enabled
                    && self.passwords.mode == PasswordSyncMode::Graph
                    && self.passwords.disable_strong_password,
                ..self.other_options.clone()
            },
            scope: ScopeConfig {
                included: self.scope.marks.included(),
                excluded: self.scope.marks.excluded(),
            },
            monitoring: {
                // The review step's alert fields on top of the rest; Apply waits while one is
                // wrong (`ReviewStep::passed`).
                let mut monitoring = self.monitoring.clone();
                let _ = self.review.alerts.apply_to(&mut monitoring);
                monitoring
            },
            rules: self.rules.to_config(),
            forests: self.forests.answers(self.timeout_secs),
            store: self.store.clone(),
        }
    }

    /// Whether the current step is proven and Next may open the next one.
    pub fn can_advance(&self) -> bool {
        match self.step {
            WizardStep::Welcome => self.welcome.passed(),
            WizardStep::Cloud => self.cloud.session().is_some(),
            WizardStep::EnterpriseAdmin => self.admin.session().is_some(),
            WizardStep::OtherForests => self.forests.passed(),
            WizardStep::HybridWriteBack => self.write_back.passed(self.cloud.generation),
            WizardStep::PasswordSync => self
                .passwords
                .passed(self.cloud.generation, self.admin.generation),
            WizardStep::Scope => !self.scope.marks.included().is_empty(),
            WizardStep::Rules => self.rules.check().is_ok(),
            WizardStep::Review => self.review.passed(),
            WizardStep::Apply => self.apply.succeeded(),
        }
    }

    /// Why Next is not available, for its hover text.
    fn waiting_for(&self) -> &'static str {
        match self.step {
            WizardStep::Welcome => "The OS keyring check must pass first.",
            WizardStep::Cloud => "Sign in (or check the app) first.",
            WizardStep::EnterpriseAdmin => "Check the enterprise admin first.",
            WizardStep::OtherForests => "Check each forest added and pick its OUs, or remove it.",
            WizardStep::HybridWriteBack => {
                "With write-back on, the tenant's mailbox check must pass."
            }
            WizardStep::PasswordSync => "With password sync on, its checks must pass.",
            WizardStep::Scope => "Check at least one OU.",
            WizardStep::Rules => "Fix the rule the message names, or remove it.",
            WizardStep::Review => "The preview of the first sync must finish first.",
            WizardStep::Apply => "Setup has not finished.",
        }
    }

    /// Tries `rules` on `object` as the enterprise admin reads it, with the scope picked and the
    /// tenant's domains.
    fn start_rules_test(
        &mut self,
        runtime: &Handle,
        repaint: &egui::Context,
        rules: &crate::rules::RulesConfig,
        object: String,
    ) {
        use crate::ui::task::Lookup;
        let Some(admin) = self.admin.session().cloned() else {
            self.rules.test = Lookup::Failed(crate::setup::SetupFailure::failed(
                None,
                "check the enterprise admin first (step 3): the object is read with that account"
                    .to_owned(),
            ));
            return;
        };
        let mut compiled = match crate::rules::compile(rules) {
            Ok(compiled) => compiled,
            Err(error) => {
                self.rules.test =
                    Lookup::Failed(crate::setup::SetupFailure::failed(None, error.message));
                return;
            }
        };
        compiled.extension_app_id = self
            .cloud
            .known_app
            .as_ref()
            .map(|app| app.client_id.replace('-', ""))
            .unwrap_or_default();
        let domains = self
            .cloud
            .session()
            .map(|session| crate::engine::attribute_flow::TenantDomains {
                verified: session
                    .verified_domains()
                    .iter()
                    .map(|domain| domain.name.clone())
                    .collect(),
                initial: session
                    .verified_domains()
                    .iter()
                    .find(|domain| domain.is_initial)
                    .map(|domain| domain.name.clone())
                    .unwrap_or_default(),
            })
            .unwrap_or(crate::engine::attribute_flow::TenantDomains {
                verified: Vec::new(),
                initial: String::new(),
            });
        let parse = |dns: Vec<String>| {
            dns.iter()
                .filter_map(|dn| crate::directory::Dn::parse(dn).ok())
                .collect()
        };
        let scope = crate::directory::scope::SyncScope::new(
            parse(self.scope.marks.included()),
            parse(self.scope.marks.excluded()),
        );
        self.rules.test = Lookup::start(runtime, repaint, move |_| async move {
            crate::runner::rules::test_rule_set_with(
                &admin.connection,
                &admin.domain,
                &scope,
                &compiled,
                &domains,
                &object,
            )
            .await
            .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
        });
    }

    fn go_to(&mut self, step: WizardStep) {
        self.step = step;
        if step.index() > self.furthest.index() {
            self.furthest = step;
        }
    }
}

/// The wizard's answers, checked as setup checks an answers file (this reads the CA file).
fn check_wizard_answers(answers: Answers) -> Result<CheckedAnswers, crate::setup::SetupFailure> {
    check_answers(Path::new("the wizard"), answers).map_err(|invalid| {
        match crate::setup::Field::named(&invalid.field) {
            Some(field) => crate::setup::SetupFailure::bad_input(Some(field), invalid.message),
            None => crate::setup::SetupFailure::bad_input(
                None,
                format!("{}: {}", invalid.field, invalid.message),
            ),
        }
    })
}

pub fn wizard_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    egui::Panel::left("wizard_steps")
        .resizable(false)
        .exact_size(200.0)
        .show(ui, |ui| steps_ui(ui, state));
    egui::Panel::bottom("wizard_navigation").show(ui, |ui| navigation_ui(ui, state));
    egui::CentralPanel::default().show(ui, |ui| {
        if state.cancel_asked {
            cancel_ui(ui, state);
            return;
        }
        egui::ScrollArea::vertical()
            .id_salt("wizard_page")
            .auto_shrink([false, false])
            .show(ui, |ui| page_ui(ui, state));
    });
    // Work under way repaints when it ends; spinners need frames meanwhile.
    if state.busy() {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(100));
    }
}

impl WizardState {
    fn busy(&self) -> bool {
        self.welcome.busy()
            || self.cloud.busy()
            || self.admin.busy()
            || self.forests.busy()
            || self.write_back.busy()
            || self.passwords.busy()
            || self.review.busy()
            || self.apply.busy()
    }
}

fn page_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    let runtime = state.runtime.clone();
    match state.step {
        WizardStep::Welcome => {
            let (authority, server) = (state.cloud.authority.clone(), state.admin.server.clone());
            welcome::welcome_ui(
                ui,
                &mut state.welcome,
                &runtime,
                &state.home,
                &authority,
                &server,
            );
        }
        WizardStep::Cloud => {
            cloud::cloud_ui(ui, &mut state.cloud, &runtime, &state.computer, &state.home);
        }
        WizardStep::EnterpriseAdmin => {
            let domains = state.cloud.verified_domain_names();
            directory::admin_ui(ui, &mut state.admin, &runtime, &domains);
        }
        WizardStep::OtherForests => {
            let domains = state.cloud.verified_domain_names();
            forests::forests_ui(ui, &mut state.forests, &runtime, &domains);
        }
        WizardStep::HybridWriteBack => {
            let cloud = state.cloud.session_with_generation();
            let admin = state.admin.session_with_generation();
            options::write_back_ui(ui, &mut state.write_back, &runtime, cloud, admin);
        }
        WizardStep::PasswordSync => {
            let cloud = state.cloud.session_with_generation();
            let admin = state.admin.session_with_generation();
            options::passwords_ui(
                ui,
                &mut state.passwords,
                &runtime,
                cloud,
                admin,
                state.timeout_secs,
            );
        }
        WizardStep::Scope => {
            let admin = state.admin.session().cloned();
            scope::scope_ui(ui, &mut state.scope, &runtime, admin.as_ref());
        }
        WizardStep::Rules => rules_step_ui(ui, state, &runtime),
        WizardStep::Review => review::review_ui(ui, state, &runtime),
        WizardStep::Apply => apply::apply_ui(ui, state, &runtime),
    }
}

/// The optional Rules page: the default flow shown as rules, scoping and mappings added on
/// top, tried on an object as the enterprise admin reads it (README, "Sync rules").
fn rules_step_ui(ui: &mut egui::Ui, state: &mut WizardState, runtime: &Handle) {
    ui.heading("Sync rules (optional)");
    ui.label(
        "Leave this page as it is to sync every user and group in the chosen OUs with the \
         default flow. Scoping rules narrow what syncs; mappings change how a cloud property is \
         made. The review's preview shows what the rules do.",
    );
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let action = crate::ui::rules_editor::rules_editor_ui(ui, &mut state.rules);
            if let crate::ui::rules_editor::EditorAction::Test(rules, object) = action {
                state.start_rules_test(runtime, ui.ctx(), &rules, object);
            }
        });
}

fn steps_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    ui.add_space(12.0);
    ui.heading("Set up dirsync");
    ui.add_space(8.0);
    let applying = state.apply.started();
    for step in WizardStep::ALL {
        // Once setup is applying, the earlier pages are closed: what they said is being done.
        let reachable =
            step.index() <= state.furthest.index() && (!applying || step == WizardStep::Apply);
        let selected = step == state.step;
        let response = ui.add_enabled(reachable, egui::Button::selectable(selected, step.title()));
        if response.clicked() {
            state.step = step;
        }
    }
}

fn navigation_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    ui.add_space(6.0);
    // The right side lays out right to left, so Next is rightmost, where wizards put it.
    let cancel_enabled = !state.apply.busy() && !state.apply.succeeded() && state.outcome.is_none();
    let mut cancel_clicked = false;
    egui::Sides::new().show(
        ui,
        |ui| {
            cancel_clicked = ui
                .add_enabled(cancel_enabled, egui::Button::new("Cancel"))
                .clicked();
        },
        |ui| {
            let (label, hint) = match state.step {
                WizardStep::Review => (
                    "Apply now",
                    "Create the service account and the sync app, and save the configuration.",
                ),
                WizardStep::Apply => ("Open the dashboard", "Setup is done."),
                _ => ("Next", ""),
            };
            let next = ui
                .add_enabled(
                    state.can_advance() && !state.cancel_asked,
                    egui::Button::new(label),
                )
                .on_disabled_hover_text(state.waiting_for());
            let next = if hint.is_empty() {
                next
            } else {
                next.on_hover_text(hint)
            };
            if next.clicked() {
                match state.step.next() {
                    Some(step) => state.go_to(step),
                    None => state.outcome = Some(WizardOutcome::Applied),
                }
            }
            let back = ui.add_enabled(
                state.step.previous().is_some() && !state.apply.started() && !state.cancel_asked,
                egui::Button::new("Back"),
            );
            if back.clicked()
                && let Some(step) = state.step.previous()
            {
                state.step = step;
            }
        },
    );
    if cancel_clicked {
        state.cancel_asked = true;
    }
    ui.add_space(6.0);
}

/// Cancel's confirmation: says what stays where, so nothing is lost by surprise.
fn cancel_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    ui.heading("Cancel setup?");
    ui.add_space(8.0);
    let mut created = Vec::new();
    if let Some(app) = state.cloud_session().and_then(CloudSession::sync_app) {
        created.push(format!(
            "the sync app '{}' in the cloud, with its certificate's private key on this computer",
            app.display_name
        ));
    }
    created.extend(state.apply.created_so_far());
    if created.is_empty() {
        ui.label(
            "Nothing has been created or changed in Active Directory or in the cloud yet: the \
             wizard only read and checked. Your configuration file is unchanged.",
        );
    } else {
        ui.label("Setup already made these, and they stay as they are:");
        for item in &created {
            ui.label(format!("  •  {item}"));
        }
        ui.label(
            "Running the wizard again finds and reuses them (the service account's password and \
             the app's certificate are renewed), so nothing is duplicated.",
        );
    }
    if state.home.is_configured() {
        ui.label(format!(
            "The saved configuration in {} stays in use.",
            state.home.config_file.display()
        ));
    }
    ui.add_space(12.0);
    ui.horizontal(|ui| {
        if ui.button("Keep setting up").clicked() {
            state.cancel_asked = false;
        }
        if ui
            .button(egui::RichText::new("Cancel setup").color(theme::error(ui)))
            .clicked()
        {
            state.outcome = Some(WizardOutcome::Cancelled);
        }
    });
}

/// A failed check's message under the field it is about; `fields` are the fields this place
/// shows.
fn field_error_ui(
    ui: &mut egui::Ui,
    failure: Option<&crate::setup::SetupFailure>,
    fields: &[crate::setup::Field],
) {
    if let Some(failure) = failure
        && failure.field.is_some_and(|field| fields.contains(&field))
    {
        ui.colored_label(theme::error(ui), format!("✖ {}", failure.message));
    }
}

/// A check's state in one line: a spinner while it runs, a tick or a cross after. A failure
/// about one of `page_fields` is shown under that field instead (`field_error_ui`).
fn check_line_ui<T>(
    ui: &mut egui::Ui,
    lookup: &crate::ui::task::Lookup<T>,
    running: &str,
    page_fields: &[crate::setup::Field],
    done: impl FnOnce(&T) -> String,
) {
    use crate::ui::task::Lookup;
    match lookup {
        Lookup::NotStarted => {}
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(running);
            });
        }
        Lookup::Done(value) => {
            ui.colored_label(theme::ok(ui), format!("✔ {}", done(value)));
        }
        Lookup::Failed(failure) => {
            if !failure
                .field
                .is_some_and(|field| page_fields.contains(&field))
            {
                ui.colored_label(theme::error(ui), format!("✖ {failure}"));
            }
        }
    }
}

/// A labelled one-line text field; the label is its accessible name.
fn text_field_ui(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) -> egui::Response {
    labelled_field_ui(ui, label, egui::TextEdit::singleline(value).hint_text(hint))
}

/// A labelled password field: never shown, never saved.
fn password_field_ui(ui: &mut egui::Ui, label: &str, value: &mut String) -> egui::Response {
    labelled_field_ui(ui, label, egui::TextEdit::singleline(value).password(true))
}

fn labelled_field_ui(ui: &mut egui::Ui, label: &str, field: egui::TextEdit<'_>) -> egui::Response {
    ui.horizontal(|ui| {
        let label = field_label_ui(ui, label);
        ui.add(field.desired_width(420.0)).labelled_by(label.id)
    })
    .inner
}

/// A field's label, left-aligned in a fixed-width column.
fn field_label_ui(ui: &mut egui::Ui, text: &str) -> egui::Response {
    ui.allocate_ui_with_layout(
        egui::vec2(170.0, 20.0),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_min_width(170.0);
            ui.label(text)
        },
    )
    .inner
}

/// A field's own check as it is typed: the problem in red under it.
fn inline_problem_ui(ui: &mut egui::Ui, problem: Option<String>) {
    if let Some(problem) = problem {
        ui.horizontal(|ui| {
            ui.add_space(176.0);
            ui.colored_label(theme::error(ui), problem);
        });
    }
}
