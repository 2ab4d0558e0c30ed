//! The language of a tweet: Twitter's own label when it gave one, else a guess by `whatlang`
//! (pure Rust, no model files), in the codes Twitter itself uses so that the `lang` column
//! means the same thing whichever way it was filled.
//!
//! Why these rules:
//! - Twitter's label is trusted first: it is made with more context than the text (the
//!   author's history, the client) and costs nothing. Only "und" or no label at all sends a
//!   tweet to the detector, which keeps the costliest step per text off the rest.
//! - URLs, @mentions, #hashtags and $cashtags are removed before detection: they are not words
//!   of the tweet's language (an English handle in a Spanish tweet, "https" everywhere) and
//!   tip a trigram model on short texts.
//! - A guess counts only when whatlang calls it reliable ([`whatlang::Info::is_reliable`]);
//!   otherwise the tweet stays "und", as Twitter would have left it. On tweet-length texts
//!   that bar is high: on the English tweets of the VADER corpus whatlang is reliable for
//!   fewer than half, and close Romance languages (es/pt/it/ca) often fall short too.
//! - whatlang itself compares a Latin-script text with a 300-trigram profile of each of its 37
//!   Latin-script languages whatever the text's length, which costs several times all the
//!   rest of a tweet's enrichment. For Latin script we compute its answer from the text's side
//!   instead ([`super::trigrams`]: several times cheaper, the same answer to the last bit),
//!   and two cuts keep even that in bounds:
//!   * a Latin-script text with fewer than [`MIN_LATIN_LETTERS`] letters is not sent at all:
//!     on the VADER corpus whatlang was almost never reliable on such texts, and many "und"
//!     tweets are of this kind (a few words, emoji, a link);
//!   * the detector leaves out 13 languages that are not among Twitter's tweet-language codes
//!     as far as we know them (its `lang:` search operator's list; [`NEVER_ON_TWITTER`]:
//!     Esperanto, Latin, Afrikaans, Javanese, …): an answer the `lang` column would not
//!     otherwise contain is worth less than the time it saves on Latin script (10 of the 37
//!     Latin-script profiles). [`LangDetector::all_languages`] keeps them.
//! - Codes: whatlang answers ISO 639-3; Twitter answers BCP 47 with the two-letter ISO 639-1
//!   code where there is one, and keeps three legacy codes: "in" (Indonesian), "iw" (Hebrew)
//!   and "tl" (Tagalog/Filipino) — so do we. Mandarin ("cmn") is "zh", Norwegian Bokmål
//!   ("nob") is "no" and Western Persian ("pes") is "fa", as on Twitter. Every language
//!   whatlang 0.18 knows has such a code; one that a later whatlang adds without a mapping
//!   here comes out as its ISO 639-3 code.

use whatlang::dev::FilterList;
use whatlang::{Lang, Script};

use super::trigrams::LatinScorer;

/// Where an enriched tweet's `lang` came from.
pub const SOURCE_TWITTER: &str = "twitter";
/// Detected by whatlang (reliably).
pub const SOURCE_DETECTED: &str = "detected";
/// Neither: `lang` is "und".
pub const SOURCE_NONE: &str = "none";

/// A Latin-script text with fewer letters than this is not worth asking whatlang about (see
/// the module doc).
pub const MIN_LATIN_LETTERS: usize = 16;

/// Languages whatlang knows that are not among Twitter's tweet-language codes as far as we know
/// them, left out of detection by [`LangDetector::new`].
pub const NEVER_ON_TWITTER: [Lang; 13] = [
    Lang::Afr,
    Lang::Aka,
    Lang::Aze,
    Lang::Bel,
    Lang::Epo,
    Lang::Jav,
    Lang::Lat,
    Lang::Mkd,
    Lang::Sna,
    Lang::Tuk,
    Lang::Uzb,
    Lang::Yid,
    Lang::Zul,
];

/// Decides a tweet's language. Cheap to clone; holds the detector's settings.
#[derive(Debug, Clone)]
pub struct LangDetector {
    /// whatlang itself, for every script but Latin.
    detector: whatlang::Detector,
    /// whatlang's answer for Latin script, several times faster (see [`super::trigrams`]).
    latin: LatinScorer,
}

