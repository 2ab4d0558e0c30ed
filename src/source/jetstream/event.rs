//! One Jetstream event (the JSON of a text frame, or a binary frame decompressed) → a
//! [`Frame`]: the JSON exactly as received is the value; the rest comes from reading just the
//! few fields that say what it is.
//!
//! ```text
//! {"did":"did:plc:…","time_us":1783175888090631,"kind":"commit",
//!  "commit":{"rev":"3mptbypcq372f","operation":"create","collection":"app.bsky.feed.post",
//!            "rkey":"3mptbyoeyc22k","record":{…},"cid":"bafy…"}}
//! {"did":"did:plc:…","time_us":…,"kind":"identity","identity":{"did":…,"seq":31527015470,…}}
//! {"did":"did:plc:…","time_us":…,"kind":"account","account":{"active":true,…,"seq":…}}
//! ```
//!
//! - **key** = `did`: every event of one account lands on one partition, in order, so a delete
//!   never overtakes the create it deletes. It is a slice of the value, not a copy.
//! - **timestamp and cursor** = `time_us` (when this Jetstream instance saw the event; the
//!   resume position its `cursor` parameter takes).
//! - **dedupe identity**: what stays the same when an event is sent again, whichever instance
//!   sends it (`time_us` does not: it is each instance's own clock). A commit is
//!   `did/collection/rkey/rev/operation` (the revision names the commit; the operation is
//!   there for a commit that touches one record twice). Identity and account events are
//!   `did#kind#seq`, with the relay's sequence number they carry. Anything else has none and
//!   is never dropped as a duplicate.
//! - **kind**: commits that create or update a record are [`FrameKind::Post`]; deletes,
//!   identity and account events (and kinds this version does not know) are forwarded like
//!   the Twitter stream's control messages; what is not a JSON object with a `did` and a
//!   `time_us` is [`FrameKind::Unparsed`], forwarded unkeyed for the consumer to file.
//!
//! Only these fields are named in the structs below, so serde_json skips the record itself
//! (most of the bytes) without building anything, and strings borrow from the frame.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use chrono::DateTime;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::source::{Frame, FrameKind};

/// What the event turned out to be, for the source's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Commit,
    Identity,
    Account,
    /// A `kind` this version does not know (forwarded).
    Other,
    /// Not a Jetstream event.
    Unparsed,
}

/// Reads `value` (one event's JSON) into the frame that carries it to Kafka.
pub(crate) fn frame(value: Bytes) -> (Frame, EventKind) {
    let parsed = match serde_json::from_slice::<Wire<'_>>(&value) {
        Ok(w) => read(&value, w),
        Err(_) => None,
    };
    match parsed {
        Some(Read {
            key,
            dedupe,
            time_us,
            kind,
            event,
        }) => (
            Frame {
                key: Some(key),
                dedupe,
                timestamp: DateTime::from_timestamp_micros(time_us),
                cursor: Some(time_us),
                kind,
                value,
            },
            event,
        ),
        None => (
            Frame {
                value,
                key: None,
                dedupe: None,
                timestamp: None,
                cursor: None,
                kind: FrameKind::Unparsed,
            },
            EventKind::Unparsed,
        ),
    }
}

struct Read {
    key: Bytes,
    dedupe: Option<Bytes>,
    time_us: i64,
    kind: FrameKind,
    event: EventKind,
}

fn read(value: &Bytes, w: Wire<'_>) -> Option<Read> {
    let did = w.did.filter(|d| !d.0.is_empty())?;
    let time_us = w.time_us?;
    let key = slice_of(value, &did.0);
    let kind = w.kind.as_ref().map(|k| &*k.0);
    let (kind, event, dedupe) = match (kind, w.commit, w.identity, w.account) {
        (Some("commit"), Some(c), _, _) => {
            let op = c.operation.as_ref().map(|o| &*o.0);
            let kind = match op {
                Some("create" | "update") => FrameKind::Post,
                _ => FrameKind::Forward,
            };
            let dedupe = match (&c.collection, &c.rkey, &c.rev, &op) {
                (Some(col), Some(rkey), Some(rev), Some(op)) => {
                    Some(join(&[&did.0, &col.0, &rkey.0, &rev.0, op], b'/'))
                }
                _ => None,
            };
            (kind, EventKind::Commit, dedupe)
        }
        (Some("identity"), _, Some(s), _) => (
            FrameKind::Forward,
            EventKind::Identity,
            s.seq
                .map(|seq| join(&[&did.0, "identity", &seq.to_string()], b'#')),
        ),
        (Some("account"), _, _, Some(s)) => (
            FrameKind::Forward,
            EventKind::Account,
            s.seq
                .map(|seq| join(&[&did.0, "account", &seq.to_string()], b'#')),
        ),
        _ => (FrameKind::Forward, EventKind::Other, None),
    };
    Some(Read {
        key,
        dedupe,
        time_us,
        kind,
        event,
    })
}

