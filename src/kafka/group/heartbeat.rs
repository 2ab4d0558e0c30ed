//! The heartbeat of one generation: a task with a coordinator connection of its own, so that a
//! heartbeat never waits behind a fetch, a write, a commit or a slow disk; and the max-poll
//! guard, which makes an instance that stopped making progress leave the group by itself
//! rather than hold its partitions while its heartbeats say it is fine.
//!
//! The task only reports; the member and the consumer act. What it saw is a [`Health`] in a
//! `watch` channel: `Stable` → `Rebalancing` (REBALANCE_IN_PROGRESS: the consumer should
//! revoke and rejoin; heartbeats go on meanwhile, which keeps the session alive while the
//! output is made durable) → `Lost` (the task then stops). A `watch` cannot lose a report and
//! can be read at any time, which is what a commit does before it is sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::{ApiKey, GroupId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use super::error::{is_coordinator_code, LostReason};
use super::offsets::find_coordinator;
use crate::kafka::connection::{error_name, Connection};
use crate::kafka::security::Security;

/// What the heartbeats say about the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    Stable,
    /// The coordinator started a rebalance: revoke, commit, rejoin.
    Rebalancing,
    /// Our membership ended; the partitions may be someone else's already.
    Lost(LostReason),
}

/// "The consumer made progress": fed by the consumer loop, read by the max-poll guard. Cheap
/// to feed (one atomic store) and to clone.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    base: Instant,
    /// Milliseconds from `base` to the last progress.
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records that the consumer loop went round (wrote, committed, or found nothing to do).
    pub(crate) fn made_progress(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last progress.
    pub(crate) fn idle(&self) -> Duration {
        let last = self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        last.elapsed()
    }
}

/// Everything the task needs; copied out of the member so the task owns it.
#[derive(Debug, Clone)]
pub(super) struct Params {
    pub brokers: Vec<String>,
    pub security: Security,
    pub caps: Vec<(ApiKey, i16)>,
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub interval: Duration,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    pub request_timeout: Duration,
}

/// The running task; stops it when dropped.
pub(super) struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    pub health: watch::Receiver<Health>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts heartbeating `params.generation`.
pub(super) fn start(params: Params, progress: Progress) -> Heartbeat {
    let (tx, health) = watch::channel(Health::Stable);
    let task = tokio::spawn(run(params, progress, tx));
    Heartbeat { task, health }
}

async fn run(p: Params, progress: Progress, tx: watch::Sender<Health>) {
    let mut conn: Option<Connection> = None;
    let mut last_answer = Instant::now();
    let mut next_beat = Instant::now() + p.interval;
    let mut failures = 0u32;
    loop {
        // Wake for the next heartbeat, or earlier when the max poll interval runs out.
        let guard = Instant::now() + p.max_poll_interval.saturating_sub(progress.idle());
        tokio::time::sleep_until(next_beat.min(guard).into()).await;
        if progress.idle() >= p.max_poll_interval {
            tracing::warn!(
                group = %p.group,
                idle = ?progress.idle(),
                max_poll_interval = ?p.max_poll_interval,
                "the consumer made no progress within max.poll.interval.ms; leaving the group so that others take its partitions"
            );
            leave(&mut conn, &p).await;
            let _ = tx.send(Health::Lost(LostReason::MaxPollIntervalExceeded));
            return;
        }
        if Instant::now() < next_beat {
            continue; // woken for the guard only
        }
        let outcome = match beat(&mut conn, &p).await {
            Ok(code) => classify(code, &p),
            Err(why) => {
                tracing::debug!(group = %p.group, error = %why, "heartbeat failed; retrying");
                Beat::Failed { reconnect: true }
            }
        };
        match outcome {
            Beat::Answered | Beat::Rebalancing => {
                last_answer = Instant::now();
                failures = 0;
            }
            Beat::Lost(reason) => {
                tracing::warn!(group = %p.group, generation = p.generation, %reason, "membership lost");
                let _ = tx.send(Health::Lost(reason));
                return;
            }
            Beat::Failed { reconnect } => {
                if reconnect {
                    conn = None;
                }
                failures += 1;
            }
        }
        if outcome == Beat::Rebalancing && *tx.borrow() == Health::Stable {
            tracing::info!(group = %p.group, generation = p.generation, "the group is rebalancing");
            if tx.send(Health::Rebalancing).is_err() {
                return;
            }
        }
        if last_answer.elapsed() >= p.session_timeout {
            tracing::warn!(group = %p.group, "no heartbeat answered within the session timeout; the coordinator has likely given our partitions away");
            let _ = tx.send(Health::Lost(LostReason::SessionTimedOut));
            return;
        }
        if tx.is_closed() {
            return;
        }
        // After a failure, try again soon (100 ms, doubling), but never later than the interval.
        next_beat = Instant::now()
            + if failures == 0 {
                p.interval
            } else {
                (Duration::from_millis(100) * (1 << failures.min(6))).min(p.interval)
            };
    }
}

/// What one heartbeat's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Beat {
    Answered,
    Rebalancing,
    Lost(LostReason),
    /// Try again soon; `reconnect`: on a new connection (found anew).
    Failed {
        reconnect: bool,
    },
}

