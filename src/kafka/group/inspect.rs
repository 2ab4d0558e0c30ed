//! What an operator reads about consumer groups (`tweetpipe group list` and `group describe`):
//! the data, gathered from the brokers; the command formats it.
//!
//! - ListGroups goes to every broker: each coordinator knows only its own groups.
//! - DescribeGroups (to the group's coordinator) gives the state, the chosen assignor and the
//!   members with their client ids, hosts, subscriptions and assignments, decoded from the
//!   consumer protocol's bytes.
//! - OffsetFetch (all topics) gives the committed offsets, ListOffsets to each partition's
//!   leader the log ends, and so the lag.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribedGroupMember;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::cluster;
use super::error::GroupError;
use super::offsets::{find_coordinator, left};
use super::protocol::{decode_assignment, decode_subscription, Assignment, PROTOCOL_TYPE};
use crate::kafka::connection::{Connection, RequestError};
use crate::kafka::security::Security;

/// One group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ListedGroup {
    pub group_id: String,
    /// `consumer` for consumer groups; other protocol types (Connect workers) exist too.
    pub protocol_type: String,
    /// Stable, PreparingRebalance, CompletingRebalance, Empty, Dead (ListGroups v4+), or
    /// whatever a broker says ("Unknown" on tansu).
    pub state: Option<String>,
    /// The broker that answered: the group's coordinator.
    pub coordinator: String,
}

/// One member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The subscribed topics; `None` when the member is not a consumer-protocol member or its
    /// bytes are unreadable.
    pub topics: Option<Vec<String>>,
    /// Its partitions (empty when the broker keeps none to show: tansu 0.6.0 never does).
    pub assignment: Assignment,
}

/// One partition of a topic the group reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionState {
    pub topic: String,
    pub partition: i32,
    /// The next offset the group will read, if it committed one.
    pub committed: Option<i64>,
    /// Where the partition's log ends (high watermark), if its leader answered.
    pub log_end: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub owner: Option<String>,
}

impl PartitionState {
    /// Records not yet consumed by the group; unknown without a commit or a log end.
    pub(crate) fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDescription {
    pub group_id: String,
    pub coordinator: String,
    /// The group's state as the coordinator names it ("Dead" for a group it does not know).
    pub state: String,
    pub protocol_type: String,
    /// The assignor in use (DescribeGroups' protocol data), empty when none.
    pub assignor: String,
    pub members: Vec<MemberDescription>,
    /// Every partition of every topic the group committed offsets for, or its members
    /// subscribe to, ordered by topic and partition.
    pub partitions: Vec<PartitionState>,
}

fn request_error(context: String) -> impl FnOnce(RequestError) -> GroupError {
    move |source| GroupError::Request { context, source }
}

/// Every group of the cluster, ordered by id.
pub(crate) async fn list_groups(
    brokers: &[String],
    security: &Security,
    timeout: Duration,
) -> Result<Vec<ListedGroup>, GroupError> {
    let mut boot = crate::kafka::connection::connect_any(brokers, timeout, security).await?;
    let addrs = all_brokers(&mut boot, timeout).await?;
    let mut out = BTreeSet::new();
    for addr in addrs {
        let mut conn = if addr == boot.addr() {
            None
        } else {
            Some(
                Connection::connect(&addr, timeout, security)
                    .await
                    .map_err(request_error(format!(
                        "connecting to broker {addr} to list its groups"
                    )))?,
            )
        };
        let conn = conn.as_mut().unwrap_or(&mut boot);
        let version = conn
            .version::<ListGroupsRequest>()
            .map_err(request_error(format!("listing the groups of {addr}")))?;
        let mut req = ListGroupsRequest::default();
        if version >= 5 {
            // Classic groups only: the protocol this member speaks, and what it can describe.
            req.types_filter = vec![StrBytes::from_static_str("classic")];
        }
        let resp = conn
            .request_within(&req, timeout)
            .await
            .map_err(request_error(format!("listing the groups of {addr}")))?;
        if resp.error_code != 0 {
            return Err(GroupError::Broker {
                context: format!("listing the groups of {addr}"),
                code: resp.error_code,
            });
        }
        for g in resp.groups {
            out.insert(ListedGroup {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (version >= 4).then(|| g.group_state.to_string()),
                coordinator: addr.clone(),
            });
        }
    }
    Ok(out.into_iter().collect())
}

async fn all_brokers(conn: &mut Connection, timeout: Duration) -> Result<Vec<String>, GroupError> {
    use kafka_protocol::messages::metadata_request::MetadataRequest;
    let version = conn
        .version::<MetadataRequest>()
        .map_err(request_error("asking for the cluster's brokers".into()))?;
    // Version 0 has no way to ask for no topics (empty = all); the answer is only longer.
    let req = MetadataRequest::default().with_topics((version > 0).then(Vec::new));
    let resp = conn
        .request_within(&req, timeout)
        .await
        .map_err(request_error("asking for the cluster's brokers".into()))?;
    Ok(resp
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host, b.port))
        .collect())
}

