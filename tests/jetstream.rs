//! `produce --source jetstream` end to end: the real binary against the local Jetstream stand-in
//! (tests/support/jetstream.rs: dictionary-compressed frames, cursor replay, faults), a real
//! broker (tansu), and `consume`'s output files. "Every event once" is checked on the topic and
//! on the output, across dropped connections, a damaged frame and restarts. Also the Twitter
//! spend guard, against the Twitter stand-in.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use support::jetstream::{synthetic_events, Standin};
use support::twitter::{Action, Conn, Creds, StandIn};
use support::*;
use tweetpipe::testing::partition_for_key;

const LIMIT: Duration = Duration::from_secs(180);

/// Events 1 ms apart, starting a minute ago (a cursor that recent is one Jetstream keeps).
fn recent_events(n: usize) -> (Vec<Bytes>, i64) {
    let first = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
        - 60_000_000;
    (synthetic_events(n, first, 1000), first)
}

fn json(v: &[u8]) -> serde_json::Value {
    serde_json::from_slice(v).expect("JSON")
}

/// The `produce --source jetstream` command against `server`, into `topic`.
fn produce(server: &Standin, topic: &str, spill: &Path, extra: &[&str]) -> tokio::process::Command {
    let brokers = brokers();
    let url = server.url();
    let mut args = vec![
        "produce",
        "--source",
        "jetstream",
        "--jetstream-url",
        &url,
        "--collections",
        "all",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--spill-dir",
        spill.to_str().unwrap(),
        "--stats-interval",
        "0s",
        "--backoff-network-step",
        "20ms",
        "--backoff-http-initial",
        "50ms",
    ];
    args.extend_from_slice(extra);
    tweetpipe(&args)
}

/// Every event of `sent` in the topic exactly once, byte-identical, keyed by its `did` and
/// partitioned by that key.
fn assert_each_once(reads: &[Read], sent: &[Bytes], partitions: i32) {
    let by_did: BTreeMap<String, &Bytes> = sent
        .iter()
        .map(|e| (json(e)["did"].as_str().unwrap().to_string(), e))
        .collect();
    let mut seen = BTreeSet::new();
    for r in reads {
        let did = json(&r.value)["did"].as_str().unwrap().to_string();
        assert!(seen.insert(did.clone()), "{did} is in the topic twice");
        assert_eq!(&r.value[..], &by_did[&did][..], "value of {did}");
        assert_eq!(r.key.as_deref(), Some(did.as_bytes()), "key of {did}");
        assert_eq!(r.partition, partition_for_key(did.as_bytes(), partitions));
    }
    assert_eq!(reads.len(), sent.len(), "records in the topic");
}

