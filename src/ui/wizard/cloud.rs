//! Step 2: the cloud. The authority (global cloud by default), the tenant, and a sign-in: a
//! Global Administrator with the device code flow, or an existing app's id and secret.

use tokio::runtime::Handle;

use super::{check_line_ui, field_error_ui, inline_problem_ui, password_field_ui, text_field_ui};
use crate::cloud::auth::{Authority, DeviceCodePrompt};
use crate::cloud::setup::{AppOutcome, KnownApp};
use crate::cloud::{CloudEndpoints, GLOBAL_AUTHORITY, GLOBAL_GRAPH};
use crate::config::Config;
use crate::home::Home;
use crate::secret::Secret;
use crate::secret_store::SystemSecrets;
use crate::setup::answers::{CloudAnswers, SignIn};
use crate::setup::{CloudFields, CloudSession, create_sync_app, sign_in};
use crate::setup::{Field, SetupFailure};
use crate::ui::task::{Lookup, SetupEvent};
use crate::ui::theme;

/// The setup fields this page has, where their failures are shown.
const CLOUD_FIELDS: &[Field] = &[
    Field::CloudAuthority,
    Field::CloudGraph,
    Field::CloudTenant,
    Field::CloudClientId,
    Field::CloudClientSecret,
];

pub struct CloudStep {
    pub authority: String,
    pub graph: String,
    pub tenant: String,
    pub sign_in: SignIn,
    pub client_id: String,
    /// Memory only; setup puts it in the OS keyring.
    pub client_secret: String,
    signing_in: Lookup<CloudSession>,
    prompt: Option<DeviceCodePrompt>,
    /// What the sign-in said last ("signed in to tenant…"), while it goes on.
    progress: Option<String>,
    /// What was entered when the sign-in started: editing a field asks for a new sign-in.
    signed_in_with: String,
    /// Counts sign-ins, so checks made with an older session are redone.
    pub generation: u64,
    /// The app this home's configuration names (setup reuses only it, or an unowned one).
    pub known_app: Option<KnownApp>,
}

/// Never prints the client secret.
impl std::fmt::Debug for CloudStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudStep")
            .field("authority", &self.authority)
            .field("graph", &self.graph)
            .field("tenant", &self.tenant)
            .field("sign_in", &self.sign_in)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("signing_in", &self.signing_in)
            .finish_non_exhaustive()
    }
}

impl Default for CloudStep {
    fn default() -> Self {
        CloudStep {
            authority: GLOBAL_AUTHORITY.to_owned(),
            graph: GLOBAL_GRAPH.to_owned(),
            tenant: String::new(),
            sign_in: SignIn::DeviceCode,
            client_id: String::new(),
            client_secret: String::new(),
            signing_in: Lookup::NotStarted,
            prompt: None,
            progress: None,
            signed_in_with: String::new(),
            generation: 0,
            known_app: None,
        }
    }
}

impl CloudStep {
    /// The step, knowing the app this home's configuration names.
    pub fn with_known_app(self, known_app: Option<KnownApp>) -> CloudStep {
        CloudStep { known_app, ..self }
    }

    pub fn from_answers(answers: &CloudAnswers) -> CloudStep {
        CloudStep {
            authority: answers.authority.clone(),
            graph: answers.graph.clone(),
            tenant: answers.tenant.clone(),
            sign_in: answers.sign_in,
            client_id: answers.client_id.clone().unwrap_or_default(),
            ..CloudStep::default()
        }
    }

    pub fn from_config(config: &Config) -> CloudStep {
        CloudStep {
            authority: config.cloud.authority.clone(),
            graph: config.cloud.graph.clone(),
            tenant: config.cloud.tenant_id.clone(),
            ..CloudStep::default()
        }
    }

    fn inputs(&self) -> String {
        format!(
            "{}\n{}\n{}\n{:?}\n{}\n{}",
            self.authority.trim(),
            self.graph.trim(),
            self.tenant.trim(),
            self.sign_in,
            self.client_id.trim(),
            self.client_secret.len()
        )
    }

    /// The proven session, while the fields are as they were when it was proven.
    pub fn session(&self) -> Option<&CloudSession> {
        self.signing_in
            .done()
            .filter(|_| self.signed_in_with == self.inputs())
    }

    pub fn session_with_generation(&self) -> Option<(CloudSession, u64)> {
        self.session()
            .map(|session| (session.clone(), self.generation))
    }

