//! Membership of a consumer group with Kafka's classic protocol: [`GroupMember`].
//!
//! The life of a member, and what the consumer does at each step:
//! 1. [`GroupMember::join`]: FindCoordinator, JoinGroup (protocol type `consumer`, the
//!    assignors in the user's order, each with the same subscription bytes), SyncGroup (the
//!    leader runs the assignor the coordinator chose over every member's subscription and
//!    sends everyone's assignment; followers send none). It answers the partitions this
//!    member now owns, for one *generation*, and starts the heartbeat task
//!    ([`super::heartbeat`]).
//! 2. The consumer reads and writes its partitions, feeds [`Progress`], and commits with
//!    [`GroupMember::commit`], which carries the generation and member id, so a coordinator
//!    refuses a commit from a member that is no longer in the generation.
//! 3. [`GroupMember::next_event`] says when that ends: [`Event::Revoke`] (a rebalance started:
//!    stop fetching, make the output durable, commit, then [`GroupMember::rejoin`]) or
//!    [`Event::Lost`] (the partitions may be someone else's already: drop them without
//!    committing, then rejoin).
//! 4. [`GroupMember::leave`] on a clean stop: LeaveGroup, so the others take the partitions at
//!    once instead of after the session timeout. A static member (`--instance-id`) does not
//!    leave: it is expected back, and keeps its partitions while it restarts.
//!
//! Errors that the protocol means as "rejoin" or "look the coordinator up again" are handled
//! here or surface as [`GroupError`] variants whose `needs_rejoin()` says so; none is fatal.
//!
//! Cancellation: every method leaves the member consistent if its future is dropped (e.g. by
//! a shutdown signal during a long JoinGroup): the coordinator connection is taken out of the
//! member while a request is in flight, so a dropped request drops the connection with it and
//! the next call connects afresh.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::{ApiKey, GroupId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::assignor::{self, Assignor};
use super::cluster;
use super::error::{is_coordinator_code, GroupError, LostReason};
use super::heartbeat::{self, Health, Heartbeat, Progress};
use super::offsets::{self, fetch_once, find_coordinator};
use super::protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Assignment,
    PROTOCOL_TYPE,
};
use crate::kafka::connection::{Connection, RequestError};
use crate::kafka::security::Security;
use crate::kafka::Cluster;

/// How a member joins and stays in its group. Durations have Kafka's meanings.
#[derive(Debug, Clone)]
pub(crate) struct MemberConfig {
    pub brokers: Vec<String>,
    pub security: Security,
    pub group: String,
    /// The subscription: the topics this member reads.
    pub topics: Vec<String>,
    /// Offered in this order; the coordinator picks one every member offers.
    pub assignors: Vec<Assignor>,
    /// `session.timeout.ms`: the coordinator drops a member it has not heard from this long.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest the consumer may go without progress before the
    /// member leaves by itself; also the rebalance timeout sent in JoinGroup (as the Java
    /// client does), i.e. how long the coordinator waits for members to rejoin.
    pub max_poll_interval: Duration,
    /// `group.instance.id`: static membership (KIP-345).
    pub instance_id: Option<String>,
    /// Bounds each request other than JoinGroup, and each call's retries.
    pub request_timeout: Duration,
    /// Highest version per API (testing older request shapes): see `Connection::cap_version`.
    pub caps: Vec<(ApiKey, i16)>,
}

impl MemberConfig {
    /// Kafka's defaults (session 45 s, heartbeat 3 s, max poll 5 min), both assignors with
    /// range first (librdkafka's default list).
    pub(crate) fn new(
        brokers: Vec<String>,
        security: Security,
        group: &str,
        topics: Vec<String>,
        request_timeout: Duration,
    ) -> Self {
        MemberConfig {
            brokers,
            security,
            group: group.to_string(),
            topics,
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            instance_id: None,
            request_timeout,
            caps: Vec::new(),
        }
    }

