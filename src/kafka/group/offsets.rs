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
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::kafka::connection::{error_name, Connection, RequestError};
use crate::kafka::security::Security;
use crate::error::{Error, Result};

/// Error codes after which the coordinator is rediscovered and the call retried.
const REDISCOVER: [ResponseError; 4] = [
    ResponseError::NotCoordinator,
    ResponseError::CoordinatorNotAvailable,
    ResponseError::CoordinatorLoadInProgress,
    // A commit that timed out inside the broker may or may not have been applied; committing
    // the same offsets again is harmless.
    ResponseError::RequestTimedOut,
];

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

/// How one attempt failed.
enum Failure {
    /// Rediscover the coordinator and try again (while time is left).
    Retry(String),
    /// Report it.
    Fatal(Error),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Connection(m) => Failure::Retry(m),
            RequestError::Protocol(m) => Failure::Fatal(Error::runtime(m)),
        }
    }
}

/// The group's committed offsets, read and written through its coordinator.
pub struct OffsetStore {
    brokers: Vec<String>,
    group: String,
    timeout: Duration,
    member: Member,
    caps: Vec<(ApiKey, i16)>,
    security: Security,
    /// `None` after a failure: rediscovered before the next request.
    coordinator: Option<Connection>,
}

impl OffsetStore {
    /// Finds the group's coordinator (FindCoordinator, key type group) through any of
    /// `brokers` and connects to it. `timeout` bounds this and each later call, retries
    /// included.
    pub async fn connect(brokers: &[String], group: &str, timeout: Duration) -> Result<Self> {
        Self::connect_capped(brokers, group, timeout, &[]).await
    }

    /// Like [`OffsetStore::connect`], never using versions above `caps` (API, highest version)
    /// on any connection: see [`Connection::cap_version`].
    pub async fn connect_capped(
        brokers: &[String],
        group: &str,
        timeout: Duration,
        caps: &[(ApiKey, i16)],
    ) -> Result<Self> {
        Self::connect_with(brokers, group, timeout, caps, &Security::default()).await
    }

    /// The general form: version caps, and TLS/SASL on every connection to the cluster.
    /// ([`OffsetStore::connect`] and [`OffsetStore::connect_capped`] are plaintext.)
    pub async fn connect_with(
        brokers: &[String],
        group: &str,
        timeout: Duration,
        caps: &[(ApiKey, i16)],
        security: &Security,
    ) -> Result<Self> {
        if group.is_empty() {
            return Err(Error::usage(
                "--group is empty; give the consumer group id, e.g. --group tweetpipe",
            ));
        }
        if brokers.is_empty() {
            return Err(Error::usage("--brokers (KAFKA_BROKERS) is empty; give HOST:PORT[,HOST:PORT…], e.g. 127.0.0.1:9092"));
        }
        let mut store = OffsetStore {
            brokers: brokers.to_vec(),
            group: group.to_string(),
            timeout,
            member: Member::simple_consumer(),
            caps: caps.to_vec(),
            security: security.clone(),
            coordinator: None,
        };
        let deadline = Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            match find_coordinator(
                &store.brokers,
                &store.group,
                &store.caps,
                &store.security,
                timeout,
                deadline,
            )
            .await
            {
                Ok(conn) => {
                    tracing::debug!(
                        group,
                        coordinator = conn.addr(),
                        "found the group coordinator"
                    );
                    store.coordinator = Some(conn);
                    return Ok(store);
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(why)) => {
                    pause(
                        &format!("finding the coordinator of group {group:?}"),
                        timeout,
                        deadline,
                        &mut attempt,
                        why,
                    )
                    .await?
                }
            }
        }
    }

    /// The group id.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The committed offsets of `partitions` of `topic` (OffsetFetch). Only partitions that
    /// have a committed offset are in the map.
    pub async fn fetch(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let what = format!(
            "reading the committed offsets of group {:?} for topic {topic:?}",
            self.group
        );
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 0;
        loop {
            let outcome = match self.ensure_coordinator(deadline).await {
                Ok(()) => {
                    let conn = self.coordinator.as_mut().expect("ensured");
                    fetch_once(conn, &self.group, topic, partitions, left(deadline)).await
                }
                Err(f) => Err(f),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(why)) => {
                    self.coordinator = None;
                    pause(&what, self.timeout, deadline, &mut attempt, why).await?;
                }
            }
        }
    }

    /// Commits `offsets` (partition → next offset to read) for `topic` (OffsetCommit). Every
    /// partition must be confirmed by the coordinator, or this fails.
    pub async fn commit(&mut self, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        if let Some((p, o)) = offsets.iter().find(|(_, o)| **o < 0) {
            return Err(Error::runtime(format!("refusing to commit offset {o} for partition {p} of {topic:?}: offsets are never negative")));
        }
        let what = format!(
            "committing offsets of group {:?} for topic {topic:?}",
            self.group
        );
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 0;
        loop {
            let outcome = match self.ensure_coordinator(deadline).await {
                Ok(()) => {
                    let conn = self.coordinator.as_mut().expect("ensured");
                    commit_once(
                        conn,
                        &self.group,
                        &self.member,
                        topic,
                        offsets,
                        left(deadline),
                    )
                    .await
                }
                Err(f) => Err(f),
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(why)) => {
                    self.coordinator = None;
                    pause(&what, self.timeout, deadline, &mut attempt, why).await?;
                }
            }
        }
    }

    /// Rediscovers the coordinator if the last connection failed.
    async fn ensure_coordinator(&mut self, deadline: Instant) -> std::result::Result<(), Failure> {
        if self.coordinator.is_none() {
            let conn = find_coordinator(
                &self.brokers,
                &self.group,
                &self.caps,
                &self.security,
                self.timeout,
                deadline,
            )
            .await?;
            tracing::debug!(
                group = self.group,
                coordinator = conn.addr(),
                "found the group coordinator"
            );
            self.coordinator = Some(conn);
        }
        Ok(())
    }
}

