//! What the Jetstream source counts beyond what every live source does (those are in
//! [`crate::source::SourceStats`]: reconnects by class, the last HTTP status, oversized
//! records, whether it is connected, gaps), for the summary and metrics. Relaxed atomics: read by
//! people, never used for decisions.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct JetstreamStats {
    /// Connections established (WebSocket upgrade done).
    pub connects: AtomicU64,
    /// Connections ended because nothing (not even a pong) came for the stall timeout.
    pub stalls: AtomicU64,
    /// Moves to another instance, and the one in use now (its index in the list).
    pub fail_overs: AtomicU64,
    pub instance: AtomicU64,
    /// The last close code the server sent.
    pub last_close_code: AtomicU64,
    /// Events by kind.
    pub commits: AtomicU64,
    pub identities: AtomicU64,
    pub accounts: AtomicU64,
    pub other_kinds: AtomicU64,
    /// Frames that are not Jetstream events (forwarded unkeyed).
    pub unparsed: AtomicU64,
    /// Bytes received in frames, and after decompression.
    pub wire_bytes: AtomicU64,
    pub event_bytes: AtomicU64,
    /// Frames that failed to decompress.
    pub bad_frames: AtomicU64,
    /// Pings we sent, pongs we got, pings the server sent.
    pub pings_sent: AtomicU64,
    pub pongs: AtomicU64,
    pub pings_received: AtomicU64,
    /// `time_us` of the last event read (0: none yet).
    pub last_time_us: AtomicI64,
}

impl JetstreamStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub(crate) fn set(counter: &AtomicU64, v: u64) {
        counter.store(v, Relaxed);
    }
}
