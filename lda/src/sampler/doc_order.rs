//! Sampling a whole vocabulary block in document order (LightLDA's order).
//!
//! Sampling word by word visits a scattered document for every token, and the document's counts
//! and topics are then cache misses. Here the block's rows are all held in K-wide scratch rows and
//! its tokens are sorted by position, so consecutive tokens share a document (its counts and
//! topics stay in cache) and the word side, a block of rows, is the part accessed at random.
//! The chain for each token is the same kernel; only the order of tokens differs.

use std::ops::Range;

use super::{Deltas, View, Worker};
use crate::alias::WordProposal;
use crate::error::{LdaError, Result};

/// Reusable buffers of block sampling.
#[derive(Debug, Default)]
pub(crate) struct BlockScratch {
    /// n_wk of the block's words, row `l` at `l * K`.
    cur: Vec<i32>,
    /// ñ_wk: the pulled rows the proposals were built from.
    stale: Vec<i32>,
    /// Flat indices where `cur` or `stale` may be non-zero (may repeat).
    touched: Vec<u32>,
    proposals: Vec<WordProposal>,
    nonzeros: Vec<(u32, i32)>,
    /// (position in `z`, word-order index, word index in the block), sorted by position.
    order: Vec<(u32, u32, u32)>,
}

impl Worker {
    /// Samples every token of the shard's words `range` in document order. `rows` yields, for each
    /// word of the range in order, its pulled non-zero counts (topic, n_wk); `totals` is this
    /// worker's view of n_k and is kept current; the count changes are appended to `deltas`.
    pub fn sample_block<R, I>(
        &mut self,
        range: Range<usize>,
        rows: R,
        totals: &mut [i64],
        deltas: &mut Deltas,
    ) -> Result<()>
    where
        R: IntoIterator<Item = I>,
        I: IntoIterator<Item = (u32, i32)>,
    {
        let k = self.scratch.cur.len();
        let words = range.len();
        let mut bs = std::mem::take(&mut self.block);
        if bs.cur.len() < words * k {
            bs.cur.resize(words * k, 0);
            bs.stale.resize(words * k, 0);
        }
        if bs.proposals.len() < words {
            bs.proposals.resize_with(words, WordProposal::new);
        }
        bs.touched.clear();
        bs.order.clear();
        let mut result = Ok(());
        for (l, row) in rows.into_iter().enumerate().take(words) {
            let word = self.tokens.words()[range.start + l];
            bs.nonzeros.clear();
            for (t, c) in row {
                if c == 0 {
                    continue;
                }
                if c < 0 || t as usize >= k {
                    result = Err(LdaError::Invariant(format!(
                        "word {word}: pulled count {c} at topic {t}"
                    )));
                    break;
                }
                let at = l * k + t as usize;
                bs.nonzeros.push((t, c));
                bs.cur[at] = c;
                bs.stale[at] = c;
                bs.touched.push(at as u32);
            }
            bs.proposals[l].build(
                &bs.nonzeros,
                &bs.stale[l * k..(l + 1) * k],
                self.kernel.beta,
            );
            for i in self.tokens.word_tokens(range.start + l) {
                let (_, pos) = self.tokens.token(i);
                bs.order.push((pos, i as u32, l as u32));
            }
        }
        bs.order.sort_unstable_by_key(|&(pos, _, _)| pos);
        if result.is_ok() {
            result = self.sample_in_order(&mut bs, range.start, k, totals);
        }
        // Emit deltas and clear the scratch rows, also after an error.
        for &at in &bs.touched {
            let at = at as usize;
            let d = bs.cur[at] - bs.stale[at];
            if d != 0 {
                deltas
                    .rows
                    .push(u64::from(self.tokens.words()[range.start + at / k]));
                deltas.cols.push((at % k) as u32);
                deltas.values.push(d);
            }
            bs.cur[at] = 0;
            bs.stale[at] = 0;
        }
        self.block = bs;
        result
    }

    fn sample_in_order(
        &mut self,
        bs: &mut BlockScratch,
        first: usize,
        k: usize,
        totals: &mut [i64],
    ) -> Result<()> {
        let mut doc = 0u32;
        for &(pos, i, l) in &bs.order {
            // Positions ascend, so the document only moves forward.
            while self.tokens.doc_start(doc) + self.tokens.doc_len(doc) <= pos {
                doc += 1;
            }
            let old = u32::from(self.tokens.topic(i as usize));
            let (ko, base) = (old as usize, l as usize * k);
            if bs.cur[base + ko] <= 0 || totals[ko] <= 0 || !self.doc_topics.decrement(doc, old) {
                return Err(LdaError::Invariant(format!(
                    "word {}, topic {old}: n_wk = {}, n_k = {} before removing a token assigned to it",
                    self.tokens.words()[first + l as usize],
                    bs.cur[base + ko],
                    totals[ko]
                )));
            }
            bs.cur[base + ko] -= 1;
            totals[ko] -= 1;

            let start = self.tokens.doc_start(doc) as usize;
            let len = self.tokens.doc_len(doc) as usize;
            let view = View {
                dt: &self.doc_topics,
                doc,
                cur: &bs.cur[base..base + k],
                stale: &bs.stale[base..base + k],
                totals,
                doc_z: &self.tokens.assignments()[start..start + len],
            };
            let new = self
                .kernel
                .sample(&view, &bs.proposals[l as usize], old, old, &mut self.rng);

            let kn = new as usize;
            self.doc_topics.increment(doc, new);
            bs.cur[base + kn] += 1;
            totals[kn] += 1;
            if new != old {
                if bs.cur[base + kn] == 1 && bs.stale[base + kn] == 0 {
                    bs.touched.push((base + kn) as u32);
                }
                self.total_deltas[ko] -= 1;
                self.total_deltas[kn] += 1;
                self.tokens.set_topic(i as usize, pos, new as u16);
            }
        }
        Ok(())
    }
}
