//! Reading one Kafka record value: what kind of stream message it is and, for a tweet, the
//! handful of fields the enricher keeps (id, time, author, text, entities, retweet/quote links,
//! Twitter's language label), from either the v1.1 statuses stream or the v2 filtered stream.
//!
//! Why it is written this way: parsing is most of the consumer's per-tweet cost. A 3–5 KB v1.1
//! tweet is mostly things we drop (the ~40-field `user` profile, the embedded quoted tweet,
//! counts, media), so every struct here names only the fields we use and serde_json skips the
//! rest with its allocation-free skipper. Strings come out as [`Str`], which borrows from the
//! record whenever the JSON string has no escape (ids, dates, screen names, most hashtags) and
//! allocates only when it has one (texts with `\uXXXX`, `\/` in URLs). What kind of message a
//! record is, is decided first, by the producer's classifier (it reads only the first few
//! top-level keys); only the rare control messages are then parsed into a `serde_json::Value`
//! for the caller to write out whole.
//!
//! Decisions that shape the output (documented on [`crate::enrich::EnrichedTweet`] too):
//! - **Retweets** take text, entities, language and quote flag from the original
//!   (`retweeted_status` in v1.1; the `includes.tweets` entry named by the "retweeted"
//!   reference in v2, when the stream was asked to expand it). The retweet's own text is
//!   "RT @user: " plus the original cut to 140 characters, which would mislead both the
//!   language detector and VADER and lose the original's hashtags and links.
//! - **Text** is the longest form available: v1.1 `extended_tweet.full_text`, else `full_text`,
//!   else `text`; v2 `note_tweet.text` (tweets over 280 characters), else `text`. Entities come
//!   from the same object as the text so that they describe it.
//! - Twitter HTML-escapes `&`, `<` and `>` in tweet text (both API versions); we undo exactly
//!   those three so that the output is the text as written (and VADER sees `<3`, not `&lt;3`).
//! - **created_at** becomes RFC 3339 in UTC with `Z`; whole seconds print without a fraction
//!   (v2's always-zero `.000` is dropped), a non-zero fraction is kept. The v1.1 weekday name
//!   must be a weekday name but is not checked against the date: it adds nothing to the instant.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::{Outcome, User};

// ---------------------------------------------------------------------------------------------
// Borrowing string and id types
// ---------------------------------------------------------------------------------------------

