//! A worker's own term dictionary: term → local id, with counts and document frequencies.
//!
//! Each worker thread owns one, so analysis needs no locks; the dictionaries are merged once at
//! the end of the first pass ([`crate::vocabulary`]).

use rustc_hash::FxHashMap;

use crate::surface::TopForms;

/// One term of a dictionary, as consumed by the vocabulary merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermEntry {
    pub term: Box<str>,
    pub count: u64,
    pub docs: u64,
    /// The words that produced the term (empty when not recorded).
    pub forms: TopForms,
}

/// Term statistics of one worker.
#[derive(Debug, Default)]
pub struct TermDictionary {
    ids: FxHashMap<Box<str>, u32>,
    terms: Vec<Box<str>>,
    counts: Vec<u64>,
    docs: Vec<u64>,
    /// Surface forms by id, grown on demand (only stemming analyzers record them).
    forms: Vec<TopForms>,
    /// Document sequence number that last counted a term's document frequency.
    last_doc: Vec<u64>,
    doc_seq: u64,
}

impl TermDictionary {
    /// Starts a new document (for document frequencies).
    pub fn begin_document(&mut self) {
        self.doc_seq += 1;
    }

    /// Records `n` occurrences of `term` in the current document; returns its local id.
    pub fn add(&mut self, term: &str, n: u64) -> u32 {
        let id = self.intern(term);
        self.count(id, n);
        id
    }

    /// The local id of `term`, registering it (with no occurrences) if new.
    pub fn intern(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.ids.get(term) {
            return id;
        }
        let id = self.terms.len() as u32;
        let boxed: Box<str> = term.into();
        self.ids.insert(boxed.clone(), id);
        self.terms.push(boxed);
        self.counts.push(0);
        self.docs.push(0);
        self.last_doc.push(0);
        id
    }

    /// Records `n` occurrences of the term `id` (from [`TermDictionary::intern`]) in the current
    /// document.
    pub fn count(&mut self, id: u32, n: u64) {
        let i = id as usize;
        self.counts[i] += n;
        if self.last_doc[i] != self.doc_seq {
            self.last_doc[i] = self.doc_seq;
            self.docs[i] += 1;
        }
    }

    /// Records `n` occurrences of the term `id` written as `form` in the text.
    pub fn add_form(&mut self, id: u32, form: &str, n: u64) {
        let i = id as usize;
        if self.forms.len() <= i {
            self.forms.resize_with(i + 1, TopForms::default);
        }
        self.forms[i].add(form, n);
    }

    /// Undoes the counts of one document's tokens (local ids, in any order): for a document
    /// dropped after analysis (too many tokens), so the vocabulary counts only kept documents.
    /// Must be called before the next [`TermDictionary::begin_document`].
    pub fn uncount_document(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            let i = id as usize;
            self.counts[i] = self.counts[i].saturating_sub(1);
            if self.last_doc[i] == self.doc_seq {
                // First time this id is seen in the rollback: the document no longer holds it.
                self.last_doc[i] = 0;
                self.docs[i] = self.docs[i].saturating_sub(1);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Consumes the dictionary: its entries by local id.
    pub fn into_entries(self) -> impl Iterator<Item = TermEntry> {
        let mut forms = self.forms;
        forms.resize_with(self.terms.len(), TopForms::default);
        self.terms
            .into_iter()
            .zip(self.counts)
            .zip(self.docs)
            .zip(forms)
            .map(|(((term, count), docs), forms)| TermEntry {
                term,
                count,
                docs,
                forms,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_document_frequencies() {
        let mut d = TermDictionary::default();
        d.begin_document();
        let a = d.add("a", 1);
        d.add("a", 1);
        d.add("b", 2);
        d.begin_document();
        d.add("a", 1);
        // A third document dropped after analysis leaves no trace.
        d.begin_document();
        let a3 = d.add("a", 1);
        let b = d.add("b", 1);
        d.add("b", 1);
        d.uncount_document([a3, b, b]);
        let entries: Vec<_> = d
            .into_entries()
            .map(|e| (e.term, e.count, e.docs))
            .collect();
        assert_eq!(a, 0);
        assert_eq!(entries, [("a".into(), 3, 2), ("b".into(), 2, 1)]);
    }
}
