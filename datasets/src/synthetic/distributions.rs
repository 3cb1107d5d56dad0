//! The few distributions the generator needs, written here to keep the dependency graph small:
//! normal (Box–Muller), gamma (Marsaglia–Tsang, in log space for small shapes), Dirichlet,
//! Poisson (Knuth for small means, Hörmann's PTRS otherwise) and Vose alias tables.

use rand::{Rng, RngExt};

/// A uniform draw in the open interval (0, 1), safe to take the logarithm of.
fn open01<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

/// A standard normal draw.
pub fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let (u1, u2) = (open01(rng), open01(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The logarithm of a Gamma(shape, 1) draw. Log space keeps shapes far below 1 (β = 0.01 over a
/// large vocabulary) from underflowing to zero.
pub fn ln_gamma_draw<R: Rng + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if shape < 1.0 {
        // Gamma(a) = Gamma(a + 1) * U^(1/a).
        return ln_gamma_draw(rng, shape + 1.0) + open01(rng).ln() / shape;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = open01(rng);
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return (d * v).ln();
        }
    }
}

/// Fills `out` with a draw from a symmetric Dirichlet(concentration) of `out.len()` dimensions.
pub fn dirichlet<R: Rng + ?Sized>(rng: &mut R, concentration: f64, out: &mut [f64]) {
    let mut max = f64::NEG_INFINITY;
    for v in out.iter_mut() {
        *v = ln_gamma_draw(rng, concentration);
        max = max.max(*v);
    }
    let mut sum = 0.0;
    for v in out.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in out.iter_mut() {
        *v /= sum;
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (std::f64::consts::TAU).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// A Poisson(mean) draw.
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean < 30.0 {
        let limit = (-mean).exp();
        let mut k = 0u64;
        let mut p: f64 = rng.random();
        while p > limit {
            k += 1;
            p *= rng.random::<f64>();
        }
        return k;
    }
    // PTRS: transformed rejection with squeeze (Hörmann 1993).
    let slam = mean.sqrt();
    let loglam = mean.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.024_83 * b;
    let inv_alpha = 1.123_9 + 1.132_8 / (b - 3.4);
    let vr = 0.927_7 - 3.622_4 / (b - 2.0);
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v = open01(rng);
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln()
            <= -mean + k * loglam - ln_gamma(k + 1.0)
        {
            return k as u64;
        }
    }
}

/// Vose's alias table: O(1) draws from a fixed categorical distribution.
#[derive(Debug, Clone)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table for non-negative `weights` (not necessarily normalised, at least one > 0).
    pub fn new(weights: &[f64]) -> AliasTable {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| prob[i as usize] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s as usize] = l;
            prob[l as usize] -= 1.0 - prob[s as usize];
            if prob[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers are 1 up to rounding.
        for i in small.into_iter().chain(large) {
            prob[i as usize] = 1.0;
        }
        AliasTable { prob, alias }
    }

    pub fn len(&self) -> usize {
        self.prob.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prob.is_empty()
    }

    /// One draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i as u32
        } else {
            self.alias[i]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn poisson_mean_and_variance() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for mean in [3.0, 80.0, 1000.0] {
            let n = 20_000;
            let draws: Vec<f64> = (0..n).map(|_| poisson(&mut rng, mean) as f64).collect();
            let m = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|d| (d - m).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (m - mean).abs() < 4.0 * (mean / n as f64).sqrt() + 0.01,
                "mean {m} vs {mean}"
            );
            assert!((var / mean - 1.0).abs() < 0.1, "var {var} vs {mean}");
        }
    }

    #[test]
    fn gamma_mean_small_and_large_shape() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        for shape in [0.1, 1.0, 5.0] {
            let n = 40_000;
            let m = (0..n)
                .map(|_| ln_gamma_draw(&mut rng, shape).exp())
                .sum::<f64>()
                / n as f64;
            assert!(
                (m - shape).abs() < 0.05 * shape.max(1.0),
                "shape {shape}: mean {m}"
            );
        }
    }

    #[test]
    fn dirichlet_sums_to_one_even_for_tiny_concentration() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut out = vec![0.0; 1000];
        dirichlet(&mut rng, 0.001, &mut out);
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(out.iter().all(|v| v.is_finite() && *v >= 0.0));
    }

    #[test]
    fn alias_table_matches_weights() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let weights = [0.5, 0.0, 0.3, 0.2];
        let table = AliasTable::new(&weights);
        let mut counts = [0u32; 4];
        let n = 100_000;
        for _ in 0..n {
            counts[table.sample(&mut rng) as usize] += 1;
        }
        for (c, w) in counts.iter().zip(weights) {
            assert!((*c as f64 / n as f64 - w).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(counts[1], 0);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(6.0) - 120f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
    }
}
