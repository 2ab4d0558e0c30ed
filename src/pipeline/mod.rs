//! The in-process pipeline between the stream reader and the Kafka producer: the record type,
//! the bounded channel, what happens when it is full, the shared counters, the stats line,
//! shutdown signalling, and `produce` itself, which wires these together.
//!
//! The one rule this module enforces: the socket reader never waits on Kafka. It offers each
//! record to the channel and moves on, whatever the answer.

pub mod channel;
pub mod consume;
pub mod dedup;
pub mod intake;
pub mod overflow;
pub mod produce;
pub mod record;
pub mod shutdown;
pub mod stats;
