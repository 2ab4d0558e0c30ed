//! Feeds the spill back into the producer, oldest segment first, through the same channel
//! the live records use (waiting for room: the spill is already safe on disk, so this side
//! can wait where the stream reader cannot).
//!
//! Each record read back carries a [`Ticket`] of its segment. The producer acknowledges a
//! ticket when the broker acknowledged the record, or once the record was spilled again after
//! its delivery failed; when every record of a segment is acknowledged, the segment file is
//! deleted. Records never acknowledged (tweetpipe stopped first) keep their segment on disk
//! for the next run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::segment;
use super::store::{Sealed, Spill};
use crate::produce::channel::Sender;
use crate::produce::stats::Stats;

/// One drained segment's count of acknowledgements.
pub(crate) struct Ticket {
    spill: Arc<Spill>,
    segment: Sealed,
    total: u64,
    acked: AtomicU64,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket(segment {})", self.segment.id)
    }
}

impl Ticket {
    /// One record of this segment is safe elsewhere (in Kafka, or in a newer segment).
    /// `delivered`: it reached Kafka (counted as drained).
    pub(crate) fn ack(&self, delivered: bool) {
        if delivered {
            Stats::add(&self.stats.drained, 1);
        }
        if self.acked.fetch_add(1, Ordering::AcqRel) + 1 == self.total {
            self.spill.segment_done(&self.segment);
        }
    }
}

/// Runs until `stop` turns true or the channel closes.
pub(crate) async fn run(
    spill: Arc<Spill>,
    tx: Sender,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(segment) = spill.next_for_drain() else {
            tokio::select! {
                _ = spill.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        if segment.from_this_run {
            // Sealed moments ago: make it durable before trusting the disk with it alone.
            let path = segment.path.clone();
            let _ = tokio::task::spawn_blocking(move || {
                std::fs::File::open(path).and_then(|f| f.sync_data())
            })
            .await;
        }
        let data = match tokio::fs::read(&segment.path).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(path = %segment.path.display(), "cannot read a spill segment: {e}; leaving it on disk");
                spill.segment_abandoned(&segment);
                continue;
            }
        };
        let scan = segment::decode(Bytes::from(data));
        if let Some(p) = &scan.problem {
            tracing::error!(
                path = %segment.path.display(),
                offset = p.offset,
                records_before = scan.records.len(),
                "spill segment damaged at byte {} ({}), as a crash mid-write leaves it: delivering the {} intact records before it",
                p.offset,
                p.reason,
                scan.records.len()
            );
            Stats::add(&stats.spill_damaged, 1);
        }
        if scan.records.is_empty() {
            spill.segment_done(&segment);
            continue;
        }
        tracing::debug!(path = %segment.path.display(), records = scan.records.len(), "draining a spill segment");
        let ticket = Arc::new(Ticket {
            spill: Arc::clone(&spill),
            total: scan.records.len() as u64,
            segment,
            acked: AtomicU64::new(0),
            stats: Arc::clone(&stats),
        });
        for mut record in scan.records {
            record.spill = Some(Arc::clone(&ticket));
            tokio::select! {
                sent = tx.send(record) => if sent.is_err() { return },
                _ = stop.changed() => return,
            }
        }
    }
}
