//! Reading one Jetstream event from Kafka: a Bluesky post becomes the same output record as a
//! tweet ([`EnrichedTweet`], with `source` "bluesky"), so that the files and the database hold
//! both networks in one schema; deletes, identity and account events are control messages,
//! as the Twitter stream's are.
//!
//! ```text
//! {"did":"did:plc:…","time_us":…,"kind":"commit","commit":{"rev":…,"operation":"create",
//!  "collection":"app.bsky.feed.post","rkey":"3mptbyoeyc22k","record":{"$type":"app.bsky.feed.post",
//!  "createdAt":"2026-07-04T14:38:06.240Z","langs":["en"],"text":"…","facets":[…],
//!  "reply":{"parent":{"uri":…},"root":{…}},"embed":{…}},"cid":…}}
//! ```
//!
//! How the fields map (decisions, documented on [`EnrichedTweet`] too):
//! - **id**: the post's `at://` URI (`at://{did}/app.bsky.feed.post/{rkey}`), the one name of
//!   a post across the network; **user.id**: the author's DID (Jetstream carries no handle, so
//!   `screen_name` is empty).
//! - **created_at**: the record's `createdAt` (the author's client sets it) in the same RFC 3339
//!   UTC form as tweets; when it is missing or unreadable, the time Jetstream saw the event
//!   (`time_us`), so that a post is never lost over its clock.
//! - **text** as written (Bluesky does not HTML-escape); a post with only images has "".
//! - **lang**: the first of `langs` (the author's choice, like Twitter's label; `lang_source`
//!   "bluesky"), reduced to its primary subtag in Twitter's codes ("en-US" → "en", "he" →
//!   "iw", "id" → "in", "fil" → "tl", "nb"/"nn" → "no") so that one column means one thing;
//!   without `langs`, the same detector as for tweets.
//! - **hashtags, mentions, urls** from the text's facets: `#tag` facets' `tag`, the `@handle`
//!   a `#mention` facet covers in the text (its DID when the byte range does not hold one),
//!   `#link` facets' `uri`, then a link card's (`app.bsky.embed.external`) URI if the text has
//!   no link to it.
//! - **in_reply_to_id**: `reply.parent.uri`; **quoted_id** and **is_quote**: the post an
//!   `app.bsky.embed.record` (or `recordWithMedia`) embeds. Reposts are records of their own
//!   collection, never posts: `is_retweet` is false.
//!
//! Cost: one pass of serde_json over the event with borrowed strings, as for tweets (see
//! [`super::tweet`]); the record's other fields (embedded images, link cards' thumbnails) are
//! skipped without being built. Events that are not posts take a second, cheaper pass.

use std::borrow::Cow;

use chrono::DateTime;
use serde::de::IgnoredAny;

use super::tweet::{iso_to_rfc3339, Str};
use super::{EnrichedTweet, Outcome, User};

/// `source` of Bluesky rows.
pub const SOURCE: &str = "bluesky";
/// `lang_source` when the author's `langs` gave the language.
pub const LANG_SOURCE: &str = "bluesky";
/// `source_format` of Jetstream events.
pub const FORMAT: &str = "jetstream";
const POST: &str = "app.bsky.feed.post";

/// Whether `value` starts like a Jetstream event (`{"did":`, the first key Jetstream writes):
/// the cheap test the enricher makes before choosing a parser.
pub fn looks_like_event(value: &[u8]) -> bool {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    value[start..].starts_with(b"{\"did\":")
}

/// Whether `value` is a Jetstream event whatever its key order (a JSON object with `did`,
/// `time_us` and `kind`), for records the tweet parser did not recognise.
pub fn is_event(value: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        did: Option<IgnoredAny>,
        time_us: Option<IgnoredAny>,
        kind: Option<IgnoredAny>,
    }
    matches!(
        serde_json::from_slice::<Probe>(value),
        Ok(Probe {
            did: Some(_),
            time_us: Some(_),
            kind: Some(_)
        })
    )
}

/// What a Jetstream event is, before language and sentiment.
pub enum Parsed {
    /// A post to enrich: every field but language and sentiment, and the language label.
    Post(Box<PostFields>),
    /// The final outcome (control message or invalid).
    Done(Outcome),
}

