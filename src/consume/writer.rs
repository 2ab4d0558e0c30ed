//! The writer: the one task that puts records into the sink, in each partition's offset
//! order, and every commit interval makes the output durable and only then commits the next
//! offsets to the group (with the generation, for a member: [`Member::commit`]). It writes
//! one assignment at a time ([`Writer::assign`]) and stops on a signal, at the record limit,
//! when nothing new arrived for the idle limit, when a partition's task reports a fatal
//! error, or when the group ends the generation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::fetch::Fetched;
use super::member::{Commit, Member};
use super::stats::{self, Live, Totals, Window};
use crate::error::Result;
use crate::kafka::group::heartbeat::Progress;
use crate::kafka::group::membership::Event;
use crate::shutdown::Shutdown;
use crate::sink::Sink;

/// When the writer stops by itself.
pub(crate) struct Limits {
    pub(crate) max_records: Option<u64>,
    pub(crate) idle_exit: Option<Duration>,
    pub(crate) commit_interval: Duration,
    pub(crate) stats_interval: Duration,
}

/// Why [`Writer::run`] returned.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// A stop condition: a signal, the record limit, the idle limit.
    Done,
    /// A partition's task cannot go on (the caller still commits what was written).
    Fatal(String),
    /// The group ended the generation.
    Ended(Event),
    /// A commit was refused: the membership is over (nothing was committed).
    Refused(String),
}

pub(crate) struct Writer {
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) topic: String,
    /// Each partition's next offset to write: the partitions of the current assignment.
    pub(crate) next: BTreeMap<i32, i64>,
    pub(crate) totals: Totals,
    /// The current generation (`None`: a simple consumer, or between generations).
    pub(crate) generation: Option<i32>,
    /// Each partition's high watermark, as its last fetch reported it.
    high: BTreeMap<i32, i64>,
    dirty: bool,
    window: Window,
    window_start: Instant,
    last_record: Instant,
    /// The max-poll guard's input (members only).
    progress: Option<Progress>,
    /// The metrics endpoint's view of the writer, when `--metrics-addr` is given.
    pub(crate) live: Option<Live>,
}

impl Writer {
    pub(crate) fn new(sink: Box<dyn Sink>, topic: String, progress: Option<Progress>) -> Self {
        Writer {
            sink,
            topic,
            next: BTreeMap::new(),
            totals: Totals::default(),
            generation: None,
            high: BTreeMap::new(),
            dirty: false,
            window: Window::default(),
            window_start: Instant::now(),
            last_record: Instant::now(),
            progress,
            live: None,
        }
    }

    /// Starts writing an assignment: each partition from its `next` offset.
    pub(crate) fn assign(&mut self, next: BTreeMap<i32, i64>, generation: Option<i32>) {
        if let Some(live) = &self.live {
            live.assigned(&next);
        }
        self.next = next;
        self.generation = generation;
        self.high.clear();
        // Time spent rebalancing is not idleness.
        self.last_record = Instant::now();
    }

    /// Gives the assignment up; its partitions.
    pub(crate) fn release(&mut self) -> Vec<i32> {
        self.generation = None;
        self.high.clear();
        self.dirty = false;
        let partitions: Vec<i32> = std::mem::take(&mut self.next).into_keys().collect();
        if let Some(live) = &self.live {
            live.revoked(&partitions);
        }
        partitions
    }

    /// Makes the output durable, then commits the next offsets, then tells the sink.
    pub(crate) async fn durable_commit(&mut self, member: &mut Member) -> Result<Commit> {
        let started = Instant::now();
        match self.sink.flush(&self.next).await {
            Ok(()) => {}
            // The sink's own offsets say another consumer has the partitions: as when the
            // group refuses the commit.
            Err(e @ crate::sink::Error::Taken { .. }) => return Ok(Commit::Refused(e.to_string())),
            Err(e) => return Err(e.into()),
        }
        // Time spent storing (a database waited out) is not idleness.
        self.last_record = (self.last_record + started.elapsed()).min(Instant::now());
        let outcome = member.commit(&self.topic, &self.next).await?;
        if outcome == Commit::Done {
            self.sink.committed()?;
            self.dirty = false;
            if let Some(live) = &self.live {
                live.committed(&self.next, started.elapsed());
            }
        }
        Ok(outcome)
    }

