//! The one place that says which Apache Kafka and Redpanda images the Docker-backed tests use
//! and how they are configured. Two things read it:
//!
//! * `tests/containers.rs` (testcontainers-rs, `cargo test --features testcontainers`) builds
//!   its containers from these functions (`#[path]`-included, so it is plain Rust, no crate);
//! * the compose files beside it (`kafka.yml`, `redpanda.yml`, used by
//!   `scripts/test-containers`) spell the same settings out in YAML, and the test
//!   `compose_files_match_the_settings` in `tests/containers.rs` (it needs no Docker, CI runs
//!   it) fails when the two drift apart: change both together.
//!
//! Sources: the apache/kafka image's KRaft examples (`docker/examples/.../cluster/combined/
//! plaintext/docker-compose.yml` in the Kafka repository: every `KAFKA_*` variable becomes a
//! `server.properties` entry, `CLUSTER_ID` formats the storage, `KAFKA_HEAP_OPTS` is passed to
//! the JVM) and Redpanda's Docker quickstart (`redpanda start --mode dev-container`).

/// Apache Kafka, JVM image (the GraalVM `apache/kafka-native` one is not meant for clusters).
pub const KAFKA_IMAGE: &str = "apache/kafka";
pub const KAFKA_TAG: &str = "4.1.1";
/// Brokers in the Kafka cluster; each is broker and KRaft controller ("combined" mode).
pub const KAFKA_NODES: u32 = 3;
/// Any 16-byte base64url id; all nodes of one cluster share it.
pub const KAFKA_CLUSTER_ID: &str = "4L6g3nShT-eMCtK--X86sw";
/// Container port of the listener for clients on the host (advertised as 127.0.0.1:HOST_PORT).
pub const KAFKA_HOST_LISTENER_PORT: u16 = 9092;
/// Container port of the listener the brokers use among themselves (advertised by name).
pub const KAFKA_INTERNAL_PORT: u16 = 19092;
/// Container port of the KRaft controller listener.
pub const KAFKA_CONTROLLER_PORT: u16 = 9093;
/// What a node logs (stdout) once its broker serves requests.
pub const KAFKA_READY_LOG: &str = "Kafka Server started";

/// Redpanda, one node, in dev-container mode (developer_mode, overprovisioned, no fsync).
pub const REDPANDA_IMAGE: &str = "docker.redpanda.com/redpandadata/redpanda";
pub const REDPANDA_TAG: &str = "v25.1.9";
/// Container port of the Kafka API listener for clients on the host.
pub const REDPANDA_HOST_LISTENER_PORT: u16 = 19092;
/// Container port of the Kafka API listener inside the Docker network.
pub const REDPANDA_INTERNAL_PORT: u16 = 9092;
/// What Redpanda logs (stderr) once it serves requests.
pub const REDPANDA_READY_LOG: &str = "Successfully started Redpanda!";

/// The environment of Kafka node `node` (1-based) of a cluster whose nodes are reachable in
/// the Docker network as `hostnames[0..]`, and from the host as `127.0.0.1:host_port`.
pub fn kafka_env(node: u32, hostnames: &[String], host_port: u16) -> Vec<(String, String)> {
    let me = &hostnames[node as usize - 1];
    let voters = hostnames
        .iter()
        .enumerate()
        .map(|(i, h)| format!("{}@{h}:{KAFKA_CONTROLLER_PORT}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let rf = hostnames.len().min(3).to_string();
    let min_isr = if hostnames.len() >= 3 { "2" } else { "1" };
    [
        ("CLUSTER_ID", KAFKA_CLUSTER_ID.to_string()),
        ("KAFKA_NODE_ID", node.to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".to_string()),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", voters),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".to_string()),
        (
            "KAFKA_LISTENERS",
            format!(
                "INTERNAL://:{KAFKA_INTERNAL_PORT},CONTROLLER://:{KAFKA_CONTROLLER_PORT},HOST://:{KAFKA_HOST_LISTENER_PORT}"
            ),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("INTERNAL://{me}:{KAFKA_INTERNAL_PORT},HOST://127.0.0.1:{host_port}"),
        ),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,HOST:PLAINTEXT".to_string(),
        ),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL".to_string()),
        // The internal topics replicated like a production cluster's (3 nodes: 3, min ISR 2).
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", rf.clone()),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", rf.clone()),
        (
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            min_isr.to_string(),
        ),
        ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", rf),
        (
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
            min_isr.to_string(),
        ),
        // A consumer group's first join completes at once instead of after 3 s.
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".to_string()),
        // Topics are made by `tweetpipe topic create` / produce, never by a metadata request.
        ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false".to_string()),
        ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs".to_string()),
        // Three JVMs on a laptop: 512 MiB heap each instead of the default 1 GiB.
        ("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The arguments (after the image's entrypoint) of a one-node Redpanda reachable in the
/// Docker network as `hostname` and from the host as `127.0.0.1:host_port`.
pub fn redpanda_args(hostname: &str, host_port: u16) -> Vec<String> {
    [
        "redpanda".to_string(),
        "start".to_string(),
        "--mode".to_string(),
        "dev-container".to_string(),
        "--smp".to_string(),
        "1".to_string(),
        "--memory".to_string(),
        "1G".to_string(),
        "--kafka-addr".to_string(),
        format!(
            "internal://0.0.0.0:{REDPANDA_INTERNAL_PORT},external://0.0.0.0:{REDPANDA_HOST_LISTENER_PORT}"
        ),
        "--advertise-kafka-addr".to_string(),
        format!("internal://{hostname}:{REDPANDA_INTERNAL_PORT},external://127.0.0.1:{host_port}"),
    ]
    .into()
}
