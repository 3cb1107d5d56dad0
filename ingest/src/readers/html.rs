//! HTML to text: a single forward scan that follows the HTML5 tokenizer where it decides which
//! bytes are text, without building a DOM.
//!
//! Topic models need the words, not the structure, and a scan keeps WARC ingest fast (it jumps
//! between `<` and `&` with `memchr`). Block-level tags become spaces; inline ones (`<b>`, `<a>`,
//! ...) join their neighbours, so `<b>data</b>base` stays one word. What follows the standard:
//!
//! - Tags are read with the tokenizer's attribute states, so a `>` inside a quoted value does
//!   not end the tag; comments, `<!DOCTYPE>`, `<?...>` and other bogus comments are dropped.
//! - Raw-text elements (`script`, `style`, `noscript`, `iframe`, `noembed`, `noframes`) end only
//!   at `</name` followed by whitespace, `/` or `>`, in any case: `</scriptx>` does not end a
//!   script, `<scriptx>` is no script, and `<script/>` still opens one (in HTML only void
//!   elements self-close). Script content also honours the `<!-- <script> ... </script> -->`
//!   escape states. Their content is dropped; `xmp` is raw text that is kept verbatim.
//! - `title` and `textarea` are RCDATA: no tags inside, references decoded. The title is kept,
//!   the textarea (form input) dropped.
//! - `template`, `select`, `object`, `canvas`, `svg` and `math` are dropped up to their matching
//!   end tag (nested ones counted). `svg`/`math` are foreign content: `<svg/>` self-closes there,
//!   and an HTML element such as `<p>` or `<div>` ends them, as in a browser.
//! - `plaintext` makes the rest of the document text.
//! - Character references follow the standard (see the `entities` submodule): all 2,231 named
//!   ones, legacy names without `;`, numeric ones with windows-1252 fix-ups.

mod entities;

use memchr::{memchr, memchr2};

/// How an element's start tag affects the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Joins its neighbours.
    Inline,
    /// Separates words.
    Block,
    /// Raw text, dropped.
    RawTextHidden,
    /// Raw text, kept verbatim (`xmp`).
    RawTextShown,
    /// RCDATA, kept with references decoded (`title`).
    RcdataShown,
    /// RCDATA, dropped (`textarea`).
    RcdataHidden,
    /// Markup dropped up to the matching end tag.
    Hidden,
    /// Foreign content (`svg`, `math`), dropped up to the matching end tag.
    Foreign,
    /// Everything after the start tag is text.
    Plaintext,
}

/// The [`Kind`] of an element by tag name (any case).
fn kind(name: &[u8]) -> Kind {
    let mut buf = [0u8; 10];
    let Some(lower) = buf.get_mut(..name.len()) else {
        return Kind::Block;
    };
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    match &*lower {
        b"script" | b"style" | b"noscript" | b"iframe" | b"noembed" | b"noframes" => {
            Kind::RawTextHidden
        }
        b"xmp" => Kind::RawTextShown,
        b"title" => Kind::RcdataShown,
        b"textarea" => Kind::RcdataHidden,
        b"template" | b"select" | b"object" | b"canvas" => Kind::Hidden,
        b"svg" | b"math" => Kind::Foreign,
        b"plaintext" => Kind::Plaintext,
        b"a" | b"abbr" | b"b" | b"bdi" | b"bdo" | b"cite" | b"code" | b"data" | b"dfn" | b"em"
        | b"font" | b"i" | b"kbd" | b"mark" | b"q" | b"s" | b"samp" | b"small" | b"span"
        | b"strong" | b"sub" | b"sup" | b"time" | b"tt" | b"u" | b"var" | b"wbr" => Kind::Inline,
        _ => Kind::Block,
    }
}

