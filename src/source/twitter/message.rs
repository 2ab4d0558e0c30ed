//! What a framed message is: a tweet (keyed by its v1.1 `id_str`, or by `data.id` for a v2
//! `{"data":…,"includes":…,"matching_rules":…}` record), a control message we act on
//! (`limit`, `warning`, `disconnect`, and v2's error objects such as
//! `operational-disconnect`), or something we forward untouched (`delete`, `scrub_geo`,
//! unknown types, and bytes that are not even JSON: the consumer decides what to do with
//! those, and compliance needs the deletes).
//!
//! Only the top level is looked at, and only up to the key that decides: the producer's job
//! is to move bytes, and the consumer parses every record in full. Records that are not a
//! JSON object envelope (or not UTF-8) are still caught here.
//!
//! Only the top level counts: nested objects (the user, a retweeted status) carry
//! `id_str`s of their own, which is why this scans the structure (see [`super::scan`])
//! instead of searching bytes.

use std::ops::ControlFlow;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use serde::Deserialize;

use super::scan;
use crate::source::{Frame, FrameKind, SourceStats};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A tweet (v1.1, or a v2 `data` record); `id` is where its id (v1.1 `id_str`, v2
    /// `data.id`) sits in the message, so the record key can share the message's bytes. `None`
    /// when it has none that is a plain string (the consumer reports such a tweet as invalid).
    Tweet {
        id: Option<std::ops::Range<usize>>,
        v2: bool,
    },
    /// `delete`, `scrub_geo`, `status_withheld`, `user_withheld`, and `unknown` types (and
    /// control messages whose body does not parse): forwarded without a key.
    Forward { kind: &'static str },
    /// Not JSON (or not UTF-8): forwarded without a key, counted as unparsed.
    Unparsed,
    /// `limit`: how many matching tweets Twitter did not send since the connection opened.
    Limit { track: u64 },
    /// `warning` (stall warnings): we are falling behind.
    Warning {
        code: String,
        message: String,
        percent_full: Option<u64>,
    },
    /// `disconnect`: Twitter is about to close the connection.
    Disconnect { code: u32, reason: String },
    /// v2: `{"errors":[…]}` without `data`, an error object sent inside the stream (e.g.
    /// `operational-disconnect` before the server closes the connection). The first error.
    StreamError(StreamError),
}

/// One v2 problem object, as the stream sends it inside `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub(crate) struct StreamError {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) detail: String,
    /// `operational-disconnect` only: why (`UpstreamOperationalDisconnect`, …).
    #[serde(default)]
    pub(crate) disconnect_type: String,
    /// Connection errors only: `TooManyConnections`, …
    #[serde(default)]
    pub(crate) connection_issue: String,
    #[serde(default, rename = "type")]
    pub(crate) kind: String,
}

impl StreamError {
    /// The server announces it is closing this connection for its own reasons: reconnect.
    pub(crate) fn is_operational_disconnect(&self) -> bool {
        self.title == "operational-disconnect" || self.kind.ends_with("/operational-disconnect")
    }
}

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<StreamError>,
}

#[derive(Deserialize)]
struct LimitBody {
    #[serde(default)]
    track: u64,
}

#[derive(Deserialize)]
struct WarningBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    percent_full: Option<u64>,
}

#[derive(Deserialize)]
struct DisconnectBody {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    reason: String,
}

