//! `tweetpipe consume --output postgres://…` end to end, on a real broker and a real
//! PostgreSQL server: the rows equal the JSON-lines output field by field; SIGKILLs at random
//! points (and between the COPY and the COMMIT) leave each tweet stored once with the stored
//! offsets at the end; duplicates in the topic give one row; a delete removes its tweet; the
//! database stopped for a while loses nothing; a group of two splits the partitions; the
//! password shows nowhere.
//!
//! The server is `TWEETPIPE_TEST_PG` (scripts/test starts one with scripts/pg); without it
//! every test here says so and passes without running. The outage test starts a cluster of
//! its own (scripts/pg), since it stops and starts it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use support::group::Fleet;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

const LIMIT: Duration = Duration::from_secs(240);

/// The test server's URL (with its password), or `None`: the test is skipped, saying why.
fn server(test: &str) -> Option<String> {
    match std::env::var("TWEETPIPE_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "SKIPPED {test}: TWEETPIPE_TEST_PG is unset (scripts/test starts a PostgreSQL \
                 server; or `scripts/pg start` and export what it prints)"
            );
            None
        }
    }
}

/// The URL without its password, and the password (given to tweetpipe through PGPASSWORD).
fn split_password(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, _) = rest
        .split_once('@')
        .expect("the test URL has user:password@");
    let (user, password) = userinfo
        .split_once(':')
        .expect("the test URL has a password");
    (
        url.replacen(&format!("{user}:{password}@"), &format!("{user}@"), 1),
        password.to_string(),
    )
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    client
}

/// A schema name no other test (or earlier run) uses.
fn schema(name: &str) -> String {
    topic(name).replace('-', "_")
}

/// Writes `records` (partition, value) into a new topic as they are: no producer-side
/// de-duplication, so a test can put the same tweet at two offsets.
async fn produce_raw(name: &str, partitions: i32, records: &[(i32, Vec<u8>)]) -> String {
    let topic = topic(name);
    create_topic(&topic, partitions).await;
    append_raw(&topic, records).await;
    topic
}

/// Appends `records` (partition, value) to an existing topic.
async fn append_raw(topic: &str, records: &[(i32, Vec<u8>)]) {
    let client = ClientBuilder::new(vec![brokers()]).build().await.unwrap();
    let partitions: BTreeSet<i32> = records.iter().map(|r| r.0).collect();
    for p in partitions {
        let pc = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        let values: Vec<&Vec<u8>> = records.iter().filter(|r| r.0 == p).map(|r| &r.1).collect();
        for chunk in values.chunks(500) {
            let batch = chunk
                .iter()
                .map(|v| Record {
                    key: None,
                    value: Some((*v).clone()),
                    headers: BTreeMap::new(),
                    timestamp: chrono::Utc::now(),
                })
                .collect();
            pc.produce(batch, Compression::NoCompression).await.unwrap();
        }
    }
}

/// Realistic v1.1 tweets from scripts/gen_tweets.py (entities, retweets, quotes, places).
fn generated(count: usize, seed: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.jsonl");
    let out = std::process::Command::new("python3")
        .arg(root().join("scripts/gen_tweets.py"))
        .args([
            "--count",
            &count.to_string(),
            "--seed",
            &seed.to_string(),
            "--quiet",
        ])
        .arg("--out")
        .arg(&file)
        .output()
        .expect("run scripts/gen_tweets.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&file)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn consume_args<'a>(topic: &'a str, output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "consume",
        "--topic",
        topic,
        "--output",
        output,
        "--group",
        topic,
        "--stats-interval",
        "0s",
        "--fetch-wait",
        "100ms",
    ];
    args.extend_from_slice(extra);
    args
}

/// `consume` into the database named by `url` (whose password goes through PGPASSWORD).
fn consume_pg(topic: &str, url: &str, schema: &str, extra: &[&str]) -> tokio::process::Command {
    let (bare, password) = split_password(url);
    let brokers = brokers();
    let mut args = consume_args(topic, &bare, extra);
    args.extend_from_slice(&["--brokers", &brokers, "--pg-schema", schema]);
    let mut cmd = tweetpipe(&args);
    cmd.env("PGPASSWORD", password).env_remove("PGPASSFILE");
    cmd
}

