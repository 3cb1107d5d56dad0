//! Fast fold-in for inference: the same target as [`crate::fold_in`], p(z_i = k | z_-i, w) ∝
//! (n_dk^-i + α_k) φ_{k,w_i} with φ fixed, sampled by Metropolis-Hastings in O(1) per step:
//!
//! * **word proposal** q(k) ∝ φ_kw from a per-word alias table (φ is fixed, so the table is exact
//!   and built once per distinct word); acceptance (n_dt + α_t)/(n_ds + α_s);
//! * **doc proposal**: x uniform in [0, N_d + Σα); x < N_d names a slot of the document: the
//!   token's own slot is a no-op, another slot proposes its current topic; otherwise a topic
//!   ∝ α. Off the no-op q(k) ∝ n_dk^-i + α_k, so the acceptance is φ_tw/φ_sw.
//!
//! Neither proposal depends on the token's own topic, so each step leaves the target exactly
//! invariant (the argument of `lda::mh`). θ̂ is averaged after burn-in as in the Gibbs fold-in.

use rand_xoshiro::rand_core::Rng;

use datasets::synthetic::distributions::AliasTable as Alias;

use crate::fold_in::{FoldInOptions, unit};

#[inline]
fn below<R: Rng>(rng: &mut R, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// The fixed parts of MH fold-in: φ word-major, one alias table per word that occurs, α.
#[derive(Debug)]
pub struct MhFoldIn<'a> {
    phi_wk: &'a [f64],
    k: usize,
    tables: Vec<Option<Alias>>,
    alpha: &'a [f64],
    alpha_sum: f64,
    /// Table ∝ α (None when α is symmetric: a uniform draw).
    alpha_table: Option<Alias>,
    /// (word step, doc step) cycles per token and sweep.
    pub cycles: u32,
}

impl<'a> MhFoldIn<'a> {
    /// Builds the word tables of every word in `docs`.
    pub fn new(phi_wk: &'a [f64], alpha: &'a [f64], docs: &[Vec<u32>]) -> Self {
        let k = alpha.len();
        let v = phi_wk.len() / k.max(1);
        let mut tables: Vec<Option<Alias>> = vec![None; v];
        for doc in docs {
            for &w in doc {
                let w = w as usize;
                if tables[w].is_none() {
                    tables[w] = Some(Alias::new(&phi_wk[w * k..(w + 1) * k]));
                }
            }
        }
        let symmetric = alpha.iter().all(|&a| a == alpha[0]);
        MhFoldIn {
            phi_wk,
            k,
            tables,
            alpha,
            alpha_sum: alpha.iter().sum(),
            alpha_table: (!symmetric).then(|| Alias::new(alpha)),
            cycles: 2,
        }
    }

