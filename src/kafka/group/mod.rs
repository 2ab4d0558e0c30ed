//! The consumer group, kept in Kafka itself: its committed offsets ([`offsets`]).

pub mod offsets;

pub use offsets::OffsetStore;
