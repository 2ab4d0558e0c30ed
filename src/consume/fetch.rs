//! Fetching one partition: a fetch loop that reads ahead, and beside it a forwarder that
//! enriches and encodes each fetch for the sink while the loop waits for the next one.
//!
//! The broker's answer time and the enrichment overlap instead of adding up, and with more
//! than one runtime worker the partitions' forwarders enrich in parallel. The forwarder
//! enriches on its runtime worker, a few ms per fetch, rather than on tokio's blocking pool:
//! the pool's thread hand-offs, and records allocated on one thread and freed on another,
//! cost more than they saved (docs/performance.md). The writer is not starved by it: it is the
//! future the runtime blocks on, so it has the main thread to itself; and a forwarder that is
//! ahead waits on the writer's channel.
//!
//! Per partition, at most `ENRICH_AHEAD + 2` fetches are between the broker and the writer's
//! channel (queued, with the forwarder, and the one the fetch loop waits to queue), which
//! bounds the memory it takes: about three fetches per partition at worst (see
//! [`fetch_max_bytes`]), plus the writer's channel.

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{OffsetAt, PartitionClient};
use rskafka::record::RecordAndOffset;
use tokio::sync::mpsc;

use super::quirks;
use super::stats::Observed;
use crate::enrich::Enricher;
use crate::sink::{ConsumedRecord, Encoded, Encoder};

/// Upper bound of one fetch response: ~600 tweets of 3-5 KB. Each round trip has a fixed cost
/// on the broker, and a partition has one fetch on its way at a time, so larger fetches read
/// more per second, up to the point where the allocator maps every buffer fresh
/// (docs/performance.md has the figures).
const FETCH_MAX_BYTES: i32 = 2 * 1024 * 1024;

/// What all partitions together may hold fetched ahead of the writer. A topic with many
/// partitions gets smaller fetches rather than more memory: 2 MiB up to 10 partitions,
/// ~360 KiB at 60, never under 256 KiB.
const FETCHED_AHEAD_BYTES: usize = 64 * 1024 * 1024;

/// Fetches per partition queued for the forwarder. One is enough for the overlap.
const ENRICH_AHEAD: usize = 1;

/// How a partition's fetches are made.
#[derive(Clone, Copy)]
pub(crate) struct FetchLimits {
    /// Longest wait of one fetch for new records.
    pub(crate) wait: Duration,
    /// The broker's time limit.
    pub(crate) timeout: Duration,
    /// The most one fetch asks for (see [`fetch_max_bytes`]).
    pub(crate) bytes: i32,
}

/// The most one fetch asks for on a topic of `partitions` partitions.
pub(crate) fn fetch_max_bytes(partitions: usize) -> i32 {
    let share = FETCHED_AHEAD_BYTES / (partitions.max(1) * (ENRICH_AHEAD + 2));
    share.clamp(256 * 1024, FETCH_MAX_BYTES as usize) as i32
}

/// What a partition's task hands the writer.
pub(crate) enum Fetched {
    /// One fetch's records, enriched and encoded.
    Batch {
        encoded: Encoded,
        observed: Observed,
        high_watermark: i64,
    },
    /// Reading cannot go on (e.g. a batch compressed with a codec we do not link).
    Fatal(String),
}

/// What a partition's fetch loop hands its forwarder, in fetch order.
enum Job {
    Records {
        records: Vec<RecordAndOffset>,
        high_watermark: i64,
    },
    Fatal(String),
}

/// Everything a partition's tasks share.
pub(crate) struct Partition {
    pub(crate) client: Arc<PartitionClient>,
    pub(crate) id: i32,
    pub(crate) limits: FetchLimits,
    pub(crate) enricher: Arc<Enricher>,
    pub(crate) encoder: Arc<dyn Encoder>,
}

