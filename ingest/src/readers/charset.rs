//! Bytes to text for web pages: the charset comes from the HTTP `Content-Type`, else from a
//! `<meta>` tag in the first 4 KiB, else UTF-8; undecodable bytes become U+FFFD (lossy fallback).
//!
//! UTF-8, ASCII, ISO-8859-1 and Windows-1252 (which browsers use for ISO-8859-1 anyway) are
//! decoded exactly; other legacy charsets fall back to lossy UTF-8 — which keeps their ASCII
//! words — rather than pulling in a full encoding library.

/// Windows-1252 code points for bytes 0x80..=0x9F (the rest of the range maps to U+00A0..U+00FF).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

/// The `charset=` parameter of a `Content-Type` value, lower case, without quotes.
pub fn charset_param(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    let at = lower.find("charset=")?;
    let value = lower[at + 8..]
        .trim_start_matches(['"', '\''])
        .split(|c: char| {
            c == ';' || c == '"' || c == '\'' || c.is_whitespace() || c == '>' || c == '/'
        })
        .next()?
        .to_owned();
    (!value.is_empty()).then_some(value)
}

/// Finds `<meta charset=...>` or `<meta http-equiv=... content="...; charset=...">` near the start.
pub fn sniff_meta_charset(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(4096)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(at) = rest.find("<meta") {
        let tag = &rest[at..];
        let end = tag.find('>').unwrap_or(tag.len());
        if let Some(cs) = charset_param(&tag[..end]) {
            return Some(cs);
        }
        rest = &tag[end.min(tag.len())..];
        if end == 0 {
            break;
        }
    }
    None
}

/// Decodes a page. Returns the text and whether any byte had to be replaced.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> (String, bool) {
    let charset = declared
        .map(str::to_owned)
        .or_else(|| sniff_meta_charset(bytes))
        .unwrap_or_else(|| "utf-8".to_owned());
    match charset.as_str() {
        "iso-8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252" | "iso8859-1"
        | "us-ascii" | "ascii" => (decode_cp1252(bytes), false),
        _ => match String::from_utf8_lossy(bytes) {
            std::borrow::Cow::Borrowed(s) => (s.to_owned(), false),
            std::borrow::Cow::Owned(s) => (s, true),
        },
    }
}

fn decode_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[(b - 0x80) as usize],
            _ => char::from(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_meta_and_fallback() {
        assert_eq!(
            charset_param("text/html; charset=\"ISO-8859-1\"").as_deref(),
            Some("iso-8859-1")
        );
        assert_eq!(charset_param("text/html"), None);
        let page = b"<html><head><meta charset=\"windows-1252\"></head>caf\xe9 \x93hi\x94";
        assert_eq!(sniff_meta_charset(page).as_deref(), Some("windows-1252"));
        let (text, lossy) = decode(page, None);
        assert!(text.ends_with("café “hi”"), "{text}");
        assert!(!lossy);
        let meta = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">";
        assert_eq!(sniff_meta_charset(meta).as_deref(), Some("utf-8"));
        let (text, lossy) = decode(b"ok \xff bad", Some("utf-8"));
        assert_eq!(text, "ok \u{FFFD} bad");
        assert!(lossy);
    }
}
