//! Where reading starts in each partition: where the sink's own durable state says, else the
//! group's committed offset, else the earliest or the latest record, or the first record at or
//! after a time ([`Rule`] says how an explicit start combines with the committed offsets).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rskafka::client::partition::{OffsetAt, PartitionClient};

use super::quirks::{high_watermark, offset_at};
use crate::kafka::Error;

/// Where to start reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartFrom {
    /// The group's committed offsets, else the earliest record.
    Committed,
    Earliest,
    Latest,
    /// The first record at or after this time.
    Time(DateTime<Utc>),
}

/// How a start request combines with the group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// A member of a group: a partition with a committed offset always starts there (after
    /// a rebalance, the partition goes on where its last reader stopped); `from` is for the
    /// partitions that have none (Kafka's `auto.offset.reset`).
    Group,
    /// A simple consumer of every partition: an explicit `from` means "read again from
    /// there", for every partition.
    Simple,
}

/// Each partition's first offset to read. `committed` are the group's offsets, `resumed`
/// where the sink's own durable state says to go on (it wins over the group's offsets, except
/// when a simple consumer is told to start elsewhere).
pub(crate) async fn resolve(
    clients: &[(i32, Arc<PartitionClient>)],
    from: &StartFrom,
    committed: &BTreeMap<i32, i64>,
    resumed: &BTreeMap<i32, i64>,
    timeout: Duration,
    rule: Rule,
) -> Result<BTreeMap<i32, i64>, Error> {
    let positions_count = rule == Rule::Group || *from == StartFrom::Committed;
    let mut next = BTreeMap::new();
    for (p, pc) in clients {
        let known = resumed
            .get(p)
            .or(committed.get(p))
            .filter(|_| positions_count);
        let start = match (known, from) {
            (Some(o), _) => *o,
            (None, StartFrom::Committed | StartFrom::Earliest) => {
                offset_at(pc, OffsetAt::Earliest, timeout).await?
            }
            (None, StartFrom::Latest) => high_watermark(pc, timeout).await?,
            (None, StartFrom::Time(t)) => {
                let o = offset_at(pc, OffsetAt::Timestamp(*t), timeout).await?;
                if o < 0 {
                    high_watermark(pc, timeout).await?
                } else {
                    o
                }
            }
        };
        next.insert(*p, start);
    }
    Ok(next)
}
