//! Issue 11, "Text right": web pages in legacy encodings, HTML character references and raw-text
//! elements, end to end. Each page is a response record of a WARC file written here; the real
//! pipeline (`ingest::run`) turns it into a corpus, whose documents are read back as terms.
//!
//! The encoded pages are byte literals made by an encoder other than the one under test, with the
//! text they hold beside them; the analyzer is the `none` preset (no stemming, no stop words), so
//! the words come back exactly, only lower-cased.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use std::collections::BTreeMap;
use std::io::Write;

use datasets::Corpus;
use ingest::readers::html;
use ingest::{AnalyzerConfig, IngestOptions, ParquetColumns, Preset, Progress, VocabularyFilter};

/// One HTTP response: the URL, the `Content-Type` header and the body bytes.
type Page<'a> = (&'a str, &'a str, &'a [u8]);

fn warc(pages: &[Page]) -> Vec<u8> {
    let mut out = Vec::new();
    for (url, content_type, body) in pages {
        let mut http = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        http.extend_from_slice(body);
        write!(
            out,
            "WARC/1.0\r\nWARC-Type: response\r\nContent-Type: application/http; msgtype=response\r\n\
             WARC-Target-URI: {url}\r\nContent-Length: {}\r\n\r\n",
            http.len()
        )
        .unwrap();
        out.extend_from_slice(&http);
        out.extend_from_slice(b"\r\n\r\n");
    }
    out
}

/// Runs the pipeline over `pages` and returns each document's terms by URL.
fn ingest(pages: &[Page]) -> BTreeMap<String, Vec<String>> {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("pages.warc");
    std::fs::write(&input, warc(pages)).unwrap();
    let out = tmp.path().join("corpus");
    let options = IngestOptions {
        inputs: vec![input.display().to_string()],
        format: None,
        parquet: ParquetColumns {
            text: "text".into(),
            id: None,
        },
        analyzer: AnalyzerConfig::preset(Preset::None),
        filter: VocabularyFilter::default(),
        threads: 2,
        strict: false,
        max_doc_tokens: ingest::pipeline::DEFAULT_MAX_DOC_TOKENS,
        out_dir: out.clone(),
    };
    ingest::run(&options, &Progress::default()).unwrap();
    let corpus = Corpus::open(&out).unwrap();
    let vocab = corpus.vocabulary().unwrap();
    corpus
        .documents()
        .unwrap()
        .map(|d| {
            let d = d.unwrap();
            let terms = d.tokens.iter().map(|&t| vocab.term(t).unwrap().to_owned());
            (d.id, terms.collect())
        })
        .collect()
}

fn terms<'a>(docs: &'a BTreeMap<String, Vec<String>>, url: &str) -> Vec<&'a str> {
    docs.get(url)
        .unwrap_or_else(|| panic!("no document {url} in {docs:?}"))
        .iter()
        .map(String::as_str)
        .collect()
}

/// "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация южных
/// губерний даст мощный толчок подъёму сельского хозяйства." in windows-1251.
const RUSSIAN_CP1251: &[u8] = b"<p>\xd1\xfa\xe5\xf8\xfc \xe6\xe5 \xe5\xf9\xb8 \xfd\xf2\xe8\xf5 \
    \xec\xff\xe3\xea\xe8\xf5 \xf4\xf0\xe0\xed\xf6\xf3\xe7\xf1\xea\xe8\xf5 \xe1\xf3\xeb\xee\xea, \
    \xe4\xe0 \xe2\xfb\xef\xe5\xe9 \xf7\xe0\xfe. \xd8\xe8\xf0\xee\xea\xe0\xff \
    \xfd\xeb\xe5\xea\xf2\xf0\xe8\xf4\xe8\xea\xe0\xf6\xe8\xff \xfe\xe6\xed\xfb\xf5 \
    \xe3\xf3\xe1\xe5\xf0\xed\xe8\xe9 \xe4\xe0\xf1\xf2 \xec\xee\xf9\xed\xfb\xe9 \
    \xf2\xee\xeb\xf7\xee\xea \xef\xee\xe4\xfa\xb8\xec\xf3 \xf1\xe5\xeb\xfc\xf1\xea\xee\xe3\xee \
    \xf5\xee\xe7\xff\xe9\xf1\xf2\xe2\xe0.</p>";

