//! Loading a corpus directory into per-thread document shards, balanced by token count.

use std::path::Path;

use crate::error::{LdaError, Result};

/// The documents one sampler thread owns, as flat token ids.
#[derive(Debug, Clone, Default)]
pub struct ShardDocs {
    pub ids: Vec<String>,
    pub tokens: Vec<u32>,
    /// Document i is `tokens[offsets[i]..offsets[i + 1]]`.
    pub offsets: Vec<usize>,
}

impl ShardDocs {
    pub fn documents(&self) -> impl Iterator<Item = &[u32]> + Clone {
        self.offsets.windows(2).map(|w| &self.tokens[w[0]..w[1]])
    }
}

/// A corpus split for `threads` sampler threads.
#[derive(Debug, Clone)]
pub struct LoadedCorpus {
    pub shards: Vec<ShardDocs>,
    /// Term of each word id (empty when unknown).
    pub terms: Vec<String>,
    /// Display form of each word id (the surface form of a stemmed term), or empty when the
    /// corpus records none.
    pub display: Vec<String>,
    pub vocab: u32,
    /// Occurrences of each word id.
    pub word_counts: Vec<u64>,
    pub tokens: u64,
}

impl LoadedCorpus {
    /// Splits documents into `threads` contiguous shards of about equal token counts.
    pub fn from_documents(
        docs: impl Iterator<Item = Result<(String, Vec<u32>)>>,
        total_tokens: u64,
        vocab: u32,
        terms: Vec<String>,
        threads: usize,
    ) -> Result<Self> {
        let threads = threads.max(1);
        let split = Split::new(total_tokens, threads);
        let mut shards: Vec<ShardDocs> = (0..threads)
            .map(|_| ShardDocs {
                offsets: vec![0],
                ..Default::default()
            })
            .collect();
        let mut word_counts = vec![0u64; vocab as usize];
        let mut seen: u64 = 0;
        for doc in docs {
            let (id, tokens) = doc?;
            for &w in &tokens {
                let Some(c) = word_counts.get_mut(w as usize) else {
                    return Err(LdaError::WordOutOfRange {
                        doc: id,
                        word: w,
                        vocab,
                    });
                };
                *c += 1;
            }
            let s = split.owner(seen);
            seen += tokens.len() as u64;
            let shard = &mut shards[s];
            shard.tokens.extend_from_slice(&tokens);
            shard.offsets.push(shard.tokens.len());
            shard.ids.push(id);
        }
        Ok(LoadedCorpus {
            shards,
            terms,
            display: Vec::new(),
            vocab,
            word_counts,
            tokens: seen,
        })
    }

    /// Reads a corpus directory written by `glint-lda ingest` or the synthetic generator.
    pub fn open(dir: &Path, threads: usize) -> Result<Self> {
        let corpus = datasets::Corpus::open(dir)?;
        let words = Words::read(&corpus)?;
        let docs = corpus
            .documents()?
            .map(|d| d.map(|d| (d.id, d.tokens)).map_err(LdaError::from));
        let tokens = corpus.manifest().tokens;
        let mut loaded = Self::from_documents(docs, tokens, words.size, words.terms, threads)?;
        loaded.display = words.display;
        Ok(loaded)
    }

    /// Part `part` of `parts` of a corpus directory, for one cluster worker: the documents whose
    /// first token falls in the part's share of the corpus's tokens (contiguous, about equal
    /// token counts), split again for `threads` sampler threads. Every worker reading the same
    /// corpus gets a disjoint part, and the parts cover it.
    pub fn open_part(
        dir: &Path,
        part: usize,
        parts: usize,
        threads: usize,
    ) -> Result<(Self, PartInfo)> {
        if parts == 0 || part >= parts {
            return Err(LdaError::InvalidConfig(format!(
                "worker index {part} is not below the number of workers {parts}"
            )));
        }
        let corpus = datasets::Corpus::open(dir)?;
        let words = Words::read(&corpus)?;
        let total = corpus.manifest().tokens;
        let split = Split::new(total, parts);
        let (mut kept, mut kept_tokens, mut seen) = (Vec::new(), 0u64, 0u64);
        let mut info = PartInfo {
            first_doc: None,
            corpus_docs: 0,
            corpus_tokens: 0,
        };
        for doc in corpus.documents()? {
            let doc = doc?;
            let owner = split.owner(seen);
            seen += doc.tokens.len() as u64;
            if owner == part {
                info.first_doc.get_or_insert(info.corpus_docs);
                kept_tokens += doc.tokens.len() as u64;
                kept.push(Ok((doc.id, doc.tokens)));
            }
            info.corpus_docs += 1;
        }
        info.corpus_tokens = seen;
        let mut loaded = Self::from_documents(
            kept.into_iter(),
            kept_tokens,
            words.size,
            words.terms,
            threads,
        )?;
        loaded.display = words.display;
        Ok((loaded, info))
    }