/// HTML start tags that end foreign content (`svg`, `math`) when they appear inside it.
fn breaks_out_of_foreign(name: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"b",
        b"big",
        b"blockquote",
        b"body",
        b"br",
        b"center",
        b"code",
        b"dd",
        b"div",
        b"dl",
        b"dt",
        b"em",
        b"embed",
        b"h1",
        b"h2",
        b"h3",
        b"h4",
        b"h5",
        b"h6",
        b"head",
        b"hr",
        b"i",
        b"img",
        b"li",
        b"listing",
        b"menu",
        b"meta",
        b"nobr",
        b"ol",
        b"p",
        b"pre",
        b"ruby",
        b"s",
        b"small",
        b"span",
        b"strike",
        b"strong",
        b"sub",
        b"sup",
        b"table",
        b"tt",
        b"u",
        b"ul",
        b"var",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Whitespace as the tokenizer sees it (CR included: the input stream normalises it to LF).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

/// An element being dropped with its content: `name` is `b[name.0..name.1]`.
#[derive(Debug, Clone, Copy)]
struct Hidden {
    name: (usize, usize),
    depth: u32,
    foreign: bool,
}

/// A tag read by [`parse_tag`].
struct Tag {
    /// Tag name, `b[name.0..name.1]`.
    name: (usize, usize),
    /// Ends in `/>`.
    self_closing: bool,
    /// Index after the `>`; the input's length if the tag is unterminated.
    end: usize,
    /// Whether a `>` ended it (an unterminated tag is dropped, as the tokenizer does at EOF).
    closed: bool,
}

/// Reads the tag whose name starts at `from` (just after `<` or `</`), with the tokenizer's tag
/// name and attribute states: quotes count only as attribute values.
fn parse_tag(b: &[u8], from: usize) -> Tag {
    let mut i = from;
    while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let name = (from, i);
    let tag = |end, self_closing, closed| Tag {
        name,
        self_closing,
        end,
        closed,
    };
    loop {
        match b.get(i) {
            None => return tag(b.len(), false, false),
            Some(&c) if is_space(c) => i += 1,
            Some(b'>') => return tag(i + 1, false, true),
            Some(b'/') => {
                if b.get(i + 1) == Some(&b'>') {
                    return tag(i + 2, true, true);
                }
                i += 1;
            }
            Some(_) => {
                // Attribute name (its first character may be `=`), then an optional value.
                i += 1;
                while i < b.len() && !is_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
                    i += 1;
                }
                let mut j = i;
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                if b.get(j) != Some(&b'=') {
                    i = j;
                    continue;
                }
                j += 1;
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                i = match b.get(j) {
                    Some(&q @ (b'"' | b'\'')) => {
                        memchr(q, &b[j + 1..]).map_or(b.len(), |p| j + 1 + p + 1)
                    }
                    _ => {
                        while j < b.len() && !is_space(b[j]) && b[j] != b'>' {
                            j += 1;
                        }
                        j
                    }
                };
            }
        }
    }
}

/// Whether `b[lt..]` is `</name` followed by whitespace, `/` or `>` (`name` in any case).
fn is_end_tag_of(b: &[u8], lt: usize, name: &[u8]) -> bool {
    let after = lt + 2 + name.len();
    b.get(lt + 1) == Some(&b'/')
        && b.get(lt + 2..after)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        && b.get(after)
            .is_some_and(|&c| is_space(c) || c == b'/' || c == b'>')
}

/// Whether `b[lt..]` is `<name` followed by whitespace, `/` or `>`.
fn is_start_tag_of(b: &[u8], lt: usize, name: &[u8]) -> bool {
    let after = lt + 1 + name.len();
    b.get(lt + 1..after)
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
        && b.get(after)
            .is_some_and(|&c| is_space(c) || c == b'/' || c == b'>')
}

/// Index of the `<` of the end tag that closes the raw-text or RCDATA element `name` whose
/// content starts at `from`, or the input's length.
fn raw_text_end(b: &[u8], from: usize, name: &[u8]) -> usize {
    if name.eq_ignore_ascii_case(b"script") {
        return script_end(b, from);
    }
    let mut i = from;
    while let Some(p) = memchr(b'<', &b[i..]) {
        let lt = i + p;
        if is_end_tag_of(b, lt, name) {
            return lt;
        }
        i = lt + 1;
    }
    b.len()
}

