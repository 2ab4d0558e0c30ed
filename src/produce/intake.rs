//! Where frames enter the pipeline: count, drop repeats, key, and hand over to the channel,
//! or to the disk spill when the channel is full. This is the source's [`Output`].
//!
//! The live path ([`Output::offer`]) never waits: a full channel sends the record to the spill
//! (or, with the spill off, drops it, counted and logged). Live records take the channel
//! whenever it has room, alongside the spill's drain, rather than queueing behind the spill: a
//! burst that filled the channel for a moment must not send the rest of the stream through
//! the disk. While the drain is waiting for room the channel has none to give, so live
//! records go to the spill then, behind what is there. File replay ([`Output::send`]) waits
//! for room instead, since a file does not run away.
//!
//! With a [`Dedup`], a frame whose identity went into the channel recently is counted and
//! dropped here (the v2 stream's backfill repeats tweets; a Jetstream resume repeats events).
//!
//! Two hooks for what `produce` keeps across runs ([`super::keeper`]): a frame with a cursor
//! (Jetstream's `time_us`) is tracked in the cursor's watermark, in reading order, and its
//! record carries the mark that makes it safe once it is acknowledged, spilled or lost; and
//! with the Twitter spend guard, every post read is counted (before the dedupe: X bills a
//! repeat too) and the post that reaches a limit is the last one: the source is told to stop.

use std::sync::{Arc, Mutex};

use super::budget::{Budget, Limit};
use super::channel::Sender;
use super::dedup::{self, Dedup};
use super::record::RawRecord;
use super::spill::{Offered, Spill};
use super::stats::Stats;
use super::watermark;
use crate::logging::{Every, QUIET};
use crate::source::{Flow, Frame, FrameKind, Output};

pub(crate) struct Intake {
    sender: Sender,
    /// Where live records go when the channel is full; `None`: they are dropped.
    spill: Option<Arc<Spill>>,
    stats: Arc<Stats>,
    /// Stop after this many records are accepted (`None`: never).
    limit: Option<u64>,
    accepted: u64,
    dedup: Option<Dedup>,
    spilling: Every,
    dropping: Every,
    unparsed: Every,
    /// Jetstream: where each event read is tracked until it is safe.
    cursors: Option<watermark::Shared>,
    /// The Twitter spend guard, and the limit that stopped the source.
    budget: Option<Arc<Mutex<Budget>>>,
    budget_reached: Option<Limit>,
}

impl Intake {
    pub(crate) fn new(
        sender: Sender,
        stats: Arc<Stats>,
        limit: Option<u64>,
        spill: Option<Arc<Spill>>,
        dedup: Option<Dedup>,
    ) -> Self {
        Intake {
            sender,
            spill,
            stats,
            limit,
            accepted: 0,
            dedup,
            spilling: Every::new(QUIET),
            dropping: Every::new(QUIET),
            unparsed: Every::new(QUIET),
            cursors: None,
            budget: None,
            budget_reached: None,
        }
    }

    /// Tracks the cursor of each frame that has one (see the module doc).
    pub(crate) fn with_cursors(mut self, cursors: watermark::Shared) -> Self {
        self.cursors = Some(cursors);
        self
    }

