//! A tantivy `TokenFilter` that stems with `rust-stemmers`, so stems are the standard Snowball ones
//! (tantivy 0.27's own `Stemmer` filter goes through a different crate).
//!
//! Stemming is the analyzer's most expensive stage, and a corpus repeats the same few hundred
//! thousand words, so each filter instance (one per worker) memoises stems in a bounded cache.

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Replaces each token by its Snowball stem in `algorithm`'s language (`None` passes tokens
/// through, so one statically composed pipeline serves both settings).
#[derive(Clone, Copy)]
pub struct SnowballStemFilter {
    algorithm: Option<Algorithm>,
}

impl SnowballStemFilter {
    pub fn new(algorithm: Option<Algorithm>) -> Self {
        SnowballStemFilter { algorithm }
    }
}

impl TokenFilter for SnowballStemFilter {
    type Tokenizer<T: Tokenizer> = SnowballStemWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> SnowballStemWrapper<T> {
        SnowballStemWrapper {
            algorithm: self.algorithm,
            cache: FxHashMap::default(),
            inner: tokenizer,
        }
    }
}

/// Entries kept in a stem cache before it is cleared (bounds memory on huge vocabularies).
const CACHE_LIMIT: usize = 1 << 18;

/// [`SnowballStemFilter`] applied to a tokenizer.
#[derive(Clone)]
pub struct SnowballStemWrapper<T> {
    algorithm: Option<Algorithm>,
    /// word → stem, for this worker.
    cache: FxHashMap<Box<str>, Box<str>>,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for SnowballStemWrapper<T> {
    type TokenStream<'a> = SnowballStemStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
        }
        SnowballStemStream {
            // `Stemmer` is a function pointer: creating one per stream costs nothing.
            stemmer: self.algorithm.map(Stemmer::create),
            cache: &mut self.cache,
            tail: self.inner.token_stream(text),
        }
    }
}

/// Stream of [`SnowballStemWrapper`].
pub struct SnowballStemStream<'a, T> {
    stemmer: Option<Stemmer>,
    cache: &'a mut FxHashMap<Box<str>, Box<str>>,
    tail: T,
}

impl<T: TokenStream> TokenStream for SnowballStemStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let Some(stemmer) = &self.stemmer else {
            return true;
        };
        let token = self.tail.token_mut();
        let stem = match self.cache.get(token.text.as_str()) {
            Some(stem) => stem,
            None => {
                let stem: Box<str> = stemmer.stem(&token.text).into();
                self.cache.entry(token.text.as_str().into()).or_insert(stem)
            }
        };
        if **stem != *token.text {
            token.text.clear();
            token.text.push_str(stem);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}
