//! The model as it stands on the parameter server, read without the sampler: φ, the counts, the
//! word part of the log-likelihood, the count invariants and the model directory. The trainer
//! uses it for its own model; a cluster driver, which holds no tokens, uses it for the workers'.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use tokio::runtime::Handle;

use crate::conditional::Hyper;
use crate::error::{LdaError, Result};
use crate::export::{
    DISPLAY_FILE, HYPERPARAMETERS_FILE, HyperFile, PHI_FILE, SparseCounts, TOPIC_TOTALS_FILE,
    VOCAB_FILE, WORD_TOPIC_FILE, write_atomic, write_json, write_word_topic,
};
use crate::model::{PsModel, row_nonzeros};

/// A read-only view of n_wk and n_k with what is needed to interpret them.
#[derive(Debug, Clone, Copy)]
pub struct ModelView<'a> {
    pub model: &'a PsModel,
    pub handle: &'a Handle,
    pub hyper: Hyper,
    /// Term of each word id (empty or short: the id is shown).
    pub terms: &'a [String],
    /// Display forms by word id (empty: the terms are shown).
    pub display: &'a [String],
    /// Occurrences of each word id in the training corpus.
    pub word_counts: &'a [u64],
    /// Tokens of the training corpus.
    pub tokens: u64,
}

