//! Steps 4 and 5: hybrid write-back and password sync, each on or off, each checked against
//! this forest and this tenant (or, for passwords through Microsoft Graph, this host's key) when
//! on.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::runtime::Handle;

use super::{check_line_ui, text_field_ui};
use crate::config::PasswordSyncMode;
use crate::directory::password_hashes::{PasswordHashSource as _, SAMBA_PRIVILEGED_SOCKET};
use crate::directory::permissions::write_back_schema;
use crate::directory::samba_gpg::SAMBA_CONFIG;
use crate::setup::answers::SignIn;
use crate::setup::{
    AdminSession, CloudFields, CloudSession, SetupFailure, check_mailbox_endpoint,
    check_password_hash_endpoint, check_samba_gpg, open_password_hash_source,
};
use crate::ui::task::Lookup;
use crate::ui::theme;

/// The write-back attributes, what each comes from and what it enables (README, "Hybrid
/// Exchange write-back").
const WRITE_BACK_TABLE: &[(&str, &str, &str)] = &[
    (
        "proxyAddresses",
        "X500: + legacyExchangeDN, added, never replacing",
        "off-boarding mailboxes; replies to old mail",
    ),
    (
        "msExchArchiveStatus",
        "the archive status",
        "online archive",
    ),
    (
        "msExchSafeSendersHash",
        "the users' safe senders",
        "filtering coexistence",
    ),
    (
        "msExchBlockedSendersHash",
        "the users' blocked senders",
        "filtering coexistence",
    ),
    (
        "msExchSafeRecipientsHash",
        "the users' safe recipients",
        "filtering coexistence",
    ),
    (
        "msExchUCVoiceMailSettings",
        "the voice mail settings",
        "cloud voice mail",
    ),
];

/// What the forest's schema has of the write-back attributes.
#[derive(Debug, Clone)]
pub struct SchemaFound {
    missing: Vec<String>,
}

#[derive(Debug, Default)]
pub struct WriteBackStep {
    pub enabled: bool,
    schema: Lookup<SchemaFound>,
    schema_for: u64,
    cloud: Lookup<String>,
    cloud_for: u64,
}

impl WriteBackStep {
    /// Off, or on with the tenant's mailboxes checked in this cloud session.
    pub fn passed(&self, cloud_generation: u64) -> bool {
        !self.enabled || (self.cloud.done().is_some() && self.cloud_for == cloud_generation)
    }

    pub fn busy(&self) -> bool {
        self.schema.is_running() || self.cloud.is_running()
    }
}

