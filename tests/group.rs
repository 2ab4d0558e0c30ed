//! `tweetpipe consume` as a consumer-group member, with real processes on the real broker:
//! instances of one group split a topic while `produce` streams into it, take over from one
//! that is SIGKILLed or stopped, and between them write every tweet exactly once; a
//! librdkafka consumer takes part in the same group; `tweetpipe group describe` reads the
//! committed offsets and lag.
//!
//! The broker is tansu 0.6.0, which shapes two things here (docs/consumer-groups.md):
//! - it never times out a silent member by itself; a member that dies is evicted when the
//!   others' heartbeats run into it after the session timeout, and our members then rejoin
//!   (what Kafka does on its own);
//! - a member restarted *within* the session timeout after a SIGKILL can make it re-form the
//!   group under the same generation number with two owners of a partition; so the killed
//!   instance is restarted only once the others have taken its partitions over (on Kafka a
//!   restart at once is fine: `tests/containers.rs`).
//!
//! Each test prints its timings (eprintln); docs/consumer-groups.md has the figures.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::group::{assert_exactly_once, paced_stream, Fleet};
use support::*;

const LIMIT: Duration = Duration::from_secs(120);

fn owners_of(s: &support::group::Settled, name: &str) -> Vec<i32> {
    s.owners
        .iter()
        .filter(|(_, o)| *o == name)
        .map(|(p, _)| *p)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_split_the_topic_take_over_and_write_each_tweet_exactly_once() {
    let n = 8_000;
    let topic = topic("group");
    create_topic(&topic, 6).await;
    let (server, ids) = paced_stream(n, 9_100_000, 200).await;
    let mut producer = support::group::produce(&brokers(), &server, &topic, n);
    let out = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(&brokers(), &topic, &topic, 6, out.path());

    for name in ["a", "b", "c"] {
        fleet.start(name);
    }
    let s = fleet.settled(LIMIT).await;
    eprintln!("three instances settled in {:?}: {:?}", s.took, s.owners);
    for name in ["a", "b", "c"] {
        assert_eq!(owners_of(&s, name).len(), 2, "{name}: {s:?}");
    }

    // SIGKILL: no commit, no LeaveGroup; the others take its partitions once its session
    // times out.
    fleet.kill("a").await;
    let s = fleet.settled(LIMIT).await;
    eprintln!(
        "after SIGKILL, the others own every partition after {:?}",
        s.took
    );
    // Restarted (into the same directory), once the others have its partitions (see the
    // module documentation).
    fleet.start("a2");
    let s = fleet.settled(LIMIT).await;
    eprintln!(
        "restart after SIGKILL: every partition owned again after {:?}: {:?}",
        s.took, s.owners
    );
    assert!(!owners_of(&s, "a2").is_empty());

    // SIGTERM: a clean stop commits, finalizes its files and leaves the group at once.
    let stopped_at = Instant::now();
    let b = fleet.stop("b", LIMIT).await;
    assert_eq!(b.code, 0, "{}", b.stderr);
    let s = fleet.settled(LIMIT).await;
    eprintln!(
        "graceful leave: every partition owned again {:?} after SIGTERM ({:?} after the exit)",
        stopped_at.elapsed(),
        s.took
    );
    let b = b.summary.unwrap();
    assert_eq!(b.0["state"], "stopped");
    assert!(b.get("written") > 0, "b wrote something before it stopped");

    fleet.start("d");
    let s = fleet.settled(LIMIT).await;
    eprintln!(
        "a fourth instance: settled after {:?}: {:?}",
        s.took, s.owners
    );
    for name in ["a2", "c", "d"] {
        assert_eq!(owners_of(&s, name).len(), 2, "{name}: {s:?}");
    }

    let status = tokio::time::timeout(LIMIT, producer.wait())
        .await
        .expect("produce ends")
        .unwrap();
    assert!(status.success(), "produce failed");
    let d = fleet.committed_all(n as i64, LIMIT).await;
    for p in d["partitions"].as_array().unwrap() {
        assert_eq!(p["lag"], 0, "{d}");
    }
    let ended = fleet.stop_all(LIMIT).await;
    let written: u64 = ended
        .iter()
        .map(|e| e.summary.as_ref().unwrap().get("written"))
        .sum();
    eprintln!("written by the last three: {written}");
    assert_exactly_once(out.path(), &ids);
    // What `group describe` shows once they are gone: the same offsets, lag 0.
    let d = fleet.describe().await;
    let committed: i64 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, n as i64, "{d}");
}

