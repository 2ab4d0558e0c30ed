//! What can go wrong talking to Kafka, with the causes, and the one notion of "retrying may
//! help" the callers use ([`Error::is_retryable`]).

use std::time::Duration;

use kafka_protocol::ResponseError;

use super::connection::{error_name, RequestError};
use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// No bootstrap broker could be used.
    #[error("cannot reach Kafka at {brokers} ({security}): {}", list(.failures))]
    Unreachable {
        brokers: String,
        security: String,
        failures: Vec<RequestError>,
    },
    /// An exchange on our own connection failed.
    #[error("{what}")]
    Request {
        what: String,
        #[source]
        source: RequestError,
    },
    /// The broker answered with an error code.
    #[error("{what}: {}{}", error_name(*.code), .message.as_deref().map(|m| format!(" - {m}")).unwrap_or_default())]
    Broker {
        what: String,
        code: i16,
        message: Option<String>,
    },
    /// rskafka (producing, fetching, listing offsets) failed.
    #[error("{what}")]
    Client {
        what: String,
        #[source]
        source: rskafka::client::error::Error,
    },
    #[error("{what}: no answer within {limit:?}")]
    Timeout { what: String, limit: Duration },
    /// A call retried until its time limit ran out.
    #[error("{what}: gave up after {limit:?} ({attempts} attempt{}); last error", if *.attempts == 1 { "" } else { "s" })]
    GaveUp {
        what: String,
        limit: Duration,
        attempts: u32,
        #[source]
        last: Box<Error>,
    },
    #[error("topic {topic:?} does not exist on {brokers}")]
    UnknownTopic { topic: String, brokers: String },
    #[error("topic {topic:?} already exists on {brokers}")]
    TopicExists { topic: String, brokers: String },
    /// The broker refused the topic's settings as invalid (a name, a count, a config).
    #[error("cannot create topic {topic:?}: {}{}", error_name(*.code), .message.as_deref().map(|m| format!(" - {m}")).unwrap_or_default())]
    TopicRefused {
        topic: String,
        code: i16,
        message: Option<String>,
    },
    #[error("{group:?} is not a valid consumer group id{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    InvalidGroup {
        group: String,
        message: Option<String>,
    },
    /// A broker answered something we cannot use (a missing entry, an impossible value).
    #[error("{0}")]
    Unexpected(String),
}

fn list(failures: &[RequestError]) -> String {
    failures
        .iter()
        .map(|f| crate::error::chain(f))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Waiting and trying again may help: a broker that is down or starting, a coordinator
    /// that moved, a request that timed out. Not: a refused login or certificate, a topic or
    /// configuration the cluster rejects, an answer we cannot decode.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { failures, .. } => failures.iter().all(RequestError::is_retryable),
            Error::Request { source, .. } => source.is_retryable(),
            Error::Broker { code, .. } => retryable_code(*code),
            Error::Client { source, .. } => client_retryable(source),
            Error::Timeout { .. } => true,
            Error::GaveUp { .. }
            | Error::UnknownTopic { .. }
            | Error::TopicExists { .. }
            | Error::TopicRefused { .. }
            | Error::InvalidGroup { .. }
            | Error::Unexpected(_) => false,
        }
    }

    /// The Kafka error code of a broker's answer, if that is what this is.
    pub(crate) fn code(&self) -> Option<ResponseError> {
        match self {
            Error::Broker { code, .. } | Error::TopicRefused { code, .. } => {
                ResponseError::try_from_code(*code)
            }
            _ => None,
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            // The command line names something the cluster refuses: fix it and run again.
            Error::TopicRefused { .. } | Error::InvalidGroup { .. } => Kind::Usage,
            _ => Kind::Runtime,
        }
    }
}

/// Codes after which a group's coordinator is looked up again (it moved, or is loading the
/// group) and the request retried.
pub(crate) fn is_coordinator_code(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
        )
    )
}

/// Error codes that mean "not now": the coordinator or leader moved or is starting, the
/// request timed out inside the broker (committing the same offsets again is harmless).
pub(crate) fn retryable_code(code: i16) -> bool {
    is_coordinator_code(code)
        || matches!(
            ResponseError::try_from_code(code),
            Some(
                ResponseError::RequestTimedOut
                    | ResponseError::NotController
                    | ResponseError::NotLeaderOrFollower
                    | ResponseError::LeaderNotAvailable
            )
        )
}

fn client_retryable(e: &rskafka::client::error::Error) -> bool {
    use rskafka::client::error::Error as E;
    match e {
        E::Connection(_) | E::Request(_) | E::RetryFailed(_) | E::Timeout => true,
        E::ServerError { protocol_error, .. } => {
            use rskafka::client::error::ProtocolError as P;
            matches!(
                protocol_error,
                P::NotLeaderOrFollower
                    | P::LeaderNotAvailable
                    | P::RequestTimedOut
                    | P::NotEnoughReplicas
                    | P::NotEnoughReplicasAfterAppend
                    | P::NetworkException
                    | P::UnknownTopicOrPartition
            )
        }
        _ => false,
    }
}

/// Runs a call with a time limit; `what` names the call in the error.
pub(crate) async fn limited<T, E>(
    what: impl Into<String>,
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Error>
where
    E: Into<ClientError>,
{
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into().with(what.into())),
        Err(_) => Err(Error::Timeout {
            what: what.into(),
            limit,
        }),
    }
}

/// The errors [`limited`] wraps: rskafka's, or ours already typed.
pub(crate) enum ClientError {
    Rskafka(rskafka::client::error::Error),
    Ours(Error),
}

impl ClientError {
    fn with(self, what: String) -> Error {
        match self {
            ClientError::Rskafka(source) => Error::Client { what, source },
            ClientError::Ours(e) => e,
        }
    }
}

impl From<rskafka::client::error::Error> for ClientError {
    fn from(e: rskafka::client::error::Error) -> Self {
        ClientError::Rskafka(e)
    }
}

impl From<Error> for ClientError {
    fn from(e: Error) -> Self {
        ClientError::Ours(e)
    }
}