/// A JSON string: borrowed from the record when it contains no escape, owned when serde_json
/// had to unescape it. (serde's own `#[serde(borrow)] Cow<str>` only borrows for a bare `Cow`
/// field, not inside `Option` or `Vec`, hence this newtype.)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'a> Str<'a> {
    fn as_str(&self) -> &str {
        &self.0
    }
    fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An id as Twitter sends it: a string (`id_str`, every v2 id) or a JSON number (v1.1 `id`,
/// which is exact in serde_json as a u64 even where JavaScript would round it).
#[derive(Debug, Clone, PartialEq)]
enum Id<'a> {
    Num(u64),
    Str(Cow<'a, str>),
}

impl Id<'_> {
    fn into_string(self) -> String {
        match self {
            Id::Num(n) => n.to_string(),
            Id::Str(s) => s.into_owned(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id (string or non-negative integer)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Id::Num(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id::Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_any(V)
    }
}

/// `id_str` when present and non-empty, else `id`.
fn pick_id<'a>(id_str: Option<Str<'a>>, id: Option<Id<'a>>) -> Option<String> {
    match id_str {
        Some(s) if !s.0.is_empty() => Some(s.into_string()),
        _ => id.map(Id::into_string).filter(|s| !s.is_empty()),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire shapes (only the fields we use; serde skips every other key)
// ---------------------------------------------------------------------------------------------

/// Every top-level shape a record can have, in one struct so that one pass classifies it.
#[derive(serde::Deserialize)]
struct Record<'a> {
    // v1.1 tweet: the fields of `V1Status` plus the author and the retweeted original.
    #[serde(borrow)]
    id_str: Option<Str<'a>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    created_at: Option<Str<'a>>,
    #[serde(borrow)]
    user: Option<V1User<'a>>,
    #[serde(borrow)]
    retweeted_status: Option<Box<V1Status<'a>>>,
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    full_text: Option<Str<'a>>,
    #[serde(borrow)]
    extended_tweet: Option<V1Extended<'a>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
    #[serde(borrow)]
    lang: Option<Str<'a>>,
    is_quote_status: Option<bool>,
    #[serde(borrow)]
    quoted_status_id_str: Option<Str<'a>>,
    #[serde(borrow)]
    in_reply_to_status_id_str: Option<Str<'a>>,

    // v2 filtered-stream record.
    #[serde(borrow)]
    data: Option<V2Tweet<'a>>,
    #[serde(borrow)]
    includes: Option<V2Includes<'a>>,
}

/// A v1.1 tweet as embedded in `retweeted_status` (its author is not needed).
#[derive(serde::Deserialize)]
struct V1Status<'a> {
    #[serde(borrow)]
    id_str: Option<Str<'a>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    full_text: Option<Str<'a>>,
    #[serde(borrow)]
    extended_tweet: Option<V1Extended<'a>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
    #[serde(borrow)]
    lang: Option<Str<'a>>,
    is_quote_status: Option<bool>,
    #[serde(borrow)]
    quoted_status_id_str: Option<Str<'a>>,
    #[serde(borrow)]
    in_reply_to_status_id_str: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V1User<'a> {
    #[serde(borrow)]
    id_str: Option<Str<'a>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    screen_name: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V1Extended<'a> {
    #[serde(borrow)]
    full_text: Option<Str<'a>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct V1Entities<'a> {
    #[serde(borrow, default)]
    hashtags: Vec<V1Hashtag<'a>>,
    #[serde(borrow, default)]
    user_mentions: Vec<V1Mention<'a>>,
    #[serde(borrow, default)]
    urls: Vec<Url<'a>>,
}

#[derive(serde::Deserialize)]
struct V1Hashtag<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V1Mention<'a> {
    #[serde(borrow)]
    screen_name: Option<Str<'a>>,
}

/// A URL entity; the same two fields in v1.1 and v2.
#[derive(serde::Deserialize)]
struct Url<'a> {
    #[serde(borrow)]
    url: Option<Str<'a>>,
    #[serde(borrow)]
    expanded_url: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V2Tweet<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    note_tweet: Option<V2Note<'a>>,
    #[serde(borrow)]
    author_id: Option<Str<'a>>,
    #[serde(borrow)]
    created_at: Option<Str<'a>>,
    #[serde(borrow)]
    lang: Option<Str<'a>>,
    #[serde(borrow)]
    entities: Option<V2Entities<'a>>,
    #[serde(borrow)]
    referenced_tweets: Option<Vec<V2Ref<'a>>>,
}

/// The full text and entities of a v2 tweet longer than 280 characters.
#[derive(serde::Deserialize)]
struct V2Note<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    entities: Option<V2Entities<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct V2Entities<'a> {
    #[serde(borrow, default)]
    hashtags: Vec<V2Hashtag<'a>>,
    #[serde(borrow, default)]
    mentions: Vec<V2Mention<'a>>,
    #[serde(borrow, default)]
    urls: Vec<Url<'a>>,
}

#[derive(serde::Deserialize)]
struct V2Hashtag<'a> {
    #[serde(borrow)]
    tag: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V2Mention<'a> {
    #[serde(borrow)]
    username: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct V2Ref<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
}

#[derive(serde::Deserialize)]
struct V2Includes<'a> {
    #[serde(borrow, default)]
    users: Vec<V2User<'a>>,
    #[serde(borrow, default)]
    tweets: Vec<V2Tweet<'a>>,
}

#[derive(serde::Deserialize)]
struct V2User<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    username: Option<Str<'a>>,
}

// ---------------------------------------------------------------------------------------------
// Stage 1: parse and classify
// ---------------------------------------------------------------------------------------------