/// A post's fields, without language and sentiment.
pub struct PostFields {
    pub id: String,
    pub created_at: String,
    pub did: String,
    pub text: String,
    /// The author's first `langs` entry, in Twitter's codes.
    pub label: Option<String>,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub urls: Vec<String>,
    pub in_reply_to_id: Option<String>,
    pub quoted_id: Option<String>,
}

impl PostFields {
    /// The output record, with the computed language and sentiment.
    pub fn into_enriched(
        self,
        lang: String,
        lang_source: &'static str,
        sentiment: super::vader::Scores,
    ) -> EnrichedTweet {
        EnrichedTweet {
            id: self.id,
            created_at: self.created_at,
            user: User {
                id: self.did,
                screen_name: String::new(),
            },
            text: self.text,
            lang,
            lang_source,
            sentiment,
            hashtags: self.hashtags,
            mentions: self.mentions,
            urls: self.urls,
            is_retweet: false,
            retweeted_id: None,
            is_quote: self.quoted_id.is_some(),
            in_reply_to_id: self.in_reply_to_id,
            quoted_id: self.quoted_id,
            source_format: FORMAT,
            source: SOURCE,
        }
    }
}

/// Parses one Jetstream event.
pub fn parse(value: &[u8]) -> Parsed {
    let text = match std::str::from_utf8(value) {
        Ok(t) => t,
        Err(e) => return invalid(format!("not JSON: not UTF-8 ({e})")),
    };
    // Posts (nearly every record with the default subscription) in one pass; anything else,
    // or a post record of a shape we do not expect, falls to the classifying pass.
    if let Ok(event) = serde_json::from_str::<Event<'_>>(text) {
        if let Some(parsed) = post(&event) {
            return parsed;
        }
    }
    classify(text)
}

fn invalid(reason: String) -> Parsed {
    Parsed::Done(Outcome::Invalid { reason })
}

/// A create or update of a post, read; `None` for anything else.
fn post(e: &Event<'_>) -> Option<Parsed> {
    let commit = e.commit.as_ref()?;
    if e.kind.as_ref()?.0 != "commit"
        || commit.collection.as_ref()?.0 != POST
        || !matches!(commit.operation.as_ref()?.0.as_ref(), "create" | "update")
    {
        return None;
    }
    let did = match &e.did {
        Some(d) if !d.0.is_empty() => d.0.as_ref(),
        _ => return Some(invalid("Bluesky post without `did`".into())),
    };
    let rkey = match &commit.rkey {
        Some(k) if !k.0.is_empty() => k.0.as_ref(),
        _ => {
            return Some(invalid(format!(
                "Bluesky post of {did} without `commit.rkey`"
            )))
        }
    };
    let id = format!("at://{did}/{POST}/{rkey}");
    let Some(record) = &commit.record else {
        return Some(invalid(format!(
            "Bluesky post {id} without `commit.record`"
        )));
    };
    let created_at = record
        .created_at
        .as_ref()
        .and_then(|t| iso_to_rfc3339(&t.0))
        .or_else(|| {
            let t = DateTime::from_timestamp_micros(e.time_us?)?;
            iso_to_rfc3339(&t.to_rfc3339())
        });
    let Some(created_at) = created_at else {
        return Some(invalid(format!(
            "Bluesky post {id} without a readable `createdAt` or `time_us`"
        )));
    };
    let text: &str = record.text.as_ref().map_or("", |t| &t.0);
    let (hashtags, mentions, mut urls) = facets(record, text);
    let quoted_id = embedded(record, &mut urls);
    let in_reply_to_id = record
        .reply
        .as_ref()
        .and_then(|r| r.parent.as_ref())
        .and_then(|p| p.uri.as_ref())
        .filter(|u| !u.0.is_empty())
        .map(|u| u.0.to_string());
    let label = record
        .langs
        .first()
        .and_then(|l| twitter_code(&l.0))
        .map(Cow::into_owned);
    Some(Parsed::Post(Box::new(PostFields {
        id,
        created_at,
        did: did.to_string(),
        text: text.to_string(),
        label,
        hashtags,
        mentions,
        urls,
        in_reply_to_id,
        quoted_id,
    })))
}

