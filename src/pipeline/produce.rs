//! `tweetpipe produce`: validate the configuration, make sure Kafka and the topic are there,
//! then run the source (live stream or file) and the producer side by side until the source
//! ends, and report.
//!
//! Order matters for the exit code contract: every configuration problem is found before
//! anything connects (exit 2), and the process exits 0 only when everything accepted was
//! acknowledged.

use std::time::{Duration, Instant};

use rskafka::client::partition::Compression;

use super::channel;
use super::dedup::Dedup;
use super::intake::Intake;
use super::shutdown::Shutdown;
use super::stats::{self, Stats};
use crate::cli::{Api, CompressionArg, ProduceArgs, V1_STREAM_URL, V2_STREAM_URL};
use crate::error::{Error, Result};
use crate::kafka::{
    self,
    producer::{Producer, ProducerConfig},
};
use crate::twitter::backoff::BackoffPolicy;
use crate::twitter::client::{Filter, StreamClient, V2Fields};
use crate::twitter::credentials::{BearerToken, Credentials};
use crate::twitter::framer::Framing;
use crate::twitter::replay;
use crate::twitter::rules::{self, RulesApi};
use crate::twitter::stream::{self, End, StreamConfig};

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
    let client = kafka::client::connect(&brokers, timeout).await?;
    let nodelay = kafka::nodelay::spawn_keeper(Duration::from_secs(1));
    let topic = &args.kafka.topic;
    let partitions = kafka::topic::ensure(
        &client,
        topic,
        args.partitions,
        args.replication_factor,
        timeout,
    )
    .await?;
    let partition_clients =
        kafka::client::partition_clients(&client, topic, partitions, timeout).await?;
    kafka::nodelay::enabled().then(kafka::nodelay::apply);
    tracing::info!(topic = %topic, partitions, brokers = %brokers.join(","), "producing");

    let stats = Stats::new();
    let (tx, rx) = channel::channel(args.channel_capacity, args.channel_bytes);
    let reporter = stats::spawn_reporter(stats.clone(), tx.depth(), args.stats_interval);
    let producer = Producer::new(
        partition_clients,
        ProducerConfig {
            linger: args.linger,
            batch_bytes: args.batch_bytes,
            compression,
            delivery_timeout: args.delivery_timeout,
            request_timeout: timeout,
            max_in_flight: args.max_in_flight,
        },
        stats.clone(),
    );
    let mut producing = tokio::spawn(producer.run(rx));

    let mut intake = Intake::new(tx, stats.clone(), args.max_records);
    if v2 && args.from_file.is_none() {
        intake = intake.with_dedup(Dedup::new(args.dedup_window, args.dedup_capacity));
    }
    let ended = match &source {
        Source::Stream(client, cfg, _) => stream::run(client, cfg, &mut intake, &shutdown).await,
        Source::File(path) => {
            replay::run(path, args.max_record_bytes, &mut intake, &shutdown).await
        }
    };
    // Closing the channel tells the producer to flush everything and finish.
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
    let drained = tokio::select! {
        r = &mut producing => r.is_ok(),
        _ = tokio::time::sleep(drain_limit) => false,
    };
    if !drained {
        producing.abort();
        let outstanding =
            Stats::get(&stats.accepted) - Stats::get(&stats.delivered) - Stats::get(&stats.failed);
        Stats::add(&stats.failed, outstanding);
        tracing::error!(
            undelivered = outstanding,
            "gave up waiting for acknowledgements after {drain_limit:?}"
        );
    }
    if let Some(r) = reporter {
        r.abort();
    }
    if let Some(n) = nodelay {
        n.abort();
    }
    stats::log_summary(&stats, started.elapsed());

    ended?;
    let failed = Stats::get(&stats.failed);
    if failed > 0 {
        return Err(Error::runtime(format!(
            "{failed} accepted record(s) were not acknowledged by Kafka; see the errors above"
        )));
    }
    Ok(())
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
