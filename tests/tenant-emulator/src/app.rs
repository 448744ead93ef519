//! What every handler shares: the tenant, the endpoints' base URL, the write limiter, the
//! injected faults, the counters and the pending device codes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::store::Store;

#[derive(Debug)]
pub struct App {
    pub store: Store,
    /// `http://127.0.0.1:PORT`: both the authority and Graph.
    pub base: String,
    pub token_lifetime: Duration,
    pub device_code_interval_secs: u64,
    pub device_code_lifetime_secs: u64,
    pub auto_approve: bool,
    /// Whether `/dirsync/v1/passwordHashes` is served (else it is an unknown path).
    pub password_hash_endpoint: bool,
    /// Whether `/dirsync/v1/mailboxes/delta` is served (else it is an unknown path).
    pub mailbox_endpoint: bool,
    /// The directory size quota's `total` when set (else the service limits' default).
    pub directory_quota: Mutex<Option<u32>>,
    pub device_codes: Mutex<HashMap<String, DeviceCode>>,
    pub limiter: Mutex<Limiter>,
    pub faults: Mutex<Faults>,
    pub stats: Stats,
    /// When recent objects, secrets and app role assignments were made (for the lag faults).
    pub recent: Mutex<Recent>,
}

impl App {
    /// The replication delay in force (0 when off).
    pub fn replication_delay(&self) -> Duration {
        lock(&self.faults).replication_delay
    }

    /// The advanced-query index lag in force (0 when off).
    /// How long new users and groups cannot be referenced (0 when off).
    pub fn object_replication(&self) -> Duration {
        lock(&self.faults).object_replication
    }

    pub fn index_lag(&self) -> Duration {
        lock(&self.faults).index_lag
    }

    /// How long a new directory role assignment takes to take effect (0 when off).
    pub fn role_propagation(&self) -> Duration {
        lock(&self.faults).role_propagation
    }

    /// Remembers that something with this ID (an object, a secret's keyId, an assignment) was
    /// just made.
    pub fn note_created(&self, id: &str) {
        lock(&self.recent).note(id, Instant::now());
    }

    /// Whether the thing with this ID was made less than `lag` ago (never, when `lag` is 0 or
    /// it was made before this process started).
    pub fn younger_than(&self, id: &str, lag: Duration) -> bool {
        !lag.is_zero() && lock(&self.recent).younger_than(id, lag, Instant::now())
    }
}

/// Creation times of recent things, kept in memory only: after a restart everything counts as
/// replicated and indexed.
#[derive(Debug, Default)]
pub struct Recent {
    made: HashMap<String, Instant>,
}

impl Recent {
    /// Longer than any lag the hooks accept: older entries are forgotten.
    const KEEP: Duration = Duration::from_secs(MAX_REPLICATION_DELAY_SECS + 60);

    pub fn note(&mut self, id: &str, now: Instant) {
        if self.made.len() >= 10_000 {
            self.made
                .retain(|_, made| now.saturating_duration_since(*made) < Self::KEEP);
        }
        self.made.insert(id.to_ascii_lowercase(), now);
    }

    pub fn younger_than(&self, id: &str, lag: Duration, now: Instant) -> bool {
        self.made
            .get(&id.to_ascii_lowercase())
            .is_some_and(|made| now.saturating_duration_since(*made) < lag)
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A device authorization in progress.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub user_code: String,
    pub client_id: String,
    /// Graph scopes (short names) and OpenID Connect scopes, as requested.
    pub scopes: Vec<String>,
    pub expires_at: Instant,
    pub last_poll: Option<Instant>,
    pub status: DeviceStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved { user_id: String },
    Declined,
    Expired,
}

/// Graph's identity and access limits (https://learn.microsoft.com/en-us/graph/throttling-limits,
/// "Identity and access service limits"), as sliding windows: writes per application and tenant
/// (`writes` per `window`, 3,000 per 150 s), writes per tenant for all applications (18,000 per
/// 5 minutes), and resource units per application and tenant (per 10 seconds: 3,500 in a tenant of
/// under 50 users, 5,000 up to 500, 8,000 above).
#[derive(Debug)]
pub struct Limiter {
    pub writes: u32,
    pub window: Duration,
    per_client: HashMap<String, VecDeque<Instant>>,
    tenant: VecDeque<Instant>,
    units: HashMap<String, VecDeque<(Instant, u32)>>,
}

/// Writes per tenant for all applications, and their window.
pub const TENANT_WRITES: usize = 18_000;
pub const TENANT_WRITE_WINDOW: Duration = Duration::from_secs(300);
/// The resource-unit window.
pub const UNIT_WINDOW: Duration = Duration::from_secs(10);

/// The resource units an application may spend in a tenant of `users` users per 10 seconds.
pub fn unit_quota(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// Which limit refused a request, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub wait: Duration,
    /// `x-ms-throttle-scope`'s first part.
    pub scope: &'static str,
    /// `x-ms-throttle-information`.
    pub information: &'static str,
}

impl Limiter {
    pub fn new(writes: u32, window: Duration) -> Self {
        Limiter {
            writes,
            window,
            per_client: HashMap::new(),
            tenant: VecDeque::new(),
            units: HashMap::new(),
        }
    }

