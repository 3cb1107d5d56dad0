//! HTML to text: a single forward scan that drops tags, comments and the content of non-content
//! elements (script, style, noscript, template, svg, ...), and decodes character references.
//!
//! It does not build a DOM: topic models need the words, not the structure, and a scan keeps
//! WARC ingest fast. Block-level tags become spaces; inline ones (`<b>`, `<a>`, ...) join their
//! neighbours, so `<b>data</b>base` stays one word.

/// Elements whose whole content is dropped.
const SKIP_CONTENT: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
    "select", "textarea",
];

/// Elements that do not separate words.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "tt", "u", "var",
    "wbr",
];

/// Case-insensitive search for an ASCII `needle` in `hay` from `from`.
fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len())
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// End (index after `>`) of the tag starting at `start`, honouring quoted attribute values.
fn tag_end(b: &[u8], start: usize) -> usize {
    let mut quote = None;
    let mut i = start;
    while i < b.len() {
        match (quote, b[i]) {
            (None, b'"' | b'\'') => quote = Some(b[i]),
            (Some(q), c) if c == q => quote = None,
            (None, b'>') => return i + 1,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Converts an HTML document to its visible text.
pub fn to_text(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                out.push_str(&html[text_start..i]);
                i = skip_markup(b, i, &mut out);
                text_start = i;
            }
            b'&' => {
                out.push_str(&html[text_start..i]);
                i = decode_reference(html, i, &mut out);
                text_start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&html[text_start.min(b.len())..]);
    out
}

/// Skips the markup at `b[start] == b'<'`; returns the index after it (after the element's
/// content too, for `SKIP_CONTENT` elements).
fn skip_markup(b: &[u8], start: usize, out: &mut String) -> usize {
    let rest = &b[start..];
    if rest.starts_with(b"<!--") {
        return find_ci(b, start + 4, b"-->").map_or(b.len(), |e| e + 3);
    }
    if rest.len() > 9 && rest[..9].eq_ignore_ascii_case(b"<![cdata[") {
        return find_ci(b, start + 9, b"]]>").map_or(b.len(), |e| e + 3);
    }
    let name_start = start + 1 + usize::from(rest.get(1) == Some(&b'/'));
    let name_end = (name_start..b.len())
        .find(|&j| !b[j].is_ascii_alphanumeric())
        .unwrap_or(b.len());
    if name_end == name_start && !matches!(rest.get(1), Some(b'!' | b'?' | b'/')) {
        // A lone '<' in text ("a < b"): keep it as text.
        out.push('<');
        return start + 1;
    }
    let name = &b[name_start..name_end];
    let end = tag_end(b, name_end);
    let closing = rest.get(1) == Some(&b'/');
    let self_closing = end >= 2 && b[end - 2] == b'/';
    if !closing
        && !self_closing
        && SKIP_CONTENT
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
    {
        let mut close = Vec::with_capacity(name.len() + 2);
        close.extend_from_slice(b"</");
        close.extend_from_slice(name);
        out.push(' ');
        return find_ci(b, end, &close).map_or(b.len(), |e| tag_end(b, e));
    }
    if !INLINE
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
    {
        out.push(' ');
    }
    end
}

/// Decodes the character reference at `s[start] == '&'`; returns the index after it. Unknown
/// references are kept verbatim.
fn decode_reference(s: &str, start: usize, out: &mut String) -> usize {
    let b = s.as_bytes();
    let limit = (start + 12).min(b.len());
    let Some(semi) = (start + 1..limit).find(|&j| b[j] == b';') else {
        out.push('&');
        return start + 1;
    };
    let name = &s[start + 1..semi];
    let decoded = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse().ok(),
        };
        code.and_then(char::from_u32)
    } else {
        match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "mdash" => Some('—'),
            "ndash" => Some('–'),
            "hellip" => Some('…'),
            "copy" => Some('©'),
            "reg" => Some('®'),
            "lsquo" => Some('‘'),
            "rsquo" => Some('’'),
            "ldquo" => Some('“'),
            "rdquo" => Some('”'),
            _ => None,
        }
    };
    match decoded {
        Some(c) => {
            out.push(c);
            semi + 1
        }
        None => {
            out.push('&');
            start + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_text;

    fn words(html: &str) -> Vec<String> {
        to_text(html)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn drops_non_content_and_decodes_references() {
        let html = r#"<html><head><title>T&amp;C</title><style>p{color:red}</style>
            <script type="text/javascript">var x = "</p>";</script></head>
            <body><!-- hidden --><p class="a>b">Data<b>base</b> &lt;ok&gt; caf&#233; &#x41;</p>
            <noscript>enable js</noscript><SCRIPT>alert(1)</SCRIPT>end 1 < 2</body></html>"#;
        assert_eq!(
            words(html),
            ["T&C", "Database", "<ok>", "café", "A", "end", "1", "<", "2"]
        );
    }

    #[test]
    fn survives_truncated_markup() {
        for html in [
            "<p>text<scr",
            "<script>never closed",
            "<!-- open",
            "&#xZZ; &",
            "<",
        ] {
            let _ = to_text(html);
        }
        assert_eq!(words("<p>a &unknown; b"), ["a", "&unknown;", "b"]);
    }
}
