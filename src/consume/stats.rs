//! What the consumer counts: the run's totals, the stats window (tweets per second, the
//! language mix, mean sentiment, top hashtags, lag), the periodic stats line and the summary.
//!
//! The per-tweet facts the window needs are gathered beside the enrichment, on the
//! partition's task, into a few buffers per fetch ([`Observed`]), not per-tweet `String`s: a
//! string allocated on one thread and freed on another takes the allocator's lock on the
//! other thread's arena, and at the consumer's rate those cross-thread frees queued up
//! (docs/performance.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::enrich::Outcome;
use crate::logging::tenths;
use crate::metrics::{self, CheckState, ConsumeHandles, Heartbeat, Metrics, MetricsError};

/// What the stats count for each record of one fetch, in offset order.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    seen: Vec<Seen>,
    /// Each tweet's language, then its hashtags lowercased, back to back.
    words: String,
    /// End of each entry in `words`.
    word_ends: Vec<usize>,
}

#[derive(Debug)]
enum Seen {
    /// `words` are the indices in [`Observed::word_ends`] of the tweet's language and, after
    /// it, its hashtags.
    Tweet {
        compound: f64,
        words: std::ops::Range<usize>,
    },
    Control,
    Error,
}

impl Observed {
    pub(crate) fn with_capacity(records: usize) -> Self {
        Observed {
            seen: Vec::with_capacity(records),
            words: String::with_capacity(records * 16),
            word_ends: Vec::with_capacity(records * 3),
        }
    }

    /// Notes what one record turned out to be.
    pub(crate) fn push(&mut self, outcome: &Outcome) {
        let seen = match outcome {
            Outcome::Tweet(t) => {
                let first = self.word_ends.len();
                self.words.push_str(&t.lang);
                self.word_ends.push(self.words.len());
                for h in &t.hashtags {
                    if h.is_ascii() {
                        self.words.extend(h.chars().map(|c| c.to_ascii_lowercase()));
                    } else {
                        self.words.push_str(&h.to_lowercase());
                    }
                    self.word_ends.push(self.words.len());
                }
                Seen::Tweet {
                    compound: t.sentiment.compound,
                    words: first..self.word_ends.len(),
                }
            }
            Outcome::Control { .. } => Seen::Control,
            Outcome::Invalid { .. } => Seen::Error,
        };
        self.seen.push(seen);
    }

    fn word(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.word_ends[i - 1] };
        &self.words[start..self.word_ends[i]]
    }
}

/// Counters of the current stats window: the same type the live page's seconds are counted
/// in, so the writer counts each tweet once for both (see [`Live`]).
pub(crate) type Window = crate::metrics::TweetWindow;

/// Counters of the whole run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Totals {
    pub(crate) written: u64,
    pub(crate) tweets: u64,
    pub(crate) controls: u64,
    pub(crate) errors: u64,
}

impl Totals {
    /// Counts record `i` of a fetch, once written, in the totals and the window.
    pub(crate) fn count(&mut self, observed: &Observed, i: usize, window: &mut Window) {
        self.written += 1;
        match &observed.seen[i] {
            Seen::Tweet { compound, words } => {
                self.tweets += 1;
                let tags = (words.start + 1..words.end).map(|w| observed.word(w));
                window.tweet(observed.word(words.start), *compound, tags);
            }
            Seen::Control => self.controls += 1,
            Seen::Error => self.errors += 1,
        }
    }
}

/// Where the consumer stands when a stats line is written.
pub(crate) struct At<'a> {
    pub(crate) totals: &'a Totals,
    /// The partitions of the current assignment, each with its next offset.
    pub(crate) next: &'a BTreeMap<i32, i64>,
    pub(crate) high: &'a BTreeMap<i32, i64>,
    pub(crate) generation: Option<i32>,
}

