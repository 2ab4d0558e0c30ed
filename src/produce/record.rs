//! A raw record on its way to Kafka: the exact bytes received, the key and the receive time.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use crate::produce::spill::Ticket;

#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The tweet's `id_str`; `None` for deletes and other control records.
    pub key: Option<Bytes>,
    /// The message exactly as received, without its framing.
    pub value: Bytes,
    /// When the message was read off the stream (the Kafka record timestamp).
    pub received: DateTime<Utc>,
    /// Read back from the spill: its segment's ticket, acknowledged once the record is safe.
    pub spill: Option<Arc<Ticket>>,
    /// Kafka's murmur2 of `key`, computed where the record is made: there the key's bytes are
    /// in the cache; the batcher, on another thread, would take a cache miss per record.
    pub key_hash: Option<i32>,
}

impl RawRecord {
    pub fn new(
        key: Option<Bytes>,
        value: Bytes,
        received: DateTime<Utc>,
        spill: Option<Arc<Ticket>>,
    ) -> Self {
        let key_hash = key.as_deref().map(crate::kafka::partitioner::murmur2);
        RawRecord {
            key,
            value,
            received,
            spill,
            key_hash,
        }
    }

    /// Bytes this record holds in memory, for the channel's byte bound and batch sizing.
    pub fn size(&self) -> usize {
        self.value.len() + self.key.as_ref().map_or(0, Bytes::len)
    }

    /// A keyless record of `n` bytes, for unit tests of what carries records.
    #[cfg(test)]
    pub fn filler(n: usize) -> Self {
        RawRecord::new(None, Bytes::from(vec![b'x'; n]), chrono::Utc::now(), None)
    }
}
