//! What `consume` exposes: [`ConsumeSnapshot`] (its counters and partitions at one moment)
//! and the metric families they become; and [`PartitionTable`], where the consume loop keeps
//! each owned partition's position, committed offset and high watermark for them.
//!
//! Like produce's, the snapshot is taken at scrape time by a closure over the counters the
//! stats line and summary print; only the partition table is a structure of its own, because
//! the loop's positions live in its local maps.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::family::{Family, Kind, Value};

/// One owned partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PartitionSnapshot {
    pub(crate) partition: i32,
    /// The next offset to write (the stats line's `next`).
    pub(crate) next: i64,
    /// The offset last committed to the group; `None` before the first commit.
    pub(crate) committed: Option<i64>,
    /// The partition's end as the last fetch saw it; `None` before the first fetch.
    pub(crate) high_watermark: Option<i64>,
}

impl PartitionSnapshot {
    /// Records in Kafka not yet written, as the stats line's `lag` counts them.
    pub(crate) fn lag(&self) -> i64 {
        self.high_watermark.map_or(0, |h| (h - self.next).max(0))
    }
}

/// `consume`'s counters and partitions at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ConsumeSnapshot {
    /// Lines written, by kind: enriched tweets, control messages (deletes, …) and records
    /// that could not be read as either.
    pub(crate) tweets: u64,
    pub(crate) controls: u64,
    pub(crate) errors: u64,
    /// Times the group took partitions from or gave partitions to this member.
    pub(crate) rebalances: u64,
    pub(crate) partitions: Vec<PartitionSnapshot>,
}

impl ConsumeSnapshot {
    pub(crate) fn families(&self) -> Vec<Family> {
        let per_partition = |f: fn(&PartitionSnapshot) -> Option<i64>| {
            self.partitions.iter().filter_map(move |p| {
                f(p).map(|v| (Cow::Owned(p.partition.to_string()), Value::Int(v)))
            })
        };
        vec![
            Family::labelled(
                "tweetpipe_consume_records_written",
                "Output lines written, by kind (tweet: enriched tweets; control: deletes and other stream control messages; error: records that are neither).",
                Kind::Counter,
                "kind",
                [
                    ("tweet", self.tweets),
                    ("control", self.controls),
                    ("error", self.errors),
                ]
                .map(|(k, v)| (Cow::Borrowed(k), Value::Count(v))),
            ),
            Family::labelled(
                "tweetpipe_consume_lag_records",
                "Records between the next offset to write and the partition's high watermark.",
                Kind::Gauge,
                "partition",
                per_partition(|p| Some(p.lag())),
            ),
            Family::labelled(
                "tweetpipe_consume_committed_offset",
                "The offset last committed to the consumer group (the next record to read after a restart).",
                Kind::Gauge,
                "partition",
                per_partition(|p| p.committed),
            ),
            Family::labelled(
                "tweetpipe_consume_next_offset",
                "The next offset to write.",
                Kind::Gauge,
                "partition",
                per_partition(|p| Some(p.next)),
            ),
            Family::labelled(
                "tweetpipe_consume_high_watermark_offset",
                "The partition's end, as the last fetch saw it.",
                Kind::Gauge,
                "partition",
                per_partition(|p| p.high_watermark),
            ),
            Family::counter(
                "tweetpipe_consume_rebalances",
                "Times the group changed the partitions this member owns.",
                self.rebalances,
            ),
            Family::gauge(
                "tweetpipe_consume_partitions_owned",
                "Partitions this member reads now.",
                Value::Count(self.partitions.len() as u64),
            ),
        ]
    }
}

/// The writer's run totals, mirrored after each batch it writes (three relaxed stores per
/// fetch, not per record), and the rebalances the group membership counts.
#[derive(Debug, Default)]
pub(crate) struct ConsumeCounters {
    tweets: AtomicU64,
    controls: AtomicU64,
    errors: AtomicU64,
    pub(crate) rebalances: AtomicU64,
}

impl ConsumeCounters {
    pub(crate) fn set_totals(&self, tweets: u64, controls: u64, errors: u64) {
        self.tweets.store(tweets, Relaxed);
        self.controls.store(controls, Relaxed);
        self.errors.store(errors, Relaxed);
    }

    pub(crate) fn snapshot(&self, partitions: &PartitionTable) -> ConsumeSnapshot {
        ConsumeSnapshot {
            tweets: self.tweets.load(Relaxed),
            controls: self.controls.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rebalances: self.rebalances.load(Relaxed),
            partitions: partitions.snapshot(),
        }
    }
}

/// The owned partitions' positions, kept by the consume loop for the metrics. Cloning shares
/// it. Updated once per fetch handled and per commit (a short lock each), read at scrape time.
#[derive(Clone, Default)]
pub(crate) struct PartitionTable(Arc<Mutex<BTreeMap<i32, PartitionSnapshot>>>);

impl PartitionTable {
    /// Partitions newly owned, starting at `next`.
    pub(crate) fn assign(&self, start: &BTreeMap<i32, i64>) {
        let mut t = self.lock();
        for (&partition, &next) in start {
            t.insert(
                partition,
                PartitionSnapshot {
                    partition,
                    next,
                    committed: None,
                    high_watermark: None,
                },
            );
        }
    }

    /// Partitions no longer owned.
    pub(crate) fn revoke(&self, partitions: &[i32]) {
        let mut t = self.lock();
        for p in partitions {
            t.remove(p);
        }
    }

    /// A fetch of `partition` was handled: written up to `next`, the log ends at
    /// `high_watermark`.
    pub(crate) fn progress(&self, partition: i32, next: i64, high_watermark: i64) {
        if let Some(p) = self.lock().get_mut(&partition) {
            p.next = next;
            p.high_watermark = Some(high_watermark);
        }
    }

    /// `next` was committed to the group.
    pub(crate) fn committed(&self, next: &BTreeMap<i32, i64>) {
        let mut t = self.lock();
        for (partition, offset) in next {
            if let Some(p) = t.get_mut(partition) {
                p.committed = Some(*offset);
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<PartitionSnapshot> {
        self.lock().values().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, PartitionSnapshot>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_assignment_progress_and_commits() {
        let t = PartitionTable::default();
        t.assign(&BTreeMap::from([(0, 10), (1, 0)]));
        t.progress(0, 15, 40);
        t.progress(7, 1, 1); // not owned: ignored
        t.committed(&BTreeMap::from([(0, 15), (1, 0)]));
        let s = ConsumeSnapshot {
            partitions: t.snapshot(),
            ..Default::default()
        };
        assert_eq!(s.partitions.len(), 2);
        assert_eq!(s.partitions[0].lag(), 25);
        assert_eq!(s.partitions[1].lag(), 0, "no fetch yet: no lag known");
        t.revoke(&[0]);
        assert_eq!(
            t.snapshot().iter().map(|p| p.partition).collect::<Vec<_>>(),
            [1]
        );
    }
}
