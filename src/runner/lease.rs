//! Promote, step down and the export lease's state (README, "Two hosts, one database"), for
//! the CLI and the dashboard alike. Each change is in the audit trail.

use super::audit::{self, Source};
use super::{RunError, load_config};
use crate::clock::now_ms;
use crate::home::Home;
use crate::store::StateStore;
use crate::store::export_lease::{LeaseState, Promotion};

/// The lease as this host sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseView {
    /// This host's name (`HOSTNAME`, else /etc/hostname).
    pub host: String,
    pub lease: LeaseState,
    /// The live holder now, if any.
    pub holder: Option<String>,
    /// How long a claim lasts unrenewed, in milliseconds.
    pub lease_ms: i64,
}

impl LeaseView {
    pub fn this_host_exports(&self) -> bool {
        self.holder.as_deref() == Some(self.host.as_str())
    }

    /// One line for the administrator.
    pub fn in_words(&self) -> String {
        let role = match self.holder.as_deref() {
            Some(holder) if holder == self.host => format!(
                "This host ({}) holds the export lease (renewed until {}) and exports",
                self.host,
                crate::clock::human_time(self.lease.expires_at)
            ),
            Some(holder) => format!(
                "Host {holder} holds the export lease (renewed until {}); this host ({}) is a standby: it imports and plans, and takes over if {holder} stops renewing",
                crate::clock::human_time(self.lease.expires_at),
                self.host
            ),
            None => format!(
                "No host holds the export lease: the next host to run a cycle takes it (this host: {})",
                self.host
            ),
        };
        let mut words = role;
        if let Some(wanted) = &self.lease.wanted_by {
            words.push_str(&format!(
                ". Host {wanted} was promoted and takes the lease at the holder's next renewal"
            ));
        }
        if let Some(down) = &self.lease.stood_down {
            words.push_str(&format!(
                ". Host {down} was stepped down and takes no lease until promoted"
            ));
        }
        words
    }
}

fn lease_ms(home: &Home) -> Result<i64, RunError> {
    let config = load_config(home)?;
    config
        .store
        .lease_ms(config.options.interval_minutes)
        .ok_or_else(|| RunError::NoLease {
            config_file: home.config_file.display().to_string(),
        })
}

pub fn lease_view(home: &Home) -> Result<LeaseView, RunError> {
    let lease_ms = lease_ms(home)?;
    let lease = StateStore::open_home(home)?.export_lease()?;
    Ok(LeaseView {
        host: crate::home::host_name(),
        holder: lease.live_holder(now_ms()).map(str::to_owned),
        lease,
        lease_ms,
    })
}

pub fn promote(home: &Home, source: Source) -> Result<Promotion, RunError> {
    let lease_ms = lease_ms(home)?;
    let host = crate::home::host_name();
    let promotion = StateStore::open_home(home)?.promote(&host, now_ms(), lease_ms)?;
    let detail = match &promotion {
        Promotion::Holder => format!("host {host} holds the export lease"),
        Promotion::Asked { holder, .. } => {
            format!("host {host} asked {holder} to hand the export lease over")
        }
    };
    audit::record_or_log(home, source, "promoted", &detail, &[]);
    Ok(promotion)
}

pub fn step_down(home: &Home, source: Source) -> Result<(), RunError> {
    lease_ms(home)?;
    let host = crate::home::host_name();
    StateStore::open_home(home)?.step_down(&host, now_ms())?;
    audit::record_or_log(
        home,
        source,
        "stepped-down",
        &format!("host {host} gave the export lease up and stays a standby until promoted"),
        &[],
    );
    Ok(())
}
