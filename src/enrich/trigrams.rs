//! whatlang's answer for a Latin-script text, computed from the text's side.
//!
//! Why this exists: for Latin script whatlang compares the text with a 300-trigram profile of
//! each of its 37 Latin-script languages, one hash lookup per profile trigram: ~11,000 lookups
//! (~8,000 with [`super::lang::NEVER_ON_TWITTER`] left out) whatever the text's length. That
//! made language detection one of the consumer's largest costs although only the tweets
//! Twitter labels "und" reach it. A tweet has a few hundred distinct trigrams at most, so this
//! module turns the profiles round once (trigram → the languages whose profile holds it, and
//! where) and adds up each language's distance from the text's trigrams instead: a few hundred
//! lookups, and the *same* integers, hence the same scores. What remains of a detection is
//! mostly stripping, script detection, lower-casing and the alphabet scores (the figures are
//! in docs/performance.md).
//!
//! Everything else is whatlang's own, unchanged: the profiles are its data
//! (`whatlang/latin_trigrams.tsv`, copied by `scripts/whatlang_profiles.py`), the alphabet
//! half of its score comes from whatlang itself (its `dev` API), and the steps below follow
//! whatlang 0.18's `trigrams::detection`, `combined` and `core::confidence` to the letter,
//! sorts included, so that ties fall the same way. `tests/lang.rs` holds it to that: on
//! thousands of texts it must give whatlang's language and bit-identical confidence.

use std::collections::HashMap;
use std::sync::LazyLock;

use whatlang::dev::{alphabet_latin_calculate_scores, FilterList, LowercaseText};
use whatlang::{Info, Lang, Script};

use rustc_hash::FxHashMap;

/// whatlang's MAX_TRIGRAM_DISTANCE: the profiles' length and the distance of a miss.
const MAX_TRIGRAM_DISTANCE: u32 = 300;
/// whatlang's MAX_TOTAL_DISTANCE.
const MAX_TOTAL_DISTANCE: u32 = MAX_TRIGRAM_DISTANCE * MAX_TRIGRAM_DISTANCE;
/// whatlang's TEXT_TRIGRAMS_SIZE: only the text's 600 most frequent trigrams count.
const TEXT_TRIGRAMS_SIZE: usize = 600;

/// A trigram packed into a u64 (21 bits a char, first char highest), so that comparing two
/// packed trigrams orders them as whatlang's `Trigram(char, char, char)` derive does.
type Packed = u64;

fn pack(a: char, b: char, c: char) -> Packed {
    (a as u64) << 42 | (b as u64) << 21 | c as u64
}

/// The profiles turned round: for each trigram, the (language, rank) pairs that hold it.
struct Profiles {
    /// whatlang's Latin-script languages, in its order.
    langs: Vec<Lang>,
    /// Trigram → range of `hits`.
    index: FxHashMap<Packed, (u32, u32)>,
    /// (index into `langs`, rank in that language's profile).
    hits: Vec<(u8, u16)>,
}

static PROFILES: LazyLock<Profiles> = LazyLock::new(|| {
    let data = include_str!("whatlang/latin_trigrams.tsv");
    let mut langs = Vec::new();
    let mut by_trigram: HashMap<Packed, Vec<(u8, u16)>> = HashMap::new();
    for line in data.lines() {
        let mut fields = line.split('\t');
        let code = fields.next().expect("a language code");
        let lang = Lang::from_code(code).expect("a language whatlang knows");
        let l = langs.len() as u8;
        for (rank, t) in fields.enumerate() {
            let mut c = t.chars();
            let (a, b, d) = (c.next().unwrap(), c.next().unwrap(), c.next().unwrap());
            assert!(c.next().is_none(), "trigram {t:?} of {code}");
            by_trigram
                .entry(pack(a, b, d))
                .or_default()
                .push((l, rank as u16));
        }
        langs.push(lang);
    }
    let mut index = FxHashMap::default();
    let mut hits = Vec::new();
    for (t, h) in by_trigram {
        index.insert(t, (hits.len() as u32, h.len() as u32));
        hits.extend(h);
    }
    Profiles { langs, index, hits }
});

/// whatlang's detection of a Latin-script text under one filter list.
#[derive(Debug, Clone)]
pub struct LatinScorer {
    filter: FilterList,
    /// `filter.is_allowed` of each profile language, in profile order.
    allowed: Vec<bool>,
}

impl LatinScorer {
    /// A scorer for the languages `filter` allows.
    pub fn new(filter: FilterList) -> Self {
        let allowed = PROFILES
            .langs
            .iter()
            .map(|&l| filter.is_allowed(l))
            .collect();
        LatinScorer { filter, allowed }
    }

