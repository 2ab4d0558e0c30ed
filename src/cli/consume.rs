//! `consume`'s flags into [`consume::Config`], checked before anything connects: the group's
//! settings into a [`MemberConfig`] (or none, for `--assign all`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::produce::check;
use super::ConsumeArgs;
use crate::consume::start::StartFrom;
use crate::consume::writer::Limits;
use crate::consume::{self, Output};
use crate::error::{Error, Result};
use crate::kafka::group::assignor::Assignor;
use crate::kafka::group::membership::MemberConfig;
use crate::kafka::Cluster;

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
    let output_text = args.output.to_str().unwrap_or("");
    let output = if args.output.as_os_str() == "-" {
        Output::Stdout
    } else if crate::sink::postgres::target::is_postgres_url(output_text) {
        check(
            args.pg_batch_rows >= 1,
            "--pg-batch-rows must be at least 1",
        )?;
        check(
            !args.pg_schema.is_empty(),
            "--pg-schema is empty; give the schema for the tables, e.g. --pg-schema public",
        )?;
        // The URL may hold a password: the message names the part that is wrong, never the URL.
        let config = crate::sink::postgres::Config::new(
            output_text,
            args.pg_schema.clone(),
            args.pg_batch_rows,
            args.pg_ca_file.as_deref(),
        )
        .map_err(|e| Error::usage(format!("--output (PostgreSQL): {e}")))?;
        Output::Postgres(config)
    } else {
        Output::Dir {
            path: args.output.clone(),
            rotate_bytes: args.rotate_bytes,
        }
    };
    let member = match args.assign.as_deref() {
        Some(_) => None, // clap allows only `all`
        None => Some(member_config(args, &cluster, &topic)?),
    };
    Ok(consume::Config {
        cluster,
        topic,
        group: args.group.clone(),
        member,
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

/// The group flags, checked as Kafka would check them (so that a mistake is a usage error
/// naming the flag now, not a broker's refusal later).
fn member_config(args: &ConsumeArgs, cluster: &Cluster, topic: &str) -> Result<MemberConfig> {
    let assignors = Assignor::parse_list(&args.assignor)
        .map_err(|e| Error::usage(format!("--assignor: {e}")))?;
    for (flag, d) in [
        ("--session-timeout", args.session_timeout),
        ("--heartbeat-interval", args.heartbeat_interval),
        ("--max-poll-interval", args.max_poll_interval),
    ] {
        check(
            d >= Duration::from_millis(1) && d.as_millis() <= i32::MAX as u128,
            &format!("{flag} must be between 1ms and 24 days (Kafka takes milliseconds as a 32-bit number)"),
        )?;
    }
    check(
        args.heartbeat_interval < args.session_timeout,
        &format!(
            "--heartbeat-interval ({:?}) must be shorter than --session-timeout ({:?}); Kafka advises a third of it at most",
            args.heartbeat_interval, args.session_timeout
        ),
    )?;
    if let Some(id) = &args.instance_id {
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        check(
            !id.is_empty() && id.len() <= 249 && id.chars().all(legal) && id != "." && id != "..",
            &format!("--instance-id {id:?}: give 1-249 characters from a-z, A-Z, 0-9, '.', '_', '-', unique per instance"),
        )?;
    }
    let mut m = MemberConfig::new(
        cluster.brokers.clone(),
        cluster.security.clone(),
        &args.group,
        vec![topic.to_string()],
        cluster.timeout,
    );
    m.assignors = assignors;
    m.session_timeout = args.session_timeout;
    m.heartbeat_interval = args.heartbeat_interval;
    m.max_poll_interval = args.max_poll_interval;
    m.instance_id = args.instance_id.clone();
    m.validate()?;
    Ok(m)
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