/// What a record is. The first top-level key that decides, decides: Twitter puts a message's
/// type first (`{"delete":…}`, `{"limit":…}`), a v2 record starts with `data`, and a v1.1
/// tweet starts with `created_at`; a tweet's own fields never hold those type keys at the top
/// level. `errors` alone is a v2 error object, but beside `data` it only reports expansions
/// that could not be filled, so it does not decide. For a v1.1 tweet the scan goes on to
/// `id_str` (its third key), the record's key.
///
/// The producer keys and counts records by this, and the consumer files them by it, so both
/// always agree on what a record is.
pub(crate) fn classify(bytes: &[u8]) -> Message {
    let mut tweet = false;
    let mut id_str = None;
    let mut decided: Option<(&[u8], &[u8])> = None;
    let mut v2_errors = false;
    let scanned = scan::top_level_members(bytes, |key, value| {
        match key {
            b"id_str" => id_str = Some(value),
            b"id" | b"text" | b"full_text" | b"created_at" | b"user" => {
                tweet = true;
                return ControlFlow::Continue(());
            }
            b"errors" => {
                v2_errors = true;
                return ControlFlow::Continue(());
            }
            b"data" | b"limit" | b"warning" | b"disconnect" | b"delete" | b"scrub_geo"
            | b"status_withheld" | b"user_withheld"
                if !tweet =>
            {
                decided = Some((key, value))
            }
            _ => return ControlFlow::Continue(()),
        }
        ControlFlow::Break(())
    });
    if scanned.is_none() {
        return Message::Unparsed;
    }
    if id_str.is_some() || tweet {
        return tweet_message(bytes, id_str, false);
    }
    let Some((key, value)) = decided else {
        if v2_errors {
            // Error objects are rare and small: parse them fully.
            let first = serde_json::from_slice::<ErrorsBody>(bytes)
                .ok()
                .and_then(|b| b.errors.into_iter().next());
            if let Some(e) = first {
                return Message::StreamError(e);
            }
        }
        return Message::Forward { kind: "unknown" };
    };
    // Control messages are rare; parse their (small) bodies fully.
    match key {
        b"data" => classify_v2_data(bytes, value),
        b"limit" => match serde_json::from_slice::<LimitBody>(value) {
            Ok(l) => Message::Limit { track: l.track },
            Err(_) => Message::Forward { kind: "limit" },
        },
        b"warning" => match serde_json::from_slice::<WarningBody>(value) {
            Ok(w) => Message::Warning {
                code: w.code,
                message: w.message,
                percent_full: w.percent_full,
            },
            Err(_) => Message::Forward { kind: "warning" },
        },
        b"disconnect" => match serde_json::from_slice::<DisconnectBody>(value) {
            Ok(d) => Message::Disconnect {
                code: d.code,
                reason: d.reason,
            },
            Err(_) => Message::Forward { kind: "disconnect" },
        },
        b"delete" => Message::Forward { kind: "delete" },
        b"scrub_geo" => Message::Forward { kind: "scrub_geo" },
        b"status_withheld" => Message::Forward {
            kind: "status_withheld",
        },
        _ => Message::Forward {
            kind: "user_withheld",
        },
    }
}