    /// Spends `units` of `client`'s resource-unit quota (`quota` per 10 s), or says how long
    /// until enough of it is back.
    pub fn try_units(
        &mut self,
        client: &str,
        units: u32,
        quota: u32,
        now: Instant,
    ) -> Result<(), Refused> {
        let spent = self.units.entry(client.to_ascii_lowercase()).or_default();
        while spent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= UNIT_WINDOW)
        {
            spent.pop_front();
        }
        let total: u32 = spent.iter().map(|(_, n)| n).sum();
        if total + units > quota {
            let oldest = spent.front().map_or(now, |(t, _)| *t);
            return Err(Refused {
                wait: UNIT_WINDOW.saturating_sub(now.saturating_duration_since(oldest)),
                scope: "Tenant_Application/ReadWrite",
                information: "ResourceUnitLimitExceeded",
            });
        }
        spent.push_back((now, units));
        Ok(())
    }

    /// Takes a write slot of the tenant's (all applications) and then of `client`'s, or says
    /// which limit refused it and for how long.
    pub fn try_write_in_tenant(&mut self, client: &str, now: Instant) -> Result<f64, Refused> {
        while self
            .tenant
            .front()
            .is_some_and(|t| now.duration_since(*t) >= TENANT_WRITE_WINDOW)
        {
            self.tenant.pop_front();
        }
        if self.tenant.len() >= TENANT_WRITES {
            let oldest = self.tenant.front().copied().unwrap_or(now);
            return Err(Refused {
                wait: TENANT_WRITE_WINDOW.saturating_sub(now.saturating_duration_since(oldest)),
                scope: "Tenant/Write",
                information: "WriteLimitExceeded",
            });
        }
        let used = self.try_write(client, now).map_err(|wait| Refused {
            wait,
            scope: "Tenant_Application/Write",
            information: "WriteLimitExceeded",
        })?;
        self.tenant.push_back(now);
        Ok(used)
    }

    pub fn set(&mut self, writes: u32, window: Duration) {
        self.writes = writes;
        self.window = window;
    }

    /// Takes a write slot for `client` (returns the share of the limit now used), or says how
    /// long until one frees.
    pub fn try_write(&mut self, client: &str, now: Instant) -> Result<f64, Duration> {
        let window = self.window;
        let limit = usize::try_from(self.writes).unwrap_or(usize::MAX);
        let times = self
            .per_client
            .entry(client.to_ascii_lowercase())
            .or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now);
            let waited = now.saturating_duration_since(oldest);
            return Err(window.saturating_sub(waited));
        }
        times.push_back(now);
        #[allow(clippy::cast_precision_loss)]
        let used = times.len() as f64 / limit.max(1) as f64;
        Ok(used)
    }
}

/// The largest values the hooks (and the configuration) accept: beyond them a test is
/// mistaken, and `Instant + Duration` could overflow.
pub const MAX_LATENCY_MS: u64 = 600_000;
pub const MAX_THROTTLE_SECS: u64 = 86_400;
pub const MAX_WINDOW_SECS: u64 = 86_400;
pub const MAX_REPLICATION_DELAY_SECS: u64 = 3_600;
pub const MAX_INDEX_LAG_MS: u64 = 600_000;