/// A record that parsed as a tweet (v1.1 or v2), still borrowing from the record value.
/// Turn it into [`Fields`] with [`Parsed::extract`].
pub struct Parsed<'a>(Box<Record<'a>>, Format);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}

/// Parses one record value and tells a tweet from a control message or garbage.
///
/// What a record is, is decided by the same classifier the producer keys records by
/// (`source::twitter::message::classify`), so the two always agree. `Err` carries the final
/// [`Outcome`] for everything that is not a tweet: `Control` (with the whole message parsed
/// into a `Value`) or `Invalid` (with a reason).
pub fn parse(value: &[u8]) -> Result<Parsed<'_>, Outcome> {
    use crate::source::twitter::message::{classify, Message};
    let format = match classify(value) {
        Message::Tweet { v2: true, .. } => Format::V2,
        Message::Tweet { v2: false, .. } => Format::V1,
        Message::Unparsed => return Err(unparsed(value)),
        Message::Forward { kind: "unknown" } => {
            return Err(invalid(unknown_object(&String::from_utf8_lossy(value))))
        }
        Message::Forward { kind } => return Err(control(kind, value)),
        Message::Limit { .. } => return Err(control("limit", value)),
        Message::Warning { .. } => return Err(control("warning", value)),
        Message::Disconnect { .. } => return Err(control("disconnect", value)),
        Message::StreamError(_) => return Err(control("error", value)),
    };
    // One UTF-8 check of the whole record up front lets serde_json read it as a `str` and skip
    // the check it would otherwise make on every key and kept string (a good part of parsing).
    let value = match std::str::from_utf8(value) {
        Ok(v) => v,
        Err(e) => return Err(invalid(format!("not JSON: not UTF-8 ({e})"))),
    };
    let record: Record<'_> = match serde_json::from_str(value) {
        Ok(r) => r,
        Err(e) if e.is_data() => {
            return Err(invalid(format!("JSON object of an unexpected shape: {e}")))
        }
        Err(e) => return Err(invalid(format!("not JSON: {e}"))),
    };
    Ok(Parsed(Box::new(record), format))
}

fn invalid(reason: String) -> Outcome {
    Outcome::Invalid { reason }
}

/// A stream control message, parsed whole for the deletes output. Rare next to tweets: a
/// parse into a `Value` costs little here.
fn control(kind: &'static str, value: &[u8]) -> Outcome {
    match serde_json::from_slice(value) {
        Ok(raw) => Outcome::Control { kind, raw },
        Err(e) => invalid(format!("not JSON: {e}")),
    }
}

/// Why a record the classifier could not read as a JSON object is not one.
fn unparsed(value: &[u8]) -> Outcome {
    // serde's derived struct visitor also accepts a JSON array (fields by position), so
    // anything that does not start as an object is named for what it is instead.
    match value.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        _ => return not_an_object(value),
    }
    match std::str::from_utf8(value) {
        Err(e) => invalid(format!("not JSON: not UTF-8 ({e})")),
        Ok(v) => match serde_json::from_str::<serde::de::IgnoredAny>(v) {
            Err(e) => invalid(format!("not JSON: {e}")),
            Ok(_) => invalid("not JSON: not one well-formed object".to_string()),
        },
    }
}

/// The reason for a value that is not a JSON object.
fn not_an_object(value: &[u8]) -> Outcome {
    let what = match serde_json::from_slice::<serde_json::Value>(value) {
        Err(e) if value.iter().all(u8::is_ascii_whitespace) => {
            format!("not JSON: empty value ({e})")
        }
        Err(e) => format!("not JSON: {e}"),
        Ok(serde_json::Value::Array(_)) => {
            "JSON array, expected an object (a tweet or a stream message)".into()
        }
        Ok(v) => format!(
            "JSON {}, expected an object (a tweet or a stream message)",
            json_type(&v)
        ),
    };
    invalid(what)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The reason for an object that is neither a tweet nor a control message: name its keys so
/// that whoever reads the log can tell what it was.
fn unknown_object(value: &str) -> String {
    const SHOWN: usize = 8;
    let keys: Vec<String> =
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value) {
            Ok(map) => map.keys().take(SHOWN + 1).cloned().collect(),
            Err(_) => Vec::new(),
        };
    let mut listed: Vec<&str> = keys.iter().take(SHOWN).map(String::as_str).collect();
    if keys.len() > SHOWN {
        listed.push("…");
    }
    format!(
        "neither a tweet (no `id_str`/`id`, `text`, `created_at`, `user` or v2 `data`) nor a known \
         stream message; keys: [{}]",
        listed.join(", ")
    )
}

