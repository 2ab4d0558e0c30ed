//! The batching producer: drains the channel into one batch per partition, sends a batch
//! when it reaches its byte size or has lingered long enough, and counts records as delivered
//! only when the broker acknowledged them (acks from all in-sync replicas).
//!
//! Several requests per partition (`max_in_flight`) overlap with the broker's work; they are
//! written in the order their records were read, so a partition keeps that order unless a
//! request fails and is retried after a later one succeeded (as with any non-idempotent Kafka
//! producer; one in flight rules that out). A failed request is retried with back-off until
//! the delivery timeout; after that its records count as failed. While a partition's
//! requests are in flight its next batch fills up; once that batch is full too, the producer
//! stops taking from the channel and the channel absorbs the difference.
//!
//! With the disk spill on, nothing taken from the channel is given up: a batch not
//! acknowledged within the delivery timeout is spilled again (and sent later by the drain),
//! and when the caller cancels (shutdown with Kafka away), everything queued, batched or in
//! flight is spilled before `run` returns. A record read back from the spill acknowledges its
//! segment's ticket once it is safe again, so the segment can be deleted.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use rskafka::client::partition::{Compression, PartitionClient};
use rskafka::record::Record;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::channel::Receiver;
use super::record::RawRecord;
use super::spill::{Offered, Spill};
use super::stats::Stats;
use crate::backoff::Retry;
use crate::kafka::partitioner::Partitioner;

#[derive(Debug, Clone)]
pub(crate) struct BatcherConfig {
    /// How long a partition's batch may wait for more records.
    pub(crate) linger: Duration,
    /// A batch is sent once it holds this many bytes; no request carries more unless one
    /// record alone is larger.
    pub(crate) batch_bytes: usize,
    pub(crate) compression: Compression,
    /// A batch not acknowledged by then counts as failed (or is spilled again).
    pub(crate) delivery_timeout: Duration,
    /// Time limit of one produce request.
    pub(crate) request_timeout: Duration,
    /// Requests in flight per partition; above 1, a retried request can land after a later one.
    pub(crate) max_in_flight: usize,
}

#[derive(Default)]
struct Batch {
    records: Vec<RawRecord>,
    bytes: usize,
    since: Option<Instant>,
    in_flight: usize,
}

impl Batch {
    /// The records to send now, and their bytes. Never more than `batch_bytes` unless one
    /// record alone is larger: the record that took the batch over (see [`fill`]) starts the
    /// next batch instead. So `--batch-bytes` at or under the broker's `message.max.bytes`
    /// is enough for every request to be accepted.
    fn take(&mut self, batch_bytes: usize) -> (Vec<RawRecord>, u64) {
        let mut records = std::mem::take(&mut self.records);
        let mut bytes = std::mem::take(&mut self.bytes);
        self.since = None;
        if bytes > batch_bytes && records.len() > 1 {
            let last = records.pop().expect("more than one record");
            bytes -= last.size();
            self.bytes = last.size();
            self.since = Some(Instant::now());
            self.records.push(last);
        }
        (records, bytes as u64)
    }
}

struct Sent {
    partition: usize,
    records: Vec<RawRecord>,
    bytes: u64,
    result: Result<(), String>,
}

pub(crate) struct Batcher {
    partitions: Vec<Arc<PartitionClient>>,
    cfg: BatcherConfig,
    /// Turns true when the caller gives up waiting: stop retrying, spill what is left.
    cancel: watch::Receiver<bool>,
    stats: Arc<Stats>,
    spill: Option<Arc<Spill>>,
}

impl Batcher {
    pub(crate) fn new(
        partitions: Vec<Arc<PartitionClient>>,
        cfg: BatcherConfig,
        cancel: watch::Receiver<bool>,
        stats: Arc<Stats>,
        spill: Option<Arc<Spill>>,
    ) -> Self {
        Batcher {
            partitions,
            cfg,
            cancel,
            stats,
            spill,
        }
    }

