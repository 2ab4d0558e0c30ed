//! Where records come from: the live Twitter stream ([`twitter`]), Bluesky's Jetstream
//! ([`jetstream`]) and file replay ([`replay`]), with the framing they share ([`framer`]).
//!
//! A source turns bytes into [`Frame`]s (the record, its key, what it is, and what it may be
//! deduplicated on) and pushes them into an [`Output`]. It knows nothing of channels, the
//! spill or Kafka: `produce`'s intake implements [`Output`]. A live source never waits on it
//! ([`Output::offer`]); a file waits for room ([`Output::send`]), since a file cannot run away.
//! Protocol messages that are not records (keep-alives, Twitter's `limit` and stall warnings,
//! disconnect notices) are handled, counted in [`SourceStats`] and logged here.

pub(crate) mod framer;
pub(crate) mod jetstream;
pub(crate) mod replay;
pub(crate) mod twitter;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Classify, Kind};

/// One record on its way out of a source.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Exactly what goes to Kafka (without the stream's framing).
    pub(crate) value: Bytes,
    /// The partitioning key (a tweet's `id_str`); `None` for control records.
    pub(crate) key: Option<Bytes>,
    /// What the intake may drop repeats by (a v2 tweet's id: backfill repeats tweets).
    pub(crate) dedupe: Option<Bytes>,
    /// The Kafka record timestamp; `None`: the time it was received.
    pub(crate) timestamp: Option<DateTime<Utc>>,
    /// A resume position (Jetstream's `time_us`), kept durably once the record is safe.
    pub(crate) cursor: Option<i64>,
    pub(crate) kind: FrameKind,
}

/// What a frame is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A post (a tweet).
    Post,
    /// A control record forwarded for the consumer (`delete`, `scrub_geo`, unknown types).
    Forward,
    /// Not JSON: forwarded for the consumer to file as an error.
    Unparsed,
}

impl Frame {
    /// A frame without key or identity: a control record, or bytes that are not JSON.
    pub(crate) fn unkeyed(value: Bytes, kind: FrameKind) -> Self {
        Frame {
            value,
            key: None,
            dedupe: None,
            timestamp: None,
            cursor: None,
            kind,
        }
    }
}

/// Whether the source should go on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The output wants no more (its record limit is reached, or it is closed).
    Stop,
}

/// Where a source puts its frames.
pub(crate) trait Output {
    /// The live path: never waits.
    fn offer(&mut self, frame: Frame) -> Flow;
    /// The replay path: waits for room.
    fn send(&mut self, frame: Frame) -> impl Future<Output = Flow> + Send;
}

/// Why a source stopped reading, when it stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Asked to stop (a signal).
    Shutdown,
    /// The output said [`Flow::Stop`].
    Stopped,
    /// The replayed file is read to its end.
    Exhausted,
}

/// Counters a source keeps; read for the stats line, the summary and metrics. Plain relaxed
/// atomics: they are read for humans, never for decisions.
#[derive(Debug, Default)]
pub(crate) struct SourceStats {
    pub(crate) keepalives: AtomicU64,
    /// Records longer than the limit, skipped.
    pub(crate) oversized: AtomicU64,
    pub(crate) limit_notices: AtomicU64,
    /// The latest `limit.track`: tweets Twitter withheld since the connection opened.
    pub(crate) limit_track: AtomicU64,
    pub(crate) warnings: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    /// v2 error objects read inside the stream (`operational-disconnect`, …).
    pub(crate) stream_errors: AtomicU64,
    /// Connections opened with `backfill_minutes`.
    pub(crate) backfills: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Reconnects by cause: network, HTTP status, rate limit.
    pub(crate) reconnects_network: AtomicU64,
    pub(crate) reconnects_http: AtomicU64,
    pub(crate) reconnects_rate_limited: AtomicU64,
    pub(crate) last_http_status: AtomicU64,
    /// 1 while a connection is open and healthy.
    pub(crate) connected: AtomicU64,
    /// Reconnects that left a gap no replay covered, and the seconds they add up to.
    pub(crate) gaps: AtomicU64,
    pub(crate) gap_seconds: AtomicU64,
}

impl SourceStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

/// Why a source gave up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The server answered with a status that retrying cannot fix.
    #[error("{meaning}. Server said: {said:?}")]
    Status {
        status: u16,
        v2: bool,
        meaning: &'static str,
        said: String,
    },
    /// Twitter closed the stream for a reason that retrying cannot fix.
    #[error("Twitter disconnected the stream with code {code} ({meaning}): {reason}")]
    Disconnected {
        code: u32,
        meaning: &'static str,
        reason: String,
    },
    #[error("cannot open {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {} failed", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A request of a source's API (stream rules) failed.
    #[error("{0}")]
    Api(String),
    /// Twitter refused rule changes as invalid.
    #[error(
        "Twitter rejected {rejected} rule change(s):\n  {report}\nfix the rules and run again"
    )]
    RulesRejected { rejected: usize, report: String },
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Open { .. } | Error::RulesRejected { .. } => Kind::Usage,
            _ => Kind::Runtime,
        }
    }
}