    pub fn verified_domain_names(&self) -> Vec<String> {
        self.session()
            .map(|session| {
                session
                    .verified_domains()
                    .iter()
                    .map(|domain| domain.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn busy(&self) -> bool {
        self.signing_in.is_running()
    }

    /// The device code the administrator is asked to enter, while the sign-in waits.
    pub fn prompt(&self) -> Option<&DeviceCodePrompt> {
        self.prompt.as_ref().filter(|_| self.busy())
    }

    fn answers(&self) -> CloudAnswers {
        CloudAnswers {
            authority: self.authority.trim().to_owned(),
            graph: self.graph.trim().to_owned(),
            tenant: self.tenant.trim().to_owned(),
            sign_in: self.sign_in,
            client_id: (self.sign_in == SignIn::App).then(|| self.client_id.trim().to_owned()),
            client_secret_env: None,
        }
    }

    /// What is wrong with the fields as typed, by field, before any call.
    fn problems(&self) -> (Option<String>, Option<String>, Option<String>) {
        let (mut authority, mut graph, mut tenant) = (None, None, None);
        match CloudEndpoints::parse(&self.authority, &self.graph) {
            Ok(endpoints) => {
                if !self.tenant.trim().is_empty()
                    && Authority::new(&endpoints, self.tenant.trim()).is_err()
                {
                    tenant = Some(
                        "give the tenant's id (a GUID) or a domain such as contoso.onmicrosoft.com"
                            .to_owned(),
                    );
                }
            }
            Err(error) if error.field == "Graph URL" => graph = Some(error.to_string()),
            Err(error) => authority = Some(error.to_string()),
        }
        (authority, graph, tenant)
    }

    fn start(
        &mut self,
        runtime: &Handle,
        repaint: &egui::Context,
        computer: &str,
        secrets: SystemSecrets,
    ) {
        let answers = self.answers();
        let endpoints = match CloudEndpoints::parse(&answers.authority, &answers.graph) {
            Ok(endpoints) => endpoints,
            Err(error) => {
                self.signing_in = Lookup::Failed(SetupFailure::bad_input(
                    Some(Field::CloudAuthority),
                    error.to_string(),
                ));
                return;
            }
        };
        let secret = (self.sign_in == SignIn::App).then(|| Secret::new(self.client_secret.clone()));
        let fields = CloudFields {
            sign_in: self.sign_in,
            client_secret: "the client secret".to_owned(),
        };
        self.prompt = None;
        self.progress = None;
        self.signed_in_with = self.inputs();
        self.generation += 1;
        let computer = computer.to_owned();
        let known = self.known_app.clone();
        self.signing_in = Lookup::start(runtime, repaint, move |mut reporter| async move {
            let mut session = Box::pin(sign_in(
                &answers,
                &endpoints,
                secret,
                &fields,
                &mut reporter,
            ))
            .await?;
            // An administrator's sign-in creates dirsync's app at once, as the page says.
            if let CloudSession::Admin {
                client,
                tenant,
                app,
            } = &mut session
            {
                *app = Some(Box::new(
                    Box::pin(create_sync_app(
                        client,
                        tenant,
                        &endpoints,
                        &computer,
                        known,
                        &secrets,
                        &mut reporter,
                    ))
                    .await?,
                ));
            }
            Ok(session)
        });
    }
}

pub fn cloud_ui(
    ui: &mut egui::Ui,
    step: &mut CloudStep,
    runtime: &Handle,
    computer: &str,
    home: &Home,
) {
    for event in step.signing_in.poll() {
        match event {
            SetupEvent::DeviceCode(prompt) => step.prompt = Some(prompt),
            SetupEvent::Note(note) => {
                step.prompt = None;
                step.progress = Some(note);
            }
            _ => {}
        }
    }
    ui.heading("Cloud: your Microsoft Entra tenant");
    ui.label(
        "dirsync signs in to the tenant to create its sync app. The sign-in server is the global \
         cloud's unless your tenant is in a national cloud (or the lab's emulator).",
    );
    ui.add_space(8.0);
    let (authority_problem, graph_problem, tenant_problem) = step.problems();
    let failure = step.signing_in.failure().cloned();
    text_field_ui(ui, "Sign-in server", &mut step.authority, GLOBAL_AUTHORITY);
    inline_problem_ui(ui, authority_problem);
    field_error_ui(ui, failure.as_ref(), &[Field::CloudAuthority]);
    text_field_ui(ui, "Graph URL", &mut step.graph, GLOBAL_GRAPH);
    inline_problem_ui(ui, graph_problem);
    field_error_ui(ui, failure.as_ref(), &[Field::CloudGraph]);
    text_field_ui(
        ui,
        "Tenant",
        &mut step.tenant,
        "contoso.onmicrosoft.com or the tenant id",
    );
    inline_problem_ui(ui, tenant_problem);
    field_error_ui(ui, failure.as_ref(), &[Field::CloudTenant]);
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.radio_value(
            &mut step.sign_in,
            SignIn::DeviceCode,
            "Sign in as a Global Administrator",
        );
        ui.radio_value(&mut step.sign_in, SignIn::App, "Use an existing app");
    });
    if step.sign_in == SignIn::App {
        text_field_ui(ui, "Application (client) id", &mut step.client_id, "");
        field_error_ui(ui, failure.as_ref(), &[Field::CloudClientId]);
        password_field_ui(ui, "Client secret", &mut step.client_secret);
        field_error_ui(ui, failure.as_ref(), &[Field::CloudClientSecret]);
        ui.weak("The app needs the application permissions User.ReadWrite.All, Group.ReadWrite.All and Domain.Read.All. Its secret is kept where dirsync keeps secrets (the OS keyring, and as root the service's encrypted credentials).");
    } else {
        ui.weak(format!("Once you sign in, dirsync registers its own app 'dirsync ({computer})' in the tenant, with only the permissions the sync needs; it signs in with a certificate whose private key is made here and never leaves this computer."));
    }
    ui.add_space(8.0);

    let ready = !step.tenant.trim().is_empty()
        && step.problems() == (None, None, None)
        && (step.sign_in == SignIn::DeviceCode
            || (!step.client_id.trim().is_empty() && !step.client_secret.is_empty()));
    let label = match step.sign_in {
        SignIn::DeviceCode => "Sign in",
        SignIn::App => "Check the app",
    };
    ui.horizontal(|ui| {
        if ui
            .add_enabled(ready && !step.busy(), egui::Button::new(label))
            .clicked()
        {
            step.start(runtime, ui.ctx(), computer, home.secrets());
        }
        if step.busy() && ui.button("Stop waiting").clicked() {
            // The sign-in's thread ends by itself when the code expires; nothing was created.
            step.signing_in = Lookup::NotStarted;
            step.prompt = None;
        }
    });

    if step.busy()
        && let Some(prompt) = step.prompt.clone()
    {
        device_code_ui(ui, &prompt);
    }
    let running = match &step.progress {
        Some(note) => format!("{note}; creating the sync app (Entra ID can take a minute)…"),
        None => "Signing in…".to_owned(),
    };
    if step.prompt.is_none() || !step.busy() {
        check_line_ui(
            ui,
            &step.signing_in,
            &running,
            CLOUD_FIELDS,
            |session| match session.tenant_name() {
                Some(name) => format!("Signed in to '{name}' ({})", session.tenant_id()),
                None => format!("The app signed in to tenant {}", session.tenant_id()),
            },
        );
    }
    if step.signing_in.done().is_some() && step.session().is_none() {
        ui.colored_label(
            theme::warning(ui),
            "The fields changed since the sign-in: sign in again.",
        );
    }
    if let Some(session) = step.session() {
        ui.add_space(6.0);
        ui.strong("Verified domains");
        for domain in session.verified_domains() {
            let mut line = domain.name.clone();
            if domain.is_initial {
                line.push_str("  (initial)");
            }
            if domain.is_default {
                line.push_str("  (default)");
            }
            ui.label(format!("  •  {line}"));
        }
        if let Some(app) = session.sync_app() {
            ui.add_space(6.0);
            let what = match app.outcome {
                AppOutcome::Created => "Created the sync app",
                AppOutcome::Reused => {
                    "Found the sync app from an earlier setup and gave it a new certificate:"
                }
            };
            ui.colored_label(
                theme::ok(ui),
                format!(
                    "✔ {what} '{}' (client id {}), allowed {}; its certificate's private key stays on this computer.",
                    app.display_name,
                    app.client_id,
                    app.permissions.join(", ")
                ),
            );
            ui.label("Apply turns on directory synchronization for the tenant.");
        }
    }
}

/// The device code sign-in: the page and the code, each with a copy button.
pub fn device_code_ui(ui: &mut egui::Ui, prompt: &DeviceCodePrompt) {
    ui.add_space(6.0);
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.label("On any device, open this page and sign in as a Global Administrator:");
        ui.horizontal(|ui| {
            ui.hyperlink(&prompt.verification_uri);
            if ui.button("Copy link").clicked() {
                ui.ctx().copy_text(prompt.verification_uri.clone());
            }
        });
        ui.label("Enter this code:");
        ui.horizontal(|ui| {
            ui.label(
                egui::RichText::new(&prompt.user_code)
                    .monospace()
                    .size(22.0)
                    .strong(),
            );
            if ui.button("Copy code").clicked() {
                ui.ctx().copy_text(prompt.user_code.clone());
            }
        });
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!(
                "Waiting for sign-in… (the code expires in {} minutes)",
                prompt.expires_in / 60
            ));
        });
    });
}
