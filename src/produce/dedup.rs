//! Dropping records we already produced, by the identity their source gives them, over a
//! bounded window of recent identities.
//!
//! Why: a live source that replays on reconnect repeats what we read before the connection
//! dropped. The v2 stream's backfill (`backfill_minutes`) sends again every tweet of the
//! minutes it covers, and Twitter does not deduplicate; without this, each reconnect would put
//! a few minutes of tweets into the topic twice.
//!
//! Bounded twice, so memory never grows with the stream: identities older than the window are
//! forgotten (a backfill reaches back at most 5 minutes, so the window only has to be longer
//! than that), and past `capacity` the oldest go first whatever their age. A numeric id (a
//! tweet id fits in a `u64`) is kept as itself; any other identity as a 64-bit hash, where a
//! collision among the few hundred thousand identities of a window is vanishingly unlikely.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Dedup {
    window: Duration,
    capacity: usize,
    ids: HashSet<u64>,
    /// The same ids in the order they were first seen, for expiry.
    order: VecDeque<(Instant, u64)>,
}

impl Dedup {
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Dedup {
            window,
            capacity: capacity.max(1),
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether this id was produced within the window.
    pub(crate) fn seen(&mut self, id: &[u8], now: Instant) -> bool {
        self.expire(now);
        key(id).is_some_and(|id| self.ids.contains(&id))
    }

    /// Remembers an id that went into the channel.
    pub(crate) fn insert(&mut self, id: &[u8], now: Instant) {
        if let Some(id) = key(id) {
            self.insert_key(id, now);
        }
    }

    /// Remembers an identity by its [`key`] (a previous run's, from the state file).
    pub(crate) fn insert_key(&mut self, id: u64, now: Instant) {
        if self.ids.insert(id) {
            self.order.push_back((now, id));
            while self.order.len() > self.capacity {
                self.forget_oldest();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
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

/// What an identity is remembered by: a numeric id as itself, anything else as its hash.
/// Stable across runs, so a previous run's keys can be kept in the state file.
pub(crate) fn key(id: &[u8]) -> Option<u64> {
    if id.is_empty() {
        return None;
    }
    let numeric = id.len() <= 20 && id.iter().all(u8::is_ascii_digit);
    if let Some(n) = numeric
        .then(|| std::str::from_utf8(id).ok()?.parse().ok())
        .flatten()
    {
        return Some(n);
    }
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same identity hashes alike in every run (of binaries built
    // by the same Rust: the standard library keeps the right to change it, and a restart
    // across such an upgrade would only let one rewind's overlap through again).
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    // The top bit set keeps hashes apart from numeric ids, which never reach it.
    Some(h.finish() | 1 << 63)
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
        // Any other identity (a Bluesky event's did+rkey+rev) is remembered by its hash.
        d.insert(b"did:plc:abc/app.bsky.feed.post/3k/rev1", t0);
        assert!(d.seen(b"did:plc:abc/app.bsky.feed.post/3k/rev1", t0));
        assert!(!d.seen(b"did:plc:abc/app.bsky.feed.post/3k/rev2", t0));
        assert!(!d.seen(b"", t0), "an empty identity is never a repeat");
    }
}
