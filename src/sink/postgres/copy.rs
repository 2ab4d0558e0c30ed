//! The rows, in PostgreSQL's binary COPY format, made on each partition's task ([`Rows`]):
//! the writer task then only appends bytes, and a flush streams them to the server as they
//! are. Binary rather than text COPY: no escaping of tweet texts, and numbers, times and
//! arrays arrive already in the server's own form.
//!
//! Each record becomes one tuple of the table its kind goes to ([`TWEET_COLUMNS`],
//! [`DELETE_COLUMNS`], [`ERROR_COLUMNS`]); [`HEADER`] and [`TRAILER`] frame a stream of them.

use std::borrow::Cow;

use crate::enrich::{EnrichedTweet, Outcome};
use crate::sink::{ConsumedRecord, Encoded, Encoder, Entry, Kind};

/// The columns of a tweet tuple, in the order [`Rows`] writes them.
pub(crate) const TWEET_COLUMNS: &str = "id, created_at, user_id, user_screen_name, text, lang, \
     lang_source, sentiment_neg, sentiment_neu, sentiment_pos, sentiment_compound, hashtags, \
     mentions, urls, is_retweet, retweeted_id, is_quote, in_reply_to_id, quoted_id, \
     source_format, source, kafka_partition, kafka_offset, raw";
const TWEET_FIELDS: i16 = 24;

/// The columns of a control-message tuple (a delete, a scrub_geo, …).
pub(crate) const DELETE_COLUMNS: &str =
    "kind, tweet_id, user_id, up_to_id, message, kafka_partition, kafka_offset";
const DELETE_FIELDS: i16 = 7;

/// The columns of an error tuple (a record that could not be used).
pub(crate) const ERROR_COLUMNS: &str = "reason, value, kafka_partition, kafka_offset";
const ERROR_FIELDS: i16 = 4;

/// Starts a binary COPY stream: signature, flags, no header extension.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Ends one.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The type oid of `text`, in array headers.
const TEXT_OID: u32 = 25;

/// The PostgreSQL sink's encoder.
pub(crate) struct Rows;

impl Encoder for Rows {
    fn encode(&self, record: &ConsumedRecord<'_>, outcome: &Outcome, out: &mut Encoded) {
        let start = out.bytes.len();
        let kind = match outcome {
            Outcome::Tweet(t) => match tweet(&mut out.bytes, t, record) {
                Ok(()) => Kind::Tweet,
                Err(reason) => {
                    out.bytes.truncate(start);
                    error(&mut out.bytes, &reason, record);
                    Kind::Error
                }
            },
            Outcome::Control { kind, raw } => {
                control(&mut out.bytes, kind, raw, record);
                Kind::Control
            }
            Outcome::Invalid { reason } => {
                error(&mut out.bytes, reason, record);
                Kind::Error
            }
        };
        out.entries.push(Entry {
            offset: record.offset,
            kind,
            end: out.bytes.len(),
        });
    }

    /// The raw record, and the enriched fields beside it.
    fn estimate(&self, value_len: usize) -> usize {
        value_len + 512
    }
}

fn tweet(out: &mut Vec<u8>, t: &EnrichedTweet, record: &ConsumedRecord<'_>) -> Result<(), String> {
    let micros = chrono::DateTime::parse_from_rfc3339(&t.created_at)
        .map_err(|e| format!("created_at {:?} is not an RFC 3339 time: {e}", t.created_at))?
        .timestamp_micros();
    let raw =
        std::str::from_utf8(record.value).map_err(|e| format!("the record is not UTF-8: {e}"))?;
    fields(out, TWEET_FIELDS);
    text(out, &t.id);
    field(out, &(micros - PG_EPOCH_MICROS).to_be_bytes());
    text(out, &t.user.id);
    text(out, &t.user.screen_name);
    text(out, &t.text);
    text(out, &t.lang);
    text(out, t.lang_source);
    let s = &t.sentiment;
    for score in [s.neg, s.neu, s.pos, s.compound] {
        field(out, &score.to_be_bytes());
    }
    text_array(out, &t.hashtags);
    text_array(out, &t.mentions);
    text_array(out, &t.urls);
    field(out, &[t.is_retweet as u8]);
    opt_text(out, t.retweeted_id.as_deref());
    field(out, &[t.is_quote as u8]);
    opt_text(out, t.in_reply_to_id.as_deref());
    opt_text(out, t.quoted_id.as_deref());
    text(out, t.source_format);
    text(out, t.source);
    field(out, &record.partition.to_be_bytes());
    field(out, &record.offset.to_be_bytes());
    text(out, raw);
    Ok(())
}

fn control(out: &mut Vec<u8>, kind: &str, raw: &serde_json::Value, record: &ConsumedRecord<'_>) {
    let target = Target::of(kind, raw);
    fields(out, DELETE_FIELDS);
    text(out, kind);
    opt_text(out, target.tweet_id.as_deref());
    opt_text(out, target.user_id.as_deref());
    opt_text(out, target.up_to_id.as_deref());
    let json = serde_json::to_string(raw).expect("serializing to memory");
    // jsonb: a version byte, then the JSON text.
    let json = without_nul_escapes(&json);
    out.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    out.push(1);
    out.extend_from_slice(json.as_bytes());
    field(out, &record.partition.to_be_bytes());
    field(out, &record.offset.to_be_bytes());
}

