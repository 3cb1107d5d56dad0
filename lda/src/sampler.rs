//! One worker's sampling state and the per-word loop: fill scratch rows from the word's pulled
//! counts, build its proposal, run the MH kernel for each of its tokens, and emit the deltas.
//!
//! Tokens are grouped by word, so a word's row is held in a dense K-wide scratch for as long as its
//! tokens are sampled (O(1) lookups, no hashing) and cleared in O(non-zeros) afterwards.

use crate::alias::WordProposal;
use crate::alpha::{Alpha, DocCountHistogram};
use crate::conditional::Hyper;
use crate::doc_topics::DocTopics;
use crate::error::{LdaError, Result};
use crate::mh::{Kernel, TokenCounts};
use crate::rng::SamplerRng;
use crate::tokens::TokenShard;

/// How a token's new topic is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Metropolis-Hastings cycles of word and doc proposals, O(1) per token (large K).
    Mh,
    /// The exact conditional over all K topics, O(K) per token (small K).
    Gibbs,
    /// The same exact conditional in O(K_d + log K) per token, K_d the document's distinct
    /// topics (large K); always samples word by word.
    Sparse,
}

impl SamplerKind {
    /// Largest K at which [`SamplerKind::auto`] picks the dense exact draw.
    pub const AUTO_GIBBS_MAX_K: u32 = 200;

    /// The sampler that reached a held-out perplexity soonest at `topics` topics in the quality
    /// benchmark (ARCHITECTURE.md, "Which sampler when").
    pub fn auto(topics: u32) -> Self {
        if topics <= Self::AUTO_GIBBS_MAX_K {
            SamplerKind::Gibbs
        } else {
            SamplerKind::Sparse
        }
    }
}

/// Additive updates of the word-topic matrix produced by sampling, as parallel arrays.
#[derive(Debug, Default, Clone)]
pub struct Deltas {
    pub rows: Vec<u64>,
    pub cols: Vec<u32>,
    pub values: Vec<i32>,
}

impl Deltas {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.cols.clear();
        self.values.clear();
    }
}

/// Reusable per-word buffers.
#[derive(Debug)]
struct Scratch {
    /// Current n_wk of the word being sampled (pulled value + this worker's moves).
    cur: Vec<i32>,
    /// ñ_wk: the pulled value (deltas are `cur - stale`).
    stale: Vec<i32>,
    /// Zeroed K-wide scratch of [`external_share`].
    ext: Vec<i32>,
    /// Current topics of the word's tokens, in word order.
    word_z: Vec<u16>,
    /// Topics where `cur` or `stale` may be non-zero (may repeat).
    touched: Vec<u32>,
    nonzeros: Vec<(u32, i32)>,
    /// e_wk as non-zeros (see [`external_share`]).
    ext_nonzeros: Vec<(u32, i32)>,
    proposal: WordProposal,
}

/// A worker: its tokens, their per-document counts, its random stream and its kernel.
#[derive(Debug)]
pub struct Worker {
    pub tokens: TokenShard,
    pub doc_topics: DocTopics,
    pub rng: SamplerRng,
    kernel: Kernel,
    kind: SamplerKind,
    /// K-wide scratch of the exact Gibbs draw (word order), and of the dense draw with its
    /// block sums (document order).
    weights: Vec<f64>,
    dense_weights: Vec<f32>,
    weight_sums: Vec<f32>,
    scratch: Scratch,
    /// This worker's changes of n_k since the last [`Worker::take_total_deltas`].
    total_deltas: Vec<i64>,
    block: doc_order::BlockScratch,
    /// The sparse draw's per-document lists and tree (only for [`SamplerKind::Sparse`]).
    sparse: Option<sparse_word::SparseState>,
}

/// A word's current counts n_wk in one of the two scratch layouts.
pub(crate) trait WordRow {
    fn count(&self, k: usize) -> i32;
}

