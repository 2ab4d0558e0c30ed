//! What a framed message is: a tweet (keyed by its `id_str`), a control message we act on
//! (`limit`, `warning`, `disconnect`), or something we forward untouched (`delete`,
//! `scrub_geo`, unknown types, and bytes that are not even JSON: the consumer decides what to
//! do with those, and compliance needs the deletes).
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
    // Twitter's messages put their type first (`{"delete":…}`, `{"limit":…}`), and a tweet's
    // `id_str` is its third key: stop at the first key that decides.
    let scanned = scan::top_level_members(bytes, |key, value| {
        match key {
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
    // Twitter's `id_str` is decimal digits; anything needing unescaping is not a tweet id.
    match id_str {
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
