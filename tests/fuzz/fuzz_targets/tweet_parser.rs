//! The consumer's tweet parser and enricher (`src/enrich/`), on any Kafka record value.
//!
//! Inputs are arbitrary bytes; `scripts/fuzz` seeds the corpus with real v1.1 tweets (the
//! sample data) and v2 records and passes `tests/fuzz/tweet_parser.dict` (the keys the parser
//! looks for), so libFuzzer's mutations stay mostly JSON-shaped and reach the extraction.
//!
//! Checks:
//! - no panic, in `tweet::parse`, `Parsed::extract` or `Enricher::enrich`;
//! - `enrich` agrees with `parse` + `extract` on whether the value is a tweet;
//! - a tweet serialises (as the consumer writes it) to JSON that serde_json reads back with
//!   the same strings: nothing lost, nothing turned into `null` (a NaN score would be);
//! - `created_at` is RFC 3339 (UTC, `Z`) and never empty; the id is never empty;
//! - sentiment scores are finite, `neg`/`neu`/`pos` in [0, 1] and `compound` in [-1, 1];
//! - a control message's `raw` is a JSON object.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tweetpipe::enrich::{tweet, Enricher, Outcome};

fn enricher() -> &'static Enricher {
    static E: OnceLock<Enricher> = OnceLock::new();
    E.get_or_init(Enricher::new)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let is_tweet = matches!(tweet::parse(data).map(|p| p.extract()), Ok(Ok(_)))
        || matches!(
            tweetpipe::enrich::bluesky::parse(data),
            tweetpipe::enrich::bluesky::Parsed::Post(_)
        );

    match enricher().enrich(data) {
        Outcome::Tweet(t) => {
            assert!(
                is_tweet,
                "enrich made a tweet of what parse/extract refused"
            );
            assert!(!t.id.is_empty(), "empty id");
            let at = chrono::DateTime::parse_from_rfc3339(&t.created_at)
                .unwrap_or_else(|e| panic!("created_at {:?} is not RFC 3339: {e}", t.created_at));
            assert_eq!(at.offset().local_minus_utc(), 0, "created_at not UTC");
            assert!(t.created_at.ends_with('Z'), "created_at {:?}", t.created_at);

            let s = &t.sentiment;
            for (name, x, lo) in [
                ("neg", s.neg, 0.0),
                ("neu", s.neu, 0.0),
                ("pos", s.pos, 0.0),
                ("compound", s.compound, -1.0),
            ] {
                assert!(
                    x.is_finite() && (lo..=1.0).contains(&x),
                    "sentiment {name} = {x} for {:?}",
                    t.text
                );
            }

            let line = serde_json::to_string(&t).expect("an enriched tweet serialises");
            assert!(!line.contains('\n'), "a JSON line with a raw newline");
            let back: Value = serde_json::from_str(&line).expect("its JSON parses back");
            assert_eq!(back["id"], t.id.as_str());
            assert_eq!(back["created_at"], t.created_at.as_str());
            assert_eq!(back["text"], t.text.as_str());
            assert_eq!(back["lang"], t.lang.as_str());
            assert_eq!(back["user"]["id"], t.user.id.as_str());
            assert_eq!(back["user"]["screen_name"], t.user.screen_name.as_str());
            assert_eq!(strings(&back["hashtags"]), t.hashtags);
            assert_eq!(strings(&back["mentions"]), t.mentions);
            assert_eq!(strings(&back["urls"]), t.urls);
            assert_eq!(back["is_retweet"], t.is_retweet);
            assert_eq!(back["is_quote"], t.is_quote);
            assert_eq!(back["retweeted_id"].as_str(), t.retweeted_id.as_deref());
            for k in ["neg", "neu", "pos", "compound"] {
                assert!(
                    back["sentiment"][k].is_f64(),
                    "sentiment.{k} = {}",
                    back["sentiment"][k]
                );
            }
        }
        Outcome::Control { kind, raw } => {
            assert!(!is_tweet, "a tweet classified as control {kind}");
            assert!(raw.is_object(), "control {kind} raw is not an object");
            serde_json::to_string(&raw).expect("a control message serialises");
        }
        Outcome::Invalid { reason } => {
            assert!(!is_tweet, "a tweet classified invalid: {reason}");
            assert!(!reason.is_empty());
        }
    }
});
