//! Step 3: the enterprise admin. The domain controller's address, how its certificate is
//! trusted, and an enterprise admin's user and password, checked now and never stored.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use super::{check_line_ui, field_error_ui, inline_problem_ui, password_field_ui, text_field_ui};
use crate::config::{Config, DirectoryConfig};
use crate::directory::DirectoryTarget;
use crate::directory::forest::AdminLevel;
use crate::secret::Secret;
use crate::setup::answers::DirectoryAnswers;
use crate::setup::{AdminSession, check_admin};
use crate::setup::{Field, SetupFailure};
use crate::tls::{TlsTrust, roots_from_file};
use crate::ui::task::Lookup;
use crate::ui::theme;

#[derive(Default)]
pub struct AdminStep {
    pub server: String,
    pub ca_file: String,
    pub insecure: bool,
    pub user: String,
    /// Memory only: used by the checks and by Apply, never stored.
    pub password: String,
    checking: Lookup<Arc<AdminSession>>,
    checked_with: String,
    /// Counts checks, so what was read with an older session is read again.
    pub generation: u64,
    /// The CA file field as last checked, and what was wrong with it: the file is read when
    /// the field changes, not every frame.
    ca_checked: (String, Option<String>),
}

/// Never prints the password.
impl std::fmt::Debug for AdminStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminStep")
            .field("server", &self.server)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("checking", &self.checking)
            .finish_non_exhaustive()
    }
}

impl AdminStep {
    pub fn from_answers(answers: &DirectoryAnswers) -> AdminStep {
        AdminStep {
            server: answers.server.clone(),
            ca_file: answers
                .ca_file
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            insecure: answers.insecure,
            user: answers.admin_user.clone(),
            ..AdminStep::default()
        }
    }

    pub fn from_config(config: &Config) -> AdminStep {
        AdminStep::from_directory(&config.directory)
    }

    /// A forest's domain controller as `config.toml` has it; the admin signs in again.
    pub fn from_directory(directory: &DirectoryConfig) -> AdminStep {
        AdminStep {
            server: directory.server.clone(),
            ca_file: directory
                .ca_file
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            insecure: directory.insecure,
            ..AdminStep::default()
        }
    }

    /// The answers' directory table for these fields (the password stays here).
    pub fn directory_answers(&self, timeout_secs: u64) -> DirectoryAnswers {
        let ca_file = self.ca_file.trim();
        DirectoryAnswers {
            server: self.server.trim().to_owned(),
            ca_file: (!ca_file.is_empty() && !self.insecure).then(|| PathBuf::from(ca_file)),
            insecure: self.insecure,
            admin_user: self.user.trim().to_owned(),
            admin_password_env: crate::setup::answers::DEFAULT_ADMIN_PASSWORD_ENV.to_owned(),
            timeout_secs,
            password_hash_socket: None,
            password_gpg_home: None,
            samba_config: None,
        }
    }

    fn inputs(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.server.trim(),
            self.ca_file.trim(),
            self.insecure,
            self.user.trim(),
            self.password.len()
        )
    }

    pub fn session(&self) -> Option<&Arc<AdminSession>> {
        self.checking
            .done()
            .filter(|_| self.checked_with == self.inputs())
    }

    pub fn session_with_generation(&self) -> Option<(Arc<AdminSession>, u64)> {
        self.session()
            .map(|session| (Arc::clone(session), self.generation))
    }

    pub fn busy(&self) -> bool {
        self.checking.is_running()
    }

    /// The trust as entered, or what is wrong with it.
    fn trust(&self) -> Result<TlsTrust, String> {
        let ca_file = self.ca_file.trim();
        match (ca_file.is_empty(), self.insecure) {
            (_, true) => Ok(TlsTrust::Insecure),
            (true, false) => Ok(TlsTrust::SystemRoots),
            (false, false) => {
                let path = std::path::absolute(PathBuf::from(ca_file))
                    .unwrap_or_else(|_| PathBuf::from(ca_file));
                roots_from_file(&path).map_err(|error| error.to_string())?;
                Ok(TlsTrust::CaFile(path))
            }
        }
    }

    fn target(&self, timeout_secs: u64) -> Result<DirectoryTarget, String> {
        let trust = self.trust()?;
        DirectoryTarget::new(self.server.trim(), trust, Duration::from_secs(timeout_secs))
            .map_err(|error| error.to_string())
    }

    fn server_problem(&self) -> Option<String> {
        if self.server.trim().is_empty() {
            return None;
        }
        DirectoryTarget::new(
            self.server.trim(),
            TlsTrust::Insecure,
            Duration::from_secs(1),
        )
        .err()
        .map(|error| error.to_string())
    }

    fn ca_problem(&mut self) -> Option<String> {
        if self.ca_file.trim().is_empty() || self.insecure {
            return None;
        }
        if self.ca_checked.0 != self.ca_file {
            self.ca_checked = (self.ca_file.clone(), self.trust().err());
        }
        self.ca_checked.1.clone()
    }

    fn start(&mut self, runtime: &Handle, repaint: &egui::Context) {
        let target = match self.target(15) {
            Ok(target) => target,
            Err(problem) => {
                self.checking = Lookup::Failed(SetupFailure::bad_input(
                    Some(Field::DirectoryServer),
                    problem,
                ));
                return;
            }
        };
        let user = self.user.trim().to_owned();
        let password = Secret::new(self.password.clone());
        self.checked_with = self.inputs();
        self.generation += 1;
        self.checking = Lookup::start(runtime, repaint, move |_| async move {
            check_admin(&target, &user, &password).await.map(Arc::new)
        });
    }
}

