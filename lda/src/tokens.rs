//! A worker's tokens: topic assignments in document order, and an index grouping tokens by word
//! so that a vocabulary block samples exactly its own tokens without scanning the corpus.
//!
//! Per token: its topic (`u16`, document order; the doc proposal reads a document's topics as one
//! contiguous slice), and in word order its document (`u32`) and its position in `z` (`u32`):
//! 10 bytes per token. Sampling word by word also keeps a word-order copy of the topics (`u16`,
//! so a token's topic is read without a cache miss): 12 bytes. Per-document counts live in
//! [`crate::doc_topics`].

use rand_xoshiro::rand_core::Rng;

use crate::error::{LdaError, Result};
use crate::rng::below;

/// The tokens of a set of documents.
#[derive(Debug, Clone)]
pub struct TokenShard {
    /// Document d's tokens are `z[doc_off[d]..doc_off[d + 1]]`.
    doc_off: Vec<u32>,
    /// Topic of each token, in document order.
    z: Vec<u16>,
    /// The distinct words of the shard, ascending.
    words: Vec<u32>,
    /// Tokens of `words[j]` are `tok_doc[word_off[j]..word_off[j + 1]]` (and the same in `tok_pos`).
    word_off: Vec<u32>,
    tok_doc: Vec<u32>,
    tok_pos: Vec<u32>,
    /// `tok_z[i] == z[tok_pos[i]]`: the topics in word order, when kept (else empty).
    tok_z: Vec<u16>,
}

