//! What the library's own tests share: the real test broker (the one `scripts/test` starts
//! and names in `TWEETPIPE_TEST_BROKERS`, else one started here through `scripts/broker`),
//! unique topic and group names, and librdkafka through `tests/rdkafka_client.py`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::kafka::topic::TopicSpec;
use crate::kafka::{Cluster, Security};

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `HOST:PORT` of the test broker.
pub(crate) fn brokers() -> String {
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
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("KAFKA_BROKERS="))
                .expect("scripts/broker prints KAFKA_BROKERS=")
                .to_string()
        })
        .clone()
}

/// The test broker as a [`Cluster`], plaintext, with `timeout` per call.
pub(crate) fn cluster(timeout: Duration) -> Cluster {
    Cluster {
        brokers: vec![brokers()],
        timeout,
        security: Security::default(),
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub(crate) fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Creates `topic` with `partitions` on the test broker.
pub(crate) async fn create_topic(topic: &str, partitions: i32) {
    let spec = TopicSpec {
        name: topic.to_string(),
        partitions,
        replication_factor: 1,
        configs: Vec::new(),
    };
    crate::kafka::topic::create(&cluster(Duration::from_secs(10)), &spec)
        .await
        .expect("create the test topic");
}

#[path = "../tests/support/shared.rs"]
mod shared;

pub(crate) use shared::{rdkafka, silent_broker};
