//! Waiting before trying again, the one way the whole program does it.
//!
//! - [`Retry`]: a call that failed for a reason that may pass (a broker starting, a
//!   coordinator moving, a fetch timing out): waits that double from a first one up to a
//!   ceiling, with a little jitter so that many clients do not retry in step, optionally
//!   within a deadline after which the caller reports the last error.
//! - [`Backoff`]: a stream's reconnect ladders, exactly as Twitter documents them for its
//!   streaming API (and used alike for other live sources):
//!   - network/TCP errors: linear, +250 ms per attempt, up to 16 s;
//!   - HTTP errors: exponential from 5 s, doubling, up to 320 s;
//!   - HTTP 420/429 (rate limited): exponential from 60 s, doubling.
//!
//!   Each class has its own ladder; a healthy connection resets them all. Every number is
//!   configurable so tests (and impatient operators) can shrink them.

use std::time::{Duration, Instant};

/// Exponential waits for retrying one call (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    initial: Duration,
    max: Duration,
    next: Duration,
    deadline: Option<Instant>,
    attempts: u32,
    seed: u64,
}

impl Retry {
    /// Waits of `initial`, doubling, at most `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Retry {
            initial,
            max,
            next: initial,
            deadline: None,
            attempts: 0,
            seed,
        }
    }

    /// No wait may end after `deadline`: [`Retry::wait`] says so instead of sleeping.
    pub(crate) fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Failed attempts so far.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The call succeeded: the next failure waits `initial` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }

    /// Counts a failed attempt and returns the wait before the next one: the current step
    /// plus up to a tenth more. `None` when that wait would pass the deadline.
    pub(crate) fn next_wait(&mut self) -> Option<Duration> {
        self.attempts += 1;
        // xorshift: jitter needs no quality, only that two processes differ.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = self.next.mul_f64((self.seed % 1000) as f64 / 10_000.0);
        let wait = self.next + jitter;
        self.next = self.next.saturating_mul(2).min(self.max);
        match self.deadline {
            Some(d) if Instant::now() + wait >= d => None,
            _ => Some(wait),
        }
    }

    /// Sleeps before the next attempt; `false` (at once) when the deadline would pass.
    pub(crate) async fn wait(&mut self) -> bool {
        match self.next_wait() {
            Some(w) => {
                tokio::time::sleep(w).await;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    Network,
    Http,
    RateLimited,
}

#[derive(Debug, Clone)]
pub(crate) struct BackoffPolicy {
    pub network_step: Duration,
    pub network_max: Duration,
    pub http_initial: Duration,
    pub http_max: Duration,
    pub rate_limit_initial: Duration,
    pub rate_limit_max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            network_step: Duration::from_millis(250),
            network_max: Duration::from_secs(16),
            http_initial: Duration::from_secs(5),
            http_max: Duration::from_secs(320),
            rate_limit_initial: Duration::from_secs(60),
            rate_limit_max: Duration::from_secs(16 * 60),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    network_attempts: u32,
    http_next: Option<Duration>,
    rate_next: Option<Duration>,
}

impl Backoff {
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            network_attempts: 0,
            http_next: None,
            rate_next: None,
        }
    }

    /// The wait before the next connection attempt after an error of `class`.
    pub(crate) fn next(&mut self, class: ErrorClass) -> Duration {
        let p = &self.policy;
        match class {
            ErrorClass::Network => {
                self.network_attempts = self.network_attempts.saturating_add(1);
                p.network_step
                    .saturating_mul(self.network_attempts)
                    .min(p.network_max)
            }
            ErrorClass::Http => step_exponential(&mut self.http_next, p.http_initial, p.http_max),
            ErrorClass::RateLimited => {
                step_exponential(&mut self.rate_next, p.rate_limit_initial, p.rate_limit_max)
            }
        }
    }

    /// A connection proved healthy: start every ladder from the bottom again.
    pub(crate) fn reset(&mut self) {
        self.network_attempts = 0;
        self.http_next = None;
        self.rate_next = None;
    }
}

fn step_exponential(next: &mut Option<Duration>, initial: Duration, max: Duration) -> Duration {
    let wait = next.unwrap_or(initial).min(max);
    *next = Some(wait.saturating_mul(2).min(max));
    wait
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_doubles_with_a_little_jitter_and_respects_its_deadline() {
        let mut r = Retry::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<Duration> = (0..6).map(|_| r.next_wait().unwrap()).collect();
        for (w, base) in waits.iter().zip([100u64, 200, 400, 800, 1000, 1000]) {
            let base = Duration::from_millis(base);
            assert!(*w >= base && *w <= base + base / 10, "{w:?} for {base:?}");
        }
        assert_eq!(r.attempts(), 6);
        r.reset();
        assert!(r.next_wait().unwrap() < Duration::from_millis(111));
        let mut bounded = Retry::new(Duration::from_secs(1), Duration::from_secs(1))
            .until(Instant::now() + Duration::from_millis(500));
        assert_eq!(
            bounded.next_wait(),
            None,
            "a wait past the deadline is refused"
        );
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn documented_ladders() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let net: Vec<_> = (0..66).map(|_| b.next(ErrorClass::Network)).collect();
        assert_eq!(&net[..4], &ms(&[250, 500, 750, 1000])[..]);
        assert_eq!(net[63], Duration::from_secs(16));
        assert_eq!(net[65], Duration::from_secs(16));
        let http: Vec<_> = (0..8).map(|_| b.next(ErrorClass::Http)).collect();
        assert_eq!(
            http,
            ms(&[5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000])
        );
        let rl: Vec<_> = (0..3).map(|_| b.next(ErrorClass::RateLimited)).collect();
        assert_eq!(rl, ms(&[60_000, 120_000, 240_000]));
        b.reset();
        assert_eq!(b.next(ErrorClass::Network), Duration::from_millis(250));
        assert_eq!(b.next(ErrorClass::Http), Duration::from_secs(5));
        assert_eq!(b.next(ErrorClass::RateLimited), Duration::from_secs(60));
    }
}
