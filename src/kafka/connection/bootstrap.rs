//! The first contact with a cluster: the first broker of the bootstrap list that answers and
//! accepts us. Every path that needs "a broker, any broker" (rskafka's client, topic admin,
//! finding a group's coordinator) comes through here, so all report an unreachable cluster
//! alike, and say whether waiting could help.

use std::time::Duration;

use super::Connection;
use crate::kafka::security::Security;
use crate::kafka::Error;

/// Connects to the first usable broker of `brokers`, trying each in turn (each attempt
/// bounded by `timeout`). [`Error::Unreachable`] lists why each failed;
/// [`Error::is_retryable`] on it is false when a broker refused us (certificate, SASL, a
/// protocol we cannot speak), which no amount of waiting fixes.
pub(crate) async fn connect_any(
    brokers: &[String],
    timeout: Duration,
    security: &Security,
) -> Result<Connection, Error> {
    let mut failures = Vec::new();
    for b in brokers {
        match Connection::connect(b, timeout, security).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::debug!(broker = %b, error = %e, "bootstrap broker unusable");
                failures.push(e);
            }
        }
    }
    Err(Error::Unreachable {
        brokers: brokers.join(","),
        security: security.describe(),
        failures,
    })
}
