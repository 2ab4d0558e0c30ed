//! Who this instance is in the consumer group, and the commit path.
//!
//! - A **member** (the default): the group's coordinator assigns this instance its partitions
//!   (Kafka's classic protocol, [`GroupMember`]), heartbeats run on a task of their own, and a
//!   commit carries the generation and member id, so it is refused once the partitions may
//!   belong to someone else. Its generations end with [`Event`]s.
//! - A **simple consumer** (`assign all`): reads every partition, commits without joining
//!   (generation -1), and has no events: one generation that lasts the whole run.
//!
//! The rest of `consume` drives both the same way: join, read what was assigned, commit,
//! and on an event give the partitions up and join again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::kafka::group::error::GroupError;
use crate::kafka::group::heartbeat::Progress;
use crate::kafka::group::membership::{Event, GroupMember};
use crate::kafka::group::OffsetStore;

pub(crate) enum Member {
    Group(Box<GroupMember>),
    Simple {
        store: Box<OffsetStore>,
        partitions: Vec<i32>,
    },
}

/// What a join gave this instance.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    /// `None` for a simple consumer.
    pub(crate) generation: Option<i32>,
    pub(crate) member_id: String,
    pub(crate) leader: bool,
    /// Of the topic, ascending.
    pub(crate) partitions: Vec<i32>,
    /// From the start of the join to the assignment.
    pub(crate) took: Duration,
    /// Nobody else is in the group (so nobody else reads any partition).
    pub(crate) alone: bool,
}

/// How a commit ended that did not fail outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Commit {
    Done,
    /// The coordinator (or the member itself, knowing its generation is over) refused it:
    /// the partitions may be someone else's now. Nothing was committed.
    Refused(String),
}

impl Member {
    /// Joins the group (the first time, or again after a generation ended) and answers this
    /// instance's partitions of `topic`.
    pub(crate) async fn join(&mut self, topic: &str, again: bool) -> Result<Joined> {
        match self {
            Member::Group(m) => {
                let a = if again {
                    m.rejoin().await?
                } else {
                    m.join().await?
                };
                Ok(Joined {
                    generation: Some(a.generation),
                    member_id: a.member_id.clone(),
                    leader: a.leader,
                    partitions: a.partitions_of(topic),
                    took: a.took,
                    alone: a.leader && a.members == 1,
                })
            }
            Member::Simple { partitions, .. } => Ok(Joined {
                generation: None,
                member_id: String::new(),
                leader: false,
                partitions: partitions.clone(),
                took: Duration::ZERO,
                alone: true,
            }),
        }
    }

    /// Waits for the end of the current generation; never, for a simple consumer.
    /// Cancel-safe.
    pub(crate) async fn next_event(&mut self) -> Event {
        match self {
            Member::Group(m) => m.next_event().await,
            Member::Simple { .. } => std::future::pending().await,
        }
    }

    /// Commits `next` (partition → next offset to read) of `topic`.
    pub(crate) async fn commit(
        &mut self,
        topic: &str,
        next: &BTreeMap<i32, i64>,
    ) -> Result<Commit> {
        match self {
            Member::Group(m) => match m.commit(topic, next).await {
                Ok(()) => Ok(Commit::Done),
                Err(e) if e.needs_rejoin() => Ok(Commit::Refused(e.to_string())),
                Err(e) => Err(e.into()),
            },
            Member::Simple { store, .. } => {
                store.commit(topic, next).await?;
                Ok(Commit::Done)
            }
        }
    }

    /// The group's committed offsets of `partitions` of `topic` (those that have one).
    pub(crate) async fn committed(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        Ok(match self {
            Member::Group(m) => m.committed(topic, partitions).await?,
            Member::Simple { store, .. } => store.fetch(topic, partitions).await?,
        })
    }

    /// Whether partitions gained in a rebalance may still be read by their previous owner
    /// when the join completes: not on a coordinator that refuses old generations (it
    /// completes a rebalance only once every member rejoined, i.e. gave its partitions up),
    /// but on tansu (see [`super::quirks::handover_wait`]), or when it cannot tell.
    pub(crate) async fn handover_unsafe(&mut self) -> bool {
        match self {
            Member::Group(m) => m.checks_generations().await != Some(true),
            Member::Simple { .. } => false,
        }
    }

    /// The max-poll guard's input: fed every time the consumer goes round.
    pub(crate) fn progress(&self) -> Option<Progress> {
        match self {
            Member::Group(m) => Some(m.progress()),
            Member::Simple { .. } => None,
        }
    }

    /// Whether the group assigns the partitions (else: every partition, always).
    pub(crate) fn is_group(&self) -> bool {
        matches!(self, Member::Group(_))
    }

    /// Clean stop: LeaveGroup, so that the others take the partitions at once (a static
    /// member stays, see [`GroupMember::leave`]). Best effort: the coordinator drops a member
    /// that did not leave after its session timeout anyway.
    pub(crate) async fn leave(self) {
        if let Member::Group(m) = self {
            let started = Instant::now();
            if let Err(e) = m.leave().await {
                log_leave_failure(&e, started.elapsed());
            }
        }
    }
}

fn log_leave_failure(e: &GroupError, after: Duration) {
    tracing::warn!(error = %crate::error::chain(e), after_ms = after.as_millis() as u64, "leaving the group failed; the coordinator drops this member after its session timeout");
}
