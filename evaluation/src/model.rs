//! A topic model as every metric sees it: φ (K × V, rows sum to 1), the term of each column, and
//! the document-topic prior α. Loaded from any model directory holding `phi.npy` + `vocab.txt`
//! (glint-lda's own, or a baseline's); `hyperparameters.json` supplies α when present.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::error::{EvalError, Result};

pub const PHI_FILE: &str = "phi.npy";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const HYPERPARAMETERS_FILE: &str = "hyperparameters.json";

/// φ with its vocabulary and prior.
#[derive(Debug, Clone)]
pub struct TopicModel {
    /// Number of topics K.
    pub topics: usize,
    /// φ row-major: `phi[k * V + w]`.
    pub phi: Vec<f64>,
    /// Term of each column.
    pub vocab: Vec<String>,
    /// α per topic (symmetric unless the model optimised it), when the directory records it.
    pub alpha: Option<Vec<f64>>,
}

impl TopicModel {
    /// Builds a model from a row-major φ; rows are renormalised (baselines write them in single
    /// precision or unnormalised) and must be non-negative with positive mass.
    pub fn new(
        topics: usize,
        mut phi: Vec<f64>,
        vocab: Vec<String>,
        alpha: Option<Vec<f64>>,
    ) -> Result<Self> {
        let v = vocab.len();
        if topics == 0 || v == 0 || phi.len() != topics * v {
            return Err(EvalError::InvalidOption(format!(
                "φ holds {} values, expected {topics} topics × {v} terms",
                phi.len()
            )));
        }
        for (k, row) in phi.chunks_mut(v).enumerate() {
            let mass: f64 = row.iter().sum();
            if !(mass.is_finite() && mass > 0.0) || row.iter().any(|&x| x.is_nan() || x < 0.0) {
                return Err(EvalError::InvalidOption(format!(
                    "row {k} of φ is not a distribution (mass {mass})"
                )));
            }
            row.iter_mut().for_each(|x| *x /= mass);
        }
        if let Some(a) = &alpha
            && (a.len() != topics || a.iter().any(|&x| !(x.is_finite() && x > 0.0)))
        {
            return Err(EvalError::InvalidOption(format!(
                "α must hold {topics} positive numbers, got {a:?}"
            )));
        }
        Ok(TopicModel {
            topics,
            phi,
            vocab,
            alpha,
        })
    }

    /// Reads `phi.npy`, `vocab.txt` and, when present, α from `hyperparameters.json`
    /// (`"alpha": number` or `"alpha": [numbers]`).
    pub fn load(dir: &Path) -> Result<Self> {
        let bad = |reason: String| EvalError::BadModel {
            path: dir.to_path_buf(),
            reason,
        };
        let phi = datasets::npy::read(&dir.join(PHI_FILE))?;
        let vocab_path = dir.join(VOCAB_FILE);
        let text = fs::read_to_string(&vocab_path).map_err(|e| EvalError::io(&vocab_path, e))?;
        let vocab: Vec<String> = text.lines().map(str::to_owned).collect();
        if vocab.len() != phi.cols {
            return Err(bad(format!(
                "{PHI_FILE} has {} columns but {VOCAB_FILE} has {} lines",
                phi.cols,
                vocab.len()
            )));
        }
        let alpha = read_alpha(&dir.join(HYPERPARAMETERS_FILE), phi.rows).map_err(bad)?;
        Self::new(phi.rows, phi.data, vocab, alpha).map_err(|e| bad(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Row k of φ.
    pub fn topic(&self, k: usize) -> &[f64] {
        let v = self.vocab.len();
        &self.phi[k * v..(k + 1) * v]
    }

    /// α to use: `given` if set, else the model's, else an error naming the option.
    pub fn alpha_or(&self, given: Option<f64>) -> Result<Vec<f64>> {
        match (given, &self.alpha) {
            (Some(a), _) if a.is_finite() && a > 0.0 => Ok(vec![a; self.topics]),
            (Some(a), _) => Err(EvalError::InvalidOption(format!(
                "α must be positive, got {a}"
            ))),
            (None, Some(a)) => Ok(a.clone()),
            (None, None) => Err(EvalError::InvalidOption(
                "the model directory records no α (hyperparameters.json): pass --alpha".into(),
            )),
        }
    }

    /// Column index of each term.
    pub fn term_index(&self) -> HashMap<&str, u32> {
        self.vocab
            .iter()
            .enumerate()
            .map(|(j, t)| (t.as_str(), j as u32))
            .collect()
    }

    /// The `n` most probable terms' columns of topic k, most probable first (ties by column).
    pub fn top_words(&self, k: usize, n: usize) -> Vec<u32> {
        let row = self.topic(k);
        let mut idx: Vec<u32> = (0..row.len() as u32).collect();
        let n = n.min(idx.len());
        let by_weight =
            |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
        if n < idx.len() {
            idx.select_nth_unstable_by(n, by_weight);
            idx.truncate(n);
        }
        idx.sort_unstable_by(by_weight);
        idx
    }

    /// φ transposed to word-major (`out[w * K + k]`): inference reads one word's column at a time.
    pub fn word_major(&self) -> Vec<f64> {
        let (k, v) = (self.topics, self.vocab.len());
        let mut out = vec![0.0; k * v];
        for t in 0..k {
            for (w, &x) in self.topic(t).iter().enumerate() {
                out[w * k + t] = x;
            }
        }
        out
    }
}

fn read_alpha(path: &Path, topics: usize) -> std::result::Result<Option<Vec<f64>>, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match json.get("alpha") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64().map(|a| vec![a; topics])),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| format!("{}: α holds {x}", path.display()))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!("{}: α is {other}", path.display())),
    }
}