    /// Runs until the channel is closed and everything taken from it has been delivered or
    /// has failed. (One loop over one `select!`, longer than most functions here: its
    /// branches all act on the same batches and counts, which splitting it would only pass
    /// around.)
    // One loop on purpose (85 lines): every arm of its select reads and changes the same
    // batches, in-flight counts and cancel state; split up, that state would travel through
    // every piece and the order of the steps would be harder to see.
    pub(crate) async fn run(self, mut rx: Receiver) {
        let n = self.partitions.len();
        let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
        let mut partitioner = Partitioner::default();
        // One sender task per partition: partitions encode and send in parallel, and within a
        // partition requests are first polled, and so written, in the order they were queued.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Sent>();
        let senders: Vec<mpsc::UnboundedSender<(Vec<RawRecord>, u64)>> = (0..n)
            .map(|p| {
                spawn_sender(
                    p,
                    self.partitions[p].clone(),
                    (self.cfg.clone(), self.cancel.clone()),
                    self.stats.clone(),
                    done_tx.clone(),
                )
            })
            .collect();
        let mut outstanding = 0usize;
        let mut closed = false;
        let mut cancel = self.cancel.clone();
        let mut cancelled = *cancel.borrow();
        let max_in_flight = self.cfg.max_in_flight.max(1);
        loop {
            if cancelled {
                // Nothing more goes to Kafka: what is batched or still queued is kept on disk.
                for b in &mut batches {
                    let records = std::mem::take(&mut b.records);
                    b.bytes = 0;
                    b.since = None;
                    self.give_up(records, "tweetpipe is stopping");
                }
            }
            // Room to take more: no partition is both busy and holding a full next batch.
            let room = !batches
                .iter()
                .any(|b| b.in_flight >= max_in_flight && b.bytes >= self.cfg.batch_bytes);
            let next_due = batches
                .iter()
                .filter(|b| b.in_flight < max_in_flight)
                .filter_map(|b| b.since)
                .min()
                .map(|t| t + self.cfg.linger);
            tokio::select! {
                biased;
                Some(sent) = done_rx.recv(), if outstanding > 0 => {
                    outstanding -= 1;
                    batches[sent.partition].in_flight -= 1;
                    self.account(sent);
                }
                _ = cancel.changed(), if !cancelled => cancelled = true,
                rec = rx.recv(), if !closed && (room || cancelled) => match rec {
                    Some(first) if cancelled => self.give_up(vec![first], "tweetpipe is stopping"),
                    Some(first) => fill(
                        &mut batches,
                        first,
                        || rx.try_recv(),
                        &mut partitioner,
                        self.cfg.batch_bytes,
                    ),
                    None => closed = true,
                },
                _ = sleep_until_opt(next_due), if next_due.is_some() => {}
            }
            let now = Instant::now();
            for (p, b) in batches.iter_mut().enumerate() {
                let due = b.since.is_some_and(|t| now >= t + self.cfg.linger);
                if !cancelled
                    && b.in_flight < max_in_flight
                    && !b.records.is_empty()
                    && (closed || due || b.bytes >= self.cfg.batch_bytes)
                {
                    let (records, bytes) = b.take(self.cfg.batch_bytes);
                    b.in_flight += 1;
                    outstanding += 1;
                    senders[p]
                        .send((records, bytes))
                        .expect("sender tasks live as long as the producer");
                }
            }
            if closed && outstanding == 0 && batches.iter().all(|b| b.records.is_empty()) {
                return;
            }
        }
    }

    fn account(&self, sent: Sent) {
        match &sent.result {
            Ok(()) => {
                Stats::add(&self.stats.delivered, sent.records.len() as u64);
                Stats::add(&self.stats.delivered_bytes, sent.bytes);
                for r in &sent.records {
                    if let Some(t) = &r.spill {
                        t.ack(true);
                    }
                }
            }
            Err(e) => {
                tracing::error!(
                    partition = sent.partition,
                    records = sent.records.len(),
                    "no acknowledgement for a batch: {e}"
                );
                self.give_up(sent.records, "Kafka did not acknowledge them");
            }
        }
    }

