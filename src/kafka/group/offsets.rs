//! The consumer group's committed offsets, kept in Kafka itself, so that standard tools
//! (kcat, `kafka-consumer-groups`, confluent-kafka's `committed()`) see our position and lag.
//!
//! rskafka has no consumer-group API, so this speaks FindCoordinator, OffsetFetch and
//! OffsetCommit on a [`Connection`] of our own. We commit as a *simple consumer*: generation
//! id -1 and an empty member id, i.e. without joining the group. That is what Kafka offers for
//! clients that assign partitions themselves, and it keeps `consume` free of rebalancing. The
//! price: Kafka refuses such commits while the group has active members (someone else running
//! a subscribing consumer with the same group id), which we report as such.
//!
//! Offsets follow the Kafka convention: the committed offset is the *next* offset to read.
//!
//! Failures: NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS (the
//! group moved or its coordinator is starting) and connection errors make us rediscover the
//! coordinator and retry, with short growing waits, until the time limit of the call; every
//! other error code, top-level or per partition, is reported with the partition it concerns.
//!
//! Adding full group membership later (JoinGroup/SyncGroup/Heartbeat, rebalancing): the
//! identity we commit with is already a value, [`Member`], fixed today to the simple-consumer
//! one. A `GroupMember` would reuse [`OffsetStore`]'s coordinator discovery, send JoinGroup
//! (protocol type `consumer`, subscription encoded with kafka-protocol's
//! `ConsumerProtocolSubscription`), let the leader compute the assignment and distribute it
//! with SyncGroup, then set `member` to the generation and member id it got. Heartbeats need a
//! second coordinator connection (a [`Connection`] serves one request at a time, and a
//! heartbeat must not queue behind a slow commit). REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION
//! and UNKNOWN_MEMBER_ID from a heartbeat or commit then mean "make output durable, give up
//! the partitions, rejoin" instead of the errors they are for a simple consumer; LeaveGroup on
//! shutdown. The new request types are one line each in `connection.rs`'s `apis!` list.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::backoff::Retry;
use crate::kafka::connection::error_name;
use crate::kafka::connection::{connect_any, Connection, RequestError};
use crate::kafka::error::retryable_code;
use crate::kafka::{Cluster, Error};

/// Who we are in the group when committing. Today always the simple consumer; see the module
/// documentation for how membership would set it.
#[derive(Debug, Clone)]
struct Member {
    generation_id: i32,
    member_id: String,
}

impl Member {
    fn simple_consumer() -> Self {
        Member {
            generation_id: -1,
            member_id: String::new(),
        }
    }
}

/// The group's committed offsets, read and written through its coordinator.
pub(crate) struct OffsetStore {
    cluster: Cluster,
    group: String,
    member: Member,
    /// Highest versions to use (tests of the older request shapes).
    caps: Vec<(ApiKey, i16)>,
    /// `None` after a failure: rediscovered before the next request.
    coordinator: Option<Connection>,
}

impl OffsetStore {
    /// Finds the group's coordinator (FindCoordinator, key type group) through the cluster's
    /// bootstrap brokers and connects to it. The cluster's time limit bounds this and each
    /// later call, retries included.
    pub(crate) async fn connect(cluster: &Cluster, group: &str) -> Result<Self, Error> {
        Self::connect_capped(cluster, group, &[]).await
    }

    /// Like [`OffsetStore::connect`], never using versions above `caps` (API, highest version)
    /// on any connection: see [`Connection::cap_version`]. Tests use it to check the older
    /// request shapes against a new broker.
    pub(crate) async fn connect_capped(
        cluster: &Cluster,
        group: &str,
        caps: &[(ApiKey, i16)],
    ) -> Result<Self, Error> {
        let mut store = OffsetStore {
            cluster: cluster.clone(),
            group: group.to_string(),
            member: Member::simple_consumer(),
            caps: caps.to_vec(),
            coordinator: None,
        };
        let what = format!("finding the coordinator of group {group:?}");
        store.retrying(&what, Op::Find).await?;
        Ok(store)
    }

