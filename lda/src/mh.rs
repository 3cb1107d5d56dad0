//! The Metropolis-Hastings kernel for one token: cycles of a word-proposal step and a
//! doc-proposal step, each accepted with the exact ratio of target and proposal, and each leaving
//! the exact conditional invariant *whatever the token's current topic is*.
//!
//! # Target
//! π(k) = p(z_i = k | z_-i, w) ∝ (n_dk + α_k)(n_wk + β)/(n_k + Vβ), every count with token i left
//! out (written n^-i below; the token sits at its stored topic z₀, which is also where its chain
//! starts).
//!
//! # Why the proposals must not see the token itself
//! A Metropolis-Hastings step with proposal q leaves π invariant when q does not depend on the
//! chain's state. LightLDA's proposals do: the word table is built from a row that still holds the
//! token at z₀, and the doc proposal picks among the document's topics, one of which is z₀. Since
//! z₀ is the chain's start, a correction factor computed for that z₀ makes each step exact only
//! for a z₀ fixed independently of the start, which it is not: Σ_{z₀} π(z₀) P_{z₀}(z₀, ·) ≠ π.
//!
//! Here both proposals are mixtures of "stay where you are" (with a probability that does not
//! depend on z₀) and a proposal built from z_-i only:
//!
//! * **doc proposal**: draw x uniformly in [0, N_d + Kα). If x < N_d it names a slot j of the
//!   document: the token's own slot is a no-op (probability 1/(N_d + Kα), a constant); any other
//!   slot proposes its *current* topic. Otherwise a topic drawn ∝ α_k (uniform while α is
//!   symmetric; an alias table of α once it is optimised, Kα then meaning Σ_k α_k). So, off the
//!   no-op, q_d(k) ∝ n^-i_dk + α_k, exactly the target's doc factor: the acceptance ratio is
//!   (n_wt+β)(n_s+Vβ) / ((n_ws+β)(n_t+Vβ)).
//! * **word proposal**: n^-i_wk as this worker knows it is e_wk + o^-i_wk, where o_wk counts the
//!   worker's own tokens of word w at their *current* topics and e_wk = (pulled row) − (own tokens
//!   at pull time) is everybody else's share, fixed while the block is sampled. Draw x uniformly in
//!   [0, N_own + E + Kβ) (E = Σ_k e_wk). If x < N_own it names one of the worker's tokens of w:
//!   the token's own slot is a no-op (a constant probability again), another token proposes its
//!   current topic. Otherwise draw from the alias table of e_wk + β. Off the no-op,
//!   q_w(k) ∝ o^-i_wk + e_wk + β = n^-i_wk + β, the target's word factor, and the acceptance
//!   ratio is (n_dt+α_t)(n_s+Vβ) / ((n_ds+α_s)(n_t+Vβ)).
//!
//! A kernel "stay with probability p, else MH with q" leaves π invariant when p is a constant and
//! q is independent of the state, so each step, the cycle and the token's update are exact. With
//! one sampler thread the whole training path is an exact Gibbs-equivalent chain on p(z | w) (the
//! enumeration test of `train` checks it); with several, other threads' shares e_wk and n_k are as
//! fresh as the last pull (see `train`).
//!
//! Ratios are compared by cross-multiplication: no division in the loop. Each accepted move looks
//! up only the factors the next step needs, and only when it needs them.

use rand_xoshiro::rand_core::Rng;

use crate::alias::{AliasTable, WordProposal};
use crate::alpha::Alpha;
use crate::conditional::Hyper;
use crate::rng::{below, unit};

/// The counts and topics the kernel reads for one token (its document d, its word w). Counts
/// leave the token out; topic lists include it at its own slot.
pub trait TokenCounts {
    /// n_dk, token excluded.
    fn doc(&self, k: u32) -> u32;
    /// n_wk, token excluded: the worker's current view (pulled row plus its own moves).
    fn word(&self, k: u32) -> i32;
    /// n_k, token excluded.
    fn total(&self, k: u32) -> i64;
    /// N_d, the document's length including the token.
    fn doc_len(&self) -> u32;
    /// The current topic of the document's `j`-th token.
    fn doc_token_topic(&self, j: u32) -> u32;
    /// The token's own slot among its document's tokens.
    fn doc_slot(&self) -> u32;
    /// The number of this worker's tokens of word w, the token included.
    fn word_len(&self) -> u32;
    /// The current topic of this worker's `r`-th token of word w.
    fn word_token_topic(&self, r: u32) -> u32;
    /// The token's own slot among the worker's tokens of w.
    fn word_slot(&self) -> u32;
}

/// Constants of the kernel, computed once per run (α again whenever it is optimised).
#[derive(Debug, Clone)]
pub struct Kernel {
    /// α_k per topic.
    pub alpha: Vec<f64>,
    pub beta: f64,
    pub vbeta: f64,
    /// Σ_k α_k.
    pub kalpha: f64,
    /// Draws a topic ∝ α_k when α is not symmetric (else a uniform draw does).
    alpha_table: Option<AliasTable>,
    pub topics: u32,
    /// Number of (word step, doc step) cycles per token.
    pub cycles: u32,
    /// Negative control for the tests: proposals that see the token at z₀ (LightLDA's flaw).
    #[cfg(test)]
    pub(crate) count_own_token: bool,
}

