//! What can go wrong in a consumer group, by what the caller should do about it: fix the
//! configuration (exit 2), rejoin the group, retry later, or give up (exit 1).
//!
//! The classification is by variant and by Kafka error code, never by message text.

use kafka_protocol::ResponseError;

pub(crate) use crate::kafka::error::is_coordinator_code;
use crate::kafka::error::retryable_code;

use crate::error::{Classify, Kind};
use crate::kafka::connection::{error_name, RequestError};

/// Why this member is no longer in the generation it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LostReason {
    /// The coordinator no longer knows our member id (we were evicted, or the group was
    /// reset): UNKNOWN_MEMBER_ID.
    UnknownMember,
    /// The group moved on to a generation we are not part of: ILLEGAL_GENERATION.
    IllegalGeneration,
    /// No heartbeat was answered for a whole session timeout: the coordinator has likely
    /// given our partitions to others already.
    SessionTimedOut,
    /// The consumer made no progress within the max poll interval, so we left the group.
    MaxPollIntervalExceeded,
    /// Another process joined with our `group.instance.id`: FENCED_INSTANCE_ID.
    Fenced,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LostReason::UnknownMember => {
                "the coordinator no longer knows this member (UNKNOWN_MEMBER_ID)"
            }
            LostReason::IllegalGeneration => {
                "the group has moved to a newer generation (ILLEGAL_GENERATION)"
            }
            LostReason::SessionTimedOut => "no heartbeat was answered within the session timeout",
            LostReason::MaxPollIntervalExceeded => {
                "the consumer made no progress within max.poll.interval.ms, so it left the group"
            }
            LostReason::Fenced => {
                "another instance joined with the same group.instance.id (FENCED_INSTANCE_ID)"
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum GroupError {
    /// The user's configuration is wrong (exit 2): a bad flag value, a group id the broker
    /// refuses, a session timeout outside the broker's bounds.
    #[error("{0}")]
    Usage(String),
    /// The connection to a broker failed (reconnect and retry), or the broker cannot be
    /// spoken to (protocol: give up).
    #[error("{context}: {source}")]
    Request {
        context: String,
        #[source]
        source: RequestError,
    },
    /// The broker answered with an error code we do not handle otherwise.
    #[error("{context}: {}", error_name(*code))]
    Broker { context: String, code: i16 },
    /// A rebalance is under way: give up the partitions (after committing, where the broker
    /// still accepts it) and rejoin.
    #[error("group {group:?} is rebalancing (REBALANCE_IN_PROGRESS); the member must rejoin")]
    RebalanceInProgress { group: String },
    /// This member lost its place in the group; its partitions may already be someone else's.
    /// Do not commit; rejoin (unless fenced).
    #[error("left group {group:?}: {reason}")]
    MembershipLost { group: String, reason: LostReason },
    /// Refused locally: committing without a current generation would let a stale instance
    /// move another member's offsets back (tansu does not fence such commits itself).
    #[error("not committing to group {group:?}: this instance has no current membership ({why})")]
    NotMember { group: String, why: String },
    /// Bytes from another member (or the broker) that make no sense.
    #[error("{0}")]
    Protocol(String),
    /// Retried until the time limit, without success.
    #[error("{what}: gave up after {secs:.1} s; last error: {last}")]
    TimedOut {
        what: String,
        secs: f64,
        last: String,
    },
    /// From the Kafka layer shared with the offsets code (discovery, offset fetches).
    #[error(transparent)]
    Kafka(#[from] crate::kafka::Error),
}

impl GroupError {
    /// Waiting and trying again (rejoining, reconnecting) may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            GroupError::Request { source, .. } => source.is_retryable(),
            GroupError::Broker { code, .. } => is_retryable_code(*code),
            GroupError::RebalanceInProgress { .. } | GroupError::TimedOut { .. } => true,
            GroupError::MembershipLost { reason, .. } => *reason != LostReason::Fenced,
            GroupError::NotMember { .. } => true,
            GroupError::Kafka(e) => e.is_retryable(),
            GroupError::Usage(_) | GroupError::Protocol(_) => false,
        }
    }

    /// The user must change the command line or configuration (exit code 2).
    pub(crate) fn is_usage(&self) -> bool {
        match self {
            GroupError::Usage(_) => true,
            // Two processes with one --instance-id fence each other in turn forever.
            GroupError::MembershipLost { reason, .. } => *reason == LostReason::Fenced,
            GroupError::Kafka(e) => e.kind() == Kind::Usage,
            _ => false,
        }
    }

    /// The member must give up its partitions and rejoin the group.
    pub(crate) fn needs_rejoin(&self) -> bool {
        match self {
            GroupError::RebalanceInProgress { .. } | GroupError::NotMember { .. } => true,
            GroupError::MembershipLost { reason, .. } => *reason != LostReason::Fenced,
            _ => false,
        }
    }
}

impl Classify for GroupError {
    fn kind(&self) -> Kind {
        if self.is_usage() {
            Kind::Usage
        } else {
            Kind::Runtime
        }
    }
}

/// Codes that a later attempt may not get: those of every Kafka call, and the group's own.
fn is_retryable_code(code: i16) -> bool {
    retryable_code(code)
        || matches!(
            ResponseError::try_from_code(code),
            Some(
                ResponseError::RebalanceInProgress
                    | ResponseError::NetworkException
                    | ResponseError::UnknownTopicOrPartition
            )
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_is_by_variant_and_code() {
        let group = "g".to_string();
        let lost = |reason| GroupError::MembershipLost {
            group: group.clone(),
            reason,
        };
        assert!(lost(LostReason::IllegalGeneration).needs_rejoin());
        assert!(!lost(LostReason::Fenced).needs_rejoin());
        assert!(lost(LostReason::Fenced).is_usage());
        let broker = |code: ResponseError| GroupError::Broker {
            context: "x".into(),
            code: code.code(),
        };
        assert!(broker(ResponseError::NotCoordinator).is_retryable());
        assert!(broker(ResponseError::CoordinatorLoadInProgress).is_retryable());
        assert!(!broker(ResponseError::GroupAuthorizationFailed).is_retryable());
        let conn = GroupError::Request {
            context: "x".into(),
            source: RequestError::Timeout {
                what: "Heartbeat".into(),
                limit: std::time::Duration::from_secs(1),
            },
        };
        assert!(conn.is_retryable() && !conn.is_usage());
        assert_eq!(GroupError::Usage("bad".into()).kind(), Kind::Usage);
        assert_eq!(
            broker(ResponseError::GroupAuthorizationFailed).to_string(),
            "x: GROUP_AUTHORIZATION_FAILED (30)"
        );
    }
}
