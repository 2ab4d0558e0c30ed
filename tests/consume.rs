//! `tweetpipe consume` end to end: records produced into a real broker, consumed by the real
//! binary, and the output directory checked line by line, including across SIGKILLs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use support::*;

const LIMIT: Duration = Duration::from_secs(180);

/// Produces `lines` (one record each, as files are) into a fresh topic through tweetpipe.
async fn produce_lines(name: &str, lines: &[Vec<u8>], partitions: u32) -> String {
    let topic = topic(name);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.jsonl");
    let mut data = Vec::new();
    for l in lines {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    std::fs::write(&file, data).unwrap();
    let brokers = brokers();
    let parts = partitions.to_string();
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--from-file",
            file.to_str().unwrap(),
            "--partitions",
            &parts,
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "produce failed: {}", r.stderr);
    topic
}

fn compact(records: &[Vec<u8>]) -> Vec<Vec<u8>> {
    records
        .iter()
        .map(|r| {
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(r).unwrap()).unwrap()
        })
        .collect()
}

async fn consume(topic: &str, out: &Path, extra: &[&str]) -> Run {
    let brokers = brokers();
    let mut args = vec![
        "consume",
        "--brokers",
        &brokers,
        "--topic",
        topic,
        "--output",
        out.to_str().unwrap(),
    ];
    if !extra.contains(&"--stats-interval") {
        args.extend_from_slice(&["--stats-interval", "0s"]);
    }
    if !extra.contains(&"--fetch-wait") {
        args.extend_from_slice(&["--fetch-wait", "100ms"]);
    }
    if !extra.contains(&"--group") {
        args.extend_from_slice(&["--group", topic]);
    }
    args.extend_from_slice(extra);
    run(tweetpipe(&args), LIMIT).await
}

/// Every line of every file of `stream` in `dir` (finished and in-progress).
fn lines_of(dir: &Path, stream: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{stream}-")) {
            continue;
        }
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            out.push(
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: bad line {e}: {l}")),
            );
        }
    }
    out
}

