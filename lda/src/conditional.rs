//! The exact collapsed Gibbs conditional of one token, the target every sampler step aims at:
//!
//! p(z = k | rest) ∝ (n_dk + α) · (n_wk + β) / (n_k + Vβ),
//!
//! with all counts taken with the current token left out. The MH sampler never normalizes it;
//! the exact form here serves the tests and the small-K reference sampler.

use serde::{Deserialize, Serialize};

use crate::error::{LdaError, Result};

/// The model's size and symmetric Dirichlet priors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Number of topics K.
    pub topics: u32,
    /// Vocabulary size V.
    pub vocab: u32,
    /// Document-topic prior α.
    pub alpha: f64,
    /// Topic-word prior β.
    pub beta: f64,
}

/// Largest number of topics: topic ids are stored in 16 bits per token (see `tokens`).
pub const MAX_TOPICS: u32 = u16::MAX as u32;

impl Hyper {
    /// Checks the domain of every field.
    pub fn validate(&self) -> Result<()> {
        if self.topics < 2 || self.topics > MAX_TOPICS {
            return Err(LdaError::InvalidConfig(format!(
                "number of topics must be in 2..={MAX_TOPICS}, got {}",
                self.topics
            )));
        }
        if self.vocab == 0 {
            return Err(LdaError::InvalidConfig("the vocabulary is empty".into()));
        }
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(LdaError::InvalidConfig(format!(
                    "{name} must be a positive number, got {v}"
                )));
            }
        }
        if self.alpha < crate::alpha::MIN_ALPHA {
            return Err(LdaError::InvalidConfig(format!(
                "alpha must be at least {}, got {}",
                crate::alpha::MIN_ALPHA,
                self.alpha
            )));
        }
        Ok(())
    }

    /// Vβ, the denominator's smoothing.
    #[inline]
    pub fn vbeta(&self) -> f64 {
        f64::from(self.vocab) * self.beta
    }

    /// Kα.
    #[inline]
    pub fn kalpha(&self) -> f64 {
        f64::from(self.topics) * self.alpha
    }
}

/// The unnormalized conditional weight of topic k from its three counts (token excluded).
#[inline]
pub fn weight(h: &Hyper, n_dk: f64, n_wk: f64, n_k: f64) -> f64 {
    (n_dk + h.alpha) * (n_wk + h.beta) / (n_k + h.vbeta())
}

/// The normalized conditional over all K topics; the slices hold n_dk, n_wk and n_k with the
/// current token left out.
pub fn exact_conditional(h: &Hyper, n_d: &[u32], n_w: &[i32], n_k: &[i64]) -> Vec<f64> {
    let mut p: Vec<f64> = (0..h.topics as usize)
        .map(|k| weight(h, f64::from(n_d[k]), f64::from(n_w[k]), n_k[k] as f64))
        .collect();
    let total: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= total);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_is_a_distribution_and_follows_the_formula() {
        let h = Hyper {
            topics: 3,
            vocab: 10,
            alpha: 0.5,
            beta: 0.1,
        };
        let p = exact_conditional(&h, &[2, 0, 1], &[0, 3, 1], &[5, 9, 2]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // By hand: (2.5·0.1/6), (0.5·3.1/10), (1.5·1.1/3)
        let w = [2.5 * 0.1 / 6.0, 0.5 * 3.1 / 10.0, 1.5 * 1.1 / 3.0];
        let s: f64 = w.iter().sum();
        for k in 0..3 {
            assert!((p[k] - w[k] / s).abs() < 1e-12);
        }
    }

    #[test]
    fn validation_names_the_bad_value() {
        let h = Hyper {
            topics: 1,
            vocab: 10,
            alpha: 0.5,
            beta: 0.1,
        };
        assert!(h.validate().is_err());
        let h = Hyper {
            topics: 4,
            vocab: 10,
            alpha: -1.0,
            beta: 0.1,
        };
        let e = h
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("alpha"), "{e}");
    }
}
