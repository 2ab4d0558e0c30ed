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

use serde::Deserialize;

use super::scan;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A tweet; `id_str` is where its `id_str` value (the record key) sits in the message, so
    /// the key can share the message's bytes.
    Tweet { id_str: std::ops::Range<usize> },
    /// `delete`, `scrub_geo`, `status_withheld`, unknown types: forwarded without a key.
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
pub struct StreamError {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    /// `operational-disconnect` only: why (`UpstreamOperationalDisconnect`, …).
    #[serde(default)]
    pub disconnect_type: String,
    /// Connection errors only: `TooManyConnections`, …
    #[serde(default)]
    pub connection_issue: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

impl StreamError {
    /// The server announces it is closing this connection for its own reasons: reconnect.
    pub fn is_operational_disconnect(&self) -> bool {
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

pub fn classify(bytes: &[u8]) -> Message {
    let mut id_str = None;
    let mut control: Option<(&[u8], &[u8])> = None;
    let mut forward = None;
    let mut v2_data = None;
    let mut v2_errors = false;
    // Twitter's messages put their type first (`{"delete":…}`, `{"limit":…}`), and a tweet's
    // `id_str` is its third key: stop at the first key that decides. A v2 record starts with
    // `data`; `errors` alone is an error object, but beside `data` it only reports
    // expansions that could not be filled, so it does not decide.
    let scanned = scan::top_level_members(bytes, |key, value| {
        match key {
            b"data" => v2_data = Some(value),
            b"errors" => {
                v2_errors = true;
                return ControlFlow::Continue(());
            }
            b"id_str" => id_str = Some(value),
            b"limit" | b"warning" | b"disconnect" => control = Some((key, value)),
            b"delete" => forward = Some("delete"),
            b"scrub_geo" => forward = Some("scrub_geo"),
            b"status_withheld" | b"user_withheld" => forward = Some("withheld"),
            _ => return ControlFlow::Continue(()),
        }
        ControlFlow::Break(())
    });
    if scanned.is_none() {
        return Message::Unparsed;
    }
    if let Some(data) = v2_data {
        return classify_v2_data(bytes, data);
    }
    if v2_errors {
        // Error objects are rare and small: parse them fully.
        let first = serde_json::from_slice::<ErrorsBody>(bytes)
            .ok()
            .and_then(|b| b.errors.into_iter().next());
        if let Some(e) = first {
            return Message::StreamError(e);
        }
        return Message::Forward { kind: "unknown" };
    }
    // Control messages are rare; parse their (small) bodies fully.
    match control {
        Some((b"limit", v)) => {
            if let Ok(l) = serde_json::from_slice::<LimitBody>(v) {
                return Message::Limit { track: l.track };
            }
        }
        Some((b"warning", v)) => {
            if let Ok(w) = serde_json::from_slice::<WarningBody>(v) {
                return Message::Warning {
                    code: w.code,
                    message: w.message,
                    percent_full: w.percent_full,
                };
            }
        }
        Some((_, v)) => {
            if let Ok(d) = serde_json::from_slice::<DisconnectBody>(v) {
                return Message::Disconnect {
                    code: d.code,
                    reason: d.reason,
                };
            }
        }
        None => {}
    }
    if let Some(kind) = forward {
        return Message::Forward { kind };
    }
    id_message(bytes, id_str)
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
        return Message::Forward { kind: "unknown" };
    }
    id_message(bytes, id)
}

/// A tweet keyed by `id` (a span of `bytes`), if it is a plain JSON string.
fn id_message(bytes: &[u8], id: Option<&[u8]>) -> Message {
    // Twitter's ids are decimal digits; anything needing unescaping is not a tweet id.
    match id {
        Some(v)
            if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' && !v.contains(&b'\\') =>
        {
            let start = v.as_ptr() as usize - bytes.as_ptr() as usize + 1;
            Message::Tweet {
                id_str: start..start + v.len() - 2,
            }
        }
        _ => Message::Forward { kind: "unknown" },
    }
}

/// Twitter's documented disconnect codes.
pub fn disconnect_meaning(code: u32) -> &'static str {
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
pub fn disconnect_is_fatal(code: u32) -> bool {
    matches!(code, 6 | 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_id_str_only() {
        let t = br#"{"created_at":"x","user":{"id_str":"99"},"id_str":"123","retweeted_status":{"id_str":"7"}}"#;
        let Message::Tweet { id_str } = classify(t) else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id_str], b"123");
    }

    #[test]
    fn v2_records_and_error_objects() {
        let t = br#"{"data":{"author_id":"99","id":"1500","referenced_tweets":[{"type":"quoted","id":"7"}],"text":"hi"},"includes":{"users":[{"id":"99","username":"u"}]},"matching_rules":[{"id":"3","tag":"t"}]}"#;
        let Message::Tweet { id_str } = classify(t) else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id_str], b"1500");
        // `errors` beside `data` (an expansion that could not be filled) is still a tweet.
        let t = br#"{"errors":[{"title":"Not Found Error"}],"data":{"id":"42","text":"x"}}"#;
        let Message::Tweet { id_str } = classify(t) else {
            panic!("not a tweet")
        };
        assert_eq!(&t[id_str], b"42");
        let e = br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#;
        let Message::StreamError(err) = classify(e) else {
            panic!("not an error object")
        };
        assert!(err.is_operational_disconnect());
        assert_eq!(err.disconnect_type, "UpstreamOperationalDisconnect");
        assert_eq!(
            classify(br#"{"data":{"text":"no id"}}"#),
            Message::Forward { kind: "unknown" }
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
        assert_eq!(classify(b"{\"id_str\":\"\xff\xfe\"}"), Message::Unparsed);
    }
}
