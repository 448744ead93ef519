//! The audit trail (README, "The audit trail"): recording who changed what dirsync does. Every
//! front end records through here, so an entry always names the operating system's user.

use super::RunError;
use crate::clock::now_ms;
use crate::config::{Config, config_changes};
use crate::home::Home;
use crate::store::StateStore;
use crate::store::audit::{AuditEntry, FieldChange};

/// Where a change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Setup,
    Wizard,
    Dashboard,
    Cli,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Setup => "setup",
            Source::Wizard => "wizard",
            Source::Dashboard => "dashboard",
            Source::Cli => "cli",
        }
    }
}

/// Records an action with its changes.
pub fn record(
    home: &Home,
    source: Source,
    action: &str,
    detail: &str,
    changes: &[FieldChange],
) -> Result<(), RunError> {
    let store = StateStore::open_home(home)?;
    store.record_audit(
        now_ms(),
        &os_user(),
        source.as_str(),
        action,
        detail,
        changes,
    )?;
    Ok(())
}

/// Records a saved configuration: each field that differs from `old` (none: the first setup).
/// Nothing is recorded when nothing changed. Never fails (see [`record_or_log`]).
pub fn record_configuration(
    home: &Home,
    source: Source,
    action: &str,
    old: Option<&Config>,
    new: &Config,
) {
    let changes = config_changes(old, new);
    if !changes.is_empty() {
        record_or_log(home, source, action, "", &changes);
    }
}

/// Records, but never fails what was recorded: the change itself is made already, so a trail
/// that cannot be written is said in the log, not turned into the change's failure.
pub fn record_or_log(
    home: &Home,
    source: Source,
    action: &str,
    detail: &str,
    changes: &[FieldChange],
) {
    if let Err(error) = record(home, source, action, detail, changes) {
        tracing::warn!(%error, action, "cannot write the audit trail");
    }
}

/// Records a push (README, "Pushing one user now"): the object, what was asked, the run.
pub fn record_push(
    home: &Home,
    source: Source,
    query: &str,
    ran: &super::OneObjectRun,
    hold: super::AccountHold,
    revoke_sessions: bool,
) {
    let mut detail = format!("{query}: run {}", ran.ran.report.run_id);
    match hold {
        super::AccountHold::FollowAd => {}
        super::AccountHold::Disable => detail.push_str("; disabled in the cloud (held)"),
        super::AccountHold::Release => detail.push_str("; hold on its cloud account taken back"),
    }
    if revoke_sessions {
        detail.push_str("; sign-in sessions revoked");
    }
    record_or_log(home, source, "push", &detail, &[]);
}

/// The newest `limit` entries, newest first.
pub fn entries(home: &Home, limit: usize) -> Result<Vec<AuditEntry>, RunError> {
    Ok(StateStore::open_home(home)?.audit_entries(limit)?)
}

/// This process's user, by name from /etc/passwd where it is there, with its uid; under sudo,
/// also who ran sudo (`root (uid 0, via sudo by alice)`).
pub fn os_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| user_name(&passwd, uid))
        .unwrap_or_else(|| "unknown".to_owned());
    match std::env::var("SUDO_USER") {
        Ok(by) if uid == 0 && !by.is_empty() => format!("{name} (uid {uid}, via sudo by {by})"),
        _ => format!("{name} (uid {uid})"),
    }
}

fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
        (entry_uid == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_named_from_passwd() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n";
        assert_eq!(user_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 42), None);
    }
}
