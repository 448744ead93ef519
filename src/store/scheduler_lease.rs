//! Who runs the schedule. `dirsync service` and an open dashboard window both can; while the
//! service runs, the window leaves the schedule to it (README, "The schedule"). They agree through one lease row
//! in the store that its holder renews: a holder that dies stops renewing, and its lease expires.
//! The service always takes the lease; a window takes it only when nobody else holds it. Two runs
//! never overlap either way: every run also holds the run lock. The lease is this host's: hosts
//! sharing a PostgreSQL database each run their own schedule (README, "Two hosts, one database").

use super::db::{OptionalExtension as _, params};

use super::{StateStore, StoreError};

/// A lease not renewed for this long has expired. Holders renew well within it.
pub const LEASE_MS: i64 = 90_000;
/// How often a holder renews its lease.
pub const RENEW_EVERY_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerHolder {
    Service,
    Window,
}

impl SchedulerHolder {
    fn as_str(self) -> &'static str {
        match self {
            SchedulerHolder::Service => "service",
            SchedulerHolder::Window => "window",
        }
    }

    fn parse(text: &str) -> SchedulerHolder {
        if text == "service" {
            SchedulerHolder::Service
        } else {
            SchedulerHolder::Window
        }
    }
}

/// The lease as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerLease {
    pub holder: SchedulerHolder,
    pub pid: u32,
    /// Unix milliseconds.
    pub renewed_at: i64,
}

impl StateStore {
    /// Takes or renews the lease for process `pid`. Returns `None` when `pid` holds it now, or
    /// the live lease of another process that keeps it.
    pub fn claim_scheduler(
        &self,
        holder: SchedulerHolder,
        pid: u32,
        now: i64,
    ) -> Result<Option<SchedulerLease>, StoreError> {
        self.claim_scheduler_on(&crate::home::host_name(), holder, pid, now)
    }

    /// `claim_scheduler` on `host`.
    fn claim_scheduler_on(
        &self,
        host: &str,
        holder: SchedulerHolder,
        pid: u32,
        now: i64,
    ) -> Result<Option<SchedulerLease>, StoreError> {
        // IMMEDIATE: two processes claiming at once see each other's write, not the same
        // empty row.
        let connection = self.connection();
        let transaction = connection.immediate_transaction()?;
        let current = read_lease(&transaction, host)?;
        let keeps = current.filter(|lease| {
            lease.pid != pid
                && now - lease.renewed_at < LEASE_MS
                && !(holder == SchedulerHolder::Service && lease.holder == SchedulerHolder::Window)
        });
        if keeps.is_none() {
            transaction.execute(
                "INSERT INTO scheduler_lease (host, holder, pid, renewed_at) VALUES (?4, ?1, ?2, ?3)
                 ON CONFLICT (host) DO UPDATE SET holder = ?1, pid = ?2, renewed_at = ?3",
                params![holder.as_str(), pid, now, host],
            )?;
        }
        transaction.commit()?;
        Ok(keeps)
    }

    /// Gives the lease up, if `pid` holds it (a window closing, the service stopping).
    pub fn release_scheduler(&self, pid: u32) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM scheduler_lease WHERE pid = ?1 AND host = ?2",
            params![pid, crate::home::host_name()],
        )?;
        Ok(())
    }

    /// The lease, if one is held and alive at `now`.
    pub fn scheduler_lease(&self, now: i64) -> Result<Option<SchedulerLease>, StoreError> {
        Ok(read_lease(&self.connection(), &crate::home::host_name())?
            .filter(|lease| now - lease.renewed_at < LEASE_MS))
    }
}

fn read_lease(
    connection: &super::db::Connection,
    host: &str,
) -> Result<Option<SchedulerLease>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT holder, pid, renewed_at FROM scheduler_lease WHERE host = ?1",
            [host],
            |row| {
                let holder: String = row.get(0)?;
                Ok(SchedulerLease {
                    holder: SchedulerHolder::parse(&holder),
                    pid: row.get(1)?,
                    renewed_at: row.get(2)?,
                })
            },
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_sharing_a_database_runs_its_own_schedule() {
        let store = StateStore::open_scratch().expect("open");
        assert_eq!(
            store
                .claim_scheduler_on("a", SchedulerHolder::Service, 10, 1_000)
                .expect("a"),
            None
        );
        // Host b's service takes its own schedule while a's runs; a's is still a's.
        assert_eq!(
            store
                .claim_scheduler_on("b", SchedulerHolder::Service, 10, 2_000)
                .expect("b"),
            None
        );
        assert_eq!(
            store
                .claim_scheduler_on("a", SchedulerHolder::Window, 11, 3_000)
                .expect("a's window")
                .map(|lease| lease.holder),
            Some(SchedulerHolder::Service)
        );
    }

    #[test]
    fn the_service_takes_the_schedule_from_a_window_and_a_window_waits_for_it() {
        let store = StateStore::open_scratch().expect("open");
        // A window alone takes it, and renews it.
        assert_eq!(
            store
                .claim_scheduler(SchedulerHolder::Window, 10, 1_000)
                .expect("claim"),
            None
        );
        assert_eq!(
            store
                .claim_scheduler(SchedulerHolder::Window, 10, 20_000)
                .expect("renew"),
            None
        );
        // A second window leaves it alone.
        let held = store
            .claim_scheduler(SchedulerHolder::Window, 11, 21_000)
            .expect("claim")
            .expect("held by the first window");
        assert_eq!((held.holder, held.pid), (SchedulerHolder::Window, 10));
        // The service takes it over; the window then sees the service.
        assert_eq!(
            store
                .claim_scheduler(SchedulerHolder::Service, 20, 22_000)
                .expect("claim"),
            None
        );
        let held = store
            .claim_scheduler(SchedulerHolder::Window, 10, 23_000)
            .expect("claim")
            .expect("held by the service");
        assert_eq!((held.holder, held.pid), (SchedulerHolder::Service, 20));
        // The service dies: once its lease expires the window takes the schedule back.
        let expired = 22_000 + LEASE_MS;
        assert_eq!(store.scheduler_lease(expired).expect("read"), None);
        assert_eq!(
            store
                .claim_scheduler(SchedulerHolder::Window, 10, expired)
                .expect("claim"),
            None
        );
        // A window releasing its lease leaves none.
        store.release_scheduler(10).expect("release");
        assert_eq!(store.scheduler_lease(expired).expect("read"), None);
    }
}
