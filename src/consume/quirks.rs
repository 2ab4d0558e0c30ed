//! What brokers do that the protocol guide does not lead one to expect, and what rskafka
//! cannot tell us by variant: the workarounds, in one named place.
//!
//! - tansu 0.6.0 answers a fetch from an offset inside a record batch with the *next* batch
//!   (Kafka returns the whole batch and the client drops the records before the offset), which
//!   would silently lose the rest of the batch for a consumer resuming from a committed
//!   offset: [`fetch_inside_batch`].
//! - tansu fetches wait the client's whole max wait even when records are there, so a fetch
//!   that is catching up asks for no wait at all (see `fetch.rs`).
//! - tansu's ListOffsets "latest" can lag behind the true end; the end is taken from a
//!   fetch's high watermark instead ([`high_watermark`]).
//! - tansu completes a group's generation as soon as one member rejoins, without waiting for
//!   the others (Kafka waits for every member, up to the rebalance timeout): a member can be
//!   handed a partition that another member still reads, until that one's next heartbeat
//!   tells it to revoke and it commits. Reading a gained partition from the group's offsets
//!   at once would start before that last commit, and both would write the records in
//!   between. So a member that gains partitions, and is not alone in the group, waits
//!   [`handover_wait`] before reading them, unless the coordinator is seen to refuse a
//!   heartbeat of an older generation (Kafka and Redpanda do, and they complete a rebalance
//!   only once every member has rejoined; tansu takes it for a rebalance).
//! - A fetch answer can carry a record batch more than once (seen on tansu 0.6.0, under load:
//!   the same five records three times in one answer), and rskafka drops only the records
//!   before the requested offset. Handing such an answer on would write those records again:
//!   [`in_offset_order`] keeps each offset once, in increasing order.
//! - rskafka reports a record batch compressed with a codec it was built without (we link no C
//!   codecs: lz4 and zstd) as a request error whose innermost cause, a malformed-read error of
//!   a type rskafka keeps private, names the codec in its message. The public variant is
//!   matched, and the codec read from that cause's message ([`unsupported_codec`]).

use std::time::Duration;

use rskafka::client::error::{Error as ClientError, ProtocolError, RequestError};
use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;

use crate::kafka::error::limited;
use crate::kafka::Error;

/// Fetches from an offset that lies inside a record batch: steps back (1, 2, 4, … records, at
/// most 4,096) until the batch holding `offset` comes back, and keeps the records from
/// `offset` on. On Kafka this runs only where the log really has a gap (compaction,
/// transaction markers), and costs a few fetches.
pub(crate) async fn fetch_inside_batch(
    pc: &PartitionClient,
    offset: i64,
    fetch_bytes: i32,
    limit: Duration,
) -> Option<Vec<RecordAndOffset>> {
    let mut back = 1i64;
    while back <= 4096 {
        let from = (offset - back).max(0);
        let Ok(Ok((records, _))) =
            tokio::time::timeout(limit, pc.fetch_records(from, 1..fetch_bytes, 1)).await
        else {
            return None;
        };
        if records.first().is_some_and(|r| r.offset <= offset) || from == 0 {
            return Some(records.into_iter().filter(|r| r.offset >= offset).collect());
        }
        back *= 2;
    }
    None
}

/// The records of a fetch answer from `next` on, each offset once and in increasing order
/// (see the module documentation), and how many were left out.
pub(crate) fn in_offset_order(
    records: Vec<RecordAndOffset>,
    mut next: i64,
) -> (Vec<RecordAndOffset>, usize) {
    let before = records.len();
    let kept: Vec<RecordAndOffset> = records
        .into_iter()
        .filter(|r| {
            let new = r.offset >= next;
            if new {
                next = r.offset + 1;
            }
            new
        })
        .collect();
    let left_out = before - kept.len();
    (kept, left_out)
}

/// How long a member waits before reading partitions it gained in a rebalance: time for the
/// previous owner's next heartbeat, and a second for it to make its output durable and
/// commit.
pub(crate) fn handover_wait(heartbeat_interval: Duration) -> Duration {
    heartbeat_interval + Duration::from_secs(1)
}

/// The codec of a record batch rskafka could not decompress, if that is what `e` is.
pub(crate) fn unsupported_codec(e: &ClientError) -> Option<&'static str> {
    let ClientError::Request(RequestError::ReadVersionedError(read)) = e else {
        return None;
    };
    let mut cause: &dyn std::error::Error = read;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let text = cause.to_string();
    if !text.starts_with("Unimplemented compression") {
        return None;
    }
    Some(if text.contains("Lz4") {
        "lz4"
    } else if text.contains("Zstd") {
        "zstd"
    } else {
        "unknown"
    })
}

/// Whether `e` says the offset is no longer (or not yet) in the log.
pub(crate) fn offset_out_of_range(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }
    )
}

/// The end of the partition, from a fetch's high watermark.
pub(crate) async fn high_watermark(pc: &PartitionClient, timeout: Duration) -> Result<i64, Error> {
    let earliest = offset_at(pc, OffsetAt::Earliest, timeout).await?;
    let (_, hw) = limited(
        "fetching the high watermark",
        timeout,
        pc.fetch_records(earliest, 1..2, 1),
    )
    .await?;
    Ok(hw)
}

pub(crate) async fn offset_at(
    pc: &PartitionClient,
    at: OffsetAt,
    timeout: Duration,
) -> Result<i64, Error> {
    limited("listing offsets", timeout, pc.get_offset(at)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rskafka::record::Record;

    fn at(offsets: &[i64]) -> Vec<RecordAndOffset> {
        offsets
            .iter()
            .map(|&offset| RecordAndOffset {
                record: Record {
                    key: None,
                    value: Some(offset.to_string().into_bytes()),
                    headers: Default::default(),
                    timestamp: chrono::DateTime::UNIX_EPOCH,
                },
                offset,
            })
            .collect()
    }

    fn offsets(records: &[RecordAndOffset]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn a_batch_repeated_in_one_answer_is_handed_on_once() {
        // What tansu sent: one batch three times, then the next one.
        let answer = at(&[
            9987, 9988, 9989, 9987, 9988, 9989, 9987, 9988, 9989, 9990, 9991,
        ]);
        let (kept, left_out) = in_offset_order(answer, 9987);
        assert_eq!(offsets(&kept), vec![9987, 9988, 9989, 9990, 9991]);
        assert_eq!(left_out, 6);
    }

    #[test]
    fn records_before_the_fetch_offset_and_going_back_are_left_out() {
        let (kept, left_out) = in_offset_order(at(&[5, 6, 7, 8, 6, 9, 12]), 7);
        assert_eq!(
            offsets(&kept),
            vec![7, 8, 9, 12],
            "gaps (compaction) stay gaps"
        );
        assert_eq!(left_out, 3);
        let (kept, left_out) = in_offset_order(at(&[]), 3);
        assert!(kept.is_empty() && left_out == 0);
    }
}
