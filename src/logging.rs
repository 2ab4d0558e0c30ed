//! Logs go to stderr, as text for people or JSON lines for log shippers. `TWEETPIPE_LOG` sets
//! the level (`error`, `warn`, `info`, `debug`, `trace`; default info). rskafka narrates every
//! connection at info level; we keep it to warnings unless asked for debug, so the stats line
//! stays readable.
//!
//! [`Every`] keeps a condition that can repeat thousands of times a second (a full channel, a
//! full spill, a broken feed) to one log line per period, with the count of what it stood for.

use std::time::{Duration, Instant};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub(crate) fn init(format: Format) {
    let level = std::env::var("TWEETPIPE_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let rskafka = if level >= LevelFilter::DEBUG {
        level
    } else {
        level.min(LevelFilter::WARN)
    };
    let filter = Targets::new()
        .with_default(level)
        .with_target("rskafka", rskafka);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        Format::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(false))
            .with(filter)
            .try_init(),
        Format::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true))
            .with(filter)
            .try_init(),
    };
}

/// Writes a run's summary as one JSON object to `path` (`--summary-file`), for scripts and
/// tests that check what a run did without reading log text. Written to a temporary file and
/// renamed, so a reader never sees half of it.
pub(crate) fn write_summary(
    path: &std::path::Path,
    summary: &impl serde::Serialize,
) -> Result<(), crate::Error> {
    let tmp = path.with_extension("tmp");
    let json = serde_json::to_vec_pretty(summary).expect("a summary serializes");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            crate::Error::runtime(format!(
                "cannot write the summary to {}: {e}",
                path.display()
            ))
        })
}

/// `x` to one decimal: rates and sizes read well in text logs and stay numbers in JSON.
pub(crate) fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One report per period for a repeating condition.
#[derive(Debug)]
pub(crate) struct Every {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

/// The period repeating warnings use.
pub(crate) const QUIET: Duration = Duration::from_secs(5);

impl Every {
    pub(crate) const fn new(period: Duration) -> Self {
        Every {
            period,
            last: None,
            held: 0,
        }
    }

    /// Counts one occurrence. `Some(n)` when it is time to report: `n` occurrences since the
    /// last report, this one included.
    pub(crate) fn tick(&mut self) -> Option<u64> {
        self.held += 1;
        if self.last.is_some_and(|t| t.elapsed() < self.period) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_period_counting_what_it_stood_for() {
        let mut e = Every::new(Duration::from_millis(50));
        assert_eq!(e.tick(), Some(1));
        assert_eq!(e.tick(), None);
        assert_eq!(e.tick(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(e.tick(), Some(3));
    }
}
