//! The document-topic prior α, one weight per topic, and its optimisation.
//!
//! α starts symmetric (the configured value for every topic). With optimisation on, every few
//! iterations the trainer replaces it by the maximum a posteriori estimate given the current
//! n_dk (Minka's fixed-point iteration for the Dirichlet-multinomial, as MALLET's
//! `--optimize-interval` and tomotopy's `optim_interval` do): with A = Σ_k α_k, N_d the length of
//! document d, and a weak Gamma(shape a, scale b) prior on each α_k, a stationary point of
//!
//! Σ_d [ln Γ(A) − ln Γ(N_d + A) + Σ_k (ln Γ(n_dk + α_k) − ln Γ(α_k))] + Σ_k [(a − 1) ln α_k − α_k / b]
//!
//! satisfies α_k = (α_k · S_k + a − 1) / (S + 1/b), with S_k = Σ_d [ψ(n_dk + α_k) − ψ(α_k)] and
//! S = Σ_d [ψ(N_d + A) − ψ(A)]; iterating that map converges to it. Both sums only depend on how
//! many documents have each count, so they are taken over [`DocCountHistogram`]s.

use std::collections::BTreeMap;

use crate::error::{LdaError, Result};
use crate::math::digamma;

/// α per topic with its sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Alpha {
    values: Vec<f64>,
    sum: f64,
}

impl Alpha {
    /// The same `alpha` for each of `topics` topics.
    pub fn symmetric(topics: u32, alpha: f64) -> Self {
        Alpha {
            values: vec![alpha; topics as usize],
            sum: f64::from(topics) * alpha,
        }
    }

    /// α from one value per topic; each must be finite and at least [`MIN_ALPHA`] (the samplers
    /// divide by α_k).
    pub fn from_values(values: Vec<f64>) -> Result<Self> {
        if let Some((k, a)) = values
            .iter()
            .enumerate()
            .find(|(_, a)| !(a.is_finite() && **a >= MIN_ALPHA))
        {
            return Err(LdaError::InvalidConfig(format!(
                "alpha of topic {k} must be a number of at least {MIN_ALPHA}, got {a}"
            )));
        }
        if values.is_empty() {
            return Err(LdaError::InvalidConfig("alpha has no topics".into()));
        }
        let sum = values.iter().sum();
        Ok(Alpha { values, sum })
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn topics(&self) -> usize {
        self.values.len()
    }

    /// Σ_k α_k.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Whether every topic has the same weight.
    pub fn is_symmetric(&self) -> bool {
        self.values.iter().all(|&a| a == self.values[0])
    }

    /// θ_dk = (n_dk + α_k)/(N_d + Σα) of topic `k` with `count` of a document's `len` tokens.
    pub fn theta(&self, k: u32, count: u32, len: u32) -> f64 {
        (f64::from(count) + self.values[k as usize]) / (f64::from(len) + self.sum)
    }

    /// The document's whole θ row (K values) from its length and non-zero n_dk, appended to `out`.
    pub fn extend_theta_row(&self, len: u32, nonzeros: &[(u32, u32)], out: &mut Vec<f64>) {
        let start = out.len();
        out.extend(self.values.iter().map(|a| a / (f64::from(len) + self.sum)));
        for &(k, c) in nonzeros {
            out[start + k as usize] = self.theta(k, c, len);
        }
    }

    /// ln p(z_d) for one document from its length and non-zero n_dk: the Dirichlet-multinomial
    /// ln Γ(A) − ln Γ(N_d + A) + Σ_k [ln Γ(n_dk + α_k) − ln Γ(α_k)].
    pub fn doc_loglik(&self, len: u32, nonzeros: &[(u32, u32)]) -> f64 {
        use crate::math::ln_gamma;
        let mut ll = ln_gamma(self.sum) - ln_gamma(f64::from(len) + self.sum);
        for &(k, c) in nonzeros {
            let a = self.values[k as usize];
            ll += ln_gamma(f64::from(c) + a) - ln_gamma(a);
        }
        ll
    }
}

/// When and how α is optimised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlphaOptimization {
    /// Optimise after every `interval`-th iteration.
    pub interval: u32,
    /// ... once this many iterations have run (the first assignments say little about α).
    pub burn_in: u32,
    /// Fixed-point rounds per optimisation (0: until converged). A few rounds move α part of
    /// the way each time, as MALLET (1) and tomotopy (10) do.
    pub rounds: u32,
}

