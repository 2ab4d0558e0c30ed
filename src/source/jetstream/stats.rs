//! What the Jetstream source counts, for the stats line, the summary and metrics. Relaxed
//! atomics: read by people, never used for decisions.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct JetstreamStats {
    /// Connections established (WebSocket upgrade done).
    pub connects: AtomicU64,
    /// Connection attempts or connections that failed or ended, by back-off class.
    pub reconnects_network: AtomicU64,
    pub reconnects_http: AtomicU64,
    pub reconnects_rate_limited: AtomicU64,
    /// Of those, because nothing (not even a pong) came for the stall timeout.
    pub stalls: AtomicU64,
    /// Moves to another instance.
    pub fail_overs: AtomicU64,
    /// The last HTTP status of an upgrade (101 when it worked) and the last close code.
    pub last_http_status: AtomicU64,
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
    /// Events over `--max-record-bytes` (skipped) and frames that failed to decompress.
    pub oversized: AtomicU64,
    pub bad_frames: AtomicU64,
    /// Pings we sent, pongs we got, pings the server sent.
    pub pings_sent: AtomicU64,
    pub pongs: AtomicU64,
    pub pings_received: AtomicU64,
    /// Gaps reported (certain or possible) and their total length in seconds.
    pub gaps: AtomicU64,
    pub gap_seconds: AtomicU64,
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

    /// Events read, all kinds.
    pub(crate) fn events(&self) -> u64 {
        [
            &self.commits,
            &self.identities,
            &self.accounts,
            &self.other_kinds,
            &self.unparsed,
        ]
        .iter()
        .map(|c| Self::get(c))
        .sum()
    }

    pub(crate) fn reconnects(&self) -> u64 {
        Self::get(&self.reconnects_network)
            + Self::get(&self.reconnects_http)
            + Self::get(&self.reconnects_rate_limited)
    }
}