fn classify(code: i16, p: &Params) -> Beat {
    match ResponseError::try_from_code(code) {
        None => Beat::Answered,
        Some(ResponseError::RebalanceInProgress) => Beat::Rebalancing,
        Some(ResponseError::UnknownMemberId) => Beat::Lost(LostReason::UnknownMember),
        Some(ResponseError::IllegalGeneration) => Beat::Lost(LostReason::IllegalGeneration),
        Some(ResponseError::FencedInstanceId) => Beat::Lost(LostReason::Fenced),
        Some(_) if is_coordinator_code(code) => Beat::Failed { reconnect: true },
        Some(_) => {
            tracing::warn!(group = %p.group, error = %error_name(code), "heartbeat refused; retrying");
            Beat::Failed { reconnect: false }
        }
    }
}

/// One Heartbeat; the error code, or why there was no answer.
async fn beat(conn: &mut Option<Connection>, p: &Params) -> Result<i16, String> {
    let limit = p.request_timeout.min(p.session_timeout);
    let c = connected(conn, p, limit).await?;
    let version = c.version::<HeartbeatRequest>().map_err(|e| e.to_string())?;
    let mut req = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(p.group.clone())))
        .with_generation_id(p.generation)
        .with_member_id(StrBytes::from_string(p.member_id.clone()));
    if version >= 3 {
        req.group_instance_id = p.instance_id.clone().map(StrBytes::from_string);
    }
    let resp = c
        .request_within(&req, limit)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.error_code)
}

/// A Heartbeat of `generation` (one that is over) on `conn`: whether the coordinator refuses
/// it as ILLEGAL_GENERATION (`Some(true)`), or takes it for a rebalance or answers it
/// (`Some(false)`); `None` for any other answer.
pub(super) async fn stale_generation_refused(
    conn: &mut Connection,
    group: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    limit: Duration,
) -> Result<Option<bool>, String> {
    let version = conn
        .version::<HeartbeatRequest>()
        .map_err(|e| e.to_string())?;
    let mut req = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()));
    if version >= 3 {
        req.group_instance_id = instance_id.map(|i| StrBytes::from_string(i.to_string()));
    }
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match ResponseError::try_from_code(resp.error_code) {
        Some(ResponseError::IllegalGeneration) => Some(true),
        None | Some(ResponseError::RebalanceInProgress) => Some(false),
        Some(_) => None,
    })
}

/// The heartbeat's own coordinator connection, found again after a failure.
async fn connected<'a>(
    conn: &'a mut Option<Connection>,
    p: &Params,
    limit: Duration,
) -> Result<&'a mut Connection, String> {
    if conn.is_none() {
        let deadline = Instant::now() + limit;
        let cluster = crate::kafka::Cluster {
            brokers: p.brokers.clone(),
            timeout: limit,
            security: p.security.clone(),
        };
        let c = find_coordinator(&cluster, &p.group, &p.caps, deadline)
            .await
            .map_err(|e| crate::error::chain(&e))?;
        *conn = Some(c);
    }
    Ok(conn.as_mut().expect("just connected"))
}

/// LeaveGroup for this member, best effort within the request timeout: the max-poll guard's
/// way out, and [`super::membership::GroupMember::leave`]'s.
pub(super) async fn leave(conn: &mut Option<Connection>, p: &Params) {
    let outcome = async {
        let c = connected(conn, p, p.request_timeout).await?;
        send_leave(
            c,
            &p.group,
            &p.member_id,
            p.instance_id.as_deref(),
            p.request_timeout,
        )
        .await
    }
    .await;
    match outcome {
        Ok(()) => tracing::info!(group = %p.group, member = %p.member_id, "left the group"),
        Err(why) => {
            tracing::warn!(group = %p.group, error = %why, "LeaveGroup failed; the coordinator will drop this member after the session timeout")
        }
    }
}

/// LeaveGroup on `conn`: v0-2 name the member id, v3+ list the members (KIP-345), which lets a
/// static member leave by its instance id too.
pub(super) async fn send_leave(
    conn: &mut Connection,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    limit: Duration,
) -> Result<(), String> {
    let version = conn
        .version::<LeaveGroupRequest>()
        .map_err(|e| e.to_string())?;
    let mut req =
        LeaveGroupRequest::default().with_group_id(GroupId(StrBytes::from_string(group.into())));
    if version >= 3 {
        let mut me = MemberIdentity::default()
            .with_member_id(StrBytes::from_string(member_id.into()))
            .with_group_instance_id(instance_id.map(|i| StrBytes::from_string(i.into())));
        if version >= 5 {
            me.reason = Some(StrBytes::from_static_str("the consumer is stopping"));
        }
        req.members = vec![me];
    } else {
        req.member_id = StrBytes::from_string(member_id.into());
    }
    let resp = conn
        .request_within(&req, limit)
        .await
        .map_err(|e| e.to_string())?;
    let code = if resp.error_code != 0 {
        resp.error_code
    } else {
        resp.members
            .iter()
            .map(|m| m.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0)
    };
    match ResponseError::try_from_code(code) {
        // Already gone (evicted, or the group moved on): the outcome we wanted.
        None | Some(ResponseError::UnknownMemberId) => Ok(()),
        Some(_) => Err(format!(
            "LeaveGroup to {}: {}",
            conn.addr(),
            error_name(code)
        )),
    }
}
