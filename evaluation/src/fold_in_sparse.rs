//! Exact fold-in in O(topics the document uses) per token: the Gibbs conditional of
//! [`crate::fold_in`], p(z_i = k | z_-i, w) ∝ (n_dk^-i + α_k) φ_{k,w_i}, split as SparseLDA does
//! into a document part n_dk^-i φ_kw, non-zero only on the topics the document holds, and a prior
//! part α_k φ_kw that is fixed for a word (φ and α do not change during inference), so its alias
//! table and mass are built once per distinct word. A draw picks a part by its mass, then a topic
//! within it: the same conditional as the dense fold-in, hence the same chain in distribution, at
//! a fraction of its O(K) cost once a document's topics concentrate.

use rand_xoshiro::rand_core::Rng;

use datasets::synthetic::distributions::AliasTable as Alias;

use crate::fold_in::{FoldInOptions, draw, unit};

/// Marks a topic absent from the document's list.
const ABSENT: u32 = u32::MAX;

/// The prior part of one word: draws ∝ α_k φ_kw, and Σ_k α_k φ_kw.
#[derive(Debug)]
struct Prior {
    table: Alias,
    mass: f64,
}

/// The fixed parts of sparse fold-in: φ word-major, the prior part of each word that occurs, α.
#[derive(Debug)]
pub struct SparseFoldIn<'a> {
    phi_wk: &'a [f64],
    k: usize,
    priors: Vec<Option<Prior>>,
    alpha: &'a [f64],
    alpha_sum: f64,
    /// α is symmetric: the prior table is then ∝ φ_kw and also draws the initial topics.
    symmetric: bool,
}

/// Reusable buffers of one thread.
#[derive(Debug, Default)]
pub struct SparseScratch {
    z: Vec<u32>,
    counts: Vec<u32>,
    /// Topics with n_dk > 0, in any order, and each topic's index there (or [`ABSENT`]).
    topics: Vec<u32>,
    slot: Vec<u32>,
    weights: Vec<f64>,
}

impl SparseScratch {
    fn reset(&mut self, k: usize) {
        self.z.clear();
        self.counts.clear();
        self.counts.resize(k, 0);
        self.topics.clear();
        self.slot.clear();
        self.slot.resize(k, ABSENT);
    }

    #[inline]
    fn increment(&mut self, t: usize) {
        if self.counts[t] == 0 {
            self.slot[t] = self.topics.len() as u32;
            self.topics.push(t as u32);
        }
        self.counts[t] += 1;
    }

    #[inline]
    fn decrement(&mut self, t: usize) {
        self.counts[t] -= 1;
        if self.counts[t] == 0 {
            let at = self.slot[t] as usize;
            self.topics.swap_remove(at);
            if let Some(&moved) = self.topics.get(at) {
                self.slot[moved as usize] = at as u32;
            }
            self.slot[t] = ABSENT;
        }
    }
}

impl<'a> SparseFoldIn<'a> {
    /// Builds the prior part of every word in `docs`.
    pub fn new(phi_wk: &'a [f64], alpha: &'a [f64], docs: &[Vec<u32>]) -> Self {
        let k = alpha.len();
        let v = phi_wk.len() / k.max(1);
        let mut priors: Vec<Option<Prior>> = (0..v).map(|_| None).collect();
        let mut weights = vec![0.0; k];
        for &w in docs.iter().flatten() {
            let w = w as usize;
            if w >= v || priors[w].is_some() {
                continue;
            }
            let col = &phi_wk[w * k..(w + 1) * k];
            for ((x, &p), &a) in weights.iter_mut().zip(col).zip(alpha) {
                *x = a * p;
            }
            let mass: f64 = weights.iter().sum();
            // A word no topic can emit keeps no table; its tokens are skipped (as in MH).
            if mass > 0.0 && mass.is_finite() {
                priors[w] = Some(Prior {
                    table: Alias::new(&weights),
                    mass,
                });
            }
        }
        SparseFoldIn {
            phi_wk,
            k,
            priors,
            alpha,
            alpha_sum: alpha.iter().sum(),
            symmetric: alpha.iter().all(|&a| a == alpha[0]),
        }
    }

