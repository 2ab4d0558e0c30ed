//! `tweetpipe produce`: validate the configuration, make sure Kafka and the topic are there,
//! then run the source (live stream or file) and the producer side by side until the source
//! ends, and report.
//!
//! Order matters for the exit code contract: every configuration problem is found before
//! anything connects (exit 2), and the process exits 0 only when everything accepted was
//! acknowledged.


pub mod batcher;
pub mod channel;
pub mod dedup;
pub mod intake;
pub mod overflow;
pub mod record;
pub mod spill;
pub mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::partition::Compression;
use tokio::sync::watch;

use self::dedup::Dedup;
use self::intake::Intake;
use crate::shutdown::Shutdown;
use self::stats::Stats;
use crate::cli::{Api, CompressionArg, ProduceArgs, V1_STREAM_URL, V2_STREAM_URL};
use crate::error::{Error, Result};
use crate::kafka::security::Security;
use self::batcher::{Producer, ProducerConfig};
use crate::kafka;
use crate::produce::spill::{drain, Spill, SpillConfig};
use crate::backoff::BackoffPolicy;
use crate::source::twitter::client::{Filter, StreamClient, V2Fields};
use crate::source::twitter::credentials::{BearerToken, Credentials};
use crate::source::framer::Framing;
use crate::source::replay;
use crate::source::twitter::rules::{self, RulesApi};
use crate::source::twitter::stream::{self, End, StreamConfig};

enum Source {
    /// The live stream; for v2 with --track, the rules to sync before connecting.
    Stream(
        Box<StreamClient>,
        StreamConfig,
        Option<Box<(RulesApi, Vec<rules::WantedRule>)>>,
    ),
    File(std::path::PathBuf),
}

