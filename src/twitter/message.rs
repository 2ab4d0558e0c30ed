//! What a framed message is: a tweet (keyed by its `id_str`), a control message we act on
//! (`limit`, `warning`, `disconnect`), or something we forward untouched (`delete`,
//! `scrub_geo`, unknown types, and bytes that are not even JSON: the consumer decides what to
//! do with those, and compliance needs the deletes).
//!
//! Only the top level is looked at; nested objects (the user, a retweeted status) carry
//! `id_str`s of their own, which is why this parses instead of searching bytes.

use serde::de::IgnoredAny;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A tweet; the key is its `id_str`.
    Tweet { id_str: String },
    /// `delete`, `scrub_geo`, `status_withheld`, unknown types: forwarded without a key.
    Forward { kind: &'static str },
    /// Not JSON (or not UTF-8): forwarded without a key, counted as unparsed.
    Unparsed,
    /// `limit`: how many matching tweets Twitter did not send since the connection opened.
    Limit { track: u64 },
    /// `warning` (stall warnings): we are falling behind.
    Warning { code: String, message: String, percent_full: Option<u64> },
    /// `disconnect`: Twitter is about to close the connection.
    Disconnect { code: u32, reason: String },
}

#[derive(Deserialize)]
struct Probe {
    id_str: Option<String>,
    limit: Option<LimitBody>,
    warning: Option<WarningBody>,
    disconnect: Option<DisconnectBody>,
    delete: Option<IgnoredAny>,
    scrub_geo: Option<IgnoredAny>,
    status_withheld: Option<IgnoredAny>,
    user_withheld: Option<IgnoredAny>,
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
    let Ok(p) = serde_json::from_slice::<Probe>(bytes) else {
        return Message::Unparsed;
    };
    if let Some(l) = p.limit {
        return Message::Limit { track: l.track };
    }
    if let Some(w) = p.warning {
        return Message::Warning { code: w.code, message: w.message, percent_full: w.percent_full };
    }
    if let Some(d) = p.disconnect {
        return Message::Disconnect { code: d.code, reason: d.reason };
    }
    if p.delete.is_some() {
        return Message::Forward { kind: "delete" };
    }
    if p.scrub_geo.is_some() {
        return Message::Forward { kind: "scrub_geo" };
    }
    if p.status_withheld.is_some() || p.user_withheld.is_some() {
        return Message::Forward { kind: "withheld" };
    }
    match p.id_str {
        Some(id_str) => Message::Tweet { id_str },
        None => Message::Forward { kind: "unknown" },
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
        assert_eq!(classify(t), Message::Tweet { id_str: "123".into() });
    }

    #[test]
    fn control_messages() {
        assert_eq!(classify(br#"{"limit":{"track":1234,"timestamp_ms":"1"}}"#), Message::Limit { track: 1234 });
        assert_eq!(
            classify(br#"{"disconnect":{"code":6,"stream_name":"s","reason":"token revoked"}}"#),
            Message::Disconnect { code: 6, reason: "token revoked".into() }
        );
        assert!(matches!(
            classify(br#"{"warning":{"code":"FALLING_BEHIND","message":"m","percent_full":60}}"#),
            Message::Warning { percent_full: Some(60), .. }
        ));
        assert_eq!(classify(br#"{"delete":{"status":{"id_str":"5"}}}"#), Message::Forward { kind: "delete" });
        assert_eq!(classify(br#"{"scrub_geo":{"user_id_str":"5"}}"#), Message::Forward { kind: "scrub_geo" });
        assert_eq!(classify(br#"{"something_new":{}}"#), Message::Forward { kind: "unknown" });
        assert_eq!(classify(b"not json at all"), Message::Unparsed);
        assert_eq!(classify(b"{\"id_str\":\"\xff\xfe\"}"), Message::Unparsed);
    }
}
