//! Everything about Kafka: connecting with the time limits rskafka lacks, making sure the
//! topic exists, choosing partitions the way the Java client does, and the batching producer
//! that counts a record as delivered only when the broker acknowledged it.

pub mod admin;
pub mod client;
pub mod connection;
pub mod group;
pub mod nodelay;
pub mod partitioner;
pub mod security;
pub mod topic;
