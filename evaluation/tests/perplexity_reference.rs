//! Held-out perplexity against an independent computation of the same definition: with φ fixed,
//! E[θ | observed half] is computed exactly by enumerating every assignment of the observed tokens
//! (K^n states), and the held-out words are scored with it. The Gibbs estimate of the crate must
//! agree within 1%; with a wrong α it must not (negative control).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use evaluation::{AlignedDocs, FoldInOptions, PerplexityOptions, TopicModel, held_out_perplexity};

const K: usize = 3;
const V: usize = 6;
const ALPHA: f64 = 0.5;

fn lcg(x: &mut u64) -> f64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*x >> 11) as f64 / (1u64 << 53) as f64
}

fn draw(p: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, &x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}

fn phi() -> Vec<f64> {
    vec![
        0.40, 0.30, 0.15, 0.05, 0.05, 0.05, //
        0.05, 0.05, 0.40, 0.35, 0.10, 0.05, //
        0.10, 0.05, 0.05, 0.10, 0.30, 0.40,
    ]
}

/// Documents of 8 tokens from the LDA generative process with this φ.
fn documents(n: usize) -> Vec<Vec<u32>> {
    let phi = phi();
    let mut x = 7u64;
    (0..n)
        .map(|_| {
            // θ: normalised squared exponential draws, which favour a dominant topic.
            let mut theta: Vec<f64> = (0..K).map(|_| lcg(&mut x).ln().powi(2)).collect();
            let s: f64 = theta.iter().sum();
            theta.iter_mut().for_each(|t| *t /= s);
            (0..8)
                .map(|_| {
                    let k = draw(&theta, lcg(&mut x));
                    draw(&phi[k * V..(k + 1) * V], lcg(&mut x)) as u32
                })
                .collect()
        })
        .collect()
}

/// The exact posterior mean of θ given the observed words, by enumeration.
fn exact_theta(observed: &[u32], phi: &[f64], alpha: f64) -> Vec<f64> {
    let n = observed.len();
    let mut theta = vec![0.0; K];
    let mut norm = 0.0;
    for s in 0..K.pow(n as u32) {
        let mut counts = [0usize; K];
        let mut lik = 1.0;
        let mut x = s;
        for &w in observed {
            let z = x % K;
            x /= K;
            counts[z] += 1;
            lik *= phi[z * V + w as usize];
        }
        // Dirichlet-multinomial prior of this assignment sequence: Π_k Γ(n_k+α)/Γ(α) / (Γ(n+Kα)/Γ(Kα)).
        let mut prior = 1.0;
        for &c in &counts {
            for j in 0..c {
                prior *= alpha + j as f64;
            }
        }
        for j in 0..n {
            prior /= K as f64 * alpha + j as f64;
        }
        let weight = lik * prior;
        norm += weight;
        for k in 0..K {
            theta[k] += weight * (counts[k] as f64 + alpha) / (n as f64 + K as f64 * alpha);
        }
    }
    theta.iter_mut().for_each(|t| *t /= norm);
    theta
}

fn reference_perplexity(docs: &[Vec<u32>]) -> f64 {
    let phi = phi();
    let (mut ll, mut n) = (0.0, 0usize);
    for d in docs {
        let observed: Vec<u32> = d.iter().step_by(2).copied().collect();
        let theta = exact_theta(&observed, &phi, ALPHA);
        for &w in d.iter().skip(1).step_by(2) {
            let p: f64 = (0..K).map(|k| theta[k] * phi[k * V + w as usize]).sum();
            ll += p.ln();
            n += 1;
        }
    }
    (-ll / n as f64).exp()
}

fn model() -> TopicModel {
    let vocab = (0..V).map(|j| format!("w{j}")).collect();
    TopicModel::new(K, phi(), vocab, Some(vec![ALPHA; K])).unwrap()
}

#[test]
fn gibbs_document_completion_agrees_with_exact_enumeration() {
    let docs = documents(400);
    let reference = reference_perplexity(&docs);
    let ids = (0..docs.len()).map(|d| d.to_string()).collect();
    let test = AlignedDocs::from_ids(ids, docs, V);
    let opts = PerplexityOptions {
        threads: 2,
        ..Default::default()
    };
    let got = held_out_perplexity(&model(), &test, &opts).unwrap();
    let rel = (got.perplexity / reference - 1.0).abs();
    eprintln!(
        "reference {reference:.4}, Gibbs {:.4}, relative difference {rel:.4}",
        got.perplexity
    );
    assert!(rel < 0.01, "{} vs {reference}", got.perplexity);
    assert_eq!(got.held_out_tokens, 400 * 4);
    assert_eq!(got.documents_scored, 400);

    // Deterministic by seed, whatever the thread count.
    let one = PerplexityOptions {
        threads: 1,
        ..Default::default()
    };
    let again = held_out_perplexity(&model(), &test, &one).unwrap();
    assert_eq!(again.perplexity, got.perplexity);

    // Negative control: the same comparison with a wrong α must fail.
    let wrong = PerplexityOptions {
        alpha: Some(0.02),
        fold_in: FoldInOptions::default(),
        threads: 2,
    };
    let off = held_out_perplexity(&model(), &test, &wrong).unwrap();
    assert!(
        (off.perplexity / reference - 1.0).abs() > 0.01,
        "a wrong α went unnoticed: {} vs {reference}",
        off.perplexity
    );
}

#[test]
fn out_of_vocabulary_and_short_documents_are_counted_not_scored() {
    let test = AlignedDocs::from_ids(
        vec!["a".into(), "b".into(), "c".into()],
        vec![vec![0, 99, 1, 2], vec![3], vec![77, 4]],
        V,
    );
    let r = held_out_perplexity(&model(), &test, &PerplexityOptions::default()).unwrap();
    assert_eq!(r.out_of_vocabulary_tokens, 2);
    assert_eq!(r.documents_scored, 1);
    assert_eq!(r.documents_skipped, 2);
    assert_eq!((r.observed_tokens, r.held_out_tokens), (2, 1));
    let empty = AlignedDocs::from_ids(vec!["x".into()], vec![vec![5]], V);
    assert!(held_out_perplexity(&model(), &empty, &PerplexityOptions::default()).is_err());
}