/// Time left until `deadline`, at least a millisecond (so a last attempt fails by its own
/// timeout rather than not being made).
fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Waits before the next attempt (100 ms, doubling, at most 1 s), or fails when the deadline
/// has passed or would pass during the wait.
async fn pause(
    what: &str,
    timeout: Duration,
    deadline: Instant,
    attempt: &mut u32,
    why: String,
) -> Result<()> {
    let wait = Duration::from_millis(100 * (1u64 << (*attempt).min(4))).min(Duration::from_secs(1));
    *attempt += 1;
    if Instant::now() + wait >= deadline {
        let n = *attempt;
        let plural = if n == 1 { "" } else { "s" };
        return Err(Error::runtime(format!(
            "{what}: gave up after {timeout:?} ({n} attempt{plural}); last error: {why}"
        )));
    }
    tracing::debug!(what, attempt = *attempt, error = %why, "retrying after rediscovering the coordinator");
    tokio::time::sleep(wait).await;
    Ok(())
}

/// Classifies an error code of a coordinator response; `None` for no error.
fn classify(code: i16, context: impl FnOnce() -> String) -> Option<Failure> {
    let err = ResponseError::try_from_code(code)?;
    if REDISCOVER.contains(&err) {
        return Some(Failure::Retry(format!(
            "{}: {}",
            context(),
            error_name(code)
        )));
    }
    Some(Failure::Fatal(Error::runtime(format!(
        "{}: {}",
        context(),
        error_name(code)
    ))))
}

/// FindCoordinator through the first reachable bootstrap broker, then a connection to the
/// coordinator (the same connection when the bootstrap broker is the coordinator).
async fn find_coordinator(
    brokers: &[String],
    group: &str,
    caps: &[(ApiKey, i16)],
    security: &Security,
    timeout: Duration,
    deadline: Instant,
) -> std::result::Result<Connection, Failure> {
    let connect = |addr: String| async move {
        let mut c = Connection::connect(&addr, timeout.min(left(deadline)), security).await?;
        for &(key, max) in caps {
            c.cap_version(key, max);
        }
        Ok::<_, RequestError>(c)
    };
    let mut boot = None;
    let mut failures = Vec::new();
    for b in brokers {
        match connect(b.clone()).await {
            Ok(c) => {
                boot = Some(c);
                break;
            }
            Err(RequestError::Connection(m)) => failures.push(m),
            Err(e @ RequestError::Protocol(_)) => return Err(e.into()),
        }
    }
    let Some(mut boot) = boot else {
        return Err(Failure::Retry(format!(
            "cannot reach Kafka at {} ({}): {}. {}",
            brokers.join(","),
            security.describe(),
            failures.join("; "),
            security.hint()
        )));
    };
    let version = boot.version::<FindCoordinatorRequest>()?;
    let mut req = FindCoordinatorRequest::default();
    if version >= 1 {
        req.key_type = 0; // group
    }
    if version >= 4 {
        req.coordinator_keys = vec![StrBytes::from_string(group.to_string())];
    } else {
        req.key = StrBytes::from_string(group.to_string());
    }
    let resp = boot.request_within(&req, left(deadline)).await?;
    let (code, message, host, port) = if version >= 4 {
        let Some(c) = resp
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == group)
            .or(resp.coordinators.first())
        else {
            return Err(Failure::Retry(format!(
                "broker {} answered FindCoordinator without a coordinator",
                boot.addr()
            )));
        };
        (
            c.error_code,
            c.error_message.clone(),
            c.host.to_string(),
            c.port,
        )
    } else {
        (
            resp.error_code,
            resp.error_message.clone(),
            resp.host.to_string(),
            resp.port,
        )
    };
    if code != 0 {
        let detail = message.map(|m| format!(" ({m})")).unwrap_or_default();
        return Err(match ResponseError::try_from_code(code) {
            Some(ResponseError::InvalidGroupId) => Failure::Fatal(Error::usage(format!(
                "--group {group:?} is not a valid consumer group id{detail}"
            ))),
            _ => classify(code, || {
                format!(
                    "finding the coordinator of group {group:?} via {}",
                    boot.addr()
                )
            })
            .expect("code is not 0"),
        });
    }
    let addr = format!("{host}:{port}");
    if addr == boot.addr() {
        return Ok(boot);
    }
    Ok(connect(addr).await?)
}