    /// Records that will not be sent by this producer: back to the spill, or counted as
    /// failed when there is none.
    fn give_up(&self, records: Vec<RawRecord>, why: &str) {
        if records.is_empty() {
            return;
        }
        let Some(spill) = &self.spill else {
            Stats::add(&self.stats.failed, records.len() as u64);
            // Not safe: a kept cursor must stay before them, so the next run reads them again.
            for r in &records {
                if let Some(mark) = &r.cursor {
                    mark.hold();
                }
            }
            return;
        };
        // A record from the spill that cannot be spilled again stays in its old segment (not
        // acknowledged, so that segment is kept for the next run); a live one is lost, and
        // counted as dropped by the spill.
        let kept = records
            .iter()
            .filter(|r| spill.keep(r) == Offered::Spilled)
            .count();
        tracing::warn!(
            records = records.len(),
            spilled = kept,
            dir = %spill.dir().display(),
            "{why}: spilled them to disk, to be sent again"
        );
    }
}

/// Puts `first` into its partition's batch, and whatever else is already queued (`more`) too,
/// so a busy channel costs one wake-up per batch rather than per record. Stops at a batch's
/// worth taken, and as soon as the batch a record went to holds `batch_bytes`: that batch is
/// then due, at most one record over `batch_bytes` (a record [`Batch::take`] holds back for the
/// next one). Taking on regardless would let a batch reach twice `batch_bytes`.
fn fill(
    batches: &mut [Batch],
    first: RawRecord,
    mut more: impl FnMut() -> Option<RawRecord>,
    partitioner: &mut Partitioner,
    batch_bytes: usize,
) {
    let n = batches.len() as i32;
    let mut next = Some(first);
    let mut taken = 0;
    while let Some(r) = next {
        taken += r.size();
        let p = partitioner.partition_hashed(r.key_hash, n) as usize;
        let b = &mut batches[p];
        b.bytes += r.size();
        b.since.get_or_insert_with(Instant::now);
        b.records.push(r);
        next = if taken < batch_bytes && b.bytes < batch_bytes {
            more()
        } else {
            None
        };
    }
}