/// [`raw_text_end`] for `script`, with the script data states: after `<!--`, a `<script>` starts
/// a "double-escaped" section whose `</script>` does not end the element, until `-->`.
fn script_end(b: &[u8], from: usize) -> usize {
    #[derive(PartialEq)]
    enum State {
        Data,
        Escaped,
        DoubleEscaped,
    }
    let mut state = State::Data;
    let mut i = from;
    while let Some(p) = memchr2(b'<', b'-', &b[i..]) {
        let at = i + p;
        i = at + 1;
        if b[at] == b'-' {
            if state != State::Data && b[at..].starts_with(b"-->") {
                state = State::Data;
                i = at + 3;
            }
            continue;
        }
        match state {
            State::Data if b[at..].starts_with(b"<!--") => {
                state = State::Escaped;
                // `<!-->` closes again at once: look for `-->` from the dashes.
                i = at + 2;
            }
            State::Data | State::Escaped if is_end_tag_of(b, at, b"script") => return at,
            State::Escaped if is_start_tag_of(b, at, b"script") => state = State::DoubleEscaped,
            State::DoubleEscaped if is_end_tag_of(b, at, b"script") => state = State::Escaped,
            _ => {}
        }
    }
    b.len()
}

/// Appends `text` with its character references decoded.
fn push_decoded(text: &str, out: &mut String) {
    let b = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(p) = memchr(b'&', &b[i..]) {
        let amp = i + p;
        out.push_str(&text[start..amp]);
        i = match entities::decode(b, amp, out) {
            Some(end) => end,
            None => {
                out.push('&');
                amp + 1
            }
        };
        start = i;
    }
    out.push_str(&text[start..]);
}

/// Converts an HTML document to its visible text.
pub fn to_text(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut hidden = None;
    let mut i = 0;
    let mut text_start = 0;
    loop {
        let next = if hidden.is_some() {
            memchr(b'<', &b[i..])
        } else {
            memchr2(b'<', b'&', &b[i..])
        };
        let Some(p) = next else { break };
        let at = i + p;
        if hidden.is_none() {
            out.push_str(&html[text_start..at]);
        }
        i = if b[at] == b'&' {
            entities::decode(b, at, &mut out).unwrap_or_else(|| {
                out.push('&');
                at + 1
            })
        } else {
            markup(html, at, &mut out, &mut hidden)
        };
        text_start = i;
    }
    if hidden.is_none() {
        out.push_str(&html[text_start..]);
    }
    out
}