    /// The committed offsets of `partitions` of `topic` (OffsetFetch). Only partitions that
    /// have a committed offset are in the map.
    pub(crate) async fn fetch(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, Error> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let what = format!(
            "reading the committed offsets of group {:?} for topic {topic:?}",
            self.group
        );
        match self
            .retrying(&what, Op::Fetch { topic, partitions })
            .await?
        {
            Done::Fetched(offsets) => Ok(offsets),
            _ => unreachable!("a fetch answers with offsets"),
        }
    }

    /// Commits `offsets` (partition → next offset to read) for `topic` (OffsetCommit). Every
    /// partition must be confirmed by the coordinator, or this fails.
    pub(crate) async fn commit(
        &mut self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        if let Some((p, o)) = offsets.iter().find(|(_, o)| **o < 0) {
            return Err(Error::Unexpected(format!("refusing to commit offset {o} for partition {p} of {topic:?}: offsets are never negative")));
        }
        let what = format!(
            "committing offsets of group {:?} for topic {topic:?}",
            self.group
        );
        self.retrying(&what, Op::Commit { topic, offsets }).await?;
        Ok(())
    }

    /// Runs `op` on the coordinator, (re)discovering it first when needed; a retryable
    /// failure drops the connection, waits (100 ms, doubling, at most 1 s) and tries again
    /// until the cluster's time limit has passed.
    async fn retrying(&mut self, what: &str, op: Op<'_>) -> Result<Done, Error> {
        let limit = self.cluster.timeout;
        let deadline = Instant::now() + limit;
        let mut retry =
            Retry::new(Duration::from_millis(100), Duration::from_secs(1)).until(deadline);
        loop {
            match self.once(&op, deadline).await {
                Ok(done) => return Ok(done),
                Err(e) if e.is_retryable() => {
                    self.coordinator = None;
                    tracing::debug!(what, attempt = retry.attempts() + 1, error = %e, "retrying after rediscovering the coordinator");
                    if !retry.wait().await {
                        return Err(Error::GaveUp {
                            what: what.to_string(),
                            limit,
                            attempts: retry.attempts(),
                            last: Box::new(e),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn once(&mut self, op: &Op<'_>, deadline: Instant) -> Result<Done, Error> {
        if self.coordinator.is_none() {
            let conn = find_coordinator(&self.cluster, &self.group, &self.caps, deadline).await?;
            tracing::debug!(
                group = self.group,
                coordinator = conn.addr(),
                "found the group coordinator"
            );
            self.coordinator = Some(conn);
        }
        let conn = self.coordinator.as_mut().expect("found above");
        let limit = left(deadline);
        match *op {
            Op::Find => Ok(Done::Found),
            Op::Fetch { topic, partitions } => {
                fetch_once(conn, &self.group, topic, partitions, limit)
                    .await
                    .map(Done::Fetched)
            }
            Op::Commit { topic, offsets } => {
                commit_once(conn, &self.group, &self.member, topic, offsets, limit)
                    .await
                    .map(|()| Done::Committed)
            }
        }
    }
}

/// What [`OffsetStore::retrying`] runs.
enum Op<'a> {
    Find,
    Fetch {
        topic: &'a str,
        partitions: &'a [i32],
    },
    Commit {
        topic: &'a str,
        offsets: &'a BTreeMap<i32, i64>,
    },
}

enum Done {
    Found,
    Fetched(BTreeMap<i32, i64>),
    Committed,
}

/// Time left until `deadline`, at least a millisecond (so a last attempt fails by its own
/// timeout rather than not being made).
pub(super) fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// An exchange with `conn` that failed on the way.
fn request_error(what: String) -> impl FnOnce(RequestError) -> Error {
    move |source| Error::Request { what, source }
}

/// FindCoordinator through the first reachable bootstrap broker, then a connection to the
/// coordinator (the same connection when the bootstrap broker is the coordinator).
pub(super) async fn find_coordinator(
    cluster: &Cluster,
    group: &str,
    caps: &[(ApiKey, i16)],
    deadline: Instant,
) -> Result<Connection, Error> {
    let timeout = cluster.timeout.min(left(deadline));
    let capped = |mut c: Connection| {
        for &(key, max) in caps {
            c.cap_version(key, max);
        }
        c
    };
    let mut boot = capped(connect_any(&cluster.brokers, timeout, &cluster.security).await?);
    let what = format!(
        "finding the coordinator of group {group:?} via {}",
        boot.addr()
    );
    let version = boot
        .version::<FindCoordinatorRequest>()
        .map_err(request_error(what.clone()))?;
    let mut req = FindCoordinatorRequest::default();
    if version >= 1 {
        req.key_type = 0; // group
    }
    if version >= 4 {
        req.coordinator_keys = vec![StrBytes::from_string(group.to_string())];
    } else {
        req.key = StrBytes::from_string(group.to_string());
    }
    let resp = boot
        .request_within(&req, left(deadline))
        .await
        .map_err(request_error(what.clone()))?;
    let (host, port) = coordinator_of(&resp, version, group, what)?;
    let addr = format!("{host}:{port}");
    if addr == boot.addr() {
        return Ok(boot);
    }
    Connection::connect(
        &addr,
        cluster.timeout.min(left(deadline)),
        &cluster.security,
    )
    .await
    .map(capped)
    .map_err(request_error(format!(
        "connecting to the coordinator of group {group:?} at {addr}"
    )))
}

/// The coordinator a FindCoordinator answer names, or the error it reports.
fn coordinator_of(
    resp: &FindCoordinatorResponse,
    version: i16,
    group: &str,
    what: String,
) -> Result<(String, i32), Error> {
    let (code, message, host, port) = if version >= 4 {
        let Some(c) = resp
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == group)
            .or(resp.coordinators.first())
        else {
            // Retryable like COORDINATOR_NOT_AVAILABLE: the broker may know one shortly.
            return Err(Error::Broker {
                what,
                code: ResponseError::CoordinatorNotAvailable.code(),
                message: Some("the answer names no coordinator".into()),
            });
        };
        (c.error_code, &c.error_message, c.host.to_string(), c.port)
    } else {
        (
            resp.error_code,
            &resp.error_message,
            resp.host.to_string(),
            resp.port,
        )
    };
    let message = message.as_ref().map(|m| m.to_string());
    match ResponseError::try_from_code(code) {
        None => Ok((host, port)),
        Some(ResponseError::InvalidGroupId) => Err(Error::InvalidGroup {
            group: group.to_string(),
            message,
        }),
        Some(_) => Err(Error::Broker {
            what,
            code,
            message,
        }),
    }
}

/// Per-partition error codes of an answer, as one error: the first code that retrying will
/// not fix decides, else the first that it may.
fn partition_errors(what: String, rows: &[(i32, i16)]) -> Option<Error> {
    let failed: Vec<&(i32, i16)> = rows.iter().filter(|(_, c)| *c != 0).collect();
    let &&(_, code) = failed
        .iter()
        .find(|(_, c)| !retryable_code(*c))
        .or(failed.first())?;
    let list = failed
        .iter()
        .map(|(p, c)| format!("partition {p}: {}", error_name(*c)))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Error::Broker {
        what,
        code,
        message: Some(list),
    })
}

pub(super) async fn fetch_once(
    conn: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
    limit: Duration,
) -> Result<BTreeMap<i32, i64>, Error> {
    let what = format!(
        "reading the committed offsets of group {group:?} for topic {topic:?} from {}",
        conn.addr()
    );
    let version = conn
        .version::<OffsetFetchRequest>()
        .map_err(request_error(what.clone()))?;
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut req = OffsetFetchRequest::default();
    // Version 8 moved the fields into a per-group list (one request can ask for many groups).
    if version >= 8 {
        // (`topics` stays at its default, an empty list: kafka-protocol refuses to encode
        // anything else, even `None`, in these versions.)
        req.groups = vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(name)
                .with_partition_indexes(partitions.to_vec())]))];
    } else {
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        req.topics = Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name)
            .with_partition_indexes(partitions.to_vec())]);
    }
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(request_error(what.clone()))?;
    let rows = committed_rows(&resp, version, group, topic, &what)?;
    if let Some(p) = partitions.iter().find(|p| !rows.iter().any(|r| r.0 == **p)) {
        return Err(Error::Unexpected(format!(
            "{what}: partition {p} is missing from the answer"
        )));
    }
    let codes: Vec<(i32, i16)> = rows.iter().map(|r| (r.0, r.2)).collect();
    if let Some(e) = partition_errors(what, &codes) {
        return Err(e);
    }
    // -1: nothing committed.
    Ok(rows
        .into_iter()
        .filter(|r| partitions.contains(&r.0) && r.1 >= 0)
        .map(|r| (r.0, r.1))
        .collect())
}

