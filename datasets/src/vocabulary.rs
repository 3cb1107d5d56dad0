//! The vocabulary of a corpus: `vocab.tsv`, header-less lines
//! `id<TAB>term<TAB>count<TAB>docs[<TAB>surface]`.
//!
//! `surface` (optional, written when known) is the term's most frequent form in the text before
//! stemming (`peac` → `peace`), for display. Terms and surface forms are escaped: a backslash,
//! tab, newline or carriage return inside one is written `\\`, `\t`, `\n`, `\r`.
//!
//! Ids are dense from 0 and ordered by descending count (ties by term), so frequent words get small
//! ids: the sampler and the parameter-server partitioner rely on it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use crate::DatasetsError;

/// File name of the vocabulary inside a corpus directory.
pub const VOCAB_FILE: &str = "vocab.tsv";

/// One vocabulary entry before ids are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermStats {
    pub term: String,
    /// Occurrences over the whole corpus.
    pub count: u64,
    /// Number of documents containing the term.
    pub docs: u64,
}

/// Terms by id with their corpus and document frequencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    terms: Vec<String>,
    counts: Vec<u64>,
    docs: Vec<u64>,
    /// Display forms by id, or empty when unknown.
    surfaces: Vec<String>,
}

/// Escapes a `vocab.tsv` field (see the module documentation).
fn escape(field: &str) -> std::borrow::Cow<'_, str> {
    if !field.contains(['\\', '\t', '\n', '\r']) {
        return field.into();
    }
    let mut out = String::with_capacity(field.len() + 2);
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.into()
}

