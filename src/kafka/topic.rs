//! Making sure the topic exists before producing. Brokers without auto-create (tansu, many
//! managed clusters) make naive clients wait forever on a missing topic; we create it with
//! the configured partitions and replication factor instead, and never wait unbounded.

use std::time::{Duration, Instant};

use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::Client;

use super::client::limited;
use crate::error::{Error, Result};

/// Returns the topic's partition count, creating the topic first when it does not exist.
pub async fn ensure(
    client: &Client,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    timeout: Duration,
) -> Result<i32> {
    if let Some(n) = partition_count(client, topic, timeout).await? {
        return Ok(n);
    }
    if partitions < 1 {
        return Err(Error::usage(format!(
            "--partitions must be at least 1, got {partitions}"
        )));
    }
    if replication_factor < 1 {
        return Err(Error::usage(format!(
            "--replication-factor must be at least 1, got {replication_factor}"
        )));
    }
    tracing::info!(
        topic,
        partitions,
        replication_factor,
        "topic does not exist; creating it"
    );
    let controller = client.controller_client().map_err(|e| {
        Error::runtime(format!(
            "cannot reach the Kafka controller to create topic {topic:?}: {e}"
        ))
    })?;
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    match tokio::time::timeout(timeout, controller.create_topic(topic, partitions, replication_factor, timeout_ms)).await {
        Ok(Ok(())) => {}
        Ok(Err(KafkaError::ServerError { protocol_error: ProtocolError::TopicAlreadyExists, .. })) => {}
        Ok(Err(KafkaError::ServerError { protocol_error: ProtocolError::InvalidReplicationFactor, error_message, .. })) => {
            return Err(Error::usage(format!(
                "cannot create topic {topic:?}: replication factor {replication_factor} is invalid ({}); --replication-factor must not exceed the number of brokers",
                error_message.unwrap_or_default()
            )))
        }
        Ok(Err(KafkaError::ServerError { protocol_error: ProtocolError::InvalidTopicException, error_message, .. })) => {
            return Err(Error::usage(format!(
                "--topic {topic:?} is not a valid topic name ({}); use letters, digits, '.', '_' and '-'",
                error_message.unwrap_or_default()
            )))
        }
        Ok(Err(e)) => return Err(Error::runtime(format!("cannot create topic {topic:?}: {e}"))),
        Err(_) => return Err(Error::runtime(format!("creating topic {topic:?}: no answer within {timeout:?}"))),
    }
    // Metadata can lag behind creation; wait (bounded) until the topic is visible.
    let started = Instant::now();
    loop {
        if let Some(n) = partition_count(client, topic, timeout).await? {
            return Ok(n);
        }
        if started.elapsed() > timeout {
            return Err(Error::runtime(format!(
                "topic {topic:?} was created but did not appear in metadata within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn partition_count(
    client: &Client,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>> {
    let topics = limited("listing topics", timeout, client.list_topics())
        .await
        .map_err(Error::runtime)?;
    Ok(topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.len() as i32)
        .filter(|n| *n > 0))
}
