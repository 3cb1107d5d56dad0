//! Topic coherence from document co-occurrence in a reference corpus (normally the training
//! corpus), and topic diversity.
//!
//! For the top N = 10 words w_1..w_N of a topic (most probable first), with D(w) the number of
//! reference documents containing w, D(w, w') those containing both and M the number of documents:
//!
//! ```text
//! UMass(i, j) = log( (D(w_i, w_j) + 1) / D(w_j) )            j < i (w_j the more probable)
//! NPMI(i, j)  = log( P(w_i, w_j) / (P(w_i) P(w_j)) ) / −log P(w_i, w_j),   P(·) = D(·)/M
//!               (−1 when the pair never co-occurs, 1 when it co-occurs in every document)
//! ```
//! A topic's score is the mean over its N(N−1)/2 = 45 pairs; the model's is the mean over topics.
//! A top word that no reference document contains makes UMass undefined: such pairs are left out
//! and counted. Diversity is the share of distinct words among all topics' top 25.

use std::collections::HashMap;

use serde::Serialize;

use crate::docs::AlignedDocs;
use crate::error::{EvalError, Result};
use crate::model::TopicModel;

/// Coherence of one topic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopicCoherence {
    pub umass: f64,
    pub npmi: f64,
}

/// Coherence of a model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Coherence {
    pub top_n: usize,
    pub umass: f64,
    pub npmi: f64,
    pub per_topic: Vec<TopicCoherence>,
    /// Pairs left out of UMass because their more probable word occurs in no reference document.
    pub undefined_umass_pairs: u64,
    pub reference_documents: u64,
}

/// UMass and NPMI coherence of each topic's top `top_n` words against `reference`.
pub fn coherence(model: &TopicModel, reference: &AlignedDocs, top_n: usize) -> Result<Coherence> {
    if top_n < 2 {
        return Err(EvalError::InvalidOption(format!(
            "coherence needs at least 2 top words, got {top_n}"
        )));
    }
    if reference.is_empty() {
        return Err(EvalError::Empty(
            "the reference corpus has no documents".into(),
        ));
    }
    let tops: Vec<Vec<u32>> = (0..model.topics)
        .map(|k| model.top_words(k, top_n))
        .collect();
    // Dense ids for the words that appear in some top list.
    let mut slot: HashMap<u32, usize> = HashMap::new();
    for &w in tops.iter().flatten() {
        let n = slot.len();
        slot.entry(w).or_insert(n);
    }
    let n = slot.len();
    let mut df = vec![0u64; n];
    let mut co = vec![0u64; n * n];
    let mut seen = vec![false; n];
    let mut present = Vec::new();
    for doc in &reference.docs {
        present.clear();
        for w in doc {
            if let Some(&s) = slot.get(w)
                && !seen[s]
            {
                seen[s] = true;
                present.push(s);
            }
        }
        for (a, &i) in present.iter().enumerate() {
            df[i] += 1;
            for &j in &present[a + 1..] {
                co[i * n + j] += 1;
                co[j * n + i] += 1;
            }
        }
        for &s in &present {
            seen[s] = false;
        }
    }
    let m = reference.len() as f64;
    let mut undefined = 0u64;
    let mut per_topic = Vec::with_capacity(tops.len());
    for top in &tops {
        let (mut umass, mut umass_pairs, mut npmi, mut pairs) = (0.0, 0u64, 0.0, 0u64);
        for i in 1..top.len() {
            for j in 0..i {
                let (si, sj) = (slot[&top[i]], slot[&top[j]]);
                let dij = co[si * n + sj] as f64;
                let (di, dj) = (df[si] as f64, df[sj] as f64);
                if dj > 0.0 {
                    umass += ((dij + 1.0) / dj).ln();
                    umass_pairs += 1;
                } else {
                    undefined += 1;
                }
                npmi += npmi_of(dij / m, di / m, dj / m);
                pairs += 1;
            }
        }
        per_topic.push(TopicCoherence {
            umass: if umass_pairs > 0 {
                umass / umass_pairs as f64
            } else {
                f64::NAN
            },
            npmi: npmi / pairs.max(1) as f64,
        });
    }
    let mean = |f: fn(&TopicCoherence) -> f64| {
        let v: Vec<f64> = per_topic.iter().map(f).filter(|x| x.is_finite()).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    Ok(Coherence {
        top_n,
        umass: mean(|t| t.umass),
        npmi: mean(|t| t.npmi),
        per_topic,
        undefined_umass_pairs: undefined,
        reference_documents: reference.len() as u64,
    })
}

/// NPMI of a pair from its joint and marginal document probabilities.
fn npmi_of(pij: f64, pi: f64, pj: f64) -> f64 {
    if pij <= 0.0 {
        return -1.0;
    }
    if pij >= 1.0 {
        return 1.0;
    }
    (pij / (pi * pj)).ln() / -pij.ln()
}

/// Share of distinct words among all topics' top `top_n` (1: no two topics share a top word).
pub fn topic_diversity(model: &TopicModel, top_n: usize) -> f64 {
    let mut all: Vec<u32> = (0..model.topics)
        .flat_map(|k| model.top_words(k, top_n))
        .collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    all.len() as f64 / total.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmi_bounds_and_independence() {
        assert_eq!(npmi_of(0.0, 0.5, 0.5), -1.0);
        assert_eq!(npmi_of(1.0, 1.0, 1.0), 1.0);
        // Independent words: P(i,j) = P(i)P(j) → 0.
        assert!(npmi_of(0.25, 0.5, 0.5).abs() < 1e-12);
        // Always together: P(i,j) = P(i) = P(j) → 1.
        assert!((npmi_of(0.3, 0.3, 0.3) - 1.0).abs() < 1e-12);
    }
}
