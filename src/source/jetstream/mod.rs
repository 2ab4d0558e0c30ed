//! Bluesky's Jetstream as a live source: JSON events of the whole network (or of chosen
//! collections and accounts) over a WebSocket, free and unauthenticated.
//!
//! - [`subscribe`]: the `/subscribe` URL and its parameters (collections, accounts, cursor,
//!   compression), or the `options_update` message for long filters;
//! - [`instances`]: Bluesky's public instances and when to move to another;
//! - [`connect`]: TCP, TLS on our rustls configuration, the WebSocket upgrade;
//! - [`zstd`]: decompressing `compress=true` frames with Jetstream's dictionary;
//! - [`event`]: one event → a [`crate::source::Frame`] (key, timestamp, cursor, identity);
//! - [`resume`]: the cursor each connection asks for, and gap reports;
//! - [`reconnect`]: HTTP statuses and close codes → back-off classes, jitter;
//! - [`run`]: the read loop (pings, stalls, oversized and bad frames, reconnects);
//! - [`stats`], [`error`].
//!
//! Jetstream is at-least-once by design: a resume repeats events, and so does a move to
//! another instance. The frames carry each event's identity so that the intake's dedupe drops
//! the repeats, and its `time_us` so that produce can keep the cursor once Kafka has it.

pub(crate) mod connect;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod instances;
pub(crate) mod reconnect;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod subscribe;
pub(crate) mod zstd;

#[cfg(test)]
mod tests;