fn error(out: &mut Vec<u8>, reason: &str, record: &ConsumedRecord<'_>) {
    fields(out, ERROR_FIELDS);
    text(out, reason);
    field(out, record.value);
    field(out, &record.partition.to_be_bytes());
    field(out, &record.offset.to_be_bytes());
}

/// What a control message acts on: the tweet a delete removes, the user and last tweet id
/// a scrub_geo covers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) tweet_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) up_to_id: Option<String>,
}

impl Target {
    pub(crate) fn of(kind: &str, raw: &serde_json::Value) -> Self {
        let id = |v: &serde_json::Value, key: &str| -> Option<String> {
            let s = v.get(format!("{key}_str")).and_then(|s| s.as_str());
            match s {
                Some(s) => Some(s.to_string()),
                None => v.get(key).and_then(|n| match n {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) => Some(s.clone()),
                    _ => None,
                }),
            }
        };
        match kind {
            "delete" => {
                // v1.1: {"delete":{"status":{"id_str":…,"user_id_str":…}}}
                if let Some(status) = raw.pointer("/delete/status") {
                    return Target {
                        tweet_id: id(status, "id"),
                        user_id: id(status, "user_id"),
                        up_to_id: None,
                    };
                }
                // Jetstream: the post's at:// URI, as the tweet row's id.
                let commit = &raw["commit"];
                match (
                    raw["did"].as_str(),
                    commit["collection"].as_str(),
                    commit["rkey"].as_str(),
                ) {
                    (Some(did), Some(collection @ "app.bsky.feed.post"), Some(rkey)) => Target {
                        tweet_id: Some(format!("at://{did}/{collection}/{rkey}")),
                        user_id: Some(did.to_string()),
                        up_to_id: None,
                    },
                    _ => Target::default(),
                }
            }
            "scrub_geo" => {
                let s = &raw["scrub_geo"];
                Target {
                    tweet_id: None,
                    user_id: id(s, "user_id"),
                    up_to_id: id(s, "up_to_status_id"),
                }
            }
            _ => Target::default(),
        }
    }
}

/// The tuples of a chunk of them (a whole number of tuples, without header or trailer).
pub(crate) fn split_tuples(chunk: &bytes::Bytes) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 2 <= chunk.len() {
        let start = at;
        let n = i16::from_be_bytes([chunk[at], chunk[at + 1]]);
        at += 2;
        for _ in 0..n.max(0) {
            let len = i32::from_be_bytes(chunk[at..at + 4].try_into().expect("a field's length"));
            at += 4 + len.max(0) as usize;
        }
        out.push(chunk.slice(start..at));
    }
    out
}

/// The fields of one tuple (`None`: NULL).
pub(crate) fn tuple_fields(tuple: &[u8]) -> Vec<Option<&[u8]>> {
    let n = i16::from_be_bytes([tuple[0], tuple[1]]).max(0) as usize;
    let mut at = 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(tuple[at..at + 4].try_into().expect("a field's length"));
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(&tuple[at..at + len as usize]));
            at += len as usize;
        }
    }
    out
}

/// An error tuple for a record the database refused: `value` as received (a tweet's raw
/// record, a control message's JSON), at its Kafka position.
pub(crate) fn refused(reason: &str, value: &[u8], partition: &[u8], offset: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    fields(&mut out, ERROR_FIELDS);
    text(&mut out, reason);
    field(&mut out, value);
    field(&mut out, partition);
    field(&mut out, offset);
    out
}

/// The first field of a tuple as text (a tweet's id).
pub(crate) fn first_text(tuple: &[u8]) -> &str {
    let len = i32::from_be_bytes(tuple[2..6].try_into().expect("a tuple's first length"));
    std::str::from_utf8(&tuple[6..6 + len.max(0) as usize]).unwrap_or_default()
}

fn fields(out: &mut Vec<u8>, n: i16) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn field(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as i32).to_be_bytes());
    out.extend_from_slice(value);
}

/// A text field. PostgreSQL text cannot hold NUL, which JSON can (`\u0000`): it is dropped.
fn text(out: &mut Vec<u8>, s: &str) {
    if memchr::memchr(0, s.as_bytes()).is_some() {
        field(out, s.replace('\0', "").as_bytes());
    } else {
        field(out, s.as_bytes());
    }
}

fn opt_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => text(out, s),
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A one-dimensional `text[]` (zero dimensions when empty, as PostgreSQL writes `{}`).
fn text_array(out: &mut Vec<u8>, items: &[String]) {
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let ndim: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // no NULL elements
    out.extend_from_slice(&TEXT_OID.to_be_bytes());
    if !items.is_empty() {
        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        for item in items {
            text(out, item);
        }
    }
    let len = (out.len() - len_at - 4) as i32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

/// JSON text without `\u0000` escapes, which jsonb refuses (it cannot store NUL): each
/// becomes `\ufffd`. An escaped backslash followed by `u0000` is text, and stays.
pub(crate) fn without_nul_escapes(json: &str) -> Cow<'_, str> {
    const ESC: &str = "\\u0000";
    if !json.contains(ESC) {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut last = 0;
    for (at, _) in json.match_indices(ESC) {
        if at < last {
            continue;
        }
        let backslashes = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            out.push_str(&json[last..at]);
            out.push_str("\\ufffd");
            last = at + ESC.len();
        }
    }
    out.push_str(&json[last..]);
    Cow::Owned(out)
}