/// (partition, committed offset, error code) for `topic` in an OffsetFetch answer, whatever
/// its version; a group-level error code as the error.
fn committed_rows(
    resp: &OffsetFetchResponse,
    version: i16,
    group: &str,
    topic: &str,
    what: &str,
) -> Result<Vec<(i32, i64, i16)>, Error> {
    let top_error = |code: i16| {
        (code != 0).then(|| Error::Broker {
            what: what.to_string(),
            code,
            message: None,
        })
    };
    let mut rows = Vec::new();
    if version >= 8 {
        let Some(g) = resp.groups.iter().find(|g| g.group_id.0.as_str() == group) else {
            return Err(Error::Unexpected(format!(
                "{what}: the answer has no entry for the group"
            )));
        };
        if let Some(e) = top_error(g.error_code) {
            return Err(e);
        }
        for t in g.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            rows.extend(
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
            );
        }
    } else {
        if let Some(e) = top_error(resp.error_code) {
            return Err(e);
        }
        for t in resp.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            rows.extend(
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
            );
        }
    }
    Ok(rows)
}

/// An OffsetCommit of `offsets` for `topic`, as member `member_id` of `generation` (-1 and ""
/// for a simple consumer). Fields that some versions lack keep their defaults, which every
/// version accepts: retention_time_ms -1 (v2-4: the broker's retention),
/// committed_leader_epoch -1 (v6+: unknown), group_instance_id None (v7+: not a static member).
pub(super) fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(&p, &o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                    })
                    .collect(),
            )])
}

