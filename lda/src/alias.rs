//! Vose alias tables: O(n) to build, O(1) to draw, and the word proposal built from them.
//!
//! The word proposal's table holds e_wk + β, where e_wk is the share of word w's counts that is not
//! the sampling worker's own tokens (fixed while a block is sampled; the worker's own tokens are
//! proposed from their current topics, see `mh`). It deliberately leaves out the 1/(n_k + Vβ) factor of the conditional: that factor is applied
//! in the acceptance ratio instead, which keeps the smoothing part of the proposal uniform and so
//! lets rare words use a table over their non-zero topics only:
//!
//! * **dense** (frequent words, many non-zero topics): one table over all K topics, weights ñ_wk + β;
//! * **sparse** (rare words): with probability N_w / (N_w + Kβ) a table over the non-zero topics,
//!   weights ñ_wk, otherwise a uniform topic. Both forms give exactly the same q_w.

use rand_xoshiro::rand_core::Rng;

use crate::rng::{below, unit};

/// A Vose alias table over outcomes 0..n. Buffers are kept between builds: rebuilding allocates
/// only when a table grows past its largest size so far.
#[derive(Debug, Default, Clone)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
    small: Vec<u32>,
    large: Vec<u32>,
}

impl AliasTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of outcomes.
    pub fn len(&self) -> usize {
        self.prob.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prob.is_empty()
    }

    /// Rebuilds the table for the given non-negative weights. A table whose weights are all zero
    /// (or not finite) draws uniformly: callers only build tables with positive mass.
    pub fn build(&mut self, weights: impl ExactSizeIterator<Item = f64>) {
        let n = weights.len();
        self.prob.clear();
        self.prob.extend(weights);
        self.alias.clear();
        self.alias.resize(n, 0);
        self.small.clear();
        self.large.clear();
        if n == 0 {
            return;
        }
        let total: f64 = self.prob.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            self.prob.iter_mut().for_each(|p| *p = 1.0);
            for (i, a) in self.alias.iter_mut().enumerate() {
                *a = i as u32;
            }
            return;
        }
        let scale = n as f64 / total;
        for (i, p) in self.prob.iter_mut().enumerate() {
            *p *= scale;
            if *p < 1.0 {
                self.small.push(i as u32);
            } else {
                self.large.push(i as u32);
            }
        }
        // Pair each under-full column with an over-full one; the over-full one keeps the rest.
        while let (Some(&l), Some(&g)) = (self.small.last(), self.large.last()) {
            self.small.pop();
            self.alias[l as usize] = g;
            let rest = (self.prob[g as usize] + self.prob[l as usize]) - 1.0;
            self.prob[g as usize] = rest;
            if rest < 1.0 {
                self.large.pop();
                self.small.push(g);
            }
        }
        // Leftovers are 1 up to rounding.
        for &i in self.large.iter().chain(self.small.iter()) {
            self.prob[i as usize] = 1.0;
            self.alias[i as usize] = i;
        }
    }

    /// Draws an outcome in O(1). The table must not be empty.
    #[inline]
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        let i = below(rng, self.prob.len() as u32);
        if unit(rng) < self.prob[i as usize] {
            i
        } else {
            self.alias[i as usize]
        }
    }
}

/// Share of non-zero topics above which a word gets a dense table (build cost O(K) is then at
/// most 4 per token of the word).
const DENSE_FRACTION: usize = 4;

/// The word proposal q_w(k) ∝ ñ_wk + β of one word (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct WordProposal {
    table: AliasTable,
    /// Sparse form: outcome index → topic.
    topics: Vec<u32>,
    /// Dense form: the weights ñ_wk + β being tabled.
    weights: Vec<f64>,
    dense: bool,
    /// Σ_k ñ_wk, the mass of the count part (sparse form).
    count_mass: f64,
    /// Kβ, the mass of the uniform part (sparse form).
    smooth_mass: f64,
    /// Σ_k (ñ_wk + β), the unnormalised mass of the whole proposal.
    mass: f64,
    k: u32,
}

