//! The life of a consumer in its group, one generation after another:
//!
//! 1. join, and get this instance's partitions;
//! 2. settle the output with the group's offsets, find where each partition starts, commit
//!    that position, start a fetch task per partition ([`super::assignment`]);
//! 3. write until the generation ends ([`super::writer`]);
//! 4. on a **revocation** (a rebalance): stop fetching, make the output durable, commit with
//!    the generation (the coordinator still takes it), then join again; on a **lost**
//!    membership (or a refused commit): stop fetching, commit nothing, have the sink drop
//!    what it wrote past the last commit (the partitions' next owner writes it), join again;
//! 5. on a clean stop: the final commit, the sink closed, LeaveGroup ([`Consumer::finish`]).
//!
//! A simple consumer (`assign all`) runs the same steps with one generation of every
//! partition that never ends. Each assignment is recorded for the stats and the summary
//! ([`stats::Rebalance`]), and the summary file is rewritten with it.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::assignment::{self, Reading, Topic};
use super::member::{Commit, Joined, Member};
use super::start::StartFrom;
use super::stats::{self, Rebalance};
use super::writer::{Limits, Stopped, Writer};
use crate::error::Result;
use crate::kafka::group::membership::Event;
use crate::shutdown::Shutdown;

pub(crate) struct Consumer {
    pub(crate) writer: Writer,
    pub(crate) member: Member,
    pub(crate) topic: Topic,
    pub(crate) from: StartFrom,
    pub(crate) limits: Limits,
    pub(crate) membership: stats::Membership,
    pub(crate) started: Instant,
    pub(crate) summary_file: Option<PathBuf>,
    /// A member's wait before reading partitions it gained ([`super::quirks::handover_wait`]).
    pub(crate) handover: Option<Duration>,
}

/// What ended a generation, for the next assignment's record.
struct Ended {
    at: Instant,
    cause: String,
}

impl Consumer {
    /// Reads until a stop condition; a partition's fatal error comes back as `Ok(Some(..))`,
    /// so that what was written is still committed.
    pub(crate) async fn run(&mut self, shutdown: &Shutdown) -> Result<Option<String>> {
        let mut ended = Ended {
            at: self.started,
            cause: "start".into(),
        };
        let mut again = false;
        loop {
            let joined = tokio::select! {
                j = self.member.join(&self.topic.name, again) => j?,
                _ = shutdown.wait() => return Ok(None),
            };
            again = true;
            if !self.handed_over(&joined, shutdown).await {
                return Ok(None);
            }
            let Some(mut reading) = self.begin(&joined, &ended).await? else {
                self.give_up("the commit of the start position was refused")?;
                ended = Ended {
                    at: Instant::now(),
                    cause: "lost".into(),
                };
                continue;
            };
            let stopped = self
                .writer
                .run(&mut reading.rx, &self.limits, shutdown, &mut self.member)
                .await?;
            drop(reading); // stops fetching
            let at = Instant::now();
            let cause = match stopped {
                Stopped::Done => return Ok(None),
                Stopped::Fatal(e) => return Ok(Some(e)),
                Stopped::Ended(Event::Revoke { .. }) => {
                    self.revoke().await?;
                    "revoked"
                }
                Stopped::Ended(Event::Lost { reason, .. }) => {
                    self.give_up(&reason.to_string())?;
                    "lost"
                }
                Stopped::Refused(why) => {
                    self.give_up(&why)?;
                    "lost"
                }
            };
            ended = Ended {
                at,
                cause: cause.into(),
            };
        }
    }

