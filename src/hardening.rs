//! What a process that holds secrets does first: no core dumps (a dump would write the secrets
//! in memory to disk), not dumpable (other processes of the same user cannot ptrace it or read
//! its memory through /proc), and files it creates readable by its owner only (`config.toml`,
//! `state.db`, exports, credentials).

use rustix::fs::Mode;
use rustix::process::{
    DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit, umask,
};

/// Applies the hardening; what the system refuses is logged, not fatal (a container may forbid
/// `prctl`), and returned for the caller to show.
pub fn harden_process() -> Vec<String> {
    let mut refused = Vec::new();
    let no_core = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(error) = setrlimit(Resource::Core, no_core) {
        refused.push(format!("cannot turn core dumps off: {error}"));
    }
    if let Err(error) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        refused.push(format!("cannot make the process non-dumpable: {error}"));
    }
    umask(Mode::from_raw_mode(0o077));
    for message in &refused {
        tracing::warn!("{message}");
    }
    refused
}

/// Makes an existing file readable and writable by its owner only (a file an older version or
/// another tool created with wider permissions).
pub fn restrict_to_owner(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}
