//! The writer: the one task that puts records into the sink, in each partition's offset
//! order, and every commit interval makes the output durable and only then commits the next
//! offsets to the group. Stops on a signal, at the record limit, when nothing new arrived for
//! the idle limit, or when a partition's task reports a fatal error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::fetch::Fetched;
use super::stats::{self, Live, Totals, Window};
use crate::error::Result;
use crate::kafka::group::OffsetStore;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// When the writer stops by itself.
pub(crate) struct Limits {
    pub(crate) max_records: Option<u64>,
    pub(crate) idle_exit: Option<Duration>,
    pub(crate) commit_interval: Duration,
    pub(crate) stats_interval: Duration,
}

pub(crate) struct Writer {
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) store: OffsetStore,
    pub(crate) topic: String,
    /// Each partition's next offset to write.
    pub(crate) next: BTreeMap<i32, i64>,
    pub(crate) totals: Totals,
    /// Each partition's high watermark, as its last fetch reported it.
    high: BTreeMap<i32, i64>,
    dirty: bool,
    /// The metrics endpoint's view of the writer, when `--metrics-addr` is given.
    pub(crate) live: Option<Live>,
}

impl Writer {
    pub(crate) fn new(
        sink: Box<dyn Sink>,
        store: OffsetStore,
        topic: String,
        next: BTreeMap<i32, i64>,
    ) -> Self {
        Writer {
            sink,
            store,
            topic,
            next,
            totals: Totals::default(),
            high: BTreeMap::new(),
            dirty: false,
            live: None,
        }
    }

    /// Makes the output durable, then commits the next offsets, then tells the sink.
    pub(crate) async fn durable_commit(&mut self) -> Result<()> {
        let started = Instant::now();
        self.sink.flush(&self.next).await?;
        self.store.commit(&self.topic, &self.next).await?;
        self.sink.committed()?;
        self.dirty = false;
        if let Some(live) = &self.live {
            live.committed(&self.next, started.elapsed());
        }
        Ok(())
    }

    /// Writes until a stop condition; `Err` only for failures of the sink or the commit. A
    /// partition's fatal error is returned as `Ok(Some(..))` so the caller can still commit
    /// what was written.
    pub(crate) async fn run(
        &mut self,
        rx: &mut mpsc::Receiver<Fetched>,
        limits: &Limits,
        shutdown: &Shutdown,
    ) -> Result<Option<String>> {
        let mut window = Window::default();
        let mut window_start = Instant::now();
        let mut last_record = Instant::now();
        let mut commit_tick = tokio::time::interval(limits.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let idle_left = limits
                .idle_exit
                .map(|d| d.saturating_sub(last_record.elapsed()));
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return Ok(None),
                    Some(Fetched::Fatal(e)) => return Ok(Some(e)),
                    Some(Fetched::Batch { encoded, observed, high_watermark }) => {
                        let partition = encoded.partition;
                        self.high.insert(partition, high_watermark);
                        if self.write(&encoded, &observed, limits, &mut window)? {
                            last_record = Instant::now();
                        }
                        if let Some(live) = &mut self.live {
                            let next = self.next.get(&partition).copied().unwrap_or(0);
                            live.turn(&mut window, &self.totals, Some((partition, next, high_watermark)));
                        }
                        if limits.max_records.is_some_and(|m| self.totals.written >= m) {
                            return Ok(None);
                        }
                    }
                },
                _ = commit_tick.tick() => {
                    if self.dirty {
                        self.durable_commit().await?;
                    }
                    if let Some(live) = &mut self.live {
                        live.turn(&mut window, &self.totals, None);
                    }
                    if !limits.stats_interval.is_zero() && window_start.elapsed() >= limits.stats_interval {
                        stats::log(&window, window_start.elapsed(), &self.totals, &self.next, &self.high);
                        window = Window::default();
                        window_start = Instant::now();
                    }
                }
                _ = sleep_opt(idle_left) => {
                    tracing::info!(idle = ?limits.idle_exit.unwrap_or_default(), "no new record for the idle limit; stopping");
                    return Ok(None);
                }
                _ = shutdown.wait() => return Ok(None),
            }
        }
    }

    /// Writes one fetch's records, skipping any already written and stopping at the record
    /// limit; whether anything was written.
    fn write(
        &mut self,
        encoded: &crate::sink::Encoded,
        observed: &stats::Observed,
        limits: &Limits,
        window: &mut Window,
    ) -> Result<bool> {
        let partition = encoded.partition;
        let next = self.next.get(&partition).copied().unwrap_or(0);
        // Never write an offset twice, whatever a broker hands back.
        let first = encoded.entries.partition_point(|e| e.offset < next);
        if first > 0 {
            tracing::warn!(
                partition,
                next,
                skipped = first,
                "fetch returned records already written; skipped"
            );
        }
        let room = limits.max_records.map_or(usize::MAX, |m| {
            m.saturating_sub(self.totals.written) as usize
        });
        let end = encoded.entries.len().min(first.saturating_add(room));
        if first >= end {
            return Ok(false);
        }
        self.sink.write(encoded, first..end)?;
        // With the endpoint on, tweets are counted per second for the live page, and each
        // second is merged into the stats window: counted once for both.
        let window = match &mut self.live {
            Some(live) => live.window(),
            None => window,
        };
        for i in first..end {
            self.totals.count(observed, i, window);
        }
        self.next
            .insert(partition, encoded.entries[end - 1].offset + 1);
        self.dirty = true;
        Ok(true)
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