impl TokenShard {
    /// Indexes documents given as word-id sequences; every id must be below `vocab`.
    /// `doc_name` names a document in errors.
    /// `word_topics` keeps the word-order copy of the topics (for sampling word by word).
    pub fn build<'a>(
        docs: impl Iterator<Item = &'a [u32]> + Clone,
        vocab: u32,
        word_topics: bool,
        doc_name: impl Fn(usize) -> String,
    ) -> Result<Self> {
        let mut doc_off = vec![0u32];
        let mut counts = vec![0u32; vocab as usize];
        let mut total: u64 = 0;
        for (d, doc) in docs.clone().enumerate() {
            for &w in doc {
                let Some(c) = counts.get_mut(w as usize) else {
                    return Err(LdaError::WordOutOfRange {
                        doc: doc_name(d),
                        word: w,
                        vocab,
                    });
                };
                *c += 1;
            }
            total += doc.len() as u64;
            let off = u32::try_from(total).map_err(|_| LdaError::ShardTooLarge(total))?;
            doc_off.push(off);
        }
        let mut words = Vec::new();
        let mut word_off = vec![0u32];
        // `counts` becomes each word's next free slot.
        let mut next = 0u32;
        for (w, c) in counts.iter_mut().enumerate() {
            if *c > 0 {
                words.push(w as u32);
                let n = *c;
                *c = next;
                next += n;
                word_off.push(next);
            }
        }
        let n = total as usize;
        let mut tok_doc = vec![0u32; n];
        let mut tok_pos = vec![0u32; n];
        let mut pos = 0u32;
        for (d, doc) in docs.enumerate() {
            for &w in doc {
                let slot = &mut counts[w as usize];
                tok_doc[*slot as usize] = d as u32;
                tok_pos[*slot as usize] = pos;
                *slot += 1;
                pos += 1;
            }
        }
        Ok(TokenShard {
            doc_off,
            z: vec![0; n],
            words,
            word_off,
            tok_doc,
            tok_pos,
            tok_z: if word_topics { vec![0; n] } else { Vec::new() },
        })
    }

    /// Assigns every token a uniformly random topic.
    pub fn assign_uniform<R: Rng>(&mut self, topics: u32, rng: &mut R) {
        for z in &mut self.z {
            *z = below(rng, topics) as u16;
        }
        self.sync_word_order();
    }

    /// Rebuilds the word-order copy of the topics.
    fn sync_word_order(&mut self) {
        if self.tok_z.is_empty() {
            return;
        }
        for (t, &p) in self.tok_z.iter_mut().zip(&self.tok_pos) {
            *t = self.z[p as usize];
        }
    }

    pub fn num_docs(&self) -> usize {
        self.doc_off.len() - 1
    }

    pub fn num_tokens(&self) -> usize {
        self.z.len()
    }

    /// Length of document `d`.
    #[inline]
    pub fn doc_len(&self, d: u32) -> u32 {
        self.doc_off[d as usize + 1] - self.doc_off[d as usize]
    }

    /// The topics of document `d`'s tokens.
    #[inline]
    pub fn doc_topics(&self, d: u32) -> &[u16] {
        &self.z[self.doc_off[d as usize] as usize..self.doc_off[d as usize + 1] as usize]
    }

    /// Start of document `d` in the assignment array.
    #[inline]
    pub fn doc_start(&self, d: u32) -> u32 {
        self.doc_off[d as usize]
    }

    /// The distinct words of the shard, ascending.
    pub fn words(&self) -> &[u32] {
        &self.words
    }

    /// The token range (in word order) of the `j`-th distinct word.
    #[inline]
    pub fn word_tokens(&self, j: usize) -> std::ops::Range<usize> {
        self.word_off[j] as usize..self.word_off[j + 1] as usize
    }

    /// Document and assignment position of the token at word-order index `i`.
    #[inline]
    pub fn token(&self, i: usize) -> (u32, u32) {
        (self.tok_doc[i], self.tok_pos[i])
    }

    /// All assignments, in document order.
    pub fn assignments(&self) -> &[u16] {
        &self.z
    }

    /// Replaces all assignments (from a checkpoint); the length must match.
    pub fn set_assignments(&mut self, z: Vec<u16>) -> Result<()> {
        if z.len() != self.z.len() {
            return Err(LdaError::Invariant(format!(
                "checkpoint holds {} assignments, the shard has {} tokens",
                z.len(),
                self.z.len()
            )));
        }
        self.z = z;
        self.sync_word_order();
        Ok(())
    }

    /// The topic of the token at word-order index `i`.
    #[inline]
    pub fn topic(&self, i: usize) -> u16 {
        match self.tok_z.get(i) {
            Some(&t) => t,
            None => self.z[self.tok_pos[i] as usize],
        }
    }

    /// Sets the topic of the token at word-order index `i` and assignment position `pos`.
    #[inline]
    pub(crate) fn set_topic(&mut self, i: usize, pos: u32, topic: u16) {
        if let Some(t) = self.tok_z.get_mut(i) {
            *t = topic;
        }
        self.z[pos as usize] = topic;
    }

    /// Sets the topic at assignment position `pos`; only for shards without the word-order copy.
    #[inline]
    pub(crate) fn set_position_topic(&mut self, pos: u32, topic: u16) {
        debug_assert!(self.tok_z.is_empty());
        self.z[pos as usize] = topic;
    }

    /// Bytes held per token by this structure.
    pub fn memory_bytes(&self) -> usize {
        (self.z.len() + self.tok_z.len()) * 2
            + (self.tok_doc.len() + self.tok_pos.len() + self.doc_off.len()) * 4
            + self.words.len() * 8
    }

    /// Calls `f(word, topic)` for every token.
    pub fn for_each_word_topic(&self, mut f: impl FnMut(u32, u16)) {
        for (j, &w) in self.words.iter().enumerate() {
            for i in self.word_tokens(j) {
                f(w, self.topic(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_tokens_by_word_and_keeps_document_order() {
        let docs: Vec<Vec<u32>> = vec![vec![2, 0, 2], vec![], vec![1, 2]];
        let s = TokenShard::build(docs.iter().map(|d| d.as_slice()), 4, true, |d| {
            d.to_string()
        })
        .unwrap();
        assert_eq!(s.num_docs(), 3);
        assert_eq!(s.num_tokens(), 5);
        assert_eq!(s.words(), &[0, 1, 2]);
        let toks = |j: usize| s.word_tokens(j).map(|i| s.token(i)).collect::<Vec<_>>();
        assert_eq!(toks(0), vec![(0, 1)]);
        assert_eq!(toks(1), vec![(2, 3)]);
        assert_eq!(toks(2), vec![(0, 0), (0, 2), (2, 4)]);
        assert_eq!(s.doc_len(1), 0);
        assert_eq!(s.doc_start(2), 3);
    }

    #[test]
    fn rejects_out_of_vocabulary_ids() {
        let docs: Vec<Vec<u32>> = vec![vec![0, 9]];
        let e = TokenShard::build(docs.iter().map(|d| d.as_slice()), 4, true, |_| {
            "doc-a".into()
        })
        .err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("doc-a") && msg.contains('9'), "{msg}");
    }
}