impl Default for LangDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl LangDetector {
    /// A detector over the languages Twitter labels tweets with (all of whatlang's but
    /// [`NEVER_ON_TWITTER`]).
    pub fn new() -> Self {
        LangDetector {
            detector: whatlang::Detector::with_denylist(NEVER_ON_TWITTER.to_vec()),
            latin: LatinScorer::new(FilterList::deny(NEVER_ON_TWITTER.to_vec())),
        }
    }

    /// A detector over every language whatlang knows (slower on Latin script).
    pub fn all_languages() -> Self {
        LangDetector {
            detector: whatlang::Detector::new(),
            latin: LatinScorer::new(FilterList::all()),
        }
    }

    /// The language of a tweet and where it came from ([`SOURCE_TWITTER`], [`SOURCE_DETECTED`]
    /// or [`SOURCE_NONE`]): `twitter_lang` when set and not "und", else the detected language
    /// of `text`, else "und".
    pub fn resolve(&self, twitter_lang: Option<&str>, text: &str) -> (String, &'static str) {
        match twitter_lang {
            Some(l) if !l.is_empty() && l != "und" => (l.to_owned(), SOURCE_TWITTER),
            _ => match self.detect(text) {
                Some(code) => (code.to_owned(), SOURCE_DETECTED),
                None => ("und".to_owned(), SOURCE_NONE),
            },
        }
    }

    /// Twitter's code for the language of `text`, if whatlang is reliably sure of it once
    /// links, mentions, hashtags and cashtags are removed.
    pub fn detect(&self, text: &str) -> Option<&'static str> {
        let words = strip_for_detection(text);
        if words.is_empty() {
            return None;
        }
        let script = whatlang::detect_script(&words)?;
        if script == Script::Latin
            && words.chars().filter(|c| c.is_alphabetic()).count() < MIN_LATIN_LETTERS
        {
            return None;
        }
        let info = self.info_in(&words, script)?;
        info.is_reliable().then(|| twitter_code(info.lang()))
    }

    /// whatlang's whole answer for `words` (language, script, confidence), computed as
    /// [`Self::detect`] does: the same as `whatlang::Detector::detect` under this detector's
    /// languages, faster for Latin script.
    pub fn whatlang_info(&self, words: &str) -> Option<whatlang::Info> {
        self.info_in(words, whatlang::detect_script(words)?)
    }

    fn info_in(&self, words: &str, script: Script) -> Option<whatlang::Info> {
        match script {
            Script::Latin => self.latin.detect(words),
            _ => self.detector.detect(words),
        }
    }
}

/// `text` without URLs, @mentions, #hashtags and $cashtags, the remaining words joined by
/// single spaces. A token goes when it starts with `@`, `#`, `$` (followed by a letter) or
/// `www.`, or contains `://`; "RT" at the very start (a retweet's own text) goes too. Tokens
/// are split on whitespace only, so "(@x)" keeps its brackets but loses nothing else.
pub fn strip_for_detection(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, tok) in text.split_whitespace().enumerate() {
        // Twitter also recognises the full-width ＠ and ＃ as mention and hashtag marks.
        let drop = tok.starts_with(['@', '#', '＠', '＃'])
            || tok
                .strip_prefix('$')
                .is_some_and(|t| t.starts_with(char::is_alphabetic))
            || tok.contains("://")
            || tok.starts_with("www.")
            || (i == 0 && tok == "RT");
        if !drop {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(tok);
        }
    }
    out
}

