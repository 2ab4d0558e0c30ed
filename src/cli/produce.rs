//! `produce`'s flags into [`produce::Config`]: every check made here, before anything
//! connects, so that a configuration problem is exit 2 and names the flag to fix.

use std::time::Duration;

use hyper::Uri;
use rskafka::client::partition::Compression;

use super::{Api, CompressionArg, ProduceArgs, SourceArg, V1_STREAM_URL, V2_STREAM_URL};
use crate::backoff::BackoffPolicy;
use crate::error::{Error, Result};
use crate::kafka::topic::TopicSpec;
use crate::produce::batcher::BatcherConfig;
use crate::produce::keeper::Limits;
use crate::produce::spill::SpillConfig;
use crate::produce::{self, Source};
use crate::source::framer::Framing;
use crate::source::replay;
use crate::source::twitter::client::{Filter, StreamClient, V2Fields};
use crate::source::twitter::rules::RulesApi;
use crate::source::twitter::stream::{self, StreamConfig};

pub(crate) fn config(args: &ProduceArgs) -> Result<produce::Config> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    let topic = super::kafka::topic(&args.kafka)?;
    check_sizes(args)?;
    let source = source(args)?;
    // Backfill repeats tweets of the live v2 stream: remember what was produced to drop them.
    // A Jetstream resume repeats events: the same dedupe drops them, by their identity.
    let jetstream = args.source == SourceArg::Jetstream;
    let dedup = if jetstream {
        Some(super::jetstream::dedup(args)?)
    } else {
        (args.api == Api::V2 && args.from_file.is_none()).then_some((
            args.dedup_window.unwrap_or(Duration::from_secs(600)),
            args.dedup_capacity.unwrap_or(1_000_000),
        ))
    };
    let budget = budget(args)?;
    Ok(produce::Config {
        topic: TopicSpec {
            name: topic,
            partitions: args.partitions,
            replication_factor: args.replication_factor,
            configs: Vec::new(),
        },
        batcher: BatcherConfig {
            linger: args.linger,
            batch_bytes: args.batch_bytes,
            compression: match args.compression {
                CompressionArg::None => Compression::NoCompression,
                CompressionArg::Gzip => Compression::Gzip,
                CompressionArg::Snappy => Compression::Snappy,
            },
            delivery_timeout: args.delivery_timeout,
            request_timeout: cluster.timeout,
            max_in_flight: args.max_in_flight.max(1),
        },
        cluster,
        source,
        channel_capacity: args.channel_capacity,
        channel_bytes: args.channel_bytes,
        spill: (args.spill_max_bytes > 0).then(|| SpillConfig {
            dir: args.spill_dir.clone(),
            max_bytes: args.spill_max_bytes,
            segment_bytes: args.spill_segment_bytes,
            fsync_interval: args.spill_fsync_interval,
        }),
        dedup,
        max_records: args.max_records,
        stats_interval: args.stats_interval,
        shutdown_timeout: args.shutdown_timeout,
        summary_file: args.summary_file.clone(),
        metrics_addr: super::metrics::addr(args.metrics_addr.as_deref())?,
        state_dir: args.spill_dir.clone(),
        budget,
    })
}

/// The sizes and counts that have a floor.
fn check_sizes(args: &ProduceArgs) -> Result<()> {
    check(
        args.batch_bytes >= 1024,
        "--batch-bytes must be at least 1024",
    )?;
    check(
        args.channel_capacity >= 1,
        "--channel-capacity must be at least 1",
    )?;
    check(
        args.max_record_bytes >= 1024,
        "--max-record-bytes must be at least 1024",
    )?;
    check(
        args.channel_bytes >= args.max_record_bytes,
        "--channel-bytes must be at least --max-record-bytes, or a maximal record could never be queued",
    )?;
    check(
        args.max_records != Some(0),
        "--max-records must be at least 1",
    )?;
    check(
        args.partitions >= 1,
        &format!("--partitions must be at least 1, got {}", args.partitions),
    )?;
    check(
        args.replication_factor >= 1,
        &format!(
            "--replication-factor must be at least 1, got {}",
            args.replication_factor
        ),
    )?;
    check(
        args.spill_max_bytes == 0 || args.spill_segment_bytes >= 4096,
        "--spill-segment-bytes must be at least 4KiB",
    )?;
    Ok(())
}

/// The spend guard's limits, for the live Twitter stream.
fn budget(args: &ProduceArgs) -> Result<Option<Limits>> {
    if args.max_posts_per_day.is_none() && args.max_posts_per_month.is_none() {
        return Ok(None);
    }
    check(
        args.from_file.is_none(),
        "--max-posts-per-day and --max-posts-per-month guard the live stream's cost; a --from-file replay costs nothing",
    )?;
    check(
        args.max_posts_per_day != Some(0) && args.max_posts_per_month != Some(0),
        "--max-posts-per-day and --max-posts-per-month must be at least 1",
    )?;
    Ok(Some(Limits {
        per_day: args.max_posts_per_day,
        per_month: args.max_posts_per_month,
    }))
}

