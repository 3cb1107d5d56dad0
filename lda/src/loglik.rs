//! The log-likelihood of the collapsed joint, log p(w, z) = log p(w | z) + log p(z):
//!
//! log p(w|z) = Σ_k [ln Γ(Vβ) − ln Γ(n_k + Vβ) + Σ_w (ln Γ(n_wk + β) − ln Γ(β))]
//! log p(z)   = Σ_d [ln Γ(Σα) − ln Γ(N_d + Σα) + Σ_k (ln Γ(n_dk + α_k) − ln Γ(α_k))]
//!
//! Zero counts contribute nothing to the inner sums, so both halves cost O(non-zeros).

use crate::alpha::Alpha;
use crate::conditional::Hyper;
use crate::doc_topics::DocTopics;
use crate::math::ln_gamma;
use crate::tokens::TokenShard;

/// The word half, from the topic totals and every non-zero n_wk.
pub fn word_part(h: &Hyper, totals: &[i64], nonzero_counts: impl Iterator<Item = i64>) -> f64 {
    let lg_beta = ln_gamma(h.beta);
    let lg_vbeta = ln_gamma(h.vbeta());
    let mut ll: f64 = totals
        .iter()
        .map(|&n| lg_vbeta - ln_gamma(n as f64 + h.vbeta()))
        .sum();
    for n in nonzero_counts {
        ll += ln_gamma(n as f64 + h.beta) - lg_beta;
    }
    ll
}

/// The document half for one worker's documents, under the prior `alpha` (one α_k per topic).
pub fn doc_part(alpha: &Alpha, tokens: &TokenShard, dt: &DocTopics) -> f64 {
    let mut nz = Vec::new();
    let mut ll = 0.0;
    for d in 0..tokens.num_docs() as u32 {
        dt.nonzeros(d, &mut nz);
        ll += alpha.doc_loglik(tokens.doc_len(d), &nz);
    }
    ll
}

/// Per-token perplexity of the collapsed joint, exp(−log p(w, z) / N): a training diagnostic, not
/// a predictive perplexity (held-out perplexity is `evaluation::held_out_perplexity`).
pub fn joint_perplexity(loglik: f64, tokens: u64) -> f64 {
    if tokens == 0 {
        f64::NAN
    } else {
        (-loglik / tokens as f64).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the joint of a 2-document, 2-topic, 2-word corpus from the Dirichlet-multinomial
    /// formula written out with Γ directly.
    #[test]
    fn matches_the_dirichlet_multinomial_formula() {
        let h = Hyper {
            topics: 2,
            vocab: 2,
            alpha: 0.5,
            beta: 0.25,
        };
        // doc0: (w0,z0) (w1,z0) (w1,z1); doc1: (w0,z1)
        let docs: Vec<Vec<u32>> = vec![vec![0, 1, 1], vec![0]];
        let mut s = TokenShard::build(docs.iter().map(|d| d.as_slice()), 2, true, |d| {
            d.to_string()
        })
        .unwrap();
        s.set_assignments(vec![0, 0, 1, 1]).unwrap();
        let mut dt = DocTopics::new([3u32, 1].into_iter(), 2);
        for (d, z) in [(0, 0), (0, 0), (0, 1), (1, 1)] {
            dt.increment(d, z);
        }
        // n_wk: w0: [1, 1], w1: [1, 1]; n_k = [2, 2]
        let ll = word_part(&h, &[2, 2], [1i64, 1, 1, 1].into_iter())
            + doc_part(&Alpha::symmetric(h.topics, h.alpha), &s, &dt);
        let g = |x: f64| ln_gamma(x);
        let topic = g(0.5) - g(2.5) + 2.0 * (g(1.25) - g(0.25));
        let word_half = 2.0 * topic;
        let doc0 = g(1.0) - g(4.0) + (g(2.5) - g(0.5)) + (g(1.5) - g(0.5));
        let doc1 = g(1.0) - g(2.0) + (g(1.5) - g(0.5));
        let expected = word_half + doc0 + doc1;
        assert!((ll - expected).abs() < 1e-10, "{ll} vs {expected}");
        // Γ(2.5)/Γ(0.5) = 0.75 ⇒ sanity of the hand formula itself.
        assert!(((g(2.5) - g(0.5)).exp() - 0.75).abs() < 1e-12);
        // An asymmetric α = (0.2, 0.8): Σα = 1 still, each topic its own α_k.
        let asym = Alpha::from_values(vec![0.2, 0.8]).unwrap();
        let doc0 = g(1.0) - g(4.0) + (g(2.2) - g(0.2)) + (g(1.8) - g(0.8));
        let doc1 = g(1.0) - g(2.0) + (g(1.8) - g(0.8));
        assert!((doc_part(&asym, &s, &dt) - (doc0 + doc1)).abs() < 1e-10);
    }
}