/// A dense row of current counts (sampling word by word).
impl WordRow for &[i32] {
    #[inline(always)]
    fn count(&self, k: usize) -> i32 {
        self[k]
    }
}

/// (current, pulled) pairs (sampling in document order): one cache line holds both, and the
/// pulled value is what deltas are computed against.
impl WordRow for &[[i32; 2]] {
    #[inline(always)]
    fn count(&self, k: usize) -> i32 {
        self[k][0]
    }
}

/// The counts one token's chain reads.
pub(crate) struct View<'a, W> {
    dt: &'a DocTopics,
    doc: u32,
    row: W,
    totals: &'a [i64],
    doc_z: &'a [u16],
    doc_slot: u32,
    /// Current topics of this worker's tokens of the word.
    word_z: &'a [u16],
    word_slot: u32,
}

impl<W: WordRow> TokenCounts for View<'_, W> {
    #[inline(always)]
    fn doc(&self, k: u32) -> u32 {
        self.dt.get(self.doc, k)
    }
    #[inline(always)]
    fn word(&self, k: u32) -> i32 {
        self.row.count(k as usize)
    }
    #[inline(always)]
    fn total(&self, k: u32) -> i64 {
        self.totals[k as usize]
    }
    #[inline(always)]
    fn doc_len(&self) -> u32 {
        self.doc_z.len() as u32
    }
    #[inline(always)]
    fn doc_token_topic(&self, j: u32) -> u32 {
        u32::from(self.doc_z[j as usize])
    }
    #[inline(always)]
    fn doc_slot(&self) -> u32 {
        self.doc_slot
    }
    #[inline(always)]
    fn word_len(&self) -> u32 {
        self.word_z.len() as u32
    }
    #[inline(always)]
    fn word_token_topic(&self, r: u32) -> u32 {
        u32::from(self.word_z[r as usize])
    }
    #[inline(always)]
    fn word_slot(&self) -> u32 {
        self.word_slot
    }
}

/// e_wk, everybody else's share of word `word`'s row: the pulled non-zeros minus this worker's
/// tokens of the word at their topics as of the pull (`own`). Written to `out` as non-zeros;
/// `ext` is a K-wide zeroed scratch, zeroed again on return. A pulled row that does not hold the
/// worker's own tokens is an invariant violation (its pushes are waited for before it pulls).
pub(crate) fn external_share(
    word: u32,
    pulled: &[(u32, i32)],
    own: impl Iterator<Item = u16> + Clone,
    ext: &mut [i32],
    out: &mut Vec<(u32, i32)>,
) -> Result<()> {
    for &(t, c) in pulled {
        ext[t as usize] = c;
    }
    let mut short = None;
    for z in own.clone() {
        let e = &mut ext[usize::from(z)];
        *e -= 1;
        if *e < 0 {
            short = Some(z);
        }
    }
    out.clear();
    for &(t, _) in pulled {
        let e = ext[t as usize];
        if e > 0 {
            out.push((t, e));
        }
        ext[t as usize] = 0;
    }
    for z in own {
        ext[usize::from(z)] = 0;
    }
    match short {
        None => Ok(()),
        Some(z) => Err(LdaError::Invariant(format!(
            "word {word}: the pulled row holds fewer tokens at topic {z} than this worker has there"
        ))),
    }
}

/// The invariant violation of a token whose topic's counts do not hold it.
fn missing_token(word: u32, topic: u32, n_wk: i32, n_k: i64) -> LdaError {
    LdaError::Invariant(format!(
        "word {word}, topic {topic}: n_wk = {n_wk}, n_k = {n_k} before removing a token assigned to it"
    ))
}

/// A token of the word being sampled (word-order index `token`, document-order `pos`, `slot`
/// among the word's tokens) moved from `old` to `new` ≠ `old`.
struct Move {
    token: usize,
    pos: u32,
    slot: usize,
    old: u32,
    new: u32,
}

