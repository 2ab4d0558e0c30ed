//! Connecting to Kafka with rskafka, with the limits rskafka does not set itself: a time
//! limit on every call (it has no connect or request timeout) and a deadline on its internal
//! retries (its back-off has none by default, so a dead broker would be retried forever).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;

use crate::error::{Error, Result};
use crate::kafka::connection::connect_any_or_refused;
use crate::kafka::security::Security;

/// Splits and checks `--brokers`.
pub fn parse_brokers(brokers: &str) -> Result<Vec<String>> {
    let list: Vec<String> = brokers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if list.is_empty() {
        return Err(Error::usage(
            "--brokers (KAFKA_BROKERS) is empty; give HOST:PORT[,HOST:PORT…], e.g. 127.0.0.1:9092",
        ));
    }
    for b in &list {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(Error::usage(format!(
                "--brokers entry {b:?} is not HOST:PORT; e.g. 127.0.0.1:9092"
            )));
        }
    }
    Ok(list)
}

/// rskafka's retry policy: short first waits, capped, and bounded by `deadline` so a call
/// returns an error instead of retrying forever.
pub fn backoff(deadline: Duration) -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
        deadline: Some(deadline),
    }
}

/// Runs a Kafka call with a time limit; `what` names the call in the error.
pub async fn limited<T, E: std::fmt::Display>(
    what: &str,
    limit: Duration,
    call: impl Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
    }
}

/// Connects rskafka to the cluster, with TLS and SASL as `security` says.
pub async fn connect(brokers: &[String], timeout: Duration, security: &Security) -> Result<Client> {
    connect_or_refused(brokers, timeout, security)
        .await
        .map_err(|(e, _)| e)
}

/// Like [`connect`]; the error also says whether waiting could help (see
/// [`connect_any_or_refused`]).
pub async fn connect_or_refused(
    brokers: &[String],
    timeout: Duration,
    security: &Security,
) -> std::result::Result<Client, (Error, bool)> {
    let mut builder = ClientBuilder::new(brokers.to_vec())
        .client_id(concat!("tweetpipe/", env!("CARGO_PKG_VERSION")))
        .backoff_config(backoff(timeout));
    // rskafka retries a refused login (certificate, SASL) until its deadline and then reports
    // only that time ran out; our own connection fails at once with the broker's reason. So
    // the first contact is ours: one extra connection at start, and errors a user can act on.
    drop(connect_any_or_refused(brokers, timeout, security).await?);
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(Arc::clone(tls));
    }
    if let Some(sasl) = security.rskafka_sasl() {
        builder = builder.sasl_config(sasl);
    }
    limited("connecting", timeout, builder.build())
        .await
        .map_err(|e| {
            let error = Error::runtime(format!(
                "cannot reach Kafka at {} ({}): {e}. {}",
                brokers.join(","),
                security.describe(),
                security.hint()
            ));
            (error, true)
        })
}

pub async fn partition_clients(
    client: &Client,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<Vec<Arc<PartitionClient>>> {
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let pc = limited(
            &format!("opening partition {p} of {topic}"),
            timeout,
            client.partition_client(topic.to_string(), p, UnknownTopicHandling::Retry),
        )
        .await
        .map_err(Error::runtime)?;
        out.push(Arc::new(pc));
    }
    Ok(out)
}
