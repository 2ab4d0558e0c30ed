//! `tweetpipe consume`: Kafka → parse → enrich → JSON lines, exactly once across crashes.
//!
//! One fetch task per partition reads ahead (rskafka decodes gzip and snappy batches) and has
//! each fetch enriched into output lines while it fetches the next (in parallel across
//! partitions when the runtime has more than one worker); the main task writes the lines in
//! each partition's offset order, and every
//! `--commit-interval` makes the output durable (fsync) and only then commits the next
//! offsets to the group in Kafka. On start, records that a previous run wrote past its last
//! commit are found in the `.inprogress` files and skipped (see [`crate::sink`]), so a kill at
//! any point neither loses nor duplicates a record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::RecordAndOffset;
use tokio::sync::mpsc;

use crate::shutdown::Shutdown;
use crate::cli::ConsumeArgs;
use crate::enrich::{Enricher, Outcome};
use crate::error::{Error, Result};
use crate::kafka::client::{self, limited};
use crate::kafka::group::OffsetStore;
use crate::kafka::security::Security;
use crate::sink::files::recover;
use crate::sink::{DirSink, Sink, Stream};

/// Where to start reading (`--from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    Committed,
    Earliest,
    Latest,
    Time(DateTime<Utc>),
}

impl StartFrom {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "committed" => StartFrom::Committed,
            "earliest" => StartFrom::Earliest,
            "latest" => StartFrom::Latest,
            t => StartFrom::Time(DateTime::parse_from_rfc3339(t).map(|d| d.with_timezone(&Utc)).map_err(|e| {
                Error::usage(format!(
                    "--from {t:?}: {e}; give committed, earliest, latest or an RFC 3339 time such as 2026-11-22T05:00:00Z"
                ))
            })?),
        })
    }
}

/// Upper bound of one fetch response: ~600 tweets of 3-5 KB. Each round trip has a fixed cost
/// on the broker (tansu answers ~1 ms late even when records are there), and a partition has
/// one fetch on its way at a time, so on two cores shared with the broker 2 MiB read ~7% more
/// tweets per second than 1 MiB (alternating runs: 115-120k against 107-113k per second).
/// 4 MiB was slower: buffers that size are mapped fresh (and zeroed by the kernel) on every
/// fetch instead of reused (see the malloc thresholds in `main.rs`).
const FETCH_MAX_BYTES: i32 = 2 * 1024 * 1024;

/// What all partitions together may hold fetched ahead of the writer (see [`fetch_loop`]: up
/// to ENRICH_AHEAD + 2 fetches each). A topic with many partitions gets smaller fetches rather
/// than more memory: 2 MiB up to 10 partitions, ~360 KiB at 60, never under 256 KiB.
const FETCHED_AHEAD_BYTES: usize = 64 * 1024 * 1024;

/// How a partition's fetches are made: `--fetch-wait`, the broker's time limit, and the size
/// from [`fetch_max_bytes`].
#[derive(Clone, Copy)]
struct FetchLimits {
    wait: Duration,
    timeout: Duration,
    bytes: i32,
}

/// The most one fetch asks for on a topic of `partitions` partitions.
fn fetch_max_bytes(partitions: usize) -> i32 {
    let share = FETCHED_AHEAD_BYTES / (partitions.max(1) * (ENRICH_AHEAD + 2));
    share.clamp(256 * 1024, FETCH_MAX_BYTES as usize) as i32
}

enum Fetched {
    /// One fetch's records, already enriched into output lines by the partition's task.
    Lines {
        partition: i32,
        lines: Lines,
        high_watermark: i64,
    },
    /// Reading cannot go on (e.g. a batch compressed with a codec we do not link).
    Fatal(String),
}

/// Output lines built from one fetch, in offset order. The enrichment happens beside each
/// partition's fetch task (see [`fetch_loop`]); the main task only writes, counts and
/// commits.
///
/// Everything the main task reads comes in these few buffers, not in per-tweet `String`s: a
/// string allocated on a forwarder's thread and freed on the main task's takes glibc's lock on
/// the other thread's arena, and at ~100,000 tweets/s those cross-thread frees queued on it.
#[derive(Default)]
struct Lines {
    /// The lines back to back, without newlines.
    buf: Vec<u8>,
    lines: Vec<Line>,
    /// Each tweet's language, then its hashtags lowercased, back to back (see [`Seen`]).
    words: String,
    /// End of each entry in `words`.
    word_ends: Vec<usize>,
}

