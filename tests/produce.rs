//! `tweetpipe produce` end to end: the real binary, a real broker (tansu), and the local
//! Twitter stand-in that checks OAuth signatures. Each test asserts on what reached the topic.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use support::twitter::{Action, Conn, Creds, StandIn};
use support::*;
use tweetpipe::testing::partition_for_key;

const LIMIT: Duration = Duration::from_secs(120);

fn id_of(value: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(value).expect("record is JSON");
    v["id_str"].as_str().expect("id_str").to_string()
}

/// Runs produce against `server` into a fresh topic until `max` records are acknowledged.
async fn produce_stream(server: &StandIn, name: &str, max: usize, extra: &[&str]) -> (String, Run) {
    let topic = topic(name);
    let brokers = brokers();
    let max = max.to_string();
    let url = server.url();
    let mut args = vec![
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--stream-url",
        &url,
        "--track",
        "worldcup,olympics",
        "--max-records",
        &max,
        "--stats-interval",
        "0s",
    ];
    args.extend_from_slice(extra);
    let run = run(tweetpipe(&args), LIMIT).await;
    (topic, run)
}

fn assert_exact(reads: &[Read], sent: &[Vec<u8>], partitions: i32) {
    assert_eq!(reads.len(), sent.len(), "record count in the topic");
    let by_id: BTreeMap<String, &Vec<u8>> = sent.iter().map(|t| (id_of(t), t)).collect();
    let mut seen = BTreeSet::new();
    for r in reads {
        let id = id_of(&r.value);
        assert!(seen.insert(id.clone()), "tweet {id} appears twice");
        assert_eq!(&r.value, by_id[&id], "value of {id} is not byte-identical");
        assert_eq!(r.key.as_deref(), Some(id.as_bytes()), "key of {id}");
        assert_eq!(
            r.partition,
            partition_for_key(id.as_bytes(), partitions),
            "partition of {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_stream_reaches_the_topic_byte_identical_and_librdkafka_reads_it() {
    let sent = tweets(3000, 1_300_000_000_000_000_000);
    let mut actions = vec![Action::KeepAlive];
    for (i, t) in sent.iter().enumerate() {
        actions.push(Action::Record(t.clone()));
        if i % 100 == 0 {
            actions.push(Action::KeepAlive);
        }
    }
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let (topic, run) = produce_stream(&server, "e2e", sent.len(), &[]).await;
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(run.summary("delivered"), 3000, "{}", run.stderr);

    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one connection, no reconnects");
    assert!(seen[0].signature_ok);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].param("track"), Some("worldcup,olympics"));
    assert_eq!(seen[0].param("stall_warnings"), Some("true"));

    let reads = read_topic(&topic, sent.len(), LIMIT).await;
    assert_exact(&reads, &sent, 2);

    // The same topic through librdkafka: same records, same partitions and offsets.
    let brokers = brokers();
    let (code, lines, err) = rdkafka(&[
        "consume",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--count",
        "3000",
        "--timeout",
        "60",
    ])
    .await;
    assert_eq!(code, 0, "rdkafka_client consume failed: {err}");
    assert_eq!(lines.len(), 3000);
    let ours: BTreeSet<(i64, i64, String)> = reads
        .iter()
        .map(|r| (r.partition as i64, r.offset, hex(r.key.as_deref().unwrap())))
        .collect();
    let theirs: BTreeSet<(i64, i64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["partition"].as_i64().unwrap(),
                l["offset"].as_i64().unwrap(),
                l["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ours, theirs,
        "librdkafka sees the same keys at the same partitions and offsets"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn librdkafka_keyed_records_land_where_our_partitioner_says() {
    // librdkafka's murmur2_random partitioner is the Java client's default: if our murmur2
    // disagreed with it, keyed records from the two would land on different partitions.
    let topic = topic("rdk");
    create_topic(&topic, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.jsonl");
    let sent = tweets(500, 42);
    write_lines(&file, &sent);
    let brokers = brokers();
    let (code, lines, err) = rdkafka(&[
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--file",
        file.to_str().unwrap(),
        "--partitioner",
        "murmur2_random",
    ])
    .await;
    assert_eq!(code, 0, "rdkafka_client produce failed: {err}");
    assert_eq!(lines.len(), 500);
    // Read back with our Kafka client: everything librdkafka wrote is there, byte for byte.
    let reads = read_topic(&topic, 500, LIMIT).await;
    assert_eq!(reads.len(), 500);
    for r in &reads {
        let key = r.key.as_deref().expect("keyed");
        assert_eq!(
            r.partition,
            partition_for_key(key, 3),
            "librdkafka put key {:?} elsewhere",
            String::from_utf8_lossy(key)
        );
        assert_eq!(id_of(&r.value).as_bytes(), key);
    }
    let values: BTreeSet<&[u8]> = reads.iter().map(|r| r.value.as_slice()).collect();
    let file_lines = std::fs::read(&file).unwrap();
    let expected: BTreeSet<&[u8]> = file_lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(values, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_420_then_success_waits_the_configured_time() {
    let sent = tweets(50, 5000);
    let server = StandIn::start(
        vec![
            Conn::status(420),
            Conn::status(420),
            Conn::ok(sent.iter().cloned().map(Action::Record).collect()),
        ],
        Creds::test(),
    )
    .await;
    let (topic, run) = produce_stream(
        &server,
        "r420",
        50,
        &["--backoff-rate-limit-initial", "400ms"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let gap1 = seen[1].at - seen[0].at;
    let gap2 = seen[2].at - seen[1].at;
    // Exponential: 400 ms, then 800 ms.
    assert!(
        gap1 >= Duration::from_millis(400) && gap1 < Duration::from_millis(750),
        "first wait {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(800) && gap2 < Duration::from_millis(1300),
        "second wait {gap2:?}"
    );
    assert_exact(&read_topic(&topic, 50, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_dropped_mid_chunk_reconnects_and_loses_nothing_complete() {
    let sent = tweets(200, 9000);
    let first: Vec<Action> = sent[..120]
        .iter()
        .cloned()
        .map(Action::Record)
        .chain([Action::DropMidChunk])
        .collect();
    let second: Vec<Action> = sent[120..].iter().cloned().map(Action::Record).collect();
    let server = StandIn::start(vec![Conn::ok(first), Conn::ok(second)], Creds::test()).await;
    let (topic, run) =
        produce_stream(&server, "drop", 200, &["--backoff-network-step", "300ms"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(300) && gap < Duration::from_millis(900),
        "linear back-off wait {gap:?}"
    );
    // The partial record cut off by the drop is not a record; everything complete arrived.
    assert_exact(&read_topic(&topic, 200, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_is_abandoned_after_the_stall_timeout() {
    let sent = tweets(40, 12000);
    let first: Vec<Action> = sent[..20]
        .iter()
        .cloned()
        .map(Action::Record)
        .chain([Action::Stall])
        .collect();
    let second: Vec<Action> = sent[20..].iter().cloned().map(Action::Record).collect();
    let server = StandIn::start(vec![Conn::ok(first), Conn::ok(second)], Creds::test()).await;
    let (topic, run) = produce_stream(
        &server,
        "stall",
        40,
        &[
            "--stall-timeout",
            "700ms",
            "--backoff-network-step",
            "100ms",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(800),
        "reconnected after {gap:?}, before stall timeout + back-off"
    );
    assert!(run.stderr.contains("stall"), "{}", run.stderr);
    assert_exact(&read_topic(&topic, 40, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalives_reset_the_stall_timer() {
    let sent = tweets(10, 15000);
    let mut actions: Vec<Action> = sent[..5].iter().cloned().map(Action::Record).collect();
    for _ in 0..6 {
        actions.push(Action::Sleep(Duration::from_millis(250)));
        actions.push(Action::KeepAlive);
    }
    actions.extend(sent[5..].iter().cloned().map(Action::Record));
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let (_topic, run) = produce_stream(&server, "ka", 10, &["--stall-timeout", "600ms"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        server.seen().len(),
        1,
        "1.5 s of keep-alives every 250 ms must not count as a stall of 600 ms"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_exits_1_naming_the_credentials_without_leaking_them() {
    let server = StandIn::start(vec![Conn::status(401)], Creds::test()).await;
    let (_topic, run) = produce_stream(&server, "401", 10, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("TWITTER_CONSUMER_KEY"),
        "{}",
        run.stderr
    );
    assert_eq!(server.seen().len(), 1, "a 401 is not retried");
    let c = Creds::test();
    for secret in [&c.consumer_secret, &c.token_secret] {
        assert!(
            !run.stderr.contains(secret.as_str()),
            "a secret reached stderr"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_rejected_by_the_signature_check() {
    // The stand-in answers 401 itself when the signature does not verify.
    let server = StandIn::start(
        vec![Conn::ok(vec![Action::Record(tweets(1, 1)[0].clone())])],
        Creds::test(),
    )
    .await;
    let topic = topic("badsig");
    let brokers = brokers();
    let url = server.url();
    let mut cmd = tweetpipe(&[
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--stream-url",
        &url,
        "--track",
        "x",
    ]);
    cmd.env("TWITTER_CONSUMER_SECRET", "not-the-right-secret");
    let run = run(cmd, LIMIT).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].signature_ok);
    assert!(!run.stderr.contains("not-the-right-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_stream_is_decoded_incrementally() {
    let sent = tweets(500, 20000);
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.insert(250, Action::KeepAlive);
    let server = StandIn::start(vec![Conn::ok(actions).gzip()], Creds::test()).await;
    let (topic, run) = produce_stream(&server, "gzip", 500, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(server.seen()[0].accept_gzip);
    assert_exact(&read_topic(&topic, 500, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_gzip_stream_reconnects() {
    let sent = tweets(60, 22000);
    let first: Vec<Action> = sent[..30]
        .iter()
        .cloned()
        .map(Action::Record)
        .chain([Action::TruncateGzip])
        .collect();
    let second: Vec<Action> = sent[30..].iter().cloned().map(Action::Record).collect();
    let server = StandIn::start(
        vec![Conn::ok(first).gzip(), Conn::ok(second).gzip()],
        Creds::test(),
    )
    .await;
    let (topic, run) =
        produce_stream(&server, "gztrunc", 60, &["--backoff-network-step", "50ms"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.seen().len(), 2);
    assert!(run.stderr.contains("gzip"), "{}", run.stderr);
    let reads = read_topic(&topic, 60, LIMIT).await;
    // Records before the truncation point arrive once each; none is duplicated or mangled.
    assert_exact(&reads, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn delimited_length_framing() {
    let sent = tweets(300, 30000);
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.insert(100, Action::KeepAlive);
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let (topic, run) = produce_stream(&server, "len", 300, &["--delimited-length"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.seen()[0].param("delimited"), Some("length"));
    assert_exact(&read_topic(&topic, 300, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_oversized_and_control_messages() {
    let sent = tweets(20, 40000);
    let delete = br#"{"delete":{"status":{"id":40001,"id_str":"40001","user_id":3,"user_id_str":"3"},"timestamp_ms":"1"}}"#.to_vec();
    let mut actions: Vec<Action> = Vec::new();
    actions.extend(sent[..10].iter().cloned().map(Action::Record));
    actions.push(Action::Record(b"this is not json {".to_vec()));
    actions.push(Action::Record(
        format!("{{\"huge\":\"{}\"}}", "x".repeat(200_000)).into_bytes(),
    ));
    actions.push(Action::Record(
        br#"{"limit":{"track":77,"timestamp_ms":"1"}}"#.to_vec(),
    ));
    actions.push(Action::Record(
        br#"{"warning":{"code":"FALLING_BEHIND","message":"behind","percent_full":60}}"#.to_vec(),
    ));
    actions.push(Action::Record(delete.clone()));
    actions.extend(sent[10..].iter().cloned().map(Action::Record));
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    // 20 tweets + the garbage line + the delete are forwarded.
    let (topic, run) =
        produce_stream(&server, "mixed", 22, &["--max-record-bytes", "100000"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary("oversized_skipped"), 1, "{}", run.stderr);
    assert_eq!(run.summary("limit_notices"), 1, "{}", run.stderr);
    assert_eq!(run.summary("warnings"), 1, "{}", run.stderr);
    let reads = read_topic(&topic, 22, LIMIT).await;
    assert_eq!(reads.len(), 22);
    let unkeyed: BTreeSet<Vec<u8>> = reads
        .iter()
        .filter(|r| r.key.is_none())
        .map(|r| r.value.clone())
        .collect();
    assert_eq!(
        unkeyed,
        BTreeSet::from([b"this is not json {".to_vec(), delete])
    );
    let tweets_read: Vec<Read> = reads.into_iter().filter(|r| r.key.is_some()).collect();
    assert_exact(&tweets_read, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_revoked_disconnect_ends_the_run_after_delivering_what_came_before() {
    let sent = tweets(5, 50000);
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.push(Action::Record(
        br#"{"disconnect":{"code":6,"stream_name":"x","reason":"token revoked"}}"#.to_vec(),
    ));
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let (topic, run) = produce_stream(&server, "revoked", 1000, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("token revoked"), "{}", run.stderr);
    assert_eq!(server.seen().len(), 1);
    assert_exact(&read_topic(&topic, 5, LIMIT).await, &sent, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_503_backs_off_exponentially_from_the_http_base() {
    let sent = tweets(10, 60000);
    let server = StandIn::start(
        vec![
            Conn::status(503),
            Conn::status(503),
            Conn::ok(sent.iter().cloned().map(Action::Record).collect()),
        ],
        Creds::test(),
    )
    .await;
    let (_topic, run) =
        produce_stream(&server, "503", 10, &["--backoff-http-initial", "200ms"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = server.seen();
    let (g1, g2) = (seen[1].at - seen[0].at, seen[2].at - seen[1].at);
    assert!(
        g1 >= Duration::from_millis(200) && g1 < Duration::from_millis(550),
        "{g1:?}"
    );
    assert!(
        g2 >= Duration::from_millis(400) && g2 < Duration::from_millis(800),
        "{g2:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_reading_and_delivers_everything_accepted() {
    let sent = tweets(100, 70000);
    let mut actions: Vec<Action> = sent.iter().cloned().map(Action::Record).collect();
    actions.push(Action::Stall);
    let server = StandIn::start(vec![Conn::ok(actions)], Creds::test()).await;
    let topic = topic("sigterm");
    let brokers = brokers();
    let url = server.url();
    let mut cmd = tweetpipe(&[
        "produce",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--stream-url",
        &url,
        "--track",
        "x",
        "--stats-interval",
        "0s",
    ]);
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until all 100 are in the topic, then ask it to stop.
    let reads = read_topic_when_created(&topic, 100).await;
    assert_eq!(reads.len(), 100);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = summary_of(&cmd).expect("a clean stop writes the summary");
    assert_eq!(summary.get("delivered"), 100, "{stderr}");
    assert_eq!(summary.get("failed"), 0, "{stderr}");
}

async fn read_topic_when_created(topic: &str, n: usize) -> Vec<Read> {
    for _ in 0..200 {
        let client = rskafka::client::ClientBuilder::new(vec![brokers()])
            .build()
            .await
            .unwrap();
        if client
            .list_topics()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == topic)
        {
            return read_topic(topic, n, LIMIT).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("topic {topic} never appeared");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_file_gz_with_max_records() {
    use std::io::Write;
    let sent = tweets(1000, 80000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    for t in &sent {
        let v: serde_json::Value = serde_json::from_slice(t).unwrap();
        gz.write_all(&serde_json::to_vec(&v).unwrap()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    gz.finish().unwrap();
    let topic = topic("file");
    let brokers = brokers();
    let run = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--from-file",
            path.to_str().unwrap(),
            "--max-records",
            "700",
            "--partitions",
            "3",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reads = read_topic(&topic, 700, LIMIT).await;
    assert_eq!(reads.len(), 700, "exactly --max-records records");
    for r in &reads {
        let id = id_of(&r.value);
        assert_eq!(r.partition, partition_for_key(id.as_bytes(), 3));
    }
    let ids: BTreeSet<u64> = reads
        .iter()
        .map(|r| id_of(&r.value).parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        (80000..80700).collect(),
        "the first 700 lines of the file"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_and_name_the_fix() {
    let brokers = brokers();
    let mut cmd = tweetpipe(&["produce", "--brokers", &brokers, "--track", "x"]);
    cmd.env_remove("TWITTER_ACCESS_TOKEN_SECRET");
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("TWITTER_ACCESS_TOKEN_SECRET") && r.stderr.contains("--env-file"),
        "{}",
        r.stderr
    );
    let c = Creds::test();
    assert!(!r.stderr.contains(&c.consumer_secret));

    let r = run(tweetpipe(&["produce", "--brokers", &brokers]), LIMIT).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--track"), "{}", r.stderr);

    let r = run(
        tweetpipe(&["produce", "--brokers", "no-port-here", "--track", "x"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("HOST:PORT"), "{}", r.stderr);

    let r = run(
        tweetpipe(&["produce", "--stall-timeout", "ninety", "--track", "x"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("90s"), "{}", r.stderr);

    let r = run(
        tweetpipe(&["produce", "--from-file", "/nonexistent/tweets.jsonl"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/tweets.jsonl"),
        "{}",
        r.stderr
    );

    let r = run(
        tweetpipe(&["produce", "--stream-url", "ftp://x/y", "--track", "x"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("https://"), "{}", r.stderr);

    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("creds.env");
    std::fs::write(&env, "TWITTER_CONSUMER_KEY=a\nTWITTER_CONSUMER_SECRET=b\n").unwrap();
    let mut cmd = tweetpipe(&[
        "produce",
        "--track",
        "x",
        "--env-file",
        env.to_str().unwrap(),
    ]);
    for v in [
        "TWITTER_CONSUMER_KEY",
        "TWITTER_CONSUMER_SECRET",
        "TWITTER_ACCESS_TOKEN",
        "TWITTER_ACCESS_TOKEN_SECRET",
    ] {
        cmd.env_remove(v);
    }
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("TWITTER_ACCESS_TOKEN,") && !r.stderr.contains("TWITTER_CONSUMER_KEY"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_brokers_fail_with_exit_1_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    write_lines(&path, &tweets(3, 1));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let brokers = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &brokers,
            "--from-file",
            path.to_str().unwrap(),
            "--kafka-timeout",
            "2s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach Kafka") && r.stderr.contains(&brokers),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