fn json_lines(dir: &std::path::Path, stream: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{stream}-"))
        })
        .collect();
    names.sort();
    for p in names {
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

/// The stored offsets of `group`/`topic`, by partition.
async fn stored_offsets(
    db: &tokio_postgres::Client,
    schema: &str,
    topic: &str,
) -> BTreeMap<i32, i64> {
    db.query(
        &format!("SELECT kafka_partition, next_offset FROM {schema}.offsets WHERE consumer_group = $1 AND topic = $1"),
        &[&topic],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Each stored tweet id and how many rows it has; also checks the (partition, offset) of
/// every row is unique.
async fn id_counts(db: &tokio_postgres::Client, schema: &str) -> BTreeMap<String, i64> {
    let dup_positions: i64 = db
        .query_one(
            &format!("SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM {schema}.tweets"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup_positions, 0, "a Kafka record stored twice");
    db.query(
        &format!("SELECT id, count(*) FROM {schema}.tweets GROUP BY id"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The rows of `schema.tweets`; 0 before the table exists.
async fn stored_count(db: &tokio_postgres::Client, schema: &str) -> i64 {
    db.query_opt(&format!("SELECT count(*) FROM {schema}.tweets"), &[])
        .await
        .ok()
        .flatten()
        .map_or(0, |r| r.get(0))
}

/// `n` tweets from id `first_id` on, alternately on partitions 0 and 1.
fn two_partitions(n: usize, first_id: u64) -> Vec<(i32, Vec<u8>)> {
    tweets(n, first_id)
        .into_iter()
        .enumerate()
        .map(|(i, t)| ((i % 2) as i32, t))
        .collect()
}

/// Starts `cmd` with its stderr gathered by a task (its text, once the process ends).
fn spawn_logged(
    mut cmd: tokio::process::Command,
) -> (tokio::process::Child, tokio::task::JoinHandle<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text).await;
        text
    });
    (child, log)
}

/// Waits until `schema.tweets` holds more than `before` rows, or 60 s have passed (the test's
/// own assertions then say what went wrong).
async fn stored_more_than(db: &tokio_postgres::Client, schema: &str, before: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_count(db, schema).await <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn delete_of(id: &str) -> Vec<u8> {
    format!(r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":1,"user_id_str":"1"}},"timestamp_ms":"1"}}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_equal_the_json_lines_field_by_field_with_deletes_duplicates_and_errors() {
    let Some(url) = server("rows_equal_the_json_lines") else {
        return;
    };
    let tweets = generated(1_200, 11);
    let v2 = v2_tweets(60, 9_100_000_000, "rule");
    let ids: Vec<String> = tweets
        .iter()
        .map(|t| {
            serde_json::from_slice::<serde_json::Value>(t).unwrap()["id_str"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // The records, spread over 3 partitions: tweets, v2 tweets, the same tweet again at
    // another offset (and in another partition), deletes of tweets before and after them,
    // a scrub_geo, records that are not tweets.
    let mut records: Vec<(i32, Vec<u8>)> = Vec::new();
    let deleted_later: Vec<&str> = ids[100..105].iter().map(String::as_str).collect();
    let deleted_first = ids[1_150].as_str();
    records.push((1, delete_of(deleted_first)));
    for (i, t) in tweets.iter().enumerate() {
        records.push(((i % 3) as i32, t.clone()));
    }
    for (i, t) in v2.iter().enumerate() {
        records.push(((i % 3) as i32, t.clone()));
    }
    let duplicated: Vec<String> = ids[200..230].to_vec();
    for (i, t) in tweets[200..230].iter().enumerate() {
        records.push((((i + 1) % 3) as i32, t.clone()));
    }
    for id in &deleted_later {
        records.push((2, delete_of(id)));
    }
    let scrubbed: serde_json::Value = serde_json::from_slice(&tweets[300]).unwrap();
    let scrub_user = scrubbed["user"]["id_str"].as_str().unwrap().to_string();
    records.push((0, format!(r#"{{"scrub_geo":{{"user_id":{scrub_user},"user_id_str":"{scrub_user}","up_to_status_id":{last},"up_to_status_id_str":"{last}"}}}}"#, last = ids.last().unwrap()).into_bytes()));
    records.push((0, b"this record is not json".to_vec()));
    records.push((1, br#"{"neither":"tweet nor control"}"#.to_vec()));
    let topic = produce_raw("pgrows", 3, &records).await;

    // The JSON-lines sink's output of the same topic.
    let out = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let dir = out.path().to_str().unwrap().to_string();
    let mut args = consume_args(&topic, &dir, &["--idle-exit", "2s", "--brokers", &brokers]);
    let group = format!("{topic}-files");
    args[6] = &group;
    let r = run(tweetpipe(&args), LIMIT).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines = json_lines(out.path(), "tweets");
    assert_eq!(lines.len(), 1_200 + 60 + 30);

    // The database's.
    let schema = schema("pgrows");
    let (_, password) = split_password(&url);
    let cmd = consume_pg(
        &topic,
        &url,
        &schema,
        &["--idle-exit", "2s", "--pg-batch-rows", "300"],
    );
    let r = run(cmd, LIMIT).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains(&password),
        "the password shows in the log"
    );
    assert_eq!(r.summary("written"), records.len() as u64);

    let db = client(&url).await;
    db.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let rows = db
        .query(
            &format!(
                "SELECT id, created_at, user_id, user_screen_name, text, lang, lang_source, \
                 sentiment_neg, sentiment_neu, sentiment_pos, sentiment_compound, hashtags, mentions, \
                 urls, is_retweet, retweeted_id, is_quote, in_reply_to_id, quoted_id, source_format, \
                 source, kafka_partition, kafka_offset, raw FROM {schema}.tweets"
            ),
            &[],
        )
        .await
        .unwrap();
    // Of a tweet at two offsets, the row is one of them (the JSON lines have both).
    let mut by_id: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for l in &lines {
        by_id
            .entry(l["id"].as_str().unwrap().to_string())
            .or_default()
            .push(l);
    }
    let gone: BTreeSet<&str> = deleted_later
        .iter()
        .copied()
        .chain([deleted_first])
        .collect();
    let expected: BTreeSet<&str> = by_id
        .keys()
        .map(String::as_str)
        .filter(|id| !gone.contains(id))
        .collect();
    let stored: BTreeSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    assert_eq!(stored.len(), rows.len(), "one row per tweet id");
    assert_eq!(
        stored.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected,
        "the stored ids are the JSON lines' ids less the deleted ones"
    );
    for id in &duplicated {
        assert_eq!(by_id[id].len(), 2, "the topic holds {id} twice");
    }
    let raw_by_position: BTreeMap<(i32, i64), &Vec<u8>> = {
        let mut next = [0i64; 3];
        records
            .iter()
            .map(|(p, v)| {
                let o = next[*p as usize];
                next[*p as usize] += 1;
                ((*p, o), v)
            })
            .collect()
    };
    let mut compared = 0;
    for row in &rows {
        let id: String = row.get(0);
        let position = (row.get::<_, i32>(21), row.get::<_, i64>(22));
        let line = by_id[&id]
            .iter()
            .find(|l| {
                (
                    l["kafka"]["partition"].as_i64().unwrap() as i32,
                    l["kafka"]["offset"].as_i64().unwrap(),
                ) == position
            })
            .unwrap_or_else(|| panic!("{id}: no JSON line at {position:?}"));
        let created: std::time::SystemTime = row.get(1);
        let line_time: std::time::SystemTime =
            chrono::DateTime::parse_from_rfc3339(line["created_at"].as_str().unwrap())
                .unwrap()
                .into();
        assert_eq!(created, line_time, "{id}: created_at");
        let text = |i: usize| serde_json::Value::from(row.get::<_, String>(i));
        let opt = |i: usize| serde_json::Value::from(row.get::<_, Option<String>>(i));
        let f = |i: usize| serde_json::Value::from(row.get::<_, f64>(i));
        let arr = |i: usize| serde_json::Value::from(row.get::<_, Vec<String>>(i));
        let b = |i: usize| serde_json::Value::from(row.get::<_, bool>(i));
        for (column, got, want) in [
            ("user_id", text(2), &line["user"]["id"]),
            ("user_screen_name", text(3), &line["user"]["screen_name"]),
            ("text", text(4), &line["text"]),
            ("lang", text(5), &line["lang"]),
            ("lang_source", text(6), &line["lang_source"]),
            ("sentiment_neg", f(7), &line["sentiment"]["neg"]),
            ("sentiment_neu", f(8), &line["sentiment"]["neu"]),
            ("sentiment_pos", f(9), &line["sentiment"]["pos"]),
            ("sentiment_compound", f(10), &line["sentiment"]["compound"]),
            ("hashtags", arr(11), &line["hashtags"]),
            ("mentions", arr(12), &line["mentions"]),
            ("urls", arr(13), &line["urls"]),
            ("is_retweet", b(14), &line["is_retweet"]),
            ("retweeted_id", opt(15), &line["retweeted_id"]),
            ("is_quote", b(16), &line["is_quote"]),
            ("in_reply_to_id", opt(17), &line["in_reply_to_id"]),
            ("quoted_id", opt(18), &line["quoted_id"]),
            ("source_format", text(19), &line["source_format"]),
            ("source", text(20), &line["source"]),
        ] {
            // JSON numbers: compare as f64 (0 and 0.0 are the same score).
            if let (Some(g), Some(w)) = (got.as_f64(), want.as_f64()) {
                assert_eq!(g, w, "{id}: {column}");
            } else {
                assert_eq!(&got, want, "{id}: {column}");
            }
        }
        let raw: String = row.get(23);
        if line["user"]["id"] != scrub_user.as_str() {
            assert_eq!(
                raw.as_bytes(),
                raw_by_position[&position].as_slice(),
                "{id}: raw is the record as received"
            );
        }
        compared += 1;
    }
    assert!(compared > 1_200, "compared {compared} rows");

    // The scrub_geo: the user's tweets up to that id keep no location.
    let left: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {schema}.tweets WHERE user_id = $1 AND (raw::jsonb ? 'place' OR raw::jsonb ? 'geo' OR raw::jsonb ? 'coordinates')"),
            &[&scrub_user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "scrub_geo left a location");

    // Control messages and errors: as many as the JSON lines have, at the same positions.
    let deletes: Vec<(String, Option<String>, i32, i64)> = db
        .query(&format!("SELECT kind, tweet_id, kafka_partition, kafka_offset FROM {schema}.deletes ORDER BY 3, 4"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut want: Vec<(String, i32, i64)> = json_lines(out.path(), "deletes")
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["kafka"]["partition"].as_i64().unwrap() as i32,
                l["kafka"]["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    want.sort_by_key(|w| (w.1, w.2));
    assert_eq!(
        deletes
            .iter()
            .map(|d| (d.0.clone(), d.2, d.3))
            .collect::<Vec<_>>(),
        want
    );
    assert_eq!(
        deletes
            .iter()
            .filter_map(|d| d.1.as_deref())
            .collect::<BTreeSet<_>>(),
        gone,
        "each delete names its tweet"
    );
    let errors: Vec<(i32, i64)> = db
        .query(
            &format!("SELECT kafka_partition, kafka_offset FROM {schema}.errors ORDER BY 1, 2"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut want: Vec<(i32, i64)> = json_lines(out.path(), "errors")
        .iter()
        .map(|l| {
            (
                l["kafka"]["partition"].as_i64().unwrap() as i32,
                l["kafka"]["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(errors, want);
    assert_eq!(errors.len(), 2);

    // The stored offsets are the end of each partition.
    let mut ends = BTreeMap::new();
    for (p, _) in &records {
        *ends.entry(*p).or_insert(0i64) += 1;
    }
    assert_eq!(stored_offsets(&db, &schema, &topic).await, ends);

    // Again: nothing new is stored, nothing twice.
    let before = id_counts(&db, &schema).await;
    let r = run(
        consume_pg(&topic, &url, &schema, &["--idle-exit", "1s"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.summary("written"), 0);
    assert_eq!(id_counts(&db, &schema).await, before);
}

/// Kills at random points, and (through the debug builds' pause before COMMIT) while a
/// batch is copied but not committed: each tweet is stored once, and the stored offsets are
/// the end of each partition.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_and_before_commit_stores_each_tweet_once() {
    let Some(url) = server("sigkill") else {
        return;
    };
    let n = 50_000usize;
    let records = two_partitions(n, 40_000_000);
    let topic = produce_raw("pgkill", 2, &records).await;
    let schema = schema("pgkill");
    let mut rand = kill_schedule();
    let db = client(&url).await;
    let (mut kills, mut before_commit) = (0, 0);
    for round in 0..8 {
        let paused = round % 3 == 0;
        let mut cmd = consume_pg(
            &topic,
            &url,
            &schema,
            &[
                "--assign",
                "all",
                "--commit-interval",
                "30ms",
                "--pg-batch-rows",
                "100",
            ],
        );
        if paused {
            cmd.env("TWEETPIPE_TEST_PG_PAUSE_BEFORE_COMMIT_MS", "3000");
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        if paused {
            // Kill while the rows are copied and the COMMIT has not been sent.
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            while let Ok(Ok(Some(l))) =
                tokio::time::timeout_at(deadline.into(), lines.next_line()).await
            {
                seen.push(l);
                if seen.last().unwrap().contains("pausing before COMMIT") {
                    break;
                }
            }
            assert!(
                seen.last()
                    .is_some_and(|l| l.contains("pausing before COMMIT")),
                "the consumer never reached the pause before COMMIT:\n{}",
                seen.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(rand() % 1_000)).await;
            before_commit += 1;
        } else {
            let log = tokio::spawn(async move {
                let mut text = String::new();
                let mut s = stderr;
                let _ = s.read_to_string(&mut text).await;
                text
            });
            // Once this run has stored something (a loaded machine starts slowly), at a
            // random point after.
            let before = stored_count(&db, &schema).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while stored_count(&db, &schema).await == before {
                if Instant::now() > deadline {
                    child.start_kill().unwrap();
                    child.wait().await.unwrap();
                    panic!("round {round} stored nothing:\n{}", log.await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(rand() % 150)).await;
        }
        if child.try_wait().unwrap().is_none() {
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
            kills += 1;
        }
        let counts = id_counts(&db, &schema).await;
        eprintln!(
            "round {round} (paused before COMMIT: {paused}): {} stored",
            counts.len()
        );
        assert!(
            counts.values().all(|c| *c == 1),
            "a tweet stored twice after kill {kills}"
        );
    }
    assert!(
        kills >= 6,
        "the consumer must be killed mid-run ({kills} kills)"
    );
    assert!(before_commit >= 2);
    let stored_before_last = id_counts(&db, &schema).await.len();
    assert!(stored_before_last > 0, "the killed runs stored something");
    assert!(
        stored_before_last < n,
        "the killed runs must not have finished ({stored_before_last})"
    );

    let r = run(
        consume_pg(
            &topic,
            &url,
            &schema,
            &["--assign", "all", "--idle-exit", "2s"],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let counts = id_counts(&db, &schema).await;
    assert_eq!(counts.len(), n, "every tweet is stored");
    assert!(counts.values().all(|c| *c == 1));
    assert_eq!(
        stored_offsets(&db, &schema, &topic).await,
        BTreeMap::from([(0, (n / 2) as i64), (1, (n / 2) as i64)])
    );
}

/// SIGTERM while the consumer streams a backlog to a database slower than it (a debug-only
/// hook stalls each streamed COPY, so the writer waits for room with most of a batch still
/// to send): each run stops cleanly (exit 0, its last batch stored in full), and over the
/// runs each tweet is stored once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_stream_stops_cleanly_and_stores_each_tweet_once() {
    let Some(url) = server("sigterm") else {
        return;
    };
    let n = 60_000usize;
    let records = two_partitions(n, 45_000_000);
    let topic = produce_raw("pgterm", 2, &records).await;
    let schema = schema("pgterm");
    let mut rand = kill_schedule();
    let db = client(&url).await;
    let mut stops = 0;
    for round in 0..3 {
        let mut cmd = consume_pg(&topic, &url, &schema, &["--assign", "all"]);
        cmd.env("TWEETPIPE_TEST_PG_STREAM_STALL_MS", "400");
        let before = stored_count(&db, &schema).await;
        let (mut child, log) = spawn_logged(cmd);
        stored_more_than(&db, &schema, before).await;
        tokio::time::sleep(Duration::from_millis(rand() % 100)).await;
        let Some(pid) = child.id() else { break };
        // SAFETY: signalling a process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("exits within 30 s of SIGTERM")
            .unwrap();
        let log = log.await.unwrap();
        assert_eq!(status.code(), Some(0), "round {round}:\n{log}");
        stops += 1;
        let counts = id_counts(&db, &schema).await;
        assert!(counts.values().all(|c| *c == 1), "a tweet stored twice");
        // A clean stop stores what it wrote: the offsets match the rows.
        let at: i64 = stored_offsets(&db, &schema, &topic).await.values().sum();
        assert_eq!(
            at as usize,
            counts.len(),
            "round {round}: offsets and rows agree"
        );
        eprintln!("round {round}: {} stored", counts.len());
    }
    let stored_before_last = id_counts(&db, &schema).await.len();
    assert!(
        stops >= 2 && stored_before_last < n,
        "stopped mid-run {stops} times, {stored_before_last} stored"
    );
    let r = run(
        consume_pg(
            &topic,
            &url,
            &schema,
            &["--assign", "all", "--idle-exit", "2s"],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let counts = id_counts(&db, &schema).await;
    assert_eq!(counts.len(), n, "every tweet is stored");
    assert!(counts.values().all(|c| *c == 1));
    assert_eq!(
        stored_offsets(&db, &schema, &topic).await,
        BTreeMap::from([(0, (n / 2) as i64), (1, (n / 2) as i64)])
    );
}

/// Two consumers storing the same partitions into the same tables, as when an instance froze
/// (a suspended VM) and another took its work over: one is SIGSTOPped mid-run while the other
/// goes on, then SIGCONTed. Whichever finds the stored offsets moved under it (its
/// compare-and-set fails) rolls its batch back, gives the partitions up and reads on from the
/// stored offsets: each tweet once, the offsets at the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_consumer_and_its_successor_store_each_tweet_once() {
    let Some(url) = server("frozen") else {
        return;
    };
    let n = 30_000usize;
    let records = two_partitions(n, 47_000_000);
    let topic = produce_raw("pgfrozen", 2, &records).await;
    let schema = schema("pgfrozen");
    let db = client(&url).await;
    let extra = [
        "--assign",
        "all",
        "--idle-exit",
        "3s",
        "--pg-batch-rows",
        "500",
    ];
    let spawn = || spawn_logged(consume_pg(&topic, &url, &schema, &extra));
    let signal = |child: &tokio::process::Child, sig: i32| {
        let pid = child.id().expect("running") as i32;
        // SAFETY: signalling a process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    };
    let (mut frozen, frozen_log) = spawn();
    stored_more_than(&db, &schema, 0).await;
    signal(&frozen, libc::SIGSTOP);
    let stored_when_frozen = stored_count(&db, &schema).await;
    let (mut successor, successor_log) = spawn();
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&frozen, libc::SIGCONT);
    let limit = Duration::from_secs(120);
    let frozen_exit = tokio::time::timeout(limit, frozen.wait())
        .await
        .unwrap()
        .unwrap();
    let successor_exit = tokio::time::timeout(limit, successor.wait())
        .await
        .unwrap()
        .unwrap();
    let logs = format!(
        "frozen:\n{}\nsuccessor:\n{}",
        frozen_log.await.unwrap(),
        successor_log.await.unwrap()
    );
    assert_eq!(frozen_exit.code(), Some(0), "{logs}");
    assert_eq!(successor_exit.code(), Some(0), "{logs}");
    assert!(
        stored_when_frozen < n as i64,
        "frozen before the end ({stored_when_frozen} stored)"
    );
    assert!(
        logs.contains("gave the partitions up without a commit"),
        "one of them found the offsets moved under it:\n{logs}"
    );
    let counts = id_counts(&db, &schema).await;
    assert_eq!(counts.len(), n, "every tweet is stored");
    assert!(counts.values().all(|c| *c == 1), "a tweet stored twice");
    assert_eq!(
        stored_offsets(&db, &schema, &topic).await,
        BTreeMap::from([(0, (n / 2) as i64), (1, (n / 2) as i64)])
    );
}

/// A PostgreSQL cluster of the test's own (`scripts/pg`), for tests that stop the server or
/// change its settings; removed when dropped.
struct OwnCluster {
    name: String,
    url: String,
}

impl OwnCluster {
    fn start(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let url = scripts_pg("start", &name)
            .lines()
            .find_map(|l| l.strip_prefix("TWEETPIPE_TEST_PG="))
            .unwrap()
            .to_string();
        OwnCluster { name, url }
    }

    fn run(&self, cmd: &str) -> String {
        scripts_pg(cmd, &self.name)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        scripts_pg("remove", &self.name);
    }
}

fn scripts_pg(cmd: &str, name: &str) -> String {
    let out = std::process::Command::new(root().join("scripts/pg"))
        .args([cmd, name])
        .output()
        .expect("run scripts/pg");
    assert!(
        out.status.success(),
        "scripts/pg {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The database stopped before the consumer starts and again while it stores: it waits,
/// retries, and loses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_stopped_for_a_while_then_started_loses_nothing() {
    if server("outage").is_none() {
        return;
    }
    let pg = OwnCluster::start("outage");
    let url = pg.url.clone();
    let n = 6_000usize;
    let records = two_partitions(n, 50_000_000);
    let topic = produce_raw("pgdown", 2, &records).await;
    let schema = "down";
    pg.run("stop");
    let (mut child, log) = spawn_logged(consume_pg(
        &topic,
        &url,
        schema,
        &[
            "--idle-exit",
            "4s",
            "--commit-interval",
            "50ms",
            "--pg-batch-rows",
            "200",
        ],
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.run("start");
    let db = client(&url).await;
    let started = Instant::now();
    loop {
        let have = stored_count(&db, schema).await;
        if have > 0 {
            assert!((have as usize) < n, "the outage must come mid-run");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing stored after the start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(db);
    pg.run("stop");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.run("start");
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = log.await.unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("PostgreSQL is unavailable; retrying"), "{log}");
    let db = client(&url).await;
    let counts = id_counts(&db, schema).await;
    assert_eq!(counts.len(), n, "every tweet is stored\n{log}");
    assert!(counts.values().all(|c| *c == 1));
    assert_eq!(
        stored_offsets(&db, schema, &topic).await,
        BTreeMap::from([(0, (n / 2) as i64), (1, (n / 2) as i64)])
    );
}

/// Two members of one group into the same database split the partitions; together they
/// store each tweet once, also when one is killed and the other takes its partitions over.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_two_splits_the_partitions_and_stores_each_tweet_once() {
    let Some(url) = server("group") else {
        return;
    };
    let n = 8_000usize;
    let records: Vec<(i32, Vec<u8>)> = tweets(n, 60_000_000)
        .into_iter()
        .enumerate()
        .map(|(i, t)| ((i % 4) as i32, t))
        .collect();
    let topic = produce_raw("pggroup", 4, &records).await;
    let schema = schema("pggroup");
    let mut fleet = Fleet::new(&brokers(), &topic, &topic, 4, &PathBuf::from(&url));
    fleet.extra = vec![
        "--pg-schema".into(),
        schema.clone(),
        "--pg-batch-rows".into(),
        "200".into(),
    ];
    fleet.start("a");
    fleet.start("b");
    let settled = fleet.settled(Duration::from_secs(60)).await;
    let owners: BTreeSet<&String> = settled.owners.values().collect();
    assert_eq!(
        owners.len(),
        2,
        "both members own partitions: {:?}",
        settled.owners
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    fleet.kill("b").await;
    // More records in every partition after the kill: `a` must take b's partitions over
    // and go on from the offsets b stored.
    let more: Vec<(i32, Vec<u8>)> = tweets(n, 61_000_000)
        .into_iter()
        .enumerate()
        .map(|(i, t)| ((i % 4) as i32, t))
        .collect();
    append_raw(&topic, &more).await;
    let db = client(&url).await;
    let started = Instant::now();
    loop {
        let counts = id_counts(&db, &schema).await;
        assert!(counts.values().all(|c| *c == 1), "a tweet stored twice");
        if counts.len() == 2 * n {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{} of {n} stored\n{}",
            counts.len(),
            fleet.dump()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = fleet.stop_all(Duration::from_secs(60)).await;
    let a: BTreeSet<i64> = ended[0].summary.as_ref().unwrap().0["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert_eq!(a, (0..4).collect(), "a took every partition over");
    assert_eq!(
        stored_offsets(&db, &schema, &topic).await,
        (0..4)
            .map(|p| (p, (2 * n / 4) as i64))
            .collect::<BTreeMap<_, _>>()
    );
}

/// A usage error exits 2, a database refusal 1, with the server's message; the password is
/// in no message.
#[tokio::test(flavor = "multi_thread")]
async fn errors_name_the_problem_and_never_the_password() {
    let Some(url) = server("errors") else {
        return;
    };
    let (bare, password) = split_password(&url);
    let topic = produce_raw("pgerr", 1, &[(0, tweets(1, 70_000_000).remove(0))]).await;
    let brokers = brokers();
    let schema_pass = schema("pgpass");
    let run_with = |output: String, env: Vec<(&'static str, String)>| {
        let topic = topic.clone();
        let brokers = brokers.clone();
        let schema_pass = schema_pass.clone();
        async move {
            let mut cmd = tweetpipe(&consume_args(
                &topic,
                &output,
                &[
                    "--brokers",
                    &brokers,
                    "--idle-exit",
                    "1s",
                    "--pg-schema",
                    &schema_pass,
                ],
            ));
            cmd.env_remove("PGPASSWORD")
                .env("PGPASSFILE", "/nonexistent");
            for (k, v) in env {
                cmd.env(k, v);
            }
            run(cmd, LIMIT).await
        }
    };
    // A wrong password in the URL: exit 2, the server's message, not the password.
    let wrong = url.replacen(&password, "Wr0ngSecret-xyz", 1);
    let r = run_with(wrong, vec![]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("password authentication failed"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("Wr0ngSecret-xyz") && !r.stderr.contains(&password),
        "{}",
        r.stderr
    );
    // A bad sslmode: exit 2 before connecting.
    let r = run_with(format!("{url}?sslmode=sometimes"), vec![]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("sslmode"), "{}", r.stderr);
    assert!(!r.stderr.contains(&password), "{}", r.stderr);
    // The password from a pgpass file works.
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("*:*:*:*:{password}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let schema_ok = schema("pgerr");
    let r = run_with(
        format!("{bare}?sslmode=disable"),
        vec![("PGPASSFILE", pgpass.to_string_lossy().into_owned())],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(&password));
    // A role without rights: exit 1 with the server's message.
    let db = client(&url).await;
    let role = format!("weak_{}", std::process::id());
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'weak-pass-1'; \
         CREATE SCHEMA {schema_ok}; REVOKE ALL ON SCHEMA {schema_ok} FROM PUBLIC"
    ))
    .await
    .unwrap();
    let weak = bare.replacen("tweetpipe@", &format!("{role}@"), 1);
    let (p, args) = (
        weak.clone(),
        vec![("PGPASSWORD", "weak-pass-1".to_string())],
    );
    let r = {
        let mut cmd = tweetpipe(&consume_args(
            &topic,
            &p,
            &[
                "--brokers",
                &brokers,
                "--idle-exit",
                "1s",
                "--pg-schema",
                &schema_ok,
            ],
        ));
        cmd.env_remove("PGPASSFILE");
        for (k, v) in args {
            cmd.env(k, v);
        }
        run(cmd, LIMIT).await
    };
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    assert!(!r.stderr.contains("weak-pass-1"), "{}", r.stderr);
    db.batch_execute(&format!(
        "DROP SCHEMA {schema_ok} CASCADE; DROP ROLE {role}"
    ))
    .await
    .unwrap();
}

/// TLS against a server with TLS on (a cluster of the test's own): verify-full with the CA that
/// signed the server's certificate stores over TLS; another CA is refused (exit 2, naming the
/// fix); a host name the certificate does not name is refused by verify-full and accepted by
/// verify-ca; require encrypts without a CA.
#[tokio::test(flavor = "multi_thread")]
async fn tls_verify_full_verify_ca_and_require_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    if server("tls").is_none() {
        return;
    }
    let pg = OwnCluster::start("tls");
    let url = pg.url.clone();
    // A CA and a server certificate for 127.0.0.1, in the cluster's data directory, owned
    // by its owner (the server refuses a key others can read).
    let ca = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("tweetpipe test CA");
    let (other_ca, _) = ca("someone else's CA");
    let key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    let data = root().join(format!("target/pg/{}/data", pg.name));
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    for (file, text) in [
        ("server.crt", server_cert.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        let path = data.join(file);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::os::unix::fs::chown(&path, Some(owner), None).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, other_file) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&other_file, other_ca.pem()).unwrap();
    let db = client(&url).await;
    db.batch_execute("ALTER SYSTEM SET ssl = on").await.unwrap();
    db.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let topic = produce_raw(
        "pgtls",
        1,
        &tweets(500, 80_000_000)
            .into_iter()
            .map(|t| (0, t))
            .collect::<Vec<_>>(),
    )
    .await;
    let ca_arg = ca_file.to_string_lossy().into_owned();
    let other_arg = other_file.to_string_lossy().into_owned();
    // verify-full with the right CA: stored, over TLS (seen by the server while it runs).
    let mut child = consume_pg(
        &topic,
        &format!("{url}?sslmode=verify-full"),
        "tls",
        &["--idle-exit", "3s", "--pg-ca-file", &ca_arg],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut saw_tls = false;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < LIMIT {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'tweetpipe' AND s.ssl",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        saw_tls |= n > 0;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(saw_tls, "the server saw no TLS connection of tweetpipe");
    assert_eq!(stored_count(&db, "tls").await, 500);

    // Another CA: refused, a configuration error that says what to check.
    let r = run(
        consume_pg(
            &topic,
            &format!("{url}?sslmode=verify-full"),
            "tls2",
            &["--idle-exit", "1s", "--pg-ca-file", &other_arg],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("TLS") && r.stderr.contains("--pg-ca-file"),
        "{}",
        r.stderr
    );
    assert_eq!(stored_count(&db, "tls2").await, 0);

    // The certificate names 127.0.0.1; reached as localhost, verify-full refuses the name and
    // verify-ca, which checks the chain only, stores.
    let localhost = url.replace("@127.0.0.1:", "@localhost:");
    assert_ne!(localhost, url);
    let topic = produce_raw(
        "pgtls4",
        1,
        &tweets(500, 80_000_000)
            .into_iter()
            .map(|t| (0, t))
            .collect::<Vec<_>>(),
    )
    .await;
    let r = run(
        consume_pg(
            &topic,
            &format!("{localhost}?sslmode=verify-full"),
            "tls4",
            &["--idle-exit", "1s", "--pg-ca-file", &ca_arg],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("TLS"), "{}", r.stderr);
    assert_eq!(stored_count(&db, "tls4").await, 0);
    let r = run(
        consume_pg(
            &topic,
            &format!("{localhost}?sslmode=verify-ca"),
            "tls4",
            &["--idle-exit", "1s", "--pg-ca-file", &ca_arg],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(stored_count(&db, "tls4").await, 500);

    // require: encrypted, the certificate not checked (no CA given). A topic of its own: the
    // first run's group has committed the first one in Kafka.
    let topic = produce_raw(
        "pgtls3",
        1,
        &tweets(500, 80_000_000)
            .into_iter()
            .map(|t| (0, t))
            .collect::<Vec<_>>(),
    )
    .await;
    let r = run(
        consume_pg(
            &topic,
            &format!("{url}?sslmode=require"),
            "tls3",
            &["--idle-exit", "1s"],
        ),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(stored_count(&db, "tls3").await, 500);
    drop(pg);
}

/// A record the database refuses (here a hashtag too long for the GIN index) goes to
/// `errors` with the server's reason; the rest of its batch is stored, and the run goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_database_refuses_goes_to_errors() {
    let Some(url) = server("refused") else {
        return;
    };
    let mut records: Vec<(i32, Vec<u8>)> =
        tweets(20, 90_000_000).into_iter().map(|t| (0, t)).collect();
    // Incompressible, so that no compression brings it under the index's limit.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let long: String = (0..6_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(seed % 36) as usize])
        })
        .collect();
    let mut bad: serde_json::Value = serde_json::from_slice(&records[7].1).unwrap();
    bad["entities"]["hashtags"] = serde_json::json!([{"text": long, "indices": [0, 1]}]);
    records[7].1 = serde_json::to_vec(&bad).unwrap();
    let topic = produce_raw("pgrefused", 1, &records).await;
    let schema = schema("pgrefused");
    let r = run(
        consume_pg(&topic, &url, &schema, &["--idle-exit", "2s"]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let db = client(&url).await;
    assert_eq!(stored_count(&db, &schema).await, 19);
    let rows = db
        .query(
            &format!("SELECT reason, value, kafka_partition, kafka_offset FROM {schema}.errors"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let reason: String = rows[0].get(0);
    assert!(
        reason.starts_with("PostgreSQL refused the record"),
        "{reason}"
    );
    assert_eq!(
        rows[0].get::<_, Vec<u8>>(1),
        records[7].1,
        "the record as received"
    );
    assert_eq!((rows[0].get::<_, i32>(2), rows[0].get::<_, i64>(3)), (0, 7));
    assert_eq!(
        stored_offsets(&db, &schema, &topic).await,
        BTreeMap::from([(0, 20)])
    );
}
