//! What to change on the command line after a failure the library reports in its own terms:
//! the library never names a flag, so the hints that do are kept here, keyed by the error's
//! type and variant.

use crate::error::Error;
use crate::kafka::connection::RequestError;
use crate::kafka::group::error::{GroupError, LostReason};
use crate::produce::{spill, state};
use crate::source;
use crate::source::jetstream::error::JetstreamError;

/// A line of advice for `e`, if there is one.
pub fn advice(e: &Error) -> Option<String> {
    if let Some(e) = e.find::<crate::kafka::Error>() {
        return kafka(e);
    }
    if let Some(e) = e.find::<spill::Error>() {
        return Some(match e {
            spill::Error::Locked { .. } => "give each producer its own --spill-dir".to_string(),
            spill::Error::Unusable { .. } => "give --spill-dir a writable directory".to_string(),
        });
    }
    if let Some(crate::metrics::MetricsError::Bind { .. }) = e.find() {
        return Some(
            "choose another --metrics-addr (TWEETPIPE_METRICS_ADDR), or stop what listens there"
                .to_string(),
        );
    }
    if let Some(JetstreamError::Refused { .. }) = e.find::<JetstreamError>() {
        return Some(
            "check --collections, --dids and --jetstream-url (the server's reason is above)"
                .to_string(),
        );
    }
    if let Some(state::StateError::Write { .. }) = e.find::<state::StateError>() {
        return Some(
            "give --spill-dir a writable directory (the state file is kept there)".to_string(),
        );
    }
    if let Some(e) = e.find::<crate::sink::Error>() {
        return match e {
            crate::sink::Error::SlotBusy { .. } => Some(
                "give each running consumer its own --instance-id (or its own --output)".into(),
            ),
            crate::sink::Error::Foreign { .. } => Some(
                "use another --output, or finish that output with the --group and --topic it names"
                    .into(),
            ),
            crate::sink::Error::Io { .. }
            | crate::sink::Error::Store { .. }
            | crate::sink::Error::StoreState(_)
            | crate::sink::Error::Taken { .. } => None,
        };
    }
    if let Some(e) = e.find::<GroupError>() {
        return group(e);
    }
    if let Some(source::Error::Status { status, v2, .. }) = e.find::<source::Error>() {
        return twitter_status(*status, *v2).map(str::to_string);
    }
    None
}

fn kafka(e: &crate::kafka::Error) -> Option<String> {
    use crate::kafka::Error as K;
    let failures: Vec<&RequestError> = match e {
        K::Unreachable { failures, .. } => failures.iter().collect(),
        K::Request { source, .. } => vec![source],
        K::UnknownTopic { .. } => {
            return Some(
                "check --topic, or create the topic with `tweetpipe topic create`".to_string(),
            )
        }
        K::InvalidGroup { .. } => return Some("give another --group".to_string()),
        _ => return None,
    };
    let mut hints = vec![
        "check --brokers (KAFKA_BROKERS) and that the brokers are up and reachable from here"
            .to_string(),
    ];
    for f in failures {
        match f {
            RequestError::TlsListener { .. } => {
                hints.push("the port speaks TLS: add --kafka-tls".into())
            }
            RequestError::Closed { .. } | RequestError::SaslDropped { .. } => hints.push(
                "if the brokers require TLS or SASL, see --kafka-tls and --sasl-mechanism".into(),
            ),
            RequestError::Tls { .. } | RequestError::TlsTimeout { .. } => hints.push(
                "for TLS, check that the port is the brokers' TLS listener and that their \
                 certificate is signed by a CA we trust (--kafka-ca-file) for the host name in \
                 --brokers"
                    .into(),
            ),
            RequestError::SaslRefused { .. } => hints.push(
                "for SASL, check --sasl-mechanism, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
                    .into(),
            ),
            _ => {}
        }
    }
    hints.dedup();
    Some(hints.join("; "))
}

/// What to change after the group refused this member for good.
fn group(e: &GroupError) -> Option<String> {
    match e {
        GroupError::MembershipLost {
            reason: LostReason::Fenced,
            ..
        } => Some("another instance runs with the same --instance-id: give each its own".into()),
        GroupError::Usage(_) => Some(
            "check --group, --assignor, --session-timeout, --heartbeat-interval, --max-poll-interval and --instance-id".into(),
        ),
        _ => None,
    }
}

/// What to check after a status of the Twitter stream that retrying cannot fix.
fn twitter_status(status: u16, v2: bool) -> Option<&'static str> {
    Some(match (status, v2) {
        (400, true) => "check --expansions, --tweet-fields, --user-fields and --stream-url's query",
        (404, true) => "check --stream-url (the v2 stream is …/2/tweets/search/stream)",
        (404, false) => "check --stream-url",
        (406, false) => "check --track, --follow (numeric user ids), --locations (lon,lat pairs, south-west first) and --language",
        (413, false) => "--track takes up to 400 keywords, --follow 5,000 ids, --locations 25 boxes",
        (416, false) => "check --stream-url's query",
        (401 | 403, _) => "check the credentials (TWITTER_* variables or --env-file)",
        _ => return None,
    })
}