/// The task that sends one partition's batches, up to `--max-in-flight` at a time (the
/// batcher never queues more), and reports each outcome.
fn spawn_sender(
    partition: usize,
    client: Arc<PartitionClient>,
    cfg: (BatcherConfig, watch::Receiver<bool>),
    stats: Arc<Stats>,
    done: mpsc::UnboundedSender<Sent>,
) -> mpsc::UnboundedSender<(Vec<RawRecord>, u64)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<RawRecord>, u64)>();
    tokio::spawn(async move {
        let mut pending = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                batch = rx.recv(), if open => match batch {
                    Some((records, bytes)) => pending.push(deliver(client.clone(), partition, records, bytes, cfg.clone(), stats.clone())),
                    None => open = false,
                },
                Some(sent) = pending.next(), if !pending.is_empty() => {
                    let _ = done.send(sent);
                }
                else => return,
            }
        }
    });
    tx
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Sends one batch, retrying until acknowledged or until the delivery timeout passes.
async fn deliver(
    client: Arc<PartitionClient>,
    partition: usize,
    records: Vec<RawRecord>,
    bytes: u64,
    (cfg, mut cancel): (BatcherConfig, watch::Receiver<bool>),
    stats: Arc<Stats>,
) -> Sent {
    let deadline = Instant::now() + cfg.delivery_timeout;
    let mut retry =
        Retry::new(Duration::from_millis(100), Duration::from_secs(5)).until(deadline.into_std());
    let count = records.len() as u64;
    let stopping = || Err("tweetpipe is stopping; not acknowledged yet".to_string());
    let result = loop {
        if *cancel.borrow() {
            break stopping();
        }
        // rskafka takes its records by value and needs `Vec<u8>`s, so each attempt copies the
        // values once; our own copy stays shared (`Bytes`) for a possible retry.
        let batch: Vec<Record> = records
            .iter()
            .map(|r| Record {
                key: r.key.as_ref().map(|k| k.to_vec()),
                value: Some(r.value.to_vec()),
                headers: Default::default(),
                timestamp: r.timestamp,
            })
            .collect();
        Stats::add(&stats.produce_requests, 1);
        let limit = cfg.request_timeout.min(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        );
        let attempt = tokio::time::timeout(limit, client.produce(batch, cfg.compression));
        let sent_at = Instant::now();
        let err = tokio::select! {
            r = attempt => {
                stats.request_latency.observe(sent_at.elapsed());
                let ok = matches!(r, Ok(Ok(_)));
                stats.kafka_ok.store(if ok { 1 } else { 2 }, std::sync::atomic::Ordering::Relaxed);
                match r {
                    Ok(Ok(_offsets)) => break Ok(()),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no acknowledgement within {limit:?}"),
                }
            }
            // The request may still reach the broker: spilled again, it can arrive twice
            // (at least once, never lost).
            _ = cancel.changed() => break stopping(),
        };
        let Some(wait) = retry.next_wait() else {
            break Err(err);
        };
        Stats::add(&stats.produce_retries, 1);
        tracing::warn!(
            partition,
            records = count,
            retry_in_ms = wait.as_millis() as u64,
            "produce failed: {err}"
        );
        // A reconnect by rskafka opens a new socket; give it TCP_NODELAY before resending.
        if crate::kafka::nodelay::enabled() {
            crate::kafka::nodelay::apply();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.changed() => break stopping(),
        }
    };
    Sent {
        partition,
        records,
        bytes,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_holds_at_most_batch_bytes_unless_one_record_is_larger() {
        let mut batches = vec![Batch::default()];
        let mut partitioner = Partitioner::default();
        let mut queued = (0..20).map(|_| RawRecord::filler(300)).collect::<Vec<_>>();
        let mut fill_from = |batches: &mut [Batch], first: usize, queued: &mut Vec<RawRecord>| {
            let more = || queued.pop();
            fill(
                batches,
                RawRecord::filler(first),
                more,
                &mut partitioner,
                1000,
            )
        };
        // An empty batch takes records until it holds 1,000 bytes.
        fill_from(&mut batches, 300, &mut queued);
        assert_eq!((batches[0].records.len(), batches[0].bytes), (4, 1200));
        // A batch that was filling (its partition busy) is topped up by one record, not by
        // another batch's worth.
        batches[0] = Batch::default();
        fill_from(&mut batches, 900, &mut Vec::new());
        fill_from(&mut batches, 300, &mut queued);
        assert_eq!((batches[0].records.len(), batches[0].bytes), (2, 1200));
        assert_eq!(queued.len(), 17, "nothing more was taken from the channel");
        // What is sent stays within 1,000 bytes; the record that took it over goes next.
        let (sent, bytes) = batches[0].take(1000);
        assert_eq!((sent.len(), bytes), (1, 900));
        assert_eq!((batches[0].records.len(), batches[0].bytes), (1, 300));
        assert!(
            batches[0].since.is_some(),
            "the held-back record lingers as a batch"
        );
        // A record larger than a batch goes alone; a batch within bounds goes whole.
        let mut big = Batch {
            records: vec![RawRecord::filler(1500)],
            bytes: 1500,
            ..Batch::default()
        };
        assert_eq!(big.take(1000).1, 1500);
        assert!(big.records.is_empty());
        let (sent, bytes) = batches[0].take(1000);
        assert_eq!((sent.len(), bytes), (1, 300));
        assert!(batches[0].records.is_empty() && batches[0].since.is_none());
    }
}
