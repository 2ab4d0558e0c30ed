//! Counters shared by the intake, the spill and the batcher, the periodic stats line, and the
//! run's summary (logged, and written as JSON where the caller asks). Plain relaxed atomics:
//! they are read for humans and metrics, never for decisions.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::budget::{Limit, PostCounts};
use super::channel::Depth;
use crate::logging::tenths;
use crate::metrics::{self, CheckState, Latency, Metrics, MetricsError, ProduceSnapshot};
use crate::source::jetstream::stats::JetstreamStats;
use crate::source::SourceStats;

#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Records handed to the channel or the spill.
    pub(crate) accepted: AtomicU64,
    pub(crate) accepted_bytes: AtomicU64,
    /// Of those, tweets (keyed) and forwarded control/unknown/unparsed messages.
    pub(crate) tweets: AtomicU64,
    pub(crate) forwarded_other: AtomicU64,
    pub(crate) unparsed: AtomicU64,
    /// Lost: the channel was full and there is no spill, or the spill was at its bound or
    /// could not be written.
    pub(crate) dropped: AtomicU64,
    /// Written to the disk spill (live records, and batches spilled again after failing).
    pub(crate) spilled: AtomicU64,
    /// Of those, read back and acknowledged by the broker.
    pub(crate) drained: AtomicU64,
    /// Bytes of spill segments on disk (a gauge).
    pub(crate) spill_bytes: AtomicU64,
    /// Spill segments found damaged (torn or corrupt tail) when read back.
    pub(crate) spill_damaged: AtomicU64,
    /// Acknowledged by the broker.
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_bytes: AtomicU64,
    /// Given up on after the delivery timeout (or at shutdown).
    pub(crate) failed: AtomicU64,
    /// Records not produced again because their identity was produced recently.
    pub(crate) duplicates: AtomicU64,
    pub(crate) produce_requests: AtomicU64,
    pub(crate) produce_retries: AtomicU64,
    /// Each produce request's time to its answer (the metrics endpoint's histogram).
    pub(crate) request_latency: Latency,
    /// Whether Kafka answered lately: 0 not yet known, 1 yes (connected, or a request was
    /// acknowledged), 2 no (the last attempt failed). For `/readyz`.
    pub(crate) kafka_ok: AtomicU64,
}

impl Stats {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Stats::default())
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

impl Stats {
    /// The counters as the metrics endpoint shows them: the same atomics the stats line and
    /// the summary read.
    pub(crate) fn snapshot(&self, source: &SourceStats, depth: &Depth) -> ProduceSnapshot {
        let s = |c: &AtomicU64| c.load(Relaxed);
        let (channel_records, channel_bytes) = depth.get();
        ProduceSnapshot {
            received_tweets: s(&self.tweets),
            received_other: s(&self.forwarded_other),
            received_unparsed: s(&self.unparsed),
            duplicates: s(&self.duplicates),
            accepted: s(&self.accepted),
            accepted_bytes: s(&self.accepted_bytes),
            delivered: s(&self.delivered),
            delivered_bytes: s(&self.delivered_bytes),
            dropped: s(&self.dropped),
            failed: s(&self.failed),
            spilled: s(&self.spilled),
            drained: s(&self.drained),
            spill_bytes: s(&self.spill_bytes),
            spill_damaged: s(&self.spill_damaged),
            channel_records: channel_records as u64,
            channel_bytes: channel_bytes as u64,
            reconnects: vec![
                ("network", s(&source.reconnects_network)),
                ("http", s(&source.reconnects_http)),
                ("rate_limited", s(&source.reconnects_rate_limited)),
            ],
            last_http_status: s(&source.last_http_status),
            keepalives: s(&source.keepalives),
            oversized: s(&source.oversized),
            limit_notices: s(&source.limit_notices),
            limit_track: s(&source.limit_track),
            warnings: s(&source.warnings),
            disconnects: s(&source.disconnects),
            stream_errors: s(&source.stream_errors),
            backfills: s(&source.backfills),
            kafka_requests: s(&self.produce_requests),
            kafka_retries: s(&self.produce_retries),
        }
    }
}

/// Starts the metrics endpoint on `addr`, reading these counters. Ready while Kafka answers
/// and, for a live source, while the stream is connected.
pub(crate) fn serve_metrics(
    addr: std::net::SocketAddr,
    stats: &Arc<Stats>,
    source: &Arc<SourceStats>,
    depth: Depth,
    live: bool,
) -> Result<metrics::Server, MetricsError> {
    let (s, src) = (stats.clone(), source.clone());
    let m = Metrics::produce(move || s.snapshot(&src, &depth), &stats.request_latency);
    if live {
        let src = source.clone();
        m.probe("stream_connected", move || {
            match SourceStats::get(&src.connected) {
                1 => CheckState::Ok,
                _ => CheckState::Failing,
            }
        });
    }
    let s = stats.clone();
    m.probe("kafka_reachable", move || match Stats::get(&s.kafka_ok) {
        0 => CheckState::Pending,
        1 => CheckState::Ok,
        _ => CheckState::Failing,
    });
    metrics::watch_runtime(&m);
    metrics::serve(addr, m)
}

