//! Where consumed records end up, and the contract that makes "durable first, then commit"
//! explicit.
//!
//! A sink has two halves. Its [`Encoder`] runs on each partition's task, beside fetching, and
//! turns enriched records into the sink's own bytes (JSON lines here; rows for a database);
//! the [`Sink`] itself runs on the consumer's writer task and receives each partition's
//! [`Encoded`] batches in offset order. The consumer commits offsets to Kafka only after
//! [`Sink::flush`] returned: so whatever the sink says is durable is never read again, and
//! whatever it has not made durable is read again after a crash.
//!
//! - [`files`]: JSON lines in rotating files (the default), with crash recovery;
//! - [`stdout`]: JSON lines on stdout (durability is the reader's business);
//! - [`postgres`]: rows in PostgreSQL, each batch and its offsets in one transaction;
//! - [`line`]: the JSON line itself, written and read back in one place.
//!
//! A new sink is a folder here and one line where the command line picks it.

pub(crate) mod files;
pub(crate) mod line;
pub(crate) mod postgres;
pub(crate) mod stdout;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::enrich::Outcome;
use crate::error::{Classify, Kind as ErrorKind};

/// A future a sink returns (boxed: sinks are chosen at run time).
pub(crate) type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// What a record turned out to be, which decides where a sink puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An enriched post.
    Tweet,
    /// A stream control message (a delete, a withheld notice, …).
    Control,
    /// A record that could not be used.
    Error,
}

impl Kind {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One record as fetched from Kafka.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsumedRecord<'a> {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) value: &'a [u8],
}

/// The encoded records of one fetch of one partition, in offset order: their bytes back to
/// back, and one [`Entry`] per record.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) partition: i32,
    pub(crate) bytes: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) offset: i64,
    pub(crate) kind: Kind,
    /// End of this record's bytes (they start where the previous entry's end).
    pub(crate) end: usize,
}

impl Encoded {
    pub(crate) fn with_capacity(partition: i32, records: usize, bytes: usize) -> Self {
        Encoded {
            partition,
            bytes: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(records),
        }
    }

    /// The bytes of entry `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.entries[i - 1].end };
        &self.bytes[start..self.entries[i].end]
    }
}

/// Turns enriched records into a sink's bytes, on the partition's task. One per sink,
/// shared by all partitions.
pub(crate) trait Encoder: Send + Sync + 'static {
    /// Appends `record`'s output to `out` (bytes and one entry).
    fn encode(&self, record: &ConsumedRecord<'_>, outcome: &Outcome, out: &mut Encoded);

    /// About how many bytes a record of `value_len` bytes becomes: a fetch's buffer is sized
    /// once from it rather than grown by doubling (each doubling copies what is there).
    fn estimate(&self, _value_len: usize) -> usize {
        1024
    }
}

/// Where the writer task puts encoded records (see the module documentation).
pub(crate) trait Sink: Send {
    fn encoder(&self) -> Arc<dyn Encoder>;

    /// Before reading `partitions`: where the sink's own durable state says to resume. A
    /// partition missing from the answer starts where Kafka's committed offset says.
    fn resume<'a>(&'a mut self, partitions: &'a [i32]) -> SinkFuture<'a, BTreeMap<i32, i64>>;

    /// Appends entries `range` of `batch` (one partition's, in offset order).
    fn write(&mut self, batch: &Encoded, range: std::ops::Range<usize>) -> Result<(), Error>;

    /// Whether the sink holds enough to flush now, before the commit interval is up (a
    /// database batch that is full); the writer then makes it durable and commits at once.
    fn wants_flush(&self) -> bool {
        false
    }

    /// Resolves when the sink can take more writes: a sink that streams to its store while a
    /// batch is gathered holds the writer back to the store's pace, so that the fetches wait
    /// instead of a backlog growing (and the flush then waiting for the store to work it off
    /// while nothing is fetched). The default always has room.
    fn room(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Makes everything written so far durable; `next` is each partition's next offset after
    /// it. The consumer commits `next` to Kafka only after this returned.
    fn flush<'a>(&'a mut self, next: &'a BTreeMap<i32, i64>) -> SinkFuture<'a, ()>;

    /// After the Kafka commit of what `flush` made durable.
    fn committed(&mut self) -> Result<(), Error>;

    /// Clean stop, after the final flush and commit.
    fn close(&mut self) -> SinkFuture<'_, ()>;

    /// Partitions this instance no longer reads (a rebalance took them, or its membership of
    /// the group was lost). After a clean revocation `flush` and the commit have run, and
    /// nothing is left to do; without them (the commit was refused, the membership lost),
    /// whatever the sink holds of these partitions past the last commit is written again by
    /// their next reader, so the sink must drop it (and forget anything it buffers of them).
    fn revoke(&mut self, partitions: &[i32]) -> Result<(), Error> {
        let _ = partitions;
        Ok(())
    }

    /// At start and before each newly assigned set of partitions is read (then `resume`):
    /// `owned` are the partitions this instance reads now, `committed` the group's committed
    /// offsets of every partition of the topic that has one. A sink whose output can outlive
    /// a crash settles it here: what a killed earlier run (or another instance sharing its
    /// output) wrote past the committed offsets is kept only where no one else may write it.
    /// Sinks whose own durable offsets are the truth (a database) have nothing to do.
    fn reconcile<'a>(
        &'a mut self,
        owned: &'a [i32],
        committed: &'a BTreeMap<i32, i64>,
    ) -> SinkFuture<'a, ()> {
        let _ = (owned, committed);
        Box::pin(async { Ok(()) })
    }
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another running consumer writes this directory under the same instance id.
    #[error("the output directory {} is being written by another running consumer with instance id {slot:?}", dir.display())]
    SlotBusy { dir: PathBuf, slot: String },
    /// The directory holds unfinished output of this instance id for another group or topic.
    #[error("the output directory {} holds unfinished output of instance id {slot:?} for group {group:?} and topic {topic:?}; only a consumer of that group and topic can finish it", dir.display())]
    Foreign {
        dir: PathBuf,
        slot: String,
        group: String,
        topic: String,
    },
    /// The store (a database) refused something, or failed in a way that does not pass;
    /// `usage` when the fix is the user's configuration (credentials, the database's name).
    #[error("{what}")]
    Store {
        what: String,
        usage: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store is in a state this instance cannot use (a schema newer than it knows).
    #[error("{0}")]
    StoreState(String),
    /// Another consumer stored these partitions further since this instance read their
    /// offsets: they are not this instance's any more (the writer gives them up and joins
    /// again, as when the group refuses a commit).
    #[error("partitions {partitions:?} of topic {topic:?} were stored further in the database by another consumer of group {group:?}; this instance no longer owns them")]
    Taken {
        partitions: Vec<i32>,
        group: String,
        topic: String,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::StoreState(_) | Error::Taken { .. } => ErrorKind::Runtime,
            Error::Store { usage: true, .. } => ErrorKind::Usage,
            Error::Store { .. } => ErrorKind::Runtime,
            Error::SlotBusy { .. } | Error::Foreign { .. } => ErrorKind::Usage,
        }
    }
}