/// `s` as a slice of `value` when it was borrowed from it (no escapes), else a copy.
fn slice_of(value: &Bytes, s: &str) -> Bytes {
    let base = value.as_ptr() as usize;
    let at = s.as_ptr() as usize;
    if at >= base && at + s.len() <= base + value.len() {
        value.slice(at - base..at - base + s.len())
    } else {
        Bytes::copy_from_slice(s.as_bytes())
    }
}

fn join(parts: &[&str], sep: u8) -> Bytes {
    let mut v = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            v.push(sep);
        }
        v.extend_from_slice(p.as_bytes());
    }
    Bytes::from(v)
}

// ---------------------------------------------------------------------------------------------
// Wire shapes (only the fields we use)
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    did: Option<S<'a>>,
    time_us: Option<i64>,
    #[serde(borrow)]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    commit: Option<Commit<'a>>,
    identity: Option<Sequenced>,
    account: Option<Sequenced>,
}

#[derive(serde::Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    rev: Option<S<'a>>,
    #[serde(borrow)]
    operation: Option<S<'a>>,
    #[serde(borrow)]
    collection: Option<S<'a>>,
    #[serde(borrow)]
    rkey: Option<S<'a>>,
}

#[derive(serde::Deserialize)]
struct Sequenced {
    seq: Option<i64>,
}

/// A JSON string, borrowed when it has no escape (serde's `Cow<str>` only borrows as a bare
/// field, not inside `Option`).
struct S<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = S<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(S(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(S(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn events() -> Vec<Bytes> {
        let text = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/jetstream/events_v1.jsonl"),
        )
        .unwrap();
        text.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(Bytes::copy_from_slice)
            .collect()
    }

    #[test]
    fn the_real_events() {
        let mut kinds = std::collections::BTreeMap::new();
        let mut identities = HashSet::new();
        for value in events() {
            let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
            let (f, kind) = frame(value.clone());
            *kinds.entry(format!("{kind:?}/{:?}", f.kind)).or_insert(0) += 1;
            assert_eq!(f.value, value, "the value is the event as received");
            assert_eq!(
                f.key.as_deref(),
                Some(json["did"].as_str().unwrap().as_bytes())
            );
            // The key is a slice of the value, not a copy.
            let (k, v) = (f.key.as_ref().unwrap().as_ptr(), f.value.as_ptr());
            assert!(k > v && k < v.wrapping_add(f.value.len()));
            let t = json["time_us"].as_i64().unwrap();
            assert_eq!(f.cursor, Some(t));
            assert_eq!(f.timestamp.unwrap().timestamp_micros(), t);
            let id = f.dedupe.expect("every real event has an identity");
            assert!(identities.insert(id), "identities are unique");
        }
        let want: std::collections::BTreeMap<String, i32> = [
            ("Commit/Post", 146),
            ("Commit/Forward", 4),
            ("Identity/Forward", 1),
            ("Account/Forward", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(kinds, want);
    }

    #[test]
    fn identities() {
        let (f, _) = frame(Bytes::from_static(
            br#"{"did":"did:plc:a","time_us":5,"kind":"commit","commit":{"rev":"r1","operation":"delete","collection":"app.bsky.feed.post","rkey":"k1"}}"#,
        ));
        assert_eq!(f.kind, FrameKind::Forward);
        assert_eq!(
            f.dedupe.as_deref(),
            Some(&b"did:plc:a/app.bsky.feed.post/k1/r1/delete"[..])
        );
        let (f, k) = frame(Bytes::from_static(
            br#"{"did":"did:plc:a","time_us":5,"kind":"identity","identity":{"did":"did:plc:a","seq":42,"time":"2026-07-04T14:38:07.877Z"}}"#,
        ));
        assert_eq!((k, f.kind), (EventKind::Identity, FrameKind::Forward));
        assert_eq!(f.dedupe.as_deref(), Some(&b"did:plc:a#identity#42"[..]));
        // Escaped strings are read too (copied instead of borrowed).
        let (f, _) = frame(Bytes::from_static(
            br#"{"did":"did:plc:\u0061","time_us":5,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"c","rkey":"k"}}"#,
        ));
        assert_eq!(f.key.as_deref(), Some(&b"did:plc:a"[..]));
        assert_eq!(f.kind, FrameKind::Post);
        // An unknown kind is forwarded, keyed, without identity.
        let (f, k) = frame(Bytes::from_static(
            br#"{"did":"did:plc:a","time_us":7,"kind":"sync","sync":{}}"#,
        ));
        assert_eq!(
            (k, f.kind, f.dedupe),
            (EventKind::Other, FrameKind::Forward, None)
        );
        assert_eq!(f.cursor, Some(7));
    }

    #[test]
    fn not_events() {
        for v in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"time_us\":5}",
            b"{\"did\":\"did:plc:a\"}",
            b"{\"did\":\"\",\"time_us\":5}",
            b"{\"did\":5,\"time_us\":5}",
            b"",
        ] {
            let (f, k) = frame(Bytes::copy_from_slice(v));
            assert_eq!(
                (k, f.kind),
                (EventKind::Unparsed, FrameKind::Unparsed),
                "{v:?}"
            );
            assert_eq!((f.key, f.cursor), (None, None));
            assert_eq!(f.value, v);
        }
    }
}