fn in_progress(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".inprogress"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tweets_deletes_and_garbage_go_to_their_files_enriched_and_committed() {
    let mut input = compact(&tweets(300, 1_000));
    input.insert(10, br#"{"delete":{"status":{"id":5,"id_str":"5","user_id":1,"user_id_str":"1"},"timestamp_ms":"1"}}"#.to_vec());
    input.insert(20, b"this line is not json".to_vec());
    input.insert(30, br#"{"neither":"tweet nor control"}"#.to_vec());
    let topic = produce_lines("cons", &input, 2).await;
    let out = tempfile::tempdir().unwrap();
    let r = consume(&topic, out.path(), &["--idle-exit", "2s"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        in_progress(out.path()).is_empty(),
        "a clean stop finalizes every file"
    );

    let tweets = lines_of(out.path(), "tweets");
    assert_eq!(tweets.len(), 300);
    let ids: BTreeSet<String> = tweets
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 300, "each tweet once");
    for t in &tweets {
        for field in [
            "id",
            "created_at",
            "user",
            "text",
            "lang",
            "lang_source",
            "sentiment",
            "hashtags",
            "mentions",
            "urls",
            "is_retweet",
            "kafka",
        ] {
            assert!(t.get(field).is_some(), "missing {field} in {t}");
        }
        assert!(
            t["created_at"]
                .as_str()
                .unwrap()
                .starts_with("2018-10-10T20:19:24"),
            "{}",
            t["created_at"]
        );
        for s in ["neg", "neu", "pos", "compound"] {
            assert!(
                t["sentiment"][s].is_f64() || t["sentiment"][s].is_i64(),
                "{t}"
            );
        }
        assert!(t["kafka"]["partition"].is_i64() && t["kafka"]["offset"].is_i64());
    }
    let deletes = lines_of(out.path(), "deletes");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["kind"], "delete");
    let errors = lines_of(out.path(), "errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &errors {
        assert!(e["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(e["kafka"]["offset"].is_i64());
    }

    // The group's position is in Kafka, where librdkafka sees it: the end of each partition.
    let brokers = brokers();
    let (code, lines, err) = rdkafka(&[
        "committed",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &topic,
        "--partitions",
        "2",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let committed: i64 = lines.iter().map(|l| l["offset"].as_i64().unwrap()).sum();
    assert_eq!(
        committed,
        input.len() as i64,
        "committed offsets sum to the records consumed: {lines:?}"
    );

    // Run again: nothing new, nothing written twice.
    let r = consume(&topic, out.path(), &["--idle-exit", "1s"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines_of(out.path(), "tweets").len(), 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_records_stops_after_exactly_n_and_the_next_run_continues() {
    let input = compact(&tweets(500, 50_000));
    let topic = produce_lines("maxrec", &input, 3).await;
    let out = tempfile::tempdir().unwrap();
    let r = consume(&topic, out.path(), &["--max-records", "120"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines_of(out.path(), "tweets").len(), 120);
    let r = consume(&topic, out.path(), &["--idle-exit", "1500ms"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ids: Vec<String> = lines_of(out.path(), "tweets")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 500);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 500);
}

/// The output's crash safety, for one process: `--assign all`, because a SIGKILLed member of
/// a group stays in it until its session times out, and a member restarted at once waits for
/// that (tests/group.rs kills and restarts members of a group).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_keeps_the_output_exactly_once() {
    let n = 20_000;
    let input = compact(&tweets(n, 7_000_000));
    let topic = produce_lines("kill", &input, 2).await;
    let out = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let mut rand = kill_schedule();
    let mut kills = 0;
    // Each run's log, shown when the output is wrong.
    let logs = tempfile::tempdir().unwrap();
    for run in 0..8 {
        let mut child = tweetpipe(&[
            "consume",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--output",
            out.path().to_str().unwrap(),
            "--group",
            &topic,
            "--assign",
            "all",
            "--fetch-wait",
            "100ms",
            "--stats-interval",
            "0s",
            "--commit-interval",
            "20ms",
            "--rotate-bytes",
            "200000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(logs.path().join(format!("run-{run}.log"))).unwrap())
        .spawn()
        .unwrap();
        tokio::time::sleep(Duration::from_millis(150 + rand() % 600)).await;
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            kills += 1;
        }
    }
    assert!(
        kills >= 6,
        "the consumer must actually be killed mid-run ({kills} kills)"
    );
    let r = consume(
        &topic,
        out.path(),
        &["--assign", "all", "--idle-exit", "2s"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tweets = lines_of(out.path(), "tweets");
    let mut count: BTreeMap<String, u32> = BTreeMap::new();
    for t in &tweets {
        *count
            .entry(t["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, c)| **c > 1).take(5).collect();
    if !dups.is_empty() {
        for run in 0..8 {
            let log = std::fs::read_to_string(logs.path().join(format!("run-{run}.log")))
                .unwrap_or_default();
            eprintln!("--- run {run} (killed) ---\n{log}");
        }
        eprintln!("--- the last run ---\n{}", r.stderr);
        let mut names: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names.into_iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(&p).unwrap();
            for l in text.lines().filter(|l| {
                dups.iter()
                    .any(|(id, _)| l.contains(&format!("\"id\":\"{id}\"")))
            }) {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                eprintln!(
                    "{} {} {}",
                    p.file_name().unwrap().to_string_lossy(),
                    v["id"],
                    v["kafka"]
                );
            }
        }
    }
    assert!(dups.is_empty(), "duplicated after kills: {dups:?}");
    assert_eq!(count.len(), n, "every produced tweet is in the output");
    assert_eq!(tweets.len(), n);
    assert!(in_progress(out.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn from_latest_and_from_a_time() {
    let input = compact(&tweets(50, 90_000));
    let topic = produce_lines("from", &input, 2).await;
    let out = tempfile::tempdir().unwrap();
    let r = consume(
        &topic,
        out.path(),
        &["--from", "latest", "--idle-exit", "1s"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        lines_of(out.path(), "tweets").len(),
        0,
        "latest: nothing old"
    );
    let out2 = tempfile::tempdir().unwrap();
    let r = consume(
        &topic,
        out2.path(),
        &[
            "--from",
            "2000-01-01T00:00:00Z",
            "--group",
            "other",
            "--idle-exit",
            "1s",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        lines_of(out2.path(), "tweets").len(),
        50,
        "a time before everything: all of it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_usage_and_runtime_errors() {
    let out = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let r = run(
        tweetpipe(&[
            "consume",
            "--brokers",
            &brokers,
            "--from",
            "yesterday",
            "--output",
            out.path().to_str().unwrap(),
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
    let missing = topic("missing");
    let r = run(
        tweetpipe(&[
            "consume",
            "--brokers",
            &brokers,
            "--topic",
            &missing,
            "--output",
            out.path().to_str().unwrap(),
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&missing) && r.stderr.contains("topic create"),
        "{}",
        r.stderr
    );
}

/// Batches compressed by another client: gzip and snappy are read; lz4 and zstd (C codecs we
/// do not link) stops the consumer with an error naming the codec, never a silent skip.
#[tokio::test(flavor = "multi_thread")]
async fn batches_compressed_by_librdkafka() {
    let brokers = brokers();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.jsonl");
    write_lines(&file, &tweets(200, 300_000));
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = topic(&format!("codec-{codec}"));
        create_topic(&topic, 2).await;
        let (code, lines, err) = rdkafka(&[
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--file",
            file.to_str().unwrap(),
            "--compression",
            codec,
        ])
        .await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(lines.len(), 200);
        let out = tempfile::tempdir().unwrap();
        let r = consume(&topic, out.path(), &["--idle-exit", "1500ms"]).await;
        if codec == "lz4" || codec == "zstd" {
            assert_eq!(r.code, 1, "{}", r.stderr);
            assert!(
                r.stderr.contains(&format!("{codec}-compressed"))
                    && r.stderr.contains("gzip or snappy"),
                "{}",
                r.stderr
            );
            assert_eq!(lines_of(out.path(), "tweets").len(), 0);
        } else {
            assert_eq!(r.code, 0, "{codec}: {}", r.stderr);
            assert_eq!(lines_of(out.path(), "tweets").len(), 200, "{codec}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn output_to_stdout() {
    let input = compact(&tweets(30, 400_000));
    let topic = produce_lines("stdout", &input, 1).await;
    let brokers = brokers();
    let out = tweetpipe(&[
        "consume",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &topic,
        "--output",
        "-",
        "--idle-exit",
        "1s",
        "--fetch-wait",
        "100ms",
    ])
    .stderr(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .output()
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert!(lines.iter().all(|l| l["sentiment"]["compound"].is_number()));
}

/// Enrichment runs beside the fetches, in each partition's forwarder: with one worker thread
/// one partition at a time, with several in parallel. Either way every partition's lines come
/// out in offset order, each record once, across several fetches per partition (750 tweets of
/// 4 KB each, 2 MiB fetches).
#[tokio::test(flavor = "multi_thread")]
async fn one_worker_or_many_each_partition_is_written_in_offset_order() {
    let filler = "x".repeat(4000);
    let input: Vec<Vec<u8>> = tweets(1500, 70_000)
        .iter()
        .map(|t| {
            let mut v: serde_json::Value = serde_json::from_slice(t).unwrap();
            v["filler"] = serde_json::Value::String(filler.clone());
            serde_json::to_vec(&v).unwrap()
        })
        .collect();
    let topic = produce_lines("order", &input, 2).await;
    let want: BTreeSet<String> = (70_000..71_500).map(|i: u64| i.to_string()).collect();
    for workers in ["1", "4"] {
        let out = tempfile::tempdir().unwrap();
        let group = format!("{topic}-{workers}");
        let mut cmd = tweetpipe(&[
            "consume",
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--group",
            &group,
            "--output",
            out.path().to_str().unwrap(),
            "--max-records",
            "1500",
            // A broken order skips records, and the run would wait for them until LIMIT.
            "--idle-exit",
            "5s",
            "--stats-interval",
            "0s",
        ]);
        cmd.env("TOKIO_WORKER_THREADS", workers);
        let r = run(cmd, LIMIT).await;
        assert_eq!(r.code, 0, "{workers} workers: {}", r.stderr);
        let lines = lines_of(out.path(), "tweets");
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for l in &lines {
            let (p, o) = (
                l["kafka"]["partition"].as_i64().unwrap(),
                l["kafka"]["offset"].as_i64().unwrap(),
            );
            if let Some(prev) = last.insert(p, o) {
                assert_eq!(
                    o,
                    prev + 1,
                    "{workers} workers: partition {p} went from offset {prev} to {o}"
                );
            }
            assert!(
                ids.insert(l["id"].as_str().unwrap().to_string()),
                "{workers} workers: {} twice",
                l["id"]
            );
        }
        assert_eq!(ids, want, "{workers} workers");
        assert_eq!(last.len(), 2, "{workers} workers: both partitions written");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_is_read_without_first_waiting_out_the_fetch_wait() {
    // Kafka answers a fetch at once when records are there; tansu waits a good part of the max
    // wait anyway. A consumer starting on a backlog must not lose that time: its first fetch
    // asks for what is there now. With a 60 s --fetch-wait, waiting even once is obvious.
    let input = compact(&tweets(50, 60_000));
    let topic = produce_lines("backlog", &input, 2).await;
    let out = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let r = consume(
        &topic,
        out.path(),
        &["--fetch-wait", "60s", "--max-records", "50"],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines_of(out.path(), "tweets").len(), 50);
    assert!(
        took < Duration::from_secs(20),
        "reading a 50-record backlog took {took:?}: a fetch waited out --fetch-wait"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stats_line_shows_the_language_mix_mean_sentiment_and_top_hashtags() {
    // 20 tweets: 12 "en", 6 "es", 2 "fr"; hashtags differing only in case count as one.
    let tags_of = |i: usize| -> Vec<&str> {
        match i {
            0..=5 => vec!["WorldCup"],
            6..=8 => vec!["worldcup", "Final"],
            12..=13 => vec!["Olimpiadas"],
            _ => vec![],
        }
    };
    let input: Vec<Vec<u8>> = tweets(20, 7_000)
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let mut t: serde_json::Value = serde_json::from_slice(raw).unwrap();
            t["lang"] = match i {
                0..=11 => "en",
                12..=17 => "es",
                _ => "fr",
            }
            .into();
            t["text"] = "good".into(); // VADER compound 0.4404 for each
            t["entities"]["hashtags"] = tags_of(i)
                .iter()
                .map(|h| serde_json::json!({"text": h, "indices": [0, 1]}))
                .collect();
            serde_json::to_vec(&t).unwrap()
        })
        .collect();
    let topic = produce_lines("stats", &input, 2).await;
    let out = tempfile::tempdir().unwrap();
    let r = consume(
        &topic,
        out.path(),
        &[
            "--stats-interval",
            "1s",
            "--idle-exit",
            "2500ms",
            "--log-format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines_of(out.path(), "tweets").len(), 20);
    // The stats lines, as the JSON log has them (numbers as numbers).
    let line = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "stats" && l["written"] == 20 && l["langs"] != "")
        .unwrap_or_else(|| panic!("no stats line with the 20 tweets in:\n{}", r.stderr));
    assert_eq!(line["langs"], "en 60%, es 30%, fr 10%", "{line}");
    assert_eq!(line["sentiment_mean"], 0.44, "{line}");
    assert_eq!(
        line["top_hashtags"], "#worldcup 9, #final 3, #olimpiadas 2",
        "{line}"
    );
    assert_eq!(line["lag"], "0:0 1:0", "{line}");
    assert_eq!(line["errors"], 0, "{line}");
}
