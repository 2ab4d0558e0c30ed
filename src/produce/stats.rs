//! Counters shared by the reader and the producer, the periodic stats line, and the exit
//! summary. Plain relaxed atomics: they are read for humans, never for decisions.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Depth;

#[derive(Debug, Default)]
pub struct Stats {
    /// Records handed to the channel.
    pub accepted: AtomicU64,
    pub accepted_bytes: AtomicU64,
    /// Of those, tweets (keyed) and forwarded control/unknown/unparsed messages.
    pub tweets: AtomicU64,
    pub forwarded_other: AtomicU64,
    pub unparsed: AtomicU64,
    /// Lost: the channel was full and there is no spill, or the spill was at its bound or
    /// could not be written.
    pub dropped: AtomicU64,
    /// Written to the disk spill (live records, and batches spilled again after failing).
    pub spilled: AtomicU64,
    /// Of those, read back and acknowledged by the broker.
    pub drained: AtomicU64,
    /// Bytes of spill segments on disk (a gauge).
    pub spill_bytes: AtomicU64,
    /// Spill segments found damaged (torn or corrupt tail) when read back.
    pub spill_damaged: AtomicU64,
    /// Acknowledged by the broker.
    pub delivered: AtomicU64,
    pub delivered_bytes: AtomicU64,
    /// Given up on after the delivery timeout (or at shutdown).
    pub failed: AtomicU64,
    pub keepalives: AtomicU64,
    pub oversized: AtomicU64,
    pub limit_notices: AtomicU64,
    /// The latest `limit.track`: tweets Twitter withheld since the connection opened.
    pub limit_track: AtomicU64,
    pub warnings: AtomicU64,
    pub disconnects: AtomicU64,
    /// v2 error objects read inside the stream (`operational-disconnect`, …).
    pub stream_errors: AtomicU64,
    /// Tweets not produced again because their id was produced recently (v2 backfill).
    pub duplicates: AtomicU64,
    /// Connections opened with `backfill_minutes`.
    pub backfills: AtomicU64,
    pub reconnects: AtomicU64,
    pub last_http_status: AtomicU64,
    pub produce_requests: AtomicU64,
    pub produce_retries: AtomicU64,
}

impl Stats {
    pub fn new() -> Arc<Self> {
        Arc::new(Stats::default())
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// Prints a stats line every `interval` until dropped (the task is aborted by the caller).
pub fn spawn_reporter(
    stats: Arc<Stats>,
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
                tweets_per_s = format!("{:.1}", (acc - last_acc) as f64 / secs),
                mb_per_s = format!("{:.2}", (bytes - last_bytes) as f64 / secs / 1e6),
                channel_records = depth_records,
                channel_mb = format!("{:.1}", depth_bytes as f64 / 1e6),
                accepted = acc,
                delivered = Stats::get(&stats.delivered),
                dropped = Stats::get(&stats.dropped),
                spilled = Stats::get(&stats.spilled),
                drained = Stats::get(&stats.drained),
                spill_mb = format!("{:.1}", Stats::get(&stats.spill_bytes) as f64 / 1e6),
                duplicates = Stats::get(&stats.duplicates),
                failed = Stats::get(&stats.failed),
                reconnects = Stats::get(&stats.reconnects),
                last_http_status = Stats::get(&stats.last_http_status),
                limit_track = Stats::get(&stats.limit_track),
                "stats"
            );
            last = now;
            last_acc = acc;
            last_bytes = bytes;
        }
    }))
}

/// The closing summary, one line, printed whatever the outcome.
pub fn log_summary(stats: &Stats, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let delivered = Stats::get(&stats.delivered);
    tracing::info!(
        target: "summary",
        accepted = Stats::get(&stats.accepted),
        tweets = Stats::get(&stats.tweets),
        other_forwarded = Stats::get(&stats.forwarded_other),
        unparsed = Stats::get(&stats.unparsed),
        delivered,
        failed = Stats::get(&stats.failed),
        dropped = Stats::get(&stats.dropped),
        spilled = Stats::get(&stats.spilled),
        drained = Stats::get(&stats.drained),
        spill_mb_left = format!("{:.1}", Stats::get(&stats.spill_bytes) as f64 / 1e6),
        spill_segments_damaged = Stats::get(&stats.spill_damaged),
        oversized_skipped = Stats::get(&stats.oversized),
        keepalives = Stats::get(&stats.keepalives),
        limit_notices = Stats::get(&stats.limit_notices),
        warnings = Stats::get(&stats.warnings),
        disconnects = Stats::get(&stats.disconnects),
        stream_errors = Stats::get(&stats.stream_errors),
        duplicates_dropped = Stats::get(&stats.duplicates),
        backfills = Stats::get(&stats.backfills),
        reconnects = Stats::get(&stats.reconnects),
        produce_requests = Stats::get(&stats.produce_requests),
        produce_retries = Stats::get(&stats.produce_retries),
        seconds = format!("{secs:.2}"),
        records_per_s = format!("{:.0}", delivered as f64 / secs),
        mb_per_s = format!("{:.2}", Stats::get(&stats.delivered_bytes) as f64 / secs / 1e6),
        "summary"
    );
}
