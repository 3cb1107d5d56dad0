//! A tantivy tokenizer that splits on every non-letter (the seed's "split on non-letters"): digits,
//! punctuation and underscores all end a token, unlike tantivy's alphanumeric `SimpleTokenizer`.

use std::str::CharIndices;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens are maximal runs of alphabetic characters.
#[derive(Clone, Default)]
pub struct LetterTokenizer {
    token: Token,
}

/// Stream of [`LetterTokenizer`].
pub struct LetterTokenStream<'a> {
    text: &'a str,
    chars: CharIndices<'a>,
    token: &'a mut Token,
}

impl Tokenizer for LetterTokenizer {
    type TokenStream<'a> = LetterTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LetterTokenStream<'a> {
        self.token.reset();
        LetterTokenStream {
            text,
            chars: text.char_indices(),
            token: &mut self.token,
        }
    }
}

impl TokenStream for LetterTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        while let Some((start, c)) = self.chars.next() {
            if c.is_alphabetic() {
                let end = self
                    .chars
                    .find(|(_, c)| !c.is_alphabetic())
                    .map_or(self.text.len(), |(offset, _)| offset);
                self.token.offset_from = start;
                self.token.offset_to = end;
                self.token.text.push_str(&self.text[start..end]);
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_digits_and_punctuation() {
        let mut t = LetterTokenizer::default();
        let mut out = Vec::new();
        t.token_stream("x86_64 is déjà-vu, IPv6!")
            .process(&mut |tok| out.push(tok.text.clone()));
        assert_eq!(out, ["x", "is", "déjà", "vu", "IPv"]);
    }
}