pub fn write_back_ui(
    ui: &mut egui::Ui,
    step: &mut WriteBackStep,
    runtime: &Handle,
    cloud: Option<(CloudSession, u64)>,
    admin: Option<(Arc<AdminSession>, u64)>,
) {
    step.schema.poll();
    step.cloud.poll();
    ui.heading("Hybrid Exchange write-back");
    ui.label(
        "With Exchange in hybrid, some mailbox attributes are decided in the cloud. Write-back \
         copies them into AD for the synced users, so on-premises Exchange sees what the cloud \
         decided. The service account then gets write access to exactly these attributes of users \
         in the OUs you choose, and to nothing else.",
    );
    ui.add_space(8.0);
    ui.checkbox(&mut step.enabled, "Write Exchange attributes back to AD");
    ui.add_space(8.0);

    if let Some((admin, generation)) = admin
        && (matches!(step.schema, Lookup::NotStarted) || step.schema_for != generation)
    {
        step.schema_for = generation;
        step.schema = Lookup::start(runtime, ui.ctx(), move |_| async move {
            let (_, missing) = write_back_schema(
                &admin.connection,
                &admin.forest.root_dse.schema_naming_context,
            )
            .await
            .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
            Ok(SchemaFound { missing })
        });
    }
    egui::Grid::new("write_back_table")
        .num_columns(3)
        .striped(true)
        .spacing([16.0, 6.0])
        .show(ui, |ui| {
            ui.strong("AD attribute (from the cloud's)");
            ui.strong("What it enables");
            ui.strong("In this forest's schema");
            ui.end_row();
            for (attribute, source, enables) in WRITE_BACK_TABLE {
                ui.vertical(|ui| {
                    ui.label(*attribute);
                    ui.weak(*source);
                });
                ui.label(*enables);
                match &step.schema {
                    Lookup::Done(found) => {
                        if found
                            .missing
                            .iter()
                            .any(|m| m.eq_ignore_ascii_case(attribute))
                        {
                            ui.colored_label(theme::warning(ui), "✖ missing: skipped");
                        } else {
                            ui.colored_label(theme::ok(ui), "✔ present");
                        }
                    }
                    Lookup::Running(_) => {
                        ui.spinner();
                    }
                    _ => {
                        ui.weak("—");
                    }
                }
                ui.end_row();
            }
        });
    if let Some(message) = step.schema.failure() {
        ui.colored_label(theme::error(ui), format!("✖ reading the schema: {message}"));
    }
    if let Some(found) = step.schema.done()
        && !found.missing.is_empty()
    {
        ui.label(format!(
            "This forest's schema has no {} (the Exchange schema extension adds them); write-back skips them and says so in every run.",
            found.missing.join(", ")
        ));
    }
    ui.add_space(8.0);

    if !step.enabled {
        return;
    }
    let Some((session, generation)) = cloud else {
        ui.colored_label(theme::error(ui), "Sign in to the cloud first (step 2).");
        return;
    };
    if matches!(step.cloud, Lookup::NotStarted) || step.cloud_for != generation {
        step.cloud_for = generation;
        step.cloud = Lookup::start(runtime, ui.ctx(), move |mut reporter| async move {
            check_mailbox_endpoint(session.client(), &fields_of(&session), &mut reporter).await?;
            Ok(notes_of(&mut reporter))
        });
    }
    check_line_ui(
        ui,
        &step.cloud,
        "Checking that the tenant offers its mailboxes' attributes…",
        &[],
        |_| "The tenant offers its mailboxes' attributes for write-back".to_owned(),
    );
    if step.cloud.failure().is_some() && ui.button("Check again").clicked() {
        step.cloud = Lookup::NotStarted;
    }
}

#[derive(Debug)]
pub struct PasswordStep {
    pub enabled: bool,
    pub mode: PasswordSyncMode,
    /// Samba's privileged LDAP socket on this host.
    pub socket: String,
    /// Through Microsoft Graph: the DC's smb.conf and the GnuPG home with the key (empty:
    /// the defaults), and whether the cloud's complexity rule is waived.
    pub samba_config: String,
    pub gpg_home: String,
    pub disable_strong_password: bool,
    source: Lookup<String>,
    source_for: (u64, String),
    cloud: Lookup<String>,
    cloud_for: u64,
    key: Lookup<String>,
    key_for: (String, String),
}

impl Default for PasswordStep {
    fn default() -> Self {
        PasswordStep {
            enabled: false,
            mode: PasswordSyncMode::Hash,
            socket: SAMBA_PRIVILEGED_SOCKET.to_owned(),
            samba_config: SAMBA_CONFIG.to_owned(),
            gpg_home: String::new(),
            disable_strong_password: false,
            source: Lookup::NotStarted,
            source_for: (0, String::new()),
            cloud: Lookup::NotStarted,
            cloud_for: 0,
            key: Lookup::NotStarted,
            key_for: (String::new(), String::new()),
        }
    }
}

impl PasswordStep {
    /// Off, or on with the source and what the mode needs checked for what is entered now:
    /// the tenant's password hash endpoint, or Samba's encrypted passwords and this host's key.
    pub fn passed(&self, cloud_generation: u64, admin_generation: u64) -> bool {
        if !self.enabled {
            return true;
        }
        let source = self.source.done().is_some()
            && self.source_for == (admin_generation, self.socket.trim().to_owned());
        let needs = match self.mode {
            PasswordSyncMode::Hash => {
                self.cloud.done().is_some() && self.cloud_for == cloud_generation
            }
            PasswordSyncMode::Graph => {
                self.key.done().is_some() && self.key_for == self.key_wanted()
            }
        };
        source && needs
    }

