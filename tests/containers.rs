//! End to end against real Apache Kafka (KRaft, 3 nodes) and Redpanda in Docker, started by
//! testcontainers-rs: `tweetpipe topic create`, `tweetpipe produce --from-file` of the sample
//! stream (`tests/data/sample/tweets.jsonl.gz`, 5,000 tweets), `tweetpipe consume`, and every tweet
//! id of the file must come out exactly once.
//!
//! Only built with `--features testcontainers`. The two Docker tests are `#[ignore]`d, so CI
//! (no Docker) builds them and runs only `compose_files_match_the_settings`; where Docker is:
//!
//! ```sh
//! cargo nextest run --features testcontainers --test containers --run-ignored all
//! cargo test --features testcontainers --test containers -- --include-ignored
//! ```
//!
//! The images and their settings are in `testcontainers/settings.rs`, shared with the compose
//! files that `scripts/test-containers` uses to run the whole suite against the same clusters.
//!
//! Written against the images' and testcontainers-rs 0.24's documentation and sources; not run
//! on the machine it was written on, which has no Docker.
#![cfg(feature = "testcontainers")]

mod support;

#[path = "../testcontainers/settings.rs"]
mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use support::{run, topic, tweetpipe};
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// Bound on one tweetpipe run (the sample is ~20 MB).
const LIMIT: Duration = Duration::from_secs(300);
/// Bound on a container becoming ready; the image pull, done before, is not counted.
const STARTUP: Duration = Duration::from_secs(180);

/// A TCP port free on the host right now: the container's listener is published on it, and
/// advertised as `127.0.0.1:PORT` (Kafka must know its advertised address before it starts, so
/// the port cannot be left to Docker to choose).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name no other run on this Docker host uses (container names are global).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Three Kafka nodes (broker + controller each) on their own Docker network. They are started
/// together: a node only reports "started" once the controller quorum (2 of 3) has formed.
/// Dropping the containers removes them, and the network with the last one.
async fn kafka_cluster() -> (Vec<ContainerAsync<GenericImage>>, String) {
    let network = unique("tweetpipe-kafka-net");
    let base = unique("tweetpipe-kafka");
    let names: Vec<String> = (1..=settings::KAFKA_NODES)
        .map(|n| format!("{base}-{n}"))
        .collect();
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let starts = (1..=settings::KAFKA_NODES).map(|n| {
        let i = n as usize - 1;
        let mut req = GenericImage::new(settings::KAFKA_IMAGE, settings::KAFKA_TAG)
            .with_wait_for(WaitFor::message_on_stdout(settings::KAFKA_READY_LOG))
            .with_network(network.clone())
            .with_container_name(names[i].clone())
            .with_mapped_port(
                ports[i],
                ContainerPort::Tcp(settings::KAFKA_HOST_LISTENER_PORT),
            )
            .with_startup_timeout(STARTUP);
        for (k, v) in settings::kafka_env(n, &names, ports[i]) {
            req = req.with_env_var(k, v);
        }
        req.start()
    });
    let mut nodes = Vec::new();
    for r in futures_util::future::join_all(starts).await {
        nodes.push(r.expect("start an apache/kafka node (is Docker running?)"));
    }
    let brokers = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    (nodes, brokers)
}

/// One Redpanda node in dev-container mode.
async fn redpanda() -> (ContainerAsync<GenericImage>, String) {
    let name = unique("tweetpipe-redpanda");
    let port = free_port();
    let node = GenericImage::new(settings::REDPANDA_IMAGE, settings::REDPANDA_TAG)
        .with_wait_for(WaitFor::message_on_stderr(settings::REDPANDA_READY_LOG))
        .with_container_name(name.clone())
        .with_mapped_port(
            port,
            ContainerPort::Tcp(settings::REDPANDA_HOST_LISTENER_PORT),
        )
        .with_cmd(settings::redpanda_args(&name, port))
        .with_startup_timeout(STARTUP)
        .start()
        .await
        .expect("start redpanda (is Docker running?)");
    (node, format!("127.0.0.1:{port}"))
}

/// The tweet ids (`id_str`) of the sample stream, in file order; deletion notices excluded.
fn sample_ids(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut ids = Vec::new();
    for line in reader.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v.get("delete").is_none() {
            ids.push(
                v["id_str"]
                    .as_str()
                    .expect("a tweet has id_str")
                    .to_string(),
            );
        }
    }
    ids
}

/// How many times each tweet id occurs in the `tweets-*` files of `dir`.
fn output_ids(dir: &Path) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("tweets-") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: bad line {e}: {line}"));
            let id = v["id"].as_str().expect("output id is a string").to_string();
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

