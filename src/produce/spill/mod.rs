//! The disk spill: where live records go when Kafka cannot take them right now, so the stream
//! reader never has to drop one or wait.
//!
//! - `segment`: the record format (length, CRC-32C, body) and reading a segment back, with
//!   torn and corrupt tails detected and the valid prefix kept.
//! - `store`: the spill directory: append-only segments, the size bound, fsync; live records
//!   go there only when the channel has no room (and so also while the drain is waiting for
//!   room), and take the channel again as soon as it has some.
//! - `drain`: feeds the spill back into the producer, oldest segment first, and deletes a
//!   segment only once Kafka acknowledged every record in it.
//!
//! Durability, stated once: a record counted as spilled has been written to the segment file
//! with one `write` call, so a crash of tweetpipe (even SIGKILL) loses nothing spilled; the
//! operating system's page cache holds it. A power cut or kernel crash can lose what was
//! spilled since the last fsync, at most the fsync interval (1 s by default); a segment is
//! also fsynced when it is sealed. Records are delivered at least once: a segment deleted just
//! before a power cut can come back, and records drained but not yet acknowledged when tweetpipe
//! stops are sent again by the next run.

pub(crate) mod drain;
pub(crate) mod segment;
pub(crate) mod store;

pub(crate) use drain::Ticket;
pub(crate) use store::{Error, Offered, Spill, SpillConfig};
