//! The topic: creating it (with its configs), making sure it exists before producing, and
//! describing it. One path creates topics, whether `tweetpipe topic create` asks or `produce`
//! finds the topic missing: brokers without auto-create (tansu, many managed clusters) make
//! naive clients wait forever on a missing topic, and rskafka's own CreateTopics carries no
//! configs, so both go through CreateTopics on our own connection, sent to the controller as
//! Kafka requires. Metadata and DescribeConfigs can be answered by any broker.

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::connection::{connect_any, Connection};
use super::{Cluster, Error};
use crate::backoff::Retry;

/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

/// What a topic should be created with.
#[derive(Debug, Clone)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
    /// Topic configs (`retention.ms`, …), in the order given.
    pub(crate) configs: Vec<(String, String)>,
}

/// What the cluster says a new topic got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Created {
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
}

/// A topic as Metadata and DescribeConfigs show it.
#[derive(Debug)]
pub(crate) struct Description {
    pub(crate) partitions: Vec<PartitionInfo>,
    /// (node id, host, port) of every broker.
    pub(crate) brokers: Vec<(i32, String, i32)>,
    /// Asked after the partitions, so a broker without DescribeConfigs still shows them.
    pub(crate) configs: Result<Vec<ConfigEntry>, Error>,
}

#[derive(Debug)]
pub(crate) struct PartitionInfo {
    pub(crate) index: i32,
    /// `None`: no leader right now.
    pub(crate) leader: Option<i32>,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) offline: Vec<i32>,
    /// The partition's error code, 0 for none.
    pub(crate) error: i16,
}

#[derive(Debug)]
pub(crate) struct ConfigEntry {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) sensitive: bool,
    /// DescribeConfigs `config_source` (1 = set on this topic).
    pub(crate) source: i8,
}

/// Creates the topic. A topic that exists already is [`Error::TopicExists`]: creating never
/// changes an existing topic.
pub(crate) async fn create(cluster: &Cluster, spec: &TopicSpec) -> Result<Created, Error> {
    let mut boot = connect_any(&cluster.brokers, cluster.timeout, &cluster.security).await?;
    create_on(&mut boot, cluster, spec).await
}

/// The topic's partition count, creating the topic first when it does not exist.
pub(crate) async fn ensure(cluster: &Cluster, spec: &TopicSpec) -> Result<i32, Error> {
    let mut boot = connect_any(&cluster.brokers, cluster.timeout, &cluster.security).await?;
    if let Some(n) = partition_count(&mut boot, &spec.name).await? {
        return Ok(n);
    }
    tracing::info!(
        topic = spec.name,
        partitions = spec.partitions,
        replication_factor = spec.replication_factor,
        "topic does not exist; creating it"
    );
    match create_on(&mut boot, cluster, spec).await {
        // Another producer created it meanwhile: as good.
        Ok(_) | Err(Error::TopicExists { .. }) => {}
        Err(e) => return Err(e),
    }
    // Metadata can lag behind creation; wait (bounded) until the topic is visible.
    let mut retry = Retry::new(Duration::from_millis(100), Duration::from_millis(500))
        .until(Instant::now() + cluster.timeout);
    loop {
        if let Some(n) = partition_count(&mut boot, &spec.name).await? {
            return Ok(n);
        }
        if !retry.wait().await {
            return Err(Error::Unexpected(format!(
                "topic {:?} was created but did not appear in metadata within {:?}",
                spec.name, cluster.timeout
            )));
        }
    }
}