/// topic create → produce the sample → consume; every tweet id exactly once in the output.
async fn produce_and_consume(brokers: &str, replication_factor: u32) {
    let topic = topic("containers");
    let rf = replication_factor.to_string();
    let r = run(
        tweetpipe(&[
            "topic",
            "create",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--partitions",
            "6",
            "--replication-factor",
            &rf,
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "topic create failed: {}", r.stderr);

    let sample = support::root().join("tests/data/sample/tweets.jsonl.gz");
    let r = run(
        tweetpipe(&[
            "produce",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--from-file",
            sample.to_str().unwrap(),
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "produce failed: {}", r.stderr);

    let out = tempfile::tempdir().unwrap();
    let r = run(
        tweetpipe(&[
            "consume",
            "--brokers",
            brokers,
            "--topic",
            &topic,
            "--group",
            &topic,
            "--output",
            out.path().to_str().unwrap(),
            "--idle-exit",
            "5s",
            "--stats-interval",
            "0s",
        ]),
        LIMIT,
    )
    .await;
    assert_eq!(r.code, 0, "consume failed: {}", r.stderr);

    let expected = sample_ids(&sample);
    assert_eq!(expected.len(), 5_000, "the sample holds 5,000 tweets");
    let expected: BTreeSet<String> = expected.into_iter().collect();
    let seen = output_ids(out.path());
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "tweets written more than once: {twice:?}");
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "tweets missing from the output: {missing:?}"
    );
    let extra: Vec<_> = seen
        .keys()
        .filter(|id| !expected.contains(*id))
        .take(5)
        .collect();
    assert!(extra.is_empty(), "tweets not in the sample: {extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (apache/kafka image); see the README"]
async fn apache_kafka_kraft_three_nodes_every_tweet_once() {
    let (_nodes, brokers) = kafka_cluster().await;
    produce_and_consume(&brokers, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (redpanda image); see the README"]
async fn redpanda_every_tweet_once() {
    let (_node, brokers) = redpanda().await;
    produce_and_consume(&brokers, 1).await;
}

// Consumer groups: what tansu 0.6.0 cannot show (docs/consumer-groups.md). Scenarios in
// tests/support/group.rs; tests/group.rs runs the rest of them on tansu.

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (apache/kafka image); see docs/testing.md"]
async fn apache_kafka_member_restarted_at_once_after_sigkill() {
    let (_nodes, brokers) = kafka_cluster().await;
    support::group::restart_at_once_after_sigkill(&brokers, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (apache/kafka image); see docs/testing.md"]
async fn apache_kafka_fences_a_frozen_member() {
    let (_nodes, brokers) = kafka_cluster().await;
    support::group::frozen_member_is_fenced(&brokers, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (redpanda image); see docs/testing.md"]
async fn redpanda_member_restarted_at_once_after_sigkill() {
    let (_node, brokers) = redpanda().await;
    support::group::restart_at_once_after_sigkill(&brokers, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (redpanda image); see docs/testing.md"]
async fn redpanda_fences_a_frozen_member() {
    let (_node, brokers) = redpanda().await;
    support::group::frozen_member_is_fenced(&brokers, 1).await;
}

/// `${VAR:-default}` → `default`, as docker compose expands it when VAR is unset.
fn compose_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("closing }");
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The compose files in a shape good enough for these files only: per service, its image, its
/// `environment:` map, its `command:` list and its published host port (defaults expanded).
#[derive(Default, Debug)]
struct Service {
    image: String,
    env: BTreeMap<String, String>,
    command: Vec<String>,
    host_port: Option<u16>,
}

fn parse_compose(path: &Path) -> BTreeMap<String, Service> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let unquote = |s: &str| compose_defaults(s.trim().trim_matches('"'));
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let (mut current, mut section) = (String::new(), String::new());
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        match indent {
            2 if t.ends_with(':') => {
                current = t.trim_end_matches(':').to_string();
                services.entry(current.clone()).or_default();
            }
            4 => {
                section = t.split(':').next().unwrap().to_string();
                if let Some(image) = t.strip_prefix("image: ") {
                    services.get_mut(&current).unwrap().image = image.to_string();
                }
            }
            6 => {
                let svc = services.get_mut(&current).unwrap();
                match section.as_str() {
                    "environment" => {
                        let (k, v) = t.split_once(": ").expect("KEY: value");
                        svc.env.insert(k.to_string(), unquote(v));
                    }
                    "command" => svc.command.push(unquote(t.strip_prefix("- ").unwrap())),
                    "ports" => {
                        // "127.0.0.1:HOST:CONTAINER"
                        let p = unquote(t.strip_prefix("- ").unwrap());
                        let host = p.rsplit(':').nth(1).unwrap();
                        svc.host_port = Some(host.parse().unwrap());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    services
}

/// The compose files (`scripts/test-containers`) and `testcontainers/settings.rs` (this file's
/// Docker tests) describe the same clusters. Needs no Docker.
#[test]
fn compose_files_match_the_settings() {
    let dir = support::root().join("testcontainers");

    let kafka = parse_compose(&dir.join("kafka.yml"));
    let names: Vec<String> = (1..=settings::KAFKA_NODES)
        .map(|n| format!("kafka-{n}"))
        .collect();
    assert_eq!(
        kafka.keys().cloned().collect::<Vec<_>>(),
        names,
        "kafka.yml has one service per node"
    );
    for (i, name) in names.iter().enumerate() {
        let svc = &kafka[name];
        assert_eq!(
            svc.image,
            format!("{}:{}", settings::KAFKA_IMAGE, settings::KAFKA_TAG),
            "{name}"
        );
        let port = svc.host_port.expect("a published port");
        let want: BTreeMap<String, String> = settings::kafka_env(i as u32 + 1, &names, port)
            .into_iter()
            .collect();
        assert_eq!(svc.env, want, "environment of {name} in kafka.yml");
    }

    let redpanda = parse_compose(&dir.join("redpanda.yml"));
    let svc = &redpanda["redpanda"];
    assert_eq!(
        svc.image,
        format!("{}:{}", settings::REDPANDA_IMAGE, settings::REDPANDA_TAG)
    );
    let port = svc.host_port.expect("a published port");
    assert_eq!(svc.command, settings::redpanda_args("redpanda", port));
}
