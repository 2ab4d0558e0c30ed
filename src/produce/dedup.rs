//! Dropping tweets we already produced, by tweet id, over a bounded window of recent ids.
//!
//! Why: the v2 stream's backfill (`backfill_minutes` on reconnect) sends again every tweet of
//! the minutes it covers, and those minutes overlap what we read before the connection
//! dropped; Twitter does not deduplicate. Without this, each reconnect would put a few
//! minutes of tweets into the topic twice.
//!
//! Bounded twice, so memory never grows with the stream: ids older than the window are
//! forgotten (a backfill reaches back at most 5 minutes, so the window only has to be longer
//! than that), and past `capacity` ids the oldest go first whatever their age. Ids are the
//! numeric tweet ids (they fit in a `u64`); anything else is never treated as a duplicate.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Dedup {
    window: Duration,
    capacity: usize,
    ids: HashSet<u64>,
    /// The same ids in the order they were first seen, for expiry.
    order: VecDeque<(Instant, u64)>,
}

impl Dedup {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Dedup {
            window,
            capacity: capacity.max(1),
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether this id was produced within the window.
    pub fn seen(&mut self, id: &[u8], now: Instant) -> bool {
        self.expire(now);
        parse_id(id).is_some_and(|id| self.ids.contains(&id))
    }

    /// Remembers an id that went into the channel.
    pub fn insert(&mut self, id: &[u8], now: Instant) {
        let Some(id) = parse_id(id) else { return };
        if self.ids.insert(id) {
            self.order.push_back((now, id));
            while self.order.len() > self.capacity {
                self.forget_oldest();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.window)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, id)) = self.order.pop_front() {
            self.ids.remove(&id);
        }
    }
}

fn parse_id(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 20 || !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(id).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(600), 100);
        assert!(!d.seen(b"1500", t0));
        d.insert(b"1500", t0);
        assert!(d.seen(b"1500", t0 + Duration::from_secs(300)));
        assert!(!d.seen(b"1501", t0 + Duration::from_secs(300)));
        assert!(!d.seen(b"1500", t0 + Duration::from_secs(601)));
        assert!(d.is_empty());
    }

    #[test]
    fn capacity_bounds_memory_oldest_first() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(600), 3);
        for id in [b"1", b"2", b"3", b"4"] {
            d.insert(id, t0);
        }
        assert_eq!(d.len(), 3);
        assert!(!d.seen(b"1", t0));
        assert!(d.seen(b"4", t0));
        // Not an id: never a duplicate, never stored.
        d.insert(b"x1", t0);
        assert!(!d.seen(b"x1", t0));
    }
}
