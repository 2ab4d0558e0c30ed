//! `tweetpipe produce`: read a source (the live stream, or a file) and hand every raw record to
//! Kafka, without the reader ever waiting on Kafka.
//!
//! The data path, one module each: the source's frames enter through the [`intake`] (count,
//! drop repeats, key) into the bounded [`channel`], or into the disk [`spill`] when the
//! channel is full; the [`batcher`] takes them out in one batch per partition and counts a
//! record as delivered only when the broker acknowledged it. The spill's drain feeds what it
//! holds back into the channel. [`stats`] keeps the counters. Beside the data path:
//! [`keeper`] keeps what the next run needs in [`state`], the small durable state file: the
//! Jetstream cursor, which [`watermark`] says is safe to keep, and the post counts of the
//! Twitter spend guard, [`budget`].
//!
//! This file wires those together and decides the end of a run: the process exits 0 only
//! when everything accepted was acknowledged (or, with the spill, is safe on disk).

pub(crate) mod batcher;
pub(crate) mod budget;
pub(crate) mod channel;
pub(crate) mod dedup;
pub(crate) mod intake;
pub(crate) mod keeper;
pub(crate) mod record;
pub(crate) mod spill;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod watermark;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::partition::PartitionClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::batcher::{Batcher, BatcherConfig};
use self::budget::Limit;
use self::channel::Receiver;
use self::dedup::Dedup;
use self::intake::Intake;
use self::keeper::{Keeper, Limits};
use self::spill::{drain, Spill, SpillConfig};
use self::state::{State, StateFile};
use self::stats::{Stats, Summary};
use crate::backoff::Retry;
use crate::error::{Error, Result};
use crate::kafka::{self, topic::TopicSpec, Cluster};
use crate::shutdown::Shutdown;
use crate::source::jetstream::run::JetstreamConfig;
use crate::source::jetstream::stats::JetstreamStats;
use crate::source::twitter::client::StreamClient;
use crate::source::twitter::rules::{RulesApi, WantedRule};
use crate::source::twitter::stream::{self, StreamConfig};
use crate::source::{jetstream, replay, End, SourceStats};

/// Everything `produce` needs, checked by the command line.
pub(crate) struct Config {
    pub(crate) cluster: Cluster,
    /// The topic, and what to create it with when it is missing.
    pub(crate) topic: TopicSpec,
    pub(crate) source: Source,
    pub(crate) batcher: BatcherConfig,
    pub(crate) channel_capacity: usize,
    pub(crate) channel_bytes: usize,
    /// `None`: no spill (a full channel drops).
    pub(crate) spill: Option<SpillConfig>,
    /// How long, and how many, record identities are remembered to drop repeats.
    pub(crate) dedup: Option<(Duration, usize)>,
    /// Stop once this many records are accepted.
    pub(crate) max_records: Option<u64>,
    pub(crate) stats_interval: Duration,
    /// On a signal, how long to wait for acknowledgements.
    pub(crate) shutdown_timeout: Duration,
    pub(crate) summary_file: Option<PathBuf>,
    /// Where to serve metrics, health checks and the live page; `None`: nowhere.
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Where the state file is (the spill directory).
    pub(crate) state_dir: PathBuf,
    /// The Twitter spend guard; `None`: off.
    pub(crate) budget: Option<Limits>,
}

pub(crate) enum Source {
    /// The live stream; with the rules to make the server's before connecting (v2 `--track`).
    Twitter {
        client: Box<StreamClient>,
        stream: StreamConfig,
        rules: Option<Box<(RulesApi, Vec<WantedRule>)>>,
    },
    /// Line-delimited records from a file (`-`: stdin).
    File {
        path: PathBuf,
        max_record_bytes: usize,
    },
    /// Bluesky's Jetstream.
    Jetstream(Box<JetstreamSource>),
}

/// Jetstream, and where to start reading it.
pub(crate) struct JetstreamSource {
    pub(crate) config: JetstreamConfig,
    pub(crate) start: Start,
}

/// Where Jetstream reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Where the previous run left off (the state file), else the live tip.
    Kept,
    Live,
    /// At this `time_us`.
    At(i64),
}

impl JetstreamSource {
    /// Where reading starts: the cursor given, the kept one (with the instance it came from,
    /// by its index in this run's list), or the live tip.
    fn start(&self, kept: &State) -> Option<(i64, Option<usize>)> {
        match self.start {
            Start::Live => None,
            Start::At(t) => Some((t, None)),
            Start::Kept => kept.jetstream.as_ref().map(|p| {
                let instance = p
                    .instance
                    .as_deref()
                    .and_then(|u| self.config.instances.index_of(u));
                tracing::info!(
                    cursor_us = p.time_us,
                    instance = p.instance.as_deref().unwrap_or("unknown"),
                    "resuming Jetstream where the previous run left off"
                );
                (p.time_us, instance)
            }),
        }
    }