pub async fn run(args: ProduceArgs) -> Result<()> {
    let started = Instant::now();
    // Configuration first: nothing connects until all of it is known to be usable.
    let brokers = kafka::client::parse_brokers(&args.kafka.brokers)?;
    let security = Security::from_args(&args.kafka)?;
    check(
        args.batch_bytes >= 1024,
        "--batch-bytes must be at least 1024",
    )?;
    check(
        args.channel_capacity >= 1,
        "--channel-capacity must be at least 1",
    )?;
    check(args.channel_bytes >= args.max_record_bytes, "--channel-bytes must be at least --max-record-bytes, or a maximal record could never be queued")?;
    check(
        args.max_record_bytes >= 1024,
        "--max-record-bytes must be at least 1024",
    )?;
    check(
        !args.kafka.kafka_timeout.is_zero(),
        "--kafka-timeout must be more than 0",
    )?;
    let v2 = args.api == Api::V2;
    let stall_timeout = args.stall_timeout.unwrap_or(if v2 {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(90)
    });
    check(
        !stall_timeout.is_zero(),
        "--stall-timeout must be more than 0",
    )?;
    if v2 {
        check(
            args.dedup_window > stream::MAX_BACKFILL,
            "--dedup-window must be longer than 5m, the most a backfill repeats",
        )?;
        check(
            args.dedup_capacity >= 1,
            "--dedup-capacity must be at least 1",
        )?;
        for (flag, set) in [
            ("--follow", args.follow.is_some()),
            ("--locations", args.locations.is_some()),
            ("--language", args.language.is_some()),
            ("--delimited-length", args.delimited_length),
        ] {
            if set {
                return Err(Error::usage(format!(
                    "{flag} is a v1.1 statuses/filter parameter; with --api v2 the stream is filtered by rules: write it as a rule (e.g. from:USER, lang:en, has:geo) with `tweetpipe rules add` or `tweetpipe rules sync`"
                )));
            }
        }
    }
    check(
        args.max_records != Some(0),
        "--max-records must be at least 1",
    )?;
    check(!args.kafka.topic.is_empty(), "--topic must not be empty")?;
    check(
        args.spill_max_bytes == 0 || args.spill_segment_bytes >= 4096,
        "--spill-segment-bytes must be at least 4KiB",
    )?;
    let source = match &args.from_file {
        Some(path) => {
            // Open once now so a wrong path is a usage error before anything connects.
            if path.as_os_str() != "-" {
                replay::open(path)?;
            }
            Source::File(path.clone())
        }
        None if v2 => {
            let token = BearerToken::load(args.env_file.as_deref())?;
            let url = args.stream_url.as_deref().unwrap_or(V2_STREAM_URL);
            let fields = V2Fields {
                expansions: args.expansions.clone(),
                tweet_fields: args.tweet_fields.clone(),
                user_fields: args.user_fields.clone(),
            };
            let client = StreamClient::new_v2(url, &fields, token.clone())?;
            let track = match &args.track {
                Some(t) => Some(Box::new((
                    RulesApi::new(url, token)?,
                    rules::track_rules(t)?,
                ))),
                None => None,
            };
            let cfg = StreamConfig {
                stall_timeout,
                max_record_bytes: args.max_record_bytes,
                backoff: backoff_policy(&args),
                framing: Framing::Crlf,
                backfill: !args.no_backfill,
            };
            Source::Stream(Box::new(client), cfg, track)
        }
        None => {
            let creds = Credentials::load(args.env_file.as_deref())?;
            let filter = Filter {
                track: args.track.clone(),
                follow: args.follow.clone(),
                locations: args.locations.clone(),
                language: args.language.clone(),
                delimited_length: args.delimited_length,
            };
            let url = args.stream_url.as_deref().unwrap_or(V1_STREAM_URL);
            let client = StreamClient::new(url, &filter, creds)?;
            let cfg = StreamConfig {
                stall_timeout,
                max_record_bytes: args.max_record_bytes,
                backoff: backoff_policy(&args),
                framing: if args.delimited_length {
                    Framing::Length
                } else {
                    Framing::Crlf
                },
                backfill: false,
            };
            Source::Stream(Box::new(client), cfg, None)
        }
    };
    let compression = match args.compression {
        CompressionArg::None => Compression::NoCompression,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
    };

    let stats = Stats::new();
    // The spill before anything connects: a directory another producer holds is a usage error.
    let spill = if args.spill_max_bytes == 0 {
        None
    } else {
        Some(Spill::open(
            SpillConfig {
                dir: args.spill_dir.clone(),
                max_bytes: args.spill_max_bytes,
                segment_bytes: args.spill_segment_bytes,
                fsync_interval: args.spill_fsync_interval,
            },
            stats.clone(),
        )?)
    };
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();

    // --track in v2 mode: the stream's rules become one per term before anything else
    // connects, so a rejected term is an error before Kafka is touched.
    if let Source::Stream(_, _, Some(track)) = &source {
        let (api, wanted) = &**track;
        for line in api.sync(wanted, false).await? {
            tracing::info!("rules: {line}");
        }
    }

    let timeout = args.kafka.kafka_timeout;
    let (tx, rx) = channel::channel(args.channel_capacity, args.channel_bytes);
    let reporter = stats::spawn_reporter(stats.clone(), tx.depth(), args.stats_interval);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let side = KafkaSide {
        brokers: brokers.clone(),
        security,
        topic: args.kafka.topic.clone(),
        partitions: args.partitions,
        replication_factor: args.replication_factor,
        timeout,
        // A live stream cannot be paused while Kafka is away: with a spill to catch it, keep
        // reading and keep trying. A file can wait, so there an unreachable cluster is an
        // error at once.
        wait_for_kafka: matches!(source, Source::Stream(..)) && spill.is_some(),
        producer: ProducerConfig {
            linger: args.linger,
            batch_bytes: args.batch_bytes,
            compression,
            delivery_timeout: args.delivery_timeout,
            request_timeout: timeout,
            max_in_flight: args.max_in_flight,
            cancel: cancel_rx,
        },
    };
    // Kafka first, as long as it is there: a stream that starts before the producer would
    // fill the channel in its first milliseconds and send the start of every run through the
    // spill. Only when Kafka cannot be reached (and the spill can catch the stream) does the
    // stream start without it.
    let first = match open_producer(&side).await {
        Ok(p) => Some(p),
        Err((e, true)) if side.wait_for_kafka => {
            tracing::error!("Kafka is unavailable ({e}); starting the stream anyway, into the spill, and trying again");
            None
        }
        Err((e, _)) => return Err(e),
    };
    let mut producing = tokio::spawn(kafka_side(
        side,
        first,
        rx,
        stats.clone(),
        spill.clone(),
        shutdown.clone(),
    ));
    let (stop_drain, stop_drain_rx) = watch::channel(false);
    let drainer = spill.as_ref().map(|s| {
        tokio::spawn(drain::run(
            s.clone(),
            tx.clone(),
            stats.clone(),
            stop_drain_rx,
        ))
    });
    let fsyncer = spill.as_ref().map(|s| s.spawn_fsync());

    let mut intake = Intake::new(tx, stats.clone(), args.max_records, spill.clone());
    if v2 && args.from_file.is_none() {
        intake = intake.with_dedup(Dedup::new(args.dedup_window, args.dedup_capacity));
    }
    let ended = match &source {
        Source::Stream(client, cfg, _) => stream::run(client, cfg, &mut intake, &shutdown).await,
        Source::File(path) => {
            replay::run(path, args.max_record_bytes, &mut intake, &shutdown).await
        }
    };
    // Closing the channel (all senders gone) tells the producer to flush everything and
    // finish; the drainer holds a sender too, and is stopped below.
    drop(intake);
    match &ended {
        Ok(End::LimitReached) => {
            tracing::info!("--max-records reached; waiting for acknowledgements")
        }
        Ok(End::EndOfInput) => tracing::info!("end of input; waiting for acknowledgements"),
        Ok(End::Shutdown) => {
            tracing::info!(timeout = ?args.shutdown_timeout, "stopping; waiting for acknowledgements")
        }
        Err(_) => tracing::info!("source failed; delivering what was accepted before exiting"),
    }
    // A signal bounds the drain by --shutdown-timeout; otherwise each batch is bounded by
    // --delivery-timeout already.
    let drain_limit = if shutdown.is_triggered() {
        args.shutdown_timeout
    } else {
        args.delivery_timeout + timeout
    };
    let deadline = tokio::time::Instant::now() + drain_limit;
    // Deliver what the spill holds as well, unless stopping on a signal (it is safe on disk
    // and the next run sends it first).
    if let Some(s) = &spill {
        if !shutdown.is_triggered() {
            while !s.is_empty()
                && !producing.is_finished()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    stop_drain.send_replace(true);
    if let Some(d) = drainer {
        let _ = d.await;
    }
    let finished = tokio::select! {
        r = &mut producing => Some(r),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let kafka_result = match finished {
        Some(r) => r,
        None => {
            // Stop retrying: with a spill, everything still on its way is written to disk.
            cancel_tx.send_replace(true);
            match tokio::time::timeout(Duration::from_secs(10), &mut producing).await {
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
    if let Some(r) = reporter {
        r.abort();
    }
    if let Some(f) = fsyncer {
        f.abort();
    }
    if let Some(s) = &spill {
        s.sync_now();
        let left = s.bytes_on_disk();
        if !s.is_empty() {
            tracing::warn!(
                dir = %s.dir().display(),
                mb = format!("{:.1}", left as f64 / 1e6),
                "records remain in the spill; the next run delivers them first"
            );
        }
    }
    stats::log_summary(&stats, started.elapsed());

    ended?;
    kafka_result?;
    let failed = Stats::get(&stats.failed);
    if failed > 0 {
        return Err(Error::runtime(format!(
            "{failed} accepted record(s) were not acknowledged by Kafka; see the errors above"
        )));
    }
    Ok(())
}

/// Everything the Kafka side needs to connect and produce.
struct KafkaSide {
    brokers: Vec<String>,
    security: Security,
    topic: String,
    partitions: i32,
    replication_factor: i16,
    timeout: Duration,
    wait_for_kafka: bool,
    producer: ProducerConfig,
}

/// Connects (waiting for Kafka to appear when `wait_for_kafka`), makes sure the topic is
/// there, and runs the producer until the channel closes. A fatal problem (credentials,
/// certificates, a bad topic) stops the whole command: the source is told to stop and what
/// the channel holds goes to the spill.
async fn kafka_side(
    side: KafkaSide,
    mut first: Option<Vec<Arc<rskafka::client::partition::PartitionClient>>>,
    mut rx: channel::Receiver,
    stats: Arc<Stats>,
    spill: Option<Arc<Spill>>,
    shutdown: Shutdown,
) -> Result<()> {
    let mut wait = Duration::from_millis(500);
    let mut waiting_since: Option<Instant> = None;
    let partition_clients = loop {
        if let Some(p) = first.take() {
            break p;
        }
        match open_producer(&side).await {
            Ok(p) => break p,
            Err((e, true)) if side.wait_for_kafka && !shutdown.is_triggered() => {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                tracing::error!(
                    waiting_s = since.elapsed().as_secs(),
                    retry_in_ms = wait.as_millis() as u64,
                    spilled = Stats::get(&stats.spilled),
                    "Kafka is unavailable ({e}); reading the stream into the spill until it is back"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait() => {}
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err((e, retryable)) => {
                let stopping = shutdown.is_triggered();
                shutdown.trigger();
                if let Some(s) = &spill {
                    rx.close_and_spill(s);
                }
                if stopping && retryable && side.wait_for_kafka {
                    // Stopped (a signal) while waiting for Kafka: not an error of its own;
                    // everything read is in the spill.
                    return Ok(());
                }
                return Err(e);
            }
        }
    };
    if let Some(since) = waiting_since {
        tracing::info!(waited_s = since.elapsed().as_secs(), "Kafka is back");
    }
    let nodelay = kafka::nodelay::spawn_keeper(Duration::from_secs(1));
    kafka::nodelay::enabled().then(kafka::nodelay::apply);
    tracing::info!(topic = %side.topic, partitions = partition_clients.len(), brokers = %side.brokers.join(","), security = %side.security.describe(), "producing");
    Producer::new(partition_clients, side.producer, stats, spill)
        .run(rx)
        .await;
    if let Some(n) = nodelay {
        n.abort();
    }
    Ok(())
}

/// Connect, ensure the topic, open its partitions. The error says whether waiting may help.
async fn open_producer(
    side: &KafkaSide,
) -> std::result::Result<Vec<Arc<rskafka::client::partition::PartitionClient>>, (Error, bool)> {
    let client =
        kafka::client::connect_or_refused(&side.brokers, side.timeout, &side.security).await?;
    // Past the connection, a usage error (bad topic settings) is fatal; anything else may be
    // the cluster still starting.
    let classify = |e: Error| {
        let retry = e.exit_code() != 2;
        (e, retry)
    };
    let partitions = kafka::topic::ensure(
        &client,
        &side.topic,
        side.partitions,
        side.replication_factor,
        side.timeout,
    )
    .await
    .map_err(classify)?;
    kafka::client::partition_clients(&client, &side.topic, partitions, side.timeout)
        .await
        .map_err(classify)
}

fn backoff_policy(args: &ProduceArgs) -> BackoffPolicy {
    BackoffPolicy {
        network_step: args.backoff_network_step,
        network_max: args.backoff_network_max,
        http_initial: args.backoff_http_initial,
        http_max: args.backoff_http_max,
        rate_limit_initial: args.backoff_rate_limit_initial,
        rate_limit_max: args.backoff_rate_limit_max,
    }
}

fn check(ok: bool, msg: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::usage(msg))
    }
}
