//! Sampling a whole vocabulary block in document order (LightLDA's order).
//!
//! Sampling word by word visits a scattered document for every token, and the document's counts
//! and topics are then cache misses. Here the block's rows are all held in K-wide scratch rows and
//! its tokens are grouped by document, so consecutive tokens share a document (its counts and
//! topics stay in cache) and the word side, a block of rows, is the part accessed at random.
//! The chain for each token is the same kernel; only the order of tokens differs.

use std::ops::Range;

use super::{Deltas, SamplerKind, View, Worker, external_share};
use crate::alias::WordProposal;
use crate::error::{LdaError, Result};

/// Reusable buffers of block sampling.
#[derive(Debug, Default)]
pub(crate) struct BlockScratch {
    /// (n_wk, ñ_wk) of the block's words, row `l` at `l * K`: the current count beside the
    /// pulled one the proposal was built from, so a lookup of both is one cache line.
    rows: Vec<[i32; 2]>,
    /// Flat indices where `cur` or `stale` may be non-zero (may repeat).
    touched: Vec<u32>,
    proposals: Vec<WordProposal>,
    nonzeros: Vec<(u32, i32)>,
    ext_nonzeros: Vec<(u32, i32)>,
    /// Zeroed K-wide scratch of [`external_share`].
    ext: Vec<i32>,
    /// Current topics of the block's tokens in word order (index: word-order index minus the
    /// block's first), for the word proposal.
    word_z: Vec<u16>,
    /// Exact Gibbs only: the current document's n_dk + α_k as a dense row, and 1/(n_k + Vβ).
    doc_dense: Vec<f32>,
    inv_total: Vec<f32>,
    doc_nonzeros: Vec<(u32, u32)>,
    /// The documents the block touches, ascending.
    docs: Vec<u32>,
    /// Per document: its token count in the block, then where its tokens end in `order`;
    /// zero again between blocks.
    doc_end: Vec<u32>,
    /// (position in `z`, word index in the block, index in `word_z`), grouped by document in
    /// `docs` order.
    order: Vec<[u32; 3]>,
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
        if range.is_empty() {
            return Ok(());
        }
        let k = self.scratch.cur.len();
        let words = range.len();
        let mut bs = std::mem::take(&mut self.block);
        if bs.rows.len() < words * k {
            bs.rows.resize(words * k, [0, 0]);
        }
        if bs.proposals.len() < words {
            bs.proposals.resize_with(words, WordProposal::new);
        }
        bs.touched.clear();
        bs.order.clear();
        if bs.ext.len() < k {
            bs.ext.resize(k, 0);
        }
        let base = self.tokens.word_tokens(range.start).start;
        // The word-order topics and the proposals serve the MH kernel only.
        let mh = self.kind == SamplerKind::Mh;
        bs.word_z.clear();
        if mh && words > 0 {
            let end = self.tokens.word_tokens(range.end - 1).end;
            bs.word_z.extend((base..end).map(|i| self.tokens.topic(i)));
        }
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
                bs.rows[at] = [c, c];
                bs.touched.push(at as u32);
            }
            if result.is_err() {
                break;
            }
            if !mh {
                continue;
            }
            let own = self.tokens.word_tokens(range.start + l);
            let own = &bs.word_z[own.start - base..own.end - base];
            result = external_share(
                word,
                &bs.nonzeros,
                own.iter().copied(),
                &mut bs.ext,
                &mut bs.ext_nonzeros,
            );
            bs.proposals[l].build(&bs.ext_nonzeros, k, self.kernel.beta);
        }
        self.group_by_document(&mut bs, range.clone());
        if result.is_ok() {
            result = self.sample_in_order(&mut bs, range.start, k, totals);
        }
        // Emit deltas and clear the scratch rows, also after an error.
        for &at in &bs.touched {
            let at = at as usize;
            let [cur, stale] = bs.rows[at];
            let d = cur - stale;
            if d != 0 {
                deltas
                    .rows
                    .push(u64::from(self.tokens.words()[range.start + at / k]));
                deltas.cols.push((at % k) as u32);
                deltas.values.push(d);
            }
            bs.rows[at] = [0, 0];
        }
        for &d in &bs.docs {
            bs.doc_end[d as usize] = 0;
        }
        self.block = bs;
        result
    }

    /// Counting sort of the block's tokens by document (tokens of a word come in document order,
    /// those of the block do not): two sequential passes over the block's word-order arrays.
    fn group_by_document(&self, bs: &mut BlockScratch, range: Range<usize>) {
        if bs.doc_end.len() < self.tokens.num_docs() {
            bs.doc_end.resize(self.tokens.num_docs(), 0);
        }
        bs.docs.clear();
        let mut total = 0usize;
        for j in range.clone() {
            for i in self.tokens.word_tokens(j) {
                let (d, _) = self.tokens.token(i);
                let c = &mut bs.doc_end[d as usize];
                if *c == 0 {
                    bs.docs.push(d);
                }
                *c += 1;
                total += 1;
            }
        }
        bs.docs.sort_unstable();
        let mut start = 0u32;
        for &d in &bs.docs {
            let c = bs.doc_end[d as usize];
            bs.doc_end[d as usize] = start;
            start += c;
        }
        bs.order.clear();
        bs.order.resize(total, [0; 3]);
        let base = self.tokens.word_tokens(range.start).start;
        for (l, j) in range.enumerate() {
            for i in self.tokens.word_tokens(j) {
                let (d, pos) = self.tokens.token(i);
                let at = &mut bs.doc_end[d as usize];
                bs.order[*at as usize] = [pos, l as u32, (i - base) as u32];
                *at += 1;
            }
        }
    }

    fn sample_in_order(
        &mut self,
        bs: &mut BlockScratch,
        first: usize,
        k: usize,
        totals: &mut [i64],
    ) -> Result<()> {
        let word_base = self.tokens.word_tokens(first).start;
        let gibbs = self.kind == SamplerKind::Gibbs;
        let vbeta = self.kernel.vbeta;
        let inv = |t: i64| (1.0 / (t as f64 + vbeta)) as f32;
        if gibbs {
            bs.inv_total.clear();
            bs.inv_total.extend(totals.iter().map(|&t| inv(t)));
            bs.doc_dense.resize(k, 0.0);
        }
        let mut begin = 0usize;
        for &doc in &bs.docs {
            let end = bs.doc_end[doc as usize] as usize;
            let start = self.tokens.doc_start(doc) as usize;
            let len = self.tokens.doc_len(doc) as usize;
            if gibbs {
                for (x, &a) in bs.doc_dense.iter_mut().zip(&self.kernel.alpha) {
                    *x = a as f32;
                }
                self.doc_topics.nonzeros(doc, &mut bs.doc_nonzeros);
                for &(t, c) in &bs.doc_nonzeros {
                    bs.doc_dense[t as usize] += c as f32;
                }
            }
            for &[pos, l, wz] in &bs.order[begin..end] {
                let old = u32::from(self.tokens.assignments()[pos as usize]);
                let (ko, base) = (old as usize, l as usize * k);
                if bs.rows[base + ko][0] <= 0
                    || totals[ko] <= 0
                    || !self.doc_topics.decrement(doc, old)
                {
                    return Err(LdaError::Invariant(format!(
                        "word {}, topic {old}: n_wk = {}, n_k = {} before removing a token assigned to it",
                        self.tokens.words()[first + l as usize],
                        bs.rows[base + ko][0],
                        totals[ko]
                    )));
                }
                bs.rows[base + ko][0] -= 1;
                totals[ko] -= 1;
                let new = if gibbs {
                    bs.doc_dense[ko] -= 1.0;
                    bs.inv_total[ko] = inv(totals[ko]);
                    crate::gibbs::draw_dense(
                        &bs.doc_dense,
                        &bs.rows[base..base + k],
                        &bs.inv_total,
                        self.kernel.beta as f32,
                        &mut self.dense_weights,
                        &mut self.weight_sums,
                        &mut self.rng,
                    )
                } else {
                    let own = self.tokens.word_tokens(first + l as usize);
                    let (lo, hi) = (own.start - word_base, own.end - word_base);
                    let view = View {
                        dt: &self.doc_topics,
                        doc,
                        row: &bs.rows[base..base + k],
                        totals,
                        doc_z: &self.tokens.assignments()[start..start + len],
                        doc_slot: pos - start as u32,
                        word_z: &bs.word_z[lo..hi],
                        word_slot: wz - lo as u32,
                    };
                    self.kernel
                        .sample(&view, &bs.proposals[l as usize], old, &mut self.rng)
                };

                let kn = new as usize;
                self.doc_topics.increment(doc, new);
                bs.rows[base + kn][0] += 1;
                totals[kn] += 1;
                if gibbs {
                    bs.doc_dense[kn] += 1.0;
                    bs.inv_total[kn] = inv(totals[kn]);
                }
                if new != old {
                    if bs.rows[base + kn] == [1, 0] {
                        bs.touched.push((base + kn) as u32);
                    }
                    self.total_deltas[ko] -= 1;
                    self.total_deltas[kn] += 1;
                    self.tokens.set_position_topic(pos, new as u16);
                    if !gibbs {
                        bs.word_z[wz as usize] = new as u16;
                    }
                }
            }
            begin = end;
        }
        Ok(())
    }
}