impl Kernel {
    pub fn new(h: &Hyper, cycles: u32) -> Self {
        Kernel {
            alpha: vec![h.alpha; h.topics as usize],
            beta: h.beta,
            vbeta: h.vbeta(),
            kalpha: h.kalpha(),
            alpha_table: None,
            topics: h.topics,
            cycles,
            #[cfg(test)]
            count_own_token: false,
        }
    }

    /// Uses `alpha` as the document-topic prior from now on.
    pub fn set_alpha(&mut self, alpha: &Alpha) {
        self.alpha.clear();
        self.alpha.extend_from_slice(alpha.values());
        self.kalpha = alpha.sum();
        self.alpha_table = (!alpha.is_symmetric()).then(|| {
            let mut t = AliasTable::new();
            t.build(alpha.values().iter().copied());
            t
        });
    }

    /// Whether a proposal that named the token's own slot is a no-op (always, but in the
    /// negative-control kernel of the tests).
    #[inline(always)]
    fn skips_own_slot(&self) -> bool {
        #[cfg(test)]
        {
            !self.count_own_token
        }
        #[cfg(not(test))]
        {
            true
        }
    }

    /// Runs the chain for one token from its stored topic `start` (z₀); returns the new topic.
    /// `q` is the alias table of everybody else's share e_wk + β (see the module documentation).
    #[inline]
    pub fn sample<C: TokenCounts, R: Rng>(
        &self,
        c: &C,
        q: &WordProposal,
        start: u32,
        rng: &mut R,
    ) -> u32 {
        let mut st = self.state(c, start);
        for _ in 0..self.cycles {
            self.word_step(c, q, &mut st, rng);
            self.doc_step(c, &mut st, rng);
        }
        st.topic
    }

    /// The chain's state at topic `k`, its factors looked up.
    #[inline]
    pub fn state<C: TokenCounts>(&self, c: &C, k: u32) -> ChainState {
        ChainState {
            topic: k,
            doc: f64::from(c.doc(k)) + self.alpha[k as usize],
            word: f64::from(c.word(k)) + self.beta,
            total: c.total(k) as f64 + self.vbeta,
        }
    }

    /// One Metropolis-Hastings step with the word proposal q_w(k) ∝ n^-i_wk + β.
    #[inline(always)]
    pub fn word_step<C: TokenCounts, R: Rng>(
        &self,
        c: &C,
        q: &WordProposal,
        st: &mut ChainState,
        rng: &mut R,
    ) {
        let own = c.word_len();
        let x = unit(rng) * (f64::from(own) + q.mass());
        let t = if x < f64::from(own) {
            let r = (x as u32).min(own - 1);
            if r == c.word_slot() && self.skips_own_slot() {
                return;
            }
            c.word_token_topic(r)
        } else {
            q.sample(rng)
        };
        if t == st.topic {
            return;
        }
        if st.doc.is_nan() {
            st.doc = f64::from(c.doc(st.topic)) + self.alpha[st.topic as usize];
        }
        let dt = f64::from(c.doc(t)) + self.alpha[t as usize];
        let tt = c.total(t) as f64 + self.vbeta;
        if unit(rng) * (st.doc * tt) < dt * st.total {
            // The word factor of the new state is looked up only if a doc step needs it.
            *st = ChainState {
                topic: t,
                doc: dt,
                word: f64::NAN,
                total: tt,
            };
        }
    }

    /// One Metropolis-Hastings step with the doc proposal q_d(k) ∝ n^-i_dk + α.
    #[inline(always)]
    pub fn doc_step<C: TokenCounts, R: Rng>(&self, c: &C, st: &mut ChainState, rng: &mut R) {
        let len = c.doc_len();
        let n_d = f64::from(len);
        let x = unit(rng) * (n_d + self.kalpha);
        let t = if x < n_d {
            let j = (x as u32).min(len - 1);
            if j == c.doc_slot() && self.skips_own_slot() {
                return;
            }
            c.doc_token_topic(j)
        } else {
            match &self.alpha_table {
                Some(table) => table.sample(rng),
                None => below(rng, self.topics),
            }
        };
        if t == st.topic {
            return;
        }
        if st.word.is_nan() {
            st.word = f64::from(c.word(st.topic)) + self.beta;
        }
        let wt = f64::from(c.word(t)) + self.beta;
        let tt = c.total(t) as f64 + self.vbeta;
        if unit(rng) * (st.word * tt) < wt * st.total {
            // The doc factor of the new state is looked up only if a word step needs it.
            *st = ChainState {
                topic: t,
                doc: f64::NAN,
                word: wt,
                total: tt,
            };
        }
    }
}

/// The chain's current topic and the three factors of π at it.
#[derive(Debug, Clone, Copy)]
pub struct ChainState {
    pub topic: u32,
    /// n_dk + α_k, or NaN when not looked up yet.
    pub doc: f64,
    /// n_wk + β, or NaN when not looked up yet.
    pub word: f64,
    /// n_k + Vβ
    pub total: f64,
}

#[cfg(test)]
mod tests;
