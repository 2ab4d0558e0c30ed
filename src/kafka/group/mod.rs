//! The consumer group, kept in Kafka itself: its committed offsets ([`offsets`]).

pub(crate) mod offsets;

pub(crate) use offsets::OffsetStore;