    /// How long before the kept cursor the dedupe keys a restart must drop reach: the
    /// rewind, and a margin for `time_us` being a little out of order.
    fn kept_window(&self) -> Duration {
        self.config.resume.rewind + Duration::from_secs(2)
    }
}

impl Source {
    fn is_live(&self) -> bool {
        matches!(self, Source::Twitter { .. } | Source::Jetstream(_))
    }

    /// Whether this run starts where the previous one left off (and so drops what it had
    /// already produced).
    fn resumes_kept(&self) -> bool {
        matches!(self, Source::Jetstream(js) if js.start == Start::Kept)
    }

    /// What must happen before anything else connects: the stream's rules, so that a rejected
    /// term is an error before Kafka is touched.
    async fn prepare(&self) -> Result<()> {
        if let Source::Twitter {
            rules: Some(rules), ..
        } = self
        {
            let (api, wanted) = &**rules;
            for line in api.sync(wanted, false).await? {
                tracing::info!("rules: {line}");
            }
        }
        Ok(())
    }

    /// Reads the source into `intake` until it ends.
    async fn run(
        &self,
        intake: &mut Intake,
        stats: &SourceStats,
        jstats: &JetstreamStats,
        kept: &State,
        shutdown: &Shutdown,
    ) -> Result<End> {
        Ok(match self {
            Source::Twitter { client, stream, .. } => {
                stream::run(client, stream, intake, stats, shutdown).await?
            }
            Source::File {
                path,
                max_record_bytes,
            } => replay::run(path, *max_record_bytes, intake, stats, shutdown).await?,
            Source::Jetstream(js) => {
                let mut config = js.config.clone();
                config.start = js.start(kept);
                jetstream::run::run(config, intake, jstats, stats, shutdown).await?
            }
        })
    }
}

/// The tasks that run beside the source, and how to stop them.
struct Running {
    producing: JoinHandle<Result<()>>,
    /// Stops the Kafka side retrying: with a spill, what is on its way goes to disk.
    cancel: watch::Sender<bool>,
    drainer: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    fsyncer: Option<JoinHandle<()>>,
    reporter: Option<JoinHandle<()>>,
}

pub(crate) async fn run(cfg: Config) -> Result<()> {
    let started = Instant::now();
    let stats = Stats::new();
    let source_stats = Arc::new(SourceStats::default());
    // The spill before anything connects: a directory another producer holds is a usage error.
    let spill = match &cfg.spill {
        Some(s) => Some(Spill::open(s.clone(), stats.clone())?),
        None => None,
    };
    let (tx, rx) = channel::channel(cfg.channel_capacity, cfg.channel_bytes);
    // Listening before anything connects: a taken address is a usage error.
    let _metrics = match cfg.metrics_addr {
        Some(addr) => Some(stats::serve_metrics(
            addr,
            &stats,
            &source_stats,
            tx.depth(),
            cfg.source.is_live(),
        )?),
        None => None,
    };
    let jstats = Arc::new(JetstreamStats::default());
    // What earlier runs kept, before anything connects: a damaged state file is a usage error.
    let (keeper, kept) = open_keeper(&cfg, &jstats).await?;
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    cfg.source.prepare().await?;
    let reporter = stats::spawn_reporter(
        stats.clone(),
        source_stats.clone(),
        tx.depth(),
        cfg.stats_interval,
    );
    let kafka = KafkaSide {
        cluster: cfg.cluster.clone(),
        topic: cfg.topic.clone(),
        // A live stream cannot be paused while Kafka is away: with a spill to catch it, keep
        // reading and keep trying. A file can wait, so there an unreachable cluster is an
        // error at once.
        wait_for_kafka: cfg.source.is_live() && spill.is_some(),
        batcher: cfg.batcher.clone(),
    };
    let running = start(kafka, rx, &tx, reporter, &stats, &spill, &shutdown).await?;
    let reading = Reading {
        stats: &stats,
        source_stats: &source_stats,
        jstats: &jstats,
        spill: &spill,
        keeper: keeper.as_ref(),
        kept: &kept,
        shutdown: &shutdown,
    };
    let (ended, budget_reached) = reading.read(&cfg, tx).await;
    let kafka_result = finish(running, &cfg, &stats, &spill, &shutdown).await;
    let delivered_all = kafka_result.is_ok() && Stats::get(&stats.failed) == 0;
    let kept_result = save_final(keeper.as_ref(), delivered_all).await;
    let mut summary = Summary::new(&stats, &source_stats, started.elapsed());
    if matches!(cfg.source, Source::Jetstream(_)) {
        summary = summary.with_jetstream(&jstats, keeper.as_ref().and_then(Keeper::cursor));
    }
    if let Some(k) = &keeper {
        summary = summary.with_budget(k.post_counts(), budget_reached);
    }
    summary.log();
    if let Some(path) = &cfg.summary_file {
        crate::logging::write_summary(path, &summary)?;
    }
    ended?;
    kafka_result?;
    kept_result?;
    if summary.failed > 0 {
        return Err(Error::runtime(format!(
            "{} accepted record(s) were not acknowledged by Kafka; see the errors above",
            summary.failed
        )));
    }
    Ok(())
}

