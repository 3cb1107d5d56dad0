//! Topic recovery against a known truth: Hellinger distances between every true and every found
//! topic, a one-to-one matching of minimum total distance (the Hungarian algorithm), and the mean
//! distance over the matched pairs.

use crate::error::{EvalError, Result};

/// H(p, q) = sqrt(1 − Σ sqrt(p_i q_i)) for distributions p and q (0: equal, 1: disjoint).
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let bc: f64 = p.iter().zip(q).map(|(a, b)| (a * b).sqrt()).sum();
    (1.0 - bc).max(0.0).sqrt()
}

/// A minimum-cost assignment of rows to distinct columns of a `rows × cols` cost matrix
/// (`rows ≤ cols`), by the Hungarian algorithm with potentials in O(rows² · cols).
/// Returns the column of each row.
pub fn min_cost_assignment(cost: &[f64], rows: usize, cols: usize) -> Result<Vec<usize>> {
    if rows > cols || cost.len() != rows * cols {
        return Err(EvalError::InvalidOption(format!(
            "assignment needs rows ≤ columns and rows × columns costs, got {rows} × {cols} with {} costs",
            cost.len()
        )));
    }
    if cost.iter().any(|c| !c.is_finite()) {
        return Err(EvalError::InvalidOption(
            "assignment costs must be finite".into(),
        ));
    }
    // 1-based potentials u (rows), v (columns); way[j]: previous column on the augmenting path;
    // owner[j]: row matched to column j (0 = none).
    let (mut u, mut v) = (vec![0.0; rows + 1], vec![0.0; cols + 1]);
    let mut owner = vec![0usize; cols + 1];
    let mut way = vec![0usize; cols + 1];
    for i in 1..=rows {
        owner[0] = i;
        let mut j0 = 0usize;
        let mut minv = vec![f64::INFINITY; cols + 1];
        let mut used = vec![false; cols + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=cols {
                if !used[j] {
                    let cur = cost[(i0 - 1) * cols + (j - 1)] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=cols {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![0usize; rows];
    for j in 1..=cols {
        if owner[j] > 0 {
            out[owner[j] - 1] = j - 1;
        }
    }
    Ok(out)
}

/// Mean Hellinger distance between `truth` and `found` topics after a one-to-one matching of
/// minimum total distance; the smaller set is matched into the larger.
pub fn matched_hellinger(truth: &[Vec<f64>], found: &[Vec<f64>]) -> Result<f64> {
    if truth.is_empty() || found.is_empty() {
        return Err(EvalError::Empty("no topics to match".into()));
    }
    let (a, b) = if truth.len() <= found.len() {
        (truth, found)
    } else {
        (found, truth)
    };
    let mut cost = Vec::with_capacity(a.len() * b.len());
    for p in a {
        for q in b {
            if p.len() != q.len() {
                return Err(EvalError::InvalidOption(format!(
                    "topics over {} and {} words cannot be compared",
                    p.len(),
                    q.len()
                )));
            }
            cost.push(hellinger(p, q));
        }
    }
    let assign = min_cost_assignment(&cost, a.len(), b.len())?;
    let total: f64 = assign
        .iter()
        .enumerate()
        .map(|(i, &j)| cost[i * b.len() + j])
        .sum();
    Ok(total / a.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every permutation's cost, the brute-force reference.
    fn brute_force(cost: &[f64], n: usize) -> f64 {
        fn rec(cost: &[f64], n: usize, i: usize, used: &mut Vec<bool>) -> f64 {
            if i == n {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..n {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[i * n + j] + rec(cost, n, i + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        rec(cost, n, 0, &mut vec![false; n])
    }

    #[test]
    fn hungarian_matches_brute_force() {
        let mut x = 12345u64;
        for n in 1..=6 {
            for _ in 0..20 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (x >> 33) as f64 / (1u64 << 31) as f64
                    })
                    .collect();
                let a = min_cost_assignment(&cost, n, n).unwrap_or_default();
                let mut cols = a.clone();
                cols.sort_unstable();
                assert_eq!(cols, (0..n).collect::<Vec<_>>(), "not a permutation");
                let got: f64 = a.iter().enumerate().map(|(i, &j)| cost[i * n + j]).sum();
                assert!((got - brute_force(&cost, n)).abs() < 1e-9, "n = {n}");
            }
        }
    }

    #[test]
    fn permuted_topics_match_at_distance_zero() {
        let truth = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.1, 0.1, 0.8],
            vec![0.3, 0.4, 0.3],
        ];
        let found = vec![truth[2].clone(), truth[0].clone(), truth[1].clone()];
        let d = matched_hellinger(&truth, &found).unwrap_or(1.0);
        assert!(d < 1e-7, "{d}");
        let other = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        assert!(matched_hellinger(&truth, &other).unwrap_or(0.0) > 0.2);
    }
}