/// The stats line of one window.
pub(crate) fn log(w: &Window, elapsed: Duration, at: &At<'_>) {
    let (totals, next, high) = (at.totals, at.next, at.high);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let lag: Vec<String> = next
        .iter()
        .map(|(p, n)| format!("{p}:{}", high.get(p).map_or(0, |h| (h - n).max(0))))
        .collect();
    let top = |m: &HashMap<String, u64>, k: usize| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = m.iter().map(|(a, b)| (a.clone(), *b)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    };
    let langs: Vec<String> = top(&w.langs, 5)
        .into_iter()
        .map(|(l, n)| format!("{l} {:.0}%", 100.0 * n as f64 / w.tweets.max(1) as f64))
        .collect();
    let tags: Vec<String> = top(&w.hashtags, 5)
        .into_iter()
        .map(|(t, n)| format!("#{t} {n}"))
        .collect();
    let mean = if w.tweets > 0 {
        w.compound_sum / w.tweets as f64
    } else {
        0.0
    };
    tracing::info!(
        target: "stats",
        tweets_per_s = tenths(w.tweets as f64 / secs),
        partitions = partition_list(next.keys()),
        generation = at.generation.unwrap_or(-1),
        lag = lag.join(" "),
        langs = langs.join(", "),
        sentiment_mean = (mean * 1000.0).round() / 1000.0,
        top_hashtags = tags.join(", "),
        written = totals.written,
        deletes = totals.controls,
        errors = totals.errors,
        "stats"
    );
}

/// `0,3,5`.
fn partition_list<'a>(ps: impl Iterator<Item = &'a i32>) -> String {
    ps.map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// One change of assignment: the first join, and each rebalance after it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rebalance {
    /// The new generation (`None` for a simple consumer).
    pub(crate) generation: Option<i32>,
    /// What ended the previous generation: `start`, `revoked` (a rebalance; output committed
    /// first) or `lost` (the membership ended; nothing committed).
    pub(crate) cause: String,
    /// The partitions owned from then on.
    pub(crate) assigned: Vec<i32>,
    /// The partitions owned before and not after.
    pub(crate) revoked: Vec<i32>,
    /// From the end of the previous generation (or the start of the run) until the new
    /// assignment was being read: revocation, commit, join, reconciliation, start offsets.
    pub(crate) took_ms: u64,
    /// The join alone (JoinGroup and SyncGroup, with their retries).
    pub(crate) join_ms: u64,
    pub(crate) leader: bool,
    /// When the new assignment began to be read (Unix time, ms).
    pub(crate) at_ms: i64,
}

impl Rebalance {
    pub(crate) fn log(&self) {
        tracing::info!(
            generation = self.generation.unwrap_or(-1),
            cause = %self.cause,
            assigned = partition_list(self.assigned.iter()),
            revoked = partition_list(self.revoked.iter()),
            took_ms = self.took_ms,
            join_ms = self.join_ms,
            leader = self.leader,
            "assignment"
        );
    }
}

/// This instance in its group, for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Membership {
    pub(crate) group: String,
    /// A member of the group (`false`: a simple consumer of every partition).
    pub(crate) member: bool,
    pub(crate) member_id: String,
    pub(crate) generation: Option<i32>,
    /// The partitions owned last (in the final summary: when the run stopped).
    pub(crate) partitions: Vec<i32>,
    pub(crate) rebalances: Vec<Rebalance>,
    /// The name this instance's output files carry (file output only).
    pub(crate) output_slot: Option<String>,
}

/// What a `consume` run did, for the summary line and `--summary-file` (which is also
/// written at every assignment while the run goes on, with `state` "running").
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// `running` or `stopped`.
    pub(crate) state: &'static str,
    pub(crate) written: u64,
    pub(crate) tweets: u64,
    pub(crate) controls: u64,
    pub(crate) errors: u64,
    /// Each partition's next offset to read, as committed at the end.
    pub(crate) next: BTreeMap<i32, i64>,
    pub(crate) seconds: f64,
    pub(crate) records_per_s: f64,
    #[serde(flatten)]
    pub(crate) membership: Membership,
}

