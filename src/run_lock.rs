//! Runs never overlap (README, "Syncing"): a run holds an exclusive lock on `run.lock` beside the state
//! database for as long as it lasts. The operating system drops the lock when the process ends,
//! however it ends, so a killed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    #[error(
        "a sync run is already in progress{}; wait for it to finish (runs never overlap)",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    Busy { holder: Option<u32> },
    #[error("cannot open the run lock {path}: {reason}")]
    Unavailable { path: PathBuf, reason: String },
}

/// Held while a run lasts; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock for the installation whose state database is `state_db`, or says who holds it.
    pub fn acquire(state_db: &Path) -> Result<RunLock, RunLockError> {
        let path = state_db.with_file_name("run.lock");
        let unavailable = |error: std::io::Error| RunLockError::Unavailable {
            path: path.clone(),
            reason: error.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(unavailable)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(unavailable)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(RunLockError::Busy {
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(unavailable(error)),
        }
        // The holder's process id, for the message another run shows.
        file.set_len(0).map_err(unavailable)?;
        file.seek(SeekFrom::Start(0)).map_err(unavailable)?;
        write!(file, "{}", std::process::id()).map_err(unavailable)?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().expect("dir");
        let state_db = dir.path().join("state.db");
        let first = RunLock::acquire(&state_db).expect("first");
        // flock locks belong to the open file description: a second open in the same process
        // conflicts just as another process would.
        let error = RunLock::acquire(&state_db).expect_err("second");
        assert!(
            matches!(error, RunLockError::Busy { holder: Some(pid) } if pid == std::process::id()),
            "{error}"
        );
        drop(first);
        RunLock::acquire(&state_db).expect("free again");
    }
}
