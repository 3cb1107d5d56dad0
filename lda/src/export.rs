//! The model directory: everything a user or another tool needs from a trained model.
//!
//! ```text
//! word_topic.parquet   word (u32), topic (u32), count (i32): the non-zero n_wk
//! topic_totals.json    [n_k; K]
//! doc_topic.parquet    doc (utf8), topic (u32), count (u32), theta (f64): non-zero n_dk with
//!                      θ_dk = (n_dk + α)/(N_d + Kα); a topic absent for a document has θ = α/(N_d + Kα)
//! hyperparameters.json topics, vocabulary, alpha, beta, iterations, mh_steps, seed, threads, ...
//! vocab.txt            line j = term of word id j
//! display.txt          line j = display form of word id j (the most frequent surface form of a
//!                      stemmed term); only when the corpus recorded them
//! phi.npy              float64 K × V, φ_kw = (n_wk + β)/(n_k + Vβ), rows sum to 1
//! ```
//!
//! Each file is written under a temporary name and renamed into place.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{LdaError, Result};
use crate::model::row_nonzeros;
use crate::train::Trainer;

pub const WORD_TOPIC_FILE: &str = "word_topic.parquet";
pub const TOPIC_TOTALS_FILE: &str = "topic_totals.json";
pub const DOC_TOPIC_FILE: &str = "doc_topic.parquet";
pub const HYPERPARAMETERS_FILE: &str = "hyperparameters.json";
pub const VOCAB_FILE: &str = "vocab.txt";
pub const PHI_FILE: &str = "phi.npy";
pub const DISPLAY_FILE: &str = "display.txt";

/// The words to show for each word id of the model in `dir`: `display.txt` when present and
/// `raw_terms` is false, else `vocab.txt` (the terms the model was trained on).
pub fn read_shown_terms(dir: &Path, raw_terms: bool) -> Result<Vec<String>> {
    let display = dir.join(DISPLAY_FILE);
    let path = if !raw_terms && display.is_file() {
        display
    } else {
        dir.join(VOCAB_FILE)
    };
    let text = fs::read_to_string(&path).map_err(|e| LdaError::io(&path, e))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Rows per Parquet record batch.
const BATCH_ROWS: usize = 1 << 20;

/// `hyperparameters.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HyperFile {
    pub topics: u32,
    pub vocabulary: u32,
    pub alpha: f64,
    pub beta: f64,
    pub iterations: u32,
    pub mh_steps: u32,
    pub seed: u64,
    pub threads: usize,
    pub documents: usize,
    pub tokens: u64,
}

/// The non-zero n_wk, word-major.
#[derive(Debug, Default)]
pub struct SparseCounts {
    pub words: Vec<u32>,
    pub topics: Vec<u32>,
    pub counts: Vec<i32>,
}

/// `path` with `.tmp` appended: where a file is written before it is renamed into place.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes a file atomically through `write`.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = tmp_path(path);
    write(&tmp)?;
    fs::rename(&tmp, path).map_err(|e| LdaError::io(path, e))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |tmp| {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| LdaError::bad_file(tmp, e.to_string()))?;
        fs::write(tmp, text).map_err(|e| LdaError::io(tmp, e))
    })
}

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> LdaError {
    LdaError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes record batches of `schema` produced by `batch(start, end)` for rows 0..n.
fn write_parquet(
    path: &Path,
    schema: Arc<Schema>,
    n: usize,
    batch: impl Fn(usize, usize) -> Vec<ArrayRef>,
) -> Result<()> {
    write_atomic(path, |tmp| {
        let file = File::create(tmp).map_err(|e| LdaError::io(tmp, e))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| parquet_err(tmp, e))?;
        let mut start = 0;
        while start < n {
            let end = (start + BATCH_ROWS).min(n);
            let b = RecordBatch::try_new(schema.clone(), batch(start, end))
                .map_err(|e| parquet_err(tmp, e))?;
            w.write(&b).map_err(|e| parquet_err(tmp, e))?;
            start = end;
        }
        w.close().map_err(|e| parquet_err(tmp, e))?;
        Ok(())
    })
}

/// Reads word-topic counts written by [`write_word_topic`], in file order.
pub fn read_word_topic(path: &Path) -> Result<SparseCounts> {
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::open(path).map_err(|e| LdaError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| parquet_err(path, e))?;
    let mut out = SparseCounts::default();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        let column = |i: usize| batch.column(i).as_any();
        let (Some(w), Some(t), Some(c)) = (
            column(0).downcast_ref::<UInt32Array>(),
            column(1).downcast_ref::<UInt32Array>(),
            column(2).downcast_ref::<Int32Array>(),
        ) else {
            return Err(LdaError::bad_file(
                path,
                "expected columns word, topic (u32), count (i32)",
            ));
        };
        if w.null_count() + t.null_count() + c.null_count() > 0 {
            return Err(LdaError::bad_file(path, "null counts"));
        }
        out.words.extend(w.values().iter().copied());
        out.topics.extend(t.values().iter().copied());
        out.counts.extend(c.values().iter().copied());
    }
    Ok(out)
}