struct Line {
    offset: i64,
    stream: Stream,
    /// End of this line in `buf` (it starts where the previous one ends).
    end: usize,
    /// What the stats count once the line is written.
    seen: Seen,
}

enum Seen {
    /// `words` are the indices in [`Lines::word_ends`] of the tweet's language and, after it,
    /// its hashtags.
    Tweet {
        compound: f64,
        words: std::ops::Range<usize>,
    },
    Control,
    Error,
}

impl Lines {
    fn build(enricher: &Enricher, partition: i32, records: Vec<RecordAndOffset>) -> Lines {
        let mut out = Lines {
            buf: Vec::with_capacity(records.len() * 1024),
            lines: Vec::with_capacity(records.len()),
            words: String::with_capacity(records.len() * 16),
            word_ends: Vec::with_capacity(records.len() * 3),
        };
        for r in records {
            let value = r.record.value.as_deref().unwrap_or_default();
            let (stream, seen) = build_line(enricher, value, partition, r.offset, &mut out);
            out.lines.push(Line {
                offset: r.offset,
                stream,
                end: out.buf.len(),
                seen,
            });
        }
        out
    }
}

/// Counters of the current stats window and of the whole run.
#[derive(Default)]
struct Window {
    tweets: u64,
    compound_sum: f64,
    langs: HashMap<String, u64>,
    hashtags: HashMap<String, u64>,
}

#[derive(Default)]
struct Totals {
    written: u64,
    tweets: u64,
    controls: u64,
    errors: u64,
}

