//! The analyzer: text to terms through a tantivy tokenizer pipeline.
//!
//! `tokenizer → drop over-long raw tokens → lower case → stop words, Snowball stem, length
//! limits`, each stage a tantivy `TokenFilter`; the first and the last are written here
//! ([`MaxCharsFilter`], and the memoised [`NormalizeFilter`]), the tokenizer is tantivy's or
//! [`LetterTokenizer`]. Every length is in characters (Unicode scalar values), not bytes, so a
//! limit means the same for English, Russian or Chinese words.
//! [`AnalyzerConfig`] is serialisable and recorded in the corpus manifest, so a corpus says exactly
//! how it was made.

mod fast_words;
mod letter_tokenizer;
mod max_chars_filter;
mod normalize_filter;
pub mod stopwords;

use rust_stemmers::Algorithm;
use serde::{Deserialize, Serialize};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer, TokenStream, Tokenizer};

pub use letter_tokenizer::LetterTokenizer;
pub use max_chars_filter::MaxCharsFilter;
pub use normalize_filter::{NormalizeFilter, Normalizer};

use crate::IngestError;

/// How text is split into raw tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// Runs of letters; digits and punctuation split (the seed's choice).
    Letters,
    /// Runs of letters and digits (tantivy's `SimpleTokenizer`).
    Alphanumeric,
}

/// Every analyzer setting. Start from [`AnalyzerConfig::preset`] and override fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerConfig {
    pub tokenizer: TokenizerKind,
    pub lowercase: bool,
    /// Raw tokens longer than this many characters are dropped before stemming (URLs, base64,
    /// hashes).
    pub max_raw_len: usize,
    /// Stop-word list language (`english`), or none.
    pub stopwords: Option<String>,
    /// Files of further stop words: one word per line, `#` starts a comment line, compared
    /// after lower-casing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopword_files: Vec<std::path::PathBuf>,
    /// Snowball stemmer language (`english`, `german`, ...), or none.
    pub stem: Option<String>,
    /// Final terms (after stemming) must have at least this many characters...
    pub min_len: usize,
    /// ... and at most this many.
    pub max_len: usize,
}

/// Named starting points for [`AnalyzerConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The seed's preprocessing: split on non-letters, drop tokens over 32 characters, lower
    /// case, English stop words, Snowball English ("Porter2") stems of 3–14 characters.
    Seed,
    /// Minimal: alphanumeric tokens, lower case, nothing removed but tokens over 64 characters.
    None,
}

impl AnalyzerConfig {
    pub fn preset(preset: Preset) -> AnalyzerConfig {
        match preset {
            Preset::Seed => AnalyzerConfig {
                tokenizer: TokenizerKind::Letters,
                lowercase: true,
                max_raw_len: 32,
                stopwords: Some("english".into()),
                stopword_files: Vec::new(),
                stem: Some("english".into()),
                min_len: 3,
                max_len: 14,
            },
            Preset::None => AnalyzerConfig {
                tokenizer: TokenizerKind::Alphanumeric,
                lowercase: true,
                max_raw_len: 64,
                stopwords: None,
                stopword_files: Vec::new(),
                stem: None,
                min_len: 1,
                max_len: 64,
            },
        }
    }
}

/// The words of a stop-word file (see [`AnalyzerConfig::stopword_files`]).
fn read_stopword_file(path: &std::path::Path) -> Result<Vec<String>, IngestError> {
    let text = std::fs::read_to_string(path).map_err(|e| IngestError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_lowercase)
        .collect())
}

