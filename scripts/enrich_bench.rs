//! What each step of `enrich` costs on one core, over realistic tweets, and what our
//! Latin-script language scorer (src/enrich/trigrams.rs) saves against whatlang alone.
//! docs/performance.md has the figures and how they were taken.
//!
//! ```sh
//! python3 scripts/gen_tweets.py --count 20000 --text-source tests/data/vader/tweets_groundtruth.tsv --out /tmp/t.jsonl
//! cargo run --release --example enrich_bench -- /tmp/t.jsonl [rounds]
//! cargo run --release --example enrich_bench -- tests/data/sample/tweets.jsonl.gz
//! # instruction counts of one pass of one workload (see `Workload`), nothing else counted:
//! valgrind --tool=callgrind --toggle-collect='*counted*' \
//!     target/release/examples/enrich_bench --count enrich /tmp/t.jsonl
//! ```
//!
//! The tweets file is JSON lines, plain or gzipped; it must fit in memory (20k tweets ≈ 80 MB).
//! The VADER ground-truth texts (tests/data/vader/) are the second workload: 4,200 real tweet
//! texts, scored by VADER and sent through language detection as if Twitter had said "und".
//!
//! Steps are timed the way the consumer runs them, one record at a time through every step
//! while it is hot in cache: the loop is run with the steps added one by one (parse; parse +
//! extract; … ; the whole `enrich()` + serialising the JSON line), and a step's cost is the
//! difference between two successive loops. (Timing each step over the whole file in turn
//! would charge every step for fetching its input back from memory.) The language step is also
//! timed on its own over the tweets split in two: those Twitter labelled (a string copy) and
//! those labelled "und" or not at all (detection runs), with our Latin-script scorer and with
//! whatlang alone. Each figure is the best of `rounds`.

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use tweetpipe::enrich::lang::{self, MIN_LATIN_LETTERS, NEVER_ON_TWITTER};
use tweetpipe::enrich::{tweet, EnrichedTweet, Enricher, Outcome};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/vader/tweets_groundtruth.tsv"
);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--count") {
        let (what, path) = match &args[1..] {
            [what, path] => (what.as_str(), path.as_str()),
            _ => usage(),
        };
        let w = Workload::load(path);
        let what = match what {
            "enrich" => Pass::Enrich,
            "lang" => Pass::Lang,
            "lang-whatlang" => Pass::LangWhatlang,
            "vader" => Pass::Vader,
            _ => usage(),
        };
        black_box(counted(&w, what));
        return;
    }
    let path = args.first().map(String::as_str).unwrap_or("/tmp/t.jsonl");
    let rounds: usize = match args.get(1) {
        Some(r) => r.parse().unwrap_or_else(|_| usage()),
        None => 5,
    };
    let w = Workload::load(path);
    println!(
        "{path}: {} records, {:.0} bytes on average, {} tweets ({} labelled \"und\" or not at \
         all); {} corpus texts; best of {rounds} rounds, one thread",
        w.lines.len(),
        w.lines.iter().map(Vec::len).sum::<usize>() as f64 / w.lines.len() as f64,
        w.tweets.len(),
        w.unlabelled.len(),
        w.corpus.len(),
    );
    steps(&w, rounds);
    alternatives(&w, rounds);
}

fn usage() -> ! {
    eprintln!(
        "usage: enrich_bench [TWEETS.jsonl[.gz] [ROUNDS]]\n       enrich_bench --count \
         enrich|lang|lang-whatlang|vader TWEETS.jsonl[.gz]"
    );
    std::process::exit(2)
}

/// The inputs, read and split up front.
struct Workload {
    enricher: Enricher,
    /// whatlang itself, under the languages `LangDetector::new` detects.
    whatlang: whatlang::Detector,
    /// The tweets file, one record a line.
    lines: Vec<Vec<u8>>,
    /// Each tweet's Twitter label and text, as the enricher extracts them.
    tweets: Vec<(Option<String>, String)>,
    /// The texts of the tweets Twitter labelled "und" or not at all.
    unlabelled: Vec<String>,
    /// The VADER ground-truth texts.
    corpus: Vec<String>,
}