async fn create_on(
    boot: &mut Connection,
    cluster: &Cluster,
    spec: &TopicSpec,
) -> Result<Created, Error> {
    let topic = &spec.name;
    // The broker gets 3/4 of our time limit to create the topic, so its own answer (success,
    // or REQUEST_TIMED_OUT) arrives before we give up waiting for it.
    let broker_timeout_ms =
        i32::try_from((cluster.timeout * 3 / 4).as_millis()).unwrap_or(i32::MAX);
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(broker_timeout_ms)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.clone())))
            .with_num_partitions(spec.partitions)
            .with_replication_factor(spec.replication_factor)
            .with_configs(
                spec.configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect(),
            )]);
    // NOT_CONTROLLER means the controller moved between our Metadata and CreateTopics; ask
    // again, within the time limit.
    let mut retry = Retry::new(Duration::from_millis(200), Duration::from_secs(1))
        .until(Instant::now() + cluster.timeout);
    let result = loop {
        let mut controller = controller(boot, cluster).await?;
        let conn = controller.as_mut().unwrap_or(boot);
        let what = format!("creating topic {topic:?} on {}", conn.addr());
        let resp = match conn.request(&req).await {
            Ok(r) => r,
            Err(source) => return Err(Error::Request { what, source }),
        };
        let Some(result) = resp.topics.into_iter().find(|t| t.name.0.as_str() == topic) else {
            return Err(Error::Unexpected(format!(
                "{what}: the answer does not mention the topic"
            )));
        };
        if result.error_code == ResponseError::NotController.code() && retry.wait().await {
            continue;
        }
        break result;
    };
    created(result, cluster, spec)
}

/// What CreateTopics answered for the topic: what it got, or why it was refused.
fn created(
    result: CreatableTopicResult,
    cluster: &Cluster,
    spec: &TopicSpec,
) -> Result<Created, Error> {
    let topic = &spec.name;
    let message = result.error_message.map(|m| m.to_string());
    match ResponseError::try_from_code(result.error_code) {
        None => {}
        Some(ResponseError::TopicAlreadyExists) => {
            return Err(Error::TopicExists {
                topic: topic.clone(),
                brokers: cluster.brokers_text(),
            })
        }
        Some(
            ResponseError::InvalidReplicationFactor
            | ResponseError::InvalidPartitions
            | ResponseError::InvalidReplicaAssignment
            | ResponseError::InvalidConfig
            | ResponseError::PolicyViolation
            | ResponseError::InvalidTopicException,
        ) => {
            return Err(Error::TopicRefused {
                topic: topic.clone(),
                code: result.error_code,
                message,
            })
        }
        Some(_) => {
            return Err(Error::Broker {
                what: format!("creating topic {topic:?}"),
                code: result.error_code,
                message,
            })
        }
    }
    // Version 5+ answers with what the topic actually got; older versions (and brokers that
    // leave them out) leave these at -1, and the request's values stand.
    Ok(Created {
        partitions: Some(result.num_partitions)
            .filter(|n| *n > 0)
            .unwrap_or(spec.partitions),
        replication_factor: Some(result.replication_factor)
            .filter(|n| *n > 0)
            .unwrap_or(spec.replication_factor),
    })
}

/// Metadata: the cluster's brokers and controller, and `topics` (none: `&[]`).
async fn metadata(conn: &mut Connection, topics: &[&str]) -> Result<MetadataResponse, Error> {
    let what = format!("asking {} for metadata", conn.addr());
    let version = conn
        .version::<MetadataRequest>()
        .map_err(|source| Error::Request {
            what: what.clone(),
            source,
        })?;
    let mut req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
            })
            .collect(),
    ));
    if version == 0 && topics.is_empty() {
        // In version 0 an empty list means all topics; there is no way to ask for none.
        req.topics = Some(Vec::new());
    }
    if version >= 4 {
        // Asking about a topic must never create it (brokers with auto-create on would).
        req.allow_auto_topic_creation = false;
    }
    conn.request(&req)
        .await
        .map_err(|source| Error::Request { what, source })
}

