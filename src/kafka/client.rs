//! rskafka, for producing, fetching and listing offsets, with the limits it does not set
//! itself: a time limit on every call (it has no connect or request timeout) and a deadline on
//! its internal retries (its back-off has none by default, so a dead broker would be retried
//! forever).

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;

use super::connection::connect_any;
use super::error::limited;
use super::{Cluster, Error};

/// rskafka's retry policy: short first waits, capped, and bounded by `deadline` so a call
/// returns an error instead of retrying forever.
fn backoff(deadline: Duration) -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
        deadline: Some(deadline),
    }
}

/// Connects rskafka to the cluster, with TLS and SASL as configured.
///
/// rskafka retries a refused login (certificate, SASL) until its deadline and then reports
/// only that time ran out; our own connection fails at once with the broker's reason. So the
/// first contact is ours: one extra connection at start, and errors a user can act on
/// ([`Error::is_retryable`] tells a refusal from an unreachable cluster).
pub(crate) async fn connect(cluster: &Cluster) -> Result<Client, Error> {
    drop(connect_any(&cluster.brokers, cluster.timeout, &cluster.security).await?);
    let mut builder = ClientBuilder::new(cluster.brokers.clone())
        .client_id(concat!("tweetpipe/", env!("CARGO_PKG_VERSION")))
        .backoff_config(backoff(cluster.timeout));
    if let Some(tls) = &cluster.security.tls {
        builder = builder.tls_config(Arc::clone(tls));
    }
    if let Some(sasl) = cluster.security.rskafka_sasl() {
        builder = builder.sasl_config(sasl);
    }
    let what = format!(
        "connecting to Kafka at {} ({})",
        cluster.brokers_text(),
        cluster.security.describe()
    );
    limited(what, cluster.timeout, builder.build()).await
}

/// A client for each of `partitions` partitions of `topic`.
pub(crate) async fn partition_clients(
    client: &Client,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Vec<Arc<PartitionClient>>, Error> {
    let mut out = Vec::with_capacity(partitions.len());
    for &p in partitions {
        let pc = limited(
            format!("opening partition {p} of {topic}"),
            timeout,
            client.partition_client(topic.to_string(), p, UnknownTopicHandling::Retry),
        )
        .await?;
        out.push(Arc::new(pc));
    }
    Ok(out)
}
