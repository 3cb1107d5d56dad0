//! The kernel against the exact conditional: start each chain from an exact draw of π; if the
//! kernel leaves π invariant (what a correct acceptance ratio guarantees) the end states are
//! again distributed as π, which a chi-square test checks over many independent chains.

use super::*;
use crate::conditional::exact_conditional;
use crate::rng::{SamplerRng, stream};
use crate::stats::chi_square_p;

struct Tiny {
    n_d: Vec<u32>,
    n_w: Vec<i32>,
    stale: Vec<i32>,
    n_k: Vec<i64>,
    doc_topics: Vec<u32>,
}

impl TokenCounts for Tiny {
    fn doc(&self, k: u32) -> u32 {
        self.n_d[k as usize]
    }
    fn word(&self, k: u32) -> i32 {
        self.n_w[k as usize]
    }
    fn stale_word(&self, k: u32) -> i32 {
        self.stale[k as usize]
    }
    fn total(&self, k: u32) -> i64 {
        self.n_k[k as usize]
    }
    fn doc_len(&self) -> u32 {
        self.doc_topics.len() as u32
    }
    fn doc_token_topic(&self, j: u32) -> u32 {
        self.doc_topics[j as usize]
    }
}

const OLD: u32 = 2;

/// K = 6, a document of 9 tokens whose token 4 is the one being sampled (old topic 2).
fn tiny(stale: Vec<i32>) -> (Hyper, Tiny) {
    let h = Hyper {
        topics: 6,
        vocab: 50,
        alpha: 0.3,
        beta: 0.05,
    };
    let doc_topics = vec![0, 0, 3, 2, OLD, 5, 0, 3, 3];
    let mut n_d = vec![0u32; 6];
    for &t in &doc_topics {
        n_d[t as usize] += 1;
    }
    n_d[OLD as usize] -= 1; // the token itself is left out
    let t = Tiny {
        n_d,
        n_w: vec![4, 0, 7, 1, 0, 12],
        stale,
        n_k: vec![40, 25, 60, 18, 33, 90],
        doc_topics,
    };
    (h, t)
}

fn proposal(stale: &[i32], beta: f64) -> WordProposal {
    let nz: Vec<(u32, i32)> = stale
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(k, &c)| (k as u32, c))
        .collect();
    let mut q = WordProposal::new();
    q.build(&nz, stale.len(), beta);
    q
}

fn exact_draw(p: &[f64], rng: &mut SamplerRng) -> u32 {
    let u = crate::rng::unit(rng);
    let mut acc = 0.0;
    for (k, &x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return k as u32;
        }
    }
    (p.len() - 1) as u32
}

/// Runs `draws` chains of `step` from exact draws of π and returns the chi-square p-value.
fn invariance_p(
    h: &Hyper,
    t: &Tiny,
    draws: usize,
    seed: u64,
    mut step: impl FnMut(&mut ChainState, &mut SamplerRng),
) -> f64 {
    let p = exact_conditional(h, &t.n_d, &t.n_w, &t.n_k);
    let k = Kernel::new(h, 1);
    let mut rng = stream(seed, 0);
    let mut hist = vec![0u64; p.len()];
    for _ in 0..draws {
        let start = exact_draw(&p, &mut rng);
        let mut st = k.state(t, start);
        step(&mut st, &mut rng);
        hist[st.topic as usize] += 1;
    }
    let p_value = chi_square_p(&hist, &p);
    eprintln!("chi-square over {draws} chains: p = {p_value:.4}");
    p_value
}

const DRAWS: usize = 200_000;

#[test]
fn word_proposal_step_leaves_the_conditional_invariant() {
    // Table built from the current counts (plus this token at its old topic, as in the sampler).
    let (h, t) = tiny(vec![4, 0, 8, 1, 0, 12]);
    let q = proposal(&t.stale, h.beta);
    let k = Kernel::new(&h, 1);
    let p = invariance_p(&h, &t, DRAWS, 1, |st, rng| {
        for _ in 0..3 {
            k.word_step(&t, &q, st, rng);
        }
    });
    assert!(
        p > 1e-3,
        "word-proposal MH does not reproduce the conditional: p = {p}"
    );
}