// ---------------------------------------------------------------------------------------------
// Stage 2: extract text, entities and the rest
// ---------------------------------------------------------------------------------------------

/// Everything of an enriched tweet but its language and sentiment, which the enricher adds.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields<'a> {
    pub id: String,
    pub created_at: String,
    pub user: User,
    /// The text, HTML entities undone (see the module doc for which text is chosen).
    pub text: String,
    /// Twitter's own language label of the text, as sent (may be "und" or absent).
    pub twitter_lang: Option<Cow<'a, str>>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub urls: Vec<String>,
    pub is_retweet: bool,
    pub retweeted_id: Option<String>,
    pub is_quote: bool,
    pub in_reply_to_id: Option<String>,
    pub quoted_id: Option<String>,
    pub source_format: &'static str,
}

impl<'a> Parsed<'a> {
    /// Picks the tweet's fields. `Err` is the reason the tweet is unusable (no id, no text,
    /// missing or unparseable `created_at`, no author in v1.1).
    pub fn extract(self) -> Result<Fields<'a>, String> {
        match self.1 {
            Format::V1 => extract_v1(*self.0),
            Format::V2 => extract_v2(*self.0),
        }
    }
}

fn extract_v1(r: Record<'_>) -> Result<Fields<'_>, String> {
    let id =
        pick_id(r.id_str, r.id).ok_or("v1.1 tweet without an id (neither `id_str` nor `id`)")?;
    let created_at = match r.created_at {
        None => return Err(format!("tweet {id} without `created_at`")),
        Some(s) => v1_time_to_rfc3339(s.as_str())
            .ok_or_else(|| format!("tweet {id}: unparseable `created_at` {:?}", s.as_str()))?,
    };
    let user = match r.user {
        Some(u) => User {
            id: pick_id(u.id_str, u.id)
                .ok_or_else(|| format!("tweet {id} without `user.id_str`"))?,
            screen_name: u.screen_name.map(Str::into_string).unwrap_or_default(),
        },
        None => return Err(format!("tweet {id} without `user`")),
    };

    let top_quote = r.is_quote_status == Some(true) || r.quoted_status_id_str.is_some();
    let top_refs = (r.in_reply_to_status_id_str, r.quoted_status_id_str);
    let own = V1Text {
        text: r.text,
        full_text: r.full_text,
        extended: r.extended_tweet,
        entities: r.entities,
    };
    let (is_retweet, retweeted_id, body, lang, is_quote, refs) = match r.retweeted_status {
        Some(rt) => {
            let rt = *rt;
            let retweeted_id = pick_id(rt.id_str, rt.id);
            let orig = V1Text {
                text: rt.text,
                full_text: rt.full_text,
                extended: rt.extended_tweet,
                entities: rt.entities,
            };
            let quote = rt.is_quote_status == Some(true) || rt.quoted_status_id_str.is_some();
            let refs = (rt.in_reply_to_status_id_str, rt.quoted_status_id_str);
            // An original without any text would be a broken record; fall back to the
            // retweet's own (truncated) text rather than drop the tweet.
            match orig.into_text() {
                Some(body) => (
                    true,
                    retweeted_id,
                    Some(body),
                    rt.lang.or(r.lang),
                    quote,
                    refs,
                ),
                None => (
                    true,
                    retweeted_id,
                    own.into_text(),
                    r.lang,
                    top_quote,
                    top_refs,
                ),
            }
        }
        None => (false, None, own.into_text(), r.lang, top_quote, top_refs),
    };
    let nonempty = |s: Option<Str<'_>>| s.filter(|s| !s.0.is_empty()).map(Str::into_string);
    let (text, entities) = body.ok_or_else(|| {
        format!("tweet {id} without text (`text`, `full_text` or `extended_tweet.full_text`)")
    })?;
    let entities = entities.unwrap_or_default();
    Ok(Fields {
        id,
        created_at,
        user,
        text: unescape_html(text),
        twitter_lang: lang.map(|s| s.0),
        hashtags: collect(entities.hashtags, |h| h.text),
        mentions: collect(entities.user_mentions, |m| m.screen_name),
        urls: collect(entities.urls, url_of),
        is_retweet,
        retweeted_id,
        is_quote,
        in_reply_to_id: nonempty(refs.0),
        quoted_id: nonempty(refs.1),
        source_format: "v1.1",
    })
}

/// The text-bearing fields of one v1.1 status.
struct V1Text<'a> {
    text: Option<Str<'a>>,
    full_text: Option<Str<'a>>,
    extended: Option<V1Extended<'a>>,
    entities: Option<V1Entities<'a>>,
}