/// Hashtags, mentions and links from a post's facets (byte ranges of its text).
fn facets(record: &PostRecord<'_>, text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut hashtags, mut mentions, mut urls) = (Vec::new(), Vec::new(), Vec::new());
    for facet in &record.facets {
        for feature in &facet.features {
            let Some(kind) = &feature.kind else { continue };
            match kind.0.rsplit_once('#').map_or("", |(_, k)| k) {
                "tag" => push_nonempty(&mut hashtags, &feature.tag),
                "link" => push_nonempty(&mut urls, &feature.uri),
                "mention" => {
                    let handle = facet.index.as_ref().and_then(|i| mention_in(text, i));
                    match handle {
                        Some(h) => mentions.push(h.to_string()),
                        None => push_nonempty(&mut mentions, &feature.did),
                    }
                }
                _ => {}
            }
        }
    }
    (hashtags, mentions, urls)
}

/// The quoted post of an embed, if any; an external card's link joins `urls`.
fn embedded(record: &PostRecord<'_>, urls: &mut Vec<String>) -> Option<String> {
    let embed = record.embed.as_ref()?;
    if let Some(card) = embed.external.as_ref().and_then(|x| x.uri.as_ref()) {
        if !card.0.is_empty() && !urls.iter().any(|u| *u == card.0) {
            urls.push(card.0.to_string());
        }
    }
    // app.bsky.embed.record: record.uri; recordWithMedia: record.record.uri.
    let uri = embed.record.as_ref().and_then(|r| {
        r.uri
            .as_ref()
            .or_else(|| r.record.as_ref().and_then(|inner| inner.uri.as_ref()))
    });
    uri.filter(|u| u.0.contains("/app.bsky.feed.post/"))
        .map(|u| u.0.to_string())
}

fn push_nonempty(out: &mut Vec<String>, s: &Option<Str<'_>>) {
    if let Some(s) = s {
        if !s.0.is_empty() {
            out.push(s.0.to_string());
        }
    }
}

/// The handle a mention facet covers: "@alice.bsky.social" at those bytes of the text.
fn mention_in<'t>(text: &'t str, index: &Index) -> Option<&'t str> {
    let (start, end) = (index.byte_start? as usize, index.byte_end? as usize);
    let covered = text.get(start..end)?;
    covered.strip_prefix('@').filter(|h| !h.is_empty())
}

/// A BCP 47 language tag as Twitter codes languages (see the module doc); `None` for empty
/// and "und".
fn twitter_code(tag: &str) -> Option<Cow<'static, str>> {
    let primary = tag.split(['-', '_']).next().unwrap_or("").trim();
    if primary.is_empty() || primary.eq_ignore_ascii_case("und") {
        return None;
    }
    let primary = primary.to_ascii_lowercase();
    Some(match primary.as_str() {
        "he" => Cow::Borrowed("iw"),
        "id" => Cow::Borrowed("in"),
        "fil" => Cow::Borrowed("tl"),
        "nb" | "nn" => Cow::Borrowed("no"),
        _ => Cow::Owned(primary),
    })
}