impl Move {
    /// Records the move beside the counts (already updated): the row cell to push, n_k's
    /// deltas and the assignments.
    #[inline(always)]
    fn record(&self, scratch: &mut Scratch, total_deltas: &mut [i64], tokens: &mut TokenShard) {
        let (ko, kn) = (self.old as usize, self.new as usize);
        if scratch.cur[kn] == 1 && scratch.stale[kn] == 0 {
            scratch.touched.push(self.new);
        }
        total_deltas[ko] -= 1;
        total_deltas[kn] += 1;
        tokens.set_topic(self.token, self.pos, self.new as u16);
        scratch.word_z[self.slot] = self.new as u16;
    }
}

impl Worker {
    /// A worker over `tokens` whose assignments are already set; computes n_dk from them.
    pub fn new(
        tokens: TokenShard,
        h: &Hyper,
        kind: SamplerKind,
        mh_cycles: u32,
        rng: SamplerRng,
    ) -> Self {
        let k = h.topics as usize;
        let mut doc_topics = DocTopics::new(
            (0..tokens.num_docs() as u32).map(|d| tokens.doc_len(d)),
            h.topics,
        );
        for d in 0..tokens.num_docs() as u32 {
            for &z in tokens.doc_topics(d) {
                doc_topics.increment(d, u32::from(z));
            }
        }
        let sparse = (kind == SamplerKind::Sparse)
            .then(|| sparse_word::SparseState::new(&tokens, &doc_topics, h.topics));
        let mut worker = Worker {
            sparse,
            tokens,
            doc_topics,
            rng,
            kernel: Kernel::new(h, mh_cycles),
            kind,
            weights: vec![0.0; k],
            dense_weights: vec![0.0; k],
            weight_sums: Vec::new(),
            scratch: Scratch {
                cur: vec![0; k],
                stale: vec![0; k],
                ext: vec![0; k],
                word_z: Vec::new(),
                touched: Vec::new(),
                nonzeros: Vec::new(),
                ext_nonzeros: Vec::new(),
                proposal: WordProposal::new(),
            },
            total_deltas: vec![0; k],
            block: doc_order::BlockScratch::default(),
        };
        worker.set_alpha(&Alpha::symmetric(h.topics, h.alpha));
        worker
    }

    /// Samples against the document-topic prior `alpha` from now on.
    pub fn set_alpha(&mut self, alpha: &Alpha) {
        self.kernel.set_alpha(alpha);
        if let Some(st) = self.sparse.as_mut() {
            st.set_alpha(alpha.values());
        }
    }

    /// The documents' n_dk as a histogram (for the optimisation of α).
    pub fn doc_count_histogram(&self) -> DocCountHistogram {
        let mut hist = DocCountHistogram::new(self.kernel.alpha.len());
        let mut nz = Vec::new();
        for d in 0..self.tokens.num_docs() as u32 {
            self.doc_topics.nonzeros(d, &mut nz);
            hist.add_doc(self.tokens.doc_len(d), &nz);
        }
        hist
    }

    /// Switches to the negative-control kernel whose proposals see the token itself.
    #[cfg(test)]
    pub(crate) fn use_flawed_kernel(&mut self) {
        self.kernel.count_own_token = true;
    }

    /// The changes of n_k made since the last call, reset to zero.
    pub fn take_total_deltas(&mut self, out: &mut Vec<(u32, i64)>) {
        out.clear();
        for (k, d) in self.total_deltas.iter_mut().enumerate() {
            if *d != 0 {
                out.push((k as u32, *d));
                *d = 0;
            }
        }
    }

