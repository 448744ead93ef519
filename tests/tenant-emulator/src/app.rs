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
    pub device_codes: Mutex<HashMap<String, DeviceCode>>,
    pub limiter: Mutex<Limiter>,
    pub faults: Mutex<Faults>,
    pub stats: Stats,
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

/// Graph's write limit per application and tenant: a sliding window of write times.
#[derive(Debug)]
pub struct Limiter {
    pub writes: u32,
    pub window: Duration,
    per_client: HashMap<String, VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(writes: u32, window: Duration) -> Self {
        Limiter {
            writes,
            window,
            per_client: HashMap::new(),
        }
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
            let frees_at = oldest + window;
            return Err(frees_at.saturating_duration_since(now));
        }
        times.push_back(now);
        #[allow(clippy::cast_precision_loss)]
        let used = times.len() as f64 / limit.max(1) as f64;
        Ok(used)
    }
}

/// Faults switched on through `PUT /_emulator/faults`.
#[derive(Debug, Default)]
pub struct Faults {
    pub latency_ms: u64,
    pub fail_every: u64,
    pub throttle_until: Option<Instant>,
    pub drop_every: u64,
    /// Graph operations seen since the faults were set (for `fail_every`).
    pub operations: u64,
    /// Graph HTTP requests seen since the faults were set (for `drop_every`).
    pub connections: u64,
}

/// The body of `PUT /_emulator/faults`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FaultSettings {
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub fail_every: u64,
    #[serde(default)]
    pub throttle_for_secs: u64,
    #[serde(default)]
    pub drop_every: u64,
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