    /// Folds in one document; writes the averaged θ̂ to `theta`. `z` and `counts` are scratch.
    pub fn theta<R: Rng>(
        &self,
        words: &[u32],
        opts: &FoldInOptions,
        rng: &mut R,
        z: &mut Vec<u32>,
        counts: &mut Vec<u32>,
        theta: &mut [f64],
    ) {
        let k = self.k;
        theta.iter_mut().for_each(|t| *t = 0.0);
        counts.clear();
        counts.resize(k, 0);
        z.clear();
        if words.is_empty() {
            for (t, a) in theta.iter_mut().zip(self.alpha) {
                *t = a / self.alpha_sum;
            }
            return;
        }
        let table = |w: u32| self.tables[w as usize].as_ref();
        // z starts from p(z = k | w) ∝ φ_kw, like the Gibbs fold-in.
        for &w in words {
            let t = table(w).map_or(0, |a| a.sample(rng));
            z.push(t);
            counts[t as usize] += 1;
        }
        let n = words.len();
        let n_d = n as f64;
        let norm = 1.0 / (n_d + self.alpha_sum);
        let kept = f64::from(opts.sweeps - opts.burn_in);
        for sweep in 1..=opts.sweeps {
            for (i, &w) in words.iter().enumerate() {
                let Some(q) = table(w) else { continue };
                let col = &self.phi_wk[w as usize * k..(w as usize + 1) * k];
                let mut s = z[i] as usize;
                counts[s] -= 1;
                for _ in 0..self.cycles {
                    // Word step: q ∝ φ_·w; accept (n_dt + α_t)/(n_ds + α_s).
                    let t = q.sample(rng) as usize;
                    if t != s {
                        let a = (f64::from(counts[t]) + self.alpha[t])
                            / (f64::from(counts[s]) + self.alpha[s]);
                        if a >= 1.0 || unit(rng) < a {
                            s = t;
                        }
                    }
                    // Doc step: q ∝ n_dk^-i + α_k (own slot: no-op); accept φ_tw/φ_sw.
                    let x = unit(rng) * (n_d + self.alpha_sum);
                    let t = if x < n_d {
                        let j = (x as usize).min(n - 1);
                        if j == i {
                            continue;
                        }
                        z[j] as usize
                    } else {
                        match &self.alpha_table {
                            Some(a) => a.sample(rng) as usize,
                            None => below(rng, k),
                        }
                    };
                    if t != s && (col[t] >= col[s] || unit(rng) * col[s] < col[t]) {
                        s = t;
                    }
                }
                counts[s] += 1;
                z[i] = s as u32;
            }
            if sweep > opts.burn_in {
                for t in 0..k {
                    theta[t] += (f64::from(counts[t]) + self.alpha[t]) * norm / kept;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold_in::{FoldIn, doc_rng, test_phi_wk};

    /// Mean θ over many seeds from both fold-ins of one document: the MH chain has the Gibbs
    /// chain's target, so the averages agree; a wrong acceptance (φ ratio dropped) does not.
    #[test]
    fn mh_fold_in_matches_gibbs_fold_in() {
        let k = 4;
        let phi_wk = test_phi_wk();
        let alpha = vec![0.3, 0.2, 0.5, 0.1];
        let doc = vec![0u32, 1, 1, 4, 2, 0, 3, 4];
        let opts = FoldInOptions {
            sweeps: 40,
            burn_in: 10,
            seed: 0,
        };
        let runs = 3000u64;
        let mh = MhFoldIn::new(&phi_wk, &alpha, std::slice::from_ref(&doc));
        let mut gibbs = FoldIn::new();
        let (mut z, mut c) = (Vec::new(), Vec::new());
        let (mut a, mut b) = (vec![0.0; k], vec![0.0; k]);
        let mut th = vec![0.0; k];
        for r in 0..runs {
            mh.theta(&doc, &opts, &mut doc_rng(1, r), &mut z, &mut c, &mut th);
            a.iter_mut()
                .zip(&th)
                .for_each(|(x, y)| *x += y / runs as f64);
            gibbs.theta(&doc, &phi_wk, &alpha, &opts, &mut doc_rng(2, r), &mut th);
            b.iter_mut()
                .zip(&th)
                .for_each(|(x, y)| *x += y / runs as f64);
        }
        for t in 0..k {
            assert!(
                (a[t] - b[t]).abs() < 0.01,
                "topic {t}: MH {a:?} vs Gibbs {b:?}"
            );
        }
        // Negative control: the same comparison against another target (α × 3) must fail.
        let other: Vec<f64> = alpha.iter().map(|x| x * 3.0).collect();
        let mut c3 = vec![0.0; k];
        for r in 0..runs {
            gibbs.theta(&doc, &phi_wk, &other, &opts, &mut doc_rng(3, r), &mut th);
            c3.iter_mut()
                .zip(&th)
                .for_each(|(x, y)| *x += y / runs as f64);
        }
        assert!(
            (0..k).any(|t| (a[t] - c3[t]).abs() > 0.01),
            "the comparison cannot tell targets apart: {a:?} vs {c3:?}"
        );
    }
}
