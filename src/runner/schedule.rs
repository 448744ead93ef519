//! When the next scheduled run is due, the same whichever process runs the schedule (the service,
//! or a window while no service does; they agree through the store's scheduler lease):
//!
//! - a sync cycle `interval_minutes` after the last sync cycle **started** (whoever started it:
//!   the schedule, Sync now, `dirsync sync`; a preview is not a sync);
//! - with no sync yet, at once, unless the wizard's "Start synchronization when the wizard
//!   closes" was left off: then the schedule waits for the administrator's first sync;
//! - with password hash sync on, a password cycle right after the first sync, then
//!   `password_interval_secs` after the last password cycle started;
//! - a scheduled run that could not start (the run lock held, the secrets missing) or left no
//!   record (a password cycle with nothing to send) counts as started when it was tried, so it is
//!   not tried again at once.
//!
//! Pure: the caller gives the history, what it tried, the options and the time.

use crate::config::SyncOptions;
use crate::store::runs::RunRecord;
use crate::store::vocabulary::RunMode;
use crate::store::{StateStore, StoreError};

/// The store's cursor that holds the schedule until the first sync.
const HELD_CURSOR: &str = "schedule-held-until-first-sync";

/// When each kind of run last started (Unix ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    pub last_sync_start: Option<i64>,
    pub last_password_start: Option<i64>,
}

impl History {
    /// From a list of runs (the window's history).
    pub fn of_runs(runs: &[RunRecord]) -> History {
        let last = |keep: fn(RunMode) -> bool| {
            runs.iter()
                .filter(|run| keep(run.mode))
                .map(|run| run.started_at)
                .max()
        };
        History {
            last_sync_start: last(is_sync),
            last_password_start: last(|mode| mode == RunMode::Password),
        }
    }

    /// From the store (the service).
    pub fn read(store: &StateStore) -> Result<History, StoreError> {
        let (last_sync_start, last_password_start) = store.last_run_starts()?;
        Ok(History {
            last_sync_start,
            last_password_start,
        })
    }
}

/// Whether a run of this mode is a sync cycle for the schedule.
pub fn is_sync(mode: RunMode) -> bool {
    matches!(mode, RunMode::Full | RunMode::Delta)
}

/// When the schedule last tried to start each kind (Unix ms; 0 never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub sync: i64,
    pub passwords: i64,
}

/// When each kind is due (Unix ms); `None`: not scheduled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub sync: Option<i64>,
    pub passwords: Option<i64>,
}

/// The next runs of the schedule (the rules are this module's).
pub fn next_due(
    history: History,
    attempts: Attempts,
    options: &SyncOptions,
    held_until_first_sync: bool,
    now: i64,
) -> Due {
    let interval = options.interval_minutes as i64 * 60_000;
    let Some(last_sync) = history.last_sync_start else {
        let sync = if held_until_first_sync {
            None
        } else if attempts.sync > 0 {
            Some(attempts.sync + interval)
        } else {
            Some(now)
        };
        return Due {
            sync,
            passwords: None,
        };
    };
    let passwords = options.password_hash_sync.then(|| {
        match history.last_password_start {
            Some(last) => {
                last.max(attempts.passwords) + options.password_interval_secs as i64 * 1000
            }
            // The first password cycle follows the first sync.
            None if attempts.passwords > 0 => {
                attempts.passwords + options.password_interval_secs as i64 * 1000
            }
            None => last_sync,
        }
    });
    Due {
        sync: Some(last_sync.max(attempts.sync) + interval),
        passwords,
    }
}

impl Due {
    /// What to start at `now`: a sync first (the users it creates then get their passwords).
    pub fn now_due(&self, now: i64) -> Option<ScheduledRun> {
        if self.sync.is_some_and(|due| now >= due) {
            Some(ScheduledRun::Sync)
        } else if self.passwords.is_some_and(|due| now >= due) {
            Some(ScheduledRun::Passwords)
        } else {
            None
        }
    }

