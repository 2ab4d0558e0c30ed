//! Shared test support: the real broker, unique topics, realistic tweets, running the real
//! binary, and reading a topic back (with rskafka here, and with librdkafka through
//! `tests/rdkafka_client.py`).
//!
//! The broker is a real tansu process. `scripts/test` starts one and exports
//! `TWEETPIPE_TEST_BROKERS`; without it, the first test starts one through `scripts/broker`
//! (the same script), so `cargo nextest run` alone works too.
#![allow(dead_code)]

pub mod group;
pub mod jetstream;
mod shared;
pub mod twitter;
pub mod zstd_dict;

// Each test crate uses some of the support module; these two are not used by all.
#[allow(unused_imports)]
pub use shared::{rdkafka, silent_broker};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `HOST:PORT` of the test broker.
pub fn brokers() -> String {
    static BROKERS: OnceLock<String> = OnceLock::new();
    BROKERS
        .get_or_init(|| {
            if let Ok(b) = std::env::var("TWEETPIPE_TEST_BROKERS") {
                return b;
            }
            let out = std::process::Command::new(root().join("scripts/broker"))
                .args(["start", "test"])
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/broker");
            assert!(out.status.success(), "scripts/broker start failed");
            let text = String::from_utf8(out.stdout).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("KAFKA_BROKERS="))
                .expect("scripts/broker prints KAFKA_BROKERS=")
                .to_string()
        })
        .clone()
}

/// A topic name no other test (or earlier run against the same broker) uses.
pub fn topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// The VADER ground-truth corpus bundled with the tests (tests/data/vader/, MIT; see its
/// README): `id<TAB>mean human rating<TAB>text` lines.
pub fn vader_corpus_path() -> PathBuf {
    root().join("tests/data/vader/tweets_groundtruth.tsv")
}

/// Real tweet texts (the VADER ground-truth corpus).
pub fn texts() -> &'static [String] {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let path = vader_corpus_path();
        let data =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        data.lines()
            .filter_map(|l| l.splitn(3, '\t').nth(2))
            .map(str::to_string)
            .collect()
    })
}

/// `n` v1.1-shaped tweets with ids from `first_id`. Every 25th is pretty-printed, so it holds
/// bare `\n`s between JSON tokens, which `\r\n` framing must keep inside the record.
pub fn tweets(n: usize, first_id: u64) -> Vec<Vec<u8>> {
    let texts = texts();
    (0..n)
        .map(|i| {
            let id = first_id + i as u64;
            let text = &texts[i % texts.len()];
            let v = serde_json::json!({
                "created_at": "Wed Oct 10 20:19:24 +0000 2018",
                "id": id,
                "id_str": id.to_string(),
                "text": text,
                "source": "<a href=\"http://twitter.com\" rel=\"nofollow\">Twitter Web Client</a>",
                "truncated": false,
                "user": {"id": 1000 + i as u64 % 97, "id_str": (1000 + i as u64 % 97).to_string(),
                         "screen_name": format!("user{}", i % 97), "followers_count": i * 7 % 5000,
                         "description": texts[(i + 7) % texts.len()]},
                "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
                "retweet_count": 0, "favorite_count": 0, "lang": if i % 10 == 0 { "und" } else { "en" },
                "timestamp_ms": (1539202764000u64 + i as u64).to_string(),
            });
            if i % 25 == 3 {
                serde_json::to_vec_pretty(&v).unwrap()
            } else {
                serde_json::to_vec(&v).unwrap()
            }
        })
        .collect()
}

/// `n` v2 filtered-stream records (`data`, `includes`, `matching_rules`) with ids from
/// `first_id`, as the stream sends them with tweetpipe's default expansions and fields. Every
/// 7th is a retweet whose original is in `includes.tweets`; `tag` is the matching rule's tag.
pub fn v2_tweets(n: usize, first_id: u64, tag: &str) -> Vec<Vec<u8>> {
    let texts = texts();
    (0..n)
        .map(|i| {
            let id = first_id + i as u64;
            let author = (2_000 + i as u64 % 97).to_string();
            let text = &texts[i % texts.len()];
            let mut v = serde_json::json!({
                "data": {
                    "author_id": author,
                    "created_at": format!("2026-01-10T20:19:{:02}.000Z", i % 60),
                    "edit_history_tweet_ids": [id.to_string()],
                    "entities": {"hashtags": [{"start": 0, "end": 4, "tag": "v2t"}]},
                    "id": id.to_string(),
                    "lang": "en",
                    "text": text,
                },
                "includes": {"users": [{"id": author, "name": format!("User {i}"), "username": format!("v2user{}", i % 97)}]},
                "matching_rules": [{"id": "1500000000000000001", "tag": tag}],
            });
            if i % 7 == 3 {
                let original = (first_id / 2 + i as u64).to_string();
                v["data"]["referenced_tweets"] =
                    serde_json::json!([{"type": "retweeted", "id": original}]);
                v["data"]["text"] = format!("RT @orig: {}", &text.chars().take(20).collect::<String>()).into();
                v["includes"]["tweets"] = serde_json::json!([{
                    "id": original, "text": text, "lang": "en", "author_id": "77",
                    "created_at": "2026-01-09T10:00:00.000Z"
                }]);
            }
            serde_json::to_vec(&v).unwrap()
        })
        .collect()
}

