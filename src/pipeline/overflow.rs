//! What happens to a live record the channel cannot take right now.
//!
//! Today the record is dropped, counted, and logged loudly (rate-limited, so a long outage
//! does not also flood the logs). This is the seam where the disk spill ("No tweet lost")
//! plugs in: it will take the record here instead of dropping it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::RawRecord;
use super::stats::Stats;

pub struct Overflow {
    stats: Arc<Stats>,
    last_log: Option<Instant>,
    since_log: u64,
}

impl Overflow {
    pub fn new(stats: Arc<Stats>) -> Self {
        Overflow {
            stats,
            last_log: None,
            since_log: 0,
        }
    }

    pub fn handle(&mut self, _record: RawRecord) {
        Stats::add(&self.stats.dropped, 1);
        self.since_log += 1;
        let due = self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if due {
            tracing::error!(
                dropped_since_last_report = self.since_log,
                dropped_total = Stats::get(&self.stats.dropped),
                "channel full: Kafka is not keeping up, dropping live records (raise --channel-bytes/--channel-capacity, or check the brokers)"
            );
            self.last_log = Some(Instant::now());
            self.since_log = 0;
        }
    }
}