/// What reading the source needs besides the configuration.
struct Reading<'a> {
    stats: &'a Arc<Stats>,
    source_stats: &'a SourceStats,
    jstats: &'a JetstreamStats,
    spill: &'a Option<Arc<Spill>>,
    keeper: Option<&'a Keeper>,
    kept: &'a State,
    shutdown: &'a Shutdown,
}

impl Reading<'_> {
    /// Reads the source into the channel until it ends; the spend limit that stopped it, if
    /// one did. Dropping the intake at the end closes the channel (with the drainer's sender,
    /// stopped in `finish`), which tells the batcher to flush everything and finish.
    async fn read(self, cfg: &Config, tx: channel::Sender) -> (Result<End>, Option<Limit>) {
        let mut dedup = cfg
            .dedup
            .map(|(window, capacity)| Dedup::new(window, capacity));
        if let (true, Some(d)) = (cfg.source.resumes_kept(), dedup.as_mut()) {
            Keeper::seed(self.kept, d);
        }
        let spill = self.spill.clone();
        let mut intake = Intake::new(tx, self.stats.clone(), cfg.max_records, spill, dedup);
        if let Some(k) = self.keeper {
            intake = k.attach(intake);
        }
        let writing = self.keeper.map(|k| k.spawn(Duration::from_secs(1)));
        // The spend guard's limit may be reached already: then nothing is read.
        let spent = self.keeper.and_then(|k| k.check_budget().err());
        let ended = match spent {
            Some(_) => Ok(End::Stopped),
            None => {
                let (src, s) = (&cfg.source, self.source_stats);
                src.run(&mut intake, s, self.jstats, self.kept, self.shutdown)
                    .await
            }
        };
        let budget_reached = spent.or(intake.budget_reached());
        // From here the state is written once, after the drain, and only if nothing failed:
        // an aborted drain drops records it did not deliver, which must not move the cursor.
        if let Some(w) = writing {
            w.abort();
        }
        match &ended {
            Ok(End::Stopped) if budget_reached.is_some() => {
                log_budget_stop(budget_reached, cfg, self.keeper, spent.is_some())
            }
            Ok(End::Stopped) if intake.limit_reached() => {
                tracing::info!("record limit reached; waiting for acknowledgements")
            }
            Ok(End::Exhausted) => tracing::info!("end of input; waiting for acknowledgements"),
            Ok(End::Shutdown | End::Stopped) => {
                tracing::info!(timeout = ?cfg.shutdown_timeout, "stopping; waiting for acknowledgements")
            }
            Err(_) => {
                tracing::info!("source failed; delivering what was accepted before exiting")
            }
        }
        (ended, budget_reached)
    }
}

/// Opens the state file when the run keeps something in it (Jetstream's cursor, the spend
/// guard's counts), and returns what the previous run kept.
async fn open_keeper(
    cfg: &Config,
    jstats: &Arc<JetstreamStats>,
) -> Result<(Option<Keeper>, State)> {
    let cursor = match &cfg.source {
        Source::Jetstream(js) => Some(keeper::Cursor {
            watermark: watermark::Shared::new(js.kept_window().as_micros() as i64),
            stats: jstats.clone(),
            instances: js.config.instances.urls(),
        }),
        _ => None,
    };
    if cursor.is_none() && cfg.budget.is_none() {
        return Ok((None, State::default()));
    }
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
        Error::runtime(format!(
            "cannot create {} for the state file: {e}",
            cfg.state_dir.display()
        ))
    })?;
    let file = StateFile::in_dir(&cfg.state_dir);
    let (keeper, state) = Keeper::open(file, cursor, cfg.budget).await?;
    Ok((Some(keeper), state))
}