/// Prints a stats line every `interval` until the task is aborted.
pub(crate) fn spawn_reporter(
    stats: Arc<Stats>,
    source: Arc<SourceStats>,
    depth: Depth,
    interval: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last = Instant::now();
        let (mut last_acc, mut last_bytes) = (0u64, 0u64);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let secs = now.duration_since(last).as_secs_f64().max(1e-9);
            let acc = Stats::get(&stats.accepted);
            let bytes = Stats::get(&stats.accepted_bytes);
            let (depth_records, depth_bytes) = depth.get();
            tracing::info!(
                target: "stats",
                tweets_per_s = tenths((acc - last_acc) as f64 / secs),
                mb_per_s = tenths((bytes - last_bytes) as f64 / secs / 1e6),
                channel_records = depth_records,
                channel_mb = tenths(depth_bytes as f64 / 1e6),
                accepted = acc,
                delivered = Stats::get(&stats.delivered),
                dropped = Stats::get(&stats.dropped),
                spilled = Stats::get(&stats.spilled),
                drained = Stats::get(&stats.drained),
                spill_mb = tenths(Stats::get(&stats.spill_bytes) as f64 / 1e6),
                duplicates = Stats::get(&stats.duplicates),
                failed = Stats::get(&stats.failed),
                reconnects = SourceStats::get(&source.reconnects),
                last_http_status = SourceStats::get(&source.last_http_status),
                limit_track = SourceStats::get(&source.limit_track),
                "stats"
            );
            last = now;
            last_acc = acc;
            last_bytes = bytes;
        }
    }))
}

/// What a `produce` run did, for the summary line and `--summary-file`.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) accepted: u64,
    pub(crate) tweets: u64,
    pub(crate) other_forwarded: u64,
    pub(crate) unparsed: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
    pub(crate) spilled: u64,
    pub(crate) drained: u64,
    pub(crate) spill_bytes_left: u64,
    pub(crate) spill_segments_damaged: u64,
    pub(crate) oversized_skipped: u64,
    pub(crate) keepalives: u64,
    pub(crate) limit_notices: u64,
    pub(crate) warnings: u64,
    pub(crate) disconnects: u64,
    pub(crate) stream_errors: u64,
    pub(crate) duplicates_dropped: u64,
    pub(crate) backfills: u64,
    pub(crate) reconnects: u64,
    /// Reconnects that left a gap no replay covered (reported with start and end), and the
    /// seconds they add up to.
    pub(crate) gaps: u64,
    pub(crate) gap_seconds: u64,
    pub(crate) produce_requests: u64,
    pub(crate) produce_retries: u64,
    pub(crate) seconds: f64,
    pub(crate) records_per_s: f64,
    pub(crate) mb_per_s: f64,
    /// What only the Jetstream source counts (with `--source jetstream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jetstream: Option<JetstreamSummary>,
    /// The spend guard's counts (when it is on): posts read this UTC day and month, and the
    /// limit that stopped the stream ("day", "month").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) posts_today: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) posts_this_month: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) spend_limit_reached: Option<&'static str>,
}

/// The Jetstream source's own counts, in the summary.
#[derive(Debug, Serialize)]
pub(crate) struct JetstreamSummary {
    pub(crate) connects: u64,
    pub(crate) commits: u64,
    pub(crate) identities: u64,
    pub(crate) accounts: u64,
    pub(crate) other_kinds: u64,
    pub(crate) unparsed: u64,
    /// Bytes as received, and decompressed.
    pub(crate) wire_bytes: u64,
    pub(crate) event_bytes: u64,
    pub(crate) bad_frames: u64,
    pub(crate) stalls: u64,
    pub(crate) fail_overs: u64,
    pub(crate) pings_sent: u64,
    pub(crate) pongs: u64,
    /// The cursor kept for the next run (`time_us`), and the last event's.
    pub(crate) cursor_us: Option<i64>,
    pub(crate) last_time_us: i64,
}

