//! Liveness and readiness, as the pipeline's loops report them.
//!
//! - A [`Heartbeat`] per loop (the stream reader, the producer, the consume writer, …): the
//!   loop calls [`Heartbeat::beat`] each time round, and `/healthz` fails when a loop has not
//!   come round within its allowance. A loop about to wait on purpose (a back-off of minutes)
//!   says so with [`Heartbeat::quiet_for`], so a long but legitimate wait is not a stall; a
//!   loop that has finished its work says [`Heartbeat::retire`].
//! - A [`Readiness`] per condition (stream connected, Kafka reachable, sink writable):
//!   `/readyz` succeeds when every condition holds.
//!
//! Both are one relaxed atomic store per report, cheap enough for a loop's every turn.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The loops and conditions of one process. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Health {
    base: Instant,
    beats: Arc<Mutex<Vec<Heartbeat>>>,
    checks: Arc<Mutex<Vec<Readiness>>>,
}

struct Beat {
    name: &'static str,
    base: Instant,
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
    /// The loop came round; the next beat is due within its allowance.
    pub(crate) fn beat(&self) {
        let now = self.now_ms();
        self.0.last_ms.store(now, Relaxed);
        self.0.due_ms.store(now + self.0.allowance_ms, Relaxed);
    }

    /// The loop is about to wait `wait` on purpose (a back-off): the next beat is due after
    /// that wait plus its allowance.
    pub(crate) fn quiet_for(&self, wait: Duration) {
        let now = self.now_ms();
        self.0.last_ms.store(now, Relaxed);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX / 4);
        self.0.due_ms.store(
            now + wait_ms.min(u64::MAX / 4) + self.0.allowance_ms,
            Relaxed,
        );
    }

    /// The loop is done (a replay that reached the end of its file); no longer checked.
    pub(crate) fn retire(&self) {
        self.0.retired.store(true, Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.0.base.elapsed().as_millis() as u64
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

struct Check {
    name: &'static str,
    state: AtomicU8,
}

/// One readiness condition. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Readiness(Arc<Check>);

impl Readiness {
    pub(crate) fn set(&self, ok: bool) {
        let state = if ok {
            CheckState::Ok
        } else {
            CheckState::Failing
        };
        self.0.state.store(state as u8, Relaxed);
    }

    fn get(&self) -> CheckState {
        match self.0.state.load(Relaxed) {
            0 => CheckState::Pending,
            1 => CheckState::Ok,
            _ => CheckState::Failing,
        }
    }
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
        Health {
            base: Instant::now(),
            beats: Arc::default(),
            checks: Arc::default(),
        }
    }

    /// A loop named `name` that must come round at least every `allowance`. Counts as having
    /// just beaten.
    pub(crate) fn heartbeat(&self, name: &'static str, allowance: Duration) -> Heartbeat {
        let hb = Heartbeat(Arc::new(Beat {
            name,
            base: self.base,
            allowance_ms: allowance.as_millis().max(1) as u64,
            last_ms: AtomicU64::new(0),
            due_ms: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }));
        hb.beat();
        lock(&self.beats).push(hb.clone());
        hb
    }

    /// A readiness condition named `name`, pending until first set.
    pub(crate) fn readiness(&self, name: &'static str) -> Readiness {
        let r = Readiness(Arc::new(Check {
            name,
            state: AtomicU8::new(CheckState::Pending as u8),
        }));
        lock(&self.checks).push(r.clone());
        r
    }

    pub(crate) fn report(&self) -> Report {
        let now = self.base.elapsed().as_millis() as u64;
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
            .map(|c| (c.0.name, c.get()))
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

    #[test]
    fn a_loop_that_stops_beating_makes_the_process_not_live() {
        let health = Health::new();
        let fast = health.heartbeat("fast", Duration::from_millis(30));
        let slow = health.heartbeat("slow", Duration::from_secs(60));
        assert!(health.report().live());
        std::thread::sleep(Duration::from_millis(60));
        slow.beat();
        let r = health.report();
        assert!(!r.live());
        let l = r.loops.iter().find(|l| l.name == "fast").unwrap();
        assert!(l.overdue_s.unwrap() > 0.0 && l.age_s >= 0.06, "{l:?}");
        fast.beat();
        assert!(health.report().live());
    }

    #[test]
    fn announced_waits_and_retired_loops_are_not_stalls() {
        let health = Health::new();
        let hb = health.heartbeat("stream", Duration::from_millis(20));
        hb.quiet_for(Duration::from_secs(600));
        std::thread::sleep(Duration::from_millis(40));
        assert!(health.report().live());
        let done = health.heartbeat("replay", Duration::from_millis(20));
        done.retire();
        std::thread::sleep(Duration::from_millis(40));
        let r = health.report();
        assert!(r.live(), "{r:?}");
        assert!(r.loops.iter().any(|l| l.name == "replay" && l.retired));
    }

    #[test]
    fn ready_only_when_every_condition_holds() {
        let health = Health::new();
        assert!(health.report().ready(), "nothing to wait for");
        let stream = health.readiness("stream_connected");
        let kafka = health.readiness("kafka_reachable");
        let r = health.report();
        assert!(!r.ready());
        assert_eq!(r.checks[0], ("stream_connected", CheckState::Pending));
        stream.set(true);
        kafka.set(true);
        assert!(health.report().ready());
        kafka.set(false);
        let r = health.report();
        assert!(!r.ready() && r.live());
        assert_eq!(r.checks[1], ("kafka_reachable", CheckState::Failing));
    }
}