impl Summary {
    pub(crate) fn new(
        totals: &Totals,
        next: &BTreeMap<i32, i64>,
        elapsed: Duration,
        membership: &Membership,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            state: "stopped",
            written: totals.written,
            tweets: totals.tweets,
            controls: totals.controls,
            errors: totals.errors,
            next: next.clone(),
            seconds: (secs * 100.0).round() / 100.0,
            records_per_s: (totals.written as f64 / secs).round(),
            membership: membership.clone(),
        }
    }

    pub(crate) fn log(&self) {
        tracing::info!(
            target: "summary",
            written = self.written,
            tweets = self.tweets,
            controls = self.controls,
            errors = self.errors,
            next = ?self.next,
            seconds = self.seconds,
            records_per_s = self.records_per_s,
            partitions = partition_list(self.membership.partitions.iter()),
            rebalances = self.membership.rebalances.len(),
            "summary"
        );
    }
}

/// The writer's link to the metrics endpoint (`--metrics-addr`): what it mirrors after each
/// batch and each commit, its heartbeat, and the per-second tweet window the live page draws.
pub(crate) struct Live {
    handles: ConsumeHandles,
    /// The writer loop came round.
    writer: Heartbeat,
    /// A fetch answered (empty ones too): Kafka is reachable.
    fetched: Heartbeat,
    /// This second's tweets; merged into the stats window and published once a second.
    second: Window,
    published: Instant,
}

impl Live {
    /// Starts the endpoint on `addr`. The writer must come round within `writer_allowance`,
    /// and some fetch must answer within `fetch_allowance` for `/readyz`.
    pub(crate) fn serve(
        addr: std::net::SocketAddr,
        writer_allowance: Duration,
        fetch_allowance: Duration,
    ) -> Result<(Live, metrics::Server), MetricsError> {
        let handles = Metrics::consume();
        let m = &handles.metrics;
        let writer = Heartbeat::new("writer", writer_allowance);
        m.watch(&writer);
        let fetched = Heartbeat::new("fetch", fetch_allowance);
        let probe = fetched.clone();
        m.probe("kafka_reachable", move || {
            if probe.is_overdue() {
                CheckState::Failing
            } else {
                CheckState::Ok
            }
        });
        metrics::watch_runtime(m);
        let server = metrics::serve(addr, m.clone())?;
        let live = Live {
            handles,
            writer,
            fetched,
            second: Window::default(),
            published: Instant::now(),
        };
        Ok((live, server))
    }

    /// The partitions the writer starts (or resumes) with.
    pub(crate) fn assigned(&self, next: &BTreeMap<i32, i64>) {
        self.handles.partitions.assign(next);
    }

    /// Where the writer counts this batch's tweets.
    pub(crate) fn window(&mut self) -> &mut Window {
        &mut self.second
    }

    /// The writer came round; with `fetched`, a fetch of `partition` answered and was
    /// written up to `next`.
    pub(crate) fn turn(
        &mut self,
        window: &mut Window,
        totals: &Totals,
        fetched: Option<(i32, i64, i64)>,
    ) {
        self.writer.beat();
        if let Some((partition, next, high_watermark)) = fetched {
            self.fetched.beat();
            self.handles
                .partitions
                .progress(partition, next, high_watermark);
            self.handles
                .counters
                .set_totals(totals.tweets, totals.controls, totals.errors);
        }
        if self.published.elapsed() >= Duration::from_secs(1) {
            window.merge(&self.second);
            self.handles.window.publish(&self.second);
            self.second = Window::default();
            self.published = Instant::now();
        }
    }

    /// A durable commit of `next` took `took`.
    pub(crate) fn committed(&self, next: &BTreeMap<i32, i64>, took: Duration) {
        self.handles.commit_latency.observe(took);
        self.handles.partitions.committed(next);
    }

    /// Partitions taken away (group membership), and counted as a rebalance.
    pub(crate) fn revoked(&self, partitions: &[i32]) {
        self.handles.partitions.revoke(partitions);
        self.handles.counters.rebalances.fetch_add(1, Relaxed);
    }
}