/// Faults switched on through `PUT /_emulator/faults`.
#[derive(Debug, Default)]
pub struct Faults {
    pub latency_ms: u64,
    pub fail_every: u64,
    pub throttle_until: Option<Instant>,
    pub drop_every: u64,
    /// Every Nth Graph HTTP request is carried out, then its connection closed with no answer.
    pub lose_answer_every: u64,
    /// Every Nth write (batch requests counted alone) is carried out, then answered 503.
    pub fail_after_write_every: u64,
    /// Graph writes seen since the faults were set (for `fail_after_write_every`).
    pub writes: u64,
    /// New applications, secrets and app role assignments take this long to reach the token
    /// endpoint (Entra replicates them).
    pub replication_delay: Duration,
    /// Advanced queries see objects only this long after they were made (Graph's index lags).
    pub index_lag: Duration,
    /// New users and groups cannot be referenced (members, owners' groups, managers) for this
    /// long: `$ref` writes naming them answer 404 (Entra replicates them).
    pub object_replication: Duration,
    /// A new directory role assignment (`POST /roleManagement/directory/roleAssignments`) does
    /// not let its holder do what the role allows (reset passwords) for this long.
    pub role_propagation: Duration,
    /// Graph operations seen since the faults were set (for `fail_every`).
    pub operations: u64,
    /// Graph HTTP requests seen since the faults were set (for `drop_every`).
    pub connections: u64,
}

/// The body of `PUT /_emulator/faults`, and the faults an emulator starts with.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub fail_every: u64,
    #[serde(default)]
    pub throttle_for_secs: u64,
    #[serde(default)]
    pub drop_every: u64,
    #[serde(default)]
    pub replication_delay_secs: u64,
    #[serde(default)]
    pub index_lag_ms: u64,
    #[serde(default)]
    pub object_replication_ms: u64,
    #[serde(default)]
    pub lose_answer_every: u64,
    #[serde(default)]
    pub fail_after_write_every: u64,
    #[serde(default)]
    pub role_propagation_ms: u64,
}

impl FaultSettings {
    /// The faults these settings switch on from `now`, or what is unreasonable about them.
    pub fn faults(&self, now: Instant) -> Result<Faults, String> {
        let over = |name: &str, value: u64, max: u64| {
            (value > max).then(|| format!("{name} is {value}; at most {max} is accepted"))
        };
        if let Some(problem) = over("latency_ms", self.latency_ms, MAX_LATENCY_MS)
            .or_else(|| {
                over(
                    "throttle_for_secs",
                    self.throttle_for_secs,
                    MAX_THROTTLE_SECS,
                )
            })
            .or_else(|| {
                over(
                    "replication_delay_secs",
                    self.replication_delay_secs,
                    MAX_REPLICATION_DELAY_SECS,
                )
            })
            .or_else(|| over("index_lag_ms", self.index_lag_ms, MAX_INDEX_LAG_MS))
            .or_else(|| {
                over(
                    "object_replication_ms",
                    self.object_replication_ms,
                    MAX_INDEX_LAG_MS,
                )
            })
            .or_else(|| {
                over(
                    "role_propagation_ms",
                    self.role_propagation_ms,
                    MAX_INDEX_LAG_MS,
                )
            })
        {
            return Err(problem);
        }
        let throttle_until = match self.throttle_for_secs {
            0 => None,
            secs => Some(
                now.checked_add(Duration::from_secs(secs))
                    .ok_or_else(|| format!("throttle_for_secs {secs} is too far ahead"))?,
            ),
        };
        Ok(Faults {
            latency_ms: self.latency_ms,
            fail_every: self.fail_every,
            throttle_until,
            drop_every: self.drop_every,
            lose_answer_every: self.lose_answer_every,
            fail_after_write_every: self.fail_after_write_every,
            writes: 0,
            replication_delay: Duration::from_secs(self.replication_delay_secs),
            index_lag: Duration::from_millis(self.index_lag_ms),
            object_replication: Duration::from_millis(self.object_replication_ms),
            role_propagation: Duration::from_millis(self.role_propagation_ms),
            operations: 0,
            connections: 0,
        })
    }
}

