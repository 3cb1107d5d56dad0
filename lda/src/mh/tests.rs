//! The kernel against the exact conditional, in the configuration the sampler runs: the token's
//! old topic z₀ is drawn from π, written into the token's own slots of its document and of its
//! word (exactly as the sampler's topic arrays hold it), and the chain starts at z₀. If the kernel
//! leaves π invariant, the end states are again distributed as π, which a chi-square test checks
//! over many independent chains. A kernel whose proposals see the token at z₀ must fail the same
//! test (negative control).

use super::*;
use crate::conditional::exact_conditional;
use crate::rng::{SamplerRng, stream};
use crate::stats::chi_square_p;

/// One token's neighbourhood: its document's topics and this worker's tokens of its word, both
/// holding the token itself at its own slot; counts leave the token out.
struct Tiny {
    n_d: Vec<u32>,
    n_w: Vec<i32>,
    n_k: Vec<i64>,
    doc_topics: Vec<u32>,
    doc_slot: u32,
    word_topics: Vec<u32>,
    word_slot: u32,
}

impl TokenCounts for Tiny {
    fn doc(&self, k: u32) -> u32 {
        self.n_d[k as usize]
    }
    fn word(&self, k: u32) -> i32 {
        self.n_w[k as usize]
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
    fn doc_slot(&self) -> u32 {
        self.doc_slot
    }
    fn word_len(&self) -> u32 {
        self.word_topics.len() as u32
    }
    fn word_token_topic(&self, r: u32) -> u32 {
        self.word_topics[r as usize]
    }
    fn word_slot(&self) -> u32 {
        self.word_slot
    }
}

impl Tiny {
    /// Places the token at topic `z` in both of its slots.
    fn put(&mut self, z: u32) {
        self.doc_topics[self.doc_slot as usize] = z;
        self.word_topics[self.word_slot as usize] = z;
    }
}

/// K = 6; a document of `doc_others` other topics; this worker's other tokens of the word at
/// `word_others`; everybody else's share `ext`. n_wk = ext + own others, as in the sampler.
fn tiny(doc_others: &[u32], word_others: &[u32], ext: &[i32]) -> (Hyper, Tiny) {
    let h = Hyper {
        topics: 6,
        vocab: 50,
        alpha: 0.1,
        beta: 0.01,
    };
    let mut n_d = vec![0u32; 6];
    for &t in doc_others {
        n_d[t as usize] += 1;
    }
    let mut n_w = ext.to_vec();
    for &t in word_others {
        n_w[t as usize] += 1;
    }
    let mut doc_topics = doc_others.to_vec();
    let doc_slot = (doc_others.len() / 2) as u32;
    doc_topics.insert(doc_slot as usize, 0);
    let mut word_topics = word_others.to_vec();
    let word_slot = (word_others.len() / 2) as u32;
    word_topics.insert(word_slot as usize, 0);
    let t = Tiny {
        n_d,
        n_w,
        n_k: vec![40, 25, 60, 18, 33, 90],
        doc_topics,
        doc_slot,
        word_topics,
        word_slot,
    };
    (h, t)
}

/// The table of everybody else's share, as the sampler builds it.
fn proposal(ext: &[i32], beta: f64) -> WordProposal {
    let nz: Vec<(u32, i32)> = ext
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(k, &c)| (k as u32, c))
        .collect();
    let mut q = WordProposal::new();
    q.build(&nz, ext.len(), beta);
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

/// Runs `draws` chains of `step` from z₀ ~ π placed in the token's slots and returns the
/// chi-square p-value of the end states against π.
fn invariance_p(
    h: &Hyper,
    t: &mut Tiny,
    draws: usize,
    seed: u64,
    mut step: impl FnMut(&Tiny, &mut ChainState, &mut SamplerRng),
) -> f64 {
    let p = exact_conditional(h, &t.n_d, &t.n_w, &t.n_k);
    let k = Kernel::new(h, 1);
    let mut rng = stream(seed, 0);
    let mut hist = vec![0u64; p.len()];
    for _ in 0..draws {
        let z0 = exact_draw(&p, &mut rng);
        t.put(z0);
        let mut st = k.state(t, z0);
        step(t, &mut st, &mut rng);
        hist[st.topic as usize] += 1;
    }
    let p_value = chi_square_p(&hist, &p);
    eprintln!("chi-square over {draws} chains: p = {p_value:.4}");
    p_value
}

const DRAWS: usize = 200_000;

/// A short document and a word with few own tokens: where counting the token itself matters most.
fn short() -> (Hyper, Tiny, Vec<i32>) {
    let ext = vec![1, 0, 2, 0, 0, 3];
    let (h, t) = tiny(&[0, 3], &[2, 5], &ext);
    (h, t, ext)
}

#[test]
fn word_proposal_step_leaves_the_conditional_invariant() {
    // Dense, sparse and empty tables of the others' share (empty: one sampler thread).
    for ext in [vec![30, 2, 0, 9, 5, 1], vec![0, 0, 0, 1, 0, 0], vec![0; 6]] {
        let (h, mut t) = tiny(&[0, 3, 3, 5], &[1, 2, 2, 4], &ext);
        let q = proposal(&ext, h.beta);
        let k = Kernel::new(&h, 1);
        let p = invariance_p(&h, &mut t, DRAWS, 1, |t, st, rng| {
            for _ in 0..3 {
                k.word_step(t, &q, st, rng);
            }
        });
        assert!(
            p > 1e-3,
            "word-proposal MH (dense={}) does not keep the conditional: p = {p}",
            q.is_dense()
        );
    }
}

#[test]
fn doc_proposal_step_leaves_the_conditional_invariant() {
    let (h, mut t, _) = short();
    let k = Kernel::new(&h, 1);
    let p = invariance_p(&h, &mut t, DRAWS, 3, |t, st, rng| {
        for _ in 0..3 {
            k.doc_step(t, st, rng);
        }
    });
    assert!(
        p > 1e-3,
        "doc-proposal MH does not keep the conditional: p = {p}"
    );
}

#[test]
fn the_sampling_kernel_leaves_the_conditional_invariant() {
    // The path the sampler runs (alternating cycles) with 1, 2 and 6 cycles.
    for cycles in [1, 2, 6] {
        let (h, mut t, ext) = short();
        let q = proposal(&ext, h.beta);
        let k = Kernel::new(&h, cycles);
        let p = invariance_p(&h, &mut t, DRAWS, 6 + u64::from(cycles), |t, st, rng| {
            st.topic = k.sample(t, &q, st.topic, rng);
        });
        assert!(p > 1e-3, "{cycles} cycles: p = {p}");
    }
}

#[test]
fn full_cycles_converge_to_the_conditional_from_any_start() {
    // Not started at π: 30 cycles from an unlikely topic must forget the start.
    let (h, mut t, ext) = short();
    let q = proposal(&ext, h.beta);
    let p_exact = exact_conditional(&h, &t.n_d, &t.n_w, &t.n_k);
    let k = Kernel::new(&h, 30);
    let mut rng = stream(4, 0);
    let mut hist = vec![0u64; 6];
    t.put(1);
    for _ in 0..40_000 {
        hist[k.sample(&t, &q, 1, &mut rng) as usize] += 1;
    }
    let p = chi_square_p(&hist, &p_exact);
    eprintln!("30 cycles from topic 1: chi-square p = {p:.4}");
    assert!(p > 1e-3, "p = {p}, {hist:?} vs {p_exact:?}");
}

#[test]
fn proposals_that_see_the_token_itself_are_detected() {
    // LightLDA's flaw: the proposals pick the token's own slot as if it were another token's.
    // The same test must reject that kernel, or it proves nothing.
    let (h, mut t, ext) = short();
    let q = proposal(&ext, h.beta);
    let mut k = Kernel::new(&h, 2);
    k.count_own_token = true;
    let p = invariance_p(&h, &mut t, DRAWS, 5, |t, st, rng| {
        st.topic = k.sample(t, &q, st.topic, rng);
    });
    assert!(p < 1e-6, "the flawed kernel went unnoticed: p = {p}");
}
