//! Where each connection resumes, and noticing when a resume could not cover the time since.
//!
//! **The cursor to ask for.** At start, the cursor tweetpipe kept (the state file's: the
//! `time_us` below which every event is safe) or none (live). After a reconnect in the same
//! run, the `time_us` of the last event read, since everything read was handed to the intake
//! (which never refuses: it spills, or drops and counts). Either way we ask for a few seconds
//! *earlier* ([`ResumeConfig::rewind`]) because events do not arrive in exact `time_us`
//! order, and the overlap the server sends again is dropped by the intake's dedupe. On
//! another instance than the one the position came from we rewind further
//! ([`ResumeConfig::failover_rewind`]): each instance stamps `time_us` with its own clock,
//! at its own point of the relay's stream.
//!
//! **Gaps.** Jetstream keeps about a day and silently starts an older cursor at the oldest
//! event it has. We cannot see that directly, so we judge from the first event after a
//! resume, against the position resumed from (before the rewind): when that position is
//! older than the server keeps ([`ResumeConfig::retention`]) and the first event is later
//! than it, the events in between are gone (a *gap*); when the first event comes much later
//! ([`ResumeConfig::quiet_threshold`]) on a stream that is not filtered by account, either
//! the stream was quiet or events were missing (a *possible gap*). Each is reported once,
//! with its start, end and length.

use std::time::Duration;

/// How resuming behaves.
#[derive(Debug, Clone)]
pub(crate) struct ResumeConfig {
    pub rewind: Duration,
    pub failover_rewind: Duration,
    /// How far back the server keeps events (Jetstream: about a day).
    pub retention: Duration,
    /// A first event this long after the cursor is reported as a possible gap.
    pub quiet_threshold: Duration,
    /// The subscription names accounts: long silences are normal, only report certain gaps.
    pub filtered_by_account: bool,
}

impl Default for ResumeConfig {
    fn default() -> Self {
        ResumeConfig {
            rewind: Duration::from_secs(5),
            failover_rewind: Duration::from_secs(60),
            retention: Duration::from_secs(24 * 3600),
            quiet_threshold: Duration::from_secs(120),
            filtered_by_account: false,
        }
    }
}

/// Events that may be missing: from `start_us` to `end_us` (`time_us` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub start_us: i64,
    pub end_us: i64,
    /// The cursor was older than the server keeps: events are certainly missing.
    pub certain: bool,
}

impl Gap {
    pub(crate) fn length(&self) -> Duration {
        Duration::from_micros((self.end_us - self.start_us).max(0) as u64)
    }
}

/// The resume state of one source run.
#[derive(Debug)]
pub(crate) struct Resume {
    cfg: ResumeConfig,
    /// `time_us` of the last event read, and the instance that sent it (`None`: unknown, as
    /// for a cursor from the state file that names no instance).
    last: Option<(i64, Option<usize>)>,
    /// The position the current connection resumed from (before the rewind), until its first
    /// event arrives.
    awaiting_first: Option<i64>,
    /// The start of the last gap reported, so that one gap is reported once.
    reported: Option<i64>,
}

impl Resume {
    /// `start`: the kept cursor and the instance it came from, if known.
    pub(crate) fn new(cfg: ResumeConfig, start: Option<(i64, Option<usize>)>) -> Self {
        Resume {
            cfg,
            last: start,
            awaiting_first: None,
            reported: None,
        }
    }

    /// The cursor to ask `instance` for (None: live), and remembers it for the gap check.
    pub(crate) fn cursor_for(&mut self, instance: usize) -> Option<i64> {
        let (time_us, from) = self.last?;
        let rewind = if from == Some(instance) {
            self.cfg.rewind
        } else {
            self.cfg.failover_rewind
        };
        self.awaiting_first = Some(time_us);
        Some(time_us.saturating_sub(rewind.as_micros() as i64).max(0))
    }