impl AlphaOptimization {
    /// The default interval of `glint-lda train` and the Python API: optimising every 10
    /// iterations after 50 gave a 7–9% lower held-out perplexity than the symmetric 50/K at
    /// K = 100 (ARCHITECTURE.md, "Which α").
    pub const DEFAULT_INTERVAL: u32 = 10;
    /// The default burn-in.
    pub const DEFAULT_BURN_IN: u32 = 50;
    /// The default rounds per optimisation: to convergence, the estimate the module derives. At
    /// K = 1000 (news-articles, one seed, 500 iterations) it reached a held-out perplexity of
    /// 1169.1 against 1175.6 with 1 round (MALLET's choice) and 1178.0 with 10 (tomotopy's),
    /// differences within the spread between seeds, so no evidence against the partial updates.
    pub const DEFAULT_ROUNDS: u32 = 0;

    /// Whether α is optimised after iteration `iteration` (counted from 1).
    pub fn due(&self, iteration: u32) -> bool {
        self.interval > 0 && iteration >= self.burn_in && iteration.is_multiple_of(self.interval)
    }
}

/// Shape a of the Gamma prior on each α_k: a − 1 = 0.001 keeps a topic no document uses at a
/// small positive α instead of zero.
const PRIOR_SHAPE: f64 = 1.001;
/// Scale b of that prior: 1/b = 1 is negligible beside S for any real corpus.
const PRIOR_SCALE: f64 = 1.0;
/// Smallest α_k the update returns (the samplers divide by α_k).
pub const MIN_ALPHA: f64 = 1e-6;
/// Fixed-point iterations per optimisation, at most (from a symmetric start a few hundred reach
/// the tolerance; later optimisations start near the optimum).
const MAX_ROUNDS: usize = 2000;
/// Relative change of every α_k below which the iteration has converged: the map contracts
/// slowly along the overall scale of α, so a looser bound stops visibly short of the optimum.
const TOLERANCE: f64 = 1e-10;
/// Counts below this are histogrammed densely, larger ones in a map.
const DENSE_COUNTS: usize = 64;

/// How many documents have each non-zero n_dk, per topic, and each length.
#[derive(Debug, Clone)]
pub struct DocCountHistogram {
    /// `dense[k * DENSE_COUNTS + n]`: documents with n_dk = n for n < DENSE_COUNTS.
    dense: Vec<u64>,
    /// (topic, n) → documents, for n ≥ DENSE_COUNTS.
    large: BTreeMap<(u32, u32), u64>,
    /// length → documents.
    lengths: BTreeMap<u32, u64>,
    topics: usize,
}

impl DocCountHistogram {
    pub fn new(topics: usize) -> Self {
        DocCountHistogram {
            dense: vec![0; topics * DENSE_COUNTS],
            large: BTreeMap::new(),
            lengths: BTreeMap::new(),
            topics,
        }
    }

    /// Adds a document of `len` tokens with its non-zero (topic, n_dk) pairs.
    pub fn add_doc(&mut self, len: u32, nonzeros: &[(u32, u32)]) {
        if len == 0 {
            return;
        }
        *self.lengths.entry(len).or_default() += 1;
        for &(k, n) in nonzeros {
            let (k, n_us) = (k as usize, n as usize);
            if k >= self.topics || n == 0 {
                continue;
            }
            if n_us < DENSE_COUNTS {
                self.dense[k * DENSE_COUNTS + n_us] += 1;
            } else {
                *self.large.entry((k as u32, n)).or_default() += 1;
            }
        }
    }

