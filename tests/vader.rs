//! Holds `enrich::vader` to its reference, the Python vaderSentiment 3.3.2, on the 4,200
//! human-rated tweets of the VADER paper's corpus (tests/data/vader/tweets_groundtruth.tsv): on
//! every tweet, all four scores must be the very floats the reference returns.
//!
//! What "identical" means here: `polarity_scores` returns Python floats already rounded by the
//! reference itself (`round(x, 3)` for neg/neu/pos, `round(x, 4)` for compound), and
//! scripts/vader_reference.py writes them with `repr()`, the shortest text that reads back to
//! the same double. So each reference field parses to exactly the double Python held, and ours
//! must have the same bits (0.0 and -0.0 told apart), and print as the same text in the
//! consumer's JSON output (serde_json) as in the reference's file.
//! `cargo test --release --test vader -- --ignored --nocapture` also measures throughput.

mod support;

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
    let path = support::vader_corpus_path();
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

/// One row of the reference: the id, and each score as vaderSentiment printed it and as the
/// double that text reads back to.
struct Reference {
    id: String,
    text: [String; 4],
    scores: Scores,
}

/// The reference's rows in file order (header line checked and skipped).
fn reference() -> Vec<Reference> {
    let data =
        std::fs::read_to_string(REFERENCE).unwrap_or_else(|e| panic!("reading {REFERENCE}: {e}"));
    let mut lines = data.lines();
    assert_eq!(
        lines.next(),
        Some("id\tneg\tneu\tpos\tcompound"),
        "{REFERENCE} header"
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "reference line {line:?}");
            let num = |s: &str| {
                s.parse::<f64>()
                    .unwrap_or_else(|_| panic!("reference line {line:?}"))
            };
            Reference {
                id: f[0].to_owned(),
                text: [f[1], f[2], f[3], f[4]].map(str::to_owned),
                scores: Scores {
                    neg: num(f[1]),
                    neu: num(f[2]),
                    pos: num(f[3]),
                    compound: num(f[4]),
                },
            }
        })
        .collect()
}

fn fields(s: &Scores) -> [f64; 4] {
    [s.neg, s.neu, s.pos, s.compound]
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
fn identical_to_the_reference_on_every_tweet() {
    let tweets = corpus();
    let reference = reference();
    assert_eq!(tweets.len(), 4200, "corpus size");
    assert_eq!(reference.len(), tweets.len(), "reference rows");

    let analyzer = SentimentAnalyzer::new();
    let mut ours = Vec::with_capacity(tweets.len());
    let mut differ = Vec::new();
    for (t, r) in tweets.iter().zip(&reference) {
        assert_eq!(t.id, r.id, "the reference is in corpus order");
        let s = analyzer.polarity_scores(&t.text);
        let same_bits = fields(&s)
            .iter()
            .zip(fields(&r.scores))
            .all(|(a, b)| a.to_bits() == b.to_bits());
        let printed = fields(&s).map(|x| serde_json::to_string(&x).unwrap());
        if !same_bits || printed != r.text {
            differ.push(format!(
                "id {}: ours {printed:?}, reference {:?}\n    text {:?}",
                t.id, r.text, t.text
            ));
        }
        ours.push(s.compound);
    }
    assert!(
        differ.is_empty(),
        "{} of {} tweets score differently from vaderSentiment 3.3.2, e.g.:\n{}",
        differ.len(),
        tweets.len(),
        differ[..differ.len().min(10)].join("\n")
    );

    // With every compound identical this is the reference's own figure; it checks that the
    // ratings column is read as the reference script reads it.
    let ratings: Vec<f64> = tweets.iter().map(|t| t.rating).collect();
    let r = pearson(&ours, &ratings);
    assert_eq!(
        format!("{r:.4}"),
        "0.8722",
        "Pearson r(compound, human mean rating)"
    );
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
