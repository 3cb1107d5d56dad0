//! A synthetic corpus from the LDA generative process, with its ground truth.
//!
//! For each topic k: φ_k ~ Dirichlet(β) over the vocabulary. For each document d:
//! θ_d ~ Dirichlet(α) over topics, a length N_d (zero-truncated Poisson or fixed), and for each
//! token z ~ θ_d, w ~ φ_z.
//!
//! Output (in `out_dir`): the usual corpus files, `phi.npy` (K x V, columns in final vocabulary id
//! order) and `theta.npy` (D x K, rows in document order), streamed row by row.
//!
//! Generation is two passes so that ids end up ranked by descending frequency like an ingested
//! corpus: pass one writes documents with raw word ids to a scratch corpus inside `out_dir` while
//! counting words, pass two remaps them to ranked ids. Memory is O(K·V) for φ and its alias tables
//! plus one row group; the corpus itself is never held in memory, so it scales to 100M+ tokens.

pub mod distributions;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::DatasetsError;
use crate::manifest::{Manifest, ManifestExtras};
use crate::npy::NpyWriter;
use crate::reader::DocumentReader;
use crate::remap::remap_documents;
use crate::vocabulary::{TermStats, Vocabulary, sort_by_rank};
use crate::writer::{CorpusWriter, WriterOptions};
use distributions::{AliasTable, dirichlet, poisson};

/// File name of the true topic-word matrix.
pub const PHI_FILE: &str = "phi.npy";
/// File name of the true document-topic matrix.
pub const THETA_FILE: &str = "theta.npy";
/// Scratch directory (inside the output) for the first pass.
const SCRATCH_DIR: &str = ".synthetic-scratch";

/// How document lengths are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocLength {
    /// Poisson(mean_doc_len), redrawn while 0 so no document is empty.
    Poisson,
    /// Every document has exactly `round(mean_doc_len)` tokens.
    Fixed,
}

/// Parameters of a synthetic corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    pub documents: u64,
    pub vocabulary: u32,
    pub topics: u32,
    pub mean_doc_len: f64,
    pub doc_length: DocLength,
    /// Symmetric Dirichlet prior of θ.
    pub alpha: f64,
    /// Symmetric Dirichlet prior of φ.
    pub beta: f64,
    pub seed: u64,
    /// Whether to write `theta.npy` (D x K doubles: 800 MB for 1M documents and 100 topics).
    pub write_theta: bool,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            documents: 1000,
            vocabulary: 1000,
            topics: 10,
            mean_doc_len: 100.0,
            doc_length: DocLength::Poisson,
            alpha: 0.1,
            beta: 0.01,
            seed: 42,
            write_theta: true,
        }
    }
}

impl SyntheticSpec {
    fn validate(&self) -> Result<(), DatasetsError> {
        let fail = |m: &str| {
            Err(DatasetsError::InvalidArgument(format!(
                "synthetic spec: {m}"
            )))
        };
        if self.documents == 0 || self.vocabulary == 0 || self.topics == 0 {
            return fail("documents, vocabulary and topics must be positive");
        }
        if self.vocabulary == u32::MAX {
            return fail("vocabulary too large");
        }
        if !(self.mean_doc_len.is_finite() && self.mean_doc_len >= 1.0) {
            return fail("mean_doc_len must be at least 1");
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0 && self.beta.is_finite() && self.beta > 0.0)
        {
            return fail("alpha and beta must be positive");
        }
        Ok(())
    }
}

