//! The last minutes, one point per second, for the live page: a page opened late still draws
//! the chart from the start of its window. A fixed ring: [`CAPACITY`] points, each with at most
//! [`super::window::TOP`] languages and hashtags, so its memory is bounded (~1 MiB at worst).
//!
//! Points are made by the metrics server's own thread once a second ([`super::Metrics::sample`])
//! from the same snapshot `/metrics` reads, so a rate on the page is a difference of the
//! counters Prometheus sees.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::window::{Published, TweetWindow};

/// Ten minutes of seconds.
pub(crate) const CAPACITY: usize = 600;

/// One second of the live page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// Increases by one per point; the page asks for the points after the last it has.
    pub(crate) seq: u64,
    /// Wall clock, milliseconds since the Unix epoch.
    pub(crate) t_ms: u64,
    /// Records per second of the main counter since the previous point (produce: accepted;
    /// consume: tweets written), and of the second one (produce: delivered).
    pub(crate) rate: f64,
    pub(crate) rate2: Option<f64>,
    /// Produce: records accepted but not yet acknowledged; consume: Kafka lag summed over the
    /// owned partitions.
    pub(crate) lag: i64,
    /// Consume: what its writer published for this second.
    pub(crate) window: Option<Published>,
}

/// What the sampler reads each second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    pub(crate) count: u64,
    pub(crate) count2: Option<u64>,
    pub(crate) lag: i64,
}

#[derive(Debug, Default)]
pub(crate) struct History {
    points: VecDeque<Point>,
    next_seq: u64,
    last: Option<(Instant, Reading)>,
}

impl History {
    /// Adds the point for `reading` taken at `now` (`t_ms` on the wall clock). The first
    /// reading only sets the baseline for rates (it has no previous one), and is kept as a
    /// point with rate 0.
    pub(crate) fn record(
        &mut self,
        now: Instant,
        t_ms: u64,
        reading: Reading,
        window: Option<Published>,
    ) {
        let (rate, rate2) = match self.last {
            Some((then, prev)) => {
                let secs = now.duration_since(then).as_secs_f64().max(1e-3);
                let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                (
                    per_s(reading.count, prev.count),
                    reading.count2.zip(prev.count2).map(|(a, b)| per_s(a, b)),
                )
            }
            None => (0.0, reading.count2.map(|_| 0.0)),
        };
        self.last = Some((now, reading));
        if self.points.len() == CAPACITY {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            seq: self.next_seq,
            t_ms,
            rate,
            rate2,
            lag: reading.lag,
            window,
        });
        self.next_seq += 1;
    }

    /// The points after `after` (all of them for `None`), oldest first.
    pub(crate) fn since(&self, after: Option<u64>) -> impl Iterator<Item = &Point> {
        self.points
            .iter()
            .filter(move |p| after.is_none_or(|a| p.seq > a))
    }

    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.points.back().map(|p| p.seq)
    }

    /// The last `seconds` points' windows added up (the page's language mix and top hashtags).
    pub(crate) fn window(&self, seconds: usize) -> TweetWindow {
        let mut w = TweetWindow {
            langs: HashMap::new(),
            hashtags: HashMap::new(),
            ..Default::default()
        };
        for p in self.points.iter().rev().take(seconds) {
            if let Some(pw) = &p.window {
                w.tweets += pw.tweets;
                w.compound_sum += pw.compound_sum;
                for (k, n) in &pw.langs {
                    *w.langs.entry(k.clone()).or_default() += n;
                }
                for (k, n) in &pw.hashtags {
                    *w.hashtags.entry(k.clone()).or_default() += n;
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reading(count: u64, lag: i64) -> Reading {
        Reading {
            count,
            count2: Some(count / 2),
            lag,
        }
    }

    #[test]
    fn rates_are_differences_over_the_real_interval_and_the_ring_is_bounded() {
        let mut h = History::default();
        let t0 = Instant::now();
        h.record(t0, 0, reading(100, 5), None);
        h.record(t0 + Duration::from_millis(500), 500, reading(200, 7), None);
        h.record(
            t0 + Duration::from_millis(1500),
            1500,
            reading(200, 0),
            None,
        );
        let p: Vec<&Point> = h.since(None).collect();
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].rate, p[0].rate2), (0.0, Some(0.0)));
        assert_eq!((p[1].rate, p[1].rate2), (200.0, Some(100.0)));
        assert_eq!((p[2].rate, p[2].lag), (0.0, 0));
        assert_eq!(h.since(Some(1)).map(|p| p.seq).collect::<Vec<_>>(), [2]);
        for i in 0..CAPACITY as u64 {
            h.record(
                t0 + Duration::from_secs(2 + i),
                0,
                reading(300 + i, 0),
                None,
            );
        }
        assert_eq!(h.since(None).count(), CAPACITY);
        assert_eq!(h.since(None).next().unwrap().seq, 3);
        assert_eq!(h.last_seq(), Some(CAPACITY as u64 + 2));
    }

    #[test]
    fn the_window_adds_up_the_last_seconds_only() {
        let mut h = History::default();
        let t0 = Instant::now();
        for (i, (lang, tag)) in [("en", "a"), ("es", "b"), ("es", "b")].iter().enumerate() {
            let mut w = TweetWindow::default();
            w.tweet(lang, 0.5, [*tag]);
            let feed = crate::metrics::window::WindowFeed::default();
            feed.publish(&w);
            h.record(
                t0 + Duration::from_secs(i as u64),
                0,
                reading(0, 0),
                feed.take(),
            );
        }
        h.record(t0 + Duration::from_secs(3), 0, reading(0, 0), None);
        let w = h.window(3);
        assert_eq!(w.tweets, 2);
        assert_eq!(w.langs.get("es"), Some(&2));
        assert_eq!(w.langs.get("en"), None);
        assert_eq!(h.window(10).tweets, 3);
    }
}