/// Writes the word-topic counts as Parquet.
pub fn write_word_topic(path: &Path, c: &SparseCounts) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("word", DataType::UInt32, false),
        Field::new("topic", DataType::UInt32, false),
        Field::new("count", DataType::Int32, false),
    ]));
    write_parquet(path, schema, c.words.len(), |a, b| {
        vec![
            Arc::new(UInt32Array::from(c.words[a..b].to_vec())) as ArrayRef,
            Arc::new(UInt32Array::from(c.topics[a..b].to_vec())),
            Arc::new(Int32Array::from(c.counts[a..b].to_vec())),
        ]
    })
}

impl Trainer {
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

    /// φ row by row from the pulled counts, φ_kw = (n_wk + β)/(n_k + Vβ).
    fn phi_rows(
        &self,
        counts: &SparseCounts,
        totals: &[i64],
        mut emit: impl FnMut(&[f64]) -> Result<()>,
    ) -> Result<()> {
        let h = self.config.hyper;
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
        let h = self.config.hyper;
        let counts = self.pull_counts()?;
        let totals = self.handle.block_on(self.model.pull_totals())?;
        let mut phi = Vec::with_capacity(h.topics as usize * h.vocab as usize);
        self.phi_rows(&counts, &totals, |row| {
            phi.extend_from_slice(row);
            Ok(())
        })?;
        Ok(phi)
    }

    /// The term of each word id, as `vocab.txt` writes them (the id itself when unknown).
    pub fn vocabulary(&self) -> Vec<String> {
        (0..self.config.hyper.vocab as usize)
            .map(|j| match self.terms.get(j).filter(|t| !t.is_empty()) {
                Some(t) => t.clone(),
                None => j.to_string(),
            })
            .collect()
    }

    /// Writes the model directory (see the module documentation).
    pub fn export(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| LdaError::io(dir, e))?;
        let h = self.config.hyper;
        let (k, v) = (h.topics as usize, h.vocab as usize);
        let counts = self.pull_counts()?;
        let totals = self.handle.block_on(self.model.pull_totals())?;
        write_word_topic(&dir.join(WORD_TOPIC_FILE), &counts)?;
        write_json(&dir.join(TOPIC_TOTALS_FILE), &totals)?;
        write_json(
            &dir.join(HYPERPARAMETERS_FILE),
            &HyperFile {
                topics: h.topics,
                vocabulary: h.vocab,
                alpha: h.alpha,
                beta: h.beta,
                iterations: self.iteration,
                mh_steps: self.config.mh_cycles,
                seed: self.config.seed,
                threads: self.config.threads,
                documents: self.num_docs(),
                tokens: self.tokens,
            },
        )?;
        let vocab_path = dir.join(VOCAB_FILE);
        write_atomic(&vocab_path, |tmp| {
            let f = File::create(tmp).map_err(|e| LdaError::io(tmp, e))?;
            let mut out = BufWriter::new(f);
            for j in 0..v {
                let term = self
                    .terms
                    .get(j)
                    .map(String::as_str)
                    .filter(|t| !t.is_empty());
                match term {
                    Some(t) => writeln!(out, "{t}"),
                    None => writeln!(out, "{j}"),
                }
                .map_err(|e| LdaError::io(tmp, e))?;
            }
            out.flush().map_err(|e| LdaError::io(tmp, e))
        })?;

        let display_path = dir.join(DISPLAY_FILE);
        if self.display.len() == v {
            write_atomic(&display_path, |tmp| {
                let f = File::create(tmp).map_err(|e| LdaError::io(tmp, e))?;
                let mut out = BufWriter::new(f);
                for shown in &self.display {
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
        })?;
        self.write_doc_topic(&dir.join(DOC_TOPIC_FILE))
    }

    fn write_doc_topic(&self, path: &Path) -> Result<()> {
        let h = self.config.hyper;
        let (mut ids, mut topics, mut counts, mut theta) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut nz = Vec::new();
        for (w, doc_ids) in self.workers.iter().zip(&self.doc_ids) {
            for (d, id) in doc_ids.iter().enumerate() {
                w.doc_topics.nonzeros(d as u32, &mut nz);
                nz.sort_unstable();
                let denom = f64::from(w.tokens.doc_len(d as u32)) + h.kalpha();
                for &(t, c) in &nz {
                    ids.push(id.as_str());
                    topics.push(t);
                    counts.push(c);
                    theta.push((f64::from(c) + h.alpha) / denom);
                }
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("doc", DataType::Utf8, false),
            Field::new("topic", DataType::UInt32, false),
            Field::new("count", DataType::UInt32, false),
            Field::new("theta", DataType::Float64, false),
        ]));
        write_parquet(path, schema, ids.len(), |a, b| {
            vec![
                Arc::new(StringArray::from(ids[a..b].to_vec())) as ArrayRef,
                Arc::new(UInt32Array::from(topics[a..b].to_vec())),
                Arc::new(UInt32Array::from(counts[a..b].to_vec())),
                Arc::new(Float64Array::from(theta[a..b].to_vec())),
            ]
        })
    }
}
