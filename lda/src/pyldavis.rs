//! The five inputs of `pyLDAvis.prepare` from a model directory, written to a folder:
//!
//! ```text
//! topic_term_dists.npy   K × V float64, φ (a copy of phi.npy)
//! doc_topic_dists.npy    D × K float64, θ_dk = (n_dk + α_k)/(N_d + Σα)
//! doc_lengths.json       [N_d; D]
//! vocab.json             [term; V] (display forms of stemmed terms unless `raw_terms`)
//! term_frequency.json    [Σ_k n_wk; V]
//! ```
//! Load them with `numpy.load` / `json.load` and pass them in this order.

use std::fs::{self, File};
use std::path::Path;

use arrow_array::{Array, Float64Array, StringArray, UInt32Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{LdaError, Result};
use crate::export::{
    DOC_TOPIC_FILE, HYPERPARAMETERS_FILE, HyperFile, PHI_FILE, WORD_TOPIC_FILE, read_shown_terms,
    read_word_topic, write_json,
};

/// Writes the pyLDAvis inputs of the model in `model_dir` to `out`.
pub fn export_pyldavis(model_dir: &Path, out: &Path, raw_terms: bool) -> Result<()> {
    let hyper_path = model_dir.join(HYPERPARAMETERS_FILE);
    let text = fs::read_to_string(&hyper_path).map_err(|e| LdaError::io(&hyper_path, e))?;
    let h: HyperFile =
        serde_json::from_str(&text).map_err(|e| LdaError::bad_file(&hyper_path, e.to_string()))?;
    let (k, v) = (h.topics as usize, h.vocabulary as usize);
    fs::create_dir_all(out).map_err(|e| LdaError::io(out, e))?;

    let phi_src = model_dir.join(PHI_FILE);
    fs::copy(&phi_src, out.join("topic_term_dists.npy")).map_err(|e| LdaError::io(&phi_src, e))?;

    let vocab = read_shown_terms(model_dir, raw_terms)?;
    if vocab.len() != v {
        return Err(LdaError::bad_file(
            model_dir,
            format!("{} terms for a vocabulary of {v}", vocab.len()),
        ));
    }
    write_json(&out.join("vocab.json"), &vocab)?;

    let counts = read_word_topic(&model_dir.join(WORD_TOPIC_FILE))?;
    let mut freq = vec![0i64; v];
    for (&w, &c) in counts.words.iter().zip(&counts.counts) {
        if let Some(f) = freq.get_mut(w as usize) {
            *f += i64::from(c);
        }
    }
    write_json(&out.join("term_frequency.json"), &freq)?;

    // doc_topic.parquet lists each document's non-zero topics, documents contiguous.
    let path = model_dir.join(DOC_TOPIC_FILE);
    let perr = |e: &dyn std::fmt::Display| LdaError::Parquet {
        path: path.clone(),
        message: e.to_string(),
    };
    let file = File::open(&path).map_err(|e| LdaError::io(&path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| perr(&e))?;
    let mut lengths: Vec<u64> = Vec::new();
    let mut rows: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut last: Option<String> = None;
    for batch in reader {
        let batch = batch.map_err(|e| perr(&e))?;
        let (Some(doc), Some(topic), Some(count), Some(_)) = (
            batch.column(0).as_any().downcast_ref::<StringArray>(),
            batch.column(1).as_any().downcast_ref::<UInt32Array>(),
            batch.column(2).as_any().downcast_ref::<UInt32Array>(),
            batch.column(3).as_any().downcast_ref::<Float64Array>(),
        ) else {
            return Err(LdaError::bad_file(
                &path,
                "expected columns doc, topic, count, theta",
            ));
        };
        for i in 0..batch.num_rows() {
            let d = doc.value(i);
            if last.as_deref() != Some(d) {
                last = Some(d.to_owned());
                lengths.push(0);
                rows.push(Vec::new());
            }
            let t = topic.value(i);
            if t as usize >= k {
                return Err(LdaError::bad_file(&path, format!("topic {t} of {k}")));
            }
            let c = count.value(i);
            if let (Some(n), Some(r)) = (lengths.last_mut(), rows.last_mut()) {
                *n += u64::from(c);
                r.push((t, c));
            }
        }
    }
    write_json(&out.join("doc_lengths.json"), &lengths)?;
    let alpha = h
        .alpha
        .to_alpha(h.topics)
        .map_err(|e| LdaError::bad_file(&hyper_path, e.to_string()))?;
    let mut w = datasets::npy::NpyWriter::create(&out.join("doc_topic_dists.npy"), rows.len(), k)?;
    let mut theta = Vec::with_capacity(k);
    for (r, &n) in rows.iter().zip(&lengths) {
        let len = u32::try_from(n).map_err(|_| {
            LdaError::bad_file(
                model_dir.join(DOC_TOPIC_FILE),
                format!("a document of {n} tokens"),
            )
        })?;
        theta.clear();
        alpha.extend_theta_row(len, r, &mut theta);
        w.write_row(&theta)?;
    }
    w.finish()?;
    Ok(())
}