    pub fn busy(&self) -> bool {
        self.source.is_running() || self.cloud.is_running() || self.key.is_running()
    }

    fn key_wanted(&self) -> (String, String) {
        (
            self.samba_config.trim().to_owned(),
            self.gpg_home.trim().to_owned(),
        )
    }
}

pub fn passwords_ui(
    ui: &mut egui::Ui,
    step: &mut PasswordStep,
    runtime: &Handle,
    cloud: Option<(CloudSession, u64)>,
    admin: Option<(Arc<AdminSession>, u64)>,
    timeout_secs: u64,
) {
    step.source.poll();
    step.cloud.poll();
    step.key.poll();
    ui.heading("Password sync");
    ui.label(
        "Same sign-on: users sign in to the cloud with their AD password. This is not single \
         sign-on: users still type their password at the cloud's sign-in page, and a changed AD \
         password reaches the cloud within the password cycle (2 minutes).",
    );
    ui.add_space(8.0);
    ui.checkbox(&mut step.enabled, "Synchronize passwords");
    if !step.enabled {
        return;
    }
    ui.add_space(4.0);
    ui.radio_value(
        &mut step.mode,
        PasswordSyncMode::Hash,
        PasswordSyncMode::Hash.label(),
    );
    ui.indent("hash-mode", |ui| {
        ui.weak(
            "The cloud receives only a salted, 1,000-times-hashed form of each NT hash \
             (Microsoft's documented transform), never the password. Needs Microsoft's password \
             hash sync service, which public Microsoft Graph does not offer.",
        );
    });
    ui.radio_value(
        &mut step.mode,
        PasswordSyncMode::Graph,
        PasswordSyncMode::Graph.label(),
    );
    ui.indent("graph-mode", |ui| {
        ui.weak(
            "Works with any Microsoft Entra tenant. Samba keeps each new password encrypted to \
             your OpenPGP key (smb.conf: password hash gpg key ids); dirsync decrypts it on this \
             host and sets it as the user's cloud password. The app gets the User Administrator \
             role. Users get their cloud password at their next AD password change.",
        );
    });
    ui.add_space(6.0);
    text_field_ui(
        ui,
        "Samba DC's privileged socket",
        &mut step.socket,
        SAMBA_PRIVILEGED_SOCKET,
    );
    ui.weak("dirsync reads passwords on the Samba DC host through this socket (root only). Windows domain controllers are not supported yet.");
    if step.mode == PasswordSyncMode::Graph {
        text_field_ui(ui, "Samba's smb.conf", &mut step.samba_config, SAMBA_CONFIG);
        text_field_ui(
            ui,
            "GnuPG home with the key",
            &mut step.gpg_home,
            "$GNUPGHOME, else ~/.gnupg",
        );
        ui.checkbox(
            &mut step.disable_strong_password,
            "Let the cloud accept passwords its complexity rule would refuse (AD's policy still applies)",
        );
    }
    ui.add_space(6.0);

    match admin {
        Some((admin, generation)) => {
            let wanted = (generation, step.socket.trim().to_owned());
            if !step.source.is_running()
                && (matches!(step.source, Lookup::NotStarted) || step.source_for != wanted)
            {
                step.source_for = wanted;
                let socket = PathBuf::from(step.socket.trim());
                step.source = Lookup::start(runtime, ui.ctx(), move |_| async move {
                    let source =
                        open_password_hash_source(Some(&socket), &admin.domain, timeout_secs)
                            .await?;
                    Ok(source.describe())
                });
            }
            check_line_ui(
                ui,
                &step.source,
                "Checking the password source…",
                &[],
                |found| format!("Passwords can be read through {found}"),
            );
        }
        None => {
            ui.colored_label(
                theme::error(ui),
                "Check the enterprise admin first (step 3).",
            );
        }
    }
    match step.mode {
        PasswordSyncMode::Hash => hash_endpoint_ui(ui, step, runtime, cloud),
        PasswordSyncMode::Graph => samba_key_ui(ui, step, runtime, cloud.as_ref()),
    }
    if (step.source.failure().is_some()
        || step.cloud.failure().is_some()
        || step.key.failure().is_some())
        && ui.button("Check again").clicked()
    {
        step.source = Lookup::NotStarted;
        step.cloud = Lookup::NotStarted;
        step.key = Lookup::NotStarted;
    }
}

