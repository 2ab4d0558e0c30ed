//! `tweetpipe topic create|describe` through the real binary against the real broker
//! (tansu), and the command's time limit against a broker that never answers. (The Kafka
//! layer's own tests, group offsets among them, are in src/kafka/tests.rs.)
//!
//! What tansu 0.6.0 cannot show (so no test here claims it): it validates neither the
//! replication factor nor config names or values on CreateTopics (so INVALID_REPLICATION_FACTOR
//! / INVALID_CONFIG / POLICY_VIOLATION never come back from it), and DescribeConfigs reports
//! exactly the configs given at creation, each with source DEFAULT_CONFIG, and no broker
//! defaults (so "set on this topic" cannot be told apart from a default on tansu).

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A group id no other test (or earlier run against the same broker) uses.
fn new_group(name: &str) -> String {
    topic(&format!("group-{name}"))
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real binary to completion (bounded), keeping stdout too.
async fn tweetpipe_out(args: &[&str]) -> Output {
    let mut cmd = tweetpipe(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("tweetpipe {args:?} did not finish within {LIMIT:?}"))
        .expect("run tweetpipe");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_create_then_describe_shows_partitions_and_retention() {
    let topic = topic("admin");
    let brokers = brokers();
    let created = tweetpipe_out(&[
        "topic",
        "create",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--partitions",
        "3",
        "--retention",
        "7d",
        "--segment-bytes",
        "1048576",
        "--config",
        "cleanup.policy=delete",
    ])
    .await;
    assert_eq!(created.code, 0, "stderr:\n{}", created.stderr);
    assert!(
        created.stdout.contains(&format!(
            "created topic {topic}: 3 partitions, replication factor 1"
        )),
        "{}",
        created.stdout
    );
    assert!(
        created.stdout.contains("retention.ms=604800000"),
        "{}",
        created.stdout
    );

    let described = tweetpipe_out(&[
        "topic",
        "describe",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
    ])
    .await;
    assert_eq!(described.code, 0, "stderr:\n{}", described.stderr);
    let out = &described.stdout;
    assert!(
        out.contains("partitions: 3  replication factor: 1"),
        "{out}"
    );
    // One table row per partition: index, leader, replicas, ISR.
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("PARTITION"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{out}"
    );
    for r in &rows {
        assert_eq!(r.len(), 4, "{out}");
        assert_eq!(r[2], r[1], "one replica, the leader: {out}");
        assert_eq!(r[3], r[1], "ISR is the leader: {out}");
    }
    // The configs, as the broker reports them (tansu: exactly the ones given at creation).
    let config = |key: &str| {
        out.lines()
            .map(|l| {
                l.trim_start_matches(['*', ' '])
                    .split_whitespace()
                    .collect::<Vec<_>>()
            })
            .find(|f| f.first() == Some(&key))
            .map(|f| f[1].to_string())
    };
    assert_eq!(
        config("retention.ms").as_deref(),
        Some("604800000"),
        "{out}"
    );
    assert_eq!(config("segment.bytes").as_deref(), Some("1048576"), "{out}");
    assert_eq!(config("cleanup.policy").as_deref(), Some("delete"), "{out}");

    // librdkafka agrees on the partition count (the topic is a real one, not just our view).
    let (_, lines, _) = rdkafka(&[
        "committed",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &new_group("x"),
        "--partitions",
        "3",
    ])
    .await;
    assert_eq!(lines.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_an_existing_topic_is_exit_1_and_points_to_describe() {
    let topic = topic("exists");
    create_topic(&topic, 2).await;
    let run = tweetpipe_out(&[
        "topic",
        "create",
        "--brokers",
        &brokers(),
        "--topic",
        &topic,
        "--partitions",
        "5",
    ])
    .await;
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("tweetpipe topic describe --topic {topic}")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_flags_are_usage_errors_and_create_nothing() {
    let topic = topic("malformed");
    let brokers = brokers();
    for (args, names) in [
        (
            vec!["--config", "cleanup.policy"],
            "--config \"cleanup.policy\" is not KEY=VALUE",
        ),
        (
            vec!["--config", "=delete"],
            "--config \"=delete\" is not KEY=VALUE",
        ),
        (
            vec!["--retention", "1d", "--config", "retention.ms=5"],
            "--retention",
        ),
        (vec!["--partitions", "0"], "--partitions must be at least 1"),
        (
            vec!["--replication-factor", "0"],
            "--replication-factor must be at least 1",
        ),
    ] {
        let mut all = vec!["topic", "create", "--brokers", &brokers, "--topic", &topic];
        all.extend(args.iter().copied());
        let run = tweetpipe_out(&all).await;
        assert_eq!(run.code, 2, "{args:?}: stderr:\n{}", run.stderr);
        assert!(run.stderr.contains(names), "{args:?}: {}", run.stderr);
    }
    // Nothing was created.
    let run = tweetpipe_out(&[
        "topic",
        "describe",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
    ])
    .await;
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn describing_an_unknown_topic_is_exit_1_and_suggests_create() {
    let topic = topic("unknown");
    let run = tweetpipe_out(&[
        "topic",
        "describe",
        "--brokers",
        &brokers(),
        "--topic",
        &topic,
    ])
    .await;
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("topic {topic:?} does not exist")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("tweetpipe topic create --topic {topic}")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_never_answers_cannot_hang_the_command() {
    let (addr, held) = silent_broker().await;
    let started = Instant::now();
    let run = tweetpipe_out(&[
        "topic",
        "describe",
        "--brokers",
        &addr,
        "--topic",
        "t",
        "--kafka-timeout",
        "500ms",
    ])
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("cannot reach Kafka"), "{}", run.stderr);
    held.abort();
}
