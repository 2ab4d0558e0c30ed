//! Reconnect back-off, exactly as Twitter documents it for its streaming API:
//! - network/TCP errors: linear, +250 ms per attempt, up to 16 s;
//! - HTTP errors: exponential from 5 s, doubling, up to 320 s;
//! - HTTP 420/429 (rate limited): exponential from 60 s, doubling.
//!
//! Each class has its own ladder; a healthy connection resets them all. Every number is
//! configurable so tests (and impatient operators) can shrink them.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Network,
    Http,
    RateLimited,
}

#[derive(Debug, Clone)]
pub struct BackoffPolicy {
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
pub struct Backoff {
    policy: BackoffPolicy,
    network_attempts: u32,
    http_next: Option<Duration>,
    rate_next: Option<Duration>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            network_attempts: 0,
            http_next: None,
            rate_next: None,
        }
    }

    /// The wait before the next connection attempt after an error of `class`.
    pub fn next(&mut self, class: ErrorClass) -> Duration {
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
    pub fn reset(&mut self) {
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
