//! A tantivy `TokenFilter` keeping tokens whose length in characters is within `[min, max]`
//! (tantivy's `RemoveLongFilter` counts bytes and has no lower bound).

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Drops tokens shorter than `min` or longer than `max` characters.
#[derive(Clone, Copy, Debug)]
pub struct LengthFilter {
    min: usize,
    max: usize,
}

impl LengthFilter {
    pub fn new(min: usize, max: usize) -> Self {
        LengthFilter { min, max }
    }
}

impl TokenFilter for LengthFilter {
    type Tokenizer<T: Tokenizer> = LengthFilterWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> LengthFilterWrapper<T> {
        LengthFilterWrapper {
            filter: self,
            inner: tokenizer,
        }
    }
}

/// [`LengthFilter`] applied to a tokenizer.
#[derive(Clone)]
pub struct LengthFilterWrapper<T> {
    filter: LengthFilter,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for LengthFilterWrapper<T> {
    type TokenStream<'a> = LengthFilterStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        LengthFilterStream {
            filter: self.filter,
            tail: self.inner.token_stream(text),
        }
    }
}

/// Stream of [`LengthFilterWrapper`].
pub struct LengthFilterStream<T> {
    filter: LengthFilter,
    tail: T,
}

impl<T: TokenStream> TokenStream for LengthFilterStream<T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            let text = &self.tail.token().text;
            // Byte length bounds the char count from above: skip counting when it cannot matter.
            let len = if text.is_ascii() {
                text.len()
            } else {
                text.chars().count()
            };
            if len >= self.filter.min && len <= self.filter.max {
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