    /// Folds in one document; writes the averaged θ̂ to `theta` (length K).
    pub fn theta<R: Rng>(
        &self,
        words: &[u32],
        opts: &FoldInOptions,
        rng: &mut R,
        s: &mut SparseScratch,
        theta: &mut [f64],
    ) {
        let k = self.k;
        theta.iter_mut().for_each(|t| *t = 0.0);
        s.reset(k);
        if words.is_empty() {
            for (t, a) in theta.iter_mut().zip(self.alpha) {
                *t = a / self.alpha_sum;
            }
            return;
        }
        // z starts from p(z = k | w) ∝ φ_kw, like the Gibbs fold-in.
        for &w in words {
            let t = match self.priors.get(w as usize).and_then(Option::as_ref) {
                Some(p) if self.symmetric => p.table.sample(rng) as usize,
                Some(_) => self.initial(w, rng),
                None => 0,
            };
            s.z.push(t as u32);
            s.increment(t);
        }
        let norm = 1.0 / (words.len() as f64 + self.alpha_sum);
        let kept = f64::from(opts.sweeps - opts.burn_in);
        for sweep in 1..=opts.sweeps {
            for (i, &w) in words.iter().enumerate() {
                let Some(prior) = self.priors.get(w as usize).and_then(Option::as_ref) else {
                    continue;
                };
                let col = &self.phi_wk[w as usize * k..(w as usize + 1) * k];
                let old = s.z[i] as usize;
                s.decrement(old);
                s.weights.clear();
                let mut doc_mass = 0.0;
                for &t in &s.topics {
                    let p = f64::from(s.counts[t as usize]) * col[t as usize];
                    doc_mass += p;
                    s.weights.push(p);
                }
                let u = unit(rng) * (doc_mass + prior.mass);
                let new = if u < doc_mass {
                    let mut x = u;
                    let mut pick = None;
                    for (j, &p) in s.weights.iter().enumerate() {
                        x -= p;
                        if p > 0.0 {
                            pick = Some(j);
                        }
                        if x < 0.0 {
                            break;
                        }
                    }
                    // u < doc_mass, so some weight is positive; rounding may end the scan on
                    // the last one with weight.
                    pick.map_or(old, |j| s.topics[j] as usize)
                } else {
                    prior.table.sample(rng) as usize
                };
                s.increment(new);
                s.z[i] = new as u32;
            }
            if sweep > opts.burn_in {
                for ((out, &n), &a) in theta.iter_mut().zip(&s.counts).zip(self.alpha) {
                    *out += (f64::from(n) + a) * norm / kept;
                }
            }
        }
    }

    /// An initial topic ∝ φ_kw by a scan of the word's column, as the dense fold-in draws it
    /// (α asymmetric: the prior table draws ∝ α_k φ_kw instead).
    fn initial<R: Rng>(&self, w: u32, rng: &mut R) -> usize {
        let col = &self.phi_wk[w as usize * self.k..(w as usize + 1) * self.k];
        draw(col, col.iter().sum(), unit(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold_in::{FoldIn, doc_rng, test_phi_wk};

    /// Mean θ over many seeds of the sparse fold-in and of the dense Gibbs fold-in (the
    /// evaluation's reference) of one document.
    fn mean_thetas(alpha: &[f64], reference_alpha: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let k = alpha.len();
        let phi = test_phi_wk();
        let doc = vec![0u32, 1, 1, 4, 2, 0, 3, 4, 2];
        let opts = FoldInOptions {
            sweeps: 30,
            burn_in: 10,
            seed: 0,
        };
        let runs = 3000u64;
        let sparse = SparseFoldIn::new(&phi, alpha, std::slice::from_ref(&doc));
        let mut scratch = SparseScratch::default();
        let mut dense = FoldIn::new();
        let (mut a, mut b, mut th) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        for r in 0..runs {
            sparse.theta(&doc, &opts, &mut doc_rng(1, r), &mut scratch, &mut th);
            a.iter_mut()
                .zip(&th)
                .for_each(|(x, y)| *x += y / runs as f64);
            dense.theta(
                &doc,
                &phi,
                reference_alpha,
                &opts,
                &mut doc_rng(2, r),
                &mut th,
            );
            b.iter_mut()
                .zip(&th)
                .for_each(|(x, y)| *x += y / runs as f64);
        }
        (a, b)
    }

    #[test]
    fn sparse_fold_in_matches_the_dense_gibbs_fold_in() {
        for alpha in [vec![0.3, 0.2, 0.5, 0.1], vec![0.25; 4]] {
            let (a, b) = mean_thetas(&alpha, &alpha);
            for t in 0..4 {
                assert!(
                    (a[t] - b[t]).abs() < 0.01,
                    "α {alpha:?}, topic {t}: {a:?} vs {b:?}"
                );
            }
            // Negative control: the reference with α × 3 is another target and must differ.
            let other: Vec<f64> = alpha.iter().map(|x| x * 3.0).collect();
            let (a, c) = mean_thetas(&alpha, &other);
            assert!(
                (0..4).any(|t| (a[t] - c[t]).abs() > 0.01),
                "the comparison cannot tell targets apart: {a:?} vs {c:?}"
            );
        }
    }

    #[test]
    fn the_topic_list_tracks_the_counts() {
        let mut s = SparseScratch::default();
        s.reset(6);
        for t in [3, 1, 3, 5, 1, 0] {
            s.increment(t);
        }
        for t in [1, 3, 0, 1] {
            s.decrement(t);
        }
        let mut listed = s.topics.clone();
        listed.sort_unstable();
        let expected: Vec<u32> = (0..6u32).filter(|&t| s.counts[t as usize] > 0).collect();
        assert_eq!(listed, expected);
        for (j, &t) in s.topics.iter().enumerate() {
            assert_eq!(s.slot[t as usize] as usize, j);
        }
    }
}