    /// Writes the batches of `rx` until a stop condition; `Err` only for failures of the sink
    /// or a commit that are not the group's doing.
    pub(crate) async fn run(
        &mut self,
        rx: &mut mpsc::Receiver<Fetched>,
        limits: &Limits,
        shutdown: &Shutdown,
        member: &mut Member,
    ) -> Result<Stopped> {
        let mut commit_tick = tokio::time::interval(limits.commit_interval);
        commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // An assignment of no partitions has no fetch tasks, and its channel is closed.
        let mut reading = true;
        loop {
            if let Some(p) = &self.progress {
                p.made_progress();
            }
            let idle_left = limits
                .idle_exit
                .map(|d| d.saturating_sub(self.last_record.elapsed()));
            tokio::select! {
                event = member.next_event() => return Ok(Stopped::Ended(event)),
                msg = rx.recv(), if reading => match msg {
                    None => reading = false,
                    Some(Fetched::Fatal(e)) => return Ok(Stopped::Fatal(e)),
                    Some(Fetched::Batch { encoded, observed, high_watermark }) => {
                        let partition = encoded.partition;
                        self.high.insert(partition, high_watermark);
                        if self.write(&encoded, &observed, limits)? {
                            self.last_record = Instant::now();
                        }
                        // A full batch is stored now (the fetches wait meanwhile: memory
                        // stays bounded).
                        if self.sink.wants_flush() {
                            if let Commit::Refused(why) = self.durable_commit(member).await? {
                                return Ok(Stopped::Refused(why));
                            }
                        } else {
                            tokio::select! {
                                room = self.sink.room() => room?,
                                _ = shutdown.wait() => return Ok(Stopped::Done),
                            }
                        }
                        if let Some(live) = &mut self.live {
                            let next = self.next.get(&partition).copied().unwrap_or(0);
                            live.turn(&mut self.window, &self.totals, Some((partition, next, high_watermark)));
                        }
                        if limits.max_records.is_some_and(|m| self.totals.written >= m) {
                            return Ok(Stopped::Done);
                        }
                    }
                },
                _ = commit_tick.tick() => {
                    if let Some(stopped) = self.tick(limits, member).await? {
                        return Ok(stopped);
                    }
                }
                _ = sleep_opt(idle_left) => {
                    tracing::info!(idle = ?limits.idle_exit.unwrap_or_default(), "no new record for the idle limit; stopping");
                    return Ok(Stopped::Done);
                }
                _ = shutdown.wait() => return Ok(Stopped::Done),
            }
        }
    }

    /// Every commit interval: commit what was written, and the stats line when it is due.
    async fn tick(&mut self, limits: &Limits, member: &mut Member) -> Result<Option<Stopped>> {
        if self.dirty {
            if let Commit::Refused(why) = self.durable_commit(member).await? {
                return Ok(Some(Stopped::Refused(why)));
            }
        }
        if let Some(live) = &mut self.live {
            live.turn(&mut self.window, &self.totals, None);
        }
        let elapsed = self.window_start.elapsed();
        if !limits.stats_interval.is_zero() && elapsed >= limits.stats_interval {
            let at = stats::At {
                totals: &self.totals,
                next: &self.next,
                high: &self.high,
                generation: self.generation,
            };
            stats::log(&self.window, elapsed, &at);
            self.window = Window::default();
            self.window_start = Instant::now();
        }
        Ok(None)
    }

    /// Writes one fetch's records, skipping any already written and stopping at the record
    /// limit; whether anything was written.
    fn write(
        &mut self,
        encoded: &crate::sink::Encoded,
        observed: &stats::Observed,
        limits: &Limits,
    ) -> Result<bool> {
        let partition = encoded.partition;
        let Some(&next) = self.next.get(&partition) else {
            return Ok(false); // a partition of an assignment that has ended
        };
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
            None => &mut self.window,
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