/// Twitter's language code for a whatlang language (see the module doc).
pub fn twitter_code(lang: Lang) -> &'static str {
    #[allow(unreachable_patterns)] // the fallback is for languages a later whatlang adds
    match lang {
        Lang::Afr => "af",
        Lang::Aka => "ak",
        Lang::Amh => "am",
        Lang::Ara => "ar",
        Lang::Aze => "az",
        Lang::Bel => "be",
        Lang::Ben => "bn",
        Lang::Bul => "bg",
        Lang::Cat => "ca",
        Lang::Ces => "cs",
        Lang::Cmn => "zh",
        Lang::Cym => "cy",
        Lang::Dan => "da",
        Lang::Deu => "de",
        Lang::Ell => "el",
        Lang::Eng => "en",
        Lang::Epo => "eo",
        Lang::Est => "et",
        Lang::Fin => "fi",
        Lang::Fra => "fr",
        Lang::Guj => "gu",
        Lang::Heb => "iw",
        Lang::Hin => "hi",
        Lang::Hrv => "hr",
        Lang::Hun => "hu",
        Lang::Hye => "hy",
        Lang::Ind => "in",
        Lang::Ita => "it",
        Lang::Jav => "jv",
        Lang::Jpn => "ja",
        Lang::Kan => "kn",
        Lang::Kat => "ka",
        Lang::Khm => "km",
        Lang::Kor => "ko",
        Lang::Lat => "la",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Mal => "ml",
        Lang::Mar => "mr",
        Lang::Mkd => "mk",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Nld => "nl",
        Lang::Nob => "no",
        Lang::Ori => "or",
        Lang::Pan => "pa",
        Lang::Pes => "fa",
        Lang::Pol => "pl",
        Lang::Por => "pt",
        Lang::Ron => "ro",
        Lang::Rus => "ru",
        Lang::Sin => "si",
        Lang::Slk => "sk",
        Lang::Slv => "sl",
        Lang::Sna => "sn",
        Lang::Spa => "es",
        Lang::Srp => "sr",
        Lang::Swe => "sv",
        Lang::Tam => "ta",
        Lang::Tel => "te",
        Lang::Tgl => "tl",
        Lang::Tha => "th",
        Lang::Tuk => "tk",
        Lang::Tur => "tr",
        Lang::Ukr => "uk",
        Lang::Urd => "ur",
        Lang::Uzb => "uz",
        Lang::Vie => "vi",
        Lang::Yid => "yi",
        Lang::Zul => "zu",
        other => other.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_whatlang_language_has_a_two_letter_code() {
        for &l in Lang::all() {
            let code = twitter_code(l);
            assert_eq!(code.len(), 2, "{l:?} -> {code}");
        }
    }

    #[test]
    fn strips_links_mentions_tags() {
        assert_eq!(
            strip_for_detection("RT @ana: Hola #amigos $TSLA $5 mira https://t.co/x www.a.es ok"),
            "Hola $5 mira ok"
        );
        assert_eq!(strip_for_detection("  @a #b http://c  "), "");
    }

    #[test]
    fn resolve_prefers_twitter() {
        let d = LangDetector::new();
        assert_eq!(
            d.resolve(Some("fr"), "plain English words here"),
            ("fr".into(), SOURCE_TWITTER)
        );
        let spanish = "¿Alguien sabe a qué hora empieza el partido de hoy? No me lo quiero perder";
        assert_eq!(
            d.resolve(Some("und"), spanish),
            ("es".into(), SOURCE_DETECTED)
        );
        assert_eq!(d.resolve(None, spanish), ("es".into(), SOURCE_DETECTED));
        assert_eq!(
            d.resolve(Some("und"), "@x https://t.co/y"),
            ("und".into(), SOURCE_NONE)
        );
        // Too short to be worth whatlang's time, in Latin script; not so in a script that
        // only one language uses.
        assert_eq!(
            d.resolve(Some("und"), "muy bien gracias"),
            ("und".into(), SOURCE_NONE)
        );
        assert_eq!(d.resolve(None, "ขอบคุณมาก"), ("th".into(), SOURCE_DETECTED));
        assert_eq!(d.resolve(None, "Καλημέρα"), ("el".into(), SOURCE_DETECTED));
    }

    #[test]
    fn denied_languages_are_not_answered() {
        let latin = "Gallia est omnis divisa in partes tres, quarum unam incolunt Belgae, aliam \
                     Aquitani, tertiam qui ipsorum lingua Celtae, nostra Galli appellantur";
        assert_eq!(LangDetector::all_languages().detect(latin), Some("la"));
        assert_ne!(LangDetector::new().detect(latin), Some("la"));
    }
}