impl Summary {
    pub(crate) fn new(stats: &Stats, source: &SourceStats, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let s = |c: &AtomicU64| c.load(Relaxed);
        let delivered = s(&stats.delivered);
        Summary {
            accepted: s(&stats.accepted),
            tweets: s(&stats.tweets),
            other_forwarded: s(&stats.forwarded_other),
            unparsed: s(&stats.unparsed),
            delivered,
            failed: s(&stats.failed),
            dropped: s(&stats.dropped),
            spilled: s(&stats.spilled),
            drained: s(&stats.drained),
            spill_bytes_left: s(&stats.spill_bytes),
            spill_segments_damaged: s(&stats.spill_damaged),
            oversized_skipped: s(&source.oversized),
            keepalives: s(&source.keepalives),
            limit_notices: s(&source.limit_notices),
            warnings: s(&source.warnings),
            disconnects: s(&source.disconnects),
            stream_errors: s(&source.stream_errors),
            duplicates_dropped: s(&stats.duplicates),
            backfills: s(&source.backfills),
            reconnects: s(&source.reconnects),
            gaps: s(&source.gaps),
            gap_seconds: s(&source.gap_seconds),
            produce_requests: s(&stats.produce_requests),
            produce_retries: s(&stats.produce_retries),
            seconds: (secs * 100.0).round() / 100.0,
            records_per_s: delivered as f64 / secs,
            mb_per_s: tenths(s(&stats.delivered_bytes) as f64 / secs / 1e6),
            jetstream: None,
            posts_today: None,
            posts_this_month: None,
            spend_limit_reached: None,
        }
    }

    /// Adds the Jetstream source's counts and the cursor kept.
    pub(crate) fn with_jetstream(mut self, j: &JetstreamStats, cursor_us: Option<i64>) -> Self {
        let s = |c: &AtomicU64| c.load(Relaxed);
        self.jetstream = Some(JetstreamSummary {
            connects: s(&j.connects),
            commits: s(&j.commits),
            identities: s(&j.identities),
            accounts: s(&j.accounts),
            other_kinds: s(&j.other_kinds),
            unparsed: s(&j.unparsed),
            wire_bytes: s(&j.wire_bytes),
            event_bytes: s(&j.event_bytes),
            bad_frames: s(&j.bad_frames),
            stalls: s(&j.stalls),
            fail_overs: s(&j.fail_overs),
            pings_sent: s(&j.pings_sent),
            pongs: s(&j.pongs),
            cursor_us,
            last_time_us: j.last_time_us.load(Relaxed),
        });
        self
    }

    /// Adds the spend guard's counts, and the limit that stopped the stream.
    pub(crate) fn with_budget(
        mut self,
        counts: Option<PostCounts>,
        reached: Option<Limit>,
    ) -> Self {
        self.posts_today = counts.as_ref().map(|c| c.day_posts);
        self.posts_this_month = counts.as_ref().map(|c| c.month_posts);
        self.spend_limit_reached = reached.map(|l| match l {
            Limit::Day => "day",
            Limit::Month => "month",
        });
        self
    }

    /// The closing line, printed whatever the outcome.
    pub(crate) fn log(&self) {
        tracing::info!(
            target: "summary",
            accepted = self.accepted,
            tweets = self.tweets,
            other_forwarded = self.other_forwarded,
            unparsed = self.unparsed,
            delivered = self.delivered,
            failed = self.failed,
            dropped = self.dropped,
            spilled = self.spilled,
            drained = self.drained,
            spill_bytes_left = self.spill_bytes_left,
            spill_segments_damaged = self.spill_segments_damaged,
            oversized_skipped = self.oversized_skipped,
            keepalives = self.keepalives,
            limit_notices = self.limit_notices,
            warnings = self.warnings,
            disconnects = self.disconnects,
            stream_errors = self.stream_errors,
            duplicates_dropped = self.duplicates_dropped,
            backfills = self.backfills,
            reconnects = self.reconnects,
            gaps = self.gaps,
            gap_seconds = self.gap_seconds,
            produce_requests = self.produce_requests,
            produce_retries = self.produce_retries,
            seconds = self.seconds,
            records_per_s = self.records_per_s.round(),
            mb_per_s = self.mb_per_s,
            "summary"
        );
        if let Some(j) = &self.jetstream {
            tracing::info!(
                target: "summary",
                connects = j.connects,
                commits = j.commits,
                identities = j.identities,
                accounts = j.accounts,
                other_kinds = j.other_kinds,
                unparsed = j.unparsed,
                wire_mb = tenths(j.wire_bytes as f64 / 1e6),
                event_mb = tenths(j.event_bytes as f64 / 1e6),
                bad_frames = j.bad_frames,
                stalls = j.stalls,
                fail_overs = j.fail_overs,
                cursor_us = j.cursor_us,
                "jetstream summary"
            );
        }
        if self.posts_today.is_some() {
            tracing::info!(
                target: "summary",
                posts_today = self.posts_today,
                posts_this_month = self.posts_this_month,
                limit_reached = self.spend_limit_reached,
                "spend guard"
            );
        }
    }
}
