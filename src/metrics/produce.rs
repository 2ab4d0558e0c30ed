//! What `produce` exposes: [`ProduceSnapshot`], the values of its counters at one moment, and
//! the metric families they become.
//!
//! The snapshot is plain numbers: produce builds it from the atomics its stats line and
//! summary already print (a closure handed to [`super::Metrics::produce`], called at scrape
//! time and once a second for the live page), so `/metrics` and the log agree by construction.

use std::borrow::Cow;

use super::family::{Family, Kind, Value};

/// `produce`'s counters and gauges at one moment. Field names follow the stats line's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProduceSnapshot {
    /// Records read from the source, by what they are: tweets, other forwarded messages
    /// (control, unknown) and unparsed ones; duplicates are counted apart.
    pub(crate) received_tweets: u64,
    pub(crate) received_other: u64,
    pub(crate) received_unparsed: u64,
    /// Tweets not produced again because they were produced recently (v2 backfill).
    pub(crate) duplicates: u64,
    /// Queued for Kafka (channel or spill): the stats line's `accepted`.
    pub(crate) accepted: u64,
    pub(crate) accepted_bytes: u64,
    /// Acknowledged by the broker.
    pub(crate) delivered: u64,
    pub(crate) delivered_bytes: u64,
    /// Lost: channel full without a spill, or the spill full or unwritable.
    pub(crate) dropped: u64,
    /// Given up on after the delivery timeout or at shutdown.
    pub(crate) failed: u64,
    pub(crate) spilled: u64,
    pub(crate) drained: u64,
    /// Bytes of spill segments on disk now.
    pub(crate) spill_bytes: u64,
    pub(crate) spill_damaged: u64,
    /// Queued in the channel now.
    pub(crate) channel_records: u64,
    pub(crate) channel_bytes: u64,
    /// Stream reconnects by cause (`network`, `http`, `rate_limited`, …: a fixed set).
    pub(crate) reconnects: Vec<(&'static str, u64)>,
    /// The status of the last stream connection attempt; 0 before the first.
    pub(crate) last_http_status: u64,
    pub(crate) keepalives: u64,
    pub(crate) oversized: u64,
    pub(crate) limit_notices: u64,
    /// The latest `limit.track`: tweets withheld since the connection opened.
    pub(crate) limit_track: u64,
    pub(crate) warnings: u64,
    pub(crate) disconnects: u64,
    pub(crate) stream_errors: u64,
    pub(crate) backfills: u64,
    pub(crate) kafka_requests: u64,
    pub(crate) kafka_retries: u64,
}

impl ProduceSnapshot {
    /// Records taken in but not yet acknowledged, dropped or given up: in the channel, in the
    /// spill, or on their way to the broker. The live page's "waiting" line.
    pub(crate) fn backlog(&self) -> u64 {
        self.accepted.saturating_sub(self.delivered + self.failed)
    }

    pub(crate) fn families(&self) -> Vec<Family> {
        let c = Family::counter;
        let g = |name, help, v: u64| Family::gauge(name, help, Value::Count(v));
        vec![
            Family::labelled(
                "tweetpipe_produce_records_received",
                "Records read from the source, by kind (tweet, other: control and unknown messages forwarded as they are, unparsed).",
                Kind::Counter,
                "kind",
                [
                    ("tweet", self.received_tweets),
                    ("other", self.received_other),
                    ("unparsed", self.received_unparsed),
                ]
                .map(|(k, v)| (Cow::Borrowed(k), Value::Count(v))),
            ),
            c("tweetpipe_produce_duplicates_dropped", "Tweets not produced again because their id was produced recently (a v2 backfill repeats them).", self.duplicates),
            c("tweetpipe_produce_records_accepted", "Records queued for Kafka (channel or spill): the stats line's accepted.", self.accepted),
            c("tweetpipe_produce_accepted_bytes", "Bytes of the records queued for Kafka.", self.accepted_bytes),
            c("tweetpipe_produce_records_delivered", "Records acknowledged by the broker.", self.delivered),
            c("tweetpipe_produce_delivered_bytes", "Bytes of the records acknowledged by the broker.", self.delivered_bytes),
            c("tweetpipe_produce_records_dropped", "Records lost: the channel was full without a spill, or the spill was full or could not be written.", self.dropped),
            c("tweetpipe_produce_records_failed", "Records given up on after the delivery timeout, or at shutdown.", self.failed),
            c("tweetpipe_produce_records_spilled", "Records written to the disk spill (live records, and batches spilled again after failing).", self.spilled),
            c("tweetpipe_produce_records_drained", "Spilled records read back and acknowledged by the broker.", self.drained),
            g("tweetpipe_produce_spill_bytes", "Bytes of spill segments on disk.", self.spill_bytes),
            c("tweetpipe_produce_spill_segments_damaged", "Spill segments found with a torn or corrupt tail when read back.", self.spill_damaged),
            g("tweetpipe_produce_channel_records", "Records queued in the channel between the reader and the producer.", self.channel_records),
            g("tweetpipe_produce_channel_bytes", "Bytes of the records queued in the channel.", self.channel_bytes),
            Family::labelled(
                "tweetpipe_produce_stream_reconnects",
                "Stream reconnects, by cause.",
                Kind::Counter,
                "cause",
                self.reconnects
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Value::Count(*v))),
            ),
            g("tweetpipe_produce_stream_last_http_status", "HTTP status of the last stream connection attempt (0 before the first).", self.last_http_status),
            c("tweetpipe_produce_stream_keepalives", "Keep-alive newlines read from the stream.", self.keepalives),
            c("tweetpipe_produce_stream_oversized", "Stream messages skipped for being larger than --max-record-bytes.", self.oversized),
            c("tweetpipe_produce_stream_limit_notices", "Limit notices read from the stream (Twitter withheld tweets).", self.limit_notices),
            g("tweetpipe_produce_stream_limit_track", "The latest limit notice's count of tweets withheld since the connection opened.", self.limit_track),
            c("tweetpipe_produce_stream_warnings", "Stall warnings read from the stream.", self.warnings),
            c("tweetpipe_produce_stream_disconnects", "Disconnect messages read from the stream.", self.disconnects),
            c("tweetpipe_produce_stream_errors", "Error objects read inside the v2 stream.", self.stream_errors),
            c("tweetpipe_produce_stream_backfills", "Connections opened asking for backfill_minutes.", self.backfills),
            c("tweetpipe_produce_kafka_requests", "Produce requests sent to the brokers (retries included).", self.kafka_requests),
            c("tweetpipe_produce_kafka_request_retries", "Produce requests sent again after a failure.", self.kafka_retries),
        ]
    }
}