/// Handles the markup at `b[at] == b'<'` and returns the index after it (after the element's
/// content too, for raw-text and RCDATA elements). Text of a shown element goes to `out`.
fn markup(html: &str, at: usize, out: &mut String, hidden: &mut Option<Hidden>) -> usize {
    let b = html.as_bytes();
    let rest = &b[at..];
    let bogus_comment = || memchr(b'>', rest).map_or(b.len(), |p| at + p + 1);
    match rest.get(1) {
        Some(b'!') if rest.starts_with(b"<!--") => {
            // From the dashes, so `<!-->` and `<!--->` are complete (empty) comments.
            memchr::memmem::find(&rest[2..], b"-->").map_or(b.len(), |p| at + 2 + p + 3)
        }
        Some(b'!') if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<![cdata[") => {
            memchr::memmem::find(&rest[9..], b"]]>").map_or(b.len(), |p| at + 9 + p + 3)
        }
        Some(b'!' | b'?') => bogus_comment(),
        Some(b'/') => match rest.get(2) {
            Some(c) if c.is_ascii_alphabetic() => end_tag(b, at, out, hidden),
            Some(b'>') => at + 3,
            Some(_) => bogus_comment(),
            None => {
                if hidden.is_none() {
                    out.push_str("</");
                }
                b.len()
            }
        },
        Some(c) if c.is_ascii_alphabetic() => start_tag(html, at, out, hidden),
        _ => {
            // A `<` that starts no tag ("a < b") is text.
            if hidden.is_none() {
                out.push('<');
            }
            at + 1
        }
    }
}

/// Handles the end tag at `b[at..]` (`</` and a letter).
fn end_tag(b: &[u8], at: usize, out: &mut String, hidden: &mut Option<Hidden>) -> usize {
    let tag = parse_tag(b, at + 2);
    let name = &b[tag.name.0..tag.name.1];
    match hidden {
        Some(h) => {
            if name.eq_ignore_ascii_case(&b[h.name.0..h.name.1]) {
                h.depth -= 1;
                if h.depth == 0 {
                    *hidden = None;
                    out.push(' ');
                }
            }
        }
        None => {
            if kind(name) != Kind::Inline {
                out.push(' ');
            }
        }
    }
    tag.end
}

/// Handles the start tag at `b[at..]` (`<` and a letter).
fn start_tag(html: &str, at: usize, out: &mut String, hidden: &mut Option<Hidden>) -> usize {
    let b = html.as_bytes();
    let tag = parse_tag(b, at + 1);
    if !tag.closed {
        return b.len();
    }
    let name = &b[tag.name.0..tag.name.1];
    let kind = kind(name);
    if let Some(h) = hidden {
        if h.foreign && breaks_out_of_foreign(name) {
            *hidden = None;
        } else {
            if name.eq_ignore_ascii_case(&b[h.name.0..h.name.1]) && !(h.foreign && tag.self_closing)
            {
                h.depth += 1;
            }
            return match kind {
                // Foreign content has no raw-text elements (`<svg><style>` holds markup).
                _ if h.foreign => tag.end,
                Kind::RawTextHidden
                | Kind::RawTextShown
                | Kind::RcdataShown
                | Kind::RcdataHidden => raw_text_end(b, tag.end, name),
                Kind::Plaintext => b.len(),
                _ => tag.end,
            };
        }
    }
    if kind != Kind::Inline {
        out.push(' ');
    }
    match kind {
        Kind::Inline | Kind::Block => tag.end,
        Kind::RawTextHidden | Kind::RcdataHidden => raw_text_end(b, tag.end, name),
        Kind::RawTextShown => {
            let end = raw_text_end(b, tag.end, name);
            out.push_str(&html[tag.end..end]);
            end
        }
        Kind::RcdataShown => {
            let end = raw_text_end(b, tag.end, name);
            push_decoded(&html[tag.end..end], out);
            end
        }
        Kind::Hidden | Kind::Foreign => {
            let foreign = kind == Kind::Foreign;
            if !(foreign && tag.self_closing) {
                *hidden = Some(Hidden {
                    name: tag.name,
                    depth: 1,
                    foreign,
                });
            }
            tag.end
        }
        Kind::Plaintext => {
            out.push_str(&html[tag.end..]);
            b.len()
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
            "</",
            "<p a='",
            "<svg><p",
            "<title>x",
            "<script><!--<script>",
        ] {
            let _ = to_text(html);
        }
        assert_eq!(words("<p>a &unknown; b"), ["a", "&unknown;", "b"]);
        assert_eq!(words("a</"), ["a</"]);
        assert_eq!(words("<title>open title"), ["open", "title"]);
    }

    #[test]
    fn full_entity_table_and_legacy_names() {
        assert_eq!(
            words("caf&eacute; &Eacute;cole fish&amp chips &notin; 1&#150;2 &copy 2024"),
            ["café", "École", "fish&", "chips", "∉", "1–2", "©", "2024"]
        );
    }

    #[test]
    fn script_ends_only_at_its_own_end_tag() {
        // `<script/>` opens a script: in HTML only void elements self-close.
        assert_eq!(words("a<script/>var hidden = 1;</script> b"), ["a", "b"]);
        // `</scriptfoo>` and `</script` without a delimiter do not end it; `</SCRIPT >` does.
        assert_eq!(
            words("a<script>x = '</scriptfoo>'; y = '</script'+'>';</SCRIPT >b"),
            ["a", "b"]
        );
        assert_eq!(words("a<script>s</script/>b"), ["a", "b"]);
        // `<scriptx>` is an unknown element, not a script.
        assert_eq!(words("<scriptx>shown</scriptx>"), ["shown"]);
        // The same rules for style, iframe and noscript.
        assert_eq!(
            words("<style>p{}</stylesheet>{}</style>a<noscript>js</noscript><iframe>f</iframe>"),
            ["a"]
        );
    }

    #[test]
    fn script_escape_states() {
        let html = "a<script><!-- document.write('<script>x()</script>'); --></script>b";
        assert_eq!(words(html), ["a", "b"]);
        // `<!-->` re-enters the plain state at once.
        assert_eq!(words("a<script><!-->x</script>b"), ["a", "b"]);
        // `--` outside an escape is not special.
        assert_eq!(words("a<script>i-->0</script>b"), ["a", "b"]);
    }

    #[test]
    fn rcdata_title_and_textarea() {
        // Tags inside title are text; references are decoded.
        assert_eq!(
            words("<title>Caf&eacute; <b>x</b></title><p>body"),
            ["Café", "<b>x</b>", "body"]
        );
        assert_eq!(
            words("<textarea><p>typed</p></textareax></textarea>after"),
            ["after"]
        );
    }

    #[test]
    fn dropped_elements_nest_and_foreign_content() {
        assert_eq!(
            words("<template>a<template>b</template>c</template>d"),
            ["d"]
        );
        assert_eq!(words("<select><option>x</select>y"), ["y"]);
        // `<svg/>` self-closes in foreign content; `<template/>` does not.
        assert_eq!(words("<svg/>shown"), ["shown"]);
        assert_eq!(words("<template/>hidden</template>x"), ["x"]);
        // Raw text inside a dropped HTML element still ends only at its end tag.
        assert_eq!(
            words("<template><script>'</template>'</script>in</template>out"),
            ["out"]
        );
        // An HTML element ends foreign content, as in a browser.
        assert_eq!(words("<svg><text>label</text><p>para</p>"), ["para"]);
        assert_eq!(words("<math><mi>x</mi></math>y"), ["y"]);
    }

    proptest::proptest! {
        /// Tag soup around every special element never panics, and text without `<` or `&`
        /// comes out unchanged.
        #[test]
        fn tag_soup_never_panics(
            soup in "(<|</|/>|>|<!--|-->|<!|<\\?|<!\\[CDATA\\[|\\]\\]>|(script|SCRIPT|style|title|textarea|svg|math|template|select|xmp|plaintext|noscript|p|b|div)|[ \t\n/='\"]|&|#x?|[0-9a-fA-F]{1,3};?|amp|not|eacute|\\PC)*",
            text in "[^<&]{0,60}",
        ) {
            let _ = to_text(&soup);
            proptest::prop_assert_eq!(to_text(&text), text);
        }
    }

    #[test]
    fn tags_comments_and_text() {
        // Quotes only matter as attribute values: `b"c` is an attribute name.
        assert_eq!(words("<p b\"c>x</p>"), ["x"]);
        assert_eq!(words("<p title='a>b' data-x=y>z"), ["z"]);
        assert_eq!(words("a<!-->b<!--->c<!-- x -- y -->d"), ["abcd"]);
        assert_eq!(words("<!DOCTYPE html><?xml x?>a</>b</ 1>c"), ["abc"]);
        assert_eq!(
            words("x<xmp><b>&amp;</b></xmp>y"),
            ["x", "<b>&amp;</b>", "y"]
        );
        assert_eq!(
            words("a<plaintext></plaintext><b>"),
            ["a", "</plaintext><b>"]
        );
        assert_eq!(words("<my-element>custom</my-element>"), ["custom"]);
    }
}
