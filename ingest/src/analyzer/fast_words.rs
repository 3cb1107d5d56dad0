//! The seed analyzer's first stages — letters tokenizer, removal of raw tokens over a length in
//! characters, lower case — fused into one scan over the text. It yields exactly the words of
//! the tantivy chain `LetterTokenizer → MaxCharsFilter → LowerCaser` (a property test holds it to
//! that), without a token object, a copy into it and a virtual call per stage for every word:
//! this is the innermost loop of ingest.

/// Calls `sink` with each lower-cased run of letters of `text` that has at most `max_chars`
/// characters. `buf` is scratch space reused between words.
pub fn letter_words(text: &str, max_chars: usize, buf: &mut String, sink: &mut dyn FnMut(&str)) {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let mut i = 0;
    while i < len {
        // Skip to the next letter.
        while i < len {
            let b = bytes[i];
            if b.is_ascii() {
                if b.is_ascii_alphabetic() {
                    break;
                }
                i += 1;
            } else {
                match text[i..].chars().next() {
                    Some(c) if c.is_alphabetic() => break,
                    Some(c) => i += c.len_utf8(),
                    None => i += 1,
                }
            }
        }
        if i >= len {
            return;
        }
        // The run of letters.
        let start = i;
        let (mut chars, mut ascii) = (0usize, true);
        while i < len {
            let b = bytes[i];
            if b.is_ascii() {
                if !b.is_ascii_alphabetic() {
                    break;
                }
                i += 1;
            } else {
                match text[i..].chars().next() {
                    Some(c) if c.is_alphabetic() => {
                        ascii = false;
                        i += c.len_utf8();
                    }
                    _ => break,
                }
            }
            chars += 1;
        }
        if chars > max_chars {
            continue;
        }
        let word = &text[start..i];
        buf.clear();
        if ascii {
            buf.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            // As tantivy's LowerCaser: char by char, no final-sigma rule.
            for c in word.chars() {
                buf.extend(c.to_lowercase());
            }
        }
        sink(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::{LetterTokenizer, MaxCharsFilter};
    use tantivy::tokenizer::{LowerCaser, TextAnalyzer};

    fn reference(text: &str, max_chars: usize) -> Vec<String> {
        let mut a = TextAnalyzer::builder(LetterTokenizer::default())
            .filter(MaxCharsFilter::new(max_chars))
            .filter(LowerCaser)
            .build();
        let mut out = Vec::new();
        a.token_stream(text)
            .process(&mut |t| out.push(t.text.clone()));
        out
    }

    fn fast(text: &str, max_chars: usize) -> Vec<String> {
        let mut out = Vec::new();
        letter_words(text, max_chars, &mut String::new(), &mut |w| {
            out.push(w.to_owned());
        });
        out
    }

    #[test]
    fn words_as_the_tantivy_chain() {
        let text = "Déjà-Vu x86_64 ΣΊΣΥΦΟΣ İstanbul straße; supercalifragilistic ok";
        assert_eq!(fast(text, 12), reference(text, 12));
        assert_eq!(fast(text, 12)[..3], ["déjà", "vu", "x"]);
    }

    proptest::proptest! {
        #[test]
        fn matches_the_tantivy_chain(text in "\\PC{0,120}", max in 1usize..12) {
            proptest::prop_assert_eq!(fast(&text, max), reference(&text, max));
        }

        #[test]
        fn matches_on_mostly_ascii(text in "[a-zA-Z0-9 ,.éßİΣ_-]{0,200}", max in 1usize..8) {
            proptest::prop_assert_eq!(fast(&text, max), reference(&text, max));
        }
    }
}