/// Undoes [`escape`]; `None` on an unknown escape.
fn unescape(field: &str) -> Option<String> {
    if !field.contains('\\') {
        return Some(field.to_owned());
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

impl Vocabulary {
    /// Builds a vocabulary whose ids follow the given order exactly (entry `i` gets id `i`).
    pub fn from_ordered(entries: Vec<TermStats>) -> Vocabulary {
        let mut vocab = Vocabulary::default();
        for e in entries {
            vocab.terms.push(e.term);
            vocab.counts.push(e.count);
            vocab.docs.push(e.docs);
        }
        vocab
    }

    /// Sets the display forms by id (an empty string means none is known; forms beyond the
    /// vocabulary's size are ignored, missing ones are empty).
    pub fn with_surfaces(mut self, mut surfaces: Vec<String>) -> Vocabulary {
        surfaces.resize(self.terms.len(), String::new());
        self.surfaces = surfaces;
        self
    }

    /// The display form of `id`: its most frequent surface form if known, else the term.
    pub fn display(&self, id: u32) -> Option<&str> {
        match self.surfaces.get(id as usize) {
            Some(s) if !s.is_empty() => Some(s),
            _ => self.term(id),
        }
    }

    /// Display forms of every id (see [`Vocabulary::display`]).
    pub fn display_terms(&self) -> Vec<&str> {
        (0..self.len() as u32)
            .filter_map(|i| self.display(i))
            .collect()
    }

    /// Whether surface forms are recorded.
    pub fn has_surfaces(&self) -> bool {
        !self.surfaces.is_empty()
    }

    /// Builds a vocabulary with ids by descending count, ties broken by term (deterministic).
    pub fn ranked(mut entries: Vec<TermStats>) -> Vocabulary {
        sort_by_rank(&mut entries);
        Self::from_ordered(entries)
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The term of `id`, if in range.
    pub fn term(&self, id: u32) -> Option<&str> {
        self.terms.get(id as usize).map(String::as_str)
    }

    /// Occurrences of `id` over the corpus.
    pub fn count(&self, id: u32) -> Option<u64> {
        self.counts.get(id as usize).copied()
    }

    /// Number of documents containing `id`.
    pub fn docs(&self, id: u32) -> Option<u64> {
        self.docs.get(id as usize).copied()
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn doc_counts(&self) -> &[u64] {
        &self.docs
    }

    /// Sum of all counts (equals the corpus token count when the vocabulary was counted from it).
    pub fn total_count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// A term → id map (built on demand: readers that only need id → term do not pay for it).
    pub fn index(&self) -> HashMap<&str, u32> {
        self.terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect()
    }

    /// Whether ids are ordered by descending count with ties broken by term.
    pub fn is_ranked(&self) -> bool {
        (1..self.len()).all(|i| {
            let (a, b) = (i - 1, i);
            self.counts[a] > self.counts[b]
                || (self.counts[a] == self.counts[b] && self.terms[a] <= self.terms[b])
        })
    }

    /// Writes `vocab.tsv` to `path`.
    pub fn write_tsv(&self, path: &Path) -> Result<(), DatasetsError> {
        let file = File::create(path).map_err(|e| DatasetsError::io(path, e))?;
        let mut out = BufWriter::new(file);
        for i in 0..self.len() {
            write!(
                out,
                "{i}\t{}\t{}\t{}",
                escape(&self.terms[i]),
                self.counts[i],
                self.docs[i]
            )
            .and_then(|()| match self.surfaces.get(i) {
                Some(surface) => writeln!(out, "\t{}", escape(surface)),
                None => writeln!(out),
            })
            .map_err(|e| DatasetsError::io(path, e))?;
        }
        out.flush().map_err(|e| DatasetsError::io(path, e))
    }

    /// Reads a `vocab.tsv`; ids must be dense and in file order.
    pub fn read_tsv(path: &Path) -> Result<Vocabulary, DatasetsError> {
        let file = File::open(path).map_err(|e| DatasetsError::io(path, e))?;
        let mut vocab = Vocabulary::default();
        for (lineno, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| DatasetsError::io(path, e))?;
            let bad = |what: &str| {
                DatasetsError::format(path, format!("line {}: {what}: {line:?}", lineno + 1))
            };
            let mut fields = line.split('\t');
            let (Some(id), Some(term), Some(count), Some(docs), surface, None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                return Err(bad("expected 4 or 5 tab-separated fields"));
            };
            let id: usize = id.parse().map_err(|_| bad("bad id"))?;
            if id != lineno {
                return Err(bad("ids must be 0, 1, 2, ... in file order"));
            }
            match surface {
                Some(surface) => {
                    if vocab.surfaces.len() != lineno {
                        return Err(bad("a surface form on some lines only"));
                    }
                    vocab
                        .surfaces
                        .push(unescape(surface).ok_or_else(|| bad("bad escape"))?);
                }
                None if !vocab.surfaces.is_empty() => {
                    return Err(bad("a surface form on some lines only"));
                }
                None => {}
            }
            vocab
                .terms
                .push(unescape(term).ok_or_else(|| bad("bad escape"))?);
            vocab
                .counts
                .push(count.parse().map_err(|_| bad("bad count"))?);
            vocab.docs.push(docs.parse().map_err(|_| bad("bad docs"))?);
        }
        Ok(vocab)
    }
}

/// Sorts entries by descending count, then ascending term.
pub fn sort_by_rank(entries: &mut [TermStats]) {
    entries.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.term.cmp(&b.term)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(term: &str, count: u64) -> TermStats {
        TermStats {
            term: term.into(),
            count,
            docs: 1,
        }
    }

    #[test]
    fn ranked_orders_by_count_then_term() {
        let v = Vocabulary::ranked(vec![stats("b", 2), stats("c", 5), stats("a", 2)]);
        assert_eq!(v.terms(), ["c", "a", "b"]);
        assert!(v.is_ranked());
        assert_eq!(v.index()["b"], 2);
    }

    #[test]
    fn tsv_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.tsv");
        let v = Vocabulary::ranked(vec![stats("x", 3), stats("y", 1)]);
        v.write_tsv(&path).unwrap();
        assert_eq!(Vocabulary::read_tsv(&path).unwrap(), v);
        // Tabs, newlines and backslashes inside terms survive; surface forms too.
        let odd = Vocabulary::ranked(vec![stats("a\tb", 3), stats("c\\n\nd", 1)])
            .with_surfaces(vec!["A\tB".into()]);
        odd.write_tsv(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        let back = Vocabulary::read_tsv(&path).unwrap();
        assert_eq!(back, odd);
        assert_eq!(back.display(0), Some("A\tB"));
        assert_eq!(back.display(1), Some("c\\n\nd"));
        std::fs::write(&path, "0\tx\t3\t1\n2\ty\t1\t1\n").unwrap();
        let err = Vocabulary::read_tsv(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
