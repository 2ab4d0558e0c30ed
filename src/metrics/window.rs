//! What `consume` saw of its tweets over a short stretch of time: how many, their summed
//! sentiment, their languages and their hashtags. The live page's language mix, sentiment line
//! and top hashtags are made of these.
//!
//! The writer loop owns one [`TweetWindow`] and counts into it without any lock (the same
//! work its stats window does today, so at integration the two share one count: see
//! [`TweetWindow::merge`]). About once a second it hands the window to
//! [`WindowFeed::publish`], which keeps only the [`TOP`] most frequent languages and hashtags,
//! so what the server holds per second stays small whatever the stream's variety.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many languages and hashtags a published second keeps. The page shows the top ten of
/// the last minute; a tag that is never among a second's top 32 is too rare to be one of them.
pub(crate) const TOP: usize = 32;

/// Counts of one stretch of consumed tweets.
#[derive(Debug, Default, Clone)]
pub(crate) struct TweetWindow {
    pub(crate) tweets: u64,
    /// Sum of VADER compound scores (-1..1); the mean is this over `tweets`.
    pub(crate) compound_sum: f64,
    pub(crate) langs: HashMap<String, u64>,
    /// Lowercased, without the `#`.
    pub(crate) hashtags: HashMap<String, u64>,
}

impl TweetWindow {
    /// Counts one tweet. `hashtags` are taken as given (the caller lowercases them once, where
    /// it already does for the stats line).
    pub(crate) fn tweet<'a>(
        &mut self,
        lang: &str,
        compound: f64,
        hashtags: impl IntoIterator<Item = &'a str>,
    ) {
        self.tweets += 1;
        self.compound_sum += compound;
        bump(&mut self.langs, lang, 1);
        for tag in hashtags {
            bump(&mut self.hashtags, tag, 1);
        }
    }

    /// Adds `other`'s counts to this window (one second into the stats line's ten, say).
    pub(crate) fn merge(&mut self, other: &TweetWindow) {
        self.tweets += other.tweets;
        self.compound_sum += other.compound_sum;
        for (k, n) in &other.langs {
            bump(&mut self.langs, k, *n);
        }
        for (k, n) in &other.hashtags {
            bump(&mut self.hashtags, k, *n);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tweets == 0
    }

    /// The mean compound score, or `None` without tweets.
    pub(crate) fn sentiment(&self) -> Option<f64> {
        (self.tweets > 0).then(|| self.compound_sum / self.tweets as f64)
    }

    /// The `k` largest counts, largest first, ties by name (stable output for tests and eyes).
    pub(crate) fn top(counts: &HashMap<String, u64>, k: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(&String, u64)> = counts.iter().map(|(a, b)| (a, *b)).collect();
        let order = |a: &(&String, u64), b: &(&String, u64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
        if v.len() > k {
            // Partial selection first: a busy second can hold thousands of distinct tags.
            v.select_nth_unstable_by(k, order);
            v.truncate(k);
        }
        v.sort_by(order);
        v.into_iter().map(|(a, b)| (a.clone(), b)).collect()
    }

    /// This window with only its [`TOP`] languages and hashtags kept.
    fn trimmed(&self) -> Published {
        Published {
            tweets: self.tweets,
            compound_sum: self.compound_sum,
            langs: Self::top(&self.langs, TOP),
            hashtags: Self::top(&self.hashtags, TOP),
        }
    }
}

fn bump(map: &mut HashMap<String, u64>, key: &str, n: u64) {
    // Look up by &str first: no allocation for a key already there, the common case.
    match map.get_mut(key) {
        Some(v) => *v += n,
        None => {
            map.insert(key.to_owned(), n);
        }
    }
}

/// A published stretch, trimmed to its top entries; what the history keeps per second.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Published {
    pub(crate) tweets: u64,
    pub(crate) compound_sum: f64,
    pub(crate) langs: Vec<(String, u64)>,
    pub(crate) hashtags: Vec<(String, u64)>,
}