    /// The earliest time anything is due.
    pub fn earliest(&self) -> Option<i64> {
        match (self.sync, self.passwords) {
            (Some(sync), Some(passwords)) => Some(sync.min(passwords)),
            (sync, passwords) => sync.or(passwords),
        }
    }
}

/// A run the schedule starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledRun {
    Sync,
    Passwords,
}

/// Holds the schedule until the first sync (the wizard, when "Start synchronization when the
/// wizard closes" is left off).
pub fn hold_until_first_sync(store: &StateStore, now: i64) -> Result<(), StoreError> {
    store.set_cursor(HELD_CURSOR, b"1", now)
}

/// Whether the schedule waits for the first sync (it matters only while there is none).
pub fn is_held(store: &StateStore) -> Result<bool, StoreError> {
    Ok(store.cursor(HELD_CURSOR)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::vocabulary::{RunStatus, RunTrigger};

    const MINUTE: i64 = 60_000;

    fn run(mode: RunMode, started_at: i64) -> RunRecord {
        RunRecord {
            id: started_at,
            trigger: RunTrigger::Schedule,
            mode,
            status: RunStatus::Success,
            started_at,
            ended_at: Some(started_at + 1_000),
            steps: Vec::new(),
            throttled: 0,
            progress: None,
            host: None,
        }
    }

    fn options() -> SyncOptions {
        SyncOptions {
            interval_minutes: 30,
            password_hash_sync: true,
            password_interval_secs: 120,
            ..SyncOptions::default()
        }
    }

    #[test]
    fn with_no_sync_yet_it_is_due_at_once_unless_held_for_the_administrator() {
        let now = 10 * MINUTE;
        let none = History::of_runs(&[run(RunMode::Preview, 0)]);
        assert_eq!(none.last_sync_start, None, "a preview is not a sync");
        let due = next_due(none, Attempts::default(), &options(), false, now);
        assert_eq!(due.now_due(now), Some(ScheduledRun::Sync));
        assert_eq!(due.passwords, None, "passwords follow the first sync");
        let held = next_due(none, Attempts::default(), &options(), true, now);
        assert_eq!(held.sync, None);
        assert_eq!(held.now_due(now), None);
        // A first try that could not start is not repeated at once.
        let tried = Attempts {
            sync: now,
            passwords: 0,
        };
        let due = next_due(none, tried, &options(), false, now + MINUTE);
        assert_eq!(due.sync, Some(now + 30 * MINUTE));
    }

    #[test]
    fn a_sync_is_due_an_interval_after_the_last_one_started_and_passwords_follow() {
        let start = 100 * MINUTE;
        let history = History::of_runs(&[
            run(RunMode::Delta, start),
            run(RunMode::Preview, start + 5 * MINUTE),
        ]);
        let due = next_due(history, Attempts::default(), &options(), true, start);
        assert_eq!(
            due.sync,
            Some(start + 30 * MINUTE),
            "held matters only before"
        );
        assert_eq!(
            due.passwords,
            Some(start),
            "the first password cycle: right after"
        );
        assert_eq!(due.now_due(start + MINUTE), Some(ScheduledRun::Passwords));
        let history = History::of_runs(&[
            run(RunMode::Delta, start),
            run(RunMode::Password, start + MINUTE),
        ]);
        let due = next_due(history, Attempts::default(), &options(), false, start);
        assert_eq!(due.passwords, Some(start + 3 * MINUTE));
        assert_eq!(due.earliest(), Some(start + 3 * MINUTE));
        // Both due: the sync goes first.
        assert_eq!(due.now_due(start + 31 * MINUTE), Some(ScheduledRun::Sync));
        // Password hash sync off: no password cycles.
        let off = SyncOptions {
            password_hash_sync: false,
            ..options()
        };
        assert_eq!(
            next_due(history, Attempts::default(), &off, false, start).passwords,
            None
        );
    }
}
