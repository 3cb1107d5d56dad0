//! A tantivy `TokenFilter` that drops raw tokens longer than a number of characters (URLs, base64,
//! hashes). tantivy's own `RemoveLongFilter` counts UTF-8 bytes, which halves the limit for
//! Cyrillic or Greek words and thirds it for CJK; this one counts Unicode scalar values.

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Keeps tokens of at most `max_chars` characters.
#[derive(Clone, Debug)]
pub struct MaxCharsFilter {
    max_chars: usize,
}

impl MaxCharsFilter {
    pub fn new(max_chars: usize) -> Self {
        MaxCharsFilter { max_chars }
    }
}

/// Whether `text` has at most `max` characters. A string of at most `max` bytes always has
/// (the common case is decided without counting).
#[inline]
fn within(text: &str, max: usize) -> bool {
    text.len() <= max || text.chars().nth(max).is_none()
}

impl TokenFilter for MaxCharsFilter {
    type Tokenizer<T: Tokenizer> = MaxCharsWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MaxCharsWrapper<T> {
        MaxCharsWrapper {
            max_chars: self.max_chars,
            inner: tokenizer,
        }
    }
}

/// [`MaxCharsFilter`] applied to a tokenizer.
#[derive(Clone)]
pub struct MaxCharsWrapper<T> {
    max_chars: usize,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for MaxCharsWrapper<T> {
    type TokenStream<'a> = MaxCharsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MaxCharsStream {
            max_chars: self.max_chars,
            tail: self.inner.token_stream(text),
        }
    }
}

/// Stream of [`MaxCharsWrapper`].
pub struct MaxCharsStream<T> {
    max_chars: usize,
    tail: T,
}

impl<T: TokenStream> TokenStream for MaxCharsStream<T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if within(&self.tail.token().text, self.max_chars) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{SimpleTokenizer, TextAnalyzer};

    #[test]
    fn counts_characters_not_bytes() {
        let mut a = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(MaxCharsFilter::new(4))
            .build();
        let mut out = Vec::new();
        // "мир" is 6 bytes, "élan" 5, "дома" 8 and "日本語" 9; the others are 5 characters.
        a.token_stream("мир élan hello дома мирок 日本語です 日本語")
            .process(&mut |t| out.push(t.text.clone()));
        assert_eq!(out, ["мир", "élan", "дома", "日本語"]);
        assert!(within("", 0) && !within("a", 0) && within("ab", 2) && !within("абв", 2));
    }
}