pub async fn run(args: ConsumeArgs) -> Result<()> {
    let started = Instant::now();
    let brokers = client::parse_brokers(&args.kafka.brokers)?;
    let security = Security::from_args(&args.kafka)?;
    let from = StartFrom::parse(&args.from)?;
    if args.max_records == Some(0) {
        return Err(Error::usage("--max-records must be at least 1"));
    }
    if args.group.is_empty() {
        return Err(Error::usage("--group must not be empty"));
    }
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout {
        std::fs::create_dir_all(&args.output).map_err(|e| {
            Error::usage(format!(
                "cannot create --output directory {}: {e}",
                args.output.display()
            ))
        })?;
    }
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();

    let timeout = args.kafka.kafka_timeout;
    let topic = args.kafka.topic.clone();
    let kafka = client::connect(&brokers, timeout, &security).await?;
    let Some(partitions) = crate::kafka::topic::partition_count(&kafka, &topic, timeout).await?
    else {
        return Err(Error::runtime(format!(
            "topic {topic:?} does not exist on {}; check --topic, or create it with `tweetpipe topic create`",
            brokers.join(",")
        )));
    };
    let mut clients = Vec::new();
    for p in 0..partitions {
        let pc = limited(
            &format!("opening partition {p}"),
            timeout,
            kafka.partition_client(topic.clone(), p, UnknownTopicHandling::Retry),
        )
        .await
        .map_err(Error::runtime)?;
        clients.push(Arc::new(pc));
    }
    let mut store =
        OffsetStore::connect_with(&brokers, &args.group, timeout, &[], &security).await?;

    // Output first: what a previous run wrote decides where we start.
    let (mut sink, recovered) = if to_stdout {
        (
            Sink::Stdout(std::io::BufWriter::with_capacity(
                256 * 1024,
                std::io::stdout(),
            )),
            recover::Recovered::default(),
        )
    } else {
        let rec = recover::recover(&args.output).map_err(|e| {
            Error::runtime(format!(
                "cannot recover the output directory {}: {e}",
                args.output.display()
            ))
        })?;
        for (file, cut) in &rec.truncated {
            tracing::warn!(file = %file.display(), bytes = cut, "cut a torn last line left by a crash");
        }
        if !rec.files.is_empty() {
            tracing::info!(files = rec.files.len(), lines = rec.lines, written = ?rec.written, "found output of an earlier run past its last commit");
        }
        (
            Sink::Dir(Box::new(DirSink::new(&args.output, args.rotate_bytes))),
            rec,
        )
    };

    let partition_ids: Vec<i32> = (0..partitions).collect();
    let committed = store.fetch(&topic, &partition_ids).await?;
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, pc) in clients.iter().enumerate() {
        let p = p as i32;
        let start = match &from {
            StartFrom::Committed => match committed.get(&p) {
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
        // Reconcile: never write again what an earlier run already wrote.
        let start = match recovered.written.get(&p) {
            Some(w) if *w >= start && from == StartFrom::Committed => w + 1,
            _ => start,
        };
        next.insert(p, start);
    }
    tracing::info!(topic = %topic, group = %args.group, start = ?next, "consuming");
    // Make the reconciled position the committed one, then the recovered files are complete.
    store.commit(&topic, &next).await?;
    for f in &recovered.files {
        crate::sink::files::finalize(f)
            .map_err(|e| Error::runtime(format!("cannot finalize {}: {e}", f.display())))?;
    }

    let (tx, mut rx) = mpsc::channel::<Fetched>(partitions as usize + 2);
    let enricher = Arc::new(Enricher::new());
    let fetch_bytes = fetch_max_bytes(clients.len());
    let fetchers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(p, pc)| {
            tokio::spawn(fetch_loop(
                pc.clone(),
                p as i32,
                next[&(p as i32)],
                FetchLimits {
                    wait: args.fetch_wait,
                    timeout,
                    bytes: fetch_bytes,
                },
                enricher.clone(),
                tx.clone(),
            ))
        })
        .collect();
    drop(tx);

    let mut totals = Totals::default();
    let mut window = Window::default();
    let mut window_start = Instant::now();
    let mut high: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_record = Instant::now();
    let mut dirty = false;
    let mut commit_tick = tokio::time::interval(args.commit_interval);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stats_every = (!args.stats_interval.is_zero()).then_some(args.stats_interval);
    let mut fatal = None;

    'run: loop {
        let idle_left = args
            .idle_exit
            .map(|d| d.saturating_sub(last_record.elapsed()));
        tokio::select! {
            msg = rx.recv() => match msg {
                None => break 'run,
                Some(Fetched::Fatal(e)) => { fatal = Some(e); break 'run; }
                Some(Fetched::Lines { partition, lines, high_watermark }) => {
                    high.insert(partition, high_watermark);
                    let mut start = 0;
                    for l in &lines.lines {
                        let text = &lines.buf[start..l.end];
                        start = l.end;
                        if args.max_records.is_some_and(|m| totals.written >= m) {
                            break;
                        }
                        // Never write an offset twice, whatever a broker hands back.
                        if next.get(&partition).is_some_and(|n| l.offset < *n) {
                            tracing::warn!(partition, offset = l.offset, next = next[&partition], "fetch returned a record already written; skipped");
                            continue;
                        }
                        sink.write(l.stream, text).map_err(|e| Error::runtime(format!("writing output: {e}")))?;
                        totals.count(&l.seen, &lines, &mut window);
                        next.insert(partition, l.offset + 1);
                        dirty = true;
                        last_record = Instant::now();
                    }
                    if args.max_records.is_some_and(|m| totals.written >= m) {
                        break 'run;
                    }
                }
            },
            _ = commit_tick.tick() => {
                if dirty {
                    durable_commit(&mut sink, &mut store, &topic, &next).await?;
                    dirty = false;
                }
                if let Some(every) = stats_every {
                    if window_start.elapsed() >= every {
                        log_stats(&window, window_start.elapsed(), &totals, &next, &high);
                        window = Window::default();
                        window_start = Instant::now();
                    }
                }
            }
            _ = sleep_opt(idle_left) => {
                tracing::info!(idle = ?args.idle_exit.unwrap_or_default(), "no new record for --idle-exit; stopping");
                break 'run;
            }
            _ = shutdown.wait() => break 'run,
        }
    }
    for f in fetchers {
        f.abort();
    }
    // Clean stop: durable, committed, files finalized.
    durable_commit(&mut sink, &mut store, &topic, &next).await?;
    sink.close()
        .map_err(|e| Error::runtime(format!("closing output: {e}")))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    tracing::info!(
        target: "summary",
        written = totals.written,
        tweets = totals.tweets,
        controls = totals.controls,
        errors = totals.errors,
        next = ?next,
        seconds = format!("{secs:.2}"),
        records_per_s = format!("{:.0}", totals.written as f64 / secs),
        "summary"
    );
    match fatal {
        Some(e) => Err(Error::runtime(e)),
        None => Ok(()),
    }
}

