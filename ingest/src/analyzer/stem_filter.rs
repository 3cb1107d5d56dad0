//! A tantivy `TokenFilter` that stems with `rust-stemmers`, so stems are the standard Snowball ones
//! (tantivy 0.27's own `Stemmer` filter goes through a different crate).

use rust_stemmers::{Algorithm, Stemmer};
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Replaces each token by its Snowball stem in `algorithm`'s language.
#[derive(Clone, Copy)]
pub struct SnowballStemFilter {
    algorithm: Algorithm,
}

impl SnowballStemFilter {
    pub fn new(algorithm: Algorithm) -> Self {
        SnowballStemFilter { algorithm }
    }
}

impl TokenFilter for SnowballStemFilter {
    type Tokenizer<T: Tokenizer> = SnowballStemWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> SnowballStemWrapper<T> {
        SnowballStemWrapper {
            algorithm: self.algorithm,
            inner: tokenizer,
        }
    }
}

/// [`SnowballStemFilter`] applied to a tokenizer.
#[derive(Clone)]
pub struct SnowballStemWrapper<T> {
    algorithm: Algorithm,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for SnowballStemWrapper<T> {
    type TokenStream<'a> = SnowballStemStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        SnowballStemStream {
            // `Stemmer` is a function pointer: creating one per stream costs nothing.
            stemmer: Stemmer::create(self.algorithm),
            buffer: String::new(),
            tail: self.inner.token_stream(text),
        }
    }
}

/// Stream of [`SnowballStemWrapper`].
pub struct SnowballStemStream<T> {
    stemmer: Stemmer,
    buffer: String,
    tail: T,
}

impl<T: TokenStream> TokenStream for SnowballStemStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if let std::borrow::Cow::Owned(stem) = self.stemmer.stem(&token.text) {
            // Reuse the token's allocation: swap the stem in, keep the old string as scratch.
            self.buffer = stem;
            std::mem::swap(&mut token.text, &mut self.buffer);
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
