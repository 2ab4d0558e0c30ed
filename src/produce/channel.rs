//! The bounded channel between the stream reader and the producer, bounded both in records
//! and in bytes (tweets vary from 1 KB to 20 KB, so a record count alone does not bound
//! memory).
//!
//! The live reader uses `try_send`, which never waits: a full channel hands the record back
//! for the overflow policy to deal with. File replay uses `send`, which waits, because a file
//! cannot run away from us and waiting loses nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use super::record::RawRecord;

struct Shared {
    /// One permit per byte of queued record data.
    bytes: Semaphore,
    max_bytes: usize,
    queued_bytes: AtomicUsize,
}

#[derive(Clone)]
pub(crate) struct Sender {
    tx: mpsc::Sender<RawRecord>,
    shared: Arc<Shared>,
}

pub(crate) struct Receiver {
    rx: mpsc::Receiver<RawRecord>,
    shared: Arc<Shared>,
}

/// How much is queued: for the stats line.
#[derive(Clone)]
pub(crate) struct Depth {
    tx: mpsc::WeakSender<RawRecord>,
    shared: Arc<Shared>,
    capacity: usize,
}

pub(crate) fn channel(capacity: usize, max_bytes: usize) -> (Sender, Receiver) {
    let capacity = capacity.max(1);
    let max_bytes = max_bytes.clamp(1, u32::MAX as usize);
    let (tx, rx) = mpsc::channel(capacity);
    let shared = Arc::new(Shared {
        bytes: Semaphore::new(max_bytes),
        max_bytes,
        queued_bytes: AtomicUsize::new(0),
    });
    (
        Sender {
            tx,
            shared: shared.clone(),
        },
        Receiver { rx, shared },
    )
}

impl Shared {
    /// A record larger than the whole bound still fits alone, as the bound's worth.
    fn cost(&self, record: &RawRecord) -> u32 {
        record.size().clamp(1, self.max_bytes) as u32
    }
}

impl Sender {
    /// Never waits. `Err` gives the record back when the channel is full (or closed).
    pub(crate) fn try_send(&self, record: RawRecord) -> Result<(), RawRecord> {
        let cost = self.shared.cost(&record);
        let Ok(permit) = self.shared.bytes.try_acquire_many(cost) else {
            return Err(record);
        };
        let size = record.size();
        match self.tx.try_send(record) {
            Ok(()) => {
                permit.forget();
                self.shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) => {
                Err(r)
            }
        }
    }

    /// Waits for room. `Err` only when the receiver is gone.
    pub(crate) async fn send(&self, record: RawRecord) -> Result<(), RawRecord> {
        let cost = self.shared.cost(&record);
        let Ok(permit) = self.shared.bytes.acquire_many(cost).await else {
            return Err(record);
        };
        let size = record.size();
        match self.tx.send(record).await {
            Ok(()) => {
                permit.forget();
                self.shared.queued_bytes.fetch_add(size, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::SendError(r)) => Err(r),
        }
    }

    pub(crate) fn depth(&self) -> Depth {
        Depth {
            tx: self.tx.downgrade(),
            shared: self.shared.clone(),
            capacity: self.tx.max_capacity(),
        }
    }
}

impl Receiver {
    pub(crate) async fn recv(&mut self) -> Option<RawRecord> {
        let record = self.rx.recv().await?;
        self.release(&record);
        Some(record)
    }

    pub(crate) fn try_recv(&mut self) -> Option<RawRecord> {
        let record = self.rx.try_recv().ok()?;
        self.release(&record);
        Some(record)
    }

    /// Takes no more records; what is queued can still be taken with [`Receiver::try_recv`].
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }

    fn release(&self, record: &RawRecord) {
        self.shared
            .queued_bytes
            .fetch_sub(record.size(), Ordering::Relaxed);
        self.shared
            .bytes
            .add_permits(self.shared.cost(record) as usize);
    }
}

impl Depth {
    /// (records queued, bytes queued)
    pub(crate) fn get(&self) -> (usize, usize) {
        let records = self
            .tx
            .upgrade()
            .map_or(0, |tx| self.capacity - tx.capacity());
        (records, self.shared.queued_bytes.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> RawRecord {
        RawRecord::filler(n)
    }

    #[tokio::test]
    async fn bounded_by_records_and_by_bytes() {
        let (tx, mut rx) = channel(3, 100);
        assert!(tx.try_send(rec(10)).is_ok());
        assert!(tx.try_send(rec(10)).is_ok());
        assert!(tx.try_send(rec(90)).is_err(), "byte bound");
        assert!(tx.try_send(rec(10)).is_ok());
        assert!(tx.try_send(rec(1)).is_err(), "record bound");
        assert_eq!(tx.depth().get(), (3, 30));
        rx.recv().await.unwrap();
        assert_eq!(tx.depth().get(), (2, 20));
        assert!(tx.try_send(rec(80)).is_ok());
        assert!(tx.try_send(rec(1)).is_err());
    }
}
