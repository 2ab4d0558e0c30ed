//! What happens to a live record the channel cannot take right now when the disk spill is
//! off (`--spill-max-bytes 0`): it is dropped, counted, and logged loudly (rate-limited, so a
//! long outage does not also flood the logs). With the spill on (the default), the record goes
//! to disk instead; see `crate::produce::spill`.

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
