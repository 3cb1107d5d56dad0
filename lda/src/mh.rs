//! The Metropolis-Hastings kernel of LightLDA for one token: cycles of a word-proposal step and a
//! doc-proposal step, each accepted with the exact ratio of target and proposal.
//!
//! Target π(k) = (n_dk + α)(n_wk + β)/(n_k + Vβ), all counts with the current token left out.
//! Both proposals are independence proposals (they do not depend on the chain's state s), so a
//! move s → t is accepted with probability min(1, π(t) q(s) / (π(s) q(t))):
//!
//! * word proposal q_w(k) ∝ ñ_wk + β, where ñ_wk is the snapshot the alias table was built from
//!   (it may be stale: other tokens of the word moved since, other workers pushed since). So
//!   π(t)q(s)/(π(s)q(t)) = (n_dt+α)(n_wt+β)(n_s+Vβ)(ñ_ws+β) / ((n_ds+α)(n_ws+β)(n_t+Vβ)(ñ_wt+β)).
//! * doc proposal: with probability N_d/(N_d+Kα) the topic of a uniformly chosen token of the
//!   document (whose stored topics still include this token's old topic z₀), else a uniform
//!   topic. So q_d(k) ∝ n_dk + [k = z₀] + α with n_dk excluding the token, and the ratio is
//!   (n_dt+α)(n_wt+β)(n_s+Vβ)(n_ds+[s=z₀]+α) / ((n_ds+α)(n_ws+β)(n_t+Vβ)(n_dt+[t=z₀]+α)),
//!   in which the doc factors cancel except at z₀: no document lookup is needed.
//!
//! Ratios are compared by cross-multiplication: no division in the loop.

use rand_xoshiro::rand_core::Rng;

use crate::alias::WordProposal;
use crate::conditional::Hyper;
use crate::rng::{below, unit};

/// The counts the kernel reads for one token (its document d, its word w), all with the token
/// itself left out, plus the document's stored topics for the doc proposal.
pub trait TokenCounts {
    /// n_dk, token excluded.
    fn doc(&self, k: u32) -> u32;
    /// n_wk, token excluded.
    fn word(&self, k: u32) -> i32;
    /// ñ_wk: the counts the word proposal was built from.
    fn stale_word(&self, k: u32) -> i32;
    /// n_k, token excluded.
    fn total(&self, k: u32) -> i64;
    /// N_d, the document's length including the token.
    fn doc_len(&self) -> u32;
    /// The stored topic of the document's `j`-th token (for this token: its old topic z₀).
    fn doc_token_topic(&self, j: u32) -> u32;
}

/// Constants of the kernel, computed once per run.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    pub alpha: f64,
    pub beta: f64,
    pub vbeta: f64,
    pub kalpha: f64,
    pub topics: u32,
    /// Number of (word step, doc step) cycles per token.
    pub cycles: u32,
}

impl Kernel {
    pub fn new(h: &Hyper, cycles: u32) -> Self {
        Kernel {
            alpha: h.alpha,
            beta: h.beta,
            vbeta: h.vbeta(),
            kalpha: h.kalpha(),
            topics: h.topics,
            cycles,
        }
    }

    /// Runs the chain for one token from state `start`; `old` is the token's stored topic z₀
    /// (the doc proposal sees it). Returns the new topic.
    #[inline]
    pub fn sample<C: TokenCounts, R: Rng>(
        &self,
        c: &C,
        q: &WordProposal,
        old: u32,
        start: u32,
        rng: &mut R,
    ) -> u32 {
        let mut st = self.state(c, start);
        let e_old = self.doc_correction(c, old);
        for _ in 0..self.cycles {
            self.word_step(c, q, &mut st, rng);
            self.doc_step(c, old, e_old, &mut st, rng);
        }
        st.topic
    }

    /// The chain's state at topic `k`, its doc factor looked up.
    #[inline]
    pub fn state<C: TokenCounts>(&self, c: &C, k: u32) -> ChainState {
        ChainState {
            topic: k,
            doc: f64::from(c.doc(k)) + self.alpha,
            word: f64::from(c.word(k)) + self.beta,
            total: c.total(k) as f64 + self.vbeta,
        }
    }

    /// e(z₀) = (n_dz₀ + 1 + α)/(n_dz₀ + α): the doc proposal's weight over the target's doc factor
    /// at the token's old topic (it is 1 at every other topic).
    #[inline]
    pub fn doc_correction<C: TokenCounts>(&self, c: &C, old: u32) -> f64 {
        let d = f64::from(c.doc(old)) + self.alpha;
        (d + 1.0) / d
    }

    /// One Metropolis-Hastings step with the word proposal.
    #[inline(always)]
    pub fn word_step<C: TokenCounts, R: Rng>(
        &self,
        c: &C,
        q: &WordProposal,
        st: &mut ChainState,
        rng: &mut R,
    ) {
        let t = q.sample(rng);
        if t == st.topic {
            return;
        }
        if st.doc.is_nan() {
            st.doc = f64::from(c.doc(st.topic)) + self.alpha;
        }
        let cand = self.state(c, t);
        let qs = f64::from(c.stale_word(st.topic)) + self.beta;
        let qt = f64::from(c.stale_word(t)) + self.beta;
        if unit(rng) * (st.doc * st.word * cand.total * qt) < cand.doc * cand.word * st.total * qs {
            *st = cand;
        }
    }

    /// One Metropolis-Hastings step with the doc proposal; `old` is the token's stored topic and
    /// `e_old` its [`Kernel::doc_correction`]. The target's doc factor n_dk + α cancels against the
    /// proposal's n_dk + [k = z₀] + α except at z₀, so this step needs no document lookup:
    /// the ratio is (n_wt+β)(n_s+Vβ)e(s) / ((n_ws+β)(n_t+Vβ)e(t)).
    #[inline(always)]
    pub fn doc_step<C: TokenCounts, R: Rng>(
        &self,
        c: &C,
        old: u32,
        e_old: f64,
        st: &mut ChainState,
        rng: &mut R,
    ) {
        let len = c.doc_len();
        let n_d = f64::from(len);
        let x = unit(rng) * (n_d + self.kalpha);
        let t = if x < n_d {
            c.doc_token_topic((x as u32).min(len - 1))
        } else {
            below(rng, self.topics)
        };
        if t == st.topic {
            return;
        }
        let wt = f64::from(c.word(t)) + self.beta;
        let tt = c.total(t) as f64 + self.vbeta;
        let es = if st.topic == old { e_old } else { 1.0 };
        let et = if t == old { e_old } else { 1.0 };
        if unit(rng) * (st.word * tt * et) < wt * st.total * es {
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
    /// n_dk + α, or NaN when not looked up yet.
    pub doc: f64,
    /// n_wk + β
    pub word: f64,
    /// n_k + Vβ
    pub total: f64,
}

#[cfg(test)]
mod tests;