/// A member that dies and never comes back: the survivor takes its partitions over and
/// finalizes what it left (its committed lines stay, its uncommitted lines go and are
/// written by the survivor), so the union is exactly once without any restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_survivor_takes_over_and_finishes_a_killed_members_output() {
    let n = 3_000;
    let topic = topic("takeover");
    create_topic(&topic, 4).await;
    let (server, ids) = paced_stream(n, 9_300_000, 300).await;
    let mut producer = support::group::produce(&brokers(), &server, &topic, n);
    let out = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(&brokers(), &topic, &topic, 4, out.path());
    fleet.start("a");
    fleet.start("b");
    fleet.settled(LIMIT).await;
    // Let the victim write and commit for a while, then kill it mid-stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    fleet.kill("a").await;
    let killed_at = Instant::now();
    let s = fleet.settled(LIMIT).await;
    eprintln!(
        "SIGKILL: the survivor owns every partition {:?} later",
        killed_at.elapsed()
    );
    assert!(s.owners.values().all(|o| o == "b"));
    assert!(producer.wait().await.unwrap().success());
    fleet.committed_all(n as i64, LIMIT).await;
    fleet.stop_all(LIMIT).await;
    assert_exactly_once(out.path(), &ids);
}

/// One tweetpipe instance and one librdkafka consumer (confluent-kafka, `subscribe`) in one
/// group split the partitions; when librdkafka leaves, tweetpipe takes them all.
#[tokio::test(flavor = "multi_thread")]
async fn a_librdkafka_member_and_a_tweetpipe_member_split_the_partitions() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let topic = topic("mixed");
    create_topic(&topic, 4).await;
    let out = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::new(&brokers(), &topic, &topic, 4, out.path());
    fleet.start("tweetpipe");
    let brokers = brokers();
    let mut rd = tokio::process::Command::new("python3")
        .arg(root().join("tests/rdkafka_client.py"))
        .args([
            "subscribe",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--group",
            &topic,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(rd.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut theirs: Vec<i32> = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await;
        if let Ok(Ok(Some(l))) = line {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["event"] == "assigned" {
                theirs = serde_json::from_value(v["partitions"].clone()).unwrap();
            }
        }
        let ours: Vec<i32> = fleet
            .get("tweetpipe")
            .summary()
            .map(|s| serde_json::from_value(s.0["partitions"].clone()).unwrap())
            .unwrap_or_default();
        let mut all: Vec<i32> = ours.iter().chain(&theirs).copied().collect();
        all.sort();
        if all == [0, 1, 2, 3] && !ours.is_empty() && !theirs.is_empty() {
            eprintln!(
                "split after {:?}: tweetpipe {ours:?}, librdkafka {theirs:?}",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "no split: ours {ours:?}, theirs {theirs:?}\n{}",
            fleet.dump()
        );
    }
    // librdkafka leaves (stdin closed): tweetpipe gets everything.
    drop(rd.stdin.take());
    let s = fleet.settled(LIMIT).await;
    assert_eq!(s.owners.len(), 4);
    assert_eq!(rd.wait().await.unwrap().code(), Some(0));
    fleet.stop_all(LIMIT).await;
}

/// What tansu 0.6.0 does not guarantee, run against it on demand (`--run-ignored all`); the
/// same scenarios run against Apache Kafka and Redpanda in tests/containers.rs, where the
/// broker guarantees them. Both passed every time they were run here (docs/consumer-groups.md),
/// thanks to the members' own workarounds, not to tansu.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "not guaranteed on tansu 0.6.0: a member restarted within its session timeout can make it re-form the group under the same generation with two owners of a partition"]
async fn on_tansu_a_member_restarted_at_once_after_sigkill() {
    support::group::restart_at_once_after_sigkill(&brokers(), 1).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "not guaranteed on tansu 0.6.0: it accepts the commits of a member whose generation is over, so only the member's own heartbeat, if it answers first, stops a stale commit"]
async fn on_tansu_a_frozen_member_is_fenced() {
    support::group::frozen_member_is_fenced(&brokers(), 1).await;
}
