//! Enrichment of consumed tweets: text extraction, entities, language and sentiment.
//!
//! [`Enricher::enrich`] is the one call the consumer makes per Kafka record. It owns the
//! sequence of steps and the output record ([`EnrichedTweet`]); each step lives in its module:
//!
//! - [`tweet`]: parse the record (v1.1 or v2, tweets or stream control messages) and pick the
//!   tweet's text, entities, author, time and retweet/quote links;
//! - [`bluesky`]: the same for Jetstream events: a Bluesky post becomes the same record as a
//!   tweet (`source` tells them apart); deletes, identity and account events are control
//!   messages;
//! - [`lang`]: Twitter's language label, or a `whatlang` guess when Twitter said "und"
//!   ([`trigrams`] computes whatlang's answer for Latin script, faster);
//! - [`vader`]: sentiment scores (VADER, a pure-Rust port of vaderSentiment 3.3.2 that agrees
//!   with the Python reference), with its lexicons embedded from `src/enrich/vader/`.
//!
//! The steps are public so that `scripts/enrich_bench.rs` can time each on its own; the
//! consumer needs only [`Enricher`] and [`Outcome`]. What each step costs, and what
//! [`trigrams`] saves against whatlang alone, is in docs/performance.md.

pub mod bluesky;
pub mod lang;
pub mod trigrams;
pub mod tweet;
pub mod vader;

use serde::Serialize;

/// `source` of rows from Twitter.
pub const SOURCE_TWITTER: &str = "twitter";

/// What one Kafka record turned out to be.
#[derive(Debug)]
pub enum Outcome {
    /// A tweet, enriched.
    Tweet(Box<EnrichedTweet>),
    /// A stream control message: v1.1 `delete`, `scrub_geo`, `status_withheld`,
    /// `user_withheld`, `limit`, `warning`, `disconnect`, or a v2 error object (`{"errors":…}`
    /// without `data`), named by `kind` ("delete", …, "error"). `raw` is the whole message,
    /// parsed, for `deletes.jsonl`.
    Control {
        kind: &'static str,
        raw: serde_json::Value,
    },
    /// Not JSON, or JSON that is neither a tweet nor a known control message, or a tweet
    /// missing something it cannot do without (id, text, a valid `created_at`, v1.1 `user`).
    /// `reason` says which, for the log.
    Invalid { reason: String },
}

/// A tweet's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// v1.1 `user.id_str`; v2 `author_id` ("" if the stream did not send one).
    pub id: String,
    /// v1.1 `user.screen_name`; v2 the `username` of the `includes.users` entry for
    /// `author_id` ("" if the stream did not expand the author).
    pub screen_name: String,
}

/// One enriched tweet, a line of the consumer's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrichedTweet {
    /// The tweet's id (`id_str`, or `id` printed in decimal); a Bluesky post's `at://` URI.
    pub id: String,
    /// When it was posted, RFC 3339 in UTC: "2018-10-10T20:19:24Z" (a fraction of a second
    /// only when the source has a non-zero one). Never empty: a tweet without a valid time is
    /// [`Outcome::Invalid`].
    pub created_at: String,
    /// Who posted it (for a retweet: who retweeted).
    pub user: User,
    /// The full text, with Twitter's `&amp;`/`&lt;`/`&gt;` undone: v1.1
    /// `extended_tweet.full_text`, else `full_text`, else `text`; v2 `note_tweet.text`, else
    /// `text`. For a retweet, the *original's* full text (the retweet's own text is a truncated
    /// "RT @user: …"); v2 needs `expansions=referenced_tweets.id` for that, and falls back to
    /// the truncated text without it.
    pub text: String,
    /// Twitter's language label when set and not "und"; else the detected language; else
    /// "und". Twitter's codes ("en", "es", "pt", "ja", "in", "iw", …; see [`lang`]).
    pub lang: String,
    /// "twitter" (or "bluesky": the author's `langs`), "detected" or "none" (then `lang` is
    /// "und").
    pub lang_source: &'static str,
    /// VADER scores of `text`.
    pub sentiment: vader::Scores,
    /// Hashtags of `text` without '#', from the entities of the same object as the text.
    pub hashtags: Vec<String>,
    /// Screen names mentioned in `text`, without '@'. For a retweet these are the original's
    /// mentions: the retweeted author is in no entity of the text, only in `retweeted_id`'s
    /// tweet (and the v1.1 "RT @user" prefix, which is not kept).
    pub mentions: Vec<String>,
    /// Links in `text`: `expanded_url` when present, else the t.co `url`.
    pub urls: Vec<String>,
    /// A retweet (v1.1 `retweeted_status`; v2 a "retweeted" reference).
    pub is_retweet: bool,
    /// The original's id when a retweet.
    pub retweeted_id: Option<String>,
    /// The text's tweet quotes another (v1.1 `is_quote_status`; v2 a "quoted" reference).
    /// For a retweet this describes the original, whose text this is.
    pub is_quote: bool,
    /// The post this one replies to (v1.1 `in_reply_to_status_id_str`; v2 a "replied_to"
    /// reference; Bluesky `reply.parent.uri`). For a retweet, the original's.
    pub in_reply_to_id: Option<String>,
    /// The post this one quotes (v1.1 `quoted_status_id_str`; v2 a "quoted" reference;
    /// Bluesky the `at://` URI of an embedded post). For a retweet, the original's.
    pub quoted_id: Option<String>,
    /// The record's format: "v1.1", "v2" or "jetstream".
    pub source_format: &'static str,
    /// The network: "twitter" or "bluesky".
    pub source: &'static str,
}

