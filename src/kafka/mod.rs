//! Everything about Kafka: connecting with the time limits rskafka lacks, our own connection
//! for what rskafka does not speak (topic administration, group offsets), choosing partitions
//! the way the Java client does, and the shapes of the cluster the commands ask about.
//!
//! It knows nothing of the commands, of produce or of consume: they hand it a [`Cluster`]
//! and get typed [`Error`]s back.
//!
//! - [`client`]: rskafka (producing, fetching, listing offsets) with time limits;
//! - [`connection`]: our own kafka-protocol connection (transport, versions, SASL, bootstrap);
//! - [`topic`]: creating (with configs), ensuring and describing a topic;
//! - [`group`]: a consumer group's committed offsets;
//! - [`partitioner`], [`nodelay`], [`security`], [`error`].

pub(crate) mod client;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod group;
pub(crate) mod nodelay;
pub mod partitioner;
pub(crate) mod security;
pub(crate) mod topic;

use std::time::Duration;

pub(crate) use error::Error;
pub(crate) use security::Security;

/// Where the cluster is and how to talk to it, as the command line configured it.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// Bootstrap brokers, `HOST:PORT` each.
    pub(crate) brokers: Vec<String>,
    /// Time limit of one call (rskafka has none of its own).
    pub(crate) timeout: Duration,
    pub(crate) security: Security,
}

impl Cluster {
    pub(crate) fn brokers_text(&self) -> String {
        self.brokers.join(",")
    }
}
#[cfg(test)]
mod tests;
