//! Bytes to text for web pages, choosing the encoding as browsers do (the WHATWG Encoding and
//! HTML standards) and decoding with `encoding_rs`, which implements every encoding of the
//! Encoding Standard (UTF-8, UTF-16, the windows-125x and ISO-8859 families, KOI8, Shift_JIS,
//! EUC-JP, ISO-2022-JP, GBK, gb18030, Big5, EUC-KR, ...). In order, the first that applies wins:
//!
//! 1. a byte-order mark (UTF-8, UTF-16LE, UTF-16BE), over any declaration;
//! 2. the declared label (the HTTP `Content-Type` charset), resolved with
//!    `Encoding::for_label`, so every WHATWG label works (`latin1`, `iso_8859-1`, `sjis`,
//!    `x-gbk`, `cp1251`, ...);
//! 3. a `<meta charset>` or `<meta http-equiv="Content-Type" content="...charset=...">` found by
//!    the HTML "prescan" of the first 4 KiB (the standard says at least 1024 bytes); there a
//!    `utf-16*` label means UTF-8 (the bytes that carry the tag are ASCII) and
//!    `x-user-defined` means windows-1252;
//! 4. bytes that are valid UTF-8 (a sequence cut off at the very end, as in a truncated WARC
//!    record, included) are UTF-8;
//! 5. otherwise `chardetng` (Firefox's detector) guesses from the bytes, helped by the
//!    top-level domain of the page's URL when [`decode_for_url`] is given one.
//!
//! An unknown label, and the `replacement` encoding (ISO-2022-KR, HZ-GB-2312, ...) which
//! browsers use to blank such pages, count as no declaration, so the page is sniffed rather than
//! lost. Bytes that are invalid in the chosen encoding become U+FFFD.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, REPLACEMENT, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252, X_USER_DEFINED};

/// How many leading bytes the `<meta>` prescan looks at.
const PRESCAN_BYTES: usize = 4096;

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

/// The encoding a `<meta>` tag in the first 4 KiB declares, found by the HTML standard's prescan
/// (comments and other tags skipped, attributes parsed, unknown labels passed over), as the
/// encoding's lower-case name (`windows-1252` for `<meta charset="latin1">`).
pub fn sniff_meta_charset(bytes: &[u8]) -> Option<String> {
    prescan(bytes).map(|e| e.name().to_ascii_lowercase())
}

/// Decodes a page. Returns the text and whether any byte had to be replaced.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> (String, bool) {
    decode_with_tld(bytes, declared, None)
}

/// [`decode`] for a page fetched from `url`, whose top-level domain helps `chardetng` guess
/// the encoding of an undeclared legacy page (`.ru` favours Cyrillic encodings, and so on).
pub fn decode_for_url(bytes: &[u8], declared: Option<&str>, url: &str) -> (String, bool) {
    let tld = top_level_domain(url);
    decode_with_tld(bytes, declared, tld.as_deref())
}

/// [`decode_for_url`] taking the bytes by value: a page that is valid UTF-8 becomes the text
/// without a copy (most of the web), which matters on the WARC hot path.
pub fn decode_owned_for_url(bytes: Vec<u8>, declared: Option<&str>, url: &str) -> (String, bool) {
    let tld = top_level_domain(url);
    let (encoding, bom) = pick(&bytes, declared, tld.as_deref());
    if encoding == UTF_8 && bom == 0 {
        return match String::from_utf8(bytes) {
            Ok(text) => (text, false),
            Err(e) => {
                let (text, had_errors) = UTF_8.decode_without_bom_handling(e.as_bytes());
                (text.into_owned(), had_errors)
            }
        };
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
    (text.into_owned(), had_errors)
}

fn decode_with_tld(bytes: &[u8], declared: Option<&str>, tld: Option<&[u8]>) -> (String, bool) {
    let (encoding, bom) = pick(bytes, declared, tld);
    let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
    (text.into_owned(), had_errors)
}

/// The page's encoding and the length of its byte-order mark (a BOM wins over declarations).
fn pick(bytes: &[u8], declared: Option<&str>, tld: Option<&[u8]>) -> (&'static Encoding, usize) {
    Encoding::for_bom(bytes).unwrap_or_else(|| (choose(bytes, declared, tld), 0))
}

/// Steps 2–5 of the module docs, for bytes without a byte-order mark.
fn choose(bytes: &[u8], declared: Option<&str>, tld: Option<&[u8]>) -> &'static Encoding {
    if let Some(encoding) = declared.and_then(|l| usable(Encoding::for_label(l.as_bytes()))) {
        return encoding;
    }
    if let Some(encoding) = prescan(bytes) {
        return encoding;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => return UTF_8,
        Err(e) if e.error_len().is_none() => return UTF_8,
        Err(_) => {}
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    detector.guess(tld, Utf8Detection::Allow)
}

/// `None` for a failed lookup and for the `replacement` encoding.
fn usable(encoding: Option<&'static Encoding>) -> Option<&'static Encoding> {
    encoding.filter(|&e| e != REPLACEMENT)
}

/// The encoding that a `<meta>` tag, as a page's HTML prescan finds it, makes the page use.
fn prescan(bytes: &[u8]) -> Option<&'static Encoding> {
    let encoding = Prescan::new(&bytes[..bytes.len().min(PRESCAN_BYTES)]).run()?;
    Some(if encoding == UTF_16BE || encoding == UTF_16LE {
        UTF_8
    } else if encoding == X_USER_DEFINED {
        WINDOWS_1252
    } else {
        encoding
    })
}

/// The lower-case last label of `url`'s host (`ru` for `http://Example.RU:80/x`), if it is a
/// plausible DNS label (ASCII letters, digits and `-`; not an IP address).
fn top_level_domain(url: &str) -> Option<Vec<u8>> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.trim_end_matches('.');
    let label = host.rsplit('.').next()?;
    let plausible = !label.is_empty()
        && label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !label.bytes().all(|c| c.is_ascii_digit());
    plausible.then(|| label.to_ascii_lowercase().into_bytes())
}