    pub fn num_docs(&self) -> usize {
        self.shards.iter().map(|s| s.ids.len()).sum()
    }
}

/// Contiguous parts of about equal token counts: the one rule for splitting a corpus between
/// threads and between workers.
struct Split {
    target: u64,
    parts: usize,
}

impl Split {
    fn new(total_tokens: u64, parts: usize) -> Self {
        let parts = parts.max(1);
        Split {
            target: total_tokens.div_ceil(parts as u64).max(1),
            parts,
        }
    }

    /// The part of a document whose first token is the corpus's `seen`-th.
    fn owner(&self, seen: u64) -> usize {
        ((seen / self.target) as usize).min(self.parts - 1)
    }
}

/// Where a worker's part lies in its corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartInfo {
    /// Index of the part's first document in corpus order (None: the part is empty).
    pub first_doc: Option<u64>,
    pub corpus_docs: u64,
    pub corpus_tokens: u64,
}

/// What a process that holds no tokens needs to know about a corpus: document ids in order,
/// word counts and the vocabulary (a cluster driver).
#[derive(Debug, Clone)]
pub struct CorpusSummary {
    pub ids: Vec<String>,
    pub word_counts: Vec<u64>,
    pub tokens: u64,
    pub vocab: u32,
    pub terms: Vec<String>,
    pub display: Vec<String>,
}

impl CorpusSummary {
    /// One streaming pass over the corpus directory.
    pub fn scan(dir: &Path) -> Result<Self> {
        let corpus = datasets::Corpus::open(dir)?;
        let words = Words::read(&corpus)?;
        let mut word_counts = vec![0u64; words.size as usize];
        let (mut ids, mut tokens) = (Vec::new(), 0u64);
        for doc in corpus.documents()? {
            let doc = doc?;
            for &w in &doc.tokens {
                let Some(c) = word_counts.get_mut(w as usize) else {
                    return Err(LdaError::WordOutOfRange {
                        doc: doc.id,
                        word: w,
                        vocab: words.size,
                    });
                };
                *c += 1;
            }
            tokens += doc.tokens.len() as u64;
            ids.push(doc.id);
        }
        Ok(CorpusSummary {
            ids,
            word_counts,
            tokens,
            vocab: words.size,
            terms: words.terms,
            display: words.display,
        })
    }
}

/// A corpus's vocabulary as the trainer uses it.
struct Words {
    size: u32,
    terms: Vec<String>,
    display: Vec<String>,
}

impl Words {
    fn read(corpus: &datasets::Corpus) -> Result<Self> {
        let vocab = corpus.vocabulary()?;
        let terms = vocab.terms().to_vec();
        let size = corpus.manifest().vocabulary_size.max(terms.len() as u32);
        let display = if vocab.has_surfaces() {
            vocab
                .display_terms()
                .into_iter()
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Words {
            size,
            terms,
            display,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_balanced_and_keep_every_document() {
        let docs: Vec<Result<(String, Vec<u32>)>> = (0..10)
            .map(|i| Ok((format!("d{i}"), vec![i % 3; 10])))
            .collect();
        let c = LoadedCorpus::from_documents(docs.into_iter(), 100, 3, vec![], 3).unwrap();
        assert_eq!(c.num_docs(), 10);
        let sizes: Vec<usize> = c.shards.iter().map(|s| s.tokens.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(sizes.iter().all(|&s| (30..=40).contains(&s)), "{sizes:?}");
        assert_eq!(c.word_counts, vec![40, 30, 30]);
    }
}
