//! What one `produce` run keeps for the next, through the state file ([`super::state`]):
//! loaded before anything connects, written every second while running and once more at the
//! end, after the last acknowledgement.
//!
//! - For Jetstream: the cursor below which every event is safe ([`super::watermark`]), the
//!   instance it came from, and the dedupe keys of the safe events a restart would be sent
//!   again. The next run starts there and seeds its dedupe with those keys, so a restart
//!   repeats nothing and skips nothing.
//! - For the Twitter spend guard ([`super::budget`]): the posts read this UTC day and month.
//!
//! Writing every second bounds what a crash (rather than a stop) costs: the kept cursor and
//! keys are up to a second old, so the events made safe in that last second are produced
//! again by the next run; and up to a second of post counts is not counted. A clean stop
//! writes the state after the last acknowledgement: nothing is repeated.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::budget::{Budget, Limit, PostCounts};
use super::dedup::Dedup;
use super::intake::Intake;
use super::state::{JetstreamPosition, State, StateError, StateFile};
use super::watermark::Shared;
use crate::logging::{Every, QUIET};
use crate::source::jetstream::stats::JetstreamStats;

/// The spend guard's limits (`None`: no limit).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) per_day: Option<u64>,
    pub(crate) per_month: Option<u64>,
}

/// The Jetstream side of what is kept.
#[derive(Clone)]
pub(crate) struct Cursor {
    pub(crate) watermark: Shared,
    pub(crate) stats: Arc<JetstreamStats>,
    /// The instances' URLs, by their index in the source's list.
    pub(crate) instances: Vec<String>,
}

/// The state of a run, and the file it is kept in.
#[derive(Clone)]
pub(crate) struct Keeper {
    file: StateFile,
    cursor: Option<Cursor>,
    budget: Option<Arc<Mutex<Budget>>>,
    /// What was written last, so that an unchanged state is not written again.
    written: Arc<Mutex<Option<State>>>,
}

impl Keeper {
    /// Loads what the previous run kept. `cursor`: the Jetstream side, when reading Jetstream;
    /// `limits`: the spend guard's, when it is on.
    pub(crate) async fn open(
        file: StateFile,
        cursor: Option<Cursor>,
        limits: Option<Limits>,
    ) -> Result<(Keeper, State), StateError> {
        let reading = file.clone();
        let state = tokio::task::spawn_blocking(move || reading.load())
            .await
            .expect("loading the state does not panic")?;
        let budget = limits.map(|l| {
            Arc::new(Mutex::new(Budget {
                max_per_day: l.per_day,
                max_per_month: l.per_month,
                counts: state
                    .posts
                    .clone()
                    .unwrap_or_else(|| PostCounts::new(chrono::Utc::now())),
            }))
        });
        let keeper = Keeper {
            file,
            cursor,
            budget,
            written: Arc::new(Mutex::new(Some(state.clone()))),
        };
        Ok((keeper, state))
    }

    /// The spend guard, shared with the intake that counts.
    #[cfg(test)]
    pub(crate) fn budget(&self) -> Option<Arc<Mutex<Budget>>> {
        self.budget.clone()
    }

    /// Hooks the intake up: it tracks each event's cursor, and counts posts for the guard.
    pub(crate) fn attach(&self, mut intake: Intake) -> Intake {
        if let Some(c) = &self.cursor {
            intake = intake.with_cursors(c.watermark.clone());
        }
        if let Some(b) = &self.budget {
            intake = intake.with_budget(b.clone());
        }
        intake
    }

    /// The Jetstream cursor as it would be kept now.
    pub(crate) fn cursor(&self) -> Option<i64> {
        self.current().jetstream.map(|j| j.time_us)
    }

    /// `Err` when a spend limit is already reached: nothing may be read now.
    pub(crate) fn check_budget(&self) -> Result<(), Limit> {
        match &self.budget {
            Some(b) => lock(b).check(chrono::Utc::now()),
            None => Ok(()),
        }
    }

    /// The post counts as they are now.
    pub(crate) fn post_counts(&self) -> Option<PostCounts> {
        self.budget.as_ref().map(|b| lock(b).counts.clone())
    }

    /// Starts the dedupe with the keys of the events the previous run had made safe.
    pub(crate) fn seed(state: &State, dedup: &mut Dedup) {
        let now = std::time::Instant::now();
        for &key in state.jetstream.iter().flat_map(|j| &j.recent) {
            dedup.insert_key(key, now);
        }
    }