#[test]
fn stale_word_table_is_corrected_by_the_acceptance() {
    // A table built from very different (stale) counts, dense and sparse forms.
    for stale in [vec![30, 2, 0, 9, 5, 1], vec![0, 0, 0, 1, 0, 0]] {
        let (h, t) = tiny(stale);
        let q = proposal(&t.stale, h.beta);
        let k = Kernel::new(&h, 1);
        let p = invariance_p(&h, &t, DRAWS, 2, |st, rng| k.word_step(&t, &q, st, rng));
        assert!(
            p > 1e-3,
            "stale table (dense={}) breaks invariance: p = {p}",
            q.is_dense()
        );
    }
}

#[test]
fn doc_proposal_step_leaves_the_conditional_invariant() {
    let (h, t) = tiny(vec![4, 0, 8, 1, 0, 12]);
    let k = Kernel::new(&h, 1);
    let p = invariance_p(&h, &t, DRAWS, 3, |st, rng| {
        for _ in 0..3 {
            k.doc_step(&t, OLD, k.doc_correction(&t, OLD), st, rng);
        }
    });
    assert!(
        p > 1e-3,
        "doc-proposal MH does not reproduce the conditional: p = {p}"
    );
}

#[test]
fn the_sampling_kernel_leaves_the_conditional_invariant() {
    // The path the sampler runs (alternating cycles), with 2 and 6 cycles, from exact draws of π,
    // with a stale table.
    for cycles in [2, 6] {
        let (h, t) = tiny(vec![9, 2, 3, 0, 1, 20]);
        let q = proposal(&t.stale, h.beta);
        let k = Kernel::new(&h, cycles);
        let p = invariance_p(&h, &t, DRAWS, 6 + u64::from(cycles), |st, rng| {
            st.topic = k.sample(&t, &q, OLD, st.topic, rng);
        });
        assert!(p > 1e-3, "{cycles} cycles: p = {p}");
    }
}

#[test]
fn full_cycles_converge_to_the_conditional_from_any_start() {
    // Not started at π: 30 cycles from the worst topic must forget the start.
    let (h, t) = tiny(vec![10, 1, 3, 0, 2, 4]);
    let q = proposal(&t.stale, h.beta);
    let p_exact = exact_conditional(&h, &t.n_d, &t.n_w, &t.n_k);
    let k = Kernel::new(&h, 30);
    let mut rng = stream(4, 0);
    let mut hist = vec![0u64; 6];
    for _ in 0..40_000 {
        hist[k.sample(&t, &q, OLD, 1, &mut rng) as usize] += 1;
    }
    let p = chi_square_p(&hist, &p_exact);
    eprintln!("30 cycles from topic 1: chi-square p = {p:.4}");
    assert!(p > 1e-3, "p = {p}, {hist:?} vs {p_exact:?}");
}

#[test]
fn the_seeds_acceptance_bug_is_detected() {
    // The seed built the table from n_wk + β but accepted as if the proposal were
    // (n_wk + β)/(n_k + Vβ). The same test must reject that kernel, or it proves nothing.
    let (h, t) = tiny(vec![4, 0, 8, 1, 0, 12]);
    let q = proposal(&t.stale, h.beta);
    let k = Kernel::new(&h, 1);
    let p = invariance_p(&h, &t, DRAWS, 5, |st, rng| {
        for _ in 0..3 {
            let cand_topic = q.sample(rng);
            if cand_topic == st.topic {
                continue;
            }
            let cand = k.state(&t, cand_topic);
            let qs = (f64::from(t.stale[st.topic as usize]) + h.beta) / st.total;
            let qt = (f64::from(t.stale[cand_topic as usize]) + h.beta) / cand.total;
            let ratio =
                (cand.doc * cand.word / cand.total) * qs / ((st.doc * st.word / st.total) * qt);
            if crate::rng::unit(rng) < ratio {
                *st = cand;
            }
        }
    });
    assert!(p < 1e-6, "the buggy acceptance went unnoticed: p = {p}");
}
