//! Holds `enrich::vader` to its reference, the Python vaderSentiment 3.3.2, on the 4,200
//! human-rated tweets of the VADER paper's corpus (shared/data/vader/tweets_groundtruth.tsv):
//! compound must agree with the reference's own output (tests/data/vader_reference.tsv, made
//! by scripts/vader_reference.py) within 0.001 on at least 99% of tweets, and correlate with
//! the human mean ratings at least as well as the reference does (r = 0.8722).
//! `cargo test --release --test vader -- --ignored --nocapture` also measures throughput.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tweetpipe::enrich::vader::{Scores, SentimentAnalyzer};

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/vader_reference.tsv"
);

struct Tweet {
    id: String,
    rating: f64,
    text: String,
}

/// `id<TAB>rating<TAB>text` lines, split on '\n' only and the text kept as is: the same
/// reading as scripts/vader_reference.py, so both sides score the same strings.
fn corpus() -> Vec<Tweet> {
    let path = support::shared_dir().join("data/vader/tweets_groundtruth.tsv");
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    data.split('\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut f = line.splitn(3, '\t');
            let (id, rating, text) = (
                f.next().unwrap(),
                f.next().expect("rating"),
                f.next().expect("text"),
            );
            Tweet {
                id: id.to_owned(),
                rating: rating.parse().expect("rating is a number"),
                text: text.to_owned(),
            }
        })
        .collect()
}

/// id → scores printed by vaderSentiment 3.3.2 (header line skipped).
fn reference() -> HashMap<String, Scores> {
    let data =
        std::fs::read_to_string(REFERENCE).unwrap_or_else(|e| panic!("reading {REFERENCE}: {e}"));
    data.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "reference line {line:?}");
            let num = |s: &str| {
                s.parse::<f64>()
                    .unwrap_or_else(|_| panic!("reference line {line:?}"))
            };
            let s = Scores {
                neg: num(f[1]),
                neu: num(f[2]),
                pos: num(f[3]),
                compound: num(f[4]),
            };
            (f[0].to_owned(), s)
        })
        .collect()
}

fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn compound_agrees_with_reference_and_human_ratings() {
    let tweets = corpus();
    let reference = reference();
    assert_eq!(tweets.len(), 4200, "corpus size");
    assert_eq!(reference.len(), tweets.len(), "reference covers the corpus");

    let analyzer = SentimentAnalyzer::new();
    let mut ours = Vec::with_capacity(tweets.len());
    let mut mismatches = Vec::new();
    let mut identical = 0;
    for t in &tweets {
        let s = analyzer.polarity_scores(&t.text);
        let r = reference
            .get(&t.id)
            .unwrap_or_else(|| panic!("tweet {} missing from the reference", t.id));
        let diff = (s.compound - r.compound).abs();
        if diff > 0.001 {
            mismatches.push((diff, t, s, *r));
        }
        if s == *r {
            identical += 1;
        }
        ours.push(s.compound);
    }

    let n = tweets.len();
    let agreement = 100.0 * (n - mismatches.len()) as f64 / n as f64;
    let ratings: Vec<f64> = tweets.iter().map(|t| t.rating).collect();
    let r = pearson(&ours, &ratings);
    println!(
        "compound within 0.001 of vaderSentiment 3.3.2: {}/{n} = {agreement:.2}%",
        n - mismatches.len()
    );
    println!("all four scores identical to the reference: {identical}/{n}");
    println!("Pearson r(compound, human mean rating) = {r:.4} (reference: 0.8722)");
    mismatches.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (diff, t, s, r) in mismatches.iter().take(10) {
        println!(
            "  id {} |Δcompound| {diff:.4}: ours {s:?}\n    reference {r:?}\n    text {:?}",
            t.id, t.text
        );
    }

    assert!(
        agreement >= 99.0,
        "only {agreement:.2}% of compounds within 0.001 of the reference"
    );
    assert!(r >= 0.872, "Pearson r {r:.4} < 0.872");
}

/// Throughput on one core: `cargo test --release --test vader -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn throughput() {
    let tweets = corpus();
    let analyzer = SentimentAnalyzer::new();
    let bytes: usize = tweets.iter().map(|t| t.text.len()).sum();
    let start = Instant::now();
    let mut scored = 0usize;
    let mut checksum = 0.0;
    while start.elapsed() < Duration::from_secs(3) {
        for t in &tweets {
            checksum +=
                std::hint::black_box(analyzer.polarity_scores(std::hint::black_box(&t.text)))
                    .compound;
        }
        scored += tweets.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{scored} tweets in {secs:.2}s: {:.0} tweets/s on one core ({:.2} µs/tweet, mean {} bytes/tweet; checksum {checksum:.1})",
        scored as f64 / secs,
        1e6 * secs / scored as f64,
        bytes / tweets.len()
    );
}