impl Totals {
    /// Counts a line that was written, in the run's totals and the stats window.
    fn count(&mut self, seen: &Seen, lines: &Lines, window: &mut Window) {
        self.written += 1;
        match seen {
            Seen::Tweet { compound, words } => {
                self.tweets += 1;
                window.tweets += 1;
                window.compound_sum += compound;
                let word = |i: usize| {
                    let start = if i == 0 { 0 } else { lines.word_ends[i - 1] };
                    &lines.words[start..lines.word_ends[i]]
                };
                bump(&mut window.langs, word(words.start));
                for i in words.start + 1..words.end {
                    bump(&mut window.hashtags, word(i));
                }
            }
            Seen::Control => self.controls += 1,
            Seen::Error => self.errors += 1,
        }
    }
}

/// Adds one to a word's count, allocating only for a word the window has not seen yet.
fn bump(counts: &mut HashMap<String, u64>, word: &str) {
    match counts.get_mut(word) {
        Some(n) => *n += 1,
        None => {
            counts.insert(word.to_owned(), 1);
        }
    }
}

/// Enriches one record and appends its line to `out.buf` (and, for a tweet, its language and
/// lowercased hashtags to `out.words`); says which output it goes to and what the stats count
/// for it.
fn build_line(
    enricher: &Enricher,
    value: &[u8],
    partition: i32,
    offset: i64,
    out: &mut Lines,
) -> (Stream, Seen) {
    let line = &mut out.buf;
    let (stream, seen) = match enricher.enrich(value) {
        Outcome::Tweet(t) => {
            serde_json::to_writer(&mut *line, &t).expect("serializing to memory");
            let first = out.word_ends.len();
            out.words.push_str(&t.lang);
            out.word_ends.push(out.words.len());
            for h in &t.hashtags {
                if h.is_ascii() {
                    out.words.extend(h.chars().map(|c| c.to_ascii_lowercase()));
                } else {
                    out.words.push_str(&h.to_lowercase());
                }
                out.word_ends.push(out.words.len());
            }
            let seen = Seen::Tweet {
                compound: t.sentiment.compound,
                words: first..out.word_ends.len(),
            };
            (Stream::Tweets, seen)
        }
        Outcome::Control { kind, raw } => {
            line.extend_from_slice(b"{\"kind\":");
            serde_json::to_writer(&mut *line, kind).expect("serializing to memory");
            line.extend_from_slice(b",\"message\":");
            serde_json::to_writer(&mut *line, &raw).expect("serializing to memory");
            line.push(b'}');
            (Stream::Deletes, Seen::Control)
        }
        Outcome::Invalid { reason } => {
            line.extend_from_slice(b"{\"reason\":");
            serde_json::to_writer(&mut *line, &reason).expect("serializing to memory");
            line.extend_from_slice(b",\"value\":");
            serde_json::to_writer(&mut *line, &String::from_utf8_lossy(value))
                .expect("serializing to memory");
            line.push(b'}');
            (Stream::Errors, Seen::Error)
        }
    };
    // Every line ends with its Kafka position; recovery reads it back from there.
    debug_assert_eq!(line.last(), Some(&b'}'));
    line.pop();
    line.extend_from_slice(
        format!(",\"kafka\":{{\"partition\":{partition},\"offset\":{offset}}}}}").as_bytes(),
    );
    (stream, seen)
}