    /// Waits until the previous owners of the partitions this join gained have had time to
    /// give them up (see [`super::quirks::handover_wait`]); `false` on a shutdown meanwhile.
    async fn handed_over(&mut self, joined: &Joined, shutdown: &Shutdown) -> bool {
        let gained: Vec<i32> = joined
            .partitions
            .iter()
            .filter(|p| !self.membership.partitions.contains(p))
            .copied()
            .collect();
        let Some(wait) = self
            .handover
            .filter(|_| !joined.alone && !gained.is_empty())
        else {
            return true;
        };
        if !self.member.handover_unsafe().await {
            return true;
        }
        tracing::debug!(partitions = ?gained, ?wait, "waiting for the partitions' previous owners to commit");
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = shutdown.wait() => false,
        }
    }

    /// Starts reading an assignment; `None` when the membership ended already.
    async fn begin(&mut self, joined: &Joined, ended: &Ended) -> Result<Option<Reading>> {
        let next = assignment::start_offsets(
            &self.topic,
            &mut *self.writer.sink,
            &mut self.member,
            &joined.partitions,
            &self.from,
        )
        .await?;
        tracing::info!(topic = %self.topic.name, group = %self.membership.group, generation = joined.generation.unwrap_or(-1), start = ?next, "consuming");
        self.writer.assign(next.clone(), joined.generation);
        // The start becomes the committed position: what the sink kept past the group's
        // offsets is then committed, and the sink knows where this generation begins.
        if let Commit::Refused(why) = self.writer.durable_commit(&mut self.member).await? {
            tracing::warn!(reason = %why, "the group refused the commit of the start position");
            return Ok(None);
        }
        let reading = assignment::spawn(&self.topic, &next);
        self.record(joined, ended);
        Ok(Some(reading))
    }

    /// Notes the new assignment (log, summary).
    fn record(&mut self, joined: &Joined, ended: &Ended) {
        let m = &mut self.membership;
        let revoked = m
            .partitions
            .iter()
            .filter(|p| !joined.partitions.contains(p))
            .copied()
            .collect();
        let r = Rebalance {
            generation: joined.generation,
            cause: ended.cause.clone(),
            assigned: joined.partitions.clone(),
            revoked,
            took_ms: ended.at.elapsed().as_millis() as u64,
            join_ms: joined.took.as_millis() as u64,
            leader: joined.leader,
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        r.log();
        m.partitions = joined.partitions.clone();
        m.generation = joined.generation;
        m.member_id = joined.member_id.clone();
        m.rebalances.push(r);
        self.write_running_summary();
    }

    /// A rebalance: commit what was written (the coordinator still accepts this
    /// generation's commits), then give the partitions up.
    async fn revoke(&mut self) -> Result<()> {
        let owned: Vec<i32> = self.writer.next.keys().copied().collect();
        if let Commit::Refused(why) = self.writer.durable_commit(&mut self.member).await? {
            tracing::warn!(reason = %why, "the commit of the revoked partitions was refused; what was written since the last commit is removed, and their next owner writes it");
        }
        self.writer.sink.revoke(&owned)?;
        self.writer.release();
        Ok(())
    }

    /// The membership is over without a commit: the partitions may be read by someone else
    /// already, so what was written past the last commit goes.
    fn give_up(&mut self, why: &str) -> Result<()> {
        let owned = self.writer.release();
        tracing::warn!(partitions = ?owned, reason = why, "gave the partitions up without a commit");
        self.writer.sink.revoke(&owned)?;
        Ok(())
    }

    /// The clean stop after [`Consumer::run`]: the final commit, the sink closed, LeaveGroup,
    /// the summary. On a failure the output is left as it is (its uncommitted part is
    /// reconciled by the next run) and the group is left, so that others take over at once.
    pub(crate) async fn finish(mut self, ran: Result<Option<String>>) -> Result<Option<String>> {
        let fatal = match ran {
            Ok(f) => f,
            Err(e) => {
                self.member.leave().await;
                return Err(e);
            }
        };
        match self.writer.durable_commit(&mut self.member).await {
            Ok(Commit::Done) => {}
            Ok(Commit::Refused(why)) => self.give_up(&why)?,
            Err(e) => {
                self.member.leave().await;
                return Err(e);
            }
        }
        self.writer.sink.close().await?;
        let summary = self.summary("stopped");
        summary.log();
        if let Some(path) = &self.summary_file {
            crate::logging::write_summary(path, &summary)?;
        }
        self.member.leave().await;
        Ok(fatal)
    }

    fn summary(&self, state: &'static str) -> stats::Summary {
        let mut s = stats::Summary::new(
            &self.writer.totals,
            &self.writer.next,
            self.started.elapsed(),
            &self.membership,
        );
        s.state = state;
        s
    }

    /// While running: the summary so far, for scripts and tests that watch the assignment.
    fn write_running_summary(&self) {
        let Some(path) = &self.summary_file else {
            return;
        };
        if let Err(e) = crate::logging::write_summary(path, &self.summary("running")) {
            tracing::warn!(error = %e, "cannot write the summary file");
        }
    }
}