/// Everything about `group`, from its coordinator and the partitions' leaders.
pub(crate) async fn describe_group(
    brokers: &[String],
    security: &Security,
    group: &str,
    timeout: Duration,
) -> Result<GroupDescription, GroupError> {
    let deadline = Instant::now() + timeout;
    let cluster = crate::kafka::Cluster {
        brokers: brokers.to_vec(),
        timeout,
        security: security.clone(),
    };
    let mut conn = find_coordinator(&cluster, group, &[], deadline).await?;
    let context = format!("describing group {group:?} at {}", conn.addr());
    let req = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let resp = conn
        .request_within(&req, left(deadline))
        .await
        .map_err(request_error(context.clone()))?;
    let Some(g) = resp
        .groups
        .into_iter()
        .find(|g| g.group_id.0.as_str() == group)
    else {
        return Err(GroupError::Protocol(format!(
            "{context}: the answer does not mention the group"
        )));
    };
    let mut state = g.group_state.to_string();
    match ResponseError::try_from_code(g.error_code) {
        None => {}
        Some(ResponseError::GroupIdNotFound) => state = "Dead".into(),
        Some(_) => {
            return Err(GroupError::Broker {
                context,
                code: g.error_code,
            })
        }
    }
    let consumer = g.protocol_type.as_str() == PROTOCOL_TYPE;
    let members: Vec<MemberDescription> =
        g.members.iter().map(|m| member_of(m, consumer)).collect();
    let committed = committed_offsets(&mut conn, group, left(deadline)).await?;
    let mut topics: BTreeSet<String> = committed.keys().map(|(t, _)| t.clone()).collect();
    for m in &members {
        topics.extend(m.topics.iter().flatten().cloned());
        topics.extend(m.assignment.keys().cloned());
    }
    let topics: Vec<String> = topics.into_iter().collect();
    let layout = cluster::layout(&mut conn, &topics, left(deadline)).await?;
    let ends = cluster::log_end_offsets(&layout, security, left(deadline)).await;
    Ok(GroupDescription {
        group_id: group.to_string(),
        coordinator: conn.addr().to_string(),
        state,
        protocol_type: g.protocol_type.to_string(),
        assignor: g.protocol_data.to_string(),
        partitions: partition_states(&members, &committed, &layout, &ends),
        members,
    })
}

/// One member of DescribeGroups' answer, its consumer-protocol bytes decoded.
fn member_of(m: &DescribedGroupMember, consumer: bool) -> MemberDescription {
    MemberDescription {
        member_id: m.member_id.to_string(),
        instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: m.client_id.to_string(),
        client_host: m.client_host.to_string(),
        topics: consumer
            .then(|| decode_subscription(&m.member_metadata).ok())
            .flatten()
            .map(|s| s.topics),
        assignment: if consumer {
            decode_assignment(&m.member_assignment).unwrap_or_default()
        } else {
            Assignment::new()
        },
    }
}

/// Every partition the group committed for or its members read, with its committed offset,
/// log end and owner.
fn partition_states(
    members: &[MemberDescription],
    committed: &BTreeMap<(String, i32), i64>,
    layout: &cluster::Layout,
    ends: &BTreeMap<(String, i32), i64>,
) -> Vec<PartitionState> {
    let mut owners: BTreeMap<(&str, i32), &str> = BTreeMap::new();
    for m in members {
        for (t, ps) in &m.assignment {
            for &p in ps {
                owners.insert((t, p), &m.member_id);
            }
        }
    }
    let mut keys: BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    for (t, ps) in &layout.topics {
        keys.extend(ps.keys().map(|&p| (t.clone(), p)));
    }
    keys.into_iter()
        .map(|(topic, partition)| PartitionState {
            committed: committed.get(&(topic.clone(), partition)).copied(),
            log_end: ends.get(&(topic.clone(), partition)).copied(),
            owner: owners
                .get(&(topic.as_str(), partition))
                .map(|m| m.to_string()),
            topic,
            partition,
        })
        .collect()
}

/// All committed offsets of `group` (OffsetFetch with no topic list: v2+).
async fn committed_offsets(
    conn: &mut Connection,
    group: &str,
    limit: Duration,
) -> Result<BTreeMap<(String, i32), i64>, GroupError> {
    let context = format!(
        "reading the committed offsets of group {group:?} from {}",
        conn.addr()
    );
    let version = conn
        .version::<OffsetFetchRequest>()
        .map_err(request_error(context.clone()))?;
    if version < 2 {
        return Err(GroupError::Usage(format!(
            "{context}: the broker is too old (OffsetFetch v{version}) to list a group's offsets"
        )));
    }
    let mut req = OffsetFetchRequest::default();
    if version >= 8 {
        req.groups = vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None)];
    } else {
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        req.topics = None;
    }
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(request_error(context.clone()))?;
    let mut rows: Vec<(String, i32, i64, i16)> = Vec::new();
    let top = if version >= 8 {
        let Some(g) = resp.groups.iter().find(|g| g.group_id.0.as_str() == group) else {
            return Ok(BTreeMap::new());
        };
        for t in &g.topics {
            rows.extend(t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            }));
        }
        g.error_code
    } else {
        for t in &resp.topics {
            rows.extend(t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            }));
        }
        resp.error_code
    };
    if top != 0 {
        return Err(GroupError::Broker { context, code: top });
    }
    Ok(rows
        .into_iter()
        .filter(|r| r.3 == 0 && r.2 >= 0)
        .map(|(t, p, o, _)| ((t, p), o))
        .collect())
}