#[test]
fn legacy_encodings_declared_by_header_meta_or_bom() {
    let docs = ingest(&[
        // <meta charset="Shift_JIS"><title>日本語</title> ... <p>東京 の 天気</p>
        (
            "http://example.jp/sjis",
            "text/html",
            b"<html><head><meta charset=\"Shift_JIS\"><title>\x93\xfa\x96{\x8c\xea</title></head>\
              <body><p>\x93\x8c\x8b\x9e \x82\xcc \x93V\x8bC</p></body></html>",
        ),
        // <p>中文 网页 测试</p>, GBK declared by HTTP.
        (
            "http://example.cn/gbk",
            "text/html; charset=GBK",
            b"<p>\xd6\xd0\xce\xc4 \xcd\xf8\xd2\xb3 \xb2\xe2\xca\xd4</p>",
        ),
        // <p>Привет мир</p>, windows-1251 declared by HTTP.
        (
            "http://example.ru/cp1251",
            "text/html; charset=windows-1251",
            b"<p>\xcf\xf0\xe8\xe2\xe5\xf2 \xec\xe8\xf0</p>",
        ),
        // <p>Łódź Kraków Gdańsk</p>, ISO-8859-2 declared by <meta http-equiv>.
        (
            "http://example.pl/latin2",
            "text/html",
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-2\">\
              <p>\xa3\xf3d\xbc Krak\xf3w Gda\xf1sk</p>",
        ),
        // <p>Ёлка зима</p> in UTF-16LE with a BOM, which wins over the header's label.
        (
            "http://example.ru/utf16",
            "text/html; charset=iso-8859-1",
            b"\xff\xfe<\x00p\x00>\x00\x01\x04;\x04:\x040\x04 \x007\x048\x04<\x040\x04<\x00/\x00p\x00>\x00",
        ),
        // <p>café naïve</p>, labelled with the WHATWG alias `iso_8859-1`.
        (
            "http://example.fr/alias",
            "text/html; charset=iso_8859-1",
            b"<p>caf\xe9 na\xefve</p>",
        ),
        // "Ёлка зима" as text/plain in KOI8-R.
        (
            "http://example.ru/koi8.txt",
            "text/plain; charset=koi8-r",
            b"\xb3\xcc\xcb\xc1 \xda\xc9\xcd\xc1",
        ),
    ]);
    assert_eq!(
        terms(&docs, "http://example.jp/sjis"),
        ["日本語", "東京", "の", "天気"]
    );
    assert_eq!(
        terms(&docs, "http://example.cn/gbk"),
        ["中文", "网页", "测试"]
    );
    assert_eq!(terms(&docs, "http://example.ru/cp1251"), ["привет", "мир"]);
    assert_eq!(
        terms(&docs, "http://example.pl/latin2"),
        ["łódź", "kraków", "gdańsk"]
    );
    assert_eq!(terms(&docs, "http://example.ru/utf16"), ["ёлка", "зима"]);
    assert_eq!(terms(&docs, "http://example.fr/alias"), ["café", "naïve"]);
    assert_eq!(terms(&docs, "http://example.ru/koi8.txt"), ["ёлка", "зима"]);
}

#[test]
fn undeclared_windows_1251_page_is_detected() {
    let docs = ingest(&[("http://example.com/ru", "text/html", RUSSIAN_CP1251)]);
    let want = "съешь же ещё этих мягких французских булок да выпей чаю широкая электрификация \
                южных губерний даст мощный толчок подъёму сельского хозяйства";
    assert_eq!(
        terms(&docs, "http://example.com/ru"),
        want.split_whitespace().collect::<Vec<_>>()
    );
}

#[test]
fn character_references_and_raw_text() {
    let entities = "<p>caf&eacute; &Eacute;cole fish&amp chips &notin; 1990&#150;1999 \
                    AT&amp;T &copy 2024</p>";
    assert_eq!(
        html::to_text(entities).trim(),
        "café École fish& chips ∉ 1990–1999 AT&T © 2024"
    );
    let docs = ingest(&[
        (
            "http://example.fr/entities",
            "text/html; charset=utf-8",
            entities.as_bytes(),
        ),
        (
            "http://example.com/script-self-closing",
            "text/html",
            b"<p>before</p><script src=\"a.js\"/>var hiddenword = 1;</script><p>after</p>",
        ),
        (
            "http://example.com/script-end",
            "text/html",
            b"<script>s = \"</scriptfoo>\"; secretword();</script ><p>visible</p>",
        ),
    ]);
    assert_eq!(
        terms(&docs, "http://example.fr/entities"),
        [
            "café", "école", "fish", "chips", "1990", "1999", "at", "t", "2024"
        ]
    );
    assert_eq!(
        terms(&docs, "http://example.com/script-self-closing"),
        ["before", "after"]
    );
    assert_eq!(terms(&docs, "http://example.com/script-end"), ["visible"]);
}
