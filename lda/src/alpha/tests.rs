//! The optimiser against the mathematics: its result is a stationary point of the log posterior
//! (the gradient, computed document by document without the histograms, vanishes), it is no worse
//! than the truth or the start, and on documents drawn from a known asymmetric α it recovers it.

use datasets::synthetic::distributions::ln_gamma_draw;
use proptest::prelude::*;

use super::*;
use crate::math::digamma;
use crate::rng::{stream, unit};

/// Documents drawn from Dirichlet(α) topic mixtures: each as its length and (topic, n_dk) pairs.
fn draw_docs(alpha: &[f64], docs: usize, seed: u64) -> Vec<(u32, Vec<(u32, u32)>)> {
    let mut rng = stream(seed, 0);
    let k = alpha.len();
    (0..docs)
        .map(|d| {
            let len = 20 + (d % 7) as u32 * 40;
            let logs: Vec<f64> = alpha.iter().map(|&a| ln_gamma_draw(&mut rng, a)).collect();
            let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let theta: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
            let total: f64 = theta.iter().sum();
            let mut counts = vec![0u32; k];
            for _ in 0..len {
                let mut x = unit(&mut rng) * total;
                let mut t = 0;
                while t + 1 < k && x >= theta[t] {
                    x -= theta[t];
                    t += 1;
                }
                counts[t] += 1;
            }
            let nz = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(t, &c)| (t as u32, c))
                .collect();
            (len, nz)
        })
        .collect()
}

fn histogram(k: usize, docs: &[(u32, Vec<(u32, u32)>)]) -> DocCountHistogram {
    let mut h = DocCountHistogram::new(k);
    for (len, nz) in docs {
        h.add_doc(*len, nz);
    }
    h
}

/// The log posterior of α (module docs), summed document by document.
fn log_posterior(alpha: &Alpha, docs: &[(u32, Vec<(u32, u32)>)]) -> f64 {
    let prior: f64 = alpha
        .values()
        .iter()
        .map(|&a| (PRIOR_SHAPE - 1.0) * a.ln() - a / PRIOR_SCALE)
        .sum();
    prior
        + docs
            .iter()
            .map(|(len, nz)| alpha.doc_loglik(*len, nz))
            .sum::<f64>()
}

/// ∂/∂α_k of the log posterior, document by document.
fn gradient(alpha: &[f64], docs: &[(u32, Vec<(u32, u32)>)]) -> Vec<f64> {
    let sum: f64 = alpha.iter().sum();
    let mut g: Vec<f64> = alpha
        .iter()
        .map(|&a| (PRIOR_SHAPE - 1.0) / a - 1.0 / PRIOR_SCALE)
        .collect();
    for (len, nz) in docs {
        let common = digamma(sum) - digamma(f64::from(*len) + sum);
        g.iter_mut().for_each(|x| *x += common);
        for &(t, c) in nz {
            let a = alpha[t as usize];
            g[t as usize] += digamma(f64::from(c) + a) - digamma(a);
        }
    }
    g
}

const TRUE_ALPHA: [f64; 6] = [0.05, 0.1, 0.3, 0.6, 1.5, 4.0];

#[test]
fn the_optimum_is_a_stationary_point_that_recovers_the_true_alpha() {
    let docs = draw_docs(&TRUE_ALPHA, 4000, 7);
    let hist = histogram(TRUE_ALPHA.len(), &docs);
    let start = Alpha::symmetric(TRUE_ALPHA.len() as u32, 0.5);
    let got = hist.optimize(&start);
    // Stationary: every partial derivative is ~0 relative to the number of documents.
    let g = gradient(got.values(), &docs);
    assert!(
        g.iter().all(|x| x.abs() < 1e-6 * docs.len() as f64),
        "gradient {g:?} at {got:?}"
    );
    // ... and a maximum: no worse than the start or the truth.
    let truth = Alpha::from_values(TRUE_ALPHA.to_vec()).unwrap();
    let best = log_posterior(&got, &docs);
    assert!(best >= log_posterior(&start, &docs));
    assert!(best >= log_posterior(&truth, &docs) - 1e-9);
    // 4,000 documents pin every α_k to within 15%.
    for (a, t) in got.values().iter().zip(TRUE_ALPHA) {
        assert!(
            (a / t - 1.0).abs() < 0.15,
            "{:?} vs {TRUE_ALPHA:?}",
            got.values()
        );
    }
    // Negative control: the symmetric start is far from stationary under the same check.
    let g0 = gradient(start.values(), &docs);
    assert!(g0.iter().any(|x| x.abs() > 1e-2 * docs.len() as f64));
}