    /// Adds another histogram's documents (one per worker, merged).
    pub fn merge(&mut self, other: &DocCountHistogram) {
        for (a, b) in self.dense.iter_mut().zip(&other.dense) {
            *a += b;
        }
        for (key, c) in &other.large {
            *self.large.entry(*key).or_default() += c;
        }
        for (len, c) in &other.lengths {
            *self.lengths.entry(*len).or_default() += c;
        }
    }

    /// Σ_d [ψ(N_d + A) − ψ(A)].
    fn length_sum(&self, alpha_sum: f64) -> f64 {
        let base = digamma(alpha_sum);
        self.lengths
            .iter()
            .map(|(&n, &docs)| docs as f64 * (digamma(f64::from(n) + alpha_sum) - base))
            .sum()
    }

    /// The largest dense count of each topic (0: none).
    fn dense_tops(&self) -> Vec<usize> {
        self.dense
            .chunks(DENSE_COUNTS)
            .map(|b| b.iter().rposition(|&d| d > 0).unwrap_or(0))
            .collect()
    }

    /// S_k = Σ_d [ψ(n_dk + α_k) − ψ(α_k)] for every topic; `tops` from [`Self::dense_tops`].
    fn topic_sums(&self, alpha: &[f64], tops: &[usize], out: &mut [f64]) {
        for (k, (s, &a)) in out.iter_mut().zip(alpha).enumerate() {
            // ψ(n + a) − ψ(a) = Σ_{i<n} 1/(a + i), accumulated bucket by bucket up to the
            // topic's largest count (at large K most topics stop after a few buckets).
            let buckets = &self.dense[k * DENSE_COUNTS..k * DENSE_COUNTS + tops[k] + 1];
            let (mut difference, mut sum) = (0.0, 0.0);
            for (n, &docs) in buckets.iter().enumerate().skip(1) {
                difference += 1.0 / (a + (n - 1) as f64);
                sum += docs as f64 * difference;
            }
            *s = sum;
        }
        for (&(k, n), &docs) in &self.large {
            let a = alpha[k as usize];
            out[k as usize] += docs as f64 * (digamma(f64::from(n) + a) - digamma(a));
        }
    }

    /// The MAP α given these counts, by the fixed-point iteration from `start` (module docs).
    /// A corpus without documents leaves α as it is.
    pub fn optimize(&self, start: &Alpha) -> Alpha {
        self.optimize_rounds(start, 0)
    }

    /// At most `rounds` rounds of the fixed-point iteration from `start` (0: until converged).
    pub fn optimize_rounds(&self, start: &Alpha, rounds: u32) -> Alpha {
        let rounds = if rounds == 0 {
            MAX_ROUNDS
        } else {
            (rounds as usize).min(MAX_ROUNDS)
        };
        if self.lengths.is_empty() || start.topics() != self.topics {
            return start.clone();
        }
        let mut alpha = start.values.clone();
        let mut sums = vec![0.0; self.topics];
        let tops = self.dense_tops();
        for _ in 0..rounds {
            let alpha_sum: f64 = alpha.iter().sum();
            let denominator = self.length_sum(alpha_sum) + 1.0 / PRIOR_SCALE;
            self.topic_sums(&alpha, &tops, &mut sums);
            let mut largest_change: f64 = 0.0;
            for (a, &s) in alpha.iter_mut().zip(&sums) {
                let next = ((*a * s + PRIOR_SHAPE - 1.0) / denominator).max(MIN_ALPHA);
                largest_change = largest_change.max((next - *a).abs() / *a);
                *a = next;
            }
            if largest_change < TOLERANCE {
                break;
            }
        }
        let sum = alpha.iter().sum();
        Alpha { values: alpha, sum }
    }
}

#[cfg(test)]
mod tests;
