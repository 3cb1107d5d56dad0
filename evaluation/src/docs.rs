//! Documents in a model's vocabulary: a corpus directory (any vocabulary, aligned by term) or
//! token lists already in model column ids. Terms the model does not know are dropped and counted.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Result;
use crate::model::TopicModel;

/// Documents as model column ids.
#[derive(Debug, Clone, Default)]
pub struct AlignedDocs {
    pub ids: Vec<String>,
    pub docs: Vec<Vec<u32>>,
    /// Tokens whose term is not in the model's vocabulary.
    pub dropped_tokens: u64,
    /// Tokens kept.
    pub kept_tokens: u64,
}

impl AlignedDocs {
    /// Reads a corpus directory and maps its terms onto `model`'s columns.
    pub fn from_corpus(dir: &Path, model: &TopicModel) -> Result<Self> {
        let index = model.term_index();
        Self::from_corpus_with(dir, &index)
    }

    /// The same, given a model's term → column index.
    pub fn from_corpus_with(dir: &Path, index: &HashMap<&str, u32>) -> Result<Self> {
        let corpus = datasets::Corpus::open(dir)?;
        let vocab = corpus.vocabulary()?;
        let map: Vec<Option<u32>> = vocab
            .terms()
            .iter()
            .map(|t| index.get(t.as_str()).copied())
            .collect();
        let mut out = AlignedDocs::default();
        for doc in corpus.documents()? {
            let doc = doc?;
            let mut kept = Vec::with_capacity(doc.tokens.len());
            for &w in &doc.tokens {
                match map.get(w as usize).copied().flatten() {
                    Some(c) => kept.push(c),
                    None => out.dropped_tokens += 1,
                }
            }
            out.kept_tokens += kept.len() as u64;
            out.ids.push(doc.id);
            out.docs.push(kept);
        }
        Ok(out)
    }

    /// Documents already in column ids below `vocab`; larger ids are dropped and counted.
    pub fn from_ids(ids: Vec<String>, docs: Vec<Vec<u32>>, vocab: usize) -> Self {
        let mut out = AlignedDocs {
            ids,
            ..Default::default()
        };
        for doc in docs {
            let before = doc.len() as u64;
            let kept: Vec<u32> = doc.into_iter().filter(|&w| (w as usize) < vocab).collect();
            out.dropped_tokens += before - kept.len() as u64;
            out.kept_tokens += kept.len() as u64;
            out.docs.push(kept);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}
