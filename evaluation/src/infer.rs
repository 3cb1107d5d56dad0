//! Inference for new documents: θ of each document folded into a fixed φ ([`crate::fold_in`]),
//! on several threads, deterministic by seed whatever the thread count or the batch a document
//! comes in (its random stream is keyed by its tokens, `content_key`), and written to Parquet
//! with columns `doc` (utf8), `theta` (list<f64>, K entries) and `top_topics` (list<u32>, most
//! probable first).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, ListBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::docs::AlignedDocs;
use crate::error::{EvalError, Result};
use crate::fold_in::{FoldIn, FoldInOptions, content_key, doc_rng};
use crate::fold_in_mh::MhFoldIn;
use crate::fold_in_sparse::{SparseFoldIn, SparseScratch};
use crate::model::TopicModel;

/// How documents are folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldInMethod {
    /// Collapsed Gibbs over all K topics per token (the evaluation's reference, O(K)).
    Gibbs,
    /// Metropolis-Hastings with exact word and doc proposals, O(1) per step; this many
    /// (word, doc) cycles per token and sweep.
    Mh { cycles: u32 },
    /// The exact Gibbs conditional split into the document's topics and a per-word prior table,
    /// O(topics in the document) per token ([`crate::fold_in_sparse`]).
    Sparse,
}

/// θ of every document of `docs` (row-major, K per document).
pub fn infer_theta(
    model: &TopicModel,
    docs: &AlignedDocs,
    alpha: &[f64],
    opts: &FoldInOptions,
    method: FoldInMethod,
    threads: usize,
) -> Result<Vec<f64>> {
    opts.validate()?;
    let k = model.topics;
    if alpha.len() != k {
        return Err(EvalError::InvalidOption(format!(
            "α has {} entries for {k} topics",
            alpha.len()
        )));
    }
    let phi_wk = model.word_major();
    let mh = match method {
        FoldInMethod::Mh { cycles } => {
            let mut m = MhFoldIn::new(&phi_wk, alpha, &docs.docs);
            m.cycles = cycles.max(1);
            Some(m)
        }
        FoldInMethod::Gibbs | FoldInMethod::Sparse => None,
    };
    let sparse =
        (method == FoldInMethod::Sparse).then(|| SparseFoldIn::new(&phi_wk, alpha, &docs.docs));
    let mut theta = vec![0.0; docs.len() * k];
    let threads = threads.max(1).min(docs.len().max(1));
    let chunk_docs = docs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (c, out) in theta.chunks_mut(chunk_docs * k).enumerate() {
            let (phi_wk, mh, sparse) = (&phi_wk, &mh, &sparse);
            s.spawn(move || {
                let mut fold = FoldIn::new();
                let (mut z, mut counts) = (Vec::new(), Vec::new());
                let mut scratch = SparseScratch::default();
                for (i, row) in out.chunks_mut(k).enumerate() {
                    let d = c * chunk_docs + i;
                    let mut rng = doc_rng(opts.seed, content_key(&docs.docs[d]));
                    let words = &docs.docs[d];
                    match (mh, sparse) {
                        (Some(m), _) => m.theta(words, opts, &mut rng, &mut z, &mut counts, row),
                        (None, Some(sp)) => sp.theta(words, opts, &mut rng, &mut scratch, row),
                        (None, None) => fold.theta(words, phi_wk, alpha, opts, &mut rng, row),
                    }
                }
            });
        }
    });
    Ok(theta)
}

/// The `n` largest entries' indices of `row`, largest first.
pub fn top_topics(row: &[f64], n: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by(|a, b| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b)));
    idx.truncate(n);
    idx
}

/// Writes `doc`, `theta` and `top_topics` (the `top` most probable) to a Parquet file.
pub fn write_theta(path: &Path, ids: &[String], theta: &[f64], k: usize, top: usize) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| EvalError::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("doc", DataType::Utf8, false),
        Field::new(
            "theta",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            false,
        ),
        Field::new(
            "top_topics",
            DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
            false,
        ),
    ]));
    let file = File::create(path).map_err(|e| EvalError::io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| err(&e))?;
    const BATCH: usize = 8192;
    for start in (0..ids.len()).step_by(BATCH) {
        let end = (start + BATCH).min(ids.len());
        let mut th = ListBuilder::new(Float64Builder::new());
        let mut tops = ListBuilder::new(UInt32Builder::new());
        for d in start..end {
            let row = &theta[d * k..(d + 1) * k];
            th.values().append_slice(row);
            th.append(true);
            tops.values().append_slice(&top_topics(row, top));
            tops.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&ids[start..end])),
            Arc::new(th.finish()),
            Arc::new(tops.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(&e))?;
        w.write(&batch).map_err(|e| err(&e))?;
    }
    w.close().map_err(|e| err(&e))?;
    Ok(())
}