/// The state after the drain: every record is acknowledged, spilled or given up by now, so
/// this is final, unless something was not delivered: then the last state written while
/// running stays, and the next run reads from there (a kept cursor never passes a record that
/// was not delivered).
async fn save_final(keeper: Option<&Keeper>, delivered_all: bool) -> Result<()> {
    match keeper {
        Some(k) if delivered_all => k.save().await.map_err(Error::from),
        Some(_) => {
            tracing::warn!("not every record was delivered: the state file keeps the last position written before, and the next run reads from there");
            Ok(())
        }
        None => Ok(()),
    }
}

/// The spend guard stopped the stream (or kept it from starting): which limit, and the count.
fn log_budget_stop(limit: Option<Limit>, cfg: &Config, keeper: Option<&Keeper>, before: bool) {
    let counts = keeper.and_then(Keeper::post_counts);
    let (what, max, posts) = match (limit, cfg.budget, counts) {
        (Some(Limit::Day), Some(b), Some(c)) => ("day", b.per_day, c.day_posts),
        (Some(Limit::Month), Some(b), Some(c)) => ("month", b.per_month, c.month_posts),
        _ => ("period", None, 0),
    };
    if before {
        tracing::warn!(
            posts,
            limit = max,
            "spend guard: this UTC {what}'s limit of posts is already reached; not connecting"
        );
    } else {
        tracing::warn!(posts, limit = max, "spend guard: this UTC {what}'s limit of posts is reached; stopping the stream and waiting for acknowledgements");
    }
}

/// Connects to Kafka (or, when it is away and the spill can catch the stream, starts without
/// it) and starts the batcher, the spill's drain and fsync, and the stats line.
async fn start(
    kafka: KafkaSide,
    rx: Receiver,
    tx: &channel::Sender,
    reporter: Option<JoinHandle<()>>,
    stats: &Arc<Stats>,
    spill: &Option<Arc<Spill>>,
    shutdown: &Shutdown,
) -> Result<Running> {
    // Kafka first, as long as it is there: a stream that starts before the producer would
    // fill the channel in its first milliseconds and send the start of every run through the
    // spill. Only when Kafka cannot be reached (and the spill can catch the stream) does the
    // stream start without it.
    let first = match kafka.open().await {
        Ok(p) => Some(p),
        Err(e) if e.is_retryable() && kafka.wait_for_kafka => {
            tracing::error!("Kafka is unavailable ({}); starting the stream anyway, into the spill, and trying again", crate::error::chain(&e));
            None
        }
        Err(e) => return Err(e.into()),
    };
    let (cancel, cancel_rx) = watch::channel(false);
    let producing = tokio::spawn(kafka.run(
        first,
        rx,
        cancel_rx,
        stats.clone(),
        spill.clone(),
        shutdown.clone(),
    ));
    let drainer = spill.as_ref().map(|s| {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(drain::run(s.clone(), tx.clone(), stats.clone(), stop_rx));
        (task, stop)
    });
    Ok(Running {
        producing,
        cancel,
        drainer,
        fsyncer: spill.as_ref().map(|s| s.spawn_fsync()),
        reporter,
    })
}