/// Generates the corpus described by `spec` into `out_dir`; returns its manifest.
pub fn generate(spec: &SyntheticSpec, out_dir: &Path) -> Result<Manifest, DatasetsError> {
    spec.validate()?;
    fs::create_dir_all(out_dir).map_err(|e| DatasetsError::io(out_dir, e))?;
    let (k, v) = (spec.topics as usize, spec.vocabulary as usize);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);

    let mut phi = vec![0.0; k * v];
    for row in phi.chunks_exact_mut(v) {
        dirichlet(&mut rng, spec.beta, row);
    }
    let word_tables: Vec<AliasTable> = phi.chunks_exact(v).map(AliasTable::new).collect();

    // Pass one: raw word ids into a scratch corpus, counting words and document frequencies.
    let scratch = out_dir.join(SCRATCH_DIR);
    let mut raw = CorpusWriter::create(&scratch, WriterOptions::default())?;
    let mut theta_out = if spec.write_theta {
        Some(NpyWriter::create(
            &out_dir.join(THETA_FILE),
            spec.documents as usize,
            k,
        )?)
    } else {
        None
    };
    let mut counts = vec![0u64; v];
    let mut docs = vec![0u64; v];
    let mut last_doc = vec![u64::MAX; v];
    let mut theta = vec![0.0; k];
    let mut tokens = Vec::new();
    let width = spec.documents.to_string().len();
    for d in 0..spec.documents {
        dirichlet(&mut rng, spec.alpha, &mut theta);
        if let Some(out) = theta_out.as_mut() {
            out.write_row(&theta)?;
        }
        let topic_table = AliasTable::new(&theta);
        let len = match spec.doc_length {
            DocLength::Fixed => spec.mean_doc_len.round() as u64,
            DocLength::Poisson => loop {
                let n = poisson(&mut rng, spec.mean_doc_len);
                if n > 0 {
                    break n;
                }
            },
        };
        tokens.clear();
        for _ in 0..len {
            let z = topic_table.sample(&mut rng) as usize;
            let w = word_tables[z].sample(&mut rng);
            counts[w as usize] += 1;
            if last_doc[w as usize] != d {
                last_doc[w as usize] = d;
                docs[w as usize] += 1;
            }
            tokens.push(w);
        }
        raw.write_document(&format!("d{d:0width$}"), &tokens)?;
    }
    if let Some(out) = theta_out {
        out.finish()?;
    }
    let raw_parts = raw.finish_parts()?;

    // Rank words; `order[new] = old`, `mapping[old] = new`.
    let mut stats: Vec<(TermStats, usize)> = Vec::with_capacity(v);
    let name_width = (v - 1).to_string().len();
    for old in 0..v {
        let term = format!("w{old:0name_width$}");
        stats.push((
            TermStats {
                term,
                count: counts[old],
                docs: docs[old],
            },
            old,
        ));
    }
    stats.sort_unstable_by(|a, b| {
        b.0.count
            .cmp(&a.0.count)
            .then_with(|| a.0.term.cmp(&b.0.term))
    });
    let order: Vec<usize> = stats.iter().map(|s| s.1).collect();
    let mut mapping = vec![0u32; v];
    for (new, &old) in order.iter().enumerate() {
        mapping[old] = new as u32;
    }
    let mut entries: Vec<TermStats> = stats.into_iter().map(|s| s.0).collect();
    sort_by_rank(&mut entries); // already in this order; keeps the invariant explicit
    let vocabulary = Vocabulary::from_ordered(entries);

    // Pass two: remap into the final corpus.
    let mut writer = CorpusWriter::create(out_dir, WriterOptions::default())?;
    remap_documents(DocumentReader::new(raw_parts), &mapping, &mut writer)?;
    let mut phi_out = NpyWriter::create(&out_dir.join(PHI_FILE), k, v)?;
    let mut row = vec![0.0; v];
    for topic in phi.chunks_exact(v) {
        for (new, &old) in order.iter().enumerate() {
            row[new] = topic[old];
        }
        phi_out.write_row(&row)?;
    }
    phi_out.finish()?;
    let spec_json = serde_json::to_value(spec).map_err(|source| DatasetsError::Json {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut extra = BTreeMap::new();
    extra.insert("synthetic".to_owned(), spec_json);
    let extras = ManifestExtras {
        skipped: BTreeMap::new(),
        analyzer: serde_json::json!({ "kind": "synthetic" }),
        inputs: Vec::new(),
        extra,
    };
    let manifest = writer.finish(&vocabulary, extras)?;
    fs::remove_dir_all(&scratch).map_err(|e| DatasetsError::io(&scratch, e))?;
    Ok(manifest)
}