/// Password hash mode: the tenant must accept hashes.
fn hash_endpoint_ui(
    ui: &mut egui::Ui,
    step: &mut PasswordStep,
    runtime: &Handle,
    cloud: Option<(CloudSession, u64)>,
) {
    match cloud {
        Some((session, generation)) => {
            if matches!(step.cloud, Lookup::NotStarted) || step.cloud_for != generation {
                step.cloud_for = generation;
                step.cloud = Lookup::start(runtime, ui.ctx(), move |mut reporter| async move {
                    check_password_hash_endpoint(
                        session.client(),
                        &fields_of(&session),
                        &mut reporter,
                    )
                    .await?;
                    Ok(notes_of(&mut reporter))
                });
            }
            check_line_ui(
                ui,
                &step.cloud,
                "Checking that the tenant accepts password hashes…",
                &[],
                |note| note.clone(),
            );
        }
        None => {
            ui.colored_label(theme::error(ui), "Sign in to the cloud first (step 2).");
        }
    }
}

/// Through Microsoft Graph: Samba must keep passwords encrypted, and this host's key must
/// decrypt them. The role is assigned when setup applies.
fn samba_key_ui(
    ui: &mut egui::Ui,
    step: &mut PasswordStep,
    runtime: &Handle,
    cloud: Option<&(CloudSession, u64)>,
) {
    let wanted = step.key_wanted();
    if !step.key.is_running() && (matches!(step.key, Lookup::NotStarted) || step.key_for != wanted)
    {
        step.key_for = wanted.clone();
        let (samba_config, gpg_home) = wanted;
        step.key = Lookup::start(runtime, ui.ctx(), move |_| async move {
            let samba_config = (!samba_config.is_empty()).then(|| PathBuf::from(samba_config));
            let gpg_home = (!gpg_home.is_empty()).then(|| PathBuf::from(gpg_home));
            check_samba_gpg(samba_config.as_deref(), gpg_home.as_deref()).await
        });
    }
    check_line_ui(
        ui,
        &step.key,
        "Checking that Samba keeps passwords encrypted and this host can decrypt them…",
        &[],
        |proven| proven.clone(),
    );
    match cloud {
        Some((CloudSession::App { .. }, _)) => {
            ui.colored_label(
                theme::warning(ui),
                "Signed in as an existing app: assign it the User Administrator role yourself \
                 (Entra admin center → Roles and administrators → User Administrator → Add \
                 assignments).",
            );
        }
        Some((CloudSession::Admin { .. }, _)) => {
            ui.label("Setup will assign dirsync's app the User Administrator role, as you.");
        }
        None => {
            ui.colored_label(theme::error(ui), "Sign in to the cloud first (step 2).");
        }
    }
}

fn fields_of(session: &CloudSession) -> CloudFields {
    CloudFields {
        sign_in: match session {
            CloudSession::Admin { .. } => SignIn::DeviceCode,
            CloudSession::App { .. } => SignIn::App,
        },
        client_secret: "cloud.client_secret".to_owned(),
    }
}

/// What setup noted while checking ("the tenant accepts password hashes (50 users per
/// request)"), for the tick line.
fn notes_of(reporter: &mut crate::ui::task::Reporter) -> String {
    reporter.last_note().unwrap_or_default()
}
