//! The analyzer's last tantivy `TokenFilter`: stop words, then Snowball stemming with
//! `rust-stemmers` (the standard Snowball stems; tantivy 0.27's own `Stemmer` filter goes through
//! a different crate), then the length limits on the stem.
//!
//! The three steps are one stage because their result depends only on the word, and a corpus
//! repeats the same few hundred thousand words: each instance (one per worker) memoises
//! word → final term (or "drop") in a bounded cache, so a token costs one hash lookup instead of
//! a stop-list lookup, a stemmer run and a length count.

use std::sync::Arc;

use rust_stemmers::{Algorithm, Stemmer};

use rustc_hash::{FxHashMap, FxHashSet};
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Entries kept in a cache before it is cleared (bounds memory on huge vocabularies).
const CACHE_LIMIT: usize = 1 << 18;

/// Stop words, stemming and length limits: what happens to one lower-cased word.
#[derive(Clone, Debug)]
pub struct Normalizer {
    stop_words: Arc<FxHashSet<String>>,
    stem: Option<Algorithm>,
    min_len: usize,
    max_len: usize,
}

impl Normalizer {
    /// Drops `stop_words`, stems with `stem` (if any), keeps stems of `min_len..=max_len` chars.
    pub fn new(
        stop_words: impl IntoIterator<Item = String>,
        stem: Option<Algorithm>,
        min_len: usize,
        max_len: usize,
    ) -> Self {
        Normalizer {
            stop_words: Arc::new(stop_words.into_iter().collect()),
            stem,
            min_len,
            max_len,
        }
    }

    /// The final term for `word`, or `None` to drop it.
    pub fn normalize(&self, word: &str) -> Option<Box<str>> {
        if self.stop_words.contains(word) {
            return None;
        }
        let term: Box<str> = match self.stem {
            // `Stemmer` is a function pointer: creating one per call costs nothing.
            Some(algorithm) => Stemmer::create(algorithm).stem(word).into(),
            None => word.into(),
        };
        let len = if term.is_ascii() {
            term.len()
        } else {
            term.chars().count()
        };
        (self.min_len..=self.max_len).contains(&len).then_some(term)
    }
}

/// [`Normalizer`] as a memoised tantivy filter.
#[derive(Clone)]
pub struct NormalizeFilter {
    normalizer: Normalizer,
}

impl NormalizeFilter {
    pub fn new(normalizer: Normalizer) -> Self {
        NormalizeFilter { normalizer }
    }
}

impl TokenFilter for NormalizeFilter {
    type Tokenizer<T: Tokenizer> = NormalizeWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> NormalizeWrapper<T> {
        NormalizeWrapper {
            filter: self.normalizer,
            cache: FxHashMap::default(),
            inner: tokenizer,
        }
    }
}

/// [`NormalizeFilter`] applied to a tokenizer, with its cache.
#[derive(Clone)]
pub struct NormalizeWrapper<T> {
    filter: Normalizer,
    /// word → final term, `None` for dropped words.
    cache: FxHashMap<Box<str>, Option<Box<str>>>,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for NormalizeWrapper<T> {
    type TokenStream<'a> = NormalizeStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
        }
        NormalizeStream {
            filter: &self.filter,
            cache: &mut self.cache,
            tail: self.inner.token_stream(text),
        }
    }
}

/// Stream of [`NormalizeWrapper`].
pub struct NormalizeStream<'a, T> {
    filter: &'a Normalizer,
    cache: &'a mut FxHashMap<Box<str>, Option<Box<str>>>,
    tail: T,
}

impl<T: TokenStream> TokenStream for NormalizeStream<'_, T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            let token = self.tail.token_mut();
            let term = match self.cache.get(token.text.as_str()) {
                Some(term) => term,
                None => {
                    let term = self.filter.normalize(&token.text);
                    self.cache.entry(token.text.as_str().into()).or_insert(term)
                }
            };
            if let Some(term) = term {
                if **term != *token.text {
                    token.text.clear();
                    token.text.push_str(term);
                }
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}
