//! An F+ tree (Yu et al., "A Scalable Asynchronous Distributed Algorithm for Topic Modeling",
//! 2015): a complete binary tree of partial sums over K non-negative weights, so one weight
//! changes and one draw is made in O(log K) while the total is always at hand.
//!
//! Every update recomputes its ancestors as the sum of their children instead of adding a
//! difference, so rounding never accumulates however many updates a tree sees.

/// Partial sums over a power-of-two number of leaves; leaves past the weights are zero.
#[derive(Debug, Clone, Default)]
pub struct FTree {
    leaves: usize,
    /// `nodes[1]` is the root, node `i` has children `2i` and `2i + 1`, leaf `t` is
    /// `nodes[leaves + t]`; `nodes[0]` is unused.
    nodes: Vec<f64>,
}

impl FTree {
    /// A tree of `k` zero weights.
    pub fn new(k: usize) -> Self {
        let leaves = k.max(1).next_power_of_two();
        FTree {
            leaves,
            nodes: vec![0.0; 2 * leaves],
        }
    }

    /// Replaces every weight (at most as many as the tree was made for) and recomputes the sums.
    pub fn build(&mut self, weights: impl Iterator<Item = f64>) {
        let (leaves, nodes) = (self.leaves, &mut self.nodes);
        for (slot, w) in nodes[leaves..].iter_mut().zip(weights) {
            *slot = w;
        }
        for i in (1..leaves).rev() {
            nodes[i] = nodes[2 * i] + nodes[2 * i + 1];
        }
    }

    /// Weight `t`.
    #[inline(always)]
    pub fn weight(&self, t: u32) -> f64 {
        self.nodes[self.leaves + t as usize]
    }

    /// The sum of all weights.
    #[inline(always)]
    pub fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// Sets weight `t` and the sums above it.
    #[inline]
    pub fn set(&mut self, t: u32, weight: f64) {
        let mut i = self.leaves + t as usize;
        self.nodes[i] = weight;
        while i > 1 {
            i /= 2;
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1];
        }
    }

    /// The leaf whose cumulative range holds `u` ∈ [0, total): weight t is drawn with probability
    /// weight(t) / total for a uniform `u`. Never returns a zero-weight leaf while the total is
    /// positive: where rounding leaves `u` past a subtree's sum, the descent goes to the side
    /// that has weight.
    #[inline]
    pub fn find(&self, mut u: f64) -> u32 {
        let mut i = 1;
        while i < self.leaves {
            let left = self.nodes[2 * i];
            if u < left || self.nodes[2 * i + 1] <= 0.0 {
                i *= 2;
            } else {
                u -= left;
                i = 2 * i + 1;
            }
        }
        (i - self.leaves) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// After any sequence of builds and updates, every node is the sum of its leaves and
        /// `find` inverts the cumulative sums.
        #[test]
        fn sums_and_search_agree_with_the_leaves(
            k in 1usize..70,
            init in proptest::collection::vec(0.0f64..10.0, 70),
            updates in proptest::collection::vec((0usize..70, 0.0f64..10.0), 0..50),
        ) {
            let mut tree = FTree::new(k);
            let mut w: Vec<f64> = init[..k].to_vec();
            tree.build(w.iter().copied());
            for &(t, x) in &updates {
                let t = t % k;
                w[t] = x;
                tree.set(t as u32, x);
            }
            let total: f64 = w.iter().sum();
            prop_assert!((tree.total() - total).abs() <= 1e-9 * total.max(1.0));
            let mut cum = 0.0;
            for (t, &x) in w.iter().enumerate() {
                prop_assert_eq!(tree.weight(t as u32), x);
                if x > 0.0 {
                    // The middle of each leaf's range finds that leaf.
                    prop_assert_eq!(tree.find(cum + x / 2.0), t as u32);
                }
                cum += x;
            }
            if total > 0.0 {
                // Past the end (rounding) still lands on a leaf with weight.
                let t = tree.find(total * (1.0 + 1e-12));
                prop_assert!(w[t as usize] > 0.0);
            }
        }
    }
}
