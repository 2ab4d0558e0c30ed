//! Liveness and readiness, as the pipeline's loops report them.
//!
//! - A [`Heartbeat`] per loop (the consume writer, the pipeline's runtime): the loop calls
//!   [`Heartbeat::beat`] each time round, and `/healthz` fails when a loop has not come round
//!   within its allowance. Only loops that turn on a timer as well as on work have one, so a
//!   quiet stream is never taken for a stall.
//! - A readiness condition per thing the process depends on (stream connected, Kafka
//!   reachable): a probe of a flag the pipeline keeps anyway, read when asked
//!   ([`Health::probe`]); `/readyz` succeeds when every condition holds.
//!
//! A heartbeat is made where its loop lives ([`Heartbeat::new`], working with or without an
//! endpoint) and watched once the endpoint starts ([`Health::watch`]). Beating is a clock read
//! and two relaxed atomic stores, cheap enough for a loop's every turn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The loops and conditions of one process. Cloning shares them.
#[derive(Clone, Default)]
pub(crate) struct Health {
    beats: Arc<Mutex<Vec<Heartbeat>>>,
    checks: Arc<Mutex<Vec<(&'static str, Probe)>>>,
}

type Probe = Arc<dyn Fn() -> CheckState + Send + Sync>;

/// The one clock all heartbeats count from.
fn base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

struct Beat {
    name: &'static str,
    allowance_ms: u64,
    /// Milliseconds since `base` of the last beat, and by when the next one is due.
    last_ms: AtomicU64,
    due_ms: AtomicU64,
    retired: AtomicBool,
}

/// One loop's heartbeat. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Heartbeat(Arc<Beat>);

impl Heartbeat {
    /// A loop named `name` that must come round at least every `allowance`. Counts as having
    /// just beaten.
    pub(crate) fn new(name: &'static str, allowance: Duration) -> Self {
        let hb = Heartbeat(Arc::new(Beat {
            name,
            allowance_ms: allowance.as_millis().max(1) as u64,
            last_ms: AtomicU64::new(0),
            due_ms: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }));
        hb.beat();
        hb
    }

    /// The loop came round; the next beat is due within its allowance.
    pub(crate) fn beat(&self) {
        let now = self.now_ms();
        self.0.last_ms.store(now, Relaxed);
        self.0.due_ms.store(now + self.0.allowance_ms, Relaxed);
    }

    /// Whether the next beat is late (for a readiness probe built on a heartbeat: "a fetch
    /// answered recently").
    pub(crate) fn is_overdue(&self) -> bool {
        self.now_ms() > self.0.due_ms.load(Relaxed)
    }

    fn now_ms(&self) -> u64 {
        base().elapsed().as_millis() as u64
    }
}

/// The state of one readiness condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckState {
    /// Not known yet (starting up): not ready.
    Pending,
    Ok,
    Failing,
}

/// One loop in a [`Report`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoopReport {
    pub(crate) name: &'static str,
    /// Seconds since its last beat.
    pub(crate) age_s: f64,
    /// Seconds past its due time; `None` while it is on time (or retired).
    pub(crate) overdue_s: Option<f64>,
    pub(crate) retired: bool,
}

/// Everything `/healthz` and `/readyz` answer from, taken at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) loops: Vec<LoopReport>,
    pub(crate) checks: Vec<(&'static str, CheckState)>,
}

impl Report {
    /// Every loop that is still running came round in time.
    pub(crate) fn live(&self) -> bool {
        self.loops.iter().all(|l| l.overdue_s.is_none())
    }

    /// Alive, and every condition holds.
    pub(crate) fn ready(&self) -> bool {
        self.live() && self.checks.iter().all(|(_, s)| *s == CheckState::Ok)
    }
}

impl Health {
    pub(crate) fn new() -> Self {
        Health::default()
    }

    /// Watches a loop's heartbeat from now on.
    pub(crate) fn watch(&self, hb: &Heartbeat) {
        lock(&self.beats).push(hb.clone());
    }

    /// A readiness condition named `name`, evaluated by `probe` whenever asked.
    pub(crate) fn probe(
        &self,
        name: &'static str,
        probe: impl Fn() -> CheckState + Send + Sync + 'static,
    ) {
        lock(&self.checks).push((name, Arc::new(probe)));
    }

    pub(crate) fn report(&self) -> Report {
        let now = base().elapsed().as_millis() as u64;
        let loops = lock(&self.beats)
            .iter()
            .map(|hb| {
                let b = &hb.0;
                let retired = b.retired.load(Relaxed);
                let due = b.due_ms.load(Relaxed);
                LoopReport {
                    name: b.name,
                    age_s: now.saturating_sub(b.last_ms.load(Relaxed)) as f64 / 1000.0,
                    overdue_s: (!retired && now > due).then(|| (now - due) as f64 / 1000.0),
                    retired,
                }
            })
            .collect();
        let checks = lock(&self.checks)
            .iter()
            .map(|(name, probe)| (*name, probe()))
            .collect();
        Report { loops, checks }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU8;

    #[test]
    fn a_loop_that_stops_beating_makes_the_process_not_live() {
        let health = Health::new();
        let fast = Heartbeat::new("fast", Duration::from_millis(30));
        let slow = Heartbeat::new("slow", Duration::from_secs(60));
        health.watch(&fast);
        health.watch(&slow);
        assert!(health.report().live());
        std::thread::sleep(Duration::from_millis(60));
        slow.beat();
        let r = health.report();
        assert!(!r.live());
        assert!(fast.is_overdue() && !slow.is_overdue());
        let l = r.loops.iter().find(|l| l.name == "fast").unwrap();
        assert!(l.overdue_s.unwrap() > 0.0 && l.age_s >= 0.06, "{l:?}");
        fast.beat();
        assert!(health.report().live());
    }

    #[test]
    fn ready_only_when_every_condition_holds() {
        let health = Health::new();
        assert!(health.report().ready(), "nothing to wait for");
        let flags: Vec<Arc<AtomicU8>> = (0..2).map(|_| Arc::default()).collect();
        for (name, flag) in ["stream_connected", "kafka_reachable"]
            .into_iter()
            .zip(&flags)
        {
            let flag = flag.clone();
            health.probe(name, move || match flag.load(Relaxed) {
                0 => CheckState::Pending,
                1 => CheckState::Ok,
                _ => CheckState::Failing,
            });
        }
        let r = health.report();
        assert!(!r.ready());
        assert_eq!(r.checks[0], ("stream_connected", CheckState::Pending));
        flags[0].store(1, Relaxed);
        flags[1].store(1, Relaxed);
        assert!(health.report().ready());
        flags[1].store(2, Relaxed);
        let r = health.report();
        assert!(!r.ready() && r.live());
        assert_eq!(r.checks[1], ("kafka_reachable", CheckState::Failing));
        let stalled = Heartbeat::new("writer", Duration::from_millis(1));
        health.watch(&stalled);
        flags[1].store(1, Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!health.report().ready(), "a stalled process is not ready");
    }
}
