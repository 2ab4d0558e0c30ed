//! The Kafka layer against the real broker (tansu): our connection's versions, group offsets
//! committed and fetched with [`OffsetStore`] and cross-checked both ways with librdkafka,
//! and time limits against a broker that fails or never answers.
//!
//! What tansu 0.6.0 cannot show (so no test here claims it): it validates neither the
//! replication factor nor config names or values on CreateTopics, and DescribeConfigs reports
//! exactly the configs given at creation (tests/kafka_admin.rs runs `topic create|describe`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::connection::Connection;
use super::group::OffsetStore;
use super::{Cluster, Error, Security};
use crate::test_support::{
    brokers, cluster, create_topic, rdkafka, silent_broker, unique as topic,
};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A group id no other test (or earlier run against the same broker) uses.
fn new_group(name: &str) -> String {
    topic(&format!("group-{name}"))
}

/// A cluster at `brokers`, plaintext.
fn at(brokers: &[String], timeout: Duration) -> Cluster {
    Cluster {
        brokers: brokers.to_vec(),
        timeout,
        security: Security::default(),
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

    let mut store = OffsetStore::connect(&cluster(TIMEOUT), &group)
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
    let mut again = OffsetStore::connect(&cluster(TIMEOUT), &group)
        .await
        .expect("connect");
    assert_eq!(
        again.fetch(&topic, &[0, 1, 2]).await.unwrap(),
        BTreeMap::from([(0, 6), (2, 17)])
    );
    let mut other = OffsetStore::connect(&cluster(TIMEOUT), &new_group("other"))
        .await
        .expect("connect");
    assert!(other.fetch(&topic, &[0, 1, 2]).await.unwrap().is_empty());

    // Negative offsets are refused before anything is sent.
    let e = store
        .commit(&topic, &BTreeMap::from([(1, -1)]))
        .await
        .unwrap_err();
    assert!(!matches!(
        e,
        Error::TopicRefused { .. } | Error::InvalidGroup { .. }
    ));
    assert_eq!(store.fetch(&topic, &[1]).await.unwrap(), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn per_partition_errors_are_reported() {
    // tansu checks that the topic exists on commit (though not the partition number).
    let topic = topic("never-created");
    let mut store = OffsetStore::connect(&cluster(TIMEOUT), &new_group("errors"))
        .await
        .expect("connect");
    let e = store
        .commit(&topic, &BTreeMap::from([(0, 1)]))
        .await
        .unwrap_err();
    assert!(!matches!(
        e,
        Error::TopicRefused { .. } | Error::InvalidGroup { .. }
    ));
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
        let mut store = OffsetStore::connect_capped(&cluster(TIMEOUT), &group, caps)
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

    let mut store = OffsetStore::connect(&cluster(TIMEOUT), &group)
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

    let mut store = OffsetStore::connect(&cluster(TIMEOUT), &group)
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
    let mut store = OffsetStore::connect(&at(&[proxy], TIMEOUT), &group)
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
    let mut store = OffsetStore::connect(
        &at(&["127.0.0.1:1".to_string(), brokers()], TIMEOUT),
        &group,
    )
    .await
    .expect("connect");
    assert_eq!(
        store.fetch(&topic, &[0]).await.unwrap(),
        BTreeMap::from([(0, 3)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_that_never_answers_cannot_hang_us() {
    let (addr, held) = silent_broker().await;
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
    let e = OffsetStore::connect(&at(std::slice::from_ref(&addr), limit), "g")
        .await
        .err()
        .expect("an error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(!matches!(
        e,
        Error::TopicRefused { .. } | Error::InvalidGroup { .. }
    ));
    assert!(e.to_string().contains("gave up after"), "{e}");

    held.abort();
}
