//! An analyzer worker of the first pass: raw documents to tokens with temporary ids, counted in
//! the worker's own term dictionary (with the surface forms of stemmed terms).

use rustc_hash::FxHashMap;

use crate::IngestError;
use crate::analyzer::{Analyzer, Normalizer};
use crate::dictionary::TermDictionary;
use crate::readers::{Body, Skip, charset, html};
use crate::skips::SkipLog;
use crate::vocabulary::temp_id;

use super::{RawBatch, TokenBatch};

/// Marks a word whose term is dropped (stop word, length) in the word memo.
const DROPPED_WORD: u32 = u32::MAX;
/// Words a memo holds before it is cleared (bounds memory on web-scale vocabularies).
const MEMO_LIMIT: usize = 1 << 19;
/// Reason of a document with more tokens than the limit.
pub const TOO_MANY_TOKENS: &str = "too-many-tokens";

pub(super) fn id_space_error(workers: usize) -> IngestError {
    IngestError::Config(format!(
        "more than {} distinct terms in one worker: the temporary id space is full (use fewer threads)",
        u32::MAX as usize / workers
    ))
}

/// A worker's analysis state: its analyzer, its term dictionary and a memo from word (before
/// stop words and stemming) straight to local term id, so a repeated word costs one hash lookup.
/// The memo also counts each word's occurrences, which become the terms' surface forms when the
/// memo is folded (when full, and at the end).
pub(super) struct WorkerState {
    analyzer: Analyzer,
    normalizer: Normalizer,
    dict: TermDictionary,
    /// word → (local term id or DROPPED_WORD, slot in `occurrences`).
    memo: FxHashMap<Box<str>, (u32, u32)>,
    occurrences: Vec<u64>,
    record_forms: bool,
    max_doc_tokens: usize,
    worker: usize,
    workers: usize,
}

impl WorkerState {
    pub(super) fn new(
        analyzer: Analyzer,
        max_doc_tokens: usize,
        worker: usize,
        workers: usize,
    ) -> Self {
        WorkerState {
            normalizer: analyzer.normalizer().clone(),
            // Without stemming a term is its word: there is no other form to show.
            record_forms: analyzer.config().stem.is_some(),
            analyzer,
            dict: TermDictionary::default(),
            memo: FxHashMap::default(),
            occurrences: Vec::new(),
            max_doc_tokens,
            worker,
            workers,
        }
    }

    /// Moves the memo's word counts into the dictionary's surface forms and empties it.
    fn fold_memo(&mut self) {
        if self.record_forms {
            for (word, (local, slot)) in self.memo.drain() {
                let n = self.occurrences[slot as usize];
                if local != DROPPED_WORD && n > 0 {
                    self.dict.add_form(local, &word, n);
                }
            }
        } else {
            self.memo.clear();
        }
        self.occurrences.clear();
    }

    /// The dictionary, with every surface form counted.
    pub(super) fn into_dictionary(mut self) -> TermDictionary {
        self.fold_memo();
        self.dict
    }

    /// Appends the temporary ids of `text`'s terms to `tokens`, counting them, up to the token
    /// limit. Returns whether the document went over the limit. Fails when the worker's
    /// dictionary outgrows the temporary id space.
    fn analyze(&mut self, text: &str, tokens: &mut Vec<u32>) -> Result<bool, IngestError> {
        if self.memo.len() > MEMO_LIMIT {
            self.fold_memo();
        }
        let WorkerState {
            analyzer,
            normalizer,
            dict,
            memo,
            occurrences,
            max_doc_tokens,
            worker,
            workers,
            ..
        } = self;
        let (mut overflow, mut too_many) = (false, false);
        analyzer.for_each_word(text, &mut |word| {
            if too_many {
                return;
            }
            let (local, slot) = match memo.get(word) {
                Some(&entry) => entry,
                None => {
                    let id = normalizer
                        .normalize(word)
                        .map_or(DROPPED_WORD, |term| dict.intern(&term));
                    let entry = (id, occurrences.len() as u32);
                    occurrences.push(0);
                    memo.insert(word.into(), entry);
                    entry
                }
            };
            if local == DROPPED_WORD {
                return;
            }
            if tokens.len() >= *max_doc_tokens {
                too_many = true;
                return;
            }
            match temp_id(local, *worker, *workers) {
                Some(t) => {
                    dict.count(local, 1);
                    occurrences[slot as usize] += 1;
                    tokens.push(t);
                }
                None => overflow = true,
            }
        });
        if overflow {
            return Err(id_space_error(*workers));
        }
        Ok(too_many)
    }

    /// Analyzes one raw batch into tokens with temporary ids.
    pub(super) fn analyze_batch(
        &mut self,
        batch: RawBatch,
        log: &SkipLog,
    ) -> Result<TokenBatch, IngestError> {
        let mut out = Vec::with_capacity(batch.docs.len());
        for doc in batch.docs {
            self.dict.begin_document();
            let mut tokens = Vec::new();
            let too_many = match doc.body {
                Body::Text(text) => self.analyze(&text, &mut tokens)?,
                Body::Html { bytes, charset: cs } => {
                    // A WARC document id is its target URI: its TLD helps guess an undeclared charset.
                    let (page, _lossy) =
                        charset::decode_owned_for_url(bytes, cs.as_deref(), &doc.id);
                    self.analyze(&html::to_text(&page), &mut tokens)?
                }
                Body::Terms(terms) => {
                    let total: u64 = terms.iter().map(|(_, n)| u64::from(*n)).sum();
                    if total > self.max_doc_tokens as u64 {
                        true
                    } else {
                        for (term, n) in &terms {
                            let local = self.dict.add(term, u64::from(*n));
                            let t = temp_id(local, self.worker, self.workers)
                                .ok_or_else(|| id_space_error(self.workers))?;
                            tokens.extend(std::iter::repeat_n(t, *n as usize));
                        }
                        false
                    }
                }
            };
            if too_many {
                let workers = self.workers as u32;
                self.dict
                    .uncount_document(tokens.iter().map(|&t| t / workers));
                log.skip(Skip::new(
                    TOO_MANY_TOKENS,
                    format!(
                        "document {}: more than {} tokens",
                        doc.id, self.max_doc_tokens
                    ),
                ))?;
                continue;
            }
            if tokens.is_empty() {
                log.skip(Skip::new(
                    "empty",
                    format!("document {}: no terms after analysis", doc.id),
                ))?;
                continue;
            }
            out.push((doc.id, tokens));
        }
        Ok(TokenBatch {
            input: batch.input,
            seq: batch.seq,
            last: batch.last,
            charge: batch.charge,
            docs: out,
        })
    }
}