/// Counters for `GET /_emulator/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub writes: AtomicU64,
    pub throttled: AtomicU64,
    pub failed_5xx: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub writes: u64,
    pub throttled: u64,
    pub failed_5xx: u64,
    pub dropped: u64,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            failed_5xx: self.failed_5xx.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        for counter in [
            &self.requests,
            &self.writes,
            &self.throttled,
            &self.failed_5xx,
            &self.dropped,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreasonable_fault_settings_are_refused() {
        let now = Instant::now();
        let huge = FaultSettings {
            throttle_for_secs: u64::MAX,
            ..FaultSettings::default()
        };
        let problem = huge.faults(now).expect_err("too long");
        assert!(problem.contains("throttle_for_secs"), "{problem}");
        for settings in [
            FaultSettings {
                latency_ms: MAX_LATENCY_MS + 1,
                ..FaultSettings::default()
            },
            FaultSettings {
                replication_delay_secs: u64::MAX,
                ..FaultSettings::default()
            },
            FaultSettings {
                index_lag_ms: u64::MAX,
                ..FaultSettings::default()
            },
            FaultSettings {
                role_propagation_ms: MAX_INDEX_LAG_MS + 1,
                ..FaultSettings::default()
            },
        ] {
            assert!(settings.faults(now).is_err(), "{settings:?}");
        }
        let fine = FaultSettings {
            throttle_for_secs: MAX_THROTTLE_SECS,
            replication_delay_secs: 5,
            index_lag_ms: 200,
            ..FaultSettings::default()
        };
        let faults = fine.faults(now).expect("reasonable");
        assert_eq!(faults.replication_delay, Duration::from_secs(5));
        assert_eq!(faults.index_lag, Duration::from_millis(200));
    }

    #[test]
    fn a_huge_window_does_not_overflow() {
        let mut limiter = Limiter::new(1, Duration::MAX);
        let now = Instant::now();
        assert!(limiter.try_write("app", now).is_ok());
        let wait = limiter.try_write("app", now).expect_err("full");
        assert!(wait > Duration::from_secs(1_000_000));
    }

    #[test]
    fn recent_things_are_young_for_the_lag_only() {
        let mut recent = Recent::default();
        let start = Instant::now();
        recent.note("ABC", start);
        assert!(recent.younger_than(
            "abc",
            Duration::from_secs(2),
            start + Duration::from_secs(1)
        ));
        assert!(!recent.younger_than(
            "abc",
            Duration::from_secs(2),
            start + Duration::from_secs(2)
        ));
        assert!(!recent.younger_than("other", Duration::from_secs(2), start));
    }

    #[test]
    fn resource_units_and_the_tenant_wide_write_limit_refuse_with_their_scope() {
        let now = Instant::now();
        assert_eq!(unit_quota(10), 3_500);
        assert_eq!(unit_quota(50), 5_000);
        assert_eq!(unit_quota(501), 8_000);
        let mut limiter = Limiter::new(u32::MAX, Duration::from_secs(150));
        assert!(limiter.try_units("app", 3_000, 3_500, now).is_ok());
        let refused = limiter
            .try_units("app", 501, 3_500, now + Duration::from_secs(4))
            .expect_err("over the quota");
        assert_eq!(refused.information, "ResourceUnitLimitExceeded");
        assert_eq!(refused.wait, Duration::from_secs(6));
        // Another application has its own quota; the window slides.
        assert!(limiter.try_units("other", 3_500, 3_500, now).is_ok());
        assert!(
            limiter
                .try_units("app", 3_500, 3_500, now + UNIT_WINDOW)
                .is_ok()
        );

        // The tenant's writes, across applications.
        for n in 0..TENANT_WRITES {
            let client = if n % 2 == 0 { "a" } else { "b" };
            assert!(limiter.try_write_in_tenant(client, now).is_ok());
        }
        let refused = limiter
            .try_write_in_tenant("c", now + Duration::from_secs(100))
            .expect_err("the tenant's limit");
        assert_eq!(refused.scope, "Tenant/Write");
        assert_eq!(refused.wait, Duration::from_secs(200));
    }

    #[test]
    fn the_limiter_slides_and_says_when_a_slot_frees() {
        let mut limiter = Limiter::new(2, Duration::from_secs(10));
        let start = Instant::now();
        assert!(limiter.try_write("app", start).is_ok());
        assert!(
            limiter
                .try_write("APP", start + Duration::from_secs(4))
                .is_ok()
        );
        let wait = limiter
            .try_write("app", start + Duration::from_secs(5))
            .expect_err("full");
        assert_eq!(wait, Duration::from_secs(5));
        // Another app has its own budget.
        assert!(
            limiter
                .try_write("other", start + Duration::from_secs(5))
                .is_ok()
        );
        // The first write leaves the window at 10 s.
        assert!(
            limiter
                .try_write("app", start + Duration::from_secs(10))
                .is_ok()
        );
        assert!(
            limiter
                .try_write("app", start + Duration::from_secs(11))
                .is_err()
        );
    }
}
