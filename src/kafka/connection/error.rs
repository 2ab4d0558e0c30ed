//! How one exchange with a broker can fail, and whether a new connection may help.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: no answer within {limit:?}")]
    Timeout { what: String, limit: Duration },
    /// What a broker that wants TLS or SASL does to a client that skipped it.
    #[error("{what}: the broker closed the connection")]
    Closed { what: String },
    #[error("connection to {addr} is unusable after an earlier failure ({why})")]
    Broken { addr: String, why: String },
    /// A TLS record where a Kafka length should be: a TLS listener answering our plaintext.
    #[error("{what}: the broker answered with TLS")]
    TlsListener { what: String },
    #[error("{what}: response length {len} is not plausible; is this a Kafka port?")]
    Implausible { what: String, len: i32 },
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "TLS with {addr}: no handshake within {limit:?} (a plaintext port stays silent like this)"
    )]
    TlsTimeout { addr: String, limit: Duration },
    #[error("{host:?} is not a host name TLS can verify: {reason}")]
    HostName { host: String, reason: String },
    #[error("broker {addr} does not support the {api:?} API")]
    Unsupported { addr: String, api: ApiKey },
    #[error(
        "broker {addr} speaks {api:?} versions {theirs}, we speak {ours}: no version in common"
    )]
    NoCommonVersion {
        addr: String,
        api: ApiKey,
        theirs: VersionRange,
        ours: VersionRange,
    },
    /// Bytes that make no sense (either way), or a handshake the broker refused outright.
    #[error("{what}: {message}")]
    Malformed { what: String, message: String },
    #[error("broker {addr} refused SASL {mechanism} for user {user:?}: {why}")]
    SaslRefused {
        addr: String,
        mechanism: &'static str,
        user: String,
        why: String,
    },
    /// Some brokers hang up instead of answering UNSUPPORTED_SASL_MECHANISM.
    #[error("{source} (during SaslHandshake: does the broker offer {mechanism}?)")]
    SaslDropped {
        mechanism: &'static str,
        #[source]
        source: Box<RequestError>,
    },
}

impl RequestError {
    /// The connection failed (I/O, timeout, a connection already broken): a new connection,
    /// later, may succeed. Everything else (a refused certificate or login, a protocol we do
    /// not share, bytes that make no sense) will fail again the same way.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            RequestError::Io { .. }
            | RequestError::Timeout { .. }
            | RequestError::Closed { .. }
            | RequestError::Broken { .. }
            | RequestError::Implausible { .. }
            | RequestError::TlsTimeout { .. }
            | RequestError::SaslDropped { .. } => true,
            // A refused certificate (InvalidData) will be refused again.
            RequestError::Tls { source, .. } => source.kind() != std::io::ErrorKind::InvalidData,
            RequestError::TlsListener { .. }
            | RequestError::HostName { .. }
            | RequestError::Unsupported { .. }
            | RequestError::NoCommonVersion { .. }
            | RequestError::Malformed { .. }
            | RequestError::SaslRefused { .. } => false,
        }
    }
}
