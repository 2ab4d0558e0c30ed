//! Holds `enrich::Enricher` to what the consumer relies on: which text, entities, author and
//! time it picks from v1.1 and v2 records, how it tells tweets from stream control messages and
//! from garbage, and what language it reports.
//!
//! The v1.1 tweets are real-shaped lines of the bundled sample (`tests/data/sample/tweets.jsonl.gz`,
//! made by scripts/gen_tweets.py: compact JSON, `\uXXXX` and `\/` escapes, ~40-field users,
//! `extended_tweet`, retweets and quotes with the original embedded), picked by id. Besides the
//! hand-checked cases, every line of the sample is checked against an independent reading of
//! the same JSON through `serde_json::Value`.

use std::io::Read;
use std::sync::OnceLock;

use serde_json::{json, Value};
use tweetpipe::enrich::vader::SentimentAnalyzer;
use tweetpipe::enrich::{EnrichedTweet, Enricher, Outcome, User};

/// The sample's lines, unzipped once.
fn sample() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sample/tweets.jsonl.gz"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).expect("the bundled sample"))
            .read_to_string(&mut text)
            .expect("gzip");
        text.lines().map(str::to_owned).collect()
    })
}

/// The sample's line for the tweet with this id (its own `id_str`, which comes right after
/// `created_at` and `id`, not that of a retweeted or quoted original further on).
fn line(id: &str) -> &'static str {
    let id_field = format!(",\"id_str\":\"{id}\",");
    sample()
        .iter()
        .find(|l| l.get(..120).is_some_and(|head| head.contains(&id_field)))
        .unwrap_or_else(|| panic!("tweet {id} is in the sample"))
}

fn enrich(value: &str) -> Outcome {
    Enricher::new().enrich(value.as_bytes())
}

fn tweet(value: &str) -> EnrichedTweet {
    match enrich(value) {
        Outcome::Tweet(t) => *t,
        other => panic!("expected a tweet, got {other:?}"),
    }
}

