//! Held-out perplexity by document completion (Wallach et al. 2009, "Evaluation methods for topic
//! models"), computed from φ alone so that any system's model is scored by the same code.
//!
//! For each test document, with its out-of-vocabulary tokens dropped (and counted), the remaining
//! tokens in order are split alternately: positions 0, 2, 4, … are observed, 1, 3, 5, … held out.
//! θ_d is inferred from the observed half by collapsed Gibbs with φ fixed ([`crate::fold_in`]:
//! z initialised from p(z = k | w) ∝ φ_kw, 100 sweeps, θ̂ = (n_dk + α)/(n_d + Kα) averaged over the
//! 50 sweeps after 50 of burn-in, seeded), and
//!
//! ```text
//! perplexity = exp( − Σ_d Σ_{held-out w in d} log Σ_k θ̂_dk φ_kw  /  N_held-out )
//! ```
//!
//! Documents with fewer than 2 in-vocabulary tokens contribute nothing.

use serde::Serialize;

use crate::docs::AlignedDocs;
use crate::error::{EvalError, Result};
use crate::fold_in::{FoldIn, FoldInOptions, doc_rng};
use crate::model::TopicModel;

/// The figure and what it was computed over.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldOutPerplexity {
    pub perplexity: f64,
    /// Σ log p(held-out word | observed half), natural log.
    pub log_likelihood: f64,
    pub held_out_tokens: u64,
    pub observed_tokens: u64,
    /// Documents with at least 2 in-vocabulary tokens.
    pub documents_scored: u64,
    pub documents_skipped: u64,
    /// Test tokens whose term the model does not know.
    pub out_of_vocabulary_tokens: u64,
}

/// Options of the held-out computation.
#[derive(Debug, Clone)]
pub struct PerplexityOptions {
    pub fold_in: FoldInOptions,
    /// α per topic; `None` takes the model's.
    pub alpha: Option<f64>,
    pub threads: usize,
}

impl Default for PerplexityOptions {
    fn default() -> Self {
        PerplexityOptions {
            fold_in: FoldInOptions::default(),
            alpha: None,
            threads: 1,
        }
    }
}

/// One thread's scorer: the model's word-major φ and α, and reusable buffers.
struct Scorer<'a> {
    phi_wk: &'a [f64],
    alpha: &'a [f64],
    opts: &'a FoldInOptions,
    fold: FoldIn,
    observed: Vec<u32>,
    theta: Vec<f64>,
}

impl Scorer<'_> {
    /// (log-likelihood, held-out tokens, observed tokens) of document `index`; zeros when skipped.
    fn score(&mut self, words: &[u32], index: u64) -> (f64, u64, u64) {
        if words.len() < 2 {
            return (0.0, 0, 0);
        }
        let k = self.alpha.len();
        self.observed.clear();
        self.observed.extend(words.iter().step_by(2).copied());
        let mut rng = doc_rng(self.opts.seed, index);
        self.fold.theta(
            &self.observed,
            self.phi_wk,
            self.alpha,
            self.opts,
            &mut rng,
            &mut self.theta,
        );
        let mut ll = 0.0;
        let mut held = 0u64;
        for &w in words.iter().skip(1).step_by(2) {
            let col = &self.phi_wk[w as usize * k..(w as usize + 1) * k];
            let p: f64 = self.theta.iter().zip(col).map(|(t, f)| t * f).sum();
            ll += p.ln();
            held += 1;
        }
        (ll, held, self.observed.len() as u64)
    }
}

/// Held-out perplexity of `model` on `test` (see the module documentation).
pub fn held_out_perplexity(
    model: &TopicModel,
    test: &AlignedDocs,
    opts: &PerplexityOptions,
) -> Result<HeldOutPerplexity> {
    opts.fold_in.validate()?;
    let alpha = model.alpha_or(opts.alpha)?;
    let phi_wk = model.word_major();
    let k = model.topics;
    let threads = opts.threads.max(1).min(test.len().max(1));
    let chunk = test.len().div_ceil(threads).max(1);
    let mut per_doc = vec![(0.0f64, 0u64, 0u64); test.len()];
    std::thread::scope(|s| {
        for (c, out) in per_doc.chunks_mut(chunk).enumerate() {
            let (phi_wk, alpha, fo) = (&phi_wk, &alpha, &opts.fold_in);
            s.spawn(move || {
                let mut scorer = Scorer {
                    phi_wk,
                    alpha,
                    opts: fo,
                    fold: FoldIn::new(),
                    observed: Vec::new(),
                    theta: vec![0.0; k],
                };
                for (i, slot) in out.iter_mut().enumerate() {
                    let d = c * chunk + i;
                    *slot = scorer.score(&test.docs[d], d as u64);
                }
            });
        }
    });
    let mut r = HeldOutPerplexity {
        perplexity: f64::NAN,
        log_likelihood: 0.0,
        held_out_tokens: 0,
        observed_tokens: 0,
        documents_scored: 0,
        documents_skipped: 0,
        out_of_vocabulary_tokens: test.dropped_tokens,
    };
    for &(ll, held, obs) in &per_doc {
        if held == 0 {
            r.documents_skipped += 1;
            continue;
        }
        r.documents_scored += 1;
        r.log_likelihood += ll;
        r.held_out_tokens += held;
        r.observed_tokens += obs;
    }
    if r.held_out_tokens == 0 {
        return Err(EvalError::Empty(format!(
            "none of the {} test documents has 2 tokens in the model's vocabulary ({} tokens dropped)",
            test.len(),
            test.dropped_tokens
        )));
    }
    r.perplexity = (-r.log_likelihood / r.held_out_tokens as f64).exp();
    Ok(r)
}
