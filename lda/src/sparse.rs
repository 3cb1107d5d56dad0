//! The exact collapsed Gibbs draw in O(K_d + log K) per token, for large K (F+LDA's word-by-word
//! decomposition, Yu et al. 2015). With the token left out of every count,
//!
//! p(z = k | rest) ∝ (n_dk + α_k)(n_wk + β)/(n_k + Vβ) = n_dk·q_k + α_k·q_k,  q_k = (n_wk + β)/(n_k + Vβ).
//!
//! The first term is non-zero only at the document's K_d topics and is summed over its
//! [`DocLists`] entry (q_k read back from the tree as its weight over α_k); the second is the
//! whole of α_k·q_k, kept in an [`FTree`] that is built
//! once per word (tokens are sampled word by word, so n_wk and n_k only change at a token's old
//! and new topic while one word is sampled: two O(log K) updates per token). A draw picks a term
//! by its mass, then a topic within it: a scan of the document's cumulative sums or a descent of
//! the tree. Nothing is approximated or stale, so the draw is exactly the conditional.

pub mod doc_lists;
pub mod ftree;

use rand_xoshiro::rand_core::Rng;

pub use doc_lists::DocLists;
pub use ftree::FTree;

use crate::rng::unit;

/// A draw: the new topic, and where the lists hold it and the token's old topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    pub topic: u32,
    /// Index of `topic` in the document's list when the draw found it there.
    pub index: Option<usize>,
    /// Index of the token's old topic in the document's list.
    pub own_index: usize,
}

/// Draws from n_dk·q_k + α_k·q_k: `doc` is the document's (topic, n_dk) list *with* the token
/// still counted at its old topic `own` (its one pass over the list leaves the token out and
/// finds `own` at the same time), `alpha_q` the tree of α_k·q_k with the token left out and
/// `inv_alpha` holds 1/α_k; `cumulative` is scratch. None if the list does not hold `own` (inconsistent counts).
#[inline]
pub fn draw<R: Rng>(
    doc: &[(u32, u32)],
    own: u32,
    alpha_q: &FTree,
    inv_alpha: &[f64],
    cumulative: &mut Vec<f64>,
    rng: &mut R,
) -> Option<Drawn> {
    // Sized up front: a push per topic would write the length back every time.
    if cumulative.len() < doc.len() {
        cumulative.resize(doc.len(), 0.0);
    }
    let cumulative = &mut cumulative[..doc.len()];
    let mut doc_mass = 0.0;
    let mut own_index = usize::MAX;
    for (i, (&(t, c), s)) in doc.iter().zip(cumulative.iter_mut()).enumerate() {
        let mine = t == own;
        own_index = if mine { i } else { own_index };
        let q = alpha_q.weight(t) * inv_alpha[t as usize];
        doc_mass += f64::from(c - u32::from(mine)) * q;
        *s = doc_mass;
    }
    if own_index == usize::MAX {
        return None;
    }
    let x = unit(rng) * (doc_mass + alpha_q.total());
    if x < doc_mass {
        // The first cumulative sum above x; an entry of zero mass (the token's own, alone)
        // has a sum equal to its predecessor's and is never the first above.
        let i = cumulative.partition_point(|&s| s <= x).min(doc.len() - 1);
        return Some(Drawn {
            topic: doc[i].0,
            index: Some(i),
            own_index,
        });
    }
    Some(Drawn {
        topic: alpha_q.find(x - doc_mass),
        index: None,
        own_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::stats::chi_square_p;

    /// Draws of [`draw`] against (n_dk + α_k)(n_wk + β)/(n_k + Vβ) computed directly, with one
    /// topic's target weight scaled by `scale` (1: the true conditional); α is asymmetric.
    fn draws_p_value(k: usize, scale: f64) -> f64 {
        let (beta, vbeta) = (0.01, 30.0);
        let alpha: Vec<f64> = (0..k).map(|t| 0.02 + (t % 4) as f64 * 0.03).collect();
        let inv_alpha: Vec<f64> = alpha.iter().map(|a| 1.0 / a).collect();
        let ndk: Vec<u32> = (0..k)
            .map(|t| if t % 5 == 0 { (t % 7) as u32 + 1 } else { 0 })
            .collect();
        let nwk: Vec<u32> = (0..k).map(|t| ((t * 13) % 11) as u32).collect();
        let nk: Vec<f64> = (0..k).map(|t| 40.0 + (t % 9) as f64 * 25.0).collect();
        let q: Vec<f64> = (0..k)
            .map(|t| (f64::from(nwk[t]) + beta) / (nk[t] + vbeta))
            .collect();
        let mut tree = FTree::new(k);
        tree.build(q.iter().zip(&alpha).map(|(q, a)| q * a));
        // The list still counts the token, at `own`; the draw leaves it out.
        let own = 3u32;
        let doc: Vec<(u32, u32)> = (0..k)
            .filter(|&t| ndk[t] > 0 || t == own as usize)
            .map(|t| (t as u32, ndk[t] + u32::from(t == own as usize)))
            .collect();
        let mut exact: Vec<f64> = (0..k)
            .map(|t| (f64::from(ndk[t]) + alpha[t]) * q[t])
            .collect();
        // The control's wrong target: a topic of the document's term, off by `scale`.
        exact[5] *= scale;
        let mut rng = stream(11, 0);
        let mut seen = vec![0u64; k];
        let mut cumulative = Vec::new();
        for _ in 0..300_000 {
            let d = draw(&doc, own, &tree, &inv_alpha, &mut cumulative, &mut rng).expect("own");
            if let Some(i) = d.index {
                assert_eq!(doc[i].0, d.topic);
            }
            assert_eq!(doc[d.own_index].0, own);
            seen[d.topic as usize] += 1;
        }
        chi_square_p(&seen, &exact)
    }

    #[test]
    fn a_list_without_the_tokens_topic_is_refused() {
        let mut tree = FTree::new(4);
        tree.build([1.0, 1.0, 1.0, 1.0].into_iter());
        let mut rng = stream(1, 0);
        assert_eq!(
            draw(&[(0, 2)], 1, &tree, &[10.0; 4], &mut Vec::new(), &mut rng),
            None
        );
    }

    #[test]
    fn the_draw_follows_the_exact_conditional() {
        for k in [7, 64, 100] {
            let p = draws_p_value(k, 1.0);
            assert!(p > 1e-4, "K = {k}: p = {p}");
            // Negative control: one topic off by 20% must be detected.
            let p = draws_p_value(k, 1.2);
            assert!(p < 1e-6, "K = {k}: the control passed, p = {p}");
        }
    }
}
