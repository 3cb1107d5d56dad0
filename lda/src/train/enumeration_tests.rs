//! The whole training path against the exact posterior of a corpus small enough to enumerate.
//!
//! Eight tokens and K = 2 give 256 assignment vectors; p(z | w) is computed for each from the
//! collapsed joint. The real [`Trainer`] (embedded ps-core, pulls, pushes, blocks, the MH kernel)
//! runs for many iterations and the visited states are tallied after each; a chi-square test
//! compares the tally with the posterior. Consecutive sweeps are correlated, so only every
//! `THIN`-th state is tallied. The same test with the flawed kernel (proposals that see the token
//! itself) must fail, or it proves nothing.
//!
//! Two threads are not tested here because they are not exact: each samples against the other's
//! counts as of its last pull (p ≈ 1e-33 on this corpus), the approximation every parallel
//! collapsed sampler makes; see ARCHITECTURE.md.

use super::*;
use crate::math::ln_gamma;
use crate::stats::chi_square_p;
use ps_core::{ClusterConfig, EmbeddedCluster};

const K: u32 = 2;
const V: u32 = 3;
const ALPHA: f64 = 0.3;
const SYMMETRIC: [f64; 2] = [ALPHA, ALPHA];
/// An optimised-looking α: the samplers must follow each α_k (MH's doc proposal then draws from
/// an alias table of α, the sparse draw's tree holds α_k·q_k).
const ASYMMETRIC: [f64; 2] = [0.08, 1.1];
const BETA: f64 = 0.2;
const THIN: u32 = 4;

fn docs() -> Vec<Vec<u32>> {
    vec![vec![0, 1, 0], vec![2, 1], vec![2, 0, 2]]
}

/// log p(w, z) up to a constant, for tokens given as (document, word) in the tally's order.
fn log_joint(tokens: &[(usize, u32)], z: &[u32], docs: usize, alpha: &[f64; 2]) -> f64 {
    let k = K as usize;
    let mut ndk = vec![0u32; docs * k];
    let mut nwk = vec![0u32; V as usize * k];
    let mut nk = vec![0u32; k];
    for (&(d, w), &t) in tokens.iter().zip(z) {
        ndk[d * k + t as usize] += 1;
        nwk[w as usize * k + t as usize] += 1;
        nk[t as usize] += 1;
    }
    let mut lp = 0.0;
    for (i, c) in ndk.into_iter().enumerate() {
        lp += ln_gamma(f64::from(c) + alpha[i % k]);
    }
    for c in nwk {
        lp += ln_gamma(f64::from(c) + BETA);
    }
    for c in nk {
        lp -= ln_gamma(f64::from(c) + f64::from(V) * BETA);
    }
    lp
}

/// The tally's order: worker by worker, word order within each; the token's global document.
fn token_order(t: &Trainer) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut doc_base = 0;
    for w in &t.workers {
        let s = &w.tokens;
        for (j, &word) in s.words().iter().enumerate() {
            for i in s.word_tokens(j) {
                out.push((doc_base + s.token(i).0 as usize, word));
            }
        }
        doc_base += s.num_docs();
    }
    out
}

fn state_index(t: &Trainer) -> usize {
    let mut x = 0usize;
    for w in &t.workers {
        let s = &w.tokens;
        for j in 0..s.words().len() {
            for i in s.word_tokens(j) {
                x = x * K as usize + usize::from(s.topic(i));
            }
        }
    }
    x
}

/// Runs the real trainer and returns the chi-square p-value of its visited states.
fn posterior_p(
    threads: usize,
    order: SampleOrder,
    sampler: SamplerKind,
    flawed: bool,
    iterations: u32,
) -> f64 {
    posterior_p_with(
        order, sampler, flawed, iterations, threads, SYMMETRIC, SYMMETRIC,
    )
}