impl<'a> V1Text<'a> {
    /// The longest text and the entities that go with it.
    fn into_text(self) -> Option<(Cow<'a, str>, Option<V1Entities<'a>>)> {
        if let Some(ext) = self.extended {
            if let Some(full) = ext.full_text {
                // `extended_tweet.entities` index into `full_text`; the top-level ones into the
                // 140-character `text` and miss whatever was cut off.
                return Some((full.0, ext.entities.or(self.entities)));
            }
        }
        self.full_text.or(self.text).map(|t| (t.0, self.entities))
    }
}

fn extract_v2(r: Record<'_>) -> Result<Fields<'_>, String> {
    let Record { data, includes, .. } = r;
    let data = data.expect("classified as v2 because `data` is present");
    let id = data
        .id
        .map(Id::into_string)
        .filter(|s| !s.is_empty())
        .ok_or("v2 record without `data.id`")?;
    let created_at = match &data.created_at {
        None => {
            return Err(format!(
                "tweet {id} without `data.created_at` (request tweet.fields=created_at)"
            ))
        }
        Some(s) => iso_to_rfc3339(s.as_str())
            .ok_or_else(|| format!("tweet {id}: unparseable `data.created_at` {:?}", s.as_str()))?,
    };
    let (mut users, mut tweets) = match includes {
        Some(inc) => (inc.users, inc.tweets),
        None => (Vec::new(), Vec::new()),
    };
    // A missing `author_id` (not requested) leaves the author's id empty rather than losing
    // the tweet; a missing `includes.users` entry leaves the screen name empty.
    let author_id = data.author_id.map(Str::into_string).unwrap_or_default();
    let screen_name = users
        .iter_mut()
        .find(|u| matches!(&u.id, Some(Id::Str(s)) if *s == author_id))
        .and_then(|u| u.username.take())
        .map(Str::into_string)
        .unwrap_or_default();

    let retweeted_id = ref_id(data.referenced_tweets.as_deref(), "retweeted");
    let original = retweeted_id.as_deref().and_then(|rid| {
        let at = tweets
            .iter()
            .position(|t| matches!(&t.id, Some(Id::Str(s)) if *s == rid))?;
        Some(tweets.swap_remove(at))
    });
    let own = V2Body {
        text: data.text,
        note: data.note_tweet,
        entities: data.entities,
        lang: data.lang,
        refs: data.referenced_tweets,
    };
    let mut body = match original {
        Some(o) => V2Body {
            text: o.text,
            note: o.note_tweet,
            entities: o.entities,
            lang: o.lang,
            refs: o.referenced_tweets,
        }
        .or_else(own),
        None => own,
    };
    let quoted_id = ref_id(body.refs.as_deref(), "quoted");
    let in_reply_to_id = ref_id(body.refs.as_deref(), "replied_to");
    let (text, entities) = body
        .take_text()
        .ok_or_else(|| format!("tweet {id} without `data.text`"))?;
    let entities = entities.unwrap_or_default();
    Ok(Fields {
        id,
        created_at,
        user: User {
            id: author_id,
            screen_name,
        },
        text: unescape_html(text),
        twitter_lang: body.lang.map(|s| s.0),
        hashtags: collect(entities.hashtags, |h| h.tag),
        mentions: collect(entities.mentions, |m| m.username),
        urls: collect(entities.urls, url_of),
        is_retweet: retweeted_id.is_some(),
        retweeted_id,
        is_quote: quoted_id.is_some(),
        in_reply_to_id,
        quoted_id,
        source_format: "v2",
    })
}

/// The text-bearing fields of one v2 tweet.
struct V2Body<'a> {
    text: Option<Str<'a>>,
    note: Option<V2Note<'a>>,
    entities: Option<V2Entities<'a>>,
    lang: Option<Str<'a>>,
    refs: Option<Vec<V2Ref<'a>>>,
}