#[test]
fn counts_beyond_the_dense_histogram_are_counted() {
    // Long documents of one dominant topic put n_dk above DENSE_COUNTS.
    let docs: Vec<(u32, Vec<(u32, u32)>)> = (0..200u32)
        .map(|d| (300, vec![(d % 2, 290 - d % 3), (2, 10 + d % 3)]))
        .collect();
    let hist = histogram(3, &docs);
    let got = hist.optimize(&Alpha::symmetric(3, 0.3));
    let g = gradient(got.values(), &docs);
    assert!(g.iter().all(|x| x.abs() < 1e-6 * 200.0), "{g:?}");
}

#[test]
fn an_empty_corpus_leaves_alpha_alone_and_bad_values_are_refused() {
    let start = Alpha::symmetric(4, 0.2);
    assert_eq!(DocCountHistogram::new(4).optimize(&start), start);
    assert!(Alpha::from_values(vec![0.1, 0.0]).is_err());
    assert!(Alpha::from_values(vec![0.1, f64::NAN]).is_err());
    assert!(Alpha::from_values(vec![]).is_err());
    // Below MIN_ALPHA, 1/α_k in the sparse draw would overflow long before α reaches zero.
    assert!(Alpha::from_values(vec![0.1, 1e-309]).is_err());
    assert!(start.is_symmetric());
    assert!(!Alpha::from_values(vec![0.1, 0.2]).unwrap().is_symmetric());
}

#[test]
fn optimisation_is_due_every_interval_after_the_burn_in() {
    let o = AlphaOptimization {
        interval: 10,
        burn_in: 25,
        rounds: 1,
    };
    let due: Vec<u32> = (1..=60).filter(|&i| o.due(i)).collect();
    assert_eq!(due, vec![30, 40, 50, 60]);
    let off = AlphaOptimization {
        interval: 0,
        burn_in: 0,
        rounds: 1,
    };
    assert!(!(1..100).any(|i| off.due(i)));
}

proptest! {
    /// Merging per-worker histograms gives the histogram of all their documents.
    #[test]
    fn merged_histograms_equal_the_histogram_of_all_documents(
        docs in prop::collection::vec(
            (1u32..200, prop::collection::vec((0u32..5, 1u32..150), 0..5)), 0..40),
        split in 0usize..40,
    ) {
        let split = split.min(docs.len());
        let mut a = histogram(5, &docs[..split]);
        a.merge(&histogram(5, &docs[split..]));
        let all = histogram(5, &docs);
        prop_assert_eq!(a.dense, all.dense);
        prop_assert_eq!(a.large, all.large);
        prop_assert_eq!(a.lengths, all.lengths);
    }
}

#[test]
fn a_theta_row_follows_the_formula_and_sums_to_one() {
    let alpha = Alpha::from_values(vec![0.2, 0.5, 1.3]).unwrap();
    let mut row = vec![7.0]; // rows are appended
    alpha.extend_theta_row(10, &[(0, 4), (2, 6)], &mut row);
    let expected = [4.2 / 12.0, 0.5 / 12.0, 7.3 / 12.0];
    assert_eq!(row.len(), 4);
    for (got, want) in row[1..].iter().zip(expected) {
        assert!((got - want).abs() < 1e-15, "{row:?}");
    }
    assert!((row[1..].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert_eq!(alpha.theta(2, 6, 10), row[3]);
}