/// Languages of `rust-stemmers`, by lower-case English name.
pub fn stem_algorithm(language: &str) -> Option<Algorithm> {
    Some(match language.to_ascii_lowercase().as_str() {
        "arabic" => Algorithm::Arabic,
        "danish" => Algorithm::Danish,
        "dutch" => Algorithm::Dutch,
        "english" | "porter" | "porter2" => Algorithm::English,
        "finnish" => Algorithm::Finnish,
        "french" => Algorithm::French,
        "german" => Algorithm::German,
        "greek" => Algorithm::Greek,
        "hungarian" => Algorithm::Hungarian,
        "italian" => Algorithm::Italian,
        "norwegian" => Algorithm::Norwegian,
        "portuguese" => Algorithm::Portuguese,
        "romanian" => Algorithm::Romanian,
        "russian" => Algorithm::Russian,
        "spanish" => Algorithm::Spanish,
        "swedish" => Algorithm::Swedish,
        "tamil" => Algorithm::Tamil,
        "turkish" => Algorithm::Turkish,
        _ => return None,
    })
}

/// The chain up to the words (tokenizer, long-token removal, lower case), with or without the
/// normalize stage. Composed statically so tokens flow through inlined calls rather than one
/// boxed call per stage; only the whole analyzer is boxed.
fn compose<T: Tokenizer>(
    tokenizer: T,
    config: &AnalyzerConfig,
    normalize: Option<&Normalizer>,
) -> TextAnalyzer {
    let base = TextAnalyzer::builder(tokenizer).filter(MaxCharsFilter::new(config.max_raw_len));
    match (config.lowercase, normalize) {
        (true, Some(n)) => base
            .filter(LowerCaser)
            .filter(NormalizeFilter::new(n.clone()))
            .build(),
        (true, None) => base.filter(LowerCaser).build(),
        (false, Some(n)) => base.filter(NormalizeFilter::new(n.clone())).build(),
        (false, None) => base.build(),
    }
}

/// A built analyzer. Cheap to clone: one per worker thread.
#[derive(Clone)]
pub struct Analyzer {
    /// The whole pipeline: text to terms.
    inner: TextAnalyzer,
    /// The pipeline without its last stage: text to (lower-cased) words.
    words: TextAnalyzer,
    /// Letters tokenizer with lower case: [`Analyzer::for_each_word`] runs the fused scan of
    /// `fast_words` instead of `words` (the same words, faster).
    fused_words: bool,
    /// Scratch space of the fused scan.
    word_buf: String,
    normalizer: Normalizer,
    config: AnalyzerConfig,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .finish()
    }
}