/// A v2 record: the tweet id is `data.id`, found by scanning `data` the same way.
fn classify_v2_data(bytes: &[u8], data: &[u8]) -> Message {
    let mut id = None;
    let scanned = scan::top_level_members(data, |key, value| {
        if key == b"id" {
            id = Some(value);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if scanned.is_none() {
        // `data` is not an object: not a tweet of any shape we know.
        return Message::Forward { kind: "unknown" };
    }
    tweet_message(bytes, id, true)
}

/// A tweet, keyed by `id` (a span of `bytes`) when that is a plain JSON string: Twitter's ids
/// are decimal digits, and anything needing unescaping is not one.
fn tweet_message(bytes: &[u8], id: Option<&[u8]>, v2: bool) -> Message {
    let id = id
        .filter(|v| v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' && !v.contains(&b'\\'))
        .map(|v| {
            let start = v.as_ptr() as usize - bytes.as_ptr() as usize + 1;
            start..start + v.len() - 2
        });
    Message::Tweet { id, v2 }
}

/// What the stream does with one message read off it.
#[derive(Debug)]
pub(crate) enum Read {
    /// A record to forward.
    Record(Frame),
    /// A message the source acts on (counted and logged already): `limit`, `warning`,
    /// `disconnect`, a v2 error object.
    Control(Message),
}

/// Turns one message into a frame (keyed by the tweet id; `dedupe`: the id is also what
/// repeats are dropped by), or counts and logs the control message it is.
pub(crate) fn read(bytes: Bytes, dedupe: bool, stats: &SourceStats) -> Read {
    let msg = classify(&bytes);
    let frame = match &msg {
        Message::Tweet { id, .. } => {
            let key = id.clone().map(|r| bytes.slice(r));
            Frame {
                dedupe: key.clone().filter(|_| dedupe),
                key,
                value: bytes,
                timestamp: None,
                cursor: None,
                kind: FrameKind::Post,
            }
        }
        Message::Forward { .. } => Frame::unkeyed(bytes, FrameKind::Forward),
        Message::Unparsed => Frame::unkeyed(bytes, FrameKind::Unparsed),
        Message::Limit { track } => {
            SourceStats::add(&stats.limit_notices, 1);
            stats.limit_track.store(*track, Relaxed);
            tracing::warn!(
                undelivered_since_connect = track,
                "limit notice: the filter matches more than Twitter will deliver"
            );
            return Read::Control(msg);
        }
        Message::Warning {
            code,
            message,
            percent_full,
        } => {
            SourceStats::add(&stats.warnings, 1);
            tracing::warn!(%code, percent_full = percent_full.unwrap_or(0), "stall warning from Twitter: {message}");
            return Read::Control(msg);
        }
        Message::Disconnect { code, reason } => {
            SourceStats::add(&stats.disconnects, 1);
            tracing::warn!(code, %reason, meaning = disconnect_meaning(*code), "disconnect message from Twitter");
            return Read::Control(msg);
        }
        Message::StreamError(e) => {
            SourceStats::add(&stats.stream_errors, 1);
            tracing::warn!(
                title = %e.title,
                disconnect_type = %e.disconnect_type,
                connection_issue = %e.connection_issue,
                problem = %e.kind,
                "error object in the stream: {}",
                e.detail
            );
            return Read::Control(msg);
        }
    };
    Read::Record(frame)
}

/// Twitter's documented disconnect codes.
pub(crate) fn disconnect_meaning(code: u32) -> &'static str {
    match code {
        1 => "shutdown: the streaming server closed the connection",
        2 => "duplicate stream: another connection with the same credentials was opened",
        3 => "control request",
        4 => "stall: the client read too slowly",
        5 => "normal: the server closed the connection",
        6 => "token revoked: the access token was revoked; create new credentials",
        7 => "admin logout: the account's tokens were logged out",
        9 => "max message limit",
        10 => "stream exception",
        11 => "broker stall",
        12 => "shed load: the server is shedding load",
        _ => "unknown disconnect code",
    }
}

/// Disconnect codes after which reconnecting with the same credentials cannot succeed.
pub(crate) fn disconnect_is_fatal(code: u32) -> bool {
    matches!(code, 6 | 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_id_str_only() {
        let t = br#"{"created_at":"x","user":{"id_str":"99"},"id_str":"123","retweeted_status":{"id_str":"7"}}"#;
        let Message::Tweet {
            id: Some(id),
            v2: false,
        } = classify(t)
        else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id], b"123");
    }

    #[test]
    fn v2_records_and_error_objects() {
        let t = br#"{"data":{"author_id":"99","id":"1500","referenced_tweets":[{"type":"quoted","id":"7"}],"text":"hi"},"includes":{"users":[{"id":"99","username":"u"}]},"matching_rules":[{"id":"3","tag":"t"}]}"#;
        let Message::Tweet {
            id: Some(id),
            v2: true,
        } = classify(t)
        else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id], b"1500");
        // `errors` beside `data` (an expansion that could not be filled) is still a tweet.
        let t = br#"{"errors":[{"title":"Not Found Error"}],"data":{"id":"42","text":"x"}}"#;
        let Message::Tweet {
            id: Some(id),
            v2: true,
        } = classify(t)
        else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id], b"42");
        let e = br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#;
        let Message::StreamError(err) = classify(e) else {
            panic!("not an error object")
        };
        assert!(err.is_operational_disconnect());
        assert_eq!(err.disconnect_type, "UpstreamOperationalDisconnect");
        assert_eq!(
            classify(br#"{"data":{"text":"no id"}}"#),
            Message::Tweet { id: None, v2: true }
        );
    }

    #[test]
    fn control_messages() {
        assert_eq!(
            classify(br#"{"limit":{"track":1234,"timestamp_ms":"1"}}"#),
            Message::Limit { track: 1234 }
        );
        assert_eq!(
            classify(br#"{"disconnect":{"code":6,"stream_name":"s","reason":"token revoked"}}"#),
            Message::Disconnect {
                code: 6,
                reason: "token revoked".into()
            }
        );
        assert!(matches!(
            classify(br#"{"warning":{"code":"FALLING_BEHIND","message":"m","percent_full":60}}"#),
            Message::Warning {
                percent_full: Some(60),
                ..
            }
        ));
        assert_eq!(
            classify(br#"{"delete":{"status":{"id_str":"5"}}}"#),
            Message::Forward { kind: "delete" }
        );
        assert_eq!(
            classify(br#"{"scrub_geo":{"user_id_str":"5"}}"#),
            Message::Forward { kind: "scrub_geo" }
        );
        assert_eq!(
            classify(br#"{"something_new":{}}"#),
            Message::Forward { kind: "unknown" }
        );
        assert_eq!(classify(b"not json at all"), Message::Unparsed);
        // The first deciding key decides, in either direction.
        assert_eq!(
            classify(br#"{"delete":{"status":{"id_str":"5"}},"id_str":"6"}"#),
            Message::Forward { kind: "delete" }
        );
        assert!(matches!(
            classify(br#"{"created_at":"x","delete":{},"id_str":"6"}"#),
            Message::Tweet {
                id: Some(_),
                v2: false
            }
        ));
        assert_eq!(
            classify(br#"{"status_withheld":{"id":1}}"#),
            Message::Forward {
                kind: "status_withheld"
            }
        );
        assert_eq!(classify(b"{\"id_str\":\"\xff\xfe\"}"), Message::Unparsed);
    }
}