impl WordProposal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the proposal over `k` topics from the word's non-zero counts `(topic, ñ_wk)`
    /// (topics distinct and below `k`, counts positive).
    pub fn build(&mut self, nonzeros: &[(u32, i32)], k: usize, beta: f64) {
        self.k = k as u32;
        self.dense = nonzeros.len() * DENSE_FRACTION >= k;
        if self.dense {
            self.topics.clear();
            self.weights.clear();
            self.weights.resize(k, beta);
            for &(t, c) in nonzeros {
                self.weights[t as usize] += f64::from(c);
            }
            self.table.build(self.weights.iter().copied());
            self.mass = self.weights.iter().sum();
        } else {
            self.topics.clear();
            self.topics.extend(nonzeros.iter().map(|&(t, _)| t));
            self.count_mass = nonzeros.iter().map(|&(_, c)| f64::from(c)).sum();
            self.smooth_mass = k as f64 * beta;
            self.mass = self.count_mass + self.smooth_mass;
            self.table
                .build(nonzeros.iter().map(|&(_, c)| f64::from(c)));
        }
    }

    /// Σ_k (ñ_wk + β): the weight of the table against other parts of a mixture.
    #[inline]
    pub fn mass(&self) -> f64 {
        self.mass
    }

    /// Whether the dense (all-K) form is in use.
    pub fn is_dense(&self) -> bool {
        self.dense
    }

    /// Draws a topic from q_w in O(1).
    #[inline]
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u32 {
        if self.dense {
            return self.table.sample(rng);
        }
        if self.topics.is_empty() {
            return below(rng, self.k);
        }
        let x = unit(rng) * (self.count_mass + self.smooth_mass);
        if x < self.count_mass {
            self.topics[self.table.sample(rng) as usize]
        } else {
            below(rng, self.k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::stats::chi_square_p;

    fn histogram(n: usize, draws: usize, mut f: impl FnMut() -> u32) -> Vec<u64> {
        let mut h = vec![0u64; n];
        for _ in 0..draws {
            h[f() as usize] += 1;
        }
        h
    }

    #[test]
    fn alias_table_matches_its_weights() {
        let weights = [0.5, 3.0, 0.0, 1.25, 7.0, 0.01, 2.0];
        let mut t = AliasTable::new();
        t.build(weights.iter().copied());
        let mut rng = stream(11, 0);
        let h = histogram(weights.len(), 400_000, || t.sample(&mut rng));
        assert_eq!(h[2], 0, "a zero-weight outcome was drawn");
        let p = chi_square_p(&h, &weights);
        assert!(
            p > 1e-3,
            "alias draws do not follow the weights: p = {p}, {h:?}"
        );
    }

    #[test]
    fn alias_table_rejects_wrong_weights() {
        // The same test must fail when the table is built for other weights.
        let weights = [1.0, 2.0, 3.0, 4.0];
        let mut t = AliasTable::new();
        t.build([1.0, 2.0, 3.2, 4.0].into_iter());
        let mut rng = stream(12, 0);
        let h = histogram(4, 400_000, || t.sample(&mut rng));
        assert!(chi_square_p(&h, &weights) < 1e-6);
    }

    #[test]
    fn dense_and_sparse_word_proposals_are_the_same_distribution() {
        let beta = 0.3;
        for (k, nonzeros) in [
            (6usize, vec![(1u32, 5i32), (4, 2)]),
            (6, vec![(0, 3), (1, 1), (2, 8), (5, 1)]),
        ] {
            let mut stale = vec![0i32; k];
            for &(t, c) in &nonzeros {
                stale[t as usize] = c;
            }
            let mut q = WordProposal::new();
            q.build(&nonzeros, stale.len(), beta);
            let expected: Vec<f64> = stale.iter().map(|&c| f64::from(c) + beta).collect();
            let mut rng = stream(13, 0);
            let h = histogram(k, 300_000, || q.sample(&mut rng));
            let p = chi_square_p(&h, &expected);
            assert!(p > 1e-3, "dense={} p={p} {h:?}", q.is_dense());
        }
    }

    #[test]
    fn sparse_form_is_used_for_rare_words() {
        let mut stale = vec![0i32; 100];
        stale[3] = 2;
        let mut q = WordProposal::new();
        q.build(&[(3, 2)], stale.len(), 0.01);
        assert!(!q.is_dense());
        let mut rng = stream(14, 0);
        let h = histogram(100, 100_000, || q.sample(&mut rng));
        let expected: Vec<f64> = stale.iter().map(|&c| f64::from(c) + 0.01).collect();
        assert!(chi_square_p(&h, &expected) > 1e-3, "{h:?}");
    }
}