impl Analyzer {
    /// Validates `config` and builds the tantivy pipeline.
    pub fn new(config: AnalyzerConfig) -> Result<Analyzer, IngestError> {
        if config.min_len > config.max_len {
            return Err(IngestError::Config(format!(
                "min token length {} exceeds max {}",
                config.min_len, config.max_len
            )));
        }
        let mut stop_words: Vec<String> = match config.stopwords.as_deref() {
            None => Vec::new(),
            Some("english") => stopwords::ENGLISH.iter().map(|w| (*w).to_owned()).collect(),
            Some(other) => {
                return Err(IngestError::Config(format!(
                    "no stop-word list for {other:?} (available: english)"
                )));
            }
        };
        for path in &config.stopword_files {
            stop_words.extend(read_stopword_file(path)?);
        }
        let stem =
            match config.stem.as_deref() {
                None => None,
                Some(lang) => Some(stem_algorithm(lang).ok_or_else(|| {
                    IngestError::Config(format!("no Snowball stemmer for {lang:?}"))
                })?),
            };
        let normalizer = Normalizer::new(stop_words, stem, config.min_len, config.max_len);
        let (inner, words) = match config.tokenizer {
            TokenizerKind::Letters => (
                compose(LetterTokenizer::default(), &config, Some(&normalizer)),
                compose(LetterTokenizer::default(), &config, None),
            ),
            TokenizerKind::Alphanumeric => (
                compose(SimpleTokenizer::default(), &config, Some(&normalizer)),
                compose(SimpleTokenizer::default(), &config, None),
            ),
        };
        Ok(Analyzer {
            inner,
            words,
            fused_words: config.tokenizer == TokenizerKind::Letters && config.lowercase,
            word_buf: String::new(),
            normalizer,
            config,
        })
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// Calls `sink` with each term of `text`, in order.
    pub fn for_each_term(&mut self, text: &str, sink: &mut dyn FnMut(&str)) {
        let mut stream = self.inner.token_stream(text);
        while stream.advance() {
            sink(&stream.token().text);
        }
    }

    /// Calls `sink` with each word of `text` before the last stage (stop words, stemming, length
    /// limits). Mapping the words through [`Analyzer::normalizer`] gives exactly the terms of
    /// [`Analyzer::for_each_term`]: callers that memoise per word (the pipeline maps words straight
    /// to term ids) use the two halves.
    pub fn for_each_word(&mut self, text: &str, sink: &mut dyn FnMut(&str)) {
        if self.fused_words {
            let max = self.config.max_raw_len;
            fast_words::letter_words(text, max, &mut self.word_buf, sink);
            return;
        }
        let mut stream = self.words.token_stream(text);
        while stream.advance() {
            sink(&stream.token().text);
        }
    }

    /// The last stage, for use with [`Analyzer::for_each_word`].
    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// The terms of `text` (convenience for tests and small inputs).
    pub fn terms(&mut self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, &mut |t| out.push(t.to_owned()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_preset_matches_the_seed_preprocessing() {
        let mut a = Analyzer::new(AnalyzerConfig::preset(Preset::Seed)).unwrap();
        let terms = a.terms(
            "The Running dogs ran 42 times: x86 ok? Internationalization's \
             aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa generously",
        );
        // "the" is a stop word; "ok", "x", "s" are too short; the 40-letter run is too long.
        assert_eq!(
            terms,
            ["run", "dog", "ran", "time", "internation", "generous"]
        );
        // Stems longer than 14 characters are dropped after stemming.
        assert!(a.terms("counterrevolutionaries").is_empty());
    }

    proptest::proptest! {
        /// Words mapped through the normalizer are exactly the terms, for both presets.
        #[test]
        fn words_then_normalize_equals_terms(text in "([A-Za-zé0-9]{1,12}[ ,.;!-]{1,3}){0,30}", seed in proptest::bool::ANY) {
            let preset = if seed { Preset::Seed } else { Preset::None };
            let mut a = Analyzer::new(AnalyzerConfig::preset(preset)).unwrap();
            let terms = a.terms(&text);
            let normalizer = a.normalizer().clone();
            let mut via_words = Vec::new();
            a.for_each_word(&text, &mut |w| {
                if let Some(t) = normalizer.normalize(w) {
                    via_words.push(t.to_string());
                }
            });
            proptest::prop_assert_eq!(terms, via_words);
        }
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        // 40 Cyrillic letters are 80 bytes: within the none preset's 64-character raw limit.
        let long_word = "ж".repeat(40);
        let mut a = Analyzer::new(AnalyzerConfig::preset(Preset::None)).unwrap();
        assert_eq!(
            a.terms(&format!("{long_word} {}", "ж".repeat(65))),
            [long_word]
        );
        let mut config = AnalyzerConfig::preset(Preset::None);
        config.min_len = 3;
        config.max_len = 4;
        let mut a = Analyzer::new(config).unwrap();
        assert_eq!(
            a.terms("ёж мир дома тесто 日本語"),
            ["мир", "дома", "日本語"]
        );
    }

    #[test]
    fn none_preset_keeps_digits_and_stop_words() {
        let mut a = Analyzer::new(AnalyzerConfig::preset(Preset::None)).unwrap();
        assert_eq!(a.terms("The x86 CPU"), ["the", "x86", "cpu"]);
    }

    #[test]
    fn other_languages_and_bad_settings() {
        let mut config = AnalyzerConfig::preset(Preset::None);
        config.stem = Some("german".into());
        let mut a = Analyzer::new(config.clone()).unwrap();
        assert_eq!(a.terms("Häuser"), ["haus"]);
        config.stem = Some("klingon".into());
        assert!(Analyzer::new(config.clone()).is_err());
        config.stem = None;
        config.min_len = 10;
        config.max_len = 2;
        assert!(Analyzer::new(config).is_err());
    }
}