async fn commit_once(
    conn: &mut Connection,
    group: &str,
    member: &Member,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    limit: Duration,
) -> Result<(), Error> {
    let what = format!(
        "committing offsets of group {group:?} for topic {topic:?} to {}",
        conn.addr()
    );
    let req = commit_request(
        group,
        member.generation_id,
        &member.member_id,
        topic,
        offsets,
    );
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(request_error(what.clone()))?;
    let rows: Vec<(i32, i16)> = resp
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        })
        .collect();
    if let Some(p) = offsets.keys().find(|p| !rows.iter().any(|r| r.0 == **p)) {
        return Err(Error::Unexpected(format!(
            "{what}: partition {p} was not confirmed (missing from the answer)"
        )));
    }
    let member_trouble = rows.iter().any(|(_, c)| {
        matches!(
            ResponseError::try_from_code(*c),
            Some(
                ResponseError::UnknownMemberId
                    | ResponseError::IllegalGeneration
                    | ResponseError::RebalanceInProgress
            )
        )
    });
    let what = if member_trouble && member.generation_id < 0 {
        format!(
            "{what} (we commit as a simple consumer, which Kafka refuses while group {group:?} \
             has active members: another consumer is subscribed with this group id; stop it, \
             or consume under another group)"
        )
    } else {
        what
    };
    match partition_errors(what, &rows) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