/// The topic's partition count; `None` when it does not exist.
pub(crate) async fn partition_count(
    conn: &mut Connection,
    topic: &str,
) -> Result<Option<i32>, Error> {
    let md = metadata(conn, &[topic]).await?;
    let Some(t) = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Ok(None);
    };
    match ResponseError::try_from_code(t.error_code) {
        None => Ok(Some(t.partitions.len() as i32).filter(|n| *n > 0)),
        Some(ResponseError::UnknownTopicOrPartition | ResponseError::LeaderNotAvailable) => {
            Ok(None)
        }
        Some(ResponseError::InvalidTopicException) => Err(Error::TopicRefused {
            topic: topic.to_string(),
            code: t.error_code,
            message: None,
        }),
        Some(_) => Err(Error::Broker {
            what: format!("asking for topic {topic:?}"),
            code: t.error_code,
            message: None,
        }),
    }
}

/// A connection to the controller, or `None` when `boot` is the controller (or the cluster
/// names none, in which case any broker forwards the request).
async fn controller(boot: &mut Connection, cluster: &Cluster) -> Result<Option<Connection>, Error> {
    let md = metadata(boot, &[]).await?;
    let Some(ctrl) = md.brokers.iter().find(|b| b.node_id == md.controller_id) else {
        return Ok(None);
    };
    let addr = format!("{}:{}", ctrl.host, ctrl.port);
    if addr == boot.addr() {
        return Ok(None);
    }
    Connection::connect(&addr, cluster.timeout, &cluster.security)
        .await
        .map(Some)
        .map_err(|source| Error::Request {
            what: format!(
                "cannot reach the Kafka controller (broker {}) at {addr}",
                ctrl.node_id.0
            ),
            source,
        })
}

/// Partitions, brokers and configs of `topic`.
pub(crate) async fn describe(cluster: &Cluster, topic: &str) -> Result<Description, Error> {
    let mut conn = connect_any(&cluster.brokers, cluster.timeout, &cluster.security).await?;
    let md = metadata(&mut conn, &[topic]).await?;
    let missing = || Error::UnknownTopic {
        topic: topic.to_string(),
        brokers: cluster.brokers_text(),
    };
    let Some(t) = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
    else {
        return Err(missing());
    };
    match ResponseError::try_from_code(t.error_code) {
        None => {}
        Some(ResponseError::UnknownTopicOrPartition) => return Err(missing()),
        Some(ResponseError::InvalidTopicException) => {
            return Err(Error::TopicRefused {
                topic: topic.to_string(),
                code: t.error_code,
                message: None,
            })
        }
        Some(_) => {
            return Err(Error::Broker {
                what: format!("describing topic {topic:?}"),
                code: t.error_code,
                message: None,
            })
        }
    }
    if t.partitions.is_empty() {
        return Err(missing());
    }
    let mut partitions: Vec<PartitionInfo> = t
        .partitions
        .iter()
        .map(|p| {
            let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect();
            PartitionInfo {
                index: p.partition_index,
                leader: Some(p.leader_id.0).filter(|l| *l >= 0),
                replicas: ids(&p.replica_nodes),
                isr: ids(&p.isr_nodes),
                offline: ids(&p.offline_replicas),
                error: p.error_code,
            }
        })
        .collect();
    partitions.sort_by_key(|p| p.index);
    let brokers = md
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    let configs = describe_configs(&mut conn, topic).await;
    Ok(Description {
        partitions,
        brokers,
        configs,
    })
}

async fn describe_configs(conn: &mut Connection, topic: &str) -> Result<Vec<ConfigEntry>, Error> {
    let what = format!("describing the configs of topic {topic:?}");
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None)]);
    let resp = conn.request(&req).await.map_err(|source| Error::Request {
        what: what.clone(),
        source,
    })?;
    let Some(r) = resp
        .results
        .into_iter()
        .find(|r| r.resource_name.as_str() == topic)
    else {
        return Err(Error::Unexpected(format!(
            "{what}: {} answered without it",
            conn.addr()
        )));
    };
    if r.error_code != 0 {
        return Err(Error::Broker {
            what,
            code: r.error_code,
            message: r.error_message.map(|m| m.to_string()),
        });
    }
    Ok(r.configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            sensitive: c.is_sensitive,
            source: c.config_source,
        })
        .collect())
}