/// Everything that is not a post create/update: control messages, or invalid.
fn classify(text: &str) -> Parsed {
    #[derive(serde::Deserialize)]
    struct Shape<'a> {
        #[serde(borrow)]
        kind: Option<Str<'a>>,
        #[serde(borrow)]
        commit: Option<CommitShape<'a>>,
        did: Option<IgnoredAny>,
        time_us: Option<IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct CommitShape<'a> {
        #[serde(borrow)]
        operation: Option<Str<'a>>,
        #[serde(borrow)]
        collection: Option<Str<'a>>,
    }
    let shape: Shape<'_> = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) => return invalid(format!("not a Jetstream event: {e}")),
    };
    if shape.did.is_none() || shape.time_us.is_none() {
        return invalid("not a Jetstream event: no `did` or `time_us`".into());
    }
    let kind: &'static str = match shape.kind.as_ref().map(|k| k.0.as_ref()) {
        Some("identity") => "identity",
        Some("account") => "account",
        Some("commit") => match &shape.commit {
            Some(c)
                if c.collection.as_ref().is_some_and(|x| x.0 == POST)
                    && c.operation.as_ref().is_some_and(|o| o.0 == "delete") =>
            {
                "delete"
            }
            Some(c) if c.collection.as_ref().is_some_and(|x| x.0 == POST) => {
                return invalid(
                    "Bluesky post commit of an unexpected shape (operation or record)".into(),
                )
            }
            Some(_) => "commit",
            None => return invalid("Jetstream commit event without `commit`".into()),
        },
        Some(_) => "other",
        None => return invalid("Jetstream event without `kind`".into()),
    };
    match serde_json::from_str(text) {
        Ok(raw) => Parsed::Done(Outcome::Control { kind, raw }),
        Err(e) => invalid(format!("not JSON: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire shapes (only the fields we use; serde skips every other key)
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    did: Option<Str<'a>>,
    time_us: Option<i64>,
    #[serde(borrow)]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    commit: Option<Commit<'a>>,
}

#[derive(serde::Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    operation: Option<Str<'a>>,
    #[serde(borrow)]
    collection: Option<Str<'a>>,
    #[serde(borrow)]
    rkey: Option<Str<'a>>,
    #[serde(borrow)]
    record: Option<PostRecord<'a>>,
}

#[derive(serde::Deserialize)]
struct PostRecord<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow, rename = "createdAt")]
    created_at: Option<Str<'a>>,
    #[serde(borrow, default)]
    langs: Vec<Str<'a>>,
    #[serde(borrow, default)]
    facets: Vec<Facet<'a>>,
    #[serde(borrow)]
    reply: Option<Reply<'a>>,
    #[serde(borrow)]
    embed: Option<Embed<'a>>,
}

#[derive(serde::Deserialize)]
struct Facet<'a> {
    index: Option<Index>,
    #[serde(borrow, default)]
    features: Vec<Feature<'a>>,
}

#[derive(serde::Deserialize)]
struct Index {
    #[serde(rename = "byteStart")]
    byte_start: Option<u64>,
    #[serde(rename = "byteEnd")]
    byte_end: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Feature<'a> {
    #[serde(borrow, rename = "$type")]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    tag: Option<Str<'a>>,
    #[serde(borrow)]
    uri: Option<Str<'a>>,
    #[serde(borrow)]
    did: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    parent: Option<Ref<'a>>,
}

#[derive(serde::Deserialize)]
struct Ref<'a> {
    #[serde(borrow)]
    uri: Option<Str<'a>>,
}

#[derive(serde::Deserialize)]
struct Embed<'a> {
    #[serde(borrow)]
    external: Option<Ref<'a>>,
    #[serde(borrow)]
    record: Option<EmbedRecord<'a>>,
}