impl<'a> V2Body<'a> {
    /// This body if it has a text, else `other` (a retweeted original expanded without text).
    fn or_else(self, other: Self) -> Self {
        if self.text.is_some() || self.note.as_ref().is_some_and(|n| n.text.is_some()) {
            self
        } else {
            other
        }
    }

    /// Takes the text and its entities out (`lang` and `refs` stay for the caller).
    fn take_text(&mut self) -> Option<(Cow<'a, str>, Option<V2Entities<'a>>)> {
        if let Some(note) = self.note.take() {
            if let Some(text) = note.text {
                return Some((text.0, note.entities.or(self.entities.take())));
            }
        }
        self.text.take().map(|t| (t.0, self.entities.take()))
    }
}

fn ref_id(refs: Option<&[V2Ref<'_>]>, kind: &str) -> Option<String> {
    refs?
        .iter()
        .find(|r| r.kind.as_ref().is_some_and(|k| k.as_str() == kind))
        .and_then(|r| r.id.clone())
        .map(Id::into_string)
}

/// Non-empty strings of a list of entities.
fn collect<'a, T>(items: Vec<T>, field: impl Fn(T) -> Option<Str<'a>>) -> Vec<String> {
    items
        .into_iter()
        .filter_map(|item| {
            field(item)
                .filter(|s| !s.0.is_empty())
                .map(Str::into_string)
        })
        .collect()
}