    /// What `whatlang::Detector::detect` answers for `text` under the same filter list, for a
    /// text whose main script is Latin (the caller checks: `whatlang::detect_script`).
    pub fn detect(&self, text: &str) -> Option<Info> {
        let lowercase = LowercaseText::new(text);

        // whatlang's trigrams::raw_detect, from the text's side.
        let trigrams = text_trigrams(&lowercase);
        let count = trigrams.len() as u32;
        let profiles = &*PROFILES;
        // Per language, the sum over its profile of |text rank - profile rank| for a trigram
        // the text has and MAX_TRIGRAM_DISTANCE for one it has not, as a difference from the
        // all-miss total (a hit can cost more than a miss: text ranks go up to 599).
        let mut delta = vec![0i64; profiles.langs.len()];
        for (n, t) in trigrams.iter().enumerate() {
            if let Some(&(start, len)) = profiles.index.get(t) {
                for &(l, i) in &profiles.hits[start as usize..(start + len) as usize] {
                    delta[l as usize] += (n as i64 - i as i64).abs() - MAX_TRIGRAM_DISTANCE as i64;
                }
            }
        }
        let mut distances: Vec<(Lang, u32)> = Vec::with_capacity(profiles.langs.len());
        for (l, &lang) in profiles.langs.iter().enumerate() {
            if !self.allowed[l] {
                continue;
            }
            let mut total = (MAX_TOTAL_DISTANCE as i64 + delta[l]) as u32;
            if MAX_TRIGRAM_DISTANCE > count {
                total -= (MAX_TRIGRAM_DISTANCE - count) * MAX_TRIGRAM_DISTANCE;
            }
            distances.push((lang, total.clamp(0, MAX_TOTAL_DISTANCE)));
        }
        distances.sort_unstable_by_key(|&(_, d)| d);
        let max_dist = count * MAX_TRIGRAM_DISTANCE;
        let trigram_scores: Vec<(Lang, f64)> = distances
            .iter()
            .map(|&(lang, d)| (lang, (max_dist - d) as f64 / max_dist as f64))
            .collect();

        // whatlang's combined::raw_detect.
        let alphabet = alphabet_latin_calculate_scores(&lowercase, &self.filter);
        let mut all_langs: Vec<Lang> = alphabet.scores.iter().map(|x| x.0).collect();
        for (lang, _) in &trigram_scores {
            if !all_langs.contains(lang) {
                all_langs.push(*lang);
            }
        }
        let alphabet_weight =
            (-(alphabet.count as f64 / 300.0) + 2.0 / 3.0).clamp(1.0 / 3.0, 2.0 / 3.0);
        let trigram_weight = 1.0 - alphabet_weight;
        let mut scores: Vec<(Lang, f64)> = all_langs
            .into_iter()
            .map(|lang| {
                let score_of = |s: &[(Lang, f64)]| {
                    s.iter()
                        .find(|(l, _)| *l == lang)
                        .map(|x| x.1)
                        .unwrap_or(0.0)
                };
                let a = score_of(&alphabet.scores);
                let t = score_of(&trigram_scores);
                (lang, a * alphabet_weight + t * trigram_weight)
            })
            .collect();
        scores.sort_unstable_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Less));

        // whatlang's combined::detect.
        let mut it = scores.into_iter();
        let (lang1, score1) = it.next()?;
        let confidence = match it.next() {
            Some((_, score2)) => confidence(score1, score2, count as usize),
            None => 1.0,
        };
        Some(Info::new(Script::Latin, lang1, confidence))
    }
}

/// whatlang's trigrams::utils::get_trigrams_with_positions: the text's distinct trigrams, most
/// frequent first (ties: the greater trigram first), at most TEXT_TRIGRAMS_SIZE; a trigram's
/// rank is its index. Punctuation, digits and symbols count as spaces, and no trigram is made
/// of a space between spaces or a space at a word's edge with another space.
fn text_trigrams(text: &str) -> Vec<Packed> {
    let mut all: Vec<Packed> = Vec::with_capacity(text.len() + 1);
    let mut chars = text.chars().map(to_trigram_char).chain(Some(' '));
    let mut c1 = ' ';
    let mut c2 = chars.next().expect("one space at least");
    for c3 in chars {
        if !(c2 == ' ' && (c1 == ' ' || c3 == ' ')) {
            all.push(pack(c1, c2, c3));
        }
        c1 = c2;
        c2 = c3;
    }
    all.sort_unstable();
    // (occurrences, trigram), then descending as whatlang sorts them.
    let mut counted: Vec<(u32, Packed)> = Vec::with_capacity(all.len());
    for t in all {
        match counted.last_mut() {
            Some((n, last)) if *last == t => *n += 1,
            _ => counted.push((1, t)),
        }
    }
    counted.sort_unstable_by(|a, b| b.cmp(a));
    counted.truncate(TEXT_TRIGRAMS_SIZE);
    counted.into_iter().map(|(_, t)| t).collect()
}

/// whatlang's utils::is_stop_char (space, punctuation, digits) maps to a space.
fn to_trigram_char(ch: char) -> char {
    if matches!(ch, '\u{0000}'..='\u{0040}' | '\u{005B}'..='\u{0060}' | '\u{007B}'..='\u{007E}') {
        ' '
    } else {
        ch
    }
}

/// whatlang's core::confidence::calculate_confidence.
fn confidence(highest_score: f64, second_score: f64, count: usize) -> f64 {
    if highest_score == 0.0 {
        return 0.0;
    }
    if second_score == 0.0 {
        return highest_score;
    }
    let confident_rate = (3.0 / count as f64) + 0.015;
    let rate = (highest_score - second_score) / second_score;
    if rate > confident_rate {
        1.0
    } else {
        rate / confident_rate
    }
}