/// After the source ended: deliver what was accepted (and what the spill holds, unless
/// stopping on a signal), within the time a clean stop may take, then stop every task.
async fn finish(
    mut running: Running,
    cfg: &Config,
    stats: &Stats,
    spill: &Option<Arc<Spill>>,
    shutdown: &Shutdown,
) -> Result<()> {
    // A signal bounds the drain by the shutdown timeout; otherwise each batch is bounded by
    // the delivery timeout already.
    let drain_limit = if shutdown.is_triggered() {
        cfg.shutdown_timeout
    } else {
        cfg.batcher.delivery_timeout + cfg.cluster.timeout
    };
    let deadline = tokio::time::Instant::now() + drain_limit;
    // What the spill holds is safe on disk; after a signal the next run sends it first.
    if let Some(s) = spill {
        while !shutdown.is_triggered()
            && !s.is_empty()
            && !running.producing.is_finished()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if let Some((task, stop)) = running.drainer.take() {
        stop.send_replace(true);
        let _ = task.await;
    }
    let producing = &mut running.producing;
    let finished = tokio::select! {
        r = &mut *producing => Some(r),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let kafka_result = match finished {
        Some(r) => r,
        None => {
            running.cancel.send_replace(true);
            match tokio::time::timeout(Duration::from_secs(10), &mut *producing).await {
                Ok(r) => r,
                Err(_) => {
                    producing.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    let kafka_result = kafka_result.unwrap_or_else(|e| {
        Err(Error::runtime(format!(
            "the Kafka side of produce failed: {e}"
        )))
    });
    if spill.is_none() {
        let outstanding = Stats::get(&stats.accepted)
            .saturating_sub(Stats::get(&stats.delivered) + Stats::get(&stats.failed));
        if outstanding > 0 {
            Stats::add(&stats.failed, outstanding);
            tracing::error!(
                undelivered = outstanding,
                "gave up waiting for acknowledgements after {drain_limit:?}"
            );
        }
    }
    for task in [running.reporter.take(), running.fsyncer.take()]
        .into_iter()
        .flatten()
    {
        task.abort();
    }
    if let Some(s) = spill {
        s.sync_now();
        if !s.is_empty() {
            tracing::warn!(
                dir = %s.dir().display(),
                mb = crate::logging::tenths(s.bytes_on_disk() as f64 / 1e6),
                "records remain in the spill; the next run delivers them first"
            );
        }
    }
    kafka_result
}

/// Everything the Kafka side needs to connect and produce.
struct KafkaSide {
    cluster: Cluster,
    topic: TopicSpec,
    wait_for_kafka: bool,
    batcher: BatcherConfig,
}

impl KafkaSide {
    /// Connects, makes sure the topic exists, opens its partitions.
    async fn open(&self) -> Result<Vec<Arc<PartitionClient>>, kafka::Error> {
        let partitions = kafka::topic::ensure(&self.cluster, &self.topic).await?;
        let client = kafka::client::connect(&self.cluster).await?;
        let ids: Vec<i32> = (0..partitions).collect();
        kafka::client::partition_clients(&client, &self.topic.name, &ids, self.cluster.timeout)
            .await
    }

    /// Connects (waiting for Kafka to appear when `wait_for_kafka`) and runs the batcher until
    /// the channel closes. A fatal problem (credentials, certificates, a bad topic) stops the
    /// whole command: the source is told to stop and what the channel holds goes to the spill.
    async fn run(
        self,
        mut first: Option<Vec<Arc<PartitionClient>>>,
        mut rx: Receiver,
        cancel: watch::Receiver<bool>,
        stats: Arc<Stats>,
        spill: Option<Arc<Spill>>,
        shutdown: Shutdown,
    ) -> Result<()> {
        let mut retry = Retry::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut waiting_since: Option<Instant> = None;
        let partitions = loop {
            if let Some(p) = first.take() {
                break p;
            }
            match self.open().await {
                Ok(p) => break p,
                Err(e) if e.is_retryable() && self.wait_for_kafka && !shutdown.is_triggered() => {
                    stats
                        .kafka_ok
                        .store(2, std::sync::atomic::Ordering::Relaxed);
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    let wait = retry.next_wait().unwrap_or(Duration::from_secs(30));
                    tracing::error!(
                        waiting_s = since.elapsed().as_secs(),
                        retry_in_ms = wait.as_millis() as u64,
                        spilled = Stats::get(&stats.spilled),
                        "Kafka is unavailable ({}); reading the stream into the spill until it is back",
                        crate::error::chain(&e)
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait() => {}
                    }
                }
                Err(e) => {
                    let stopping = shutdown.is_triggered();
                    shutdown.trigger();
                    if let Some(s) = &spill {
                        // Nothing accepted may be lost with the Kafka side.
                        rx.close();
                        while let Some(r) = rx.try_recv() {
                            s.keep(&r);
                        }
                    }
                    if stopping && e.is_retryable() && self.wait_for_kafka {
                        // Stopped (a signal) while waiting for Kafka: not an error of its own;
                        // everything read is in the spill.
                        return Ok(());
                    }
                    return Err(e.into());
                }
            }
        };
        stats
            .kafka_ok
            .store(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(since) = waiting_since {
            tracing::info!(waited_s = since.elapsed().as_secs(), "Kafka is back");
        }
        let nodelay = kafka::nodelay::spawn_keeper(Duration::from_secs(1));
        tracing::info!(topic = %self.topic.name, partitions = partitions.len(), brokers = %self.cluster.brokers_text(), security = %self.cluster.security.describe(), "producing");
        Batcher::new(partitions, self.batcher, cancel, stats, spill)
            .run(rx)
            .await;
        if let Some(n) = nodelay {
            n.abort();
        }
        Ok(())
    }
}