    /// Counts posts against the spend guard (see the module doc).
    pub(crate) fn with_budget(mut self, budget: Arc<Mutex<Budget>>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The spend limit that stopped the source, if one did.
    pub(crate) fn budget_reached(&self) -> Option<Limit> {
        self.budget_reached
    }

    /// Counts a post against the spend guard; `true` when it reached a limit.
    fn count_post(&mut self, frame: &Frame) -> bool {
        let Some(budget) = &self.budget else {
            return false;
        };
        if frame.kind != FrameKind::Post {
            return false;
        }
        let counted = budget
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(chrono::Utc::now());
        match counted {
            Ok(()) => false,
            Err(limit) => {
                self.budget_reached = Some(limit);
                true
            }
        }
    }

    /// Whether the record limit stopped the source.
    pub(crate) fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|l| self.accepted >= l)
    }

    /// Counts the frame by kind and turns it into a record; `None` for a repeat.
    fn record(&mut self, frame: Frame) -> Option<RawRecord> {
        if let (Some(d), Some(id)) = (self.dedup.as_mut(), frame.dedupe.as_deref()) {
            if d.seen(id, std::time::Instant::now()) {
                Stats::add(&self.stats.duplicates, 1);
                return None;
            }
        }
        match frame.kind {
            FrameKind::Post => Stats::add(&self.stats.tweets, 1),
            FrameKind::Forward => Stats::add(&self.stats.forwarded_other, 1),
            FrameKind::Unparsed => {
                Stats::add(&self.stats.unparsed, 1);
                if let Some(n) = self.unparsed.tick() {
                    let v = &frame.value;
                    let shown = String::from_utf8_lossy(&v[..v.len().min(80)]).into_owned();
                    tracing::warn!(bytes = v.len(), start = %shown, unparsed_since_last_report = n, "message is not JSON; forwarding it unkeyed for the consumer to file as an error");
                }
            }
        }
        let timestamp = frame.timestamp.unwrap_or_else(chrono::Utc::now);
        let mark = match (&self.cursors, frame.cursor) {
            (Some(w), Some(time_us)) => {
                Some(w.mark(time_us, frame.dedupe.as_deref().and_then(dedup::key)))
            }
            _ => None,
        };
        let mut record = RawRecord::new(frame.key, frame.value, timestamp, None);
        record.cursor = mark;
        Some(record)
    }

    /// The record went into the channel or the spill: count it, remember its identity (only
    /// now: a dropped record may come back with a replay, and should then get through).
    fn accepted(&mut self, size: u64, dedupe: Option<&[u8]>) -> Flow {
        if let (Some(d), Some(id)) = (self.dedup.as_mut(), dedupe) {
            d.insert(id, std::time::Instant::now());
        }
        self.accepted += 1;
        Stats::add(&self.stats.accepted, 1);
        Stats::add(&self.stats.accepted_bytes, size);
        if self.limit_reached() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// The channel is full on the live path: to the spill, or dropped.
    fn overflow(&mut self, record: RawRecord) -> bool {
        let Some(spill) = &self.spill else {
            Stats::add(&self.stats.dropped, 1);
            if let Some(n) = self.dropping.tick() {
                tracing::error!(
                    dropped_since_last_report = n,
                    dropped_total = Stats::get(&self.stats.dropped),
                    "channel full: Kafka is not keeping up, dropping live records (with the disk spill off); raise the channel's size, or check the brokers"
                );
            }
            return false;
        };
        if self.spilling.tick().is_some() {
            tracing::warn!(
                dir = %spill.dir().display(),
                spilled_so_far = Stats::get(&self.stats.spilled),
                "channel full: Kafka is not keeping up; spilling live records to disk"
            );
        }
        spill.append(&record) == Offered::Spilled
    }
}

impl Output for Intake {
    fn offer(&mut self, frame: Frame) -> Flow {
        let last_post = self.count_post(&frame);
        let dedupe = frame.dedupe.clone();
        let flow = match self.record(frame) {
            None => Flow::Continue,
            Some(record) => {
                let size = record.size() as u64;
                let kept = match self.sender.try_send(record) {
                    Ok(()) => true,
                    Err(record) => self.overflow(record),
                };
                if kept {
                    self.accepted(size, dedupe.as_deref())
                } else {
                    Flow::Continue
                }
            }
        };
        if last_post {
            Flow::Stop
        } else {
            flow
        }
    }

    async fn send(&mut self, frame: Frame) -> Flow {
        let dedupe = frame.dedupe.clone();
        let Some(record) = self.record(frame) else {
            return Flow::Continue;
        };
        let size = record.size() as u64;
        match self.sender.send(record).await {
            Ok(()) => self.accepted(size, dedupe.as_deref()),
            // The producer side is gone (it failed): nothing more can be delivered.
            Err(_) => {
                Stats::add(&self.stats.dropped, 1);
                Flow::Stop
            }
        }
    }
}
