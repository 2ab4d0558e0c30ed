//! `consume`'s flags into [`consume::Config`], checked before anything connects.

use chrono::{DateTime, Utc};

use super::produce::check;
use super::ConsumeArgs;
use crate::consume::start::StartFrom;
use crate::consume::writer::Limits;
use crate::consume::{self, Output};
use crate::error::{Error, Result};

pub(crate) fn config(args: &ConsumeArgs) -> Result<consume::Config> {
    let cluster = super::kafka::cluster(&args.kafka)?;
    let topic = super::kafka::topic(&args.kafka)?;
    check(
        args.max_records != Some(0),
        "--max-records must be at least 1",
    )?;
    check(
        !args.group.is_empty(),
        "--group is empty; give the consumer group id, e.g. --group tweetpipe",
    )?;
    check(
        !args.commit_interval.is_zero(),
        "--commit-interval must be more than 0",
    )?;
    let output = if args.output.as_os_str() == "-" {
        Output::Stdout
    } else {
        Output::Dir {
            path: args.output.clone(),
            rotate_bytes: args.rotate_bytes,
        }
    };
    Ok(consume::Config {
        cluster,
        topic,
        group: args.group.clone(),
        from: start_from(&args.from)?,
        output,
        limits: Limits {
            max_records: args.max_records,
            idle_exit: args.idle_exit,
            commit_interval: args.commit_interval,
            stats_interval: args.stats_interval,
        },
        fetch_wait: args.fetch_wait,
        summary_file: args.summary_file.clone(),
        metrics_addr: super::metrics::addr(args.metrics_addr.as_deref())?,
    })
}

/// `--from`.
fn start_from(s: &str) -> Result<StartFrom> {
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
