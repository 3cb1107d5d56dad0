//! Topic recovery against a ground-truth φ (the synthetic generator's): both sets of topics are
//! restricted to the terms they share, renormalised, and matched one to one ([`crate::matching`]).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{EvalError, Result};
use crate::matching::matched_hellinger;
use crate::model::TopicModel;

/// A ground-truth φ and its terms.
#[derive(Debug, Clone)]
pub struct Truth {
    pub topics: usize,
    pub phi: Vec<f64>,
    pub terms: Vec<String>,
}

impl Truth {
    /// Reads `phi.npy` from a synthetic corpus directory, with the terms of its `vocab.tsv`
    /// (or of a `vocab.txt`, one term per line).
    pub fn load(dir: &Path) -> Result<Self> {
        let phi = datasets::npy::read(&dir.join("phi.npy"))?;
        let terms = if dir.join("vocab.txt").exists() {
            let p = dir.join("vocab.txt");
            std::fs::read_to_string(&p)
                .map_err(|e| EvalError::io(&p, e))?
                .lines()
                .map(str::to_owned)
                .collect()
        } else {
            datasets::Vocabulary::read_tsv(&dir.join("vocab.tsv"))?
                .terms()
                .to_vec()
        };
        if terms.len() != phi.cols {
            return Err(EvalError::BadModel {
                path: dir.to_path_buf(),
                reason: format!(
                    "phi.npy has {} columns but the vocabulary {} terms",
                    phi.cols,
                    terms.len()
                ),
            });
        }
        Ok(Truth {
            topics: phi.rows,
            phi: phi.data,
            terms,
        })
    }
}

/// Mean Hellinger distance between the truth's topics and the model's after matching.
pub fn topic_recovery(model: &TopicModel, truth: &Truth) -> Result<f64> {
    let index: HashMap<&str, usize> = model
        .vocab
        .iter()
        .enumerate()
        .map(|(j, t)| (t.as_str(), j))
        .collect();
    let shared: Vec<(usize, usize)> = truth
        .terms
        .iter()
        .enumerate()
        .filter_map(|(i, t)| index.get(t.as_str()).map(|&j| (i, j)))
        .collect();
    if shared.is_empty() {
        return Err(EvalError::Empty(
            "the model and the truth share no term".into(),
        ));
    }
    let restrict = |row: &[f64], pick: fn(&(usize, usize)) -> usize| -> Vec<f64> {
        let mut r: Vec<f64> = shared.iter().map(|p| row[pick(p)]).collect();
        let s: f64 = r.iter().sum();
        if s > 0.0 {
            r.iter_mut().for_each(|x| *x /= s);
        }
        r
    };
    let tv = truth.terms.len();
    let truth_rows: Vec<Vec<f64>> = (0..truth.topics)
        .map(|k| restrict(&truth.phi[k * tv..(k + 1) * tv], |p| p.0))
        .collect();
    let found: Vec<Vec<f64>> = (0..model.topics)
        .map(|k| restrict(model.topic(k), |p| p.1))
        .collect();
    matched_hellinger(&truth_rows, &found)
}
