//! [`Latency`]: a histogram of how long something took (a produce request, a commit), observed
//! where it happens. One lock per observation, which is fine for events that come at most a
//! few hundred times a second; per-record events are counted, not timed.

use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

/// Bucket bounds in seconds: a local broker answers in about a millisecond, a managed one
/// across a region in tens, an fsync on a busy disk in hundreds, and a retried request in
/// seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram. Cloning shares it.
#[derive(Clone, Debug)]
pub(crate) struct Latency(Histogram);

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub(crate) fn new() -> Self {
        Latency(Histogram::new(BUCKETS))
    }

    pub(crate) fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }

    pub(crate) fn histogram(&self) -> Histogram {
        self.0.clone()
    }
}