async fn durable_commit(
    sink: &mut Sink,
    store: &mut OffsetStore,
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<()> {
    sink.sync()
        .map_err(|e| Error::runtime(format!("making output durable (fsync): {e}")))?;
    store.commit(topic, next).await?;
    sink.committed()
        .map_err(|e| Error::runtime(format!("finalizing rotated output: {e}")))
}

async fn fetch_loop(
    pc: Arc<PartitionClient>,
    partition: i32,
    mut offset: i64,
    limits: FetchLimits,
    enricher: Arc<Enricher>,
    tx: mpsc::Sender<Fetched>,
) {
    let FetchLimits {
        wait,
        timeout,
        bytes: fetch_bytes,
    } = limits;
    let long_wait_ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
    // The first fetch asks for what is there now: a consumer starting on a backlog (a restart,
    // a new group) must not wait out a max wait first. tansu answered it after ~260 ms of the
    // 500 ms default, a fifth of the time to read 100,000 tweets. Caught up, fetches wait long.
    let mut wait_ms = 0;
    let mut backoff = Duration::from_millis(100);
    // Each fetch's records are enriched by the partition's forwarder task while the fetch loop
    // waits for the next fetch, and the forwarder hands the lines on in fetch order: the
    // broker's answer time and the enrichment overlap instead of adding up, and with more than
    // one runtime worker the partitions' forwarders enrich in parallel.
    //
    // The forwarder enriches on its runtime worker, a few ms per fetch, rather than on
    // tokio's blocking pool: the pool's thread hand-offs, and records allocated on one thread
    // and freed on another (glibc then takes the other thread's arena lock), cost more than
    // they saved. Three alternating runs of 100,000 tweets on two cores: 107-117k/s with the
    // pool, 123-126k/s without. The writer is not starved by it: `run` is the future the
    // runtime blocks on, so it has the main thread to itself; and a forwarder that is ahead
    // waits on the main channel.
    //
    // Per partition, at most ENRICH_AHEAD + 2 fetches are between the broker and the main
    // task's channel (queued, with the forwarder, and the one the fetch loop waits to queue),
    // which bounds the memory it takes: about three fetches per partition at worst (see
    // [`fetch_max_bytes`]), plus the main channel's partitions + 2.
    let (jobs, mut jobs_rx) = mpsc::channel::<Job>(ENRICH_AHEAD);
    let forwarder = tokio::spawn(async move {
        while let Some(job) = jobs_rx.recv().await {
            let (built, high_watermark) = match job {
                Job::Records {
                    records,
                    high_watermark,
                } => {
                    let build = || Lines::build(&enricher, partition, records);
                    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build));
                    (built, high_watermark)
                }
                Job::Fatal(message) => {
                    let _ = tx.send(Fetched::Fatal(message)).await;
                    return;
                }
            };
            // A panic while enriching is a bug; stop the run (exit 1, nothing committed past
            // what was written) rather than leave this partition silently stalled.
            let fetched = match built {
                Ok(lines) => Fetched::Lines {
                    partition,
                    lines,
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
    });
    // Ends with the fetch loop: aborted, or its owner gone (the forwarder's sends fail).
    let _forwarder = AbortOnDrop(forwarder);
    loop {
        let got = tokio::time::timeout(
            timeout + wait,
            pc.fetch_records(offset, 1..fetch_bytes, wait_ms),
        )
        .await;
        let err = match got {
            Ok(Ok((mut records, high_watermark))) => {
                tracing::debug!(
                    partition,
                    offset,
                    records = records.len(),
                    high_watermark,
                    "fetched"
                );
                let gap = records
                    .first()
                    .map_or(high_watermark > offset, |r| r.offset > offset);
                if gap && offset > 0 {
                    records = fetch_inside_batch(&pc, offset, fetch_bytes, timeout + wait)
                        .await
                        .unwrap_or(records);
                }
                backoff = Duration::from_millis(100);
                // Catching up, ask for what is there now; caught up, wait long for news. Kafka
                // answers at once when data is there anyway, but tansu waits out the full max
                // wait on every fetch, which capped a backlog at one fetch per --fetch-wait.
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
        let text = err.to_string();
        if let Some(codec) = unsupported_codec(&text) {
            let _ = jobs
                .send(Job::Fatal(format!(
                    "partition {partition} at offset {offset} holds a {codec}-compressed record batch; tweetpipe links no C codecs and reads only uncompressed, gzip and snappy batches. Have the producer use gzip or snappy"
                )))
                .await;
            // Stay until the forwarder has passed everything on, the fatal error last.
            drop(jobs);
            std::future::pending::<()>().await;
            return;
        }
        if text.contains("OffsetOutOfRange") {
            match pc.get_offset(OffsetAt::Earliest).await {
                Ok(earliest) if earliest > offset => {
                    tracing::warn!(
                        partition,
                        from = offset,
                        to = earliest,
                        "records before {earliest} were deleted by retention; skipping ahead"
                    );
                    offset = earliest;
                    continue;
                }
                _ => {}
            }
        }
        tracing::warn!(
            partition,
            offset,
            "fetch failed: {text}; retrying in {backoff:?}"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Fetches per partition queued for the forwarder (see [`fetch_loop`]). One is enough for the
/// overlap: 2 measured the same on the benchmark and holds one more fetch per partition.
const ENRICH_AHEAD: usize = 1;

/// What a partition's fetch loop hands its forwarder, in fetch order.
enum Job {
    /// One fetch's records, for the forwarder to enrich.
    Records {
        records: Vec<RecordAndOffset>,
        high_watermark: i64,
    },
    Fatal(String),
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

/// Fetches from an offset that lies inside a record batch.
///
/// Kafka answers such a fetch with the whole batch (the client drops the records before the
/// offset). tansu 0.6.0 skips that batch and answers with the next one, or with nothing at
/// the end of the log, which would silently lose the rest of the batch for a consumer resuming
/// from a committed offset. So step back (1, 2, 4, … records, at most 4,096) until the batch
/// holding `offset` comes back, and keep the records from `offset` on. On Kafka this runs only
/// where the log really has a gap (compaction, transaction markers), and costs a few fetches.
async fn fetch_inside_batch(
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

fn unsupported_codec(error: &str) -> Option<&'static str> {
    if !error.contains("Unimplemented compression") {
        return None;
    }
    Some(if error.contains("Lz4") {
        "lz4"
    } else if error.contains("Zstd") {
        "zstd"
    } else {
        "unknown"
    })
}

async fn offset_at(pc: &PartitionClient, at: OffsetAt, timeout: Duration) -> Result<i64> {
    limited("listing offsets", timeout, pc.get_offset(at))
        .await
        .map_err(Error::runtime)
}

/// The end of the partition. Taken from a fetch's high watermark: tansu's ListOffsets
/// "latest" can lag behind the true end.
async fn high_watermark(pc: &PartitionClient, timeout: Duration) -> Result<i64> {
    let earliest = offset_at(pc, OffsetAt::Earliest, timeout).await?;
    let (_, hw) = limited(
        "fetching the high watermark",
        timeout,
        pc.fetch_records(earliest, 1..2, 1),
    )
    .await
    .map_err(Error::runtime)?;
    Ok(hw)
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn log_stats(
    w: &Window,
    elapsed: Duration,
    totals: &Totals,
    next: &BTreeMap<i32, i64>,
    high: &BTreeMap<i32, i64>,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let lag: Vec<String> = next
        .iter()
        .map(|(p, n)| format!("{p}:{}", high.get(p).map_or(0, |h| (h - n).max(0))))
        .collect();
    let top = |m: &HashMap<String, u64>, k: usize| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = m.iter().map(|(a, b)| (a.clone(), *b)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    };
    let langs: Vec<String> = top(&w.langs, 5)
        .into_iter()
        .map(|(l, n)| format!("{l} {:.0}%", 100.0 * n as f64 / w.tweets.max(1) as f64))
        .collect();
    let tags: Vec<String> = top(&w.hashtags, 5)
        .into_iter()
        .map(|(t, n)| format!("#{t} {n}"))
        .collect();
    tracing::info!(
        target: "stats",
        tweets_per_s = format!("{:.1}", w.tweets as f64 / secs),
        lag = lag.join(" "),
        langs = langs.join(", "),
        sentiment_mean = format!("{:+.3}", if w.tweets > 0 { w.compound_sum / w.tweets as f64 } else { 0.0 }),
        top_hashtags = tags.join(", "),
        written = totals.written,
        deletes = totals.controls,
        errors = totals.errors,
        "stats"
    );
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
