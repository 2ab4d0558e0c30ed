//! The consumer group, kept in Kafka itself: its committed offsets ([`offsets`]), and
//! membership in it with Kafka's classic protocol ([`membership`]: join, sync, heartbeat,
//! leave), the consumer protocol's encodings ([`protocol`]), the assignors ([`assignor`]), and
//! what operators read about a group ([`inspect`]).

pub(crate) mod assignor;
pub(crate) mod cluster;
pub(crate) mod error;
pub(crate) mod heartbeat;
pub(crate) mod inspect;
pub(crate) mod membership;
pub(crate) mod offsets;
pub(crate) mod protocol;
#[cfg(test)]
mod tests;

pub(crate) use offsets::OffsetStore;
