//! [`MetricsError`]: what can go wrong starting the metrics endpoint. Everything after that
//! (a client that goes away, a malformed request) is answered or logged, never an error of the
//! pipeline's.

use std::net::SocketAddr;

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsError {
    #[error("cannot listen on {addr} for the metrics endpoint: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the metrics server: {0}")]
    Start(#[source] std::io::Error),
}

impl Classify for MetricsError {
    /// An address that cannot be listened on (taken, not ours) is the configuration's to
    /// fix; failing to start a thread is a runtime failure.
    fn kind(&self) -> Kind {
        match self {
            MetricsError::Bind { .. } => Kind::Usage,
            MetricsError::Start(_) => Kind::Runtime,
        }
    }
}