/// The file to replay, or the stream to read with its credentials and filter.
fn source(args: &ProduceArgs) -> Result<Source> {
    if args.source == SourceArg::Jetstream {
        return super::jetstream::source(args);
    }
    let v2 = args.api == Api::V2;
    if v2 {
        check(
            args.dedup_window.is_none_or(|w| w > stream::MAX_BACKFILL),
            "--dedup-window must be longer than 5m, the most a backfill repeats",
        )?;
        check(
            args.dedup_capacity != Some(0),
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
                    "{flag} is a v1.1 statuses/filter parameter; with --api v2 (the default) the stream is filtered by rules: write it as a rule (e.g. from:USER, lang:en, has:geo) with `tweetpipe rules add` or `tweetpipe rules sync`, or give --api 1.1 for an endpoint that still speaks v1.1"
                )));
            }
        }
    }
    if let Some(path) = &args.from_file {
        // Opened once now so a wrong path is a usage error before anything connects.
        if path.as_os_str() != "-" {
            replay::open(path)
                .map_err(|e| Error::usage(format!("--from-file: {}", crate::error::chain(&e))))?;
        }
        return Ok(Source::File {
            path: path.clone(),
            max_record_bytes: args.max_record_bytes,
        });
    }
    let stream = stream_config(args)?;
    if v2 {
        return v2_stream(args, stream);
    }
    let creds = super::credentials::oauth(args.env_file.as_deref())?;
    if args.track.is_none() && args.follow.is_none() && args.locations.is_none() {
        return Err(Error::usage(
            "statuses/filter needs at least one of --track, --follow or --locations (or replay a file with --from-file)",
        ));
    }
    let filter = Filter {
        track: args.track.clone(),
        follow: args.follow.clone(),
        locations: args.locations.clone(),
        language: args.language.clone(),
        delimited_length: args.delimited_length,
    };
    let uri = stream_url(
        args.stream_url.as_deref().unwrap_or(V1_STREAM_URL),
        V1_STREAM_URL,
    )?;
    Ok(Source::Twitter {
        client: Box::new(StreamClient::new(uri, &filter, creds)),
        stream,
        rules: None,
    })
}

/// The v2 filtered stream, with `--track`'s rules to make the server's.
fn v2_stream(args: &ProduceArgs, stream: StreamConfig) -> Result<Source> {
    let token = super::credentials::bearer_token(args.env_file.as_deref())?;
    let uri = stream_url(
        args.stream_url.as_deref().unwrap_or(V2_STREAM_URL),
        V2_STREAM_URL,
    )?;
    let fields = V2Fields {
        expansions: args.expansions.clone(),
        tweet_fields: args.tweet_fields.clone(),
        user_fields: args.user_fields.clone(),
    };
    let rules = match &args.track {
        Some(t) => Some(Box::new((
            RulesApi::new(&uri, token.clone()),
            super::rules::track_rules(t)?,
        ))),
        None => None,
    };
    let client = StreamClient::new_v2(uri, &fields, token);
    Ok(Source::Twitter {
        client: Box::new(client),
        stream,
        rules,
    })
}

fn stream_config(args: &ProduceArgs) -> Result<StreamConfig> {
    let v2 = args.api == Api::V2;
    let stall_timeout = args
        .stall_timeout
        .unwrap_or(Duration::from_secs(if v2 { 30 } else { 90 }));
    check(
        !stall_timeout.is_zero(),
        "--stall-timeout must be more than 0",
    )?;
    Ok(StreamConfig {
        stall_timeout,
        max_record_bytes: args.max_record_bytes,
        backoff: BackoffPolicy {
            network_step: args.backoff_network_step,
            network_max: args.backoff_network_max,
            http_initial: args.backoff_http_initial,
            http_max: args.backoff_http_max,
            rate_limit_initial: args.backoff_rate_limit_initial,
            rate_limit_max: args.backoff_rate_limit_max,
        },
        framing: if args.delimited_length {
            Framing::Length
        } else {
            Framing::Crlf
        },
        backfill: v2 && !args.no_backfill,
    })
}

/// `--stream-url`: an `http(s)://` URL with a host. `example` shows a good one.
pub(crate) fn stream_url(stream_url: &str, example: &str) -> Result<Uri> {
    let uri: Uri = stream_url.parse().map_err(|e| {
        Error::usage(format!(
            "--stream-url {stream_url:?} is not a URL ({e}); give e.g. {example}"
        ))
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(Error::usage(format!(
                "--stream-url {stream_url:?} must start with https:// (or http:// for a local server or proxy)"
            )))
        }
    }
    if uri.authority().is_none() {
        return Err(Error::usage(format!(
            "--stream-url {stream_url:?} has no host"
        )));
    }
    Ok(uri)
}

pub(crate) fn check(ok: bool, msg: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::usage(msg))
    }
}