/// Reads `partition` from `offset` on, forever (the caller aborts it), handing each fetch,
/// enriched and encoded, to `tx`.
pub(crate) async fn run(partition: Partition, offset: i64, tx: mpsc::Sender<Fetched>) {
    let (jobs, jobs_rx) = mpsc::channel::<Job>(ENRICH_AHEAD);
    let forwarder = tokio::spawn(forward(
        partition.id,
        partition.enricher.clone(),
        partition.encoder.clone(),
        jobs_rx,
        tx,
    ));
    // Ends with the fetch loop: aborted, or its owner gone (the forwarder's sends fail).
    let _forwarder = AbortOnDrop(forwarder);
    fetch_loop(&partition, offset, jobs).await;
}

/// Enriches and encodes each fetch, in fetch order.
async fn forward(
    partition: i32,
    enricher: Arc<Enricher>,
    encoder: Arc<dyn Encoder>,
    mut jobs: mpsc::Receiver<Job>,
    tx: mpsc::Sender<Fetched>,
) {
    while let Some(job) = jobs.recv().await {
        let (records, high_watermark) = match job {
            Job::Records {
                records,
                high_watermark,
            } => (records, high_watermark),
            Job::Fatal(message) => {
                let _ = tx.send(Fetched::Fatal(message)).await;
                return;
            }
        };
        let build = || encode(&enricher, &*encoder, partition, records);
        // A panic while enriching is a bug; stop the run (exit 1, nothing committed past what
        // was written) rather than leave this partition silently stalled.
        let fetched = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)) {
            Ok((encoded, observed)) => Fetched::Batch {
                encoded,
                observed,
                high_watermark,
            },
            Err(panic) => Fetched::Fatal(format!(
                "enriching partition {partition} failed: {}; this is a bug, please report it with the record at the partition's next offset",
                panic_text(&panic)
            )),
        };
        if tx.send(fetched).await.is_err() {
            return;
        }
    }
}

fn encode(
    enricher: &Enricher,
    encoder: &dyn Encoder,
    partition: i32,
    records: Vec<RecordAndOffset>,
) -> (Encoded, Observed) {
    let bytes = records
        .iter()
        .map(|r| encoder.estimate(r.record.value.as_ref().map_or(0, Vec::len)))
        .sum();
    let mut encoded = Encoded::with_capacity(partition, records.len(), bytes);
    let mut observed = Observed::with_capacity(records.len());
    for r in records {
        let value = r.record.value.as_deref().unwrap_or_default();
        let outcome = enricher.enrich(value);
        let record = ConsumedRecord {
            partition,
            offset: r.offset,
            value,
        };
        encoder.encode(&record, &outcome, &mut encoded);
        observed.push(&outcome);
    }
    (encoded, observed)
}

/// Fetches from `offset` on, handing each answer to the forwarder; transient errors are
/// retried with back-off, a record batch we cannot decode ends the run.
async fn fetch_loop(p: &Partition, mut offset: i64, jobs: mpsc::Sender<Job>) {
    let FetchLimits {
        wait,
        timeout,
        bytes,
    } = p.limits;
    let (partition, pc) = (p.id, &p.client);
    let long_wait_ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
    // The first fetch asks for what is there now: a consumer starting on a backlog (a restart,
    // a new group) must not wait out a max wait first. Caught up, fetches wait long.
    let mut wait_ms = 0;
    let mut retry = crate::backoff::Retry::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let got =
            tokio::time::timeout(timeout + wait, pc.fetch_records(offset, 1..bytes, wait_ms)).await;
        let err = match got {
            Ok(Ok((records, high_watermark))) => {
                tracing::debug!(
                    partition,
                    offset,
                    records = records.len(),
                    high_watermark,
                    "fetched"
                );
                let records = settle(p, offset, records, high_watermark).await;
                retry.reset();
                // Catching up, ask for what is there now; caught up, wait long for news. Kafka
                // answers at once when data is there anyway, but tansu waits out the full max
                // wait on every fetch, which capped a backlog at one fetch per max wait.
                wait_ms = if records.is_empty() { long_wait_ms } else { 0 };
                if let Some(last) = records.last() {
                    offset = last.offset + 1;
                }
                let job = Job::Records {
                    records,
                    high_watermark,
                };
                if jobs.send(job).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => {
                tracing::warn!(
                    partition,
                    offset,
                    "fetch: no answer within {:?}; retrying",
                    timeout + wait
                );
                continue;
            }
        };
        match after_error(pc, partition, offset, &err, &jobs).await {
            AfterError::Fatal => {
                // Stay until the forwarder has passed everything on, the fatal error last.
                drop(jobs);
                std::future::pending::<()>().await;
                return;
            }
            AfterError::SkipTo(earliest) => {
                offset = earliest;
                continue;
            }
            AfterError::Retry => {}
        }
        let wait = retry.next_wait().unwrap_or(Duration::from_secs(5));
        tracing::warn!(
            partition,
            offset,
            "fetch failed: {err}; retrying in {wait:?}"
        );
        tokio::time::sleep(wait).await;
    }
}