/// The `tweetpipe` binary with the stand-in's credentials and nothing from the caller's
/// environment that could change its behaviour. It writes its summary (`--summary-file`,
/// through `TWEETPIPE_SUMMARY_FILE`) to a file of its own, which [`summary_of`] reads. The
/// stand-in speaks v1.1 unless a test asks for `--api v2` (the flag wins over the variable).
pub fn tweetpipe(args: &[&str]) -> tokio::process::Command {
    let creds = twitter::Creds::test();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tweetpipe"));
    cmd.args(args)
        .env_remove("KAFKA_BROKERS")
        .env_remove("TWEETPIPE_TOPIC")
        .env_remove("KAFKA_TLS")
        .env_remove("KAFKA_CA_FILE")
        .env_remove("KAFKA_CERT_FILE")
        .env_remove("KAFKA_KEY_FILE")
        .env_remove("KAFKA_SASL_MECHANISM")
        .env_remove("KAFKA_SASL_USERNAME")
        .env_remove("KAFKA_SASL_PASSWORD")
        .env("TWITTER_CONSUMER_KEY", &creds.consumer_key)
        .env("TWITTER_CONSUMER_SECRET", &creds.consumer_secret)
        .env("TWITTER_ACCESS_TOKEN", &creds.token)
        .env("TWITTER_ACCESS_TOKEN_SECRET", &creds.token_secret)
        .env("TWEETPIPE_SPILL_DIR", spill_dir())
        .env("TWITTER_BEARER_TOKEN", twitter::TEST_BEARER)
        .env("TWEETPIPE_API", "1.1")
        .env("TWEETPIPE_SUMMARY_FILE", scratch_path("summary.json"))
        .env_remove("TWEETPIPE_LOG_FORMAT")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// A spill directory of its own for each command (tests run in parallel, and one spill
/// directory belongs to one producer); tests about the spill pass `--spill-dir` themselves.
pub fn spill_dir() -> PathBuf {
    scratch_path("spill")
}

/// A path no other command of any test uses.
fn scratch_path(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()))
}

/// The summary the command wrote when it ended (see [`tweetpipe`]); `None` when it wrote none
/// (killed, or it failed before running).
pub fn summary_of(cmd: &tokio::process::Command) -> Option<Summary> {
    let path = cmd
        .as_std()
        .get_envs()
        .find(|(k, _)| *k == "TWEETPIPE_SUMMARY_FILE")
        .and_then(|(_, v)| v)?;
    let text = std::fs::read(path).ok()?;
    Some(Summary(
        serde_json::from_slice(&text).expect("the summary is JSON"),
    ))
}

/// A run's summary, as `--summary-file` has it.
#[derive(Debug, Clone)]
pub struct Summary(pub serde_json::Value);

