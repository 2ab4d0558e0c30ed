//! Our own Kafka protocol connection against the real broker (tansu): group offsets committed
//! and fetched with `OffsetStore`, cross-checked both ways with librdkafka; `tweetpipe topic
//! create|describe` through the real binary; and time limits against a broker that never
//! answers.
//!
//! What tansu 0.6.0 cannot show (so no test here claims it): it validates neither the
//! replication factor nor config names or values on CreateTopics (so INVALID_REPLICATION_FACTOR
//! / INVALID_CONFIG / POLICY_VIOLATION never come back from it), and DescribeConfigs reports
//! exactly the configs given at creation, each with source DEFAULT_CONFIG, and no broker
//! defaults (so "set on this topic" cannot be told apart from a default on tansu).

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;
use tweetpipe::kafka::connection::Connection;
use tweetpipe::kafka::group::OffsetStore;
use tweetpipe::kafka::security::Security;

const LIMIT: Duration = Duration::from_secs(60);
const TIMEOUT: Duration = Duration::from_secs(10);

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

/// librdkafka's view of the group's committed offsets of partitions 0..n.
async fn rdkafka_committed(topic: &str, group: &str, n: i32) -> BTreeMap<i32, Option<i64>> {
    let brokers = brokers();
    let n = n.to_string();
    let (code, lines, stderr) = rdkafka(&[
        "committed",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--group",
        group,
        "--partitions",
        &n,
    ])
    .await;
    assert_eq!(code, 0, "rdkafka_client committed failed:\n{stderr}");
    lines
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap() as i32,
                l["offset"].as_i64(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_negotiates_a_version_of_every_api_we_use() {
    use kafka_protocol::messages::*;
    let conn = Connection::connect(&brokers(), TIMEOUT, &Security::default())
        .await
        .expect("connect");
    let versions = [
        ("Metadata", conn.version::<MetadataRequest>()),
        ("FindCoordinator", conn.version::<FindCoordinatorRequest>()),
        ("OffsetFetch", conn.version::<OffsetFetchRequest>()),
        ("OffsetCommit", conn.version::<OffsetCommitRequest>()),
        ("CreateTopics", conn.version::<CreateTopicsRequest>()),
        ("DescribeConfigs", conn.version::<DescribeConfigsRequest>()),
    ];
    for (name, v) in versions {
        let v = v.unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!("{name}: v{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_commit_and_fetch_round_trip_and_a_fresh_group_has_none() {
    let topic = topic("offsets");
    create_topic(&topic, 3).await;
    let group = new_group("roundtrip");
    let brokers = vec![brokers()];

    let mut store = OffsetStore::connect(&brokers, &group, TIMEOUT)
        .await
        .expect("connect");
    assert!(
        store.fetch(&topic, &[0, 1, 2]).await.unwrap().is_empty(),
        "a fresh group has no committed offsets"
    );

    store
        .commit(&topic, &BTreeMap::from([(0, 5), (2, 17)]))
        .await
        .expect("commit");
    assert_eq!(
        store.fetch(&topic, &[0, 1, 2]).await.unwrap(),
        BTreeMap::from([(0, 5), (2, 17)])
    );

    // A later commit of one partition moves only that one.
    store
        .commit(&topic, &BTreeMap::from([(0, 6)]))
        .await
        .expect("commit");
    assert_eq!(
        store.fetch(&topic, &[0, 1, 2]).await.unwrap(),
        BTreeMap::from([(0, 6), (2, 17)])
    );
    // Asking for a subset returns just that subset; nothing asked, nothing returned.
    assert_eq!(
        store.fetch(&topic, &[2]).await.unwrap(),
        BTreeMap::from([(2, 17)])
    );
    assert!(store.fetch(&topic, &[]).await.unwrap().is_empty());

    // A new store (new connection, as after a restart) sees the same; another group sees nothing.
    let mut again = OffsetStore::connect(&brokers, &group, TIMEOUT)
        .await
        .expect("connect");
    assert_eq!(
        again.fetch(&topic, &[0, 1, 2]).await.unwrap(),
        BTreeMap::from([(0, 6), (2, 17)])
    );
    let mut other = OffsetStore::connect(&brokers, &new_group("other"), TIMEOUT)
        .await
        .expect("connect");
    assert!(other.fetch(&topic, &[0, 1, 2]).await.unwrap().is_empty());

    // Negative offsets are refused before anything is sent.
    let e = store
        .commit(&topic, &BTreeMap::from([(1, -1)]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(store.fetch(&topic, &[1]).await.unwrap(), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn per_partition_errors_are_reported() {
    // tansu checks that the topic exists on commit (though not the partition number).
    let topic = topic("never-created");
    let mut store = OffsetStore::connect(&[brokers()], &new_group("errors"), TIMEOUT)
        .await
        .expect("connect");
    let e = store
        .commit(&topic, &BTreeMap::from([(0, 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("topic {topic:?}"))
            && msg.contains("partition 0: UNKNOWN_TOPIC_OR_PARTITION (3)"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn older_request_versions_work_too() {
    use kafka_protocol::messages::ApiKey;
    // Brokers before Kafka 3.0 speak only these: the pre-"batched" shapes of FindCoordinator
    // (v0-3) and OffsetFetch (v1-7), and OffsetCommit with a retention field (v2-4).
    let cap_sets: [&[(ApiKey, i16)]; 3] = [
        &[
            (ApiKey::FindCoordinator, 3),
            (ApiKey::OffsetFetch, 7),
            (ApiKey::OffsetCommit, 7),
        ],
        &[
            (ApiKey::FindCoordinator, 1),
            (ApiKey::OffsetFetch, 5),
            (ApiKey::OffsetCommit, 4),
        ],
        &[
            (ApiKey::FindCoordinator, 0),
            (ApiKey::OffsetFetch, 1),
            (ApiKey::OffsetCommit, 2),
        ],
    ];
    let topic = topic("old-versions");
    create_topic(&topic, 2).await;
    for (i, caps) in cap_sets.iter().enumerate() {
        let group = new_group(&format!("old{i}"));
        let mut store = OffsetStore::connect_capped(&[brokers()], &group, TIMEOUT, caps)
            .await
            .expect("connect");
        assert!(
            store.fetch(&topic, &[0, 1]).await.unwrap().is_empty(),
            "caps {caps:?}"
        );
        store
            .commit(&topic, &BTreeMap::from([(1, 11 + i as i64)]))
            .await
            .expect("commit");
        assert_eq!(
            store.fetch(&topic, &[0, 1]).await.unwrap(),
            BTreeMap::from([(1, 11 + i as i64)]),
            "caps {caps:?}"
        );
        assert_eq!(
            rdkafka_committed(&topic, &group, 2).await,
            BTreeMap::from([(0, None), (1, Some(11 + i as i64))]),
            "caps {caps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_sees_our_commits() {
    let topic = topic("ours-to-rdkafka");
    create_topic(&topic, 3).await;
    let group = new_group("ours");
    assert_eq!(
        rdkafka_committed(&topic, &group, 3).await,
        BTreeMap::from([(0, None), (1, None), (2, None)])
    );

    let mut store = OffsetStore::connect(&[brokers()], &group, TIMEOUT)
        .await
        .expect("connect");
    store
        .commit(&topic, &BTreeMap::from([(0, 42), (1, 7)]))
        .await
        .expect("commit");
    assert_eq!(
        rdkafka_committed(&topic, &group, 3).await,
        BTreeMap::from([(0, Some(42)), (1, Some(7)), (2, None)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn we_read_what_librdkafka_commits() {
    let topic = topic("rdkafka-to-ours");
    create_topic(&topic, 3).await;
    let group = new_group("theirs");
    let brokers = brokers();
    let (code, lines, stderr) = rdkafka(&[
        "commit",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &group,
        "--offsets",
        "1:99,2:3",
    ])
    .await;
    assert_eq!(
        code, 0,
        "rdkafka_client commit failed:\n{stderr}\n{lines:?}"
    );

    let mut store = OffsetStore::connect(std::slice::from_ref(&brokers), &group, TIMEOUT)
        .await
        .expect("connect");
    assert_eq!(
        store.fetch(&topic, &[0, 1, 2]).await.unwrap(),
        BTreeMap::from([(1, 99), (2, 3)])
    );

    // And back: our update of their group is what librdkafka sees next.
    store
        .commit(&topic, &BTreeMap::from([(1, 100)]))
        .await
        .expect("commit");
    assert_eq!(
        rdkafka_committed(&topic, &group, 3).await,
        BTreeMap::from([(0, None), (1, Some(100)), (2, Some(3))])
    );
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
async fn connection_failures_are_retried_within_the_time_limit() {
    let topic = topic("flaky");
    create_topic(&topic, 1).await;
    // A proxy in front of the broker that slams the door on its first two connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap().to_string();
    let upstream = brokers();
    let forward = tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut down, _)) = listener.accept().await {
            n += 1;
            if n <= 2 {
                drop(down);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
    });
    let group = new_group("flaky");
    let mut store = OffsetStore::connect(&[proxy], &group, TIMEOUT)
        .await
        .expect("connect succeeds on the third try");
    store
        .commit(&topic, &BTreeMap::from([(0, 3)]))
        .await
        .expect("commit");
    assert_eq!(
        store.fetch(&topic, &[0]).await.unwrap(),
        BTreeMap::from([(0, 3)])
    );
    forward.abort();

    // A dead bootstrap broker first in the list: the next one is used.
    let mut store = OffsetStore::connect(&["127.0.0.1:1".to_string(), brokers()], &group, TIMEOUT)
        .await
        .expect("connect");
    assert_eq!(
        store.fetch(&topic, &[0]).await.unwrap(),
        BTreeMap::from([(0, 3)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_never_answers_cannot_hang_us() {
    // Accepts connections, reads nothing, says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    let limit = Duration::from_millis(500);

    let started = Instant::now();
    let e = Connection::connect(&addr, limit, &Security::default())
        .await
        .err()
        .expect("no handshake answer: an error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("no answer within"), "{e}");

    let started = Instant::now();
    let e = OffsetStore::connect(std::slice::from_ref(&addr), "g", limit)
        .await
        .err()
        .expect("an error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("gave up after"), "{e}");

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
