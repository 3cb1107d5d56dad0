//! Goodness-of-fit statistics used to check the sampler against the mathematics: Pearson's
//! chi-square test and the Hellinger distance between discrete distributions.

use crate::math::ln_gamma;

/// The p-value of Pearson's chi-square test of `observed` counts against the distribution
/// proportional to `weights`. Cells with zero weight are left out (an observation there is an
/// outright failure: p = 0); cells expecting fewer than 5 draws are pooled so the test is valid.
pub fn chi_square_p(observed: &[u64], weights: &[f64]) -> f64 {
    assert_eq!(observed.len(), weights.len(), "one weight per cell");
    let n: u64 = observed.iter().sum();
    let total: f64 = weights.iter().sum();
    if n == 0 || total <= 0.0 {
        return 1.0;
    }
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let mut pooled = (0.0, 0.0);
    for (&o, &w) in observed.iter().zip(weights) {
        if w <= 0.0 {
            if o > 0 {
                return 0.0;
            }
            continue;
        }
        let e = n as f64 * w / total;
        if e < 5.0 {
            pooled.0 += o as f64;
            pooled.1 += e;
        } else {
            cells.push((o as f64, e));
        }
    }
    if pooled.1 > 0.0 {
        cells.push(pooled);
    }
    if cells.len() < 2 {
        return 1.0;
    }
    let stat: f64 = cells.iter().map(|&(o, e)| (o - e) * (o - e) / e).sum();
    chi_square_sf(stat, (cells.len() - 1) as f64)
}

/// P(X ≥ x) for X ~ χ²(df).
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// The regularized upper incomplete gamma function Q(a, x), by series or continued fraction.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (1.0 - sum * ln_pre.exp()).clamp(0.0, 1.0)
    } else {
        // Lentz's continued fraction.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (ln_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// The Hellinger distance between two discrete distributions (each summing to 1): in [0, 1].
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(q)
        .map(|(&a, &b)| (a.sqrt() - b.sqrt()).powi(2))
        .sum();
    (s / 2.0).sqrt()
}

/// For each row of `truth`, the Hellinger distance to its closest row of `found`; their mean.
pub fn mean_best_match_hellinger(truth: &[Vec<f64>], found: &[Vec<f64>]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let sum: f64 = truth
        .iter()
        .map(|t| {
            found
                .iter()
                .map(|f| hellinger(t, f))
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    sum / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_square_tail_matches_tables() {
        // Critical values: χ²(1) 3.841 → 0.05; χ²(10) 18.307 → 0.05; χ²(4) 13.277 → 0.01.
        assert!((chi_square_sf(3.841_458_8, 1.0) - 0.05).abs() < 1e-6);
        assert!((chi_square_sf(18.307_038, 10.0) - 0.05).abs() < 1e-6);
        assert!((chi_square_sf(13.276_704, 4.0) - 0.01).abs() < 1e-6);
        assert!((chi_square_sf(0.0, 3.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hellinger_bounds() {
        assert!(hellinger(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        assert!((hellinger(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
    }
}
