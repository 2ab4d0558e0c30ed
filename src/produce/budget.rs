//! The Twitter spend guard: posts read per UTC day and per UTC month, against
//! `--max-posts-per-day` and `--max-posts-per-month`.
//!
//! X bills the v2 filtered stream per post delivered (the same post once per UTC day), so a
//! busy rule can cost hundreds of dollars a day. The guard counts every post the stream
//! delivers (before any dedupe: a post delivered twice in a day was billed once, so counting
//! it twice errs on the cheap side) and says stop when one more would exceed a limit; the
//! counts live in the state file so that a restart does not start them at zero.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// Posts read in the current UTC day and month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostCounts {
    /// The UTC day `day_posts` counts.
    pub day: NaiveDate,
    pub day_posts: u64,
    /// The first day of the UTC month `month_posts` counts.
    pub month: NaiveDate,
    pub month_posts: u64,
}

impl PostCounts {
    pub(crate) fn new(now: DateTime<Utc>) -> Self {
        let day = now.date_naive();
        PostCounts {
            day,
            day_posts: 0,
            month: first_of_month(day),
            month_posts: 0,
        }
    }

    /// Starts new counts when the day or the month changed.
    fn roll(&mut self, now: DateTime<Utc>) {
        let day = now.date_naive();
        if day != self.day {
            self.day = day;
            self.day_posts = 0;
        }
        let month = first_of_month(day);
        if month != self.month {
            self.month = month;
            self.month_posts = 0;
        }
    }
}

pub(crate) fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

/// Which limit a stop is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Day,
    Month,
}

/// The limits and the counts.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub max_per_day: Option<u64>,
    pub max_per_month: Option<u64>,
    pub counts: PostCounts,
}

impl Budget {
    /// Counts one post read at `now`. `Err` when that post reached a limit: it is the last one
    /// the stream may deliver, so the caller stops reading now (the next would exceed it).
    pub(crate) fn count(&mut self, now: DateTime<Utc>) -> Result<(), Limit> {
        self.counts.roll(now);
        self.counts.day_posts += 1;
        self.counts.month_posts += 1;
        self.check_reached()
    }

    /// Before connecting: `Err` when a limit is already reached (nothing more may be read
    /// until the day or month changes).
    pub(crate) fn check(&mut self, now: DateTime<Utc>) -> Result<(), Limit> {
        self.counts.roll(now);
        self.check_reached()
    }

    fn check_reached(&self) -> Result<(), Limit> {
        if self
            .max_per_day
            .is_some_and(|max| self.counts.day_posts >= max)
        {
            return Err(Limit::Day);
        }
        if self
            .max_per_month
            .is_some_and(|max| self.counts.month_posts >= max)
        {
            return Err(Limit::Month);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn stops_at_the_daily_limit_and_starts_again_the_next_utc_day() {
        let now = at("2026-03-31T23:59:00Z");
        let mut b = Budget {
            max_per_day: Some(3),
            max_per_month: None,
            counts: PostCounts::new(now),
        };
        assert_eq!(b.check(now), Ok(()));
        assert_eq!(b.count(now), Ok(()));
        assert_eq!(b.count(now), Ok(()));
        assert_eq!(b.count(now), Err(Limit::Day), "the third is the last one");
        assert_eq!(b.check(now), Err(Limit::Day));
        let next = at("2026-04-01T00:00:01Z");
        assert_eq!(b.check(next), Ok(()));
        assert_eq!(b.counts.day_posts, 0);
        assert_eq!(b.counts.month_posts, 0, "a new month too");
        assert_eq!(b.counts.month, NaiveDate::from_ymd_opt(2026, 4, 1).unwrap());
    }

    #[test]
    fn the_monthly_limit_spans_days() {
        let mut b = Budget {
            max_per_day: Some(10),
            max_per_month: Some(4),
            counts: PostCounts::new(at("2026-02-01T10:00:00Z")),
        };
        for day in [
            "2026-02-01T10:00:00Z",
            "2026-02-02T10:00:00Z",
            "2026-02-03T10:00:00Z",
        ] {
            assert_eq!(b.count(at(day)), Ok(()));
        }
        assert_eq!(b.count(at("2026-02-28T23:00:00Z")), Err(Limit::Month));
        assert_eq!(b.counts.day_posts, 1);
        assert_eq!(b.check(at("2026-03-01T00:00:00Z")), Ok(()));
    }

    #[test]
    fn without_limits_it_only_counts() {
        let now = at("2026-02-01T10:00:00Z");
        let mut b = Budget {
            max_per_day: None,
            max_per_month: None,
            counts: PostCounts::new(now),
        };
        for _ in 0..1000 {
            assert_eq!(b.count(now), Ok(()));
        }
        assert_eq!((b.counts.day_posts, b.counts.month_posts), (1000, 1000));
    }
}