/// A fetch answer's records from `offset` on, each once and in order, whatever the broker
/// sent (see [`quirks`]).
async fn settle(
    p: &Partition,
    offset: i64,
    mut records: Vec<RecordAndOffset>,
    high_watermark: i64,
) -> Vec<RecordAndOffset> {
    let gap = records
        .first()
        .map_or(high_watermark > offset, |r| r.offset > offset);
    if gap && offset > 0 {
        let limit = p.limits.timeout + p.limits.wait;
        records = quirks::fetch_inside_batch(&p.client, offset, p.limits.bytes, limit)
            .await
            .unwrap_or(records);
    }
    let (records, left_out) = quirks::in_offset_order(records, offset);
    if left_out > 0 {
        tracing::debug!(
            partition = p.id,
            offset,
            left_out,
            "the fetch answer repeated records; each is handed on once"
        );
    }
    records
}

/// What a failed fetch means for the loop.
enum AfterError {
    /// The error was handed on as fatal: stop fetching.
    Fatal,
    /// Records before this offset are gone (retention): go on from it.
    SkipTo(i64),
    /// Wait, then try again.
    Retry,
}

async fn after_error(
    pc: &PartitionClient,
    partition: i32,
    offset: i64,
    err: &rskafka::client::error::Error,
    jobs: &mpsc::Sender<Job>,
) -> AfterError {
    if let Some(codec) = quirks::unsupported_codec(err) {
        let _ = jobs
            .send(Job::Fatal(format!(
                "partition {partition} at offset {offset} holds a {codec}-compressed record batch; tweetpipe links no C codecs and reads only uncompressed, gzip and snappy batches. Have the producer use gzip or snappy"
            )))
            .await;
        return AfterError::Fatal;
    }
    if quirks::offset_out_of_range(err) {
        if let Ok(earliest) = pc.get_offset(OffsetAt::Earliest).await {
            if earliest > offset {
                tracing::warn!(
                    partition,
                    from = offset,
                    to = earliest,
                    "records before {earliest} were deleted by retention; skipping ahead"
                );
                return AfterError::SkipTo(earliest);
            }
        }
    }
    AfterError::Retry
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

/// Aborts a task when dropped (here: the forwarder, when its fetch loop is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_shrink_with_the_partition_count_and_stay_bounded() {
        assert_eq!(fetch_max_bytes(1), FETCH_MAX_BYTES);
        assert_eq!(fetch_max_bytes(10), FETCH_MAX_BYTES);
        assert!(fetch_max_bytes(11) < FETCH_MAX_BYTES);
        assert_eq!(fetch_max_bytes(60), 372_827);
        assert_eq!(fetch_max_bytes(1000), 256 * 1024);
        for n in 1..=85 {
            let ahead = n * (ENRICH_AHEAD + 2) * fetch_max_bytes(n) as usize;
            assert!(ahead <= FETCHED_AHEAD_BYTES, "{n} partitions: {ahead}");
        }
    }
}