fn invalid_reason(value: &str) -> String {
    match enrich(value) {
        Outcome::Invalid { reason } => reason,
        other => panic!("expected Invalid for {value:.80?}, got {other:?}"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Replaces the first `"text":"…"` of a raw v1.1 line (the tweet's own text) and its `lang`,
/// leaving every other byte as the API sent it.
fn with_text_and_lang(line: &str, raw_json_text: &str, lang: &str) -> String {
    let start = line.find("\"text\":\"").expect("text") + "\"text\":\"".len();
    let end = start
        + line[start..]
            .find("\",\"source\":")
            .expect("text is followed by source");
    let mut out = format!("{}{}{}", &line[..start], raw_json_text, &line[end..]);
    let lang_at = out.rfind("\"lang\":\"").expect("lang") + "\"lang\":\"".len();
    let lang_end = lang_at + out[lang_at..].find('"').unwrap();
    out.replace_range(lang_at..lang_end, lang);
    out
}

// ---------------------------------------------------------------------------------------------
// v1.1 tweets
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_plain_tweet() {
    let t = tweet(line("1300000004462541860"));
    assert_eq!(t.id, "1300000004462541860");
    assert_eq!(t.created_at, "2020-08-30T09:18:48Z");
    assert_eq!(
        t.user,
        User {
            id: "3095890831".into(),
            screen_name: "MattDubois".into()
        }
    );
    // `\/` unescaped; the text is the tweet's whole text.
    assert_eq!(
        t.text,
        "@anonymous Nice work! I'm watching An Idiot Abroad (13 others checked-in) http://url_removed \
         @anonymous #AnIdiotAbroad"
    );
    assert_eq!(t.hashtags, strings(&["AnIdiotAbroad"]));
    // One per occurrence, in order, as in the entities.
    assert_eq!(t.mentions, strings(&["anonymous", "anonymous"]));
    assert_eq!(t.urls, strings(&["http://url_removed"]));
    assert_eq!((t.lang.as_str(), t.lang_source), ("en", "twitter"));
    assert!(!t.is_retweet && !t.is_quote);
    assert_eq!(t.retweeted_id, None);
    assert_eq!(t.source_format, "v1.1");
    assert_eq!(
        t.sentiment,
        SentimentAnalyzer::new().polarity_scores(&t.text)
    );
}

#[test]
fn v1_extended_tweet_uses_full_text_and_its_entities() {
    let raw = line("1300000000038082866");
    assert!(raw.contains("\"truncated\":true"));
    let t = tweet(raw);
    assert_eq!(
        t.text,
        "@anonymous and as its uni's fault Student Union are dealing with for me so I can concentrate \
         on getting my other stuff done. #love #gameday https://t.co/oTQHP8Qv96"
    );
    // The hashtags were cut off the 140-character `text`: only `extended_tweet.entities` has them.
    assert_eq!(t.hashtags, strings(&["love", "gameday"]));
    assert_eq!(t.mentions, strings(&["anonymous"]));
    // Not the top-level entities' "twitter.com/i/web/status/…" link of the truncated text; the
    // photo is a media entity, not a URL.
    assert_eq!(t.urls, Vec::<String>::new());
    assert_eq!(t.user.screen_name, "happyMiss7398");
}

#[test]
fn v1_retweet_takes_the_originals_full_text() {
    let raw = line("1300000033812593062");
    assert!(raw.contains("\"text\":\"RT @michael_wright5: Who the fuck steals laxatives?"));
    let t = tweet(raw);
    assert!(t.is_retweet);
    assert_eq!(t.retweeted_id.as_deref(), Some("1299733099213496913"));
    assert_eq!(
        t.text,
        "Who the fuck steals laxatives? How badly do you need to shit? I don't understand how under an \
         hour or so ago, I was tired by now I'm not. Also pubs need to stop playing Michael Jackson \
         while I'm in them"
    );
    // The retweeter, and the retweet's own time; the original's entities (it has none).
    assert_eq!(
        t.user,
        User {
            id: "1780101877".into(),
            screen_name: "MeganWright".into()
        }
    );
    assert_eq!(t.created_at, "2020-08-30T09:18:55Z");
    assert!(t.mentions.is_empty() && t.urls.is_empty() && t.hashtags.is_empty());
    assert!(!t.is_quote);
    assert!(t.sentiment.compound < 0.0, "{:?}", t.sentiment);
}

#[test]
fn v1_quote_tweet() {
    let t = tweet(line("1300000000000000000"));
    assert!(t.is_quote);
    assert!(!t.is_retweet);
    // The quoting tweet's own text, not the quoted one's.
    assert_eq!(
        t.text,
        "@anonymous Thanks! SO easy to make. https://t.co/5Utnr8Ijx8"
    );
    assert_eq!(
        t.urls,
        strings(&["https://twitter.com/itsLil2731/status/1299959853068817886"])
    );
    assert_eq!(t.mentions, strings(&["anonymous"]));
    assert_eq!(t.created_at, "2020-08-30T09:18:47Z");
}

#[test]
fn v1_undetermined_language_is_detected() {
    // A realistic tweet whose text is clearly Spanish (escaped as the API does) and that
    // Twitter labelled "und".
    let raw = with_text_and_lang(
        line("1300000004462541860"),
        r"\u00bfAlguien sabe a qu\u00e9 hora empieza el partido de hoy? No me lo quiero perder @anonymous #futbol https:\/\/t.co\/abcdefghij",
        "und",
    );
    assert!(raw.contains("\"lang\":\"und\""));
    let t = tweet(&raw);
    assert!(t.text.starts_with("¿Alguien sabe a qué hora"));
    assert_eq!((t.lang.as_str(), t.lang_source), ("es", "detected"));

    // Nothing to detect once links, mentions and hashtags are gone: stays "und".
    let raw = with_text_and_lang(
        line("1300000004462541860"),
        r"@anonymous #AnIdiotAbroad https:\/\/t.co\/abcdefghij",
        "und",
    );
    let t = tweet(&raw);
    assert_eq!((t.lang.as_str(), t.lang_source), ("und", "none"));

    // Twitter's label wins over the text.
    let raw = with_text_and_lang(
        line("1300000004462541860"),
        "plain English words, nothing more to see here",
        "fr",
    );
    let t = tweet(&raw);
    assert_eq!((t.lang.as_str(), t.lang_source), ("fr", "twitter"));
}

#[test]
fn html_escapes_in_text_are_undone() {
    let raw = with_text_and_lang(
        line("1300000004462541860"),
        "Ben &amp; Jerry's &lt;3 &gt;&lt; &amp;lt; &quot;",
        "en",
    );
    assert_eq!(tweet(&raw).text, "Ben & Jerry's <3 >< &lt; &quot;");
}

#[test]
fn created_at_becomes_rfc3339_utc() {
    let base = line("1300000004462541860");
    let with_time = |t: &str| base.replacen("Sun Aug 30 09:18:48 +0000 2020", t, 1);
    assert_eq!(
        tweet(&with_time("Wed Oct 10 20:19:24 +0000 2018")).created_at,
        "2018-10-10T20:19:24Z"
    );
    // An offset other than +0000 is applied.
    assert_eq!(
        tweet(&with_time("Mon Dec 31 23:30:00 -0130 2018")).created_at,
        "2019-01-01T01:00:00Z"
    );

    for bad in [
        "Sun Aug 32 09:18:48 +0000 2020",
        "yesterday",
        "2020-08-30T09:18:48Z",
        "",
    ] {
        let reason = invalid_reason(&with_time(bad));
        assert!(
            reason.contains("created_at") && reason.contains("1300000004462541860"),
            "{reason}"
        );
    }
    let without = base.replacen("\"created_at\":\"Sun Aug 30 09:18:48 +0000 2020\",", "", 1);
    assert!(invalid_reason(&without).contains("without `created_at`"));
}

#[test]
fn v1_tweet_without_id_is_invalid() {
    let base = line("1300000004462541860");
    let no_id = base.replacen(
        "\"id\":1300000004462541860,\"id_str\":\"1300000004462541860\",",
        "",
        1,
    );
    assert_ne!(no_id, base);
    let reason = invalid_reason(&no_id);
    assert!(
        reason.contains("without an id") && reason.contains("id_str"),
        "{reason}"
    );

    // The numeric `id` alone is enough.
    let only_num = base.replacen(",\"id_str\":\"1300000004462541860\"", "", 1);
    assert_eq!(tweet(&only_num).id, "1300000004462541860");
}

/// Every record of the sample: 5,000 tweets and 51 deletes, nothing invalid, and each tweet's
/// fields as an independent reading of its JSON says.
#[test]
fn whole_sample_agrees_with_a_value_reading() {
    let enricher = Enricher::new();
    let (mut tweets, mut deletes, mut detected) = (0, 0, 0);
    for raw in sample() {
        let v: Value = serde_json::from_str(raw).unwrap();
        match enricher.enrich(raw.as_bytes()) {
            Outcome::Control { kind, raw: parsed } => {
                assert_eq!(kind, "delete");
                assert_eq!(parsed, v);
                deletes += 1;
            }
            Outcome::Invalid { reason } => panic!("{reason}: {raw:.200}"),
            Outcome::Tweet(t) => {
                tweets += 1;
                check_against_value(&t, &v);
                detected += (t.lang_source == "detected") as usize;
            }
        }
    }
    assert_eq!((tweets, deletes), (5000, 51));
    assert!(
        detected > 0,
        "some of the sample's \"und\" tweets are detected"
    );
}

fn check_against_value(t: &EnrichedTweet, v: &Value) {
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    assert_eq!(t.id, s(&v["id_str"]));
    let when = chrono::DateTime::parse_from_str(
        v["created_at"].as_str().unwrap(),
        "%a %b %d %H:%M:%S %z %Y",
    )
    .unwrap();
    assert_eq!(
        t.created_at,
        when.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    );
    assert_eq!(t.user.id, s(&v["user"]["id_str"]));
    assert_eq!(t.user.screen_name, s(&v["user"]["screen_name"]));

    let rt = v.get("retweeted_status");
    assert_eq!(t.is_retweet, rt.is_some());
    assert_eq!(t.retweeted_id, rt.map(|r| s(&r["id_str"])));
    let src = rt.unwrap_or(v);
    let (text, entities) = match src.get("extended_tweet") {
        Some(ext) => (s(&ext["full_text"]), &ext["entities"]),
        None => (s(&src["text"]), &src["entities"]),
    };
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert_eq!(t.text, text);
    let list = |key: &str, field: &str| -> Vec<String> {
        entities[key]
            .as_array()
            .map_or(vec![], |a| a.iter().map(|e| s(&e[field])).collect())
    };
    assert_eq!(t.hashtags, list("hashtags", "text"));
    assert_eq!(t.mentions, list("user_mentions", "screen_name"));
    assert_eq!(t.urls, list("urls", "expanded_url"));
    assert_eq!(t.is_quote, src["is_quote_status"].as_bool().unwrap());
    // Reply and quote references, of the tweet whose text this is.
    assert_eq!(
        t.in_reply_to_id.as_deref(),
        src["in_reply_to_status_id_str"].as_str()
    );
    assert_eq!(t.quoted_id.as_deref(), src["quoted_status_id_str"].as_str());
    assert_eq!(t.source, "twitter");

    let lang = s(&src["lang"]);
    if lang == "und" {
        assert!(
            matches!(t.lang_source, "detected" | "none"),
            "{}",
            t.lang_source
        );
        assert_eq!(t.lang == "und", t.lang_source == "none");
    } else {
        assert_eq!((t.lang.as_str(), t.lang_source), (lang.as_str(), "twitter"));
    }
    assert_eq!(t.source_format, "v1.1");
}

// ---------------------------------------------------------------------------------------------
// v2 records
// ---------------------------------------------------------------------------------------------

/// A filtered-stream record with `expansions=author_id,referenced_tweets.id`: a retweet, whose
/// own text is truncated, and the original in `includes.tweets`.
const V2_RETWEET: &str = r#"{"data":{"author_id":"2244994945","created_at":"2022-10-10T20:19:24.000Z","edit_history_tweet_ids":["1579578843345293312"],"entities":{"mentions":[{"start":3,"end":15,"username":"TwitterDev","id":"2244994945"}]},"id":"1579578843345293312","lang":"en","referenced_tweets":[{"type":"retweeted","id":"1579200031125753857"}],"text":"RT @TwitterDev: Bonjour, the filtered stream now returns \u00e9dited tweets &amp; more\u2026 so many #APIv2 changes, see https:\/\/t.co\/abc123 for the whole list of what\u2026"},"includes":{"users":[{"id":"9999","name":"Someone else","username":"someone"},{"id":"2244994945","name":"Twitter Dev","username":"TwitterDevFan"}],"tweets":[{"author_id":"783214","created_at":"2022-10-09T19:14:08.000Z","entities":{"hashtags":[{"start":82,"end":88,"tag":"APIv2"}],"urls":[{"start":107,"end":130,"url":"https://t.co/abc123","expanded_url":"https://developer.twitter.com/en/docs/twitter-api","display_url":"developer.twitter.com/en/docs/twitte\u2026"}],"mentions":[{"start":137,"end":145,"username":"suhemparack","id":"857699969263964161"}]},"id":"1579200031125753857","lang":"en","referenced_tweets":[{"type":"quoted","id":"1578000000000000000"}],"text":"Bonjour, the filtered stream now returns \u00e9dited tweets &amp; more\u2026 so many #APIv2 changes, see https:\/\/t.co\/abc123 for the whole list of what we shipped @suhemparack"}]},"matching_rules":[{"id":"1579578500000000000","tag":"dev"}]}"#;

#[test]
fn v2_retweet_with_includes() {
    let t = tweet(V2_RETWEET);
    assert_eq!(t.source_format, "v2");
    assert_eq!(t.id, "1579578843345293312");
    assert_eq!(t.created_at, "2022-10-10T20:19:24Z");
    // The author of the record (author_id), named from includes.users.
    assert_eq!(
        t.user,
        User {
            id: "2244994945".into(),
            screen_name: "TwitterDevFan".into()
        }
    );
    assert!(t.is_retweet);
    assert_eq!(t.retweeted_id.as_deref(), Some("1579200031125753857"));
    assert_eq!(
        t.text,
        "Bonjour, the filtered stream now returns édited tweets & more… so many #APIv2 changes, see \
         https://t.co/abc123 for the whole list of what we shipped @suhemparack"
    );
    assert_eq!(t.hashtags, strings(&["APIv2"]));
    assert_eq!(t.mentions, strings(&["suhemparack"]));
    assert_eq!(
        t.urls,
        strings(&["https://developer.twitter.com/en/docs/twitter-api"])
    );
    // The original quotes another tweet.
    assert!(t.is_quote);
    assert_eq!(t.quoted_id.as_deref(), Some("1578000000000000000"));
    assert_eq!(t.in_reply_to_id, None);
    assert_eq!((t.lang.as_str(), t.lang_source), ("en", "twitter"));
    // A reply: the "replied_to" reference.
    let mut v: Value = serde_json::from_str(V2_RETWEET).unwrap();
    v["data"]["referenced_tweets"] = json!([{"type": "replied_to", "id": "1579000000000000001"}]);
    let t = tweet(&v.to_string());
    assert_eq!(t.in_reply_to_id.as_deref(), Some("1579000000000000001"));
    assert_eq!((t.is_quote, t.quoted_id.as_deref()), (false, None));
}

#[test]
fn v2_without_expansions() {
    // No includes at all: the record's own (truncated) text and entities, no screen name.
    let mut v: Value = serde_json::from_str(V2_RETWEET).unwrap();
    v.as_object_mut().unwrap().remove("includes");
    let t = tweet(&v.to_string());
    assert_eq!(
        t.user,
        User {
            id: "2244994945".into(),
            screen_name: String::new()
        }
    );
    assert!(t.text.starts_with("RT @TwitterDev: Bonjour"));
    assert_eq!(t.mentions, strings(&["TwitterDev"]));
    assert!(t.is_retweet && !t.is_quote);

    // A plain v2 tweet with a long `note_tweet`, no lang: the note's text, detected language.
    let plain = json!({
        "data": {
            "id": "1600000000000000001",
            "author_id": "42",
            "created_at": "2023-01-02T03:04:05.000Z",
            "text": "Hoy es un gran día para todos nosotros…",
            "note_tweet": {
                "text": "¿Alguien sabe a qué hora empieza el partido de hoy? No me lo quiero perder #futbol",
                "entities": {"hashtags": [{"start": 75, "end": 82, "tag": "futbol"}]}
            },
            "entities": {"hashtags": []},
            "edit_history_tweet_ids": ["1600000000000000001"]
        },
        "includes": {"users": [{"id": "42", "username": "fan42", "name": "Fan"}]},
        "matching_rules": [{"id": "1", "tag": "sports"}]
    });
    let t = tweet(&plain.to_string());
    assert_eq!(
        t.text,
        "¿Alguien sabe a qué hora empieza el partido de hoy? No me lo quiero perder #futbol"
    );
    assert_eq!(t.hashtags, strings(&["futbol"]));
    assert_eq!(t.user.screen_name, "fan42");
    assert_eq!((t.lang.as_str(), t.lang_source), ("es", "detected"));
    assert!(!t.is_retweet && !t.is_quote && t.retweeted_id.is_none());
    assert_eq!(t.created_at, "2023-01-02T03:04:05Z");
}

#[test]
fn v2_invalid_records() {
    let reason =
        invalid_reason(r#"{"data":{"text":"hi","created_at":"2022-10-10T20:19:24.000Z"}}"#);
    assert!(reason.contains("data.id"), "{reason}");
    let reason = invalid_reason(r#"{"data":{"id":"1","text":"hi"}}"#);
    assert!(reason.contains("created_at"), "{reason}");
    let reason = invalid_reason(r#"{"data":{"id":"1","text":"hi","created_at":"10/10/2022"}}"#);
    assert!(reason.contains("created_at"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// Control messages and garbage
// ---------------------------------------------------------------------------------------------

#[test]
fn control_messages() {
    let delete = sample()
        .iter()
        .find(|l| l.starts_with("{\"delete\":"))
        .unwrap();
    let cases: [(&str, &str); 8] = [
        ("delete", delete),
        (
            "scrub_geo",
            r#"{"scrub_geo":{"user_id":14090452,"user_id_str":"14090452","up_to_status_id":23260136625,"up_to_status_id_str":"23260136625"}}"#,
        ),
        (
            "limit",
            r#"{"limit":{"track":1234,"timestamp_ms":"1598779139683"}}"#,
        ),
        (
            "status_withheld",
            r#"{"status_withheld":{"id":1234567890,"user_id":123456,"withheld_in_countries":["DE","AR"],"timestamp_ms":"1598779139683"}}"#,
        ),
        (
            "user_withheld",
            r#"{"user_withheld":{"id":123456,"withheld_in_countries":["DE","AR"],"timestamp_ms":"1598779139683"}}"#,
        ),
        (
            "warning",
            r#"{"warning":{"code":"FALLING_BEHIND","message":"Your connection is falling behind and messages are being queued for delivery to you. Your queue is now over 60% full. You will be disconnected when the queue is full.","percent_full":60}}"#,
        ),
        (
            "disconnect",
            r#"{"disconnect":{"code":7,"stream_name":"tweetpipe-statuses1","reason":"admin logout"}}"#,
        ),
        (
            "error",
            r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#,
        ),
    ];
    for (want, value) in cases {
        match enrich(value) {
            Outcome::Control { kind, raw } => {
                assert_eq!(kind, want);
                assert_eq!(raw, serde_json::from_str::<Value>(value).unwrap());
            }
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn v2_partial_errors_beside_data_are_still_a_tweet() {
    let mut v: Value = serde_json::from_str(V2_RETWEET).unwrap();
    v["errors"] = json!([{"value": "1578000000000000000", "detail": "Could not find tweet", "title": "Not Found Error",
                          "resource_type": "tweet", "type": "https://api.twitter.com/2/problems/resource-not-found"}]);
    assert_eq!(tweet(&v.to_string()).id, "1579578843345293312");
}

#[test]
fn not_json_is_invalid() {
    for value in [
        "",
        "   \r\n",
        "not json at all",
        "{\"id_str\":\"1\",",
        "{\"truncated",
        "\u{feff}{}",
        "null x",
    ] {
        let reason = invalid_reason(value);
        assert!(reason.starts_with("not JSON"), "{value:?}: {reason}");
    }
    let reason = match Enricher::new().enrich(b"{\"text\":\"\xff\xfe\"}") {
        Outcome::Invalid { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason.contains("UTF-8"), "{reason}");
}

#[test]
fn json_that_is_not_a_tweet_is_invalid() {
    let reason = invalid_reason(r#"[{"id_str":"1","text":"hi"}]"#);
    assert!(reason.contains("JSON array"), "{reason}");
    assert!(invalid_reason("[]").contains("JSON array"));
    assert!(invalid_reason("42").contains("JSON number"));
    assert!(invalid_reason("\"a tweet\"").contains("JSON string"));
    assert!(invalid_reason("null").contains("JSON null"));

    let reason = invalid_reason(r#"{"friends":[1,2,3]}"#);
    assert!(
        reason.contains("neither a tweet") && reason.contains("friends"),
        "{reason}"
    );
    let reason = invalid_reason("{}");
    assert!(reason.contains("neither a tweet"), "{reason}");

    // Tweet-like, but with a field of the wrong type.
    let reason =
        invalid_reason(r#"{"id_str":"1","created_at":"Wed Oct 10 20:19:24 +0000 2018","text":5}"#);
    assert!(
        reason.contains("unexpected shape") && reason.contains("string"),
        "{reason}"
    );

    // A tweet without its author, or without any text.
    let reason = invalid_reason(
        r#"{"id_str":"1","created_at":"Wed Oct 10 20:19:24 +0000 2018","text":"hi"}"#,
    );
    assert!(reason.contains("without `user`"), "{reason}");
    let reason = invalid_reason(
        r#"{"id_str":"1","created_at":"Wed Oct 10 20:19:24 +0000 2018","user":{"id_str":"2","screen_name":"x"}}"#,
    );
    assert!(reason.contains("without text"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

#[test]
fn serialized_shape() {
    let t = tweet(line("1300000033812593062"));
    let v: Value = serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "id",
        "created_at",
        "user",
        "text",
        "lang",
        "lang_source",
        "sentiment",
        "hashtags",
        "mentions",
        "urls",
        "is_retweet",
        "retweeted_id",
        "is_quote",
        "in_reply_to_id",
        "quoted_id",
        "source_format",
        "source",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(
        v["user"],
        json!({"id": "1780101877", "screen_name": "MeganWright"})
    );
    assert_eq!(v["retweeted_id"], json!("1299733099213496913"));
    assert_eq!(v["source"], json!("twitter"));
    let s = &v["sentiment"];
    for k in ["neg", "neu", "pos", "compound"] {
        assert!(s[k].is_f64(), "sentiment.{k} in {s}");
    }
    assert_eq!(s["compound"].as_f64().unwrap(), t.sentiment.compound);
    // A plain tweet has a null retweeted_id.
    let plain = serde_json::to_value(tweet(line("1300000004462541860"))).unwrap();
    assert_eq!(plain["retweeted_id"], Value::Null);
}