/// The HTML standard's "prescan a byte stream to determine its encoding", over a prefix.
struct Prescan<'a> {
    b: &'a [u8],
    i: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl<'a> Prescan<'a> {
    fn new(b: &'a [u8]) -> Self {
        Prescan { b, i: 0 }
    }

    fn starts_with_ci(&self, s: &[u8]) -> bool {
        self.b
            .get(self.i..self.i + s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    }

    /// Moves past the next `>` (or to the end).
    fn skip_past(&mut self, needle: &[u8]) {
        match memchr::memmem::find(&self.b[self.i..], needle) {
            Some(p) => self.i += p + needle.len(),
            None => self.i = self.b.len(),
        }
    }

    fn run(mut self) -> Option<&'static Encoding> {
        while self.i < self.b.len() {
            if self.b[self.i] != b'<' {
                self.i += 1;
            } else if self.starts_with_ci(b"<!--") {
                // From the dashes, so `<!-->` ends at once.
                self.i += 2;
                self.skip_past(b"-->");
            } else if self.starts_with_ci(b"<meta")
                && self
                    .b
                    .get(self.i + 5)
                    .is_some_and(|&c| is_space(c) || c == b'/')
            {
                self.i += 5;
                if let Some(encoding) = self.meta() {
                    return Some(encoding);
                }
            } else if self.b.get(self.i + 1).is_some_and(u8::is_ascii_alphabetic)
                || (self.b.get(self.i + 1) == Some(&b'/')
                    && self.b.get(self.i + 2).is_some_and(u8::is_ascii_alphabetic))
            {
                // Another tag: skip its name and attributes.
                while self.i < self.b.len() && !is_space(self.b[self.i]) && self.b[self.i] != b'>' {
                    self.i += 1;
                }
                while self.attribute().is_some() {}
            } else if matches!(self.b.get(self.i + 1), Some(b'!' | b'/' | b'?')) {
                self.skip_past(b">");
            } else {
                self.i += 1;
            }
        }
        None
    }

    /// The attributes of a `<meta` tag (from after its name): the encoding it declares, if any.
    fn meta(&mut self) -> Option<&'static Encoding> {
        let mut seen_http_equiv = false;
        let mut seen_content = false;
        let mut seen_charset = false;
        let mut got_pragma = false;
        // `Some(true)` once a `content` gave the charset, `Some(false)` for a `charset`.
        let mut need_pragma = None;
        let mut charset = None;
        while let Some((name, value)) = self.attribute() {
            match name.as_slice() {
                b"http-equiv" if !seen_http_equiv => {
                    seen_http_equiv = true;
                    got_pragma |= value.eq_ignore_ascii_case(b"content-type");
                }
                b"content" if !seen_content => {
                    seen_content = true;
                    // Only a known label counts here (an unknown `charset` attribute does).
                    let found = charset_in_content(&value).and_then(Encoding::for_label);
                    if charset.is_none() && found.is_some() {
                        charset = Some(found);
                        need_pragma = Some(true);
                    }
                }
                b"charset" if !seen_charset => {
                    seen_charset = true;
                    charset = Some(Encoding::for_label(&value));
                    need_pragma = Some(false);
                }
                _ => {}
            }
        }
        match need_pragma {
            None => None,
            Some(true) if !got_pragma => None,
            _ => usable(charset.flatten()),
        }
    }

    /// "Get an attribute": the next attribute's lower-case name and its value, or `None` at the
    /// tag's `>` (which it consumes) or the end of the input.
    fn attribute(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let b = self.b;
        while self.i < b.len() && (is_space(b[self.i]) || b[self.i] == b'/') {
            self.i += 1;
        }
        if self.i >= b.len() || b[self.i] == b'>' {
            self.i += 1;
            return None;
        }
        let mut name = Vec::new();
        let mut value = Vec::new();
        // The name (its first byte may be `=`), up to `=`, `/`, `>` or whitespace.
        loop {
            let &c = b.get(self.i)?;
            if c == b'=' && !name.is_empty() {
                break;
            }
            if is_space(c) {
                while self.i < b.len() && is_space(b[self.i]) {
                    self.i += 1;
                }
                if b.get(self.i) != Some(&b'=') {
                    return Some((name, value));
                }
                break;
            }
            if c == b'/' || c == b'>' {
                return Some((name, value));
            }
            name.push(c.to_ascii_lowercase());
            self.i += 1;
        }
        // At `=`: the value, quoted or not.
        self.i += 1;
        while self.i < b.len() && is_space(b[self.i]) {
            self.i += 1;
        }
        match b.get(self.i) {
            None => return None,
            Some(&q @ (b'"' | b'\'')) => {
                self.i += 1;
                let end = memchr::memchr(q, &b[self.i..])?;
                value.extend(b[self.i..self.i + end].iter().map(u8::to_ascii_lowercase));
                self.i += end + 1;
            }
            Some(b'>') => {}
            Some(_) => {
                while self.i < b.len() && !is_space(b[self.i]) && b[self.i] != b'>' {
                    value.push(b[self.i].to_ascii_lowercase());
                    self.i += 1;
                }
            }
        }
        Some((name, value))
    }
}