    /// Samples every token of the shard's `j`-th word. `row` yields the word's pulled non-zero
    /// counts (topic, n_wk), each topic once; `totals` is this worker's view of n_k and is kept
    /// current. The word's count changes are appended to `deltas`.
    pub fn sample_word(
        &mut self,
        j: usize,
        row: impl Iterator<Item = (u32, i32)>,
        totals: &mut [i64],
        deltas: &mut Deltas,
    ) -> Result<()> {
        let word = self.tokens.words()[j];
        let sc = &mut self.scratch;
        sc.nonzeros.clear();
        sc.touched.clear();
        for (k, c) in row {
            if c != 0 {
                if c < 0 || k as usize >= sc.cur.len() {
                    return Err(LdaError::Invariant(format!(
                        "word {word}: pulled count {c} at topic {k}"
                    )));
                }
                sc.nonzeros.push((k, c));
                sc.cur[k as usize] = c;
                sc.stale[k as usize] = c;
                sc.touched.push(k);
            }
        }
        sc.word_z.clear();
        sc.word_z
            .extend(self.tokens.word_tokens(j).map(|i| self.tokens.topic(i)));
        let mut ext = std::mem::take(&mut sc.ext_nonzeros);
        let mut result = external_share(
            word,
            &sc.nonzeros,
            sc.word_z.iter().copied(),
            &mut sc.ext,
            &mut ext,
        );
        if result.is_ok() {
            result = match self.kind {
                SamplerKind::Sparse => self.sample_tokens_sparse(j, word, totals),
                SamplerKind::Mh | SamplerKind::Gibbs => {
                    if self.kind == SamplerKind::Mh {
                        sc.proposal.build(&ext, sc.cur.len(), self.kernel.beta);
                    }
                    self.sample_tokens(j, word, totals)
                }
            };
        }
        self.scratch.ext_nonzeros = ext;

        // Emit deltas and clear the scratch rows, also after an error.
        let sc = &mut self.scratch;
        for &k in &sc.touched {
            let d = sc.cur[k as usize] - sc.stale[k as usize];
            if d != 0 {
                deltas.rows.push(u64::from(word));
                deltas.cols.push(k);
                deltas.values.push(d);
            }
            sc.cur[k as usize] = 0;
            sc.stale[k as usize] = 0;
        }
        result
    }

    fn sample_tokens(&mut self, j: usize, word: u32, totals: &mut [i64]) -> Result<()> {
        let range = self.tokens.word_tokens(j);
        let first = range.start;
        for i in range {
            let (doc, pos) = self.tokens.token(i);
            let old = u32::from(self.tokens.topic(i));
            let ko = old as usize;
            // Leave the token out of every count.
            if self.scratch.cur[ko] <= 0 || totals[ko] <= 0 || !self.doc_topics.decrement(doc, old)
            {
                return Err(missing_token(word, old, self.scratch.cur[ko], totals[ko]));
            }
            self.scratch.cur[ko] -= 1;
            totals[ko] -= 1;

            let start = self.tokens.doc_start(doc) as usize;
            let len = self.tokens.doc_len(doc) as usize;
            let view = View {
                dt: &self.doc_topics,
                doc,
                row: &self.scratch.cur[..],
                totals,
                doc_z: &self.tokens.assignments()[start..start + len],
                doc_slot: pos - start as u32,
                word_z: &self.scratch.word_z,
                word_slot: (i - first) as u32,
            };
            let new = match self.kind {
                SamplerKind::Mh => {
                    self.kernel
                        .sample(&view, &self.scratch.proposal, old, &mut self.rng)
                }
                SamplerKind::Gibbs | SamplerKind::Sparse => {
                    crate::gibbs::draw(&self.kernel, &view, &mut self.weights, &mut self.rng)
                }
            };

            let kn = new as usize;
            self.doc_topics.increment(doc, new);
            self.scratch.cur[kn] += 1;
            totals[kn] += 1;
            if new != old {
                let moved = Move {
                    token: i,
                    pos,
                    slot: i - first,
                    old,
                    new,
                };
                moved.record(&mut self.scratch, &mut self.total_deltas, &mut self.tokens);
            }
        }
        Ok(())
    }
}

mod doc_order;
mod sparse_word;

#[cfg(test)]
mod tests;
