//! Reading a model directory back: the top words of each topic, from `word_topic.parquet`,
//! `topic_totals.json`, `hyperparameters.json` and `display.txt` (readable forms of stemmed
//! terms) or `vocab.txt`.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, Int32Array, UInt32Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::error::{LdaError, Result};
use crate::export::{
    HYPERPARAMETERS_FILE, HyperFile, TOPIC_TOTALS_FILE, WORD_TOPIC_FILE, read_shown_terms,
};

/// One topic's most probable words.
#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    pub topic: u32,
    /// n_k: tokens assigned to the topic.
    pub tokens: i64,
    /// (term, φ_kw) by decreasing probability.
    pub words: Vec<(String, f64)>,
}

use crate::export::read_json_file as read_json;

/// The `top` most probable words of every topic of the model in `dir`, shown by their display
/// forms (see [`read_shown_terms`]; `raw_terms` for the terms themselves).
pub fn top_words(dir: &Path, top: usize, raw_terms: bool) -> Result<Vec<Topic>> {
    let hyper: HyperFile = read_json(&dir.join(HYPERPARAMETERS_FILE))?;
    let totals: Vec<i64> = read_json(&dir.join(TOPIC_TOTALS_FILE))?;
    let k = hyper.topics as usize;
    if totals.len() != k {
        return Err(LdaError::bad_file(
            dir.join(TOPIC_TOTALS_FILE),
            format!("{} totals for {k} topics", totals.len()),
        ));
    }
    let terms = read_shown_terms(dir, raw_terms)?;

    // Per topic, the `top` largest counts (a topic's top words by φ are its top words by n_wk).
    let mut best: Vec<Vec<(i32, u32)>> = vec![Vec::new(); k];
    let path = dir.join(WORD_TOPIC_FILE);
    let file = File::open(&path).map_err(|e| LdaError::io(&path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| LdaError::Parquet {
            path: path.clone(),
            message: e.to_string(),
        })?;
    for batch in reader {
        let batch = batch.map_err(|e| LdaError::Parquet {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let col = |i: usize| batch.column(i).clone();
        let (words, topics, counts) = (col(0), col(1), col(2));
        let bad = || LdaError::bad_file(&path, "expected columns word u32, topic u32, count i32");
        let words = words
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(bad)?;
        let topics = topics
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(bad)?;
        let counts = counts
            .as_any()
            .downcast_ref::<Int32Array>()
            .ok_or_else(bad)?;
        for i in 0..batch.num_rows() {
            let t = topics.value(i) as usize;
            let Some(list) = best.get_mut(t) else {
                return Err(LdaError::bad_file(&path, format!("topic {t} out of range")));
            };
            list.push((counts.value(i), words.value(i)));
            if list.len() > 4 * top.max(1) {
                list.sort_unstable_by(|a, b| b.cmp(a));
                list.truncate(top);
            }
        }
    }
    let vbeta = f64::from(hyper.vocabulary) * hyper.beta;
    Ok(best
        .into_iter()
        .enumerate()
        .map(|(t, mut list)| {
            list.sort_unstable_by(|a, b| b.cmp(a));
            list.truncate(top);
            let denom = totals[t] as f64 + vbeta;
            let words = list
                .into_iter()
                .map(|(c, w)| {
                    let term = terms
                        .get(w as usize)
                        .map_or_else(|| w.to_string(), |s| s.to_string());
                    (term, (f64::from(c) + hyper.beta) / denom)
                })
                .collect();
            Topic {
                topic: t as u32,
                tokens: totals[t],
                words,
            }
        })
        .collect())
}