/// Every line of every output file of `stream` in `dir`.
fn lines_of(dir: &Path, stream: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&format!("{stream}-")) {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                out.push(serde_json::from_str(l).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_once_through_faults_to_the_consumers_output() {
    let (sent, first) = recent_events(3000);
    let server = Standin::start(sent.clone()).await;
    {
        let mut f = server.faults();
        f.http = vec![(503, "service not ready: cursor replay warming up".into())];
        f.drop_after = Some(700);
        f.close_after = Some((900, 1011, "internal error".into()));
        f.bad_frame_at = Some(2500);
    }
    let topic = topic("jetstream");
    let spill = tempfile::tempdir().unwrap();
    let start = first.to_string();
    let r = run(
        produce(
            &server,
            &topic,
            spill.path(),
            &["--jetstream-start", &start, "--max-records", "3000"],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.summary("accepted"), 3000);
    assert_eq!(r.summary("delivered"), 3000);
    assert!(
        r.summary("duplicates_dropped") > 0,
        "each resume replays an overlap"
    );
    assert_eq!(r.summary("reconnects"), 4, "503, drop, 1011, bad frame");
    let js = &r.summary.as_ref().unwrap().0["jetstream"];
    assert_eq!(js["bad_frames"], 1);
    assert_eq!(r.summary("gaps"), 0);
    let seen = server.seen();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[1].param("compress").as_deref(), Some("true"));
    assert_eq!(
        seen[4].param("compress"),
        None,
        "after the bad frame: uncompressed"
    );
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);

    // The consumer: posts in the tweets' schema, everything else as control messages; once each.
    let out = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let c = run(
        tweetpipe(&[
            "consume",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--group",
            &topic,
            "--output",
            out.path().to_str().unwrap(),
            "--idle-exit",
            "2s",
            "--fetch-wait",
            "100ms",
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(c.code, 0, "stderr:\n{}", c.stderr);
    let posts: Vec<&Bytes> = sent
        .iter()
        .filter(|e| {
            let j = json(e);
            j["commit"]["collection"] == "app.bsky.feed.post"
                && j["commit"]["operation"] == "create"
        })
        .collect();
    let tweets = lines_of(out.path(), "tweets");
    assert_eq!(tweets.len(), posts.len());
    let mut ids = BTreeSet::new();
    for t in &tweets {
        assert_eq!(t["source"], "bluesky");
        assert_eq!(t["source_format"], "jetstream");
        assert!(ids.insert(t["id"].as_str().unwrap().to_string()));
    }
    for p in posts {
        let j = json(p);
        let id = format!(
            "at://{}/app.bsky.feed.post/{}",
            j["did"].as_str().unwrap(),
            j["commit"]["rkey"].as_str().unwrap()
        );
        assert!(ids.contains(&id), "{id} is in the output");
    }
    let controls = lines_of(out.path(), "deletes");
    assert_eq!(tweets.len() + controls.len(), sent.len());
    let kinds: BTreeSet<&str> = controls
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["account", "commit", "delete", "identity"]
            .into_iter()
            .collect()
    );
    assert!(lines_of(out.path(), "errors").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_where_the_last_run_left_off_and_repeats_nothing() {
    let (sent, first) = recent_events(2500);
    let server = Standin::start(sent.clone()).await;
    let topic = topic("jetstream-restart");
    let spill = tempfile::tempdir().unwrap();
    let start = first.to_string();
    let r = run(
        produce(
            &server,
            &topic,
            spill.path(),
            &["--jetstream-start", &start, "--max-records", "1000"],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spill.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state["jetstream"]["cursor_us"],
        json(&sent[999])["time_us"],
        "everything acknowledged: the last event's time"
    );
    assert_eq!(state["jetstream"]["instance"], server.url().as_str());
    // The second run resumes from the kept cursor (5 s back, so it is sent the whole first run
    // again) and drops what it already produced, by the keys kept with the cursor.
    let r = run(
        produce(&server, &topic, spill.path(), &["--max-records", "1500"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.summary("duplicates_dropped"), 1000);
    let seen = server.seen();
    let cursor = json(&sent[999])["time_us"].as_i64().unwrap() - 5_000_000;
    assert_eq!(seen[1].param("cursor"), Some(cursor.to_string()));
    assert_each_once(&read_topic(&topic, sent.len(), LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_producer_killed_mid_stream_loses_nothing_and_repeats_at_most_its_last_second() {
    let (sent, first) = recent_events(6000);
    let server = Standin::start(sent.clone()).await;
    server.set_rate(3000);
    let topic = topic("jetstream-kill");
    let spill = tempfile::tempdir().unwrap();
    let start = first.to_string();
    let mut killed = produce(
        &server,
        &topic,
        spill.path(),
        &["--jetstream-start", &start],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    killed.start_kill().unwrap(); // SIGKILL: no clean stop, the state is up to a second old
    killed.wait().await.unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spill.path().join("state.json")).unwrap()).unwrap();
    assert!(state["jetstream"]["cursor_us"].as_i64().unwrap() > first);

    let resumed = produce(&server, &topic, spill.path(), &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + LIMIT;
    let reads = loop {
        let reads = read_topic(&topic, sent.len(), Duration::from_secs(5)).await;
        let dids: BTreeSet<String> = reads
            .iter()
            .map(|r| json(&r.value)["did"].as_str().unwrap().to_string())
            .collect();
        if dids.len() == sent.len() || std::time::Instant::now() > deadline {
            break reads;
        }
    };
    let pid = resumed.id().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = resumed.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reads {
        *count
            .entry(json(&r.value)["did"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(count.len(), sent.len(), "every event is in the topic");
    let repeated = reads.len() - sent.len();
    // At 3,000 events/s, the last second before the kill (the state's age) and what was in
    // flight: never the whole first run again.
    assert!(repeated <= 4500, "{repeated} events twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_name_the_flag() {
    let server = Standin::start(Vec::new()).await;
    let spill = tempfile::tempdir().unwrap();
    for (extra, says) in [
        (&["--track", "rust"][..], "--track is for --source twitter"),
        (&["--jetstream-url", "ftp://x/y"][..], "--jetstream-url"),
        (&["--collections", "app..post"][..], "--collections"),
        (&["--dids", "nobody"][..], "--dids"),
        (&["--jetstream-start", "yesterday"][..], "--jetstream-start"),
        (&["--max-posts-per-day", "10"][..], "spend guard"),
    ] {
        let r = run(produce(&server, "unused", spill.path(), extra), LIMIT).await;
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{extra:?}: {}", r.stderr);
    }
    // Jetstream refusing the subscription (every instance): exit 2, its reason, and advice.
    server.faults().http = vec![(400, "invalid collection: app.bsky.nope".into()); 2];
    let r = run(
        produce(&server, &topic("js-refused"), spill.path(), &[]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("invalid collection: app.bsky.nope"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("check --collections"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spend_guard_stops_the_twitter_stream_and_counts_across_runs() {
    let sent = v2_tweets(200, 1_640_000_000_000_000_000, "guard");
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let spill = tempfile::tempdir().unwrap();
    let topic = topic("spend-guard");
    let brokers = brokers();
    let url = server.v2_url();
    let cmd = || {
        tweetpipe(&[
            "produce",
            "--api",
            "v2",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--stream-url",
            &url,
            "--spill-dir",
            spill.path().to_str().unwrap(),
            "--max-posts-per-day",
            "50",
            "--stats-interval",
            "0s",
        ])
    };
    let r = run(cmd(), LIMIT).await;
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(
        r.summary("tweets"),
        50,
        "the 50th post is the last one read"
    );
    assert_eq!(r.summary("posts_today"), 50);
    assert_eq!(r.summary.as_ref().unwrap().0["spend_limit_reached"], "day");
    assert!(r.stderr.contains("spend guard"), "{}", r.stderr);
    assert_eq!(read_topic(&topic, 50, LIMIT).await.len(), 50);
    // The next run knows today's count: it does not even connect.
    let r = run(cmd(), LIMIT).await;
    assert_eq!(r.code, 0, "stderr:\n{}", r.stderr);
    assert_eq!(r.summary("accepted"), 0);
    assert_eq!(server.seen().len(), 1, "no second connection");
    assert!(r.stderr.contains("already reached"), "{}", r.stderr);
}