pub fn admin_ui(ui: &mut egui::Ui, step: &mut AdminStep, runtime: &Handle, verified: &[String]) {
    ui.heading("Enterprise admin: your Active Directory");
    ui.label(
        "dirsync checks this account and uses it to create its own service account (MSOL_…) with \
         only the rights it needs. These credentials are used now and never stored.",
    );
    ui.add_space(8.0);
    admin_fields_ui(ui, step, runtime, verified);
}

/// A forest's domain controller and enterprise admin, the Check button and what it found (its
/// forest, its UPN suffixes against the tenant's verified domains).
pub fn admin_fields_ui(
    ui: &mut egui::Ui,
    step: &mut AdminStep,
    runtime: &Handle,
    verified: &[String],
) {
    step.checking.poll();
    let failure = step.checking.failure().cloned();
    text_field_ui(
        ui,
        "Domain controller",
        &mut step.server,
        "ldaps://dc1.corp.example.com",
    );
    inline_problem_ui(ui, step.server_problem());
    field_error_ui(ui, failure.as_ref(), &[Field::DirectoryServer]);

    ui.horizontal(|ui| {
        let label = super::field_label_ui(ui, "CA certificate");
        ui.add_enabled(
            !step.insecure,
            egui::TextEdit::singleline(&mut step.ca_file)
                .hint_text("PEM file of the CA that issued the DC's certificate")
                .desired_width(330.0),
        )
        .labelled_by(label.id);
        if ui
            .add_enabled(!step.insecure, egui::Button::new("Browse…"))
            .clicked()
            && let Some(path) = rfd::FileDialog::new()
                .set_title("The CA certificate of the domain controller")
                .add_filter("PEM certificate", &["pem", "crt", "cer"])
                .pick_file()
        {
            step.ca_file = path.display().to_string();
        }
    });
    inline_problem_ui(ui, step.ca_problem());
    field_error_ui(ui, failure.as_ref(), &[Field::DirectoryCaFile]);
    ui.horizontal(|ui| {
        ui.add_space(176.0);
        ui.checkbox(
            &mut step.insecure,
            egui::RichText::new("Do not verify the certificate (insecure)")
                .color(theme::insecure(ui)),
        );
    });
    if step.insecure {
        ui.horizontal(|ui| {
            ui.add_space(176.0);
            ui.colored_label(
                theme::insecure(ui),
                "Anyone between this computer and the DC could read the passwords sent to it. Only for a lab.",
            );
        });
    }
    text_field_ui(
        ui,
        "Enterprise admin",
        &mut step.user,
        "admin@corp.example.com or DOMAIN\\admin",
    );
    password_field_ui(ui, "Password", &mut step.password);
    field_error_ui(ui, failure.as_ref(), &[Field::DirectoryAdminUser]);
    ui.add_space(8.0);

    let ready = !step.server.trim().is_empty()
        && step.server_problem().is_none()
        && step.ca_problem().is_none()
        && !step.user.trim().is_empty()
        && !step.password.is_empty();
    if ui
        .add_enabled(ready && !step.busy(), egui::Button::new("Check"))
        .clicked()
    {
        step.start(runtime, ui.ctx());
    }
    check_line_ui(
        ui,
        &step.checking,
        "Signing in to the domain controller…",
        &[
            Field::DirectoryServer,
            Field::DirectoryCaFile,
            Field::DirectoryAdminUser,
        ],
        |session| format!("{} can set up dirsync", session.check.account_dn),
    );
    if step.checking.done().is_some() && step.session().is_none() {
        ui.colored_label(
            theme::warning(ui),
            "The fields changed since the check: check again.",
        );
    }
    if let Some(session) = step.session().cloned() {
        forest_ui(ui, &session, verified);
    }
}

fn forest_ui(ui: &mut egui::Ui, session: &AdminSession, verified: &[String]) {
    ui.add_space(6.0);
    egui::Grid::new("forest_facts")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Forest");
            ui.label(&session.forest.root_dse.root_domain_naming_context);
            ui.end_row();
            ui.label("Domain");
            ui.label(session.domain.to_string());
            ui.end_row();
            ui.label("Domain controller");
            ui.label(&session.forest.root_dse.dns_host_name);
            ui.end_row();
        });
    if session.check.level == AdminLevel::DomainAdminSingleDomain {
        ui.colored_label(
            theme::warning(ui),
            session.check.explanation.clone().unwrap_or_default(),
        );
    }
    ui.add_space(6.0);
    ui.strong("UPN suffixes");
    for suffix in session.forest.upn_suffixes() {
        if verified
            .iter()
            .any(|domain| domain.eq_ignore_ascii_case(&suffix))
        {
            ui.colored_label(
                theme::ok(ui),
                format!("✔ {suffix}: a verified cloud domain"),
            );
        } else {
            ui.colored_label(
                theme::warning(ui),
                format!(
                    "⚠ {suffix}: not a verified cloud domain; its users sign in to the cloud as name@<initial domain>.onmicrosoft.com until you verify it"
                ),
            );
        }
    }
}
