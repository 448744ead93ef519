//! The export lease of hosts sharing one PostgreSQL database (README, "Two hosts, one
//! database"): the host holding it exports, every other host runs in staging (imports and
//! plans; its pending exports are its runs' changes), and takes the lease over by itself once
//! the holder has not renewed it for the lease's length. Promote and step down hand it over at
//! the holder's next renewal, between two export batches, so two hosts never export at once.

use super::db::{OptionalExtension as _, params};
use super::{StateStore, StoreError};

/// The lease as the database has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeaseState {
    pub holder: Option<String>,
    /// Unix milliseconds; the holder lapsed when this has passed.
    pub expires_at: i64,
    /// A host promoted while another held the lease: the holder hands it over next.
    pub wanted_by: Option<String>,
    /// A host stepped down: it takes no lapsed lease until it is promoted.
    pub stood_down: Option<String>,
}

impl LeaseState {
    /// The live holder at `now`, if any.
    pub fn live_holder(&self, now: i64) -> Option<&str> {
        self.holder.as_deref().filter(|_| self.expires_at > now)
    }
}

/// A host's terms for the lease: its name and how long a claim lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTerms {
    pub host: String,
    pub lease_ms: i64,
}

/// What a host learned when it claimed or renewed the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This host holds the lease until `expires_at`. `took_over_from`: the host whose lease had
    /// lapsed.
    Ours {
        expires_at: i64,
        took_over_from: Option<String>,
    },
    /// Another host holds it until `expires_at` (or was just handed it by this one).
    Theirs { holder: String, expires_at: i64 },
    /// This host was stepped down and the lease is free: it waits to be promoted.
    StoodDown,
}

impl Claim {
    pub fn is_ours(&self) -> bool {
        matches!(self, Claim::Ours { .. })
    }

    /// Why this host does not export, in words for the run's report.
    pub fn why_not_exporting(&self) -> Option<String> {
        match self {
            Claim::Ours { .. } => None,
            Claim::Theirs { holder, expires_at } => Some(format!(
                "standby: host {holder} holds the export lease (renewed until {}), so this host imports and plans only; its pending exports are this run's changes. It takes over by itself if {holder} stops renewing, or at once with `dirsync promote`",
                crate::clock::human_time(*expires_at)
            )),
            Claim::StoodDown => Some(
                "standby: this host was stepped down, so it imports and plans only and takes no export lease until it is promoted (`dirsync promote`)"
                    .to_owned(),
            ),
        }
    }
}

/// What promote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    /// This host holds the lease now.
    Holder,
    /// `holder` hands it over at its next renewal (its next export batch or cycle), by
    /// `expires_at` at the latest.
    Asked { holder: String, expires_at: i64 },
}

impl StateStore {
    pub fn export_lease(&self) -> Result<LeaseState, StoreError> {
        Ok(read(&self.connection())?.unwrap_or_default())
    }

    /// Takes or renews the lease for `host` until `now + lease_ms`, unless another live host
    /// holds it; hands it to a promoted host instead when one waits.
    pub fn claim_export_lease(
        &self,
        host: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Claim, StoreError> {
        let connection = self.connection();
        let transaction = connection.immediate_transaction()?;
        let state = read(&transaction)?.unwrap_or_default();
        let until = now + lease_ms;
        let claim = match state.live_holder(now) {
            Some(holder) if holder == host => match state.wanted_by.as_deref() {
                Some(wanted) if wanted != host => {
                    write(&transaction, Some(wanted), until, None, None)?;
                    Claim::Theirs {
                        holder: wanted.to_owned(),
                        expires_at: until,
                    }
                }
                _ => {
                    write(&transaction, Some(host), until, None, None)?;
                    Claim::Ours {
                        expires_at: until,
                        took_over_from: None,
                    }
                }
            },
            Some(holder) => Claim::Theirs {
                holder: holder.to_owned(),
                expires_at: state.expires_at,
            },
            None if state.stood_down.as_deref() == Some(host) => Claim::StoodDown,
            None => {
                write(
                    &transaction,
                    Some(host),
                    until,
                    None,
                    state.stood_down.as_deref(),
                )?;
                Claim::Ours {
                    expires_at: until,
                    took_over_from: state.holder.filter(|previous| previous != host),
                }
            }
        };
        transaction.commit()?;
        if let Claim::Ours {
            took_over_from: Some(previous),
            ..
        } = &claim
        {
            // The host whose lease lapsed was killed or cut off: its run is not running.
            let cancelled = self.cancel_runs_of_host(previous)?;
            tracing::warn!(
                previous = previous.as_str(),
                cancelled,
                "took the export lease over from a host that stopped renewing it"
            );
        }
        Ok(claim)
    }

    /// "Promote": `host` takes the lease now if it is free, else asks the holder to hand it
    /// over at its next renewal. A stepped-down host is no longer stood down.
    pub fn promote(&self, host: &str, now: i64, lease_ms: i64) -> Result<Promotion, StoreError> {
        let connection = self.connection();
        let transaction = connection.immediate_transaction()?;
        let state = read(&transaction)?.unwrap_or_default();
        let stood_down = state.stood_down.as_deref().filter(|down| *down != host);
        let promotion = match state.live_holder(now) {
            Some(holder) if holder != host => {
                write(
                    &transaction,
                    Some(holder),
                    state.expires_at,
                    Some(host),
                    stood_down,
                )?;
                Promotion::Asked {
                    holder: holder.to_owned(),
                    expires_at: state.expires_at,
                }
            }
            _ => {
                write(&transaction, Some(host), now + lease_ms, None, stood_down)?;
                Promotion::Holder
            }
        };
        transaction.commit()?;
        Ok(promotion)
    }

    /// "Step down": `host` gives the lease up (the other host takes it at its next cycle) and
    /// takes no lapsed lease until it is promoted again.
    pub fn step_down(&self, host: &str, now: i64) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.immediate_transaction()?;
        let state = read(&transaction)?.unwrap_or_default();
        let wanted = state.wanted_by.as_deref().filter(|wanted| *wanted != host);
        match state.live_holder(now) {
            Some(holder) if holder == host => write(&transaction, None, 0, wanted, Some(host))?,
            Some(holder) => write(
                &transaction,
                Some(holder),
                state.expires_at,
                wanted,
                Some(host),
            )?,
            None => write(&transaction, None, 0, wanted, Some(host))?,
        }
        transaction.commit()?;
        Ok(())
    }
}