impl Workload {
    fn load(path: &str) -> Self {
        let raw = std::fs::read(path).unwrap_or_else(|e| {
            panic!(
                "cannot read {path}: {e}\n(make it with: python3 scripts/gen_tweets.py --count \
                 20000 --text-source tests/data/vader/tweets_groundtruth.tsv --out {path})"
            )
        });
        let data = if path.ends_with(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("gzip");
            out
        } else {
            raw
        };
        let lines: Vec<Vec<u8>> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let mut tweets = Vec::new();
        for l in &lines {
            if let Some(f) = extract(l) {
                tweets.push((f.twitter_lang.map(|l| l.into_owned()), f.text));
            }
        }
        let unlabelled = tweets
            .iter()
            .filter(|(l, _)| !l.as_deref().is_some_and(|l| !l.is_empty() && l != "und"))
            .map(|(_, t)| t.clone())
            .collect();
        let corpus = std::fs::read_to_string(CORPUS)
            .unwrap_or_else(|e| panic!("{CORPUS}: {e}"))
            .split('\n')
            .filter_map(|l| l.splitn(3, '\t').nth(2))
            .map(str::to_owned)
            .collect();
        Workload {
            enricher: Enricher::new(),
            whatlang: whatlang::Detector::with_denylist(NEVER_ON_TWITTER.to_vec()),
            lines,
            tweets,
            unlabelled,
            corpus,
        }
    }
}

fn extract(l: &[u8]) -> Option<tweet::Fields<'_>> {
    tweet::parse(l).ok().and_then(|p| p.extract().ok())
}

/// The per-step table: each step's cost per record, and the end-to-end rate.
fn steps(w: &Workload, rounds: usize) {
    let (langs, sentiment) = (w.enricher.languages(), w.enricher.sentiment());
    let mut out: Vec<u8> = Vec::with_capacity(8 << 20);
    let loops: [&mut dyn FnMut(); 6] = [
        // Floor: what serde_json needs just to walk the bytes, keeping nothing.
        &mut || {
            for l in &w.lines {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(l).ok());
            }
        },
        &mut || {
            for l in &w.lines {
                black_box(tweet::parse(l).is_ok());
            }
        },
        &mut || {
            for l in &w.lines {
                black_box(extract(l));
            }
        },
        &mut || {
            for l in &w.lines {
                if let Some(f) = extract(l) {
                    black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
                    black_box(f);
                }
            }
        },
        &mut || {
            for l in &w.lines {
                if let Some(f) = extract(l) {
                    black_box(langs.resolve(f.twitter_lang.as_deref(), &f.text));
                    black_box(sentiment.polarity_scores(&f.text));
                    black_box(f);
                }
            }
        },
        // The consumer's work per record, end to end.
        &mut || {
            out.clear();
            for l in &w.lines {
                if let Outcome::Tweet(tw) = w.enricher.enrich(l) {
                    serialize(&mut out, &tw);
                }
                if out.len() > 4 << 20 {
                    out.clear(); // as a writer would flush
                }
            }
        },
    ];
    let best = best_of(rounds, loops);
    let n = w.lines.len();
    let step = |i: usize| per(best[i].saturating_sub(best[i - 1]), n);
    println!("per step, per record:");
    row("(floor: serde_json walking the bytes)", per(best[0], n), "");
    row("parse (borrowed structs, classify)", per(best[1], n), "");
    row("text + entities + id/user/created_at", step(2), "");
    row("language", step(3), "averaged over all records");
    row("sentiment (VADER)", step(4), "");
    row("assemble + serialize to a JSON line", step(5), "");
    let e2e = per(best[5], n);
    row(
        "end to end: enrich() + serialize",
        e2e,
        &format!("= {:.0} records/s on one core", 1e9 / e2e),
    );
}

