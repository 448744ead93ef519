//! Flow control for Graph: how many requests are in flight, how fast writes go, and how long to
//! wait before trying again.
//!
//! Graph's identity limits allow an app a fixed number of writes per sliding window (3,000 per
//! 150 s by default) and answer 429 with `Retry-After` beyond it. Sending at the budget instead
//! of into it keeps 429s rare; when one comes anyway, every request waits out `Retry-After`, not
//! just the one that was refused
//! (https://learn.microsoft.com/en-us/graph/throttling).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The limits dirsync keeps to. The defaults are Graph's documented write limit per app and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPolicy {
    /// Requests (or batches) in flight at once.
    pub max_concurrent: usize,
    /// Writes allowed per `write_window`.
    pub write_limit: u32,
    pub write_window: Duration,
    /// A request that keeps failing (429, 5xx, dropped connections) is given up after this long.
    pub give_up_after: Duration,
    /// First wait after a 5xx or a dropped connection; doubles each time up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A single HTTP exchange that takes longer than this counts as a dropped connection.
    pub request_timeout: Duration,
}

impl Default for FlowPolicy {
    fn default() -> Self {
        FlowPolicy {
            max_concurrent: 4,
            write_limit: 3000,
            write_window: Duration::from_secs(150),
            give_up_after: Duration::from_secs(600),
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(100),
        }
    }
}

/// Counters of what the flow control saw, for run records and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowStats {
    /// HTTP exchanges sent (a batch counts once).
    pub requests: u64,
    /// Writes sent (each request inside a batch counts).
    pub writes: u64,
    /// Answers (or batch parts) with 429.
    pub throttled: u64,
    /// Answers with 5xx.
    pub server_errors: u64,
    /// Connections that dropped or timed out.
    pub dropped: u64,
    /// Requests sent again after one of the above.
    pub retries: u64,
}

/// The write budget's sliding window. A write is stamped when its answer arrives, not when it
/// is sent: the server counted it somewhere in between, so the server's window always reopens
/// before ours and pacing never runs into a 429, however slow the network. Until the answer, the
/// write holds its slot as in flight.
#[derive(Debug, Default)]
struct WriteWindow {
    /// Answer times of the writes in the current window, oldest first.
    answered: VecDeque<Instant>,
    in_flight: usize,
}

