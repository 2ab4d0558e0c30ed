//! Holds the language step's fast Latin-script scorer (`enrich::trigrams`) to whatlang itself:
//! for every text below, `LangDetector::whatlang_info` must give exactly what
//! `whatlang::Detector::detect` gives under the same languages: the same language, script and
//! confidence to the last bit. The texts: the 4,200 real tweets of the VADER corpus (raw
//! and stripped as the consumer strips them), sentences in a dozen Latin-script languages, and
//! generated texts built from the profiles' own trigrams and alphabets (close calls and ties
//! between languages, texts past whatlang's 300- and 600-trigram limits, upper case, digits and
//! punctuation). If whatlang changes its profiles or scoring, this fails until
//! scripts/whatlang_profiles.py has copied the new profiles and trigrams.rs follows.

mod support;

use tweetpipe::enrich::lang::{strip_for_detection, LangDetector, NEVER_ON_TWITTER};

/// (language, script, confidence bits), or None.
type Answer = Option<(whatlang::Lang, whatlang::Script, u64)>;

fn answer(info: Option<whatlang::Info>) -> Answer {
    info.map(|i| (i.lang(), i.script(), i.confidence().to_bits()))
}

/// Compares both detectors (ours and whatlang under the same languages) on every text; returns
/// how many texts were Latin script, the ones the fast scorer answers.
fn check_all(texts: &[String]) -> usize {
    let pairs = [
        (
            LangDetector::new(),
            whatlang::Detector::with_denylist(NEVER_ON_TWITTER.to_vec()),
        ),
        (LangDetector::all_languages(), whatlang::Detector::new()),
    ];
    let mut latin = 0;
    let mut mismatches = Vec::new();
    for text in texts {
        if whatlang::detect_script(text) == Some(whatlang::Script::Latin) {
            latin += 1;
        }
        for (ours, theirs) in &pairs {
            let (a, b) = (
                answer(ours.whatlang_info(text)),
                answer(theirs.detect(text)),
            );
            if a != b {
                mismatches.push(format!("{text:?}: ours {a:?}, whatlang {b:?}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} answers differ from whatlang, e.g.:\n{}",
        mismatches.len(),
        2 * texts.len(),
        mismatches[..mismatches.len().min(5)].join("\n")
    );
    latin
}

#[test]
fn answers_as_whatlang_does_on_real_tweets() {
    let mut texts: Vec<String> = support::texts().to_vec();
    texts.extend(support::texts().iter().map(|t| strip_for_detection(t)));
    let latin = check_all(&texts);
    assert!(latin > 8000, "only {latin} Latin-script texts");
}

#[test]
fn answers_as_whatlang_does_in_many_languages() {
    let sentences = [
        "¿Alguien sabe a qué hora empieza el partido de hoy? No me lo quiero perder",
        "Não acredito que o jogo acabou assim, que vergonha para o time",
        "Je ne sais pas ce que je vais faire ce soir, peut-être regarder le match",
        "Ich weiß nicht, ob ich heute Abend noch Zeit habe, das Spiel zu sehen",
        "Non so se stasera riuscirò a vedere la partita, ma ci provo",
        "Ik weet niet of ik vanavond tijd heb om de wedstrijd te kijken",
        "Nie wiem, czy dziś wieczorem zdążę obejrzeć mecz, ale spróbuję",
        "Bugün maçı izlemeye vaktim olacak mı bilmiyorum ama deneyeceğim",
        "Hindi ko alam kung may oras ako mamayang gabi para manood ng laro",
        "Saya tidak tahu apakah saya punya waktu untuk menonton pertandingan malam ini",
        "Jag vet inte om jag hinner se matchen i kväll, men jag ska försöka",
        "Jeg ved ikke, om jeg når at se kampen i aften, men jeg prøver",
        "Nem tudom, hogy ma este lesz-e időm megnézni a meccset",
        "Nevím, jestli dnes večer stihnu ten zápas, ale zkusím to",
        "Tôi không biết tối nay có kịp xem trận đấu không, nhưng tôi sẽ thử",
        "En tiedä, ehdinkö katsoa ottelun tänä iltana, mutta yritän",
        "Nu știu dacă voi avea timp să văd meciul diseară, dar voi încerca",
        "No sé si tindré temps de veure el partit aquesta nit, però ho intentaré",
        "Gallia est omnis divisa in partes tres, quarum unam incolunt Belgae",
        "La vivo estas bela kaj mi ŝatas lerni Esperanton kun amikoj",
        "Ek weet nie of ek vanaand tyd sal hê om die wedstryd te kyk nie",
        "I'm so happy the team won tonight, what a game!!! 😀",
        "Dzisiaj jest piękny dzień na spacer po parku z psem",
    ];
    let mut texts: Vec<String> = sentences.iter().map(|s| s.to_string()).collect();
    // Pairs of sentences: two languages in one text, the close calls.
    for a in sentences {
        for b in sentences {
            texts.push(format!("{a} {b}"));
        }
    }
    texts.extend(sentences.iter().map(|s| s.to_uppercase()));
    check_all(&texts);
}

#[test]
fn answers_as_whatlang_does_on_generated_texts() {
    // The profiles' trigrams are the strongest signal there is for each language: texts made
    // of them from several profiles at once score many languages closely.
    let profiles: Vec<Vec<String>> = include_str!("../src/enrich/whatlang/latin_trigrams.tsv")
        .lines()
        .map(|l| l.split('\t').skip(1).map(str::to_string).collect())
        .collect();
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyzáàâãäåæçčćďđèéêëěęėēíìîïįīĳłľĺñňńóòôõöøőœřŕšśşţťúùûüůűųūýÿžźżßğış"
        .chars()
        .collect();
    let noise = [
        ' ', ' ', ' ', '.', ',', '!', '?', '1', '9', '#', '@', '\'', '-', '\n',
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut texts = Vec::new();
    for n in 0..3000 {
        let mut t = String::new();
        // Lengths from a word to ~3,000 characters: below, around and past whatlang's 300 and
        // 600 distinct trigrams.
        let len = match n % 10 {
            0 => 3000,
            1..=3 => 200 + rng.below(600),
            _ => 1 + rng.below(200),
        };
        let langs: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| rng.below(profiles.len()))
            .collect();
        while t.chars().count() < len {
            match rng.below(4) {
                0 | 1 => {
                    let p = &profiles[langs[rng.below(langs.len())]];
                    // Mostly frequent trigrams, some rare ones.
                    let rank = if rng.below(2) == 0 {
                        rng.below(30)
                    } else {
                        rng.below(300)
                    };
                    t.push_str(&p[rank]);
                }
                2 => t.push(alphabet[rng.below(alphabet.len())]),
                _ => t.push(noise[rng.below(noise.len())]),
            }
            if rng.below(12) == 0 {
                t = t.to_uppercase();
            }
        }
        texts.push(t);
    }
    let latin = check_all(&texts);
    assert!(latin > 2500, "only {latin} Latin-script texts");
}

/// xorshift64*: a fixed seed gives the same texts on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}
