//! The model directory: everything a user or another tool needs from a trained model.
//!
//! ```text
//! word_topic.parquet   word (u32), topic (u32), count (i32): the non-zero n_wk
//! topic_totals.json    [n_k; K]
//! doc_topic.parquet    doc (utf8), topic (u32), count (u32), theta (f64): non-zero n_dk with
//!                      θ_dk = (n_dk + α_k)/(N_d + Σα); a topic absent for a document has
//!                      θ = α_k/(N_d + Σα)
//! hyperparameters.json topics, vocabulary, alpha (a number, or one per topic once optimised),
//!                      beta, iterations, mh_steps, seed, threads, ...
//! vocab.txt            line j = term of word id j
//! display.txt          line j = display form of word id j (the most frequent surface form of a
//!                      stemmed term); only when the corpus recorded them
//! phi.npy              float64 K × V, φ_kw = (n_wk + β)/(n_k + Vβ), rows sum to 1
//! ```
//!
//! Each file is written under a temporary name and renamed into place.

use std::fs::{self, File};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::alpha::Alpha;
use crate::error::{LdaError, Result};
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

/// α as `hyperparameters.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlphaValue {
    /// The same α for every topic.
    Symmetric(f64),
    /// α_k per topic (optimised).
    PerTopic(Vec<f64>),
}

impl AlphaValue {
    /// How `alpha` is written: a number while it is symmetric.
    pub fn of(alpha: &Alpha) -> Self {
        match alpha.values() {
            [first, ..] if alpha.is_symmetric() => AlphaValue::Symmetric(*first),
            values => AlphaValue::PerTopic(values.to_vec()),
        }
    }

    /// The prior for a model of `topics` topics.
    pub fn to_alpha(&self, topics: u32) -> Result<Alpha> {
        match self {
            AlphaValue::Symmetric(a) => Alpha::from_values(vec![*a; topics as usize]),
            AlphaValue::PerTopic(v) if v.len() == topics as usize => Alpha::from_values(v.clone()),
            AlphaValue::PerTopic(v) => Err(LdaError::InvalidConfig(format!(
                "alpha has {} values for {topics} topics",
                v.len()
            ))),
        }
    }
}

/// `hyperparameters.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HyperFile {
    pub topics: u32,
    pub vocabulary: u32,
    pub alpha: AlphaValue,
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

pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| LdaError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| LdaError::bad_file(path, e.to_string()))
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
pub(crate) fn write_parquet(
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

/// `doc_topic.parquet` being assembled: one row per non-zero n_dk.
#[derive(Debug, Default)]
pub(crate) struct DocTopicTable {
    docs: Vec<String>,
    doc_of: Vec<u32>,
    topics: Vec<u32>,
    counts: Vec<u32>,
    theta: Vec<f64>,
}

impl DocTopicTable {
    /// Adds a document of `len` tokens with its non-zero (topic, count) pairs.
    pub(crate) fn add(&mut self, alpha: &Alpha, id: &str, len: u32, nonzeros: &mut [(u32, u32)]) {
        nonzeros.sort_unstable();
        let d = self.docs.len() as u32;
        self.docs.push(id.to_owned());
        for &(t, c) in nonzeros.iter() {
            self.doc_of.push(d);
            self.topics.push(t);
            self.counts.push(c);
            self.theta.push(alpha.theta(t, c, len));
        }
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("doc", DataType::Utf8, false),
            Field::new("topic", DataType::UInt32, false),
            Field::new("count", DataType::UInt32, false),
            Field::new("theta", DataType::Float64, false),
        ]));
        write_parquet(path, schema, self.doc_of.len(), |a, b| {
            let ids: StringArray = self.doc_of[a..b]
                .iter()
                .map(|&d| Some(self.docs[d as usize].as_str()))
                .collect();
            vec![
                Arc::new(ids) as ArrayRef,
                Arc::new(UInt32Array::from(self.topics[a..b].to_vec())),
                Arc::new(UInt32Array::from(self.counts[a..b].to_vec())),
                Arc::new(Float64Array::from(self.theta[a..b].to_vec())),
            ]
        })
    }
}

impl Trainer {
    /// Pulls every non-zero n_wk from ps-core.
    pub fn pull_counts(&self) -> Result<SparseCounts> {
        self.view().pull_counts()
    }

    /// The current φ (K × V, row-major), pulled from the parameter server.
    pub fn phi(&self) -> Result<Vec<f64>> {
        self.view().phi()
    }

    /// The term of each word id, as `vocab.txt` writes them (the id itself when unknown).
    pub fn vocabulary(&self) -> Vec<String> {
        self.view().vocabulary()
    }

    /// Writes the model directory (see the module documentation).
    pub fn export(&self, dir: &Path) -> Result<()> {
        let h = self.config.hyper;
        self.view().export_model(
            dir,
            &HyperFile {
                topics: h.topics,
                vocabulary: h.vocab,
                alpha: AlphaValue::of(&self.alpha),
                beta: h.beta,
                iterations: self.iteration,
                mh_steps: self.config.mh_cycles,
                seed: self.config.seed,
                threads: self.config.threads,
                documents: self.num_docs(),
                tokens: self.tokens,
            },
        )?;
        let mut table = DocTopicTable::default();
        let mut nz = Vec::new();
        for (w, doc_ids) in self.workers.iter().zip(&self.doc_ids) {
            for (d, id) in doc_ids.iter().enumerate() {
                w.doc_topics.nonzeros(d as u32, &mut nz);
                table.add(&self.alpha, id, w.tokens.doc_len(d as u32), &mut nz);
            }
        }
        table.write(&dir.join(DOC_TOPIC_FILE))
    }
}
