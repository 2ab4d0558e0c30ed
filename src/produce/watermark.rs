//! The Jetstream cursor that is safe to keep: the position below which every event we read is
//! safe, when Kafka acknowledges batches out of order; and the identities of the safe events
//! just after it, which a restart must not produce again.
//!
//! Why it is not simply "the `time_us` of the last acknowledged event": records go to several
//! partitions, each acknowledged on its own, so event 1,000 may be acknowledged while event
//! 900 (another partition, a retried batch) is still in flight. Keeping 1,000's `time_us` and
//! crashing would lose 900. And `time_us` is not even in order within the stream (Jetstream
//! stamps events as it sees them, a few milliseconds out of order), so no single comparison of
//! times can tell what is safe.
//!
//! So positions are kept in *reading order*: [`Watermark::track`] gives each event read a
//! token, [`Watermark::done`] marks it safe (in any order), and [`Watermark::cursor`] is the
//! `time_us` of the oldest event, in reading order, that is not safe yet: Jetstream replays
//! from the first event it saw at or after a cursor, so resuming there sends that event and
//! everything after it again, and nothing read before it is needed. When everything read is
//! safe, the cursor is the last event's `time_us`.
//!
//! A restart resumes a few seconds before the cursor, so it is sent again some events that
//! are safe already: those before the cursor, and those after it that were acknowledged
//! early. [`Watermark::recent`] lists their dedupe keys (see [`super::dedup::key`]) for the
//! state file, and the next run's dedupe starts with them: the overlap is dropped, and an event
//! that was in flight when the process died is not (it was never safe, so it is not listed).
//!
//! "Safe" is the caller's decision. A [`Mark`] attached to the record marks its event done
//! when the record is dropped, whichever way it leaves the pipeline: acknowledged by Kafka,
//! written to the disk spill (the next run drains the spill, so Jetstream need not send those
//! again), or dropped and counted at the spill's bound (lost either way; holding the cursor
//! back for it would replay ever more on every restart). A record Kafka did not take, with no
//! spill to keep it, is [`Mark::hold`]: its event is never done, so the kept cursor stays
//! before it and the next run reads it again. Memory: a few words per event in flight, and per
//! event of the recent window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// At most this many keys are kept for a restart: the window's worth at ten times the whole
/// network's rate. Past it (a replay catching up at full speed) the oldest go, and a restart
/// then lets their repeats through; the state file stays a few MB at most.
pub(crate) const MAX_RECENT: usize = 100_000;

/// One tracked event; give it back to [`Watermark::done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(u64);

#[derive(Debug, Clone, Copy)]
struct Slot {
    time_us: i64,
    key: Option<u64>,
    done: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Watermark {
    /// Token number of `slots[0]`.
    base: u64,
    /// Every event from the oldest unsafe one on.
    slots: VecDeque<Slot>,
    /// Events before the oldest unsafe one (all safe), newest last, kept while they are
    /// within `window_us` of the cursor.
    passed: VecDeque<(i64, u64)>,
    /// `time_us` of the last event tracked.
    last: Option<i64>,
    /// Slots not yet done.
    pending: usize,
    /// How far before the cursor [`Watermark::recent`] reaches.
    window_us: i64,
}

impl Watermark {
    /// A watermark whose [`Watermark::recent`] covers `window_us` before the cursor.
    pub(crate) fn new(window_us: i64) -> Self {
        Watermark {
            window_us,
            ..Watermark::default()
        }
    }

    /// An event read, in reading order, with its dedupe key if it has one.
    pub(crate) fn track(&mut self, time_us: i64, key: Option<u64>) -> Token {
        let token = Token(self.base + self.slots.len() as u64);
        self.slots.push_back(Slot {
            time_us,
            key,
            done: false,
        });
        self.last = Some(time_us);
        self.pending += 1;
        token
    }

    /// The event is safe. Tokens may come back in any order; one given back twice is ignored.
    pub(crate) fn done(&mut self, token: Token) {
        let Some(at) = token.0.checked_sub(self.base) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(at as usize) {
            if !slot.done {
                slot.done = true;
                self.pending -= 1;
            }
        }
        while self.slots.front().is_some_and(|s| s.done) {
            let s = self.slots.pop_front().expect("a front slot");
            self.base += 1;
            if let Some(key) = s.key {
                self.passed.push_back((s.time_us, key));
                if self.passed.len() > MAX_RECENT {
                    self.passed.pop_front();
                }
            }
        }
        if let Some(cursor) = self.cursor() {
            let oldest = cursor.saturating_sub(self.window_us);
            while self.passed.front().is_some_and(|&(t, _)| t < oldest) {
                self.passed.pop_front();
            }
        }
    }

