//! Sampling one word's tokens with the sparse exact draw ([`crate::sparse`]): the tree of
//! α_k·q_k, q_k = (n_wk + β)/(n_k + Vβ), is built from the word's dense scratch row when the word starts,
//! and every token's removal and placement update it at the two topics that changed.

use super::{Move, Worker, missing_token};
use crate::doc_topics::DocTopics;
use crate::error::{LdaError, Result};
use crate::sparse::{DocLists, FTree, draw};
use crate::tokens::TokenShard;

/// The sparse draw's state: n_dk as non-zero lists, the tree and the draw's scratch. The lists
/// are the counts while an iteration samples; [`DocTopics`], which the rest of the trainer
/// reads, is refilled from them when it ends (keeping both current cost a second random access
/// per token, 15% of the sampling time at K = 1000).
#[derive(Debug)]
pub(crate) struct SparseState {
    lists: DocLists,
    tree: FTree,
    cumulative: Vec<f64>,
    /// 1/α_k, to read q_k back from the tree's α_k·q_k.
    inv_alpha: Vec<f64>,
}

impl SparseState {
    pub(crate) fn new(tokens: &TokenShard, doc_topics: &DocTopics, topics: u32) -> Self {
        let docs = tokens.num_docs() as u32;
        let mut lists = DocLists::new((0..docs).map(|d| tokens.doc_len(d)), topics);
        let mut nonzeros = Vec::new();
        for d in 0..docs {
            doc_topics.nonzeros(d, &mut nonzeros);
            for &(t, c) in &nonzeros {
                for _ in 0..c {
                    // Cannot fail: a document holds no more distinct topics than tokens.
                    lists.increment(d, t);
                }
            }
        }
        SparseState {
            lists,
            tree: FTree::new(topics as usize),
            cumulative: Vec::new(),
            inv_alpha: Vec::new(),
        }
    }

    /// Follows the kernel's α (called whenever it changes).
    pub(crate) fn set_alpha(&mut self, alpha: &[f64]) {
        self.inv_alpha.clear();
        self.inv_alpha.extend(alpha.iter().map(|a| 1.0 / a));
    }
}

impl Worker {
    /// Refills n_dk from the sparse lists after an iteration (a no-op for other samplers).
    pub fn finish_iteration(&mut self) {
        let Some(st) = self.sparse.as_ref() else {
            return;
        };
        self.doc_topics.clear();
        for d in 0..self.tokens.num_docs() as u32 {
            for &(t, c) in st.lists.entries(d) {
                self.doc_topics.add(d, t, c);
            }
        }
    }

    /// Samples the tokens of the shard's `j`-th word against the dense scratch row `cur`
    /// (already filled from the pull) and `totals`, both kept current.
    pub(super) fn sample_tokens_sparse(
        &mut self,
        j: usize,
        word: u32,
        totals: &mut [i64],
    ) -> Result<()> {
        let Worker {
            tokens,
            rng,
            kernel,
            scratch,
            total_deltas,
            sparse,
            ..
        } = self;
        let Some(st) = sparse.as_mut() else {
            return Err(LdaError::Invariant(
                "the sparse sampler's state was not built".into(),
            ));
        };
        let (alpha, beta, vbeta) = (&kernel.alpha, kernel.beta, kernel.vbeta);
        let q = |cur: &[i32], totals: &[i64], t: usize| {
            alpha[t] * (f64::from(cur[t]) + beta) / (totals[t] as f64 + vbeta)
        };
        st.tree
            .build((0..scratch.cur.len()).map(|t| q(&scratch.cur, totals, t)));
        // The negative control of the tests: the token's own count stays in q.
        #[cfg(test)]
        let leave_out_of_q = !kernel.count_own_token;
        #[cfg(not(test))]
        let leave_out_of_q = true;
        let range = tokens.word_tokens(j);
        let first = range.start;
        for i in range {
            let (doc, pos) = tokens.token(i);
            let old = u32::from(tokens.topic(i));
            let ko = old as usize;
            if scratch.cur[ko] <= 0 || totals[ko] <= 0 {
                return Err(missing_token(word, old, scratch.cur[ko], totals[ko]));
            }
            scratch.cur[ko] -= 1;
            totals[ko] -= 1;
            if leave_out_of_q {
                st.tree.set(old, q(&scratch.cur, totals, ko));
            }
            let Some(drawn) = draw(
                st.lists.entries(doc),
                old,
                &st.tree,
                &st.inv_alpha,
                &mut st.cumulative,
                rng,
            ) else {
                return Err(LdaError::Invariant(format!(
                    "document {doc} holds no token at topic {old}, which a token of word {word} is assigned to"
                )));
            };
            let new = drawn.topic;
            let kn = new as usize;
            if !st.lists.transfer(doc, drawn.own_index, new, drawn.index) {
                return Err(LdaError::Invariant(format!(
                    "document {doc} holds more distinct topics than tokens"
                )));
            }
            scratch.cur[kn] += 1;
            totals[kn] += 1;
            st.tree.set(new, q(&scratch.cur, totals, kn));
            if new != old {
                if !leave_out_of_q {
                    st.tree.set(old, q(&scratch.cur, totals, ko));
                }
                let moved = Move {
                    token: i,
                    pos,
                    slot: i - first,
                    old,
                    new,
                };
                moved.record(scratch, total_deltas, tokens);
            }
        }
        Ok(())
    }
}
