//! A tantivy tokenizer that splits on every non-letter (the seed's "split on non-letters"): digits,
//! punctuation and underscores all end a token, unlike tantivy's alphanumeric `SimpleTokenizer`.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens are maximal runs of alphabetic characters.
#[derive(Clone, Default)]
pub struct LetterTokenizer {
    token: Token,
}

/// Stream of [`LetterTokenizer`].
pub struct LetterTokenStream<'a> {
    text: &'a str,
    /// Byte offset where the search for the next token starts.
    pos: usize,
    token: &'a mut Token,
}

/// Whether a letter starts at byte `i` of `text` (a char boundary), and the char's length.
/// ASCII, by far the common case, is decided on the byte without decoding.
#[inline]
fn letter_at(text: &str, i: usize) -> (bool, usize) {
    let b = text.as_bytes()[i];
    if b.is_ascii() {
        return (b.is_ascii_alphabetic(), 1);
    }
    match text[i..].chars().next() {
        Some(c) => (c.is_alphabetic(), c.len_utf8()),
        None => (false, 1),
    }
}

impl Tokenizer for LetterTokenizer {
    type TokenStream<'a> = LetterTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LetterTokenStream<'a> {
        self.token.reset();
        LetterTokenStream {
            text,
            pos: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for LetterTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        let len = self.text.len();
        let mut i = self.pos;
        while i < len {
            let (letter, width) = letter_at(self.text, i);
            if letter {
                break;
            }
            i += width;
        }
        if i >= len {
            self.pos = len;
            return false;
        }
        let start = i;
        while i < len {
            let (letter, width) = letter_at(self.text, i);
            if !letter {
                break;
            }
            i += width;
        }
        self.pos = i;
        self.token.offset_from = start;
        self.token.offset_to = i;
        self.token.text.push_str(&self.text[start..i]);
        true
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

    proptest::proptest! {
        /// Same tokens and offsets as splitting on `!char::is_alphabetic`.
        #[test]
        fn matches_a_plain_split(text in "\\PC{0,80}") {
            let mut t = LetterTokenizer::default();
            let mut got = Vec::new();
            t.token_stream(&text).process(&mut |tok| {
                got.push((tok.text.clone(), tok.offset_from, tok.offset_to));
            });
            let mut want = Vec::new();
            let mut start = None;
            for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
                match (c.is_alphabetic() && i < text.len(), start) {
                    (true, None) => start = Some(i),
                    (false, Some(s)) => {
                        want.push((text[s..i].to_owned(), s, i));
                        start = None;
                    }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