/// `expanded_url` when present (the link as posted), else the t.co `url`.
fn url_of(u: Url<'_>) -> Option<Str<'_>> {
    match u.expanded_url {
        Some(e) if !e.0.is_empty() => Some(e),
        _ => u.url,
    }
}

/// Undoes Twitter's HTML escaping of tweet text (`&amp;`, `&lt;`, `&gt;`, nothing else: any
/// other `&…;` was typed by the user). Free when there is no `&`.
fn unescape_html(text: Cow<'_, str>) -> String {
    if !text.contains('&') {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest: &str = &text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (ch, len) = if tail.starts_with("&amp;") {
            ('&', 5)
        } else if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(ch);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------------

/// v1.1's `created_at` without its weekday, as chrono format items, read once.
static V1_LAYOUT: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| {
    StrftimeItems::new("%b %d %H:%M:%S %z %Y")
        .parse()
        .expect("a valid chrono format")
});

/// v1.1's `created_at`, "Wed Oct 10 20:19:24 +0000 2018", as RFC 3339 UTC. The weekday must be
/// a weekday name but is not checked against the date (chrono's `%a` would): it adds nothing
/// to the instant.
pub fn v1_time_to_rfc3339(s: &str) -> Option<String> {
    const DAYS: [&str; 7] = ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "];
    let (day, rest) = s.split_at_checked(4)?;
    if !DAYS.contains(&day) {
        return None;
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, rest, V1_LAYOUT.iter()).ok()?;
    rfc3339(parsed.to_datetime().ok()?.with_timezone(&Utc))
}

/// v2's `created_at` ("2022-10-10T20:19:24.000Z", any RFC 3339 offset) as RFC 3339 UTC.
pub fn iso_to_rfc3339(s: &str) -> Option<String> {
    rfc3339(DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc))
}

/// "2018-10-10T20:19:24Z"; a fraction of a second only when there is one (v2's always-zero
/// `.000` goes), in groups of three digits. None for an instant RFC 3339 cannot write: a year
/// outside 0000..=9999 in UTC (chrono reads signed and 5-digit years, and an offset can carry
/// 9999-12-31 into the next year).
fn rfc3339(t: DateTime<Utc>) -> Option<String> {
    (0..=9999)
        .contains(&t.year())
        .then(|| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_times() {
        assert_eq!(
            v1_time_to_rfc3339("Wed Oct 10 20:19:24 +0000 2018").unwrap(),
            "2018-10-10T20:19:24Z"
        );
        assert_eq!(
            v1_time_to_rfc3339("Wed Oct 10 20:19:24 +0200 2018").unwrap(),
            "2018-10-10T18:19:24Z"
        );
        assert_eq!(
            v1_time_to_rfc3339("Sun Dec 31 23:30:00 -0100 2017").unwrap(),
            "2018-01-01T00:30:00Z"
        );
        // The weekday is not checked against the date (2018-10-10 was a Wednesday).
        assert_eq!(
            v1_time_to_rfc3339("Mon Oct 10 20:19:24 +0000 2018").unwrap(),
            "2018-10-10T20:19:24Z"
        );
        for bad in [
            "",
            "Wed Oct 10 20:19:24 2018",
            "Wed Oct 32 20:19:24 +0000 2018",
            "Wed Feb 29 20:19:24 +0000 2019",
            "Xyz Oct 10 20:19:24 +0000 2018",
            "Wed Oct 10 24:19:24 +0000 2018",
            "Wed Okt 10 20:19:24 +0000 2018",
            "Wed Oct 10 20:19:24 +0000 20x8",
            "Wed Oct 10 20:19:24 +0000 2018 ",
            "Wed Oct 10 20:19:24 x0000 2018",
            "Wednesday Oct 10 20:19:24 +0000 2018",
            "Wed Oct 10 20:19:24 +0000 -2018",
            "Wed Oct 10 20:19:24 +0000 10000",
            "Fri Dec 31 23:00:00 -0500 9999",
            "wed Oct 10 20:19:24 +0000 2018",
            "2018-10-10T20:19:24Z",
        ] {
            assert_eq!(v1_time_to_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn v2_times() {
        assert_eq!(
            iso_to_rfc3339("2022-03-01T10:00:00.000Z").unwrap(),
            "2022-03-01T10:00:00Z"
        );
        assert_eq!(
            iso_to_rfc3339("2022-03-01T10:00:00.250Z").unwrap(),
            "2022-03-01T10:00:00.250Z"
        );
        assert_eq!(
            iso_to_rfc3339("2022-03-01T10:00:00+01:00").unwrap(),
            "2022-03-01T09:00:00Z"
        );
        assert_eq!(
            iso_to_rfc3339("0999-03-01T10:00:00Z").unwrap(),
            "0999-03-01T10:00:00Z"
        );
        assert_eq!(iso_to_rfc3339("yesterday"), None);
        // In UTC this is in the year 10000, which RFC 3339 cannot write.
        assert_eq!(iso_to_rfc3339("9999-12-31T23:00:00-05:00"), None);
    }

    #[test]
    fn html_unescape() {
        let u = |s: &str| unescape_html(Cow::Borrowed(s));
        assert_eq!(
            u("a &amp; b &lt;3 &gt;&lt; &amp;lt; &quot; & &"),
            "a & b <3 >< &lt; &quot; & &"
        );
        assert_eq!(u("plain"), "plain");
    }

    #[test]
    fn borrows_unescaped_strings() {
        let v = br#"{"id_str":"1","text":"caf\u00e9","lang":"en"}"#;
        let r: Record<'_> = serde_json::from_slice(v).unwrap();
        assert!(matches!(r.id_str.unwrap().0, Cow::Borrowed(_)));
        assert!(matches!(r.lang.unwrap().0, Cow::Borrowed(_)));
        assert_eq!(r.text.unwrap().0, "café");
    }
}
