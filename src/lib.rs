//! tweetpipe: read a live social stream at its own pace into Kafka (`produce`), and read Kafka
//! at ours (`consume`). The modules follow the data path:
//!
//! - [`source`]: where records come from (the Twitter stream, Bluesky's Jetstream, file
//!   replay), framed;
//! - [`produce`]: intake, the bounded channel, the disk spill, the batching producer;
//! - [`kafka`]: rskafka with time limits, and our own connection for groups and admin;
//! - [`consume`]: fetching per partition, the write/commit loop, the stats;
//! - [`enrich`]: what the consumer adds to each tweet (language, sentiment, entities);
//! - [`sink`]: where consumed records go (JSON-lines files, stdout, PostgreSQL), durably;
//! - [`cli`]: the command line, and the configuration it builds for each command.
//!
//! Below them: [`backoff`] (retrying), [`shutdown`], [`logging`], [`error`]. `main.rs` only
//! parses the arguments, runs, and maps the outcome to an exit code. Dependencies point one
//! way: sources know nothing of Kafka, `kafka` nothing of the commands, and nothing below
//! `cli` knows clap (docs/architecture.md).

#[cfg(any(target_env = "musl", test))]
mod alloc;
pub(crate) mod backoff;
pub mod cli;
pub(crate) mod consume;
pub mod enrich;
pub mod error;
pub(crate) mod kafka;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod produce;
pub(crate) mod shutdown;
pub(crate) mod sink;
pub(crate) mod source;
#[cfg(test)]
mod test_support;
pub(crate) mod tls;

pub use error::{Error, Result};

/// The pieces fuzz targets, benchmarks and integration tests drive directly, and nothing more.
pub mod testing {
    pub use crate::kafka::partitioner::{murmur2, partition_for_key};
    pub use crate::source::framer::{Frame, FrameError, Framer, Framing};

    /// The spill segment format (`produce::spill::segment`), on owned values.
    pub mod spill {
        use bytes::Bytes;

        use crate::produce::record::RawRecord;
        use crate::produce::spill::segment;

        pub use crate::produce::spill::segment::MAGIC;

        /// One record read back.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Record {
            pub key: Option<Bytes>,
            pub value: Bytes,
            /// Microseconds since the Unix epoch.
            pub timestamp_us: i64,
        }

        /// What reading a segment back found: intact records, and where it stopped.
        #[derive(Debug)]
        pub struct Scan {
            pub records: Vec<Record>,
            /// Bytes of the segment that hold intact records (magic included).
            pub valid_len: usize,
            /// Where reading stopped, and why.
            pub problem: Option<(usize, String)>,
        }

        pub fn decode(data: Bytes) -> Scan {
            let scan = segment::decode(data);
            Scan {
                records: scan
                    .records
                    .into_iter()
                    .map(|r| Record {
                        key: r.key,
                        value: r.value,
                        timestamp_us: r.timestamp.timestamp_micros(),
                    })
                    .collect(),
                valid_len: scan.valid_len,
                problem: scan.problem.map(|p| (p.offset, p.reason)),
            }
        }

        /// Appends `record`, framed, to `out`.
        pub fn encode(record: &Record, out: &mut Vec<u8>) {
            let timestamp = chrono::DateTime::from_timestamp_micros(record.timestamp_us)
                .expect("a timestamp that was read back");
            let r = RawRecord::new(record.key.clone(), record.value.clone(), timestamp, None);
            segment::encode(&r, out);
        }
    }

    /// The PostgreSQL sink's binary COPY tuples (`sink::postgres::copy`).
    pub mod copy {
        use crate::enrich::Enricher;
        use crate::sink::{ConsumedRecord, Encoded, Encoder, Kind};

        /// The table a tuple goes to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Table {
            Tweets,
            Deletes,
            Errors,
        }

        /// The partition and offset [`encode`] gives its record.
        pub const PARTITION: i32 = 3;
        pub const OFFSET: i64 = 1_234_567;

        /// `value` enriched and encoded as the sink does: its table and its one tuple.
        pub fn encode(enricher: &Enricher, value: &[u8]) -> (Table, Vec<u8>) {
            let record = ConsumedRecord {
                partition: PARTITION,
                offset: OFFSET,
                value,
            };
            let rows = crate::sink::postgres::copy::Rows;
            let mut out = Encoded::with_capacity(PARTITION, 1, rows.estimate(value.len()));
            rows.encode(&record, &enricher.enrich(value), &mut out);
            assert_eq!(out.entries.len(), 1, "one tuple per record");
            let table = match out.entries[0].kind {
                Kind::Tweet => Table::Tweets,
                Kind::Control => Table::Deletes,
                Kind::Error => Table::Errors,
            };
            (table, out.bytes)
        }
    }
}
