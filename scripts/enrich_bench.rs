//! What each step of `enrich` costs, on one core, over a file of realistic tweets.
//!
//! ```sh
//! python3 scripts/gen_tweets.py --count 20000 --out /tmp/t.jsonl
//! cargo run --release --example enrich_bench -- /tmp/t.jsonl [rounds]
//! ```
//!
//! Steps are timed the way the consumer runs them, one record at a time through every step
//! while it is hot in cache: the loop is run with the steps added one by one (parse; parse +
//! extract; … ; the whole `enrich()` + serialising the JSON line), and a step's cost is the
//! difference between two successive loops. (Timing each step over the whole file in turn
//! would charge every step for fetching its input back from memory.) The language step is also
//! timed on its own over the tweets split in two: those Twitter labelled (a string copy) and
//! those labelled "und" or not at all (whatlang runs). Each figure is the best of `rounds`.
//! The last line is the consumer's real per-record work and its rate on one core.
//!
//! The file must fit in memory (20k tweets ≈ 80 MB).

use std::hint::black_box;
use std::time::{Duration, Instant};

use tweetpipe::enrich::lang::SOURCE_DETECTED;
use tweetpipe::enrich::{tweet, EnrichedTweet, Enricher, Outcome};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/tmp/t.jsonl".into());
    let rounds: usize = args
        .next()
        .map(|r| r.parse().expect("rounds: a number"))
        .unwrap_or(5);
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read {path}: {e}\n(make it with: python3 scripts/gen_tweets.py --count 20000 --out {path})")
    });
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n = lines.len();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    println!(
        "{path}: {n} records, {:.0} bytes on average; best of {rounds} rounds, one thread",
        bytes as f64 / n as f64
    );

    let enricher = Enricher::new();
    let (langs, sentiment) = (enricher.languages(), enricher.sentiment());

    // The language step's inputs, split by whether Twitter labelled the tweet.
    let fields: Vec<_> = lines
        .iter()
        .filter_map(|l| tweet::parse(l).ok()?.extract().ok())
        .collect();
    let n_tweets = fields.len();
    let (labelled, unlabelled): (Vec<_>, Vec<_>) = fields.iter().partition(|f| {
        f.twitter_lang
            .as_deref()
            .is_some_and(|l| !l.is_empty() && l != "und")
    });
    let n_detected = unlabelled
        .iter()
        .filter(|f| langs.resolve(f.twitter_lang.as_deref(), &f.text).1 == SOURCE_DETECTED)
        .count();

    let mut best = [Duration::MAX; 9];
    let mut out: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut time = |slot: usize, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        best[slot] = best[slot].min(t.elapsed());
    };
    for _ in 0..rounds {
        // Floor: what serde_json needs just to walk the bytes, keeping nothing.
        time(0, &mut || {
            for l in &lines {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).ok());
            }
        });
        time(1, &mut || {
            for l in &lines {
                black_box(tweet::parse(l).is_ok());
            }
        });
        time(2, &mut || {
            for l in &lines {
                black_box(tweet::parse(l).ok().and_then(|p| p.extract().ok()));
            }
        });
        time(3, &mut || {
            for l in &lines {
                if let Some(f) = tweet::parse(l).ok().and_then(|p| p.extract().ok()) {
                    black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
                    black_box(f);
                }
            }
        });
        time(4, &mut || {
            for l in &lines {
                if let Some(f) = tweet::parse(l).ok().and_then(|p| p.extract().ok()) {
                    black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
                    black_box(sentiment.polarity_scores(&f.text));
                    black_box(f);
                }
            }
        });
        // The consumer's work per record, end to end.
        time(5, &mut || {
            out.clear();
            for l in &lines {
                if let Outcome::Tweet(tw) = enricher.enrich(l) {
                    serialize(&mut out, &tw);
                }
                if out.len() > 4 << 20 {
                    out.clear(); // as a writer would flush
                }
            }
        });
        time(6, &mut || {
            for f in &labelled {
                black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
            }
        });
        time(7, &mut || {
            for f in &unlabelled {
                black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
            }
        });
    }

    let per = |d: Duration, k: usize| d.as_nanos() as f64 / k.max(1) as f64;
    let step = |i: usize| per(best[i].saturating_sub(best[i - 1]), n);
    let line = |what: &str, ns: f64, note: String| println!("  {what:<40} {ns:>7.0} ns  {note}");
    line(
        "(floor: serde_json walking the bytes)",
        per(best[0], n),
        "per record".into(),
    );
    line(
        "parse (borrowed structs, classify)",
        per(best[1], n),
        "per record".into(),
    );
    line(
        "text + entities + id/user/created_at",
        step(2),
        "per record".into(),
    );
    line("language", step(3), "per record, all tweets".into());
    line(
        "  Twitter's label",
        per(best[6], labelled.len()),
        format!("per tweet ({} tweets)", labelled.len()),
    );
    line(
        "  detected (lang und or absent)",
        per(best[7], unlabelled.len()),
        format!(
            "per tweet ({} tweets, {n_detected} reliably detected)",
            unlabelled.len()
        ),
    );
    line("sentiment (VADER)", step(4), "per record".into());
    line(
        "assemble + serialize to a JSON line",
        step(5),
        "per record".into(),
    );
    let e2e = per(best[5], n);
    line(
        "end to end: enrich() + serialize",
        e2e,
        format!(
            "per record = {:.0} records/s on one core ({n_tweets} tweets)",
            1e9 / e2e
        ),
    );
}

fn serialize(out: &mut Vec<u8>, tweet: &EnrichedTweet) {
    serde_json::to_writer(&mut *out, tweet).expect("serialising to memory cannot fail");
    out.push(b'\n');
}