/// The language step with our Latin-script scorer and with whatlang alone, and VADER on the
/// corpus texts, on the same inputs in the same run.
fn alternatives(w: &Workload, rounds: usize) {
    let langs = w.enricher.languages();
    let labelled: Vec<&(Option<String>, String)> = w
        .tweets
        .iter()
        .filter(|(l, _)| l.as_deref().is_some_and(|l| !l.is_empty() && l != "und"))
        .collect();
    let loops: [&mut dyn FnMut(); 6] = [
        &mut || {
            for (l, t) in &labelled {
                black_box(langs.resolve(l.as_deref(), t));
            }
        },
        &mut || {
            for t in &w.unlabelled {
                black_box(langs.detect(t));
            }
        },
        &mut || {
            for t in &w.unlabelled {
                black_box(detect_with_whatlang(&w.whatlang, t));
            }
        },
        &mut || {
            for t in &w.corpus {
                black_box(langs.detect(t));
            }
        },
        &mut || {
            for t in &w.corpus {
                black_box(detect_with_whatlang(&w.whatlang, t));
            }
        },
        &mut || {
            for t in &w.corpus {
                black_box(w.enricher.sentiment().polarity_scores(t));
            }
        },
    ];
    let best = best_of(rounds, loops);
    let (nl, nu, nc) = (labelled.len(), w.unlabelled.len(), w.corpus.len());
    println!("language, per tweet:");
    row("Twitter's label", per(best[0], nl), &format!("{nl} tweets"));
    row(
        "detected, ours (trigrams.rs)",
        per(best[1], nu),
        &format!("{nu} und tweets"),
    );
    row(
        "detected, whatlang alone",
        per(best[2], nu),
        &format!("{nu} und tweets"),
    );
    row(
        "corpus texts, ours",
        per(best[3], nc),
        &format!("{nc} texts"),
    );
    row(
        "corpus texts, whatlang alone",
        per(best[4], nc),
        &format!("{nc} texts"),
    );
    println!("sentiment, per text:");
    row(
        "VADER on the corpus texts",
        per(best[5], nc),
        &format!("{nc} texts"),
    );
}

/// `LangDetector::detect` with whatlang doing the Latin-script scoring too: the same cuts
/// (stripping, short Latin texts, reliability), only the scorer differs.
fn detect_with_whatlang(d: &whatlang::Detector, text: &str) -> Option<&'static str> {
    let words = lang::strip_for_detection(text);
    if words.is_empty() {
        return None;
    }
    let script = whatlang::detect_script(&words)?;
    if script == whatlang::Script::Latin
        && words.chars().filter(|c| c.is_alphabetic()).count() < MIN_LATIN_LETTERS
    {
        return None;
    }
    let info = d.detect(&words)?;
    info.is_reliable().then(|| lang::twitter_code(info.lang()))
}

/// One workload, one pass, for instruction counts: callgrind's `--toggle-collect='*counted*'`
/// counts this function and what it calls, not the loading.
#[derive(Clone, Copy)]
enum Pass {
    Enrich,
    Lang,
    LangWhatlang,
    Vader,
}

#[inline(never)]
fn counted(w: &Workload, what: Pass) -> usize {
    let mut n = 0;
    match what {
        Pass::Enrich => {
            let mut out = Vec::with_capacity(8 << 20);
            for l in &w.lines {
                if let Outcome::Tweet(tw) = w.enricher.enrich(l) {
                    serialize(&mut out, &tw);
                    n += 1;
                }
                if out.len() > 4 << 20 {
                    out.clear();
                }
            }
        }
        Pass::Lang => {
            for t in w.unlabelled.iter().chain(&w.corpus) {
                n += usize::from(w.enricher.languages().detect(t).is_some());
            }
        }
        Pass::LangWhatlang => {
            for t in w.unlabelled.iter().chain(&w.corpus) {
                n += usize::from(detect_with_whatlang(&w.whatlang, t).is_some());
            }
        }
        Pass::Vader => {
            for t in w.tweets.iter().map(|(_, t)| t).chain(&w.corpus) {
                n += usize::from(w.enricher.sentiment().polarity_scores(t).compound > 0.0);
            }
        }
    }
    n
}

/// Runs each loop `rounds` times, interleaved, and keeps each one's best time.
fn best_of<const N: usize>(rounds: usize, mut loops: [&mut dyn FnMut(); N]) -> [Duration; N] {
    let mut best = [Duration::MAX; N];
    for _ in 0..rounds {
        for (b, f) in best.iter_mut().zip(loops.iter_mut()) {
            let t = Instant::now();
            f();
            *b = (*b).min(t.elapsed());
        }
    }
    best
}

fn per(d: Duration, k: usize) -> f64 {
    d.as_nanos() as f64 / k.max(1) as f64
}

fn row(what: &str, ns: f64, note: &str) {
    println!("  {what:<42} {ns:>7.0} ns  {note}");
}

fn serialize(out: &mut Vec<u8>, tweet: &EnrichedTweet) {
    serde_json::to_writer(&mut *out, tweet).expect("serialising to memory cannot fail");
    out.push(b'\n');
}
