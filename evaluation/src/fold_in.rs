//! Folding a document into a fixed model: collapsed Gibbs sampling of its topic assignments with
//! φ held fixed, p(z_i = k | z_-i, w) ∝ (n_dk^-i + α_k) φ_{k,w_i}, and the estimate
//! θ̂_dk = (n_dk + α_k)/(n_d + Σα) averaged over the sweeps after burn-in.
//!
//! Deterministic: each document's random stream is derived from the seed and the document's
//! index (held-out perplexity) or its tokens (inference, [`content_key`]) alone, so the result
//! does not depend on the thread count or the order of work.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::error::{EvalError, Result};

/// Sweeps, burn-in and seed of the fold-in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldInOptions {
    /// Gibbs sweeps over the document.
    pub sweeps: u32,
    /// Sweeps discarded before θ̂ is averaged (the average runs over sweeps burn_in+1..=sweeps).
    pub burn_in: u32,
    pub seed: u64,
}

impl Default for FoldInOptions {
    fn default() -> Self {
        FoldInOptions {
            sweeps: 100,
            burn_in: 50,
            seed: 1,
        }
    }
}

impl FoldInOptions {
    pub fn validate(&self) -> Result<()> {
        if self.sweeps == 0 || self.burn_in >= self.sweeps {
            return Err(EvalError::InvalidOption(format!(
                "need 0 ≤ burn-in < sweeps, got burn-in {} and sweeps {}",
                self.burn_in, self.sweeps
            )));
        }
        Ok(())
    }
}

/// A key of a document's tokens (order included), for a random stream that depends on what the
/// document holds rather than where it stands: inference gives a document the same θ in any
/// batch (a Spark UDF sees arbitrary batches), and identical documents the same θ.
pub fn content_key(tokens: &[u32]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ tokens.len() as u64;
    for &w in tokens {
        // splitmix64's finaliser over the running state and the word: every bit of each word
        // reaches every bit of the key.
        h = (h ^ u64::from(w)).wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

/// The random stream of document `index`.
pub fn doc_rng(seed: u64, index: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A uniform draw in [0, 1) from 53 random bits.
#[inline]
pub(crate) fn unit<R: Rng>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Draws k with probability `w[k] / total` by a linear scan (K is small next to the cost of
/// filling `w`).
#[inline]
pub(crate) fn draw(w: &[f64], total: f64, u: f64) -> usize {
    let mut x = u * total;
    for (k, &p) in w.iter().enumerate() {
        x -= p;
        if x < 0.0 {
            return k;
        }
    }
    w.len() - 1
}

/// Reusable buffers of one fold-in thread.
#[derive(Debug, Default)]
pub struct FoldIn {
    z: Vec<u32>,
    counts: Vec<u32>,
    weights: Vec<f64>,
}

impl FoldIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in `words` (model columns) and writes the averaged θ̂ to `theta` (length K).
    /// `phi_wk` is φ word-major (`phi_wk[w * K + k]`), `alpha` has K entries.
    pub fn theta(
        &mut self,
        words: &[u32],
        phi_wk: &[f64],
        alpha: &[f64],
        opts: &FoldInOptions,
        rng: &mut impl Rng,
        theta: &mut [f64],
    ) {
        let k = alpha.len();
        let alpha_sum: f64 = alpha.iter().sum();
        theta.iter_mut().for_each(|t| *t = 0.0);
        if words.is_empty() {
            theta
                .iter_mut()
                .zip(alpha)
                .for_each(|(t, a)| *t = a / alpha_sum);
            return;
        }
        self.counts.clear();
        self.counts.resize(k, 0);
        self.weights.resize(k, 0.0);
        self.z.clear();
        // z starts from p(z = k | w) ∝ φ_kw.
        for &w in words {
            let col = &phi_wk[w as usize * k..(w as usize + 1) * k];
            let total: f64 = col.iter().sum();
            let t = draw(col, total, unit(rng));
            self.z.push(t as u32);
            self.counts[t] += 1;
        }
        let norm = 1.0 / (words.len() as f64 + alpha_sum);
        let kept = f64::from(opts.sweeps - opts.burn_in);
        for sweep in 1..=opts.sweeps {
            for (i, &w) in words.iter().enumerate() {
                let col = &phi_wk[w as usize * k..(w as usize + 1) * k];
                let old = self.z[i] as usize;
                self.counts[old] -= 1;
                let mut total = 0.0;
                for t in 0..k {
                    let p = (f64::from(self.counts[t]) + alpha[t]) * col[t];
                    self.weights[t] = p;
                    total += p;
                }
                let new = draw(&self.weights, total, unit(rng));
                self.counts[new] += 1;
                self.z[i] = new as u32;
            }
            if sweep > opts.burn_in {
                for t in 0..k {
                    theta[t] += (f64::from(self.counts[t]) + alpha[t]) * norm / kept;
                }
            }
        }
    }
}

/// φ word-major for 5 words over 4 topics, shared by the fold-in tests.
#[cfg(test)]
pub(crate) fn test_phi_wk() -> Vec<f64> {
    let phi_kw = [
        [0.5, 0.2, 0.2, 0.1, 0.0],
        [0.1, 0.5, 0.2, 0.1, 0.1],
        [0.1, 0.1, 0.2, 0.1, 0.5],
        [0.2, 0.2, 0.2, 0.2, 0.2],
    ];
    let mut out = vec![0.0; 5 * 4];
    for (t, row) in phi_kw.iter().enumerate() {
        for (w, &p) in row.iter().enumerate() {
            out[w * 4 + t] = p;
        }
    }
    out
}
