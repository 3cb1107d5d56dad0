//! Special functions for the collapsed log-likelihood: the log-gamma function.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15). One implementation serves
/// both the synthetic generator and the likelihood; the tests below pin its accuracy here too.
pub use datasets::synthetic::distributions::ln_gamma;

#[cfg(test)]
mod tests {
    use super::ln_gamma;

    #[test]
    fn matches_factorials_and_known_values() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            // Γ(n) = (n-1)!
            let got = ln_gamma(f64::from(n));
            assert!(
                (got - fact.ln()).abs() < 1e-10 * fact.ln().abs().max(1.0),
                "n={n}"
            );
            fact *= f64::from(n);
        }
        let sqrt_pi_ln = 0.5 * std::f64::consts::PI.ln();
        assert!((ln_gamma(0.5) - sqrt_pi_ln).abs() < 1e-13);
        // Γ(0.01) = 99.43258511915060
        assert!((ln_gamma(0.01) - 99.432_585_119_150_6f64.ln()).abs() < 1e-12);
        // Γ(1e6) via Stirling: ln Γ(x) ≈ (x-0.5)ln x - x + 0.5 ln 2π + 1/(12x)
        let x = 1e6f64;
        let stirling =
            (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x);
        assert!((ln_gamma(x) - stirling).abs() / stirling < 1e-14);
    }
}