    /// An event with this `time_us` arrived from `instance`. Returns a gap to report, once.
    pub(crate) fn observe(&mut self, time_us: i64, instance: usize, now_us: i64) -> Option<Gap> {
        self.last = Some((time_us, Some(instance)));
        let from = self.awaiting_first.take()?;
        let after = time_us - from;
        let certain = after > 0 && now_us - from > self.cfg.retention.as_micros() as i64;
        let possible =
            !self.cfg.filtered_by_account && after > self.cfg.quiet_threshold.as_micros() as i64;
        if !(certain || possible) || self.reported == Some(from) {
            return None;
        }
        self.reported = Some(from);
        Some(Gap {
            start_us: from,
            end_us: time_us,
            certain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const NOW: i64 = 1_783_175_888 * S;

    #[test]
    fn live_until_something_was_read() {
        let mut r = Resume::new(ResumeConfig::default(), None);
        assert_eq!(r.cursor_for(0), None);
        assert_eq!(r.observe(NOW, 0, NOW), None);
        assert_eq!(r.cursor_for(0), Some(NOW - 5 * S));
        // Another instance: rewound further.
        assert_eq!(r.cursor_for(1), Some(NOW - 60 * S));
    }

    #[test]
    fn kept_cursor_of_unknown_origin_is_rewound_as_for_another_instance() {
        let mut r = Resume::new(ResumeConfig::default(), Some((NOW, None)));
        assert_eq!(r.cursor_for(0), Some(NOW - 60 * S));
        let mut r = Resume::new(ResumeConfig::default(), Some((NOW, Some(2))));
        assert_eq!(r.cursor_for(2), Some(NOW - 5 * S));
    }

    #[test]
    fn a_cursor_older_than_the_server_keeps_is_a_gap_reported_once() {
        let old = NOW - 30 * 3600 * S;
        let mut r = Resume::new(ResumeConfig::default(), Some((old, Some(0))));
        assert_eq!(r.cursor_for(0), Some(old - 5 * S));
        // The server started at the oldest it had: 6 hours later.
        let first = NOW - 24 * 3600 * S;
        let gap = r.observe(first, 0, NOW).unwrap();
        assert_eq!(
            gap,
            Gap {
                start_us: old,
                end_us: first,
                certain: true
            }
        );
        assert_eq!(gap.length(), Duration::from_secs(6 * 3600));
        // Later events on the same connection report nothing.
        assert_eq!(r.observe(first + S, 0, NOW), None);
    }

    #[test]
    fn a_late_first_event_is_a_possible_gap_unless_accounts_are_filtered() {
        let mut r = Resume::new(ResumeConfig::default(), Some((NOW - 3600 * S, Some(0))));
        r.cursor_for(0);
        let gap = r.observe(NOW - 1800 * S, 0, NOW).unwrap();
        assert!(!gap.certain);
        assert_eq!(gap.length(), Duration::from_secs(1800));
        // A prompt first event: nothing.
        let mut r = Resume::new(ResumeConfig::default(), Some((NOW - 3600 * S, Some(0))));
        r.cursor_for(0);
        assert_eq!(r.observe(NOW - 3600 * S - 3 * S, 0, NOW), None);
        // Filtered by account: silence is normal.
        let cfg = ResumeConfig {
            filtered_by_account: true,
            ..ResumeConfig::default()
        };
        let mut r = Resume::new(cfg, Some((NOW - 3600 * S, Some(0))));
        r.cursor_for(0);
        assert_eq!(r.observe(NOW - 1800 * S, 0, NOW), None);
    }

    #[test]
    fn the_same_gap_is_not_reported_on_every_reconnect() {
        let old = NOW - 30 * 3600 * S;
        let mut r = Resume::new(ResumeConfig::default(), Some((old, Some(0))));
        r.cursor_for(0);
        // The connection dropped before its first event; the next asks for the same cursor.
        r.cursor_for(0);
        assert!(r.observe(NOW - 24 * 3600 * S, 0, NOW).is_some());
        // Resuming at the retention edge: the replayed overlap comes first, no gap.
        r.cursor_for(0);
        assert_eq!(r.observe(NOW - 24 * 3600 * S - 2 * S, 0, NOW), None);
    }
}
