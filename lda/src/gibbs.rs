//! The exact collapsed Gibbs draw for one token: p(z = k | rest) ∝ (n_dk + α)(n_wk + β)/(n_k + Vβ)
//! over all K topics, O(K) per token. Exact by construction, and at small K cheaper per unit of
//! mixing than Metropolis-Hastings cycles (see ARCHITECTURE.md for the measured crossover).

use rand_xoshiro::rand_core::Rng;

use crate::mh::{Kernel, TokenCounts};
use crate::rng::unit;

/// Draws the token's new topic from the exact conditional; `weights` is a K-wide scratch.
#[inline]
pub fn draw<C: TokenCounts, R: Rng>(
    kernel: &Kernel,
    c: &C,
    weights: &mut [f64],
    rng: &mut R,
) -> u32 {
    let mut total = 0.0;
    for (k, w) in weights.iter_mut().enumerate() {
        let k32 = k as u32;
        let p = (f64::from(c.doc(k32)) + kernel.alpha) * (f64::from(c.word(k32)) + kernel.beta)
            / (c.total(k32) as f64 + kernel.vbeta);
        total += p;
        *w = total;
    }
    let x = unit(rng) * total;
    // First cumulative weight above x: binary search over the running sums.
    let k = weights.partition_point(|&s| s <= x);
    k.min(weights.len() - 1) as u32
}