    /// Refuses what Kafka would refuse later, or what cannot work, naming the Kafka setting.
    pub(crate) fn validate(&self) -> Result<(), GroupError> {
        let usage = |m: String| Err(GroupError::Usage(m));
        if self.group.is_empty() {
            return usage("the consumer group id is empty".into());
        }
        if self.brokers.is_empty() {
            return usage("no bootstrap brokers".into());
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return usage("no topic to subscribe to".into());
        }
        if self.assignors.is_empty() {
            return usage("no assignor: give range, roundrobin or both".into());
        }
        let ms = |d: Duration| i32::try_from(d.as_millis()).ok().filter(|m| *m > 0);
        for (flag, d) in [
            ("session.timeout.ms", self.session_timeout),
            ("heartbeat.interval.ms", self.heartbeat_interval),
            ("max.poll.interval.ms", self.max_poll_interval),
        ] {
            if ms(d).is_none() {
                return usage(format!(
                    "{flag} {d:?} must be at least 1 ms and below 24 days"
                ));
            }
        }
        if self.heartbeat_interval >= self.session_timeout {
            return usage(format!(
                "heartbeat.interval.ms {:?} must be shorter than session.timeout.ms {:?} (Kafka advises a third of it at most)",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        if let Some(id) = &self.instance_id {
            // Kafka's rule for group.instance.id (the same as for topic names).
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if id.is_empty() || id.len() > 249 || !id.chars().all(legal) || id == "." || id == ".."
            {
                return usage(format!(
                    "{id:?} is not a valid group.instance.id: 1-249 characters from a-z, A-Z, 0-9, '.', '_', '-'"
                ));
            }
        }
        Ok(())
    }
}

/// What a join gave this member.
#[derive(Debug, Clone)]
pub(crate) struct Assigned {
    pub generation: i32,
    pub member_id: String,
    pub leader: bool,
    /// The assignor the coordinator chose.
    pub assignor: Assignor,
    /// Of the subscribed topics only.
    pub partitions: Assignment,
    /// From the start of the join to the assignment.
    pub took: Duration,
    /// The group's members, as the leader learns them (JoinGroup tells only the leader);
    /// 0 for a follower.
    pub members: usize,
}

impl Assigned {
    /// The partitions of `topic`, ascending.
    pub(crate) fn partitions_of(&self, topic: &str) -> Vec<i32> {
        self.partitions.get(topic).cloned().unwrap_or_default()
    }
}

/// The end of a generation, as [`GroupMember::next_event`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A rebalance started. Stop fetching, make the output durable, commit (the coordinator
    /// still accepts commits of this generation until the member rejoins), then `rejoin`.
    Revoke {
        generation: i32,
        partitions: Assignment,
    },
    /// The membership ended; the partitions may be another member's already. Drop them
    /// without committing, then `rejoin` (unless the reason is `Fenced`).
    Lost {
        generation: i32,
        partitions: Assignment,
        reason: LostReason,
    },
}

/// The generation this member is in.
struct Current {
    generation: i32,
    partitions: Assignment,
    heartbeat: Heartbeat,
    /// What `next_event` has reported of the heartbeat's health.
    reported: Health,
    /// A loss learnt by a commit, to be reported by `next_event`.
    lost: Option<LostReason>,
}

/// One member of a consumer group. See the module documentation for its life.
pub(crate) struct GroupMember {
    config: MemberConfig,
    subscription: Bytes,
    /// `None` while a request is in flight, or after a failure (found again before use).
    coordinator: Option<Connection>,
    /// Empty until the coordinator gave us one.
    member_id: String,
    current: Option<Current>,
    /// Why the last generation ended, for errors of commits made after it.
    ended: Option<LostReason>,
    /// The generation of the last [`Event::Revoke`], until the next join.
    revoked: Option<i32>,
    progress: Progress,
    /// Whether the coordinator refuses an older generation's requests, once known.
    checks_generations: Option<bool>,
}

/// How one join attempt ended without an assignment.
enum Again {
    /// Try again at once (e.g. with the member id the coordinator just gave us).
    Now,
    /// Try again after a short wait.
    Later(String),
    Fail(GroupError),
}

impl From<GroupError> for Again {
    fn from(e: GroupError) -> Self {
        Again::Fail(e)
    }
}

impl GroupMember {
    /// A member that has not joined yet (no I/O).
    pub(crate) fn new(config: MemberConfig) -> Result<Self, GroupError> {
        config.validate()?;
        Ok(GroupMember {
            subscription: encode_subscription(&config.topics),
            config,
            coordinator: None,
            member_id: String::new(),
            current: None,
            ended: None,
            revoked: None,
            progress: Progress::new(),
            checks_generations: None,
        })
    }

    /// Our member id (empty before the first join).
    #[cfg(test)]
    pub(crate) fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation we are in, if any.
    #[cfg(test)]
    pub(crate) fn generation(&self) -> Option<i32> {
        self.current.as_ref().map(|c| c.generation)
    }

    /// Whether the coordinator refuses requests of a generation that is over, as Kafka and
    /// Redpanda do (tansu 0.6.0 answers REBALANCE_IN_PROGRESS to them instead, accepts their
    /// commits, and completes a generation without waiting for every member to rejoin). Asked
    /// once, with a Heartbeat of the previous generation, which changes nothing at the
    /// coordinator; `None` while it cannot tell (the group's first generation, no answer).
    pub(crate) async fn checks_generations(&mut self) -> Option<bool> {
        if self.checks_generations.is_some() {
            return self.checks_generations;
        }
        let generation = self.current.as_ref()?.generation;
        if generation < 1 {
            return None;
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let mut conn = self.take_coordinator(deadline).await.ok()?;
        let answer = heartbeat::stale_generation_refused(
            &mut conn,
            &self.config.group,
            generation - 1,
            &self.member_id,
            self.config.instance_id.as_deref(),
            self.config.request_timeout,
        )
        .await;
        if answer.is_ok() {
            self.coordinator = Some(conn);
        }
        self.checks_generations = answer.ok().flatten();
        tracing::debug!(group = %self.config.group, checks = ?self.checks_generations, "does the coordinator refuse an old generation");
        self.checks_generations
    }

    /// The consumer loop's progress, for the max-poll guard: call `made_progress()` on it
    /// every time round the loop.
    pub(crate) fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Joins the group and returns this member's partitions. Retries what the protocol says
    /// to retry (new member id, rebalance in progress, coordinator moved) until
    /// max-poll-interval + session timeout + request timeout have passed.
    pub(crate) async fn join(&mut self) -> Result<Assigned, GroupError> {
        if self.ended == Some(LostReason::Fenced) {
            return Err(GroupError::MembershipLost {
                group: self.config.group.clone(),
                reason: LostReason::Fenced,
            });
        }
        // Heartbeats of the old generation stop here; a pending JoinGroup keeps the member
        // alive at the coordinator.
        self.current = None;
        let started = Instant::now();
        let limit = self.config.max_poll_interval
            + self.config.session_timeout
            + self.config.request_timeout;
        let deadline = started + limit;
        let mut waits = 0u32;
        loop {
            let why = match self.join_once(deadline).await {
                Ok(assigned) if self.same_generation_after_rebalance(&assigned) => {
                    // tansu 0.6.0 evicts a member that stopped heartbeating by answering the
                    // heartbeat of another with REBALANCE_IN_PROGRESS, and then hands out the
                    // old generation and assignments again: the dead member's partitions would
                    // stay unowned. Leaving and joining anew makes it start a new generation.
                    // (Kafka always starts a new generation after a rebalance: never seen there.)
                    tracing::info!(group = %self.config.group, generation = assigned.generation, "the coordinator answered a rebalance with the same generation; leaving and joining again so that it assigns the partitions anew");
                    self.leave_for_new_generation(deadline).await?;
                    None
                }
                Ok(mut assigned) => {
                    assigned.took = started.elapsed();
                    self.start_generation(&assigned);
                    tracing::info!(
                        group = %self.config.group,
                        generation = assigned.generation,
                        member = %assigned.member_id,
                        leader = assigned.leader,
                        assignor = assigned.assignor.name(),
                        partitions = ?assigned.partitions,
                        took_ms = assigned.took.as_millis() as u64,
                        "joined the group"
                    );
                    return Ok(assigned);
                }
                Err(Again::Fail(e)) => return Err(e),
                Err(Again::Now) => None,
                Err(Again::Later(why)) => Some(why),
            };
            let wait = match &why {
                None => Duration::ZERO,
                Some(_) => {
                    waits += 1;
                    Duration::from_millis(100 * (1 << waits.min(4))).min(Duration::from_secs(1))
                }
            };
            if Instant::now() + wait >= deadline {
                return Err(GroupError::TimedOut {
                    what: format!("joining group {:?}", self.config.group),
                    secs: limit.as_secs_f64(),
                    last: why.unwrap_or_else(|| "the coordinator kept asking to join again".into()),
                });
            }
            if let Some(why) = why {
                tracing::debug!(group = %self.config.group, reason = %why, ?wait, "joining again");
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Whether a join that followed a rebalance (a Revoke this member reported) landed in the
    /// generation it revoked. Asked once per revocation.
    fn same_generation_after_rebalance(&mut self, assigned: &Assigned) -> bool {
        let revoked = self.revoked.take();
        revoked == Some(assigned.generation) && self.config.instance_id.is_none()
    }

    /// LeaveGroup, and forget the member id, so the next JoinGroup joins as a new member.
    async fn leave_for_new_generation(&mut self, deadline: Instant) -> Result<(), GroupError> {
        let mut conn = match self.take_coordinator(deadline).await {
            Ok(c) => c,
            Err(Again::Fail(e)) => return Err(e),
            Err(_) => return Ok(()), // no coordinator now: the next join finds out
        };
        let left = heartbeat::send_leave(
            &mut conn,
            &self.config.group,
            &self.member_id,
            None,
            self.config.request_timeout.min(offsets::left(deadline)),
        )
        .await;
        match left {
            Ok(()) => self.coordinator = Some(conn),
            Err(why) => {
                tracing::debug!(group = %self.config.group, error = %why, "LeaveGroup before joining anew failed")
            }
        }
        self.member_id.clear();
        Ok(())
    }

    /// After [`Event::Revoke`] (output durable, offsets committed) or [`Event::Lost`]: joins
    /// the next generation.
    pub(crate) async fn rejoin(&mut self) -> Result<Assigned, GroupError> {
        self.join().await
    }

    /// Waits until the current generation ends (see [`Event`]); never returns while not in
    /// one. Cancel-safe: use it in `select!`.
    pub(crate) async fn next_event(&mut self) -> Event {
        loop {
            let Some(cur) = self.current.as_mut() else {
                return std::future::pending().await;
            };
            if let Some(reason) = cur.lost.take() {
                return self.end_generation(reason);
            }
            let health = cur.heartbeat.health.borrow_and_update().clone();
            if health != cur.reported {
                cur.reported = health.clone();
                match health {
                    Health::Stable => {}
                    Health::Rebalancing => {
                        self.revoked = Some(cur.generation);
                        return Event::Revoke {
                            generation: cur.generation,
                            partitions: cur.partitions.clone(),
                        };
                    }
                    Health::Lost(reason) => return self.end_generation(reason),
                }
            }
            if cur.heartbeat.health.changed().await.is_err() {
                // The task ended without saying why (it cannot panic by design; be safe).
                return self.end_generation(LostReason::SessionTimedOut);
            }
        }
    }

    /// Commits `offsets` (partition → next offset to read) of `topic` in the current
    /// generation. Refused without sending when this member knows it has no current
    /// generation; a coordinator's refusal (rebalance, unknown member, old generation) comes
    /// back as the [`GroupError`] that says so.
    pub(crate) async fn commit(
        &mut self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let generation = self.usable_generation()?;
        if let Some((p, o)) = offsets.iter().find(|(_, o)| **o < 0) {
            return Err(GroupError::Protocol(format!(
                "refusing to commit offset {o} for partition {p} of {topic:?}: offsets are never negative"
            )));
        }
        let what = format!(
            "committing offsets of group {:?} for topic {topic:?}",
            self.config.group
        );
        let deadline = Instant::now() + self.config.request_timeout;
        let mut waits = 0u32;
        loop {
            let why = match self.commit_once(generation, topic, offsets, deadline).await {
                Ok(()) => return Ok(()),
                Err(Again::Fail(e)) => {
                    if let GroupError::MembershipLost { reason, .. } = &e {
                        if let Some(cur) = self.current.as_mut() {
                            cur.lost = Some(reason.clone());
                        }
                    }
                    return Err(e);
                }
                Err(Again::Now) => continue,
                Err(Again::Later(why)) => why,
            };
            let wait = Duration::from_millis(100 * (1 << waits.min(3)));
            waits += 1;
            if Instant::now() + wait >= deadline {
                return Err(GroupError::TimedOut {
                    what,
                    secs: self.config.request_timeout.as_secs_f64(),
                    last: why,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The group's committed offsets of `partitions` of `topic` (only those with one).
    pub(crate) async fn committed(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, GroupError> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            let mut conn = match self.take_coordinator(deadline).await {
                Ok(c) => c,
                Err(Again::Later(why)) => {
                    last = why;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(Again::Fail(e)) => return Err(e),
                Err(Again::Now) => continue,
            };
            match fetch_once(
                &mut conn,
                &self.config.group,
                topic,
                partitions,
                offsets::left(deadline),
            )
            .await
            {
                Ok(v) => {
                    self.coordinator = Some(conn);
                    return Ok(v);
                }
                Err(e) if e.is_retryable() => last = crate::error::chain(&e),
                Err(e) => return Err(GroupError::Kafka(e)),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(GroupError::TimedOut {
            what: format!(
                "reading the committed offsets of group {:?}",
                self.config.group
            ),
            secs: self.config.request_timeout.as_secs_f64(),
            last,
        })
    }

    /// Leaves the group on a clean stop (LeaveGroup), so the other members take the
    /// partitions at once. A static member stays: it is expected back under the same
    /// `--instance-id` within the session timeout, and keeps its partitions meanwhile.
    pub(crate) async fn leave(mut self) -> Result<(), GroupError> {
        self.current = None;
        if self.member_id.is_empty() {
            return Ok(());
        }
        if self.config.instance_id.is_some() {
            tracing::info!(group = %self.config.group, instance = ?self.config.instance_id, "static member: not leaving the group, so a restart within the session timeout keeps its partitions");
            return Ok(());
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let mut conn = match self.take_coordinator(deadline).await {
            Ok(c) => c,
            Err(Again::Fail(e)) => return Err(e),
            Err(Again::Now) | Err(Again::Later(_)) => {
                return Err(GroupError::TimedOut {
                    what: format!("leaving group {:?}", self.config.group),
                    secs: self.config.request_timeout.as_secs_f64(),
                    last: "no coordinator".into(),
                })
            }
        };
        heartbeat::send_leave(
            &mut conn,
            &self.config.group,
            &self.member_id,
            None,
            offsets::left(deadline),
        )
        .await
        .map_err(|m| GroupError::Protocol(format!("leaving group {:?}: {m}", self.config.group)))?;
        tracing::info!(group = %self.config.group, member = %self.member_id, "left the group");
        Ok(())
    }

    fn end_generation(&mut self, reason: LostReason) -> Event {
        let cur = self.current.take().expect("in a generation");
        if matches!(reason, LostReason::UnknownMember) {
            self.member_id.clear();
        }
        self.ended = Some(reason.clone());
        Event::Lost {
            generation: cur.generation,
            partitions: cur.partitions,
            reason,
        }
    }

    /// The generation a commit may use, or why there is none.
    fn usable_generation(&self) -> Result<i32, GroupError> {
        let group = self.config.group.clone();
        let Some(cur) = &self.current else {
            let why = match &self.ended {
                Some(r) => r.to_string(),
                None => "it has not joined the group".into(),
            };
            return Err(GroupError::NotMember { group, why });
        };
        if let Some(reason) = &cur.lost {
            return Err(GroupError::MembershipLost {
                group,
                reason: reason.clone(),
            });
        }
        if let Health::Lost(reason) = &*cur.heartbeat.health.borrow() {
            return Err(GroupError::MembershipLost {
                group,
                reason: reason.clone(),
            });
        }
        Ok(cur.generation)
    }

    fn start_generation(&mut self, assigned: &Assigned) {
        let params = heartbeat::Params {
            brokers: self.config.brokers.clone(),
            security: self.config.security.clone(),
            caps: self.config.caps.clone(),
            group: self.config.group.clone(),
            generation: assigned.generation,
            member_id: assigned.member_id.clone(),
            instance_id: self.config.instance_id.clone(),
            interval: self.config.heartbeat_interval,
            session_timeout: self.config.session_timeout,
            max_poll_interval: self.config.max_poll_interval,
            request_timeout: self.config.request_timeout,
        };
        self.progress.made_progress();
        self.ended = None;
        self.current = Some(Current {
            generation: assigned.generation,
            partitions: assigned.partitions.clone(),
            heartbeat: heartbeat::start(params, self.progress.clone()),
            reported: Health::Stable,
            lost: None,
        });
    }

    /// The coordinator connection, found first if needed; the caller puts it back into
    /// `self.coordinator` after a completed exchange.
    async fn take_coordinator(&mut self, deadline: Instant) -> Result<Connection, Again> {
        if let Some(c) = self.coordinator.take() {
            return Ok(c);
        }
        let limit = self.config.request_timeout.min(offsets::left(deadline));
        let cluster = Cluster {
            brokers: self.config.brokers.clone(),
            timeout: limit,
            security: self.config.security.clone(),
        };
        match find_coordinator(
            &cluster,
            &self.config.group,
            &self.config.caps,
            Instant::now() + limit,
        )
        .await
        {
            Ok(c) => Ok(c),
            Err(e) if e.is_retryable() => Err(Again::Later(crate::error::chain(&e))),
            Err(e) => Err(Again::Fail(GroupError::Kafka(e))),
        }
    }

    /// One JoinGroup (+ SyncGroup): an assignment, or what to do next.
    async fn join_once(&mut self, deadline: Instant) -> Result<Assigned, Again> {
        let mut conn = self.take_coordinator(deadline).await?;
        let resp = match self.send_join(&mut conn, deadline).await {
            Ok(r) => r,
            Err(Again::Later(why)) => return Err(Again::Later(why)), // connection dropped
            Err(other) => {
                self.coordinator = Some(conn);
                return Err(other);
            }
        };
        self.coordinator = Some(conn);
        self.handle_join_code(&resp)?;
        self.member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        let name = resp
            .protocol_name
            .as_ref()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let Some(assignor) =
            Assignor::from_name(&name).filter(|a| self.config.assignors.contains(a))
        else {
            return Err(Again::Fail(GroupError::Protocol(format!(
                "the coordinator of group {:?} chose assignor {name:?}, which this member did not offer",
                self.config.group
            ))));
        };
        let leader = resp.leader.as_str() == self.member_id;
        let assignments = if leader {
            self.lead(assignor, &resp.members, deadline).await?
        } else {
            Vec::new()
        };
        let bytes = self
            .sync(generation, assignor, assignments, deadline)
            .await?;
        let mut partitions = decode_assignment(&bytes).map_err(|e| {
            Again::Fail(GroupError::Protocol(format!(
                "the assignment of group {:?}'s leader: {e}",
                self.config.group
            )))
        })?;
        partitions.retain(|topic, _| {
            let ours = self.config.topics.contains(topic);
            if !ours {
                tracing::warn!(group = %self.config.group, topic, "the leader assigned a topic this member did not subscribe to; ignored");
            }
            ours
        });
        Ok(Assigned {
            generation,
            member_id: self.member_id.clone(),
            leader,
            assignor,
            partitions,
            took: Duration::ZERO,
            members: if leader { resp.members.len() } else { 0 },
        })
    }

    async fn send_join(
        &mut self,
        conn: &mut Connection,
        deadline: Instant,
    ) -> Result<JoinGroupResponse, Again> {
        let c = &self.config;
        let version = conn
            .version::<JoinGroupRequest>()
            .map_err(|e| self.request_error("JoinGroup", e))?;
        let ms = |d: Duration| d.as_millis() as i32;
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(c.group.clone())))
            .with_session_timeout_ms(ms(c.session_timeout))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(
                c.assignors
                    .iter()
                    .map(|a| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_static_str(a.name()))
                            .with_metadata(self.subscription.clone())
                    })
                    .collect(),
            );
        if version >= 1 {
            req.rebalance_timeout_ms = ms(c.max_poll_interval);
        }
        if let Some(id) = &c.instance_id {
            if version < 5 {
                return Err(Again::Fail(GroupError::Usage(format!(
                    "static membership (group.instance.id) needs JoinGroup v5 (Kafka 2.3 or newer); broker {} speaks v{version}",
                    conn.addr()
                ))));
            }
            req.group_instance_id = Some(StrBytes::from_string(id.clone()));
        }
        // The coordinator holds a JoinGroup until every member has rejoined, up to the
        // rebalance timeout (the Java client waits that long plus 5 s).
        let limit = (c.max_poll_interval + Duration::from_secs(5))
            .max(c.request_timeout)
            .min(offsets::left(deadline));
        conn.request_within(&req, limit)
            .await
            .map_err(|e| self.request_error("JoinGroup", e))
    }

    /// Turns a JoinGroup error code into what to do; `Ok` for none.
    fn handle_join_code(&mut self, resp: &JoinGroupResponse) -> Result<(), Again> {
        let code = resp.error_code;
        let Some(err) = ResponseError::try_from_code(code) else {
            return Ok(());
        };
        let group = &self.config.group;
        let why = || {
            format!(
                "JoinGroup of group {group:?}: {}",
                crate::kafka::connection::error_name(code)
            )
        };
        Err(match err {
            // KIP-394: the coordinator hands out the member id, and wants it back.
            ResponseError::MemberIdRequired => {
                self.member_id = resp.member_id.to_string();
                Again::Now
            }
            ResponseError::UnknownMemberId => {
                self.member_id.clear();
                Again::Now
            }
            ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration => {
                Again::Later(why())
            }
            _ if is_coordinator_code(code) => {
                self.coordinator = None;
                Again::Later(why())
            }
            ResponseError::FencedInstanceId => {
                self.ended = Some(LostReason::Fenced);
                Again::Fail(GroupError::MembershipLost {
                    group: group.clone(),
                    reason: LostReason::Fenced,
                })
            }
            ResponseError::InconsistentGroupProtocol => Again::Fail(GroupError::Usage(format!(
                "group {group:?} has members that are not consumers, or that offer none of this member's assignors ({}); every member must offer the same assignors, or use another group",
                self.config.assignors.iter().map(|a| a.name()).collect::<Vec<_>>().join(",")
            ))),
            ResponseError::InvalidSessionTimeout => Again::Fail(GroupError::Usage(format!(
                "session.timeout.ms {:?} is outside what the broker allows (group.min.session.timeout.ms to group.max.session.timeout.ms, 6 s to 30 min by default)",
                self.config.session_timeout
            ))),
            ResponseError::InvalidGroupId => Again::Fail(GroupError::Usage(format!(
                "{group:?} is not a valid consumer group id"
            ))),
            _ => Again::Fail(GroupError::Broker {
                context: format!("joining group {group:?}"),
                code,
            }),
        })
    }

    /// The leader's part: everyone's assignment, by the chosen assignor.
    async fn lead(
        &mut self,
        assignor: Assignor,
        members: &[JoinGroupResponseMember],
        deadline: Instant,
    ) -> Result<Vec<SyncGroupRequestAssignment>, Again> {
        let subscribed: Vec<assignor::Member> = members
            .iter()
            .map(|m| {
                let topics = match decode_subscription(&m.metadata) {
                    Ok(s) => s.topics,
                    Err(e) => {
                        // One unreadable member must not stop the whole group: it gets nothing.
                        tracing::warn!(group = %self.config.group, member = %m.member_id, error = %e, "cannot read a member's subscription; assigning it nothing");
                        Vec::new()
                    }
                };
                assignor::Member {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                    topics,
                }
            })
            .collect();
        let mut topics: Vec<String> = subscribed.iter().flat_map(|m| m.topics.clone()).collect();
        topics.sort();
        topics.dedup();
        let mut conn = self.take_coordinator(deadline).await?;
        let layout = cluster::layout(
            &mut conn,
            &topics,
            self.config.request_timeout.min(offsets::left(deadline)),
        )
        .await;
        let layout = match layout {
            Ok(l) => {
                self.coordinator = Some(conn);
                l
            }
            Err(e) if e.is_retryable() => return Err(Again::Later(e.to_string())),
            Err(e) => return Err(Again::Fail(e)),
        };
        let assignment = assignor.assign(&subscribed, &layout.partition_counts());
        tracing::info!(group = %self.config.group, assignor = assignor.name(), members = subscribed.len(), assignment = ?assignment, "assigned the group's partitions as its leader");
        Ok(assignment
            .iter()
            .map(|(member, a)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member.clone()))
                    .with_assignment(encode_assignment(a))
            })
            .collect())
    }

    /// SyncGroup: the assignment bytes for this member, or what to do next.
    async fn sync(
        &mut self,
        generation: i32,
        assignor: Assignor,
        assignments: Vec<SyncGroupRequestAssignment>,
        deadline: Instant,
    ) -> Result<Bytes, Again> {
        let mut conn = self.take_coordinator(deadline).await?;
        let version = conn
            .version::<SyncGroupRequest>()
            .map_err(|e| self.request_error("SyncGroup", e))?;
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.config.group.clone())))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_assignments(assignments);
        if version >= 3 {
            req.group_instance_id = self.config.instance_id.clone().map(StrBytes::from_string);
        }
        if version >= 5 {
            req.protocol_type = Some(StrBytes::from_static_str(PROTOCOL_TYPE));
            req.protocol_name = Some(StrBytes::from_static_str(assignor.name()));
        }
        let limit = self.config.request_timeout.min(offsets::left(deadline));
        let resp = conn
            .request_within(&req, limit)
            .await
            .map_err(|e| self.request_error("SyncGroup", e))?;
        self.coordinator = Some(conn);
        let code = resp.error_code;
        let Some(err) = ResponseError::try_from_code(code) else {
            return Ok(resp.assignment);
        };
        let group = &self.config.group;
        let why = format!(
            "SyncGroup of group {group:?}: {}",
            crate::kafka::connection::error_name(code)
        );
        Err(match err {
            // The group moved on while we synced (on tansu also: a follower synced before
            // the leader): join again.
            ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration => {
                Again::Later(why)
            }
            ResponseError::UnknownMemberId => {
                self.member_id.clear();
                Again::Now
            }
            _ if is_coordinator_code(code) => {
                self.coordinator = None;
                Again::Later(why)
            }
            ResponseError::FencedInstanceId => {
                self.ended = Some(LostReason::Fenced);
                Again::Fail(GroupError::MembershipLost {
                    group: group.clone(),
                    reason: LostReason::Fenced,
                })
            }
            _ => Again::Fail(GroupError::Broker {
                context: format!("syncing group {group:?}"),
                code,
            }),
        })
    }

    /// One OffsetCommit of `generation`.
    async fn commit_once(
        &mut self,
        generation: i32,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        deadline: Instant,
    ) -> Result<(), Again> {
        let mut conn = self.take_coordinator(deadline).await?;
        let version = conn
            .version::<OffsetCommitRequest>()
            .map_err(|e| self.request_error("OffsetCommit", e))?;
        let mut req = super::offsets::commit_request(
            &self.config.group,
            generation,
            &self.member_id,
            topic,
            offsets,
        );
        if version >= 7 {
            req.group_instance_id = self.config.instance_id.clone().map(StrBytes::from_string);
        }
        let limit = self.config.request_timeout.min(offsets::left(deadline));
        let resp = conn
            .request_within(&req, limit)
            .await
            .map_err(|e| self.request_error("OffsetCommit", e))?;
        self.coordinator = Some(conn);
        let mut codes: BTreeMap<i32, i16> = BTreeMap::new();
        for t in resp.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            for p in &t.partitions {
                codes.insert(p.partition_index, p.error_code);
            }
        }
        self.commit_outcome(topic, offsets, &codes)
    }

    /// What the per-partition codes of an OffsetCommit answer mean: done, retry (the
    /// coordinator moved, or timed out), or an end of this member's generation.
    fn commit_outcome(
        &mut self,
        topic: &str,
        offsets: &BTreeMap<i32, i64>,
        codes: &BTreeMap<i32, i16>,
    ) -> Result<(), Again> {
        let group = self.config.group.clone();
        let mut retry = None;
        for &p in offsets.keys() {
            let Some(&code) = codes.get(&p) else {
                return Err(Again::Fail(GroupError::Protocol(format!(
                    "committing offsets of group {group:?}: partition {p} of {topic:?} is missing from the coordinator's answer"
                ))));
            };
            let lost = |reason| {
                Again::Fail(GroupError::MembershipLost {
                    group: group.clone(),
                    reason,
                })
            };
            match ResponseError::try_from_code(code) {
                None => {}
                Some(ResponseError::RebalanceInProgress) => {
                    return Err(Again::Fail(GroupError::RebalanceInProgress { group }))
                }
                Some(ResponseError::IllegalGeneration) => {
                    return Err(lost(LostReason::IllegalGeneration))
                }
                Some(ResponseError::UnknownMemberId) => {
                    return Err(lost(LostReason::UnknownMember))
                }
                Some(ResponseError::FencedInstanceId) => return Err(lost(LostReason::Fenced)),
                Some(ResponseError::RequestTimedOut) => retry = Some(code),
                _ if is_coordinator_code(code) => {
                    self.coordinator = None;
                    retry = Some(code);
                }
                _ => {
                    return Err(Again::Fail(GroupError::Broker {
                        context: format!(
                            "committing offsets of group {group:?} for partition {p} of {topic:?}"
                        ),
                        code,
                    }))
                }
            }
        }
        match retry {
            None => Ok(()),
            Some(code) => Err(Again::Later(format!(
                "committing offsets of group {group:?}: {}",
                crate::kafka::connection::error_name(code)
            ))),
        }
    }

    /// A failed request: a broken connection is dropped and the call retried; a protocol
    /// failure is given up.
    fn request_error(&self, api: &str, e: RequestError) -> Again {
        match e {
            e if e.is_retryable() => Again::Later(format!("{api}: {}", crate::error::chain(&e))),
            source => Again::Fail(GroupError::Request {
                context: format!("{api} of group {:?}", self.config.group),
                source,
            }),
        }
    }
}
