//! A raw record on its way to Kafka: the exact bytes received, the key and the timestamp.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use super::spill::Ticket;
use super::watermark::Mark;

#[derive(Debug, Clone)]
pub(crate) struct RawRecord {
    /// The partitioning key (a tweet's `id_str`); `None` for deletes and other control records.
    pub(crate) key: Option<Bytes>,
    /// The message exactly as received, without its framing.
    pub(crate) value: Bytes,
    /// The Kafka record timestamp: when the message was read off the stream, unless the
    /// source gave its own.
    pub(crate) timestamp: DateTime<Utc>,
    /// Read back from the spill: its segment's ticket, acknowledged once the record is safe.
    pub(crate) spill: Option<Arc<Ticket>>,
    /// Kafka's murmur2 of `key`, computed where the record is made: there the key's bytes are
    /// in the cache; the batcher, on another thread, would take a cache miss per record.
    pub(crate) key_hash: Option<i32>,
    /// A live record whose source keeps a cursor (Jetstream): its place in the cursor's
    /// watermark, marked safe when the record is dropped (acknowledged, spilled or lost).
    pub(crate) cursor: Option<Arc<Mark>>,
}

impl RawRecord {
    pub(crate) fn new(
        key: Option<Bytes>,
        value: Bytes,
        timestamp: DateTime<Utc>,
        spill: Option<Arc<Ticket>>,
    ) -> Self {
        let key_hash = key.as_deref().map(crate::kafka::partitioner::murmur2);
        RawRecord {
            key,
            value,
            timestamp,
            spill,
            key_hash,
            cursor: None,
        }
    }

    /// Bytes this record holds in memory, for the channel's byte bound and batch sizing.
    pub(crate) fn size(&self) -> usize {
        self.value.len() + self.key.as_ref().map_or(0, Bytes::len)
    }

    /// A keyless record of `n` bytes, for unit tests of what carries records.
    #[cfg(test)]
    pub(crate) fn filler(n: usize) -> Self {
        RawRecord::new(None, Bytes::from(vec![b'x'; n]), chrono::Utc::now(), None)
    }
}
