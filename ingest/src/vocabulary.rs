//! Builds the final vocabulary from the workers' dictionaries: merge, filter (count and
//! document-frequency bounds, top N) and rank by descending count, ties by term. Each kept
//! term's most frequent surface form is recorded when it differs from the term (stemming).
//!
//! The result is a [`datasets::Vocabulary`] and, for the second pass, a mapping from the
//! first pass's temporary ids (`local_id * workers + worker`) to final ids or
//! [`datasets::DROPPED`].

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use datasets::{DROPPED, TermStats, Vocabulary};

use crate::dictionary::TermDictionary;
use crate::surface::TopForms;

/// Which terms to keep, applied in this order: the count and document-frequency bounds, then
/// the `max_size` most frequent of the remaining terms (gensim's `filter_extremes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VocabularyFilter {
    /// Terms occurring fewer times over the corpus are dropped.
    pub min_count: u64,
    /// Terms in fewer documents than this are dropped (gensim's `no_below`).
    #[serde(default = "one")]
    pub min_docs: u64,
    /// Terms in more than this fraction of documents are dropped (1.0 keeps all; gensim's
    /// `no_above`).
    pub max_doc_frac: f64,
    /// Terms in more than this many documents are dropped.
    #[serde(default)]
    pub max_docs: Option<u64>,
    /// Keep at most this many of the most frequent terms.
    pub max_size: Option<usize>,
}

fn one() -> u64 {
    1
}

impl Default for VocabularyFilter {
    fn default() -> Self {
        VocabularyFilter {
            min_count: 1,
            min_docs: 1,
            max_doc_frac: 1.0,
            max_docs: None,
            max_size: None,
        }
    }
}

/// The merged vocabulary and the temporary-id mapping.
#[derive(Debug)]
pub struct BuiltVocabulary {
    pub vocabulary: Vocabulary,
    /// Temporary id → final id, or `DROPPED`.
    pub mapping: Vec<u32>,
    /// Distinct terms before filtering.
    pub terms_seen: u64,
}

/// Temporary id of `local` in worker `worker` of `workers`; `None` when it does not fit in a
/// `u32` (more than `u32::MAX / workers` distinct terms in one worker).
pub fn temp_id(local: u32, worker: usize, workers: usize) -> Option<u32> {
    local
        .checked_mul(workers as u32)?
        .checked_add(worker as u32)
}