fn read(connection: &super::db::Connection) -> Result<Option<LeaseState>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT holder, expires_at, wanted_by, stood_down FROM export_lease WHERE id = 1",
            (),
            |row| {
                Ok(LeaseState {
                    holder: row.get(0)?,
                    expires_at: row.get(1)?,
                    wanted_by: row.get(2)?,
                    stood_down: row.get(3)?,
                })
            },
        )
        .optional()?)
}

fn write(
    connection: &super::db::Connection,
    holder: Option<&str>,
    expires_at: i64,
    wanted_by: Option<&str>,
    stood_down: Option<&str>,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO export_lease (id, holder, expires_at, wanted_by, stood_down)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
             expires_at = excluded.expires_at, wanted_by = excluded.wanted_by,
             stood_down = excluded.stood_down",
        params![holder, expires_at, wanted_by, stood_down],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: i64 = 60_000;

    #[test]
    fn one_host_holds_the_lease_and_the_other_takes_it_only_once_it_lapses() {
        let store = StateStore::open_scratch().expect("open");
        let a = store.claim_export_lease("a", 0, LEASE).expect("a");
        assert!(a.is_ours());
        let b = store.claim_export_lease("b", 1_000, LEASE).expect("b");
        assert_eq!(
            b,
            Claim::Theirs {
                holder: "a".into(),
                expires_at: LEASE
            }
        );
        assert!(
            b.why_not_exporting()
                .is_some_and(|why| why.contains("host a holds"))
        );
        // a renews; b still waits.
        assert!(
            store
                .claim_export_lease("a", 30_000, LEASE)
                .expect("a")
                .is_ours()
        );
        assert!(
            !store
                .claim_export_lease("b", 60_000, LEASE)
                .expect("b")
                .is_ours()
        );
        // a stops renewing: b takes over once the lease lapses, and says from whom.
        assert_eq!(
            store.claim_export_lease("b", 90_001, LEASE).expect("b"),
            Claim::Ours {
                expires_at: 90_001 + LEASE,
                took_over_from: Some("a".into())
            }
        );
        assert!(
            !store
                .claim_export_lease("a", 90_002, LEASE)
                .expect("a")
                .is_ours()
        );
    }

    #[test]
    fn promote_is_handed_over_at_the_holder_s_next_renewal_and_step_down_waits_for_promote() {
        let store = StateStore::open_scratch().expect("open");
        assert!(
            store
                .claim_export_lease("a", 0, LEASE)
                .expect("a")
                .is_ours()
        );
        assert_eq!(
            store.promote("b", 1_000, LEASE).expect("promote"),
            Promotion::Asked {
                holder: "a".into(),
                expires_at: LEASE
            }
        );
        // b does not export before a hands over.
        assert!(
            !store
                .claim_export_lease("b", 2_000, LEASE)
                .expect("b")
                .is_ours()
        );
        // a's next renewal hands the lease to b.
        assert!(
            !store
                .claim_export_lease("a", 3_000, LEASE)
                .expect("a")
                .is_ours()
        );
        assert!(
            store
                .claim_export_lease("b", 4_000, LEASE)
                .expect("b")
                .is_ours()
        );

        // b steps down: a takes the free lease; b takes none, even lapsed, until promoted.
        store.step_down("b", 5_000).expect("step down");
        assert!(
            store
                .claim_export_lease("a", 6_000, LEASE)
                .expect("a")
                .is_ours()
        );
        assert_eq!(
            store
                .claim_export_lease("b", 6_000 + LEASE + 1, LEASE)
                .expect("b"),
            Claim::StoodDown
        );
        assert_eq!(
            store
                .promote("b", 6_000 + LEASE + 2, LEASE)
                .expect("promote"),
            Promotion::Holder
        );
        assert!(
            store
                .claim_export_lease("b", 6_000 + LEASE + 3, LEASE)
                .expect("b")
                .is_ours()
        );
    }
}