async fn fetch_once(
    conn: &mut Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
    limit: Duration,
) -> std::result::Result<BTreeMap<i32, i64>, Failure> {
    let version = conn.version::<OffsetFetchRequest>()?;
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
    let resp = conn.request_within(&req, limit).await?;
    let context = || {
        format!(
            "reading the committed offsets of group {group:?} from {}",
            conn.addr()
        )
    };

    // (partition, committed offset, error code) for our topic, whatever the version.
    let mut rows: Vec<(i32, i64, i16)> = Vec::new();
    if version >= 8 {
        let Some(g) = resp.groups.iter().find(|g| g.group_id.0.as_str() == group) else {
            return Err(Failure::Fatal(Error::runtime(format!(
                "{}: the answer has no entry for the group",
                context()
            ))));
        };
        if let Some(f) = classify(g.error_code, context) {
            return Err(f);
        }
        for t in g.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            rows.extend(
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
            );
        }
    } else {
        if let Some(f) = classify(resp.error_code, context) {
            return Err(f);
        }
        for t in resp.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            rows.extend(
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset, p.error_code)),
            );
        }
    }
    let mut out = BTreeMap::new();
    let mut retry = Vec::new();
    let mut fatal = Vec::new();
    for &p in partitions {
        let Some(&(_, offset, code)) = rows.iter().find(|r| r.0 == p) else {
            fatal.push(format!("partition {p}: missing from the answer"));
            continue;
        };
        match classify(code, || format!("partition {p}")) {
            None if offset >= 0 => {
                out.insert(p, offset);
            }
            None => {} // -1: nothing committed
            Some(Failure::Retry(m)) => retry.push(m),
            Some(Failure::Fatal(e)) => fatal.push(e.to_string()),
        }
    }
    if !fatal.is_empty() {
        return Err(Failure::Fatal(Error::runtime(format!(
            "{} for topic {topic:?}: {}",
            context(),
            fatal.join(", ")
        ))));
    }
    if !retry.is_empty() {
        return Err(Failure::Retry(format!(
            "{} for topic {topic:?}: {}",
            context(),
            retry.join(", ")
        )));
    }
    Ok(out)
}

async fn commit_once(
    conn: &mut Connection,
    group: &str,
    member: &Member,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
    limit: Duration,
) -> std::result::Result<(), Failure> {
    // Fields that some versions lack keep their defaults, which every version accepts:
    // retention_time_ms -1 (v2-4: the broker's retention), committed_leader_epoch -1 (v6+:
    // unknown), group_instance_id None (v7+: not a static member).
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(member.generation_id)
        .with_member_id(StrBytes::from_string(member.member_id.clone()))
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
            )]);
    let resp = conn.request_within(&req, limit).await?;
    let context = || format!("committing offsets of group {group:?} to {}", conn.addr());
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
    let mut retry = Vec::new();
    let mut fatal = Vec::new();
    for &p in offsets.keys() {
        let Some(&(_, code)) = rows.iter().find(|r| r.0 == p) else {
            fatal.push(format!(
                "partition {p}: not confirmed (missing from the answer)"
            ));
            continue;
        };
        match classify(code, || format!("partition {p}")) {
            None => {}
            Some(Failure::Retry(m)) => retry.push(m),
            Some(Failure::Fatal(e)) => fatal.push(e.to_string()),
        }
    }
    if !fatal.is_empty() {
        let mut msg = format!("{} for topic {topic:?}: {}", context(), fatal.join(", "));
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
        if member_trouble && member.generation_id < 0 {
            msg.push_str(&format!(
                ". We commit as a simple consumer, which Kafka refuses while group {group:?} has active members: \
                 another consumer is subscribed with this group id. Stop it, or use a different --group"
            ));
        }
        return Err(Failure::Fatal(Error::runtime(msg)));
    }
    if !retry.is_empty() {
        return Err(Failure::Retry(format!(
            "{} for topic {topic:?}: {}",
            context(),
            retry.join(", ")
        )));
    }
    Ok(())
}