impl Published {
    /// Adds another trimmed stretch (two publishes in one sampling second).
    fn absorb(&mut self, other: Published) {
        self.tweets += other.tweets;
        self.compound_sum += other.compound_sum;
        for (list, more) in [
            (&mut self.langs, other.langs),
            (&mut self.hashtags, other.hashtags),
        ] {
            for (k, n) in more {
                match list.iter_mut().find(|(a, _)| *a == k) {
                    Some((_, m)) => *m += n,
                    None => list.push((k, n)),
                }
            }
        }
    }

    pub(crate) fn sentiment(&self) -> Option<f64> {
        (self.tweets > 0).then(|| self.compound_sum / self.tweets as f64)
    }
}

/// Where the writer loop hands its windows; the sampler takes what accumulated once a second.
/// Cloning shares the slot. One short lock per publish and per sample.
#[derive(Clone, Default)]
pub(crate) struct WindowFeed {
    pending: Arc<Mutex<Option<Published>>>,
}

impl WindowFeed {
    /// Hands over `window`'s counts (trimmed to the top entries). The caller then clears or
    /// merges its window as it likes; an empty window costs nothing.
    pub(crate) fn publish(&self, window: &TweetWindow) {
        if window.is_empty() {
            return;
        }
        let trimmed = window.trimmed();
        let mut slot = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(p) => p.absorb(trimmed),
            None => *slot = Some(trimmed),
        }
    }

    /// What was published since the last call.
    pub(crate) fn take(&self) -> Option<Published> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merges_and_keeps_the_top_entries() {
        let mut w = TweetWindow::default();
        w.tweet("en", 0.5, ["rust", "kafka"]);
        w.tweet("en", -0.25, ["rust"]);
        w.tweet("es", 0.0, []);
        assert_eq!(w.tweets, 3);
        assert!((w.sentiment().unwrap() - 0.25 / 3.0).abs() < 1e-12);
        assert_eq!(
            TweetWindow::top(&w.hashtags, 1),
            vec![("rust".to_string(), 2)]
        );
        let mut ten = TweetWindow::default();
        ten.merge(&w);
        ten.merge(&w);
        assert_eq!(ten.tweets, 6);
        assert_eq!(ten.langs["en"], 4);
        assert_eq!(ten.hashtags["kafka"], 2);
    }

    #[test]
    fn top_orders_by_count_then_name_and_bounds_the_length() {
        let mut m = HashMap::new();
        for i in 0..1000u64 {
            m.insert(format!("t{i:04}"), i % 7);
        }
        let top = TweetWindow::top(&m, 5);
        assert_eq!(top.len(), 5);
        assert!(top.iter().all(|(_, n)| *n == 6));
        let names: Vec<&str> = top.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(names, ["t0006", "t0013", "t0020", "t0027", "t0034"]);
    }

    #[test]
    fn a_feed_trims_and_adds_up_what_was_published_between_samples() {
        let feed = WindowFeed::default();
        assert_eq!(feed.take(), None);
        let mut w = TweetWindow::default();
        for i in 0..100 {
            let tag = format!("tag{i}");
            w.tweet("en", 1.0, [tag.as_str(), "common"]);
        }
        feed.publish(&w);
        feed.publish(&TweetWindow::default());
        let mut second = TweetWindow::default();
        second.tweet("fr", -1.0, ["common", "new"]);
        feed.publish(&second);
        let p = feed.take().unwrap();
        assert_eq!(p.tweets, 101);
        assert!((p.sentiment().unwrap() - 99.0 / 101.0).abs() < 1e-12);
        assert_eq!(p.hashtags[0], ("common".to_string(), 101));
        // Top 32 of the first window, plus "new" from the second.
        assert_eq!(p.hashtags.len(), TOP + 1);
        assert_eq!(p.langs, vec![("en".into(), 100), ("fr".into(), 1)]);
        assert_eq!(feed.take(), None);
    }
}