/// `embed.record`: `{uri, cid}` for app.bsky.embed.record, `{record: {uri, cid}}` for
/// app.bsky.embed.recordWithMedia.
#[derive(serde::Deserialize)]
struct EmbedRecord<'a> {
    #[serde(borrow)]
    uri: Option<Str<'a>>,
    #[serde(borrow)]
    record: Option<Ref<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::Enricher;
    use serde_json::{json, Value};

    fn events() -> Vec<Vec<u8>> {
        let text = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/jetstream/events_v1.jsonl"),
        )
        .unwrap();
        text.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn enriched(value: &[u8]) -> EnrichedTweet {
        match Enricher::new().enrich(value) {
            Outcome::Tweet(t) => *t,
            other => panic!("expected a post, got {other:?}"),
        }
    }

    /// Every one of the 152 real events, checked against its own JSON.
    #[test]
    fn the_real_events() {
        let enricher = Enricher::new();
        let mut kinds = std::collections::BTreeMap::new();
        for value in events() {
            let j: Value = serde_json::from_slice(&value).unwrap();
            let outcome = enricher.enrich(&value);
            let key = match &outcome {
                Outcome::Tweet(_) => "post",
                Outcome::Control { kind, .. } => kind,
                Outcome::Invalid { reason } => panic!("{reason}: {j}"),
            };
            *kinds.entry(key).or_insert(0) += 1;
            let Outcome::Tweet(t) = outcome else {
                if let Outcome::Control { raw, .. } = outcome {
                    assert_eq!(raw, j, "control messages carry the whole event");
                }
                continue;
            };
            let r = &j["commit"]["record"];
            let did = j["did"].as_str().unwrap();
            assert_eq!(
                t.id,
                format!(
                    "at://{did}/app.bsky.feed.post/{}",
                    j["commit"]["rkey"].as_str().unwrap()
                )
            );
            assert_eq!(t.user.id, did);
            assert_eq!(t.text, r["text"].as_str().unwrap());
            assert_eq!((t.source, t.source_format), ("bluesky", "jetstream"));
            // createdAt in the tweets' form: whole seconds plain, a fraction kept.
            let created = r["createdAt"].as_str().unwrap();
            assert_eq!(&t.created_at[..19], &created[..19]);
            assert!(t.created_at.ends_with('Z'));
            match r["langs"].as_array().and_then(|l| l.first()) {
                Some(l) => {
                    let primary = l.as_str().unwrap().split('-').next().unwrap();
                    assert_eq!((t.lang.as_str(), t.lang_source), (primary, "bluesky"));
                }
                None => assert_ne!(t.lang_source, "bluesky"),
            }
            let facet_values = |kind: &str, field: &str| -> Vec<String> {
                r["facets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|f| f["features"].as_array().unwrap())
                    .filter(|f| f["$type"] == kind)
                    .map(|f| f[field].as_str().unwrap().to_string())
                    .collect()
            };
            assert_eq!(
                t.hashtags,
                facet_values("app.bsky.richtext.facet#tag", "tag")
            );
            let links = facet_values("app.bsky.richtext.facet#link", "uri");
            assert_eq!(t.urls[..links.len()], links[..]);
            if let Some(card) = r["embed"]["external"]["uri"].as_str() {
                assert!(t.urls.iter().any(|u| u == card));
            }
            assert_eq!(
                t.in_reply_to_id.as_deref(),
                r["reply"]["parent"]["uri"].as_str()
            );
            assert_eq!(
                (t.is_retweet, t.is_quote, t.quoted_id.as_deref()),
                (false, false, None)
            );
            assert!(t.sentiment.compound.abs() <= 1.0);
        }
        let want: std::collections::BTreeMap<&str, i32> = [
            ("post", 17),
            ("delete", 1),
            ("identity", 1),
            ("account", 1),
            ("commit", 132),
        ]
        .into_iter()
        .collect();
        assert_eq!(kinds, want);
    }

    fn post(record: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "did": "did:plc:author", "time_us": 1_783_175_888_090_631i64, "kind": "commit",
            "commit": {"rev": "3mptbypcq372f", "operation": "create",
                       "collection": "app.bsky.feed.post", "rkey": "3mptbyoeyc22k",
                       "record": record, "cid": "bafy"}
        }))
        .unwrap()
    }

    #[test]
    fn mentions_quotes_and_languages() {
        let text = "héllo @alice.bsky.social and @bob.example.com #Rust https://x.org";
        let at = |s: &str| text.find(s).unwrap();
        let t = enriched(&post(json!({
            "$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-07-04T14:38:06Z",
            "langs": ["pt-BR", "en"],
            "facets": [
                {"index": {"byteStart": at("@alice"), "byteEnd": at(" and")},
                 "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"}]},
                // A range that does not cover an @handle: the DID.
                {"index": {"byteStart": 0, "byteEnd": 2},
                 "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bob"}]},
                {"index": {"byteStart": at("#Rust"), "byteEnd": at(" https")},
                 "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Rust"}]},
                {"index": {"byteStart": at("https"), "byteEnd": text.len()},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.org/"}]}
            ],
            "embed": {"$type": "app.bsky.embed.recordWithMedia",
                      "record": {"$type": "app.bsky.embed.record",
                                 "record": {"uri": "at://did:plc:q/app.bsky.feed.post/3abc", "cid": "bafy"}},
                      "media": {"$type": "app.bsky.embed.images", "images": []}}
        })));
        assert_eq!(t.mentions, vec!["alice.bsky.social", "did:plc:bob"]);
        assert_eq!(t.hashtags, vec!["Rust"]);
        assert_eq!(t.urls, vec!["https://x.org/"]);
        assert_eq!((t.lang.as_str(), t.lang_source), ("pt", "bluesky"));
        assert!(t.is_quote);
        assert_eq!(
            t.quoted_id.as_deref(),
            Some("at://did:plc:q/app.bsky.feed.post/3abc")
        );
        assert_eq!(t.created_at, "2026-07-04T14:38:06Z");
        // A plain record embed; a list embedded is not a quote.
        let t = enriched(&post(
            json!({"text": "q", "createdAt": "2026-07-04T14:38:06.5Z",
            "embed": {"$type": "app.bsky.embed.record", "record": {"uri": "at://did:plc:q/app.bsky.feed.post/3x"}}}),
        ));
        assert_eq!(
            t.quoted_id.as_deref(),
            Some("at://did:plc:q/app.bsky.feed.post/3x")
        );
        assert_eq!(t.created_at, "2026-07-04T14:38:06.500Z");
        let t = enriched(&post(
            json!({"text": "l", "createdAt": "2026-07-04T14:38:06Z",
            "embed": {"$type": "app.bsky.embed.record", "record": {"uri": "at://did:plc:q/app.bsky.graph.list/3x"}}}),
        ));
        assert!(!t.is_quote);
        for (tag, code) in [
            ("he", "iw"),
            ("id", "in"),
            ("fil", "tl"),
            ("nb", "no"),
            ("EN-gb", "en"),
            ("zh-Hant", "zh"),
        ] {
            let t = enriched(&post(
                json!({"text": "x", "createdAt": "2026-07-04T14:38:06Z", "langs": [tag]}),
            ));
            assert_eq!(t.lang, code, "{tag}");
        }
        // "und" or nothing: detected, as for tweets.
        let t = enriched(&post(
            json!({"text": "Das ist ein ziemlich langer deutscher Satz über das Wetter heute.",
            "createdAt": "2026-07-04T14:38:06Z", "langs": ["und"]}),
        ));
        assert_eq!((t.lang.as_str(), t.lang_source), ("de", "detected"));
    }

    #[test]
    fn times_texts_and_shapes() {
        // No createdAt, or a bad one: when Jetstream saw it.
        for record in [
            json!({"text": "x"}),
            json!({"text": "x", "createdAt": "yesterday"}),
        ] {
            let t = enriched(&post(record));
            assert_eq!(t.created_at, "2026-07-04T14:38:08.090631Z");
        }
        // Escapes and an image-only post.
        let t = enriched(&post(
            json!({"text": "a \"quote\" \\ and\nnewline é", "createdAt": "2026-07-04T14:38:06Z"}),
        ));
        assert_eq!(t.text, "a \"quote\" \\ and\nnewline é");
        let t = enriched(&post(
            json!({"createdAt": "2026-07-04T14:38:06Z", "embed": {"$type": "app.bsky.embed.images", "images": []}}),
        ));
        assert_eq!((t.text.as_str(), t.lang.as_str()), ("", "und"));
        // Key order does not matter.
        let v = br#"{"kind":"commit","time_us":5,"commit":{"collection":"app.bsky.feed.post","operation":"create","rkey":"k","record":{"text":"hi","createdAt":"2026-07-04T14:38:06Z"}},"did":"did:plc:z"}"#;
        assert!(!looks_like_event(v) && is_event(v));
        assert_eq!(enriched(v).id, "at://did:plc:z/app.bsky.feed.post/k");
    }

    #[test]
    fn controls_and_invalid_events() {
        let e = Enricher::new();
        let delete = br#"{"did":"did:plc:a","time_us":5,"kind":"commit","commit":{"rev":"r","operation":"delete","collection":"app.bsky.feed.post","rkey":"k"}}"#;
        assert!(matches!(
            e.enrich(delete),
            Outcome::Control { kind: "delete", .. }
        ));
        let future = br#"{"did":"did:plc:a","time_us":5,"kind":"sync","sync":{}}"#;
        assert!(matches!(
            e.enrich(future),
            Outcome::Control { kind: "other", .. }
        ));
        for (value, reason) in [
            (&br#"{"did":"did:plc:a","time_us":5,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k"}}"#[..], "without `commit.record`"),
            (br#"{"did":"did:plc:a","time_us":5,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"k","record":{"text":5}}}"#, "unexpected shape"),
            (br#"{"did":"did:plc:a","time_us":5,"kind":"commit"}"#, "without `commit`"),
            (br#"{"did":"did:plc:a"}"#, "not a Jetstream event"),
            (br#"{"time_us":5,"did":"did:plc:a"}"#, "neither a tweet"),
        ] {
            match e.enrich(value) {
                Outcome::Invalid { reason: r } => assert!(r.contains(reason), "{r}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