/// The same with the trainer sampling under `alpha` and the posterior computed under `target`.
fn posterior_p_with(
    order: SampleOrder,
    sampler: SamplerKind,
    flawed: bool,
    iterations: u32,
    threads: usize,
    alpha: [f64; 2],
    target: [f64; 2],
) -> f64 {
    // Doc order samples the whole vocabulary as one block; word order walks one word a block.
    let block_tokens = if order == SampleOrder::Doc { 16 } else { 2 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = EmbeddedCluster::start(2, ClusterConfig::default()).expect("cluster");
    let docs = docs();
    let n: usize = docs.iter().map(Vec::len).sum();
    let corpus = LoadedCorpus::from_documents(
        docs.iter()
            .enumerate()
            .map(|(d, w)| Ok((format!("d{d}"), w.clone()))),
        n as u64,
        V,
        Vec::new(),
        threads,
    )
    .expect("corpus");
    let mut cfg = TrainConfig::new(Hyper {
        topics: K,
        vocab: V,
        alpha: ALPHA,
        beta: BETA,
    });
    cfg.threads = threads;
    cfg.order = order;
    cfg.sampler = sampler;
    cfg.seed = 17;
    cfg.loglik = false;
    cfg.block_tokens = block_tokens;
    let mut t = Trainer::new(&cluster.client(), rt.handle().clone(), corpus, cfg).expect("trainer");
    if flawed {
        t.workers.iter_mut().for_each(|w| w.use_flawed_kernel());
    }
    if alpha != SYMMETRIC {
        t.set_alpha(crate::alpha::Alpha::from_values(alpha.to_vec()).expect("alpha"))
            .expect("set alpha");
    }
    let tokens = token_order(&t);
    let states = (K as usize).pow(n as u32);
    let weights: Vec<f64> = {
        let lj: Vec<f64> = (0..states)
            .map(|s| {
                let mut z = vec![0u32; n];
                let mut x = s;
                for slot in z.iter_mut().rev() {
                    *slot = (x % K as usize) as u32;
                    x /= K as usize;
                }
                log_joint(&tokens, &z, docs.len(), &target)
            })
            .collect();
        let max = lj.iter().copied().fold(f64::MIN, f64::max);
        lj.iter().map(|l| (l - max).exp()).collect()
    };
    let mut hist = vec![0u64; states];
    for it in 0..iterations {
        t.run_iteration().expect("iteration");
        if it >= 100 && it % THIN == 0 {
            hist[state_index(&t)] += 1;
        }
    }
    t.check_invariants().expect("count invariants");
    let p = chi_square_p(&hist, &weights);
    eprintln!(
        "{threads} thread(s), {order:?} order, {sampler:?}, flawed = {flawed}, alpha {alpha:?} against {target:?}: chi-square p = {p:.3e} over {} states",
        hist.iter().sum::<u64>()
    );
    p
}

const ITERATIONS: u32 = 40_000;

#[test]
fn one_thread_samples_the_exact_posterior_in_both_orders() {
    for order in [SampleOrder::Doc, SampleOrder::Word] {
        let p = posterior_p(1, order, SamplerKind::Mh, false, ITERATIONS);
        assert!(p > 1e-3, "{order:?} order: p = {p}");
    }
}

#[test]
fn the_exact_gibbs_sampler_samples_the_exact_posterior() {
    let p = posterior_p(
        1,
        SampleOrder::Doc,
        SamplerKind::Gibbs,
        false,
        ITERATIONS / 2,
    );
    assert!(p > 1e-3, "p = {p}");
}

#[test]
fn the_sparse_exact_sampler_samples_the_exact_posterior() {
    // The trainer samples word by word for it, whatever order is asked for.
    let p = posterior_p(
        1,
        SampleOrder::Doc,
        SamplerKind::Sparse,
        false,
        ITERATIONS / 2,
    );
    assert!(p > 1e-3, "p = {p}");
}

#[test]
fn a_sparse_draw_that_keeps_the_token_in_its_word_term_fails_the_same_test() {
    let p = posterior_p(
        1,
        SampleOrder::Doc,
        SamplerKind::Sparse,
        true,
        ITERATIONS / 2,
    );
    assert!(p < 1e-6, "the flawed sparse draw went unnoticed: p = {p}");
}

#[test]
fn a_kernel_whose_proposals_see_the_token_fails_the_same_test() {
    let p = posterior_p(1, SampleOrder::Doc, SamplerKind::Mh, true, ITERATIONS);
    assert!(p < 1e-6, "the flawed kernel went unnoticed: p = {p}");
}

#[test]
fn every_sampler_samples_the_exact_posterior_under_an_asymmetric_alpha() {
    for (order, sampler, iterations) in [
        (SampleOrder::Doc, SamplerKind::Mh, ITERATIONS),
        (SampleOrder::Word, SamplerKind::Mh, ITERATIONS),
        (SampleOrder::Doc, SamplerKind::Gibbs, ITERATIONS / 2),
        (SampleOrder::Word, SamplerKind::Gibbs, ITERATIONS / 2),
        (SampleOrder::Word, SamplerKind::Sparse, ITERATIONS / 2),
    ] {
        let p = posterior_p_with(order, sampler, false, iterations, 1, ASYMMETRIC, ASYMMETRIC);
        assert!(p > 1e-3, "{sampler:?}, {order:?} order: p = {p}");
    }
}

#[test]
fn a_sampler_that_ignored_the_asymmetric_alpha_would_fail_the_same_test() {
    // The chain samples under the asymmetric α; the posterior of the symmetric α of the same
    // total must be told apart from it, or the test above could not see α being ignored.
    let mean = (ASYMMETRIC[0] + ASYMMETRIC[1]) / 2.0;
    for sampler in [SamplerKind::Mh, SamplerKind::Sparse] {
        let p = posterior_p_with(
            SampleOrder::Doc,
            sampler,
            false,
            ITERATIONS / 2,
            1,
            ASYMMETRIC,
            [mean, mean],
        );
        assert!(p < 1e-6, "{sampler:?}: α went unnoticed, p = {p}");
    }
}