impl Summary {
    /// A count from the summary, e.g. `summary.get("spilled")`.
    pub fn get(&self, key: &str) -> u64 {
        self.0[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no count {key:?} in the summary {}", self.0))
    }
}

pub struct Run {
    pub code: i32,
    pub stderr: String,
    /// What the command wrote to its summary file; `None` when it wrote none.
    pub summary: Option<Summary>,
}

impl Run {
    /// A count from the run's summary (which must exist).
    pub fn summary(&self, key: &str) -> u64 {
        self.summary
            .as_ref()
            .unwrap_or_else(|| panic!("no summary was written; stderr:\n{}", self.stderr))
            .get(key)
    }
}

/// Runs to completion (bounded), returning the exit code, stderr and the summary.
pub async fn run(mut cmd: tokio::process::Command, limit: Duration) -> Run {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tweetpipe");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tweetpipe did not finish within {limit:?}"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr,
        summary: summary_of(&cmd),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Reads every partition of `topic` from the start until `expected` records are in (or
/// `limit` passes), then a moment longer to catch any surplus.
pub async fn read_topic(topic: &str, expected: usize, limit: Duration) -> Vec<Read> {
    read_topic_from(&brokers(), topic, expected, limit).await
}

/// [`read_topic`] on a given broker.
pub async fn read_topic_from(
    brokers: &str,
    topic: &str,
    expected: usize,
    limit: Duration,
) -> Vec<Read> {
    let client = ClientBuilder::new(vec![brokers.to_string()])
        .build()
        .await
        .expect("connect for reading");
    // produce creates the topic once it reaches Kafka, which can be after the stream
    // connected (it reads into the spill meanwhile): give it the time limit to appear.
    let started = Instant::now();
    let partitions = loop {
        let topics = client.list_topics().await.unwrap();
        let partitions = topics
            .iter()
            .find(|t| t.name == topic)
            .map_or(0, |t| t.partitions.len() as i32);
        if partitions > 0 || started.elapsed() > limit {
            break partitions;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(partitions > 0, "topic {topic} does not exist");
    let mut clients = Vec::new();
    for p in 0..partitions {
        clients.push(
            client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await
                .unwrap(),
        );
    }
    let mut out = Vec::new();
    let mut next = vec![0i64; partitions as usize];
    let started = Instant::now();
    let mut complete_at: Option<Instant> = None;
    loop {
        for (p, pc) in clients.iter().enumerate() {
            // Small max wait: tansu waits the full max wait on every fetch.
            let (records, _high) = pc
                .fetch_records(next[p], 1..16 * 1024 * 1024, 50)
                .await
                .unwrap();
            for r in records {
                next[p] = r.offset + 1;
                out.push(Read {
                    partition: p as i32,
                    offset: r.offset,
                    key: r.record.key,
                    value: r.record.value.unwrap_or_default(),
                });
            }
        }
        if out.len() >= expected && complete_at.is_none() {
            complete_at = Some(Instant::now());
        }
        if complete_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300))
            || started.elapsed() > limit
        {
            return out;
        }
    }
}

/// Creates `topic` with `partitions` through rskafka.
pub async fn create_topic(topic: &str, partitions: i32) {
    let client = ClientBuilder::new(vec![brokers()]).build().await.unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(topic, partitions, 1, 10_000)
        .await
        .unwrap();
}

/// Random numbers for a kill schedule: a tiny xorshift, so the kill points vary run to run
/// but can be replayed: the seed is printed, and `TWEETPIPE_TEST_SEED` sets it.
pub fn kill_schedule() -> impl FnMut() -> u64 {
    let mut seed = std::env::var("TWEETPIPE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill schedule seed {seed}");
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

pub fn write_lines(path: &Path, records: &[Vec<u8>]) {
    let mut data = Vec::new();
    for r in records {
        // Files are one JSON per line: compact the pretty ones.
        let v: serde_json::Value = serde_json::from_slice(r).unwrap();
        data.extend_from_slice(&serde_json::to_vec(&v).unwrap());
        data.push(b'\n');
    }
    std::fs::write(path, data).unwrap();
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A broker of a test's own (for settings the shared one must not have: an advertised port
/// of a TLS proxy, required authentication), stopped when dropped.
pub struct OwnBroker {
    name: String,
    /// `HOST:PORT` where it listens.
    pub addr: String,
}

impl OwnBroker {
    /// `scripts/broker start NAME OPTIONS…` (see the script for the options).
    pub fn start(name: &str, options: &[&str]) -> OwnBroker {
        let name = format!("{name}-{}", std::process::id());
        let out = std::process::Command::new(root().join("scripts/broker"))
            .arg("start")
            .arg(&name)
            .args(options)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/broker");
        assert!(out.status.success(), "scripts/broker start {name} failed");
        let addr = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("KAFKA_BROKERS="))
            .expect("scripts/broker prints KAFKA_BROKERS=")
            .to_string();
        OwnBroker { name, addr }
    }

    /// The broker's process id (to SIGSTOP it, say).
    pub fn pid(&self) -> i32 {
        let path = root().join(format!("target/broker/{}.pid", self.name));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(root().join("scripts/broker"))
            .args(["stop", &self.name])
            .status();
    }
}
