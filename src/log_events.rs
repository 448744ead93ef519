//! The log's event names (README, "Logs"): stable words an administrator searches for, as Entra
//! Connect's event IDs are. Every line dirsync logs on purpose carries one as its `event` field;
//! a line logged inside a run carries the run's id too (its `run` span).

pub const SERVICE_STARTED: &str = "service.started";
pub const SERVICE_STOPPING: &str = "service.stopping";
pub const SERVICE_STOPPED: &str = "service.stopped";
pub const SCHEDULE_WAITING: &str = "schedule.waiting-for-first-sync";
pub const MONITORING_LISTENING: &str = "monitoring.listening";
pub const CREDENTIAL_EXPIRING: &str = "credential.expiring";
pub const WATCH_CHANGES_SEEN: &str = "watch.changes-seen";
pub const WATCH_FAILED: &str = "watch.failed";
pub const RUN_STARTED: &str = "run.started";
pub const RUN_ENDED: &str = "run.ended";
pub const RUN_FAILED: &str = "run.failed";
pub const RUN_NOT_STARTED: &str = "run.not-started";
pub const DIRECTORY_INSECURE: &str = "directory.insecure";
pub const ALERT_SENT: &str = "alert.sent";
pub const ALERT_RESOLVED: &str = "alert.resolved";
pub const ALERT_FAILED: &str = "alert.failed";
