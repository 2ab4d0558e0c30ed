//! Where reading starts in each partition: the group's committed offset, the earliest or the
//! latest record, or the first record at or after a time; then moved past anything the sink
//! already holds, so no record is written twice.

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

/// Each partition's first offset to read. `committed` are the group's offsets, `resumed` what
/// the sink says it already holds up to (only when starting from the committed offsets: an
/// explicit start means "read again from there").
pub(crate) async fn resolve(
    clients: &[(i32, Arc<PartitionClient>)],
    from: &StartFrom,
    committed: &BTreeMap<i32, i64>,
    resumed: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, Error> {
    let mut next = BTreeMap::new();
    for (p, pc) in clients {
        let start = match from {
            StartFrom::Committed => match committed.get(p) {
                Some(o) => *o,
                None => offset_at(pc, OffsetAt::Earliest, timeout).await?,
            },
            StartFrom::Earliest => offset_at(pc, OffsetAt::Earliest, timeout).await?,
            StartFrom::Latest => high_watermark(pc, timeout).await?,
            StartFrom::Time(t) => {
                let o = offset_at(pc, OffsetAt::Timestamp(*t), timeout).await?;
                if o < 0 {
                    high_watermark(pc, timeout).await?
                } else {
                    o
                }
            }
        };
        let start = match resumed.get(p) {
            Some(r) if *r > start && *from == StartFrom::Committed => *r,
            _ => start,
        };
        next.insert(*p, start);
    }
    Ok(next)
}