/// Merges the dictionaries (index = worker) and applies `filter`, with `documents` the number of
/// documents the first pass kept (the denominator of the document fraction).
pub fn build(
    dictionaries: Vec<TermDictionary>,
    filter: &VocabularyFilter,
    documents: u64,
) -> BuiltVocabulary {
    let workers = dictionaries.len().max(1);
    let mut global: FxHashMap<Box<str>, usize> = FxHashMap::default();
    let mut entries: Vec<TermStats> = Vec::new();
    let mut forms: Vec<TopForms> = Vec::new();
    // local_to_global[worker][local] = index into `entries`.
    let mut local_to_global: Vec<Vec<usize>> = Vec::with_capacity(workers);
    let mut max_local = 0usize;
    for dict in dictionaries {
        max_local = max_local.max(dict.len());
        let mut map = Vec::with_capacity(dict.len());
        for entry in dict.into_entries() {
            let g = match global.get(&entry.term) {
                Some(&g) => g,
                None => {
                    let g = entries.len();
                    entries.push(TermStats {
                        term: entry.term.to_string(),
                        count: 0,
                        docs: 0,
                    });
                    forms.push(TopForms::default());
                    global.insert(entry.term, g);
                    g
                }
            };
            entries[g].count += entry.count;
            entries[g].docs += entry.docs;
            forms[g].merge(entry.forms);
            map.push(g);
        }
        local_to_global.push(map);
    }
    drop(global);
    let terms_seen = entries.len() as u64;

    let kept = select(&entries, filter, documents);
    let mut final_id = vec![DROPPED; entries.len()];
    for (new, &g) in kept.iter().enumerate() {
        final_id[g] = new as u32;
    }
    let mut mapping = vec![DROPPED; max_local * workers];
    for (worker, map) in local_to_global.iter().enumerate() {
        for (local, &g) in map.iter().enumerate() {
            // Every local id was turned into a temporary id during the first pass, so it fits.
            if let Some(t) = temp_id(local as u32, worker, workers) {
                mapping[t as usize] = final_id[g];
            }
        }
    }
    let surfaces: Vec<String> = kept
        .iter()
        .map(|&g| {
            forms[g]
                .best()
                .filter(|f| *f != entries[g].term)
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let mut ordered: Vec<Option<TermStats>> = entries.into_iter().map(Some).collect();
    let mut vocabulary =
        Vocabulary::from_ordered(kept.iter().filter_map(|&g| ordered[g].take()).collect());
    if surfaces.iter().any(|s| !s.is_empty()) {
        vocabulary = vocabulary.with_surfaces(surfaces);
    }
    BuiltVocabulary {
        vocabulary,
        mapping,
        terms_seen,
    }
}

/// Indices into `entries` of the terms `filter` keeps, in vocabulary order (descending count,
/// ties by term), with `documents` the denominator of the document fraction: the one rule for
/// every way a vocabulary is built (ingest, and merged statistics such as Spark partitions').
pub fn select(entries: &[TermStats], filter: &VocabularyFilter, documents: u64) -> Vec<usize> {
    let frac_docs = (filter.max_doc_frac * documents as f64).floor() as u64;
    let mut kept: Vec<usize> = (0..entries.len())
        .filter(|&g| {
            let e = &entries[g];
            e.count > 0
                && e.count >= filter.min_count
                && e.docs >= filter.min_docs
                && (filter.max_doc_frac >= 1.0 || e.docs <= frac_docs)
                && filter.max_docs.is_none_or(|m| e.docs <= m)
        })
        .collect();
    kept.sort_unstable_by(|&a, &b| {
        entries[b]
            .count
            .cmp(&entries[a].count)
            .then_with(|| entries[a].term.cmp(&entries[b].term))
    });
    if let Some(n) = filter.max_size {
        kept.truncate(n);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dict(docs: &[&[&str]]) -> TermDictionary {
        let mut d = TermDictionary::default();
        for doc in docs {
            d.begin_document();
            for t in *doc {
                d.add(t, 1);
            }
        }
        d
    }

    #[test]
    fn merges_workers_ranks_and_filters() {
        let w0 = dict(&[&["a", "b", "a"], &["c"]]);
        let w1 = dict(&[&["b", "a", "d"]]);
        let built = build(vec![w0, w1], &VocabularyFilter::default(), 3);
        assert_eq!(built.vocabulary.terms(), ["a", "b", "c", "d"]);
        assert_eq!(built.vocabulary.counts(), [3, 2, 1, 1]);
        assert_eq!(built.vocabulary.doc_counts(), [2, 2, 1, 1]);
        // worker 1's local 0 is "b", final id 1.
        assert_eq!(built.mapping[temp_id(0, 1, 2).unwrap() as usize], 1);

        let filter = VocabularyFilter {
            min_count: 2,
            max_doc_frac: 0.5,
            ..VocabularyFilter::default()
        };
        let w0 = dict(&[&["a", "b", "a"], &["c"]]);
        let w1 = dict(&[&["b", "a", "d"]]);
        let built = build(vec![w0, w1], &filter, 4);
        assert_eq!(built.vocabulary.terms(), ["a", "b"]);
        let filter = VocabularyFilter {
            max_size: Some(1),
            ..VocabularyFilter::default()
        };
        let built = build(vec![dict(&[&["x", "y", "y"]])], &filter, 1);
        assert_eq!(built.vocabulary.terms(), ["y"]);
        assert_eq!(built.mapping, [DROPPED, 0]);
    }

    proptest! {
        /// The kept vocabulary's counts sum to the tokens that the mapping keeps, however the
        /// documents are spread over workers, and ids are ranked.
        #[test]
        fn remap_preserves_token_counts(
            docs in prop::collection::vec(prop::collection::vec(0u8..30, 0..12), 1..30),
            workers in 1usize..4,
            min_count in 1u64..4,
        ) {
            let mut dicts: Vec<TermDictionary> = (0..workers).map(|_| TermDictionary::default()).collect();
            let mut temp_docs = Vec::new();
            for (i, doc) in docs.iter().enumerate() {
                let w = i % workers;
                dicts[w].begin_document();
                let tokens: Vec<u32> = doc.iter()
                    .map(|t| temp_id(dicts[w].add(&format!("t{t}"), 1), w, workers).unwrap())
                    .collect();
                temp_docs.push(tokens);
            }
            let filter = VocabularyFilter { min_count, ..VocabularyFilter::default() };
            let built = build(dicts, &filter, docs.len() as u64);
            let kept: u64 = temp_docs.iter().flatten()
                .filter(|&&t| built.mapping[t as usize] != DROPPED).count() as u64;
            prop_assert_eq!(kept, built.vocabulary.total_count());
            prop_assert!(built.vocabulary.is_ranked());
            let mut counts = vec![0u64; 30];
            for t in docs.iter().flatten() { counts[*t as usize] += 1; }
            let expected_kept: u64 = counts.iter().filter(|&&c| c >= min_count).sum();
            prop_assert_eq!(kept, expected_kept);
        }
    }
}