/// Shared by every request of one Graph client.
#[derive(Debug)]
pub struct FlowControl {
    policy: FlowPolicy,
    in_flight: Semaphore,
    /// The writes of the current window.
    writes_window: Mutex<WriteWindow>,
    /// Nothing is sent before this instant (set by `Retry-After`).
    paused_until: Mutex<Option<Instant>>,
    requests: AtomicU64,
    writes: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

impl FlowControl {
    pub fn new(policy: FlowPolicy) -> Self {
        FlowControl {
            in_flight: Semaphore::new(policy.max_concurrent.max(1)),
            policy,
            writes_window: Mutex::new(WriteWindow::default()),
            paused_until: Mutex::new(None),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub fn policy(&self) -> &FlowPolicy {
        &self.policy
    }

    /// Waits until a request carrying `writes` writes may go: no `Retry-After` pause in force, room
    /// in the write budget, and a free slot. The slot is held until the permit is dropped.
    pub async fn admit(&self, writes: u32) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        loop {
            self.wait_out_pause().await;
            match self.reserve_writes(writes, Instant::now()) {
                None => break,
                Some(free_at) => tokio::time::sleep_until(free_at).await,
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(u64::from(writes), Ordering::Relaxed);
        permit
    }

    /// How long requests are still held by a `Retry-After`.
    pub fn paused_for(&self) -> Duration {
        let until = *self.paused_until.lock().expect("lock");
        until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }

    async fn wait_out_pause(&self) {
        loop {
            let until = *self.paused_until.lock().expect("lock");
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// Takes `writes` slots of the budget at `now`, or says when to ask again.
    fn reserve_writes(&self, writes: u32, now: Instant) -> Option<Instant> {
        if writes == 0 {
            return None;
        }
        let window_length = self.policy.write_window;
        let limit = self.policy.write_limit.max(writes) as usize;
        let mut window = self.writes_window.lock().expect("lock");
        while window
            .answered
            .front()
            .is_some_and(|answered| now.duration_since(*answered) >= window_length)
        {
            window.answered.pop_front();
        }
        let wanted = window.answered.len() + window.in_flight + writes as usize;
        if wanted <= limit {
            window.in_flight += writes as usize;
            return None;
        }
        match window.answered.get(wanted - limit - 1) {
            Some(answered) => Some(*answered + window_length),
            // The budget is held by writes still in flight: ask again shortly.
            None => Some(now + Duration::from_millis(20)),
        }
    }

    /// The answer to a request carrying `writes` writes arrived (or the request failed) at `now`.
    pub fn writes_answered(&self, writes: u32, now: Instant) {
        if writes == 0 {
            return;
        }
        let mut window = self.writes_window.lock().expect("lock");
        window.in_flight = window.in_flight.saturating_sub(writes as usize);
        window
            .answered
            .extend(std::iter::repeat_n(now, writes as usize));
    }

    /// A 429 came back: hold every request until `retry_after` has passed.
    pub fn throttled(&self, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.pause(retry_after);
    }

    /// Holds every request until `wait` has passed (a `Retry-After` on a 429 or a 503).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().expect("lock");
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    pub fn server_error(&self) {
        self.server_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retrying(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The wait before attempt `attempt` (1 = the first retry): exponential with full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .policy
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.policy.max_backoff);
        // Half fixed, half random, so that many clients failing together spread out.
        ceiling / 2 + ceiling.mul_f64(random_fraction() / 2.0)
    }

    pub fn stats(&self) -> FlowStats {
        FlowStats {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// A number in [0, 1) for jitter; not for anything secret.
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: u32, window_secs: u64) -> FlowPolicy {
        FlowPolicy {
            write_limit: limit,
            write_window: Duration::from_secs(window_secs),
            ..FlowPolicy::default()
        }
    }

    #[test]
    fn writes_wait_for_the_oldest_answer_to_leave_the_window() {
        let flow = FlowControl::new(policy(3, 10));
        let start = Instant::now();
        assert_eq!(flow.reserve_writes(2, start), None);
        flow.writes_answered(2, start);
        assert_eq!(flow.reserve_writes(1, start + Duration::from_secs(1)), None);
        flow.writes_answered(1, start + Duration::from_secs(1));
        let free_at = flow
            .reserve_writes(2, start + Duration::from_secs(2))
            .expect("the budget is spent");
        // Two must leave the window: both answered at `start`.
        assert_eq!(free_at, start + Duration::from_secs(10));
        assert_eq!(flow.reserve_writes(2, free_at), None);
    }

    #[test]
    fn writes_in_flight_hold_their_slots_until_answered() {
        let flow = FlowControl::new(policy(3, 10));
        let start = Instant::now();
        assert_eq!(flow.reserve_writes(3, start), None);
        assert_eq!(
            flow.reserve_writes(1, start),
            Some(start + Duration::from_millis(20))
        );
        flow.writes_answered(3, start + Duration::from_secs(1));
        assert_eq!(
            flow.reserve_writes(1, start + Duration::from_secs(2)),
            Some(start + Duration::from_secs(11))
        );
    }

    #[test]
    fn a_request_larger_than_the_budget_still_goes_alone() {
        let flow = FlowControl::new(policy(5, 10));
        assert_eq!(flow.reserve_writes(20, Instant::now()), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let flow = FlowControl::new(FlowPolicy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            ..FlowPolicy::default()
        });
        let first = flow.backoff(1);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let fifth = flow.backoff(5);
        assert!(fifth >= Duration::from_secs(4) && fifth <= Duration::from_secs(8));
        assert!(flow.backoff(40) <= Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_pauses_every_request() {
        let flow = FlowControl::new(policy(100, 10));
        flow.throttled(Duration::from_secs(3));
        let start = Instant::now();
        drop(flow.admit(0).await);
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert_eq!(flow.stats().throttled, 1);
        assert_eq!(flow.stats().requests, 1);
    }
}
