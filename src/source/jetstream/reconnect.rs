//! How each way a Jetstream connection can fail or end maps onto the reconnect policy: a
//! back-off class (the same ladders as the Twitter stream: network, HTTP, rate limited),
//! whether to try another instance, or an end with an error when retrying cannot help.
//!
//! What Jetstream's `/subscribe` does, from its server code:
//! - before the upgrade, HTTP **400** with a plain-text reason for a filter or cursor it
//!   refuses (the same on every retry: the flags must change), **503** while it starts or
//!   warms up its cursor replay (retry, it is a matter of seconds to minutes), and whatever
//!   a proxy in front says (404 for a wrong path, 429, 502…);
//! - after it, close **1001** "going away" on shutdown (a deploy: another instance now),
//!   **1008** policy violation for an `options_update` it refuses and **1007** for one it
//!   cannot read (our message, so retrying repeats it), **1009** for a message of ours over
//!   its 10 MB limit; a client too slow for it is dropped without a close frame.
//!
//! Jitter: every wait is spread by ±20% so that many readers dropped at once (an instance
//! restarting) do not come back in step.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::backoff::ErrorClass;

/// What to do after a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Wait on this ladder, then connect again (to the next instance if `fail_over`).
    Retry {
        class: ErrorClass,
        fail_over: bool,
        why: String,
    },
    /// The server refused the subscription itself: stop with a configuration error, once
    /// every instance has said so.
    Refused { status: String, said: String },
}

fn retry(class: ErrorClass, fail_over: bool, why: String) -> Verdict {
    Verdict::Retry {
        class,
        fail_over,
        why,
    }
}

/// An HTTP status instead of the WebSocket upgrade.
pub(crate) fn http_status(status: u16, said: &str) -> Verdict {
    let why = format!("HTTP {status} instead of the WebSocket upgrade (server said: {said:?})");
    match status {
        429 => retry(ErrorClass::RateLimited, true, why),
        408 => retry(ErrorClass::Network, true, why),
        400..=499 => Verdict::Refused {
            status: format!("HTTP {status}"),
            said: said.to_string(),
        },
        _ => retry(ErrorClass::Http, true, why),
    }
}

/// A close frame from the server (`None`: a close frame without a code).
pub(crate) fn close(code: Option<CloseCode>, reason: &str) -> Verdict {
    let Some(code) = code else {
        return retry(
            ErrorClass::Network,
            false,
            "the server closed the connection (no close code)".into(),
        );
    };
    let n = u16::from(code);
    let why = format!("the server closed the connection with code {n} ({reason:?})");
    match code {
        CloseCode::Normal => retry(ErrorClass::Network, false, why),
        CloseCode::Away | CloseCode::Restart => retry(ErrorClass::Network, true, why),
        CloseCode::Again => retry(ErrorClass::RateLimited, true, why),
        CloseCode::Policy | CloseCode::Invalid | CloseCode::Size => Verdict::Refused {
            status: format!("close code {n}"),
            said: reason.to_string(),
        },
        CloseCode::Error | CloseCode::Bad(_) => retry(ErrorClass::Http, true, why),
        _ => retry(ErrorClass::Network, false, why),
    }
}

/// `d` spread by ±20%.
pub(crate) fn jitter(d: Duration) -> Duration {
    let unit = random_unit();
    d.mul_f64(0.8 + 0.4 * unit)
}

/// A number in [0, 1): xorshift on a thread-local seeded from the clock and the thread. Not
/// for anything but spreading waits.
fn random_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let here = &t as *const u64 as u64;
            (t ^ here.rotate_left(32) ^ u64::from(std::process::id())) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(v: &Verdict) -> Option<(ErrorClass, bool)> {
        match v {
            Verdict::Retry {
                class, fail_over, ..
            } => Some((*class, *fail_over)),
            Verdict::Refused { .. } => None,
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            class(&http_status(503, "service not ready")),
            Some((ErrorClass::Http, true))
        );
        assert_eq!(class(&http_status(502, "")), Some((ErrorClass::Http, true)));
        assert_eq!(
            class(&http_status(429, "")),
            Some((ErrorClass::RateLimited, true))
        );
        assert_eq!(
            class(&http_status(408, "")),
            Some((ErrorClass::Network, true))
        );
        let v = http_status(400, "invalid collection: x");
        assert_eq!(
            v,
            Verdict::Refused {
                status: "HTTP 400".into(),
                said: "invalid collection: x".into()
            }
        );
        assert_eq!(class(&http_status(404, "")), None);
    }

    #[test]
    fn close_codes() {
        assert_eq!(class(&close(None, "")), Some((ErrorClass::Network, false)));
        assert_eq!(
            class(&close(Some(CloseCode::Normal), "")),
            Some((ErrorClass::Network, false))
        );
        assert_eq!(
            class(&close(Some(CloseCode::Away), "server shutting down")),
            Some((ErrorClass::Network, true))
        );
        assert_eq!(
            class(&close(Some(CloseCode::Error), "")),
            Some((ErrorClass::Http, true))
        );
        assert_eq!(
            class(&close(Some(CloseCode::Again), "")),
            Some((ErrorClass::RateLimited, true))
        );
        for refused in [CloseCode::Policy, CloseCode::Invalid, CloseCode::Size] {
            assert_eq!(class(&close(Some(refused), "")), None);
        }
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let d = Duration::from_secs(10);
        let waits: Vec<Duration> = (0..1000).map(|_| jitter(d)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(8) && *w < Duration::from_secs(12)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 900, "spread, not constant");
        let mean = waits.iter().sum::<Duration>() / 1000;
        assert!(mean > Duration::from_millis(9_700) && mean < Duration::from_millis(10_300));
    }
}