    /// Where a restart should resume: the `time_us` of the oldest event not yet safe, or of
    /// the last event when all are; `None` before the first event.
    pub(crate) fn cursor(&self) -> Option<i64> {
        self.slots.front().map(|s| s.time_us).or(self.last)
    }

    /// The dedupe keys of the safe events a restart at [`Watermark::cursor`] would be sent
    /// again: those within the window before it, and the safe ones after it; the newest
    /// [`MAX_RECENT`] of them.
    pub(crate) fn recent(&self) -> Vec<u64> {
        let oldest = self
            .cursor()
            .map_or(i64::MIN, |c| c.saturating_sub(self.window_us));
        let mut keys: Vec<u64> = self
            .passed
            .iter()
            .filter(|&&(t, _)| t >= oldest)
            .map(|&(_, k)| k)
            .chain(self.slots.iter().filter(|s| s.done).filter_map(|s| s.key))
            .collect();
        if keys.len() > MAX_RECENT {
            keys.drain(..keys.len() - MAX_RECENT);
        }
        keys
    }

    /// Events tracked and not yet safe.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }
}

/// A watermark shared by the intake (which tracks) and every record's [`Mark`].
#[derive(Debug, Clone)]
pub(crate) struct Shared(Arc<Mutex<Watermark>>);

impl Shared {
    pub(crate) fn new(window_us: i64) -> Self {
        Shared(Arc::new(Mutex::new(Watermark::new(window_us))))
    }

    /// Tracks an event; its record carries the mark until it is safe.
    pub(crate) fn mark(&self, time_us: i64, key: Option<u64>) -> Arc<Mark> {
        let token = self.lock().track(time_us, key);
        Arc::new(Mark {
            watermark: self.clone(),
            token,
            held: AtomicBool::new(false),
        })
    }

