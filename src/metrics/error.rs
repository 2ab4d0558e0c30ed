//! [`MetricsError`]: what can go wrong setting up the metrics endpoint. Everything after that
//! (a client that goes away, a malformed request) is answered or logged, never an error of the
//! pipeline's.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsError {
    #[error("--metrics-addr {given:?}: {why}; give HOST:PORT (such as 127.0.0.1:9464 or [::1]:9464) or a port alone (listens on 127.0.0.1)")]
    Addr { given: String, why: String },
    #[error("cannot listen on {addr} (--metrics-addr): {source}; choose another port, or stop what listens there")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the metrics server: {0}")]
    Start(#[source] std::io::Error),
}

impl MetricsError {
    /// The user's configuration is wrong (exit 2): a bad address, or one that cannot be
    /// listened on. Only failing to start a thread or runtime is a runtime failure.
    pub(crate) fn is_config(&self) -> bool {
        matches!(self, MetricsError::Addr { .. } | MetricsError::Bind { .. })
    }
}