impl EnrichedTweet {
    /// Assembles the output record from the extracted fields and the two computed ones.
    pub fn from_parts(
        f: tweet::Fields<'_>,
        lang: String,
        lang_source: &'static str,
        sentiment: vader::Scores,
    ) -> Self {
        EnrichedTweet {
            id: f.id,
            created_at: f.created_at,
            user: f.user,
            text: f.text,
            lang,
            lang_source,
            sentiment,
            hashtags: f.hashtags,
            mentions: f.mentions,
            urls: f.urls,
            is_retweet: f.is_retweet,
            retweeted_id: f.retweeted_id,
            is_quote: f.is_quote,
            in_reply_to_id: f.in_reply_to_id,
            quoted_id: f.quoted_id,
            source_format: f.source_format,
            source: SOURCE_TWITTER,
        }
    }
}

// The consumer may move or share an enricher across threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Enricher>();
    send_sync::<Outcome>();
};

/// Turns Kafka record values into [`Outcome`]s. Build one per consumer (or per thread: it is
/// `Send + Sync` and cheap to clone); the lexicons behind it are shared process-wide.
#[derive(Debug, Clone, Default)]
pub struct Enricher {
    sentiment: vader::SentimentAnalyzer,
    languages: lang::LangDetector,
}

impl Enricher {
    /// An enricher with every language whatlang knows. The first call in a process parses the
    /// VADER lexicons (a few ms).
    pub fn new() -> Self {
        Enricher {
            sentiment: vader::SentimentAnalyzer::new(),
            languages: lang::LangDetector::new(),
        }
    }

    /// Parses one Kafka record value and enriches it.
    pub fn enrich(&self, value: &[u8]) -> Outcome {
        if bluesky::looks_like_event(value) {
            return self.enrich_bluesky(value);
        }
        let parsed = match tweet::parse(value) {
            Ok(p) => p,
            // A Jetstream event whose keys came in another order than Jetstream writes them.
            Err(Outcome::Invalid { .. }) if bluesky::is_event(value) => {
                return self.enrich_bluesky(value)
            }
            Err(outcome) => return outcome,
        };
        let fields = match parsed.extract() {
            Ok(f) => f,
            Err(reason) => return Outcome::Invalid { reason },
        };
        let (lang, lang_source) = self
            .languages
            .resolve(fields.twitter_lang.as_deref(), &fields.text);
        let sentiment = self.sentiment.polarity_scores(&fields.text);
        Outcome::Tweet(Box::new(EnrichedTweet::from_parts(
            fields,
            lang,
            lang_source,
            sentiment,
        )))
    }

    fn enrich_bluesky(&self, value: &[u8]) -> Outcome {
        let post = match bluesky::parse(value) {
            bluesky::Parsed::Post(p) => p,
            bluesky::Parsed::Done(outcome) => return outcome,
        };
        let (lang, lang_source) = match &post.label {
            Some(label) => (label.clone(), bluesky::LANG_SOURCE),
            None => self.languages.resolve(None, &post.text),
        };
        let sentiment = self.sentiment.polarity_scores(&post.text);
        Outcome::Tweet(Box::new(post.into_enriched(lang, lang_source, sentiment)))
    }

    /// The language step alone (for benchmarks and callers that have their own text).
    pub fn languages(&self) -> &lang::LangDetector {
        &self.languages
    }

    /// The sentiment step alone.
    pub fn sentiment(&self) -> &vader::SentimentAnalyzer {
        &self.sentiment
    }
}