impl ModelView<'_> {
    /// Pulls every non-zero n_wk from ps-core.
    pub fn pull_counts(&self) -> Result<SparseCounts> {
        let mut c = SparseCounts::default();
        self.handle.block_on(self.model.scan_rows(|w, row| {
            for (t, n) in row_nonzeros(row) {
                c.words.push(w);
                c.topics.push(t);
                c.counts.push(n);
            }
            Ok(())
        }))?;
        Ok(c)
    }

    pub fn pull_totals(&self) -> Result<Vec<i64>> {
        self.handle.block_on(self.model.pull_totals())
    }

    /// φ row by row from the pulled counts, φ_kw = (n_wk + β)/(n_k + Vβ).
    fn phi_rows(
        &self,
        counts: &SparseCounts,
        totals: &[i64],
        mut emit: impl FnMut(&[f64]) -> Result<()>,
    ) -> Result<()> {
        let h = self.hyper;
        let (k, v) = (h.topics as usize, h.vocab as usize);
        // Group the word-major counts by topic first (counting sort).
        let mut start = vec![0usize; k + 1];
        for &t in &counts.topics {
            start[t as usize + 1] += 1;
        }
        for t in 0..k {
            start[t + 1] += start[t];
        }
        let mut fill = start.clone();
        let mut by_topic = vec![(0u32, 0i32); counts.words.len()];
        for i in 0..counts.words.len() {
            let t = counts.topics[i] as usize;
            by_topic[fill[t]] = (counts.words[i], counts.counts[i]);
            fill[t] += 1;
        }
        let mut row = vec![0.0f64; v];
        for t in 0..k {
            let denom = totals[t] as f64 + h.vbeta();
            row.iter_mut().for_each(|x| *x = h.beta / denom);
            for &(word, n) in &by_topic[start[t]..start[t + 1]] {
                row[word as usize] = (f64::from(n) + h.beta) / denom;
            }
            emit(&row)?;
        }
        Ok(())
    }

    /// The current φ (K × V, row-major), pulled from the parameter server.
    pub fn phi(&self) -> Result<Vec<f64>> {
        let h = self.hyper;
        let counts = self.pull_counts()?;
        let totals = self.pull_totals()?;
        let mut phi = Vec::with_capacity(h.topics as usize * h.vocab as usize);
        self.phi_rows(&counts, &totals, |row| {
            phi.extend_from_slice(row);
            Ok(())
        })?;
        Ok(phi)
    }

    /// The term of each word id, as `vocab.txt` writes them (the id itself when unknown).
    pub fn vocabulary(&self) -> Vec<String> {
        (0..self.hyper.vocab as usize)
            .map(|j| match self.terms.get(j).filter(|t| !t.is_empty()) {
                Some(t) => t.clone(),
                None => j.to_string(),
            })
            .collect()
    }

    /// The word part of log p(w, z): Σ_k [ln Γ(Vβ) − ln Γ(n_k + Vβ)] + Σ_{w,k} [ln Γ(n_wk + β) − ln Γ(β)].
    pub fn word_loglik(&self) -> Result<f64> {
        let h = self.hyper;
        let totals = self.pull_totals()?;
        let lg_beta = crate::math::ln_gamma(h.beta);
        let mut counts_ll = 0.0;
        self.handle.block_on(self.model.scan_rows(|_, row| {
            for (_, c) in row_nonzeros(row) {
                counts_ll += crate::math::ln_gamma(f64::from(c) + h.beta) - lg_beta;
            }
            Ok(())
        }))?;
        Ok(crate::loglik::word_part(&h, &totals, std::iter::empty()) + counts_ll)
    }

    /// Checks the model on ps-core against the corpus: Σ_k n_wk = count of w, n_k = Σ_w n_wk,
    /// Σ_k n_k = N, no negative count.
    pub fn check_invariants(&self) -> Result<()> {
        let k = self.hyper.topics as usize;
        let totals = self.pull_totals()?;
        let mut col_sums = vec![0i64; k];
        let counts = self.word_counts;
        self.handle.block_on(self.model.scan_rows(|w, row| {
            let mut sum = 0i64;
            for (t, c) in row_nonzeros(row) {
                if c < 0 {
                    return Err(LdaError::Invariant(format!(
                        "n_wk < 0 at word {w}, topic {t}: {c}"
                    )));
                }
                sum += i64::from(c);
                col_sums[t as usize] += i64::from(c);
            }
            let expected = counts.get(w as usize).copied().unwrap_or(0) as i64;
            if sum != expected {
                return Err(LdaError::Invariant(format!(
                    "word {w}: Σ_k n_wk = {sum}, but it occurs {expected} times"
                )));
            }
            Ok(())
        }))?;
        if totals != col_sums {
            return Err(LdaError::Invariant(format!(
                "n_k = {totals:?} but Σ_w n_wk = {col_sums:?}"
            )));
        }
        if totals.iter().any(|&c| c < 0) || totals.iter().sum::<i64>() != self.tokens as i64 {
            return Err(LdaError::Invariant(format!(
                "n_k = {totals:?} does not sum to {} tokens",
                self.tokens
            )));
        }
        Ok(())
    }

    /// Writes the model directory except `doc_topic.parquet` (the documents' side lives with
    /// whoever holds the tokens).
    pub fn export_model(&self, dir: &Path, info: &HyperFile) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| LdaError::io(dir, e))?;
        let (k, v) = (self.hyper.topics as usize, self.hyper.vocab as usize);
        let counts = self.pull_counts()?;
        let totals = self.pull_totals()?;
        write_word_topic(&dir.join(WORD_TOPIC_FILE), &counts)?;
        write_json(&dir.join(TOPIC_TOTALS_FILE), &totals)?;
        write_json(&dir.join(HYPERPARAMETERS_FILE), info)?;
        let vocab_path = dir.join(VOCAB_FILE);
        write_atomic(&vocab_path, |tmp| {
            let f = File::create(tmp).map_err(|e| LdaError::io(tmp, e))?;
            let mut out = BufWriter::new(f);
            for term in self.vocabulary() {
                writeln!(out, "{term}").map_err(|e| LdaError::io(tmp, e))?;
            }
            out.flush().map_err(|e| LdaError::io(tmp, e))
        })?;

        let display_path = dir.join(DISPLAY_FILE);
        if self.display.len() == v {
            write_atomic(&display_path, |tmp| {
                let f = File::create(tmp).map_err(|e| LdaError::io(tmp, e))?;
                let mut out = BufWriter::new(f);
                for shown in self.display {
                    // One per line: a line break inside a form would shift every later one.
                    writeln!(out, "{}", shown.replace(['\n', '\r'], " "))
                        .map_err(|e| LdaError::io(tmp, e))?;
                }
                out.flush().map_err(|e| LdaError::io(tmp, e))
            })?;
        } else if display_path.exists() {
            // A stale file from an earlier model in this directory must not label this one.
            fs::remove_file(&display_path).map_err(|e| LdaError::io(&display_path, e))?;
        }

        let phi_path = dir.join(PHI_FILE);
        write_atomic(&phi_path, |tmp| {
            let mut w = datasets::npy::NpyWriter::create(tmp, k, v)?;
            self.phi_rows(&counts, &totals, |row| Ok(w.write_row(row)?))?;
            w.finish()?;
            Ok(())
        })
    }
}