/// "Extract a character encoding from a meta element": the label after `charset=` in a
/// `content` attribute (`text/html; charset=koi8-r`), already lower case.
fn charset_in_content(content: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    loop {
        let p = memchr::memmem::find(&content[at..], b"charset")?;
        let mut i = at + p + 7;
        while i < content.len() && is_space(content[i]) {
            i += 1;
        }
        if content.get(i) != Some(&b'=') {
            at = i;
            continue;
        }
        i += 1;
        while i < content.len() && is_space(content[i]) {
            i += 1;
        }
        return match content.get(i)? {
            &q @ (b'"' | b'\'') => {
                let end = memchr::memchr(q, &content[i + 1..])?;
                Some(&content[i + 1..i + 1 + end])
            }
            _ => {
                let end = content[i..]
                    .iter()
                    .position(|&c| is_space(c) || c == b';')
                    .map_or(content.len(), |p| i + p);
                Some(&content[i..end])
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(html: &str) -> Option<String> {
        sniff_meta_charset(html.as_bytes())
    }

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

    #[test]
    fn every_whatwg_label() {
        // `iso_8859-1` is a WHATWG label of windows-1252, as are `latin1` and `l1`.
        for label in ["iso_8859-1", "latin1", "l1", "ISO-8859-1", " cp1252 "] {
            assert_eq!(
                decode(b"caf\xe9", Some(label)),
                ("café".into(), false),
                "{label}"
            );
        }
        // "Привет" in windows-1251 and KOI8-R, "Łódź" in ISO-8859-2, "日本" in Shift_JIS.
        let cases: [(&[u8], &str, &str); 5] = [
            (b"\xcf\xf0\xe8\xe2\xe5\xf2", "cp1251", "Привет"),
            (b"\xf0\xd2\xc9\xd7\xc5\xd4", "koi8-r", "Привет"),
            (b"\xa3\xf3d\xbc", "iso-8859-2", "Łódź"),
            (b"\x93\xfa\x96{", "sjis", "日本"),
            (b"\xc4\xe3\xba\xc3", "x-gbk", "你好"),
        ];
        for (bytes, label, want) in cases {
            assert_eq!(decode(bytes, Some(label)), (want.into(), false), "{label}");
        }
    }

    #[test]
    fn unknown_and_replacement_labels_fall_back_to_sniffing() {
        let page = "<meta charset=utf-8>naïve".as_bytes();
        assert_eq!(
            decode(page, Some("no-such-charset")).0,
            "<meta charset=utf-8>naïve"
        );
        assert_eq!(decode("naïve".as_bytes(), Some("iso-2022-kr")).0, "naïve");
        // An unknown label in a meta tag is passed over for the next one.
        assert_eq!(
            meta("<meta charset=bogus><meta charset=koi8-r>").as_deref(),
            Some("koi8-r")
        );
    }

    #[test]
    fn byte_order_mark_wins() {
        let mut utf16le = vec![0xFF, 0xFE];
        utf16le.extend("Ёлка".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            decode(&utf16le, Some("windows-1252")),
            ("Ёлка".into(), false)
        );
        let mut utf16be = vec![0xFE, 0xFF];
        utf16be.extend("Ёлка".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&utf16be, None), ("Ёлка".into(), false));
        let utf8 = b"\xEF\xBB\xBF<meta charset=windows-1251>\xd0\x81";
        assert_eq!(decode(utf8, None).0, "<meta charset=windows-1251>Ё");
    }

    #[test]
    fn meta_prescan_follows_the_standard() {
        // `utf-16` in a meta tag means UTF-8; x-user-defined means windows-1252.
        assert_eq!(
            meta("<meta charset=\"utf-16le\">").as_deref(),
            Some("utf-8")
        );
        assert_eq!(
            meta("<meta charset=x-user-defined>").as_deref(),
            Some("windows-1252")
        );
        // `content` counts only with `http-equiv="content-type"`, in any order.
        assert_eq!(
            meta("<meta content='text/html; charset = \"KOI8-R\"' http-equiv=Content-Type>")
                .as_deref(),
            Some("koi8-r")
        );
        assert_eq!(meta("<meta content=\"text/html; charset=koi8-r\">"), None);
        // Comments, other tags' attribute values, and `<metadata>` are not meta tags.
        assert_eq!(
            meta(
                "<!-- <meta charset=koi8-r> --><p title='<meta charset=koi8-r>'><metadata charset=koi8-r>"
            ),
            None
        );
        assert_eq!(
            meta("<META\nCHARSET=Shift_JIS>").as_deref(),
            Some("shift_jis")
        );
        // Only the first 4 KiB are scanned.
        let late = format!("{}<meta charset=koi8-r>", " ".repeat(PRESCAN_BYTES));
        assert_eq!(meta(&late), None);
        for truncated in [
            "<meta charset=",
            "<meta charset='koi8",
            "<meta ",
            "<p a='",
            "<!--",
        ] {
            assert_eq!(meta(truncated), None, "{truncated}");
        }
    }

    #[test]
    fn undeclared_pages_are_detected() {
        let russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. \
                       Широкая электрификация южных губерний даст мощный толчок подъёму \
                       сельского хозяйства.";
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(russian);
        assert_eq!(decode(&cp1251, None), (russian.into(), false));
        let (koi8, _, _) = encoding_rs::KOI8_R.encode(russian);
        assert_eq!(decode_for_url(&koi8, None, "http://example.ru/").0, russian);
        // Valid UTF-8, even cut inside the last character, is UTF-8.
        let utf8 = "naïve café".as_bytes();
        assert_eq!(decode(utf8, None).0, "naïve café");
        assert_eq!(
            decode(&utf8[..utf8.len() - 1], None),
            ("naïve caf\u{FFFD}".into(), true)
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes, meta-like markup, labels and URLs never panic (chardetng panics on
        /// a TLD with a `.` or upper case, so the URL's label must be cleaned).
        #[test]
        fn arbitrary_input_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            markup in "(<meta |<META/|<!--|-->|<p |</|charset|=|content=|http-equiv=\"content-type\"|[\"' ;/>\t]|utf-16|koi8-r|x-user-defined|[a-z0-9-]{1,6}|\\PC)*",
            label in "\\PC{0,12}",
            url in "\\PC{0,30}",
        ) {
            let _ = decode(&bytes, None);
            let _ = decode(markup.as_bytes(), Some(&label));
            let _ = decode_for_url(&bytes, Some(&label), &url);
            let _ = decode_for_url(markup.as_bytes(), None, &url);
            let _ = sniff_meta_charset(markup.as_bytes());
            let _ = charset_in_content(markup.as_bytes());
        }
    }

    #[test]
    fn top_level_domains() {
        let tld = |u: &str| top_level_domain(u).map(|t| String::from_utf8(t).unwrap_or_default());
        assert_eq!(tld("http://www.Example.RU:8080/a?b").as_deref(), Some("ru"));
        assert_eq!(tld("https://user@host.co.jp./").as_deref(), Some("jp"));
        assert_eq!(tld("http://127.0.0.1/"), None);
        assert_eq!(tld("http://[::1]/"), None);
        assert_eq!(tld("http://xn--p1ai/").as_deref(), Some("xn--p1ai"));
    }
}
