//! Where messages enter the pipeline: classify, count, key, and offer to the channel.
//!
//! Shared by the live stream (which must never wait, so a full channel goes to the overflow
//! policy) and by file replay (which waits, since a file does not run away). With a
//! [`Dedup`] (the v2 stream, whose backfill repeats tweets), a tweet whose id went into the
//! channel recently is counted and dropped here.

use std::sync::Arc;

use bytes::Bytes;

use super::channel::Sender;
use super::dedup::Dedup;
use super::overflow::Overflow;
use super::record::RawRecord;
use super::stats::Stats;
use crate::produce::spill::store::Offered;
use crate::produce::spill::Spill;
use crate::source::twitter::message::{self, Message};

/// What the source should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `--max-records` records are in: stop reading.
    LimitReached,
}

pub struct Intake {
    sender: Sender,
    overflow: Overflow,
    /// Where live records go when the channel is full; `None`: they are dropped.
    spill: Option<Arc<Spill>>,
    pub stats: Arc<Stats>,
    limit: Option<u64>,
    accepted: u64,
    dedup: Option<Dedup>,
}

impl Intake {
    pub fn new(
        sender: Sender,
        stats: Arc<Stats>,
        limit: Option<u64>,
        spill: Option<Arc<Spill>>,
    ) -> Self {
        Intake {
            sender,
            overflow: Overflow::new(stats.clone()),
            spill,
            stats,
            limit,
            accepted: 0,
            dedup: None,
        }
    }

    /// Drop tweets whose id went into the channel recently (see [`Dedup`]).
    pub fn with_dedup(mut self, dedup: Dedup) -> Self {
        self.dedup = Some(dedup);
        self
    }

    pub fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|l| self.accepted >= l)
    }

    /// Classifies `bytes` and builds the record to forward, or `None` for control messages
    /// that are only logged and counted. Disconnect messages are returned to the caller.
    pub fn prepare(&mut self, bytes: Bytes) -> Prepared {
        let msg = message::classify(&bytes);
        let key = match &msg {
            Message::Tweet { id_str } => {
                let id = &bytes[id_str.clone()];
                if let Some(d) = self.dedup.as_mut() {
                    if d.seen(id, std::time::Instant::now()) {
                        Stats::add(&self.stats.duplicates, 1);
                        return Prepared::Duplicate;
                    }
                }
                Stats::add(&self.stats.tweets, 1);
                Some(bytes.slice(id_str.clone()))
            }
            Message::Forward { .. } => {
                Stats::add(&self.stats.forwarded_other, 1);
                None
            }
            Message::Unparsed => {
                Stats::add(&self.stats.unparsed, 1);
                // The first few in full, then one in a thousand: a broken feed must not turn
                // into a flood of log lines.
                let n = Stats::get(&self.stats.unparsed);
                if n <= 10 || n % 1000 == 0 {
                    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
                    tracing::warn!(bytes = bytes.len(), start = %shown, unparsed_so_far = n, "message is not JSON; forwarding it unkeyed for the consumer to file as an error");
                }
                None
            }
            Message::Limit { track } => {
                Stats::add(&self.stats.limit_notices, 1);
                self.stats
                    .limit_track
                    .store(*track, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    undelivered_since_connect = track,
                    "limit notice: the filter matches more than Twitter will deliver"
                );
                return Prepared::Control(msg);
            }
            Message::Warning {
                code,
                message,
                percent_full,
            } => {
                Stats::add(&self.stats.warnings, 1);
                tracing::warn!(%code, percent_full = percent_full.unwrap_or(0), "stall warning from Twitter: {message}");
                return Prepared::Control(msg);
            }
            Message::Disconnect { code, reason } => {
                Stats::add(&self.stats.disconnects, 1);
                tracing::warn!(code, %reason, meaning = message::disconnect_meaning(*code), "disconnect message from Twitter");
                return Prepared::Control(msg);
            }
            Message::StreamError(e) => {
                Stats::add(&self.stats.stream_errors, 1);
                tracing::warn!(
                    title = %e.title,
                    disconnect_type = %e.disconnect_type,
                    connection_issue = %e.connection_issue,
                    problem = %e.kind,
                    "error object in the stream: {}",
                    e.detail
                );
                return Prepared::Control(msg);
            }
        };
        Prepared::Record(RawRecord::new(key, bytes, chrono::Utc::now(), None))
    }

    /// Live path: never waits.
    pub fn offer(&mut self, record: RawRecord) -> Flow {
        let size = record.size() as u64;
        // Remembered only once accepted (channel or spill): a tweet that was dropped may
        // come back with a backfill, and should then get through.
        let key = self.dedup.as_ref().and(record.key.clone());
        if let Some(spill) = &self.spill {
            return match spill.offer_live(&self.sender, record) {
                Offered::Channel | Offered::Spilled => {
                    if let (Some(d), Some(k)) = (self.dedup.as_mut(), key) {
                        d.insert(&k, std::time::Instant::now());
                    }
                    self.count(size)
                }
                Offered::Dropped => Flow::Continue,
            };
        }
        match self.sender.try_send(record) {
            Ok(()) => {
                if let (Some(d), Some(k)) = (self.dedup.as_mut(), key) {
                    d.insert(&k, std::time::Instant::now());
                }
                self.count(size)
            }
            Err(record) => {
                self.overflow.handle(record);
                Flow::Continue
            }
        }
    }

    /// Replay path: waits for room.
    pub async fn send(&mut self, record: RawRecord) -> Flow {
        let size = record.size() as u64;
        match self.sender.send(record).await {
            Ok(()) => self.count(size),
            Err(record) => {
                self.overflow.handle(record);
                Flow::LimitReached
            }
        }
    }

    fn count(&mut self, size: u64) -> Flow {
        self.accepted += 1;
        Stats::add(&self.stats.accepted, 1);
        Stats::add(&self.stats.accepted_bytes, size);
        if self.limit_reached() {
            Flow::LimitReached
        } else {
            Flow::Continue
        }
    }
}

pub enum Prepared {
    Record(RawRecord),
    Control(Message),
    /// A tweet produced recently (see [`Dedup`]): counted, not forwarded.
    Duplicate,
}
