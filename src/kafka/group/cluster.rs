//! What the group code asks of the cluster besides the coordinator: the partitions of topics
//! and who leads them (Metadata: the leader's assignor needs the partition counts), and where
//! each partition's log ends (ListOffsets and a Fetch to each partition's leader: lag in
//! `group describe`).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::GroupError;
use crate::kafka::connection::Connection;
use crate::kafka::security::Security;

/// The topics that exist, with each partition's leader (broker node id, -1 when none), and the
/// brokers' addresses.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    pub topics: BTreeMap<String, BTreeMap<i32, i32>>,
    pub brokers: BTreeMap<i32, String>,
}

impl Layout {
    /// Topic → number of partitions, what the assignors take.
    pub(crate) fn partition_counts(&self) -> BTreeMap<String, i32> {
        self.topics
            .iter()
            .map(|(t, ps)| (t.clone(), ps.len() as i32))
            .collect()
    }
}

/// Metadata for `topics` (never creating one). Topics the broker does not know are absent.
pub(crate) async fn layout(
    conn: &mut Connection,
    topics: &[String],
    limit: Duration,
) -> Result<Layout, GroupError> {
    let addr = conn.addr().to_string();
    let context = || format!("asking {addr} for the partitions of {topics:?}");
    let version = conn
        .version::<MetadataRequest>()
        .map_err(|source| GroupError::Request {
            context: context(),
            source,
        })?;
    if topics.is_empty() {
        return Ok(Layout::default());
    }
    let mut req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
            })
            .collect(),
    ));
    if version >= 4 {
        req.allow_auto_topic_creation = false;
    }
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(|source| GroupError::Request {
            context: context(),
            source,
        })?;
    let mut out = Layout {
        brokers: resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect(),
        ..Layout::default()
    };
    for t in resp.topics {
        let Some(name) = t.name else { continue };
        match ResponseError::try_from_code(t.error_code) {
            None | Some(ResponseError::LeaderNotAvailable) => {}
            Some(ResponseError::UnknownTopicOrPartition) => continue,
            Some(_) => {
                return Err(GroupError::Broker {
                    context: format!("{} (topic {:?})", context(), name.0.as_str()),
                    code: t.error_code,
                })
            }
        }
        out.topics.insert(
            name.0.to_string(),
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect(),
        );
    }
    Ok(out)
}

/// The log-end offset (high watermark) of each partition of `layout`'s topics, asked of each
/// partition's leader. Partitions whose leader is unknown or fails to answer are absent: lag
/// is then shown as unknown rather than the whole description failing.
pub(crate) async fn log_end_offsets(
    layout: &Layout,
    security: &Security,
    limit: Duration,
) -> BTreeMap<(String, i32), i64> {
    let mut by_leader: BTreeMap<i32, Vec<(&str, i32)>> = BTreeMap::new();
    for (topic, partitions) in &layout.topics {
        for (&p, &leader) in partitions {
            by_leader.entry(leader).or_default().push((topic, p));
        }
    }
    let mut out = BTreeMap::new();
    for (leader, partitions) in by_leader {
        let Some(addr) = layout.brokers.get(&leader) else {
            continue;
        };
        let mut conn = match Connection::connect(addr, limit, security).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(broker = %addr, error = %e, "cannot ask for log-end offsets");
                continue;
            }
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t).or_default().push(p);
        }
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(
                                ps.iter()
                                    .map(|&p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_timestamp(-1) // latest
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let mut listed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        match conn.request_within(&req, limit).await {
            Ok(resp) => {
                for t in resp.topics {
                    for p in t.partitions {
                        if p.error_code == 0 && p.offset >= 0 {
                            listed.insert((t.name.0.to_string(), p.partition_index), p.offset);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(broker = %addr, error = %e, "ListOffsets failed");
                continue;
            }
        }
        // tansu's ListOffsets "latest" can lag behind the true end; a fetch from there says
        // where the log really ends (its high watermark). On Kafka the two agree.
        let watermarks = high_watermarks(&mut conn, &listed, limit).await;
        for (key, offset) in listed {
            let end = watermarks.get(&key).copied().unwrap_or(offset).max(offset);
            out.insert(key, end);
        }
    }
    out
}

/// The high watermark of each partition, from one Fetch from the given offsets that waits
/// for nothing and asks for as little as possible. Partitions that fail are absent.
async fn high_watermarks(
    conn: &mut Connection,
    from: &BTreeMap<(String, i32), i64>,
    limit: Duration,
) -> BTreeMap<(String, i32), i64> {
    // v13+ name topics by id only, and tansu 0.6.0 answers v12 with a tagged field that is
    // not valid in v12; v11 names topics and has no tagged fields, and every broker has it.
    conn.cap_version(kafka_protocol::messages::ApiKey::Fetch, 11);
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for ((t, p), &o) in from {
        topics.entry(t).or_default().push(
            FetchPartition::default()
                .with_partition(*p)
                .with_fetch_offset(o)
                .with_partition_max_bytes(1),
        );
    }
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let mut out = BTreeMap::new();
    match conn.request_within(&req, limit).await {
        Ok(resp) => {
            for t in resp.responses {
                for p in t.partitions {
                    if p.error_code == 0 && p.high_watermark >= 0 {
                        out.insert((t.topic.0.to_string(), p.partition_index), p.high_watermark);
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(broker = %conn.addr(), error = %e, "Fetch for the high watermarks failed")
        }
    }
    out
}
