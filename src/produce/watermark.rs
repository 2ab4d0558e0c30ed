//! The Jetstream cursor that is safe to keep: the position below which every event we read is
//! safe, when Kafka acknowledges batches out of order.
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
//! everything after it again, and nothing read before it is needed. The repeats are dropped by
//! the intake's dedupe. When everything read is safe, the cursor is the last event's
//! `time_us`.
//!
//! "Safe" is for the caller to decide: acknowledged by Kafka, written to the disk spill (the
//! next run drains the spill, so Jetstream need not send those again), or dropped and counted
//! (at the spill's bound: lost either way; holding the cursor back for it would replay ever
//! more on every restart). Memory is 8 bytes per event between `track` and `done`, freed as
//! the oldest become safe.

use std::collections::VecDeque;

/// Marks `time_us` slots that are safe.
const DONE: i64 = i64::MIN;

/// One tracked event; give it back to [`Watermark::done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(u64);

#[derive(Debug, Default)]
pub(crate) struct Watermark {
    /// Token number of `slots[0]`.
    base: u64,
    /// `time_us` of every event from the oldest unsafe one on, [`DONE`] once safe.
    slots: VecDeque<i64>,
    /// `time_us` of the last event tracked.
    last: Option<i64>,
    /// Slots not yet [`DONE`].
    pending: usize,
}

impl Watermark {
    pub(crate) fn new() -> Self {
        Watermark::default()
    }

    /// An event read, in reading order.
    pub(crate) fn track(&mut self, time_us: i64) -> Token {
        let token = Token(self.base + self.slots.len() as u64);
        // DONE is reserved; no real time_us is near it.
        self.slots.push_back(time_us.max(DONE + 1));
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
            if *slot != DONE {
                *slot = DONE;
                self.pending -= 1;
            }
        }
        while self.slots.front() == Some(&DONE) {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Where a restart should resume: the `time_us` of the oldest event not yet safe, or of
    /// the last event when all are; `None` before the first event.
    pub(crate) fn cursor(&self) -> Option<i64> {
        self.slots.front().copied().or(self.last)
    }

    /// Events tracked and not yet safe.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order() {
        let mut w = Watermark::new();
        assert_eq!(w.cursor(), None);
        let a = w.track(100);
        let b = w.track(200);
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
        let mut w = Watermark::new();
        let tokens: Vec<Token> = (0..10).map(|i| w.track(1_000 + i * 10)).collect();
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
        let mut w = Watermark::new();
        let a = w.track(1_000_500);
        let b = w.track(1_000_100);
        let c = w.track(1_000_900);
        w.done(b);
        w.done(c);
        // The oldest unsafe event in reading order is `a`, though `b` has a smaller time:
        // resuming at `a`'s time replays from `a` (Jetstream sends from the first event it saw
        // at or after the cursor), and `b` was safe anyway.
        assert_eq!(w.cursor(), Some(1_000_500));
        w.done(a);
        assert_eq!(w.cursor(), Some(1_000_900));
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
            let mut w = Watermark::new();
            let n = 1 + rand(300);
            let times: Vec<i64> = (0..n)
                .map(|i| i as i64 * 1000 + rand(3000) as i64)
                .collect();
            let tokens: Vec<Token> = times.iter().map(|&t| w.track(t)).collect();
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