    /// The state as it is now.
    fn current(&self) -> State {
        let previous = lock(&self.written).clone().unwrap_or_default();
        let jetstream = match &self.cursor {
            Some(c) => match c.watermark.snapshot() {
                (Some(time_us), recent) => {
                    let i = JetstreamStats::get(&c.stats.instance) as usize;
                    Some(JetstreamPosition {
                        time_us,
                        instance: c.instances.get(i).cloned(),
                        recent,
                    })
                }
                // Nothing read yet: keep what the previous run kept.
                (None, _) => previous.jetstream,
            },
            None => previous.jetstream,
        };
        State {
            jetstream,
            posts: self.post_counts().or(previous.posts),
        }
    }

    /// Writes the state if it changed since the last write.
    pub(crate) async fn save(&self) -> Result<(), StateError> {
        let state = self.current();
        if lock(&self.written).as_ref() == Some(&state) {
            return Ok(());
        }
        let file = self.file.clone();
        let saving = state.clone();
        tokio::task::spawn_blocking(move || file.save(&saving))
            .await
            .expect("saving the state does not panic")?;
        *lock(&self.written) = Some(state);
        Ok(())
    }

    /// Writes the state every `every` until aborted. A failed write is reported and tried
    /// again; the final [`Keeper::save`] at the end of the run reports its error to the user.
    pub(crate) fn spawn(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let keeper = self.clone();
        tokio::spawn(async move {
            let mut failing = Every::new(QUIET);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = keeper.save().await {
                    if let Some(n) = failing.tick() {
                        tracing::error!(
                            failures_since_last_report = n,
                            "{}",
                            crate::error::chain(&e)
                        );
                    }
                }
            }
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            watermark: Shared::new(10_000_000),
            stats: Arc::new(JetstreamStats::default()),
            instances: vec!["ws://a/subscribe".into(), "ws://b/subscribe".into()],
        }
    }

    #[tokio::test]
    async fn keeps_the_safe_cursor_and_the_counts_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        let limits = Limits {
            per_day: Some(3),
            per_month: None,
        };
        let c = cursor();
        let (k, state) = Keeper::open(file.clone(), Some(c.clone()), Some(limits))
            .await
            .unwrap();
        assert_eq!(state, State::default());
        k.save().await.unwrap();
        assert!(
            !file.path().exists() || file.load().unwrap().jetstream.is_none(),
            "nothing read: no cursor"
        );
        // Two events read, the second made safe first; a post counted.
        let a = c.watermark.mark(1_000, Some(11));
        let b = c.watermark.mark(2_000, Some(22));
        JetstreamStats::set(&c.stats.instance, 1);
        drop(b);
        k.budget()
            .unwrap()
            .lock()
            .unwrap()
            .count(chrono::Utc::now())
            .unwrap();
        k.save().await.unwrap();
        let kept = file.load().unwrap();
        let j = kept.jetstream.clone().unwrap();
        assert_eq!((j.time_us, j.recent.clone()), (1_000, vec![22]));
        assert_eq!(j.instance.as_deref(), Some("ws://b/subscribe"));
        assert_eq!(kept.posts.unwrap().day_posts, 1);
        drop(a);
        k.save().await.unwrap();
        let j = file.load().unwrap().jetstream.unwrap();
        assert_eq!(j.time_us, 2_000);

        // The next run: the dedupe starts with the safe events' keys; the counts go on.
        let (k2, state) = Keeper::open(file.clone(), Some(cursor()), Some(limits))
            .await
            .unwrap();
        let mut dedup = Dedup::new(Duration::from_secs(600), 100);
        Keeper::seed(&state, &mut dedup);
        assert_eq!(dedup.len(), 2);
        let b = k2.budget().unwrap();
        assert_eq!(b.lock().unwrap().count(chrono::Utc::now()), Ok(()));
        assert_eq!(b.lock().unwrap().count(chrono::Utc::now()), Err(Limit::Day));
        assert_eq!(k2.check_budget(), Err(Limit::Day));
        // Nothing read in this run: the kept cursor stays.
        k2.save().await.unwrap();
        assert_eq!(file.load().unwrap().jetstream.unwrap().time_us, 2_000);
    }
}