    /// The cursor and the recent keys, taken together.
    pub(crate) fn snapshot(&self) -> (Option<i64>, Vec<u64>) {
        let w = self.lock();
        (w.cursor(), w.recent())
    }

    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.lock().pending()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watermark> {
        // A panic elsewhere while holding it leaves consistent data (each step is complete).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks its event safe when dropped, unless held (see the module doc).
#[derive(Debug)]
pub(crate) struct Mark {
    watermark: Shared,
    token: Token,
    held: AtomicBool,
}

impl Mark {
    /// The event is not safe and will not be: the kept cursor stays before it for this run.
    pub(crate) fn hold(&self) {
        self.held.store(true, Relaxed);
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        if !self.held.load(Relaxed) {
            self.watermark.lock().done(self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order() {
        let mut w = Watermark::new(0);
        assert_eq!(w.cursor(), None);
        let a = w.track(100, None);
        let b = w.track(200, None);
        assert_eq!(w.cursor(), Some(100));
        w.done(a);
        assert_eq!(w.cursor(), Some(200));
        w.done(b);
        assert_eq!(w.cursor(), Some(200), "all safe: the last event");
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn out_of_order_acknowledgements_hold_the_cursor_at_the_oldest_unsafe_event() {
        // Two partitions: even events on one, odd on the other; the odd one is slow.
        let mut w = Watermark::new(0);
        let tokens: Vec<Token> = (0..10).map(|i| w.track(1_000 + i * 10, None)).collect();
        for t in tokens.iter().step_by(2) {
            w.done(*t);
        }
        assert_eq!(w.cursor(), Some(1_010), "event 1 holds it back");
        assert_eq!(w.pending(), 5);
        w.done(tokens[1]);
        assert_eq!(w.cursor(), Some(1_030));
        w.done(tokens[1]);
        w.done(tokens[0]);
        assert_eq!(w.cursor(), Some(1_030), "repeats change nothing");
        for t in tokens.iter().skip(3).step_by(2) {
            w.done(*t);
        }
        assert_eq!(w.cursor(), Some(1_090));
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn reading_order_not_time_order() {
        // time_us is a little out of order in the stream, as Jetstream sends it.
        let mut w = Watermark::new(0);
        let a = w.track(1_000_500, None);
        let b = w.track(1_000_100, None);
        let c = w.track(1_000_900, None);
        w.done(b);
        w.done(c);
        // The oldest unsafe event in reading order is `a`, though `b` has a smaller time:
        // resuming at `a`'s time replays from `a` (Jetstream sends from the first event it saw
        // at or after the cursor), and `b` was safe anyway.
        assert_eq!(w.cursor(), Some(1_000_500));
        w.done(a);
        assert_eq!(w.cursor(), Some(1_000_900));
    }

    #[test]
    fn recent_lists_the_safe_events_a_restart_would_repeat() {
        let mut w = Watermark::new(5_000_000);
        // Events a second apart, keys = their number.
        let t: Vec<Token> = (0..20)
            .map(|i| w.track(1_000_000_000 + i * 1_000_000, Some(i as u64)))
            .collect();
        for &i in &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15] {
            w.done(t[i]);
        }
        // Cursor at event 11 (not safe): the window reaches 5 s back, to event 6; 12 and 15
        // are safe after it; 11, 13, 14 and 16.. are not listed (a restart must send them).
        assert_eq!(w.cursor(), Some(1_011_000_000));
        let mut recent = w.recent();
        recent.sort_unstable();
        assert_eq!(recent, vec![6, 7, 8, 9, 10, 12, 15]);
        // Events without a key are tracked but never listed.
        let n = w.track(1_030_000_000, None);
        w.done(n);
        assert_eq!(w.recent().len(), 7);
    }

    #[test]
    fn the_kept_keys_are_bounded_newest_kept() {
        let mut w = Watermark::new(i64::MAX / 2);
        let n = MAX_RECENT as u64 + 10;
        for i in 0..n {
            let t = w.track(1_000_000 + i as i64, Some(i));
            w.done(t);
        }
        let recent = w.recent();
        assert_eq!(recent.len(), MAX_RECENT);
        assert_eq!((recent[0], *recent.last().unwrap()), (10, n - 1));
    }

    #[test]
    fn marks_make_their_event_safe_when_the_record_goes() {
        let shared = Shared::new(10_000_000);
        let a = shared.mark(100, Some(1));
        let b = shared.mark(200, Some(2));
        let b2 = b.clone();
        assert_eq!(shared.snapshot(), (Some(100), vec![]));
        drop(b);
        assert_eq!(shared.pending(), 2, "a clone still holds it");
        drop(b2);
        assert_eq!(shared.snapshot(), (Some(100), vec![2]));
        drop(a);
        let (cursor, mut keys) = shared.snapshot();
        keys.sort_unstable();
        assert_eq!((cursor, keys), (Some(200), vec![1, 2]));
        assert_eq!(shared.pending(), 0);
        // A record Kafka did not take (and no spill kept): its event holds the cursor.
        let c = shared.mark(300, Some(3));
        let d = shared.mark(400, Some(4));
        c.hold();
        drop(c);
        drop(d);
        let (cursor, mut keys) = shared.snapshot();
        keys.sort_unstable();
        assert_eq!((cursor, keys), (Some(300), vec![1, 2, 4]));
    }

    /// Random acknowledgement orders: the cursor is always the time of the first unsafe event
    /// in reading order, and memory follows the unsafe window.
    #[test]
    fn random_orders() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200 {
            let mut w = Watermark::new(0);
            let n = 1 + rand(300);
            let times: Vec<i64> = (0..n)
                .map(|i| i as i64 * 1000 + rand(3000) as i64)
                .collect();
            let tokens: Vec<Token> = times.iter().map(|&t| w.track(t, None)).collect();
            let mut safe = vec![false; n];
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rand(i + 1));
            }
            for &i in &order {
                w.done(tokens[i]);
                safe[i] = true;
                let expect = match safe.iter().position(|s| !s) {
                    Some(first) => times[first],
                    None => times[n - 1],
                };
                assert_eq!(w.cursor(), Some(expect));
                assert_eq!(w.pending(), safe.iter().filter(|s| !**s).count());
            }
            assert!(w.slots.is_empty());
        }
    }
}
