//! `produce --source jetstream`'s flags into the Jetstream source's configuration: the
//! instances, the filter, where to start, and the reconnect settings it shares with the
//! Twitter stream. Every check is made here, before anything connects.

use std::time::Duration;

use super::ProduceArgs;
use crate::backoff::BackoffPolicy;
use crate::error::{Error, Result};
use crate::produce::{JetstreamSource, Source, Start};
use crate::source::jetstream::error::JetstreamError;
use crate::source::jetstream::instances::Instances;
use crate::source::jetstream::resume::ResumeConfig;
use crate::source::jetstream::run::JetstreamConfig;
use crate::source::jetstream::subscribe::{parse_dids, Endpoint, Subscription};

/// A cursor is a `time_us`: anything smaller is not one (Jetstream would take it as a
/// sequence number of its newer endpoint).
const SMALLEST_CURSOR: i64 = 1_000_000_000_000_000;

pub(crate) fn source(args: &ProduceArgs) -> Result<Source> {
    for (flag, set) in [
        ("--track", args.track.is_some()),
        ("--follow", args.follow.is_some()),
        ("--locations", args.locations.is_some()),
        ("--language", args.language.is_some()),
        ("--stream-url", args.stream_url.is_some()),
        ("--from-file", args.from_file.is_some()),
        ("--max-posts-per-day", args.max_posts_per_day.is_some()),
        ("--max-posts-per-month", args.max_posts_per_month.is_some()),
    ] {
        if set {
            return Err(Error::usage(format!(
                "{flag} is for --source twitter; Jetstream is chosen by --collections and --dids \
                 (and costs nothing, so it has no spend guard)"
            )));
        }
    }
    let instances = if args.jetstream_url.is_empty() {
        Instances::public()
    } else {
        let endpoints = args
            .jetstream_url
            .iter()
            .map(|u| Endpoint::parse(u.trim()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| flag_error("--jetstream-url", e))?;
        Instances::new(endpoints)
    };
    let collections: Vec<String> = match args.collections.trim() {
        "all" | "*" => Vec::new(),
        list => list.split(',').map(str::to_string).collect(),
    };
    let dids = match &args.dids {
        Some(d) => parse_dids(d).map_err(|e| flag_error("--dids", e))?,
        None => Vec::new(),
    };
    let filtered_by_account = !dids.is_empty();
    let subscription = Subscription::new(collections, dids, !args.jetstream_no_compress, 0)
        .map_err(|e| match e {
            JetstreamError::Collection(_) => flag_error("--collections", e),
            e => flag_error("--dids", e),
        })?;
    let stall = args.stall_timeout.unwrap_or(Duration::from_secs(45));
    super::produce::check(
        stall >= Duration::from_secs(1),
        "--stall-timeout must be at least 1s with --source jetstream (we ping every third of it)",
    )?;
    super::produce::check(
        args.jetstream_failover_rewind >= args.jetstream_rewind,
        "--jetstream-failover-rewind must be at least --jetstream-rewind",
    )?;
    let mut config = JetstreamConfig::new(instances, subscription);
    config.max_record_bytes = args.max_record_bytes;
    config.stall_timeout = stall;
    config.ping_interval = stall / 3;
    config.backoff = BackoffPolicy {
        network_step: args.backoff_network_step,
        network_max: args.backoff_network_max,
        http_initial: args.backoff_http_initial,
        http_max: args.backoff_http_max,
        rate_limit_initial: args.backoff_rate_limit_initial,
        rate_limit_max: args.backoff_rate_limit_max,
    };
    config.resume = ResumeConfig {
        rewind: args.jetstream_rewind,
        failover_rewind: args.jetstream_failover_rewind,
        filtered_by_account,
        ..ResumeConfig::default()
    };
    Ok(Source::Jetstream(Box::new(JetstreamSource {
        config,
        start: start(&args.jetstream_start)?,
    })))
}

/// How long and how many identities the dedupe remembers: longer than the furthest rewind, so
/// that every event a resume repeats is still known.
pub(crate) fn dedup(args: &ProduceArgs) -> Result<(Duration, usize)> {
    let window = args.dedup_window.unwrap_or(Duration::from_secs(180));
    let capacity = args.dedup_capacity.unwrap_or(500_000);
    super::produce::check(
        window > args.jetstream_failover_rewind,
        "--dedup-window must be longer than --jetstream-failover-rewind, or a resume on another instance repeats events",
    )?;
    super::produce::check(capacity >= 1, "--dedup-capacity must be at least 1")?;
    Ok((window, capacity))
}

/// `--jetstream-start`: `kept`, `live`, or a `time_us`.
fn start(arg: &str) -> Result<Start> {
    match arg.trim() {
        "kept" => Ok(Start::Kept),
        "live" => Ok(Start::Live),
        t => match t.parse::<i64>() {
            Ok(us) if us >= SMALLEST_CURSOR => Ok(Start::At(us)),
            _ => Err(Error::usage(format!(
                "--jetstream-start {arg:?}: give kept, live, or a cursor in microseconds since \
                 1970 (a Jetstream event's time_us, e.g. 1725911162329308)"
            ))),
        },
    }
}

fn flag_error(flag: &str, e: JetstreamError) -> Error {
    Error::usage(format!("{flag} {}", crate::error::chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts() {
        assert_eq!(start("kept").unwrap(), Start::Kept);
        assert_eq!(start(" live ").unwrap(), Start::Live);
        assert_eq!(
            start("1725911162329308").unwrap(),
            Start::At(1_725_911_162_329_308)
        );
        for bad in ["", "now", "12345", "-1"] {
            let e = start(bad).unwrap_err().to_string();
            assert!(e.contains("--jetstream-start"), "{e}");
        }
    }
}
