//! [`CorpusWriter`]: streams documents into Parquet parts, then writes `vocab.tsv` and, last,
//! `manifest.json`.
//!
//! Memory is bounded by one row group being built plus at most three being encoded on the
//! background encoder thread ([`crate::encoder`]). A corpus directory without a manifest is
//! incomplete: `create` removes a previous manifest first, and `finish` writes the new
//! one only after every other file is flushed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::DatasetsError;
use crate::encoder::PartEncoder;
use crate::manifest::{FORMAT_VERSION, MANIFEST_FILE, Manifest, ManifestExtras};
use crate::schema::{DOCS_DIR, document_schema, part_name, token_item_field};
use crate::vocabulary::{VOCAB_FILE, Vocabulary};
use arrow_array::builder::{ListBuilder, StringBuilder, UInt32Builder};
use arrow_array::{ArrayRef, RecordBatch};

/// Sizes of row groups and parts.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Documents per Parquet row group (also the unit the reader streams).
    pub docs_per_row_group: usize,
    /// A row group is also closed once it buffers this many tokens, to bound memory on long documents.
    pub tokens_per_row_group: usize,
    /// A new part file starts after this many tokens, so large corpora can be read in parallel.
    pub tokens_per_part: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            docs_per_row_group: 8192,
            tokens_per_row_group: 2 << 20,
            tokens_per_part: 32 << 20,
        }
    }
}

/// The part files one [`CorpusWriter::create_part_set`] writer produced, for
/// [`finish_corpus`] to list in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartSet {
    /// Part paths relative to the corpus directory, in document order.
    pub parts: Vec<String>,
    pub documents: u64,
    pub tokens: u64,
    /// Largest token id written, if any.
    pub max_token: Option<u32>,
}

/// Streaming writer of a corpus directory.
pub struct CorpusWriter {
    dir: PathBuf,
    /// Prefix of this writer's part names (several writers may fill one directory in parallel).
    prefix: Option<String>,
    options: WriterOptions,
    encoder: PartEncoder,
    /// Whether the last part accepts more row groups.
    part_open: bool,
    parts: Vec<String>,
    ids: StringBuilder,
    tokens: ListBuilder<UInt32Builder>,
    buffered_docs: usize,
    buffered_tokens: usize,
    part_tokens: u64,
    documents: u64,
    total_tokens: u64,
    max_token: Option<u32>,
}

impl std::fmt::Debug for CorpusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorpusWriter")
            .field("dir", &self.dir)
            .field("documents", &self.documents)
            .field("tokens", &self.total_tokens)
            .finish_non_exhaustive()
    }
}

impl CorpusWriter {
    /// Creates `dir` (and `dir/docs`), removing a previous manifest and previous part files.
    pub fn create(dir: &Path, options: WriterOptions) -> Result<CorpusWriter, DatasetsError> {
        let docs = dir.join(DOCS_DIR);
        fs::create_dir_all(&docs).map_err(|e| DatasetsError::io(&docs, e))?;
        let manifest = dir.join(MANIFEST_FILE);
        match fs::remove_file(&manifest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(DatasetsError::io(&manifest, e)),
        }
        for entry in fs::read_dir(&docs).map_err(|e| DatasetsError::io(&docs, e))? {
            let entry = entry.map_err(|e| DatasetsError::io(&docs, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("part-") && name.ends_with(".parquet") {
                fs::remove_file(entry.path()).map_err(|e| DatasetsError::io(entry.path(), e))?;
            }
        }
        Self::new(dir, None, options)
    }

    /// A writer of one set of parts in `dir` (`docs/part-PREFIX-NNNNN.parquet`), removing nothing:
    /// several such writers fill one new directory in parallel, and [`finish_corpus`] lists their
    /// parts in the order given.
    pub fn create_part_set(
        dir: &Path,
        prefix: &str,
        options: WriterOptions,
    ) -> Result<CorpusWriter, DatasetsError> {
        let docs = dir.join(DOCS_DIR);
        fs::create_dir_all(&docs).map_err(|e| DatasetsError::io(&docs, e))?;
        Self::new(dir, Some(prefix.to_owned()), options)
    }

    fn new(
        dir: &Path,
        prefix: Option<String>,
        options: WriterOptions,
    ) -> Result<CorpusWriter, DatasetsError> {
        Ok(CorpusWriter {
            dir: dir.to_path_buf(),
            prefix,
            encoder: PartEncoder::spawn(options.docs_per_row_group)?,
            options,
            part_open: false,
            parts: Vec::new(),
            ids: StringBuilder::new(),
            tokens: ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(token_item_field())),
            buffered_docs: 0,
            buffered_tokens: 0,
            part_tokens: 0,
            documents: 0,
            total_tokens: 0,
            max_token: None,
        })
    }

    /// The corpus directory being written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Documents written so far.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.total_tokens
    }

    /// Appends one document.
    pub fn write_document(&mut self, id: &str, tokens: &[u32]) -> Result<(), DatasetsError> {
        self.ids.append_value(id);
        self.tokens.values().append_slice(tokens);
        self.tokens.append(true);
        if let Some(&m) = tokens.iter().max() {
            self.max_token = Some(self.max_token.map_or(m, |old| old.max(m)));
        }
        self.buffered_docs += 1;
        self.buffered_tokens += tokens.len();
        self.documents += 1;
        self.total_tokens += tokens.len() as u64;
        if self.buffered_docs >= self.options.docs_per_row_group
            || self.buffered_tokens >= self.options.tokens_per_row_group
        {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// Hands the buffered documents to the encoder as one row group, starting a new part when
    /// the current one is full.
    fn flush_row_group(&mut self) -> Result<(), DatasetsError> {
        if self.buffered_docs == 0 {
            return Ok(());
        }
        let new_part = if self.part_open {
            None
        } else {
            let name = match &self.prefix {
                Some(prefix) => format!("{DOCS_DIR}/part-{prefix}-{:05}.parquet", self.parts.len()),
                None => part_name(self.parts.len()),
            };
            let path = self.dir.join(&name);
            self.parts.push(name);
            self.part_open = true;
            self.part_tokens = 0;
            Some(path)
        };
        let ids: ArrayRef = Arc::new(self.ids.finish());
        let tokens: ArrayRef = Arc::new(self.tokens.finish());
        let batch = RecordBatch::try_new(document_schema(), vec![ids, tokens])
            .map_err(|e| DatasetsError::arrow(&self.dir, e))?;
        self.encoder.send(batch, new_part)?;
        self.part_tokens += self.buffered_tokens as u64;
        self.buffered_docs = 0;
        self.buffered_tokens = 0;
        if self.part_tokens >= self.options.tokens_per_part {
            self.part_open = false;
        }
        Ok(())
    }

    /// Flushes the last documents and returns the part paths, writing no vocabulary or manifest:
    /// for scratch corpora that a second pass reads back and remaps.
    pub fn finish_parts(mut self) -> Result<Vec<PathBuf>, DatasetsError> {
        self.flush_row_group()?;
        self.encoder.finish()?;
        Ok(self.parts.iter().map(|p| self.dir.join(p)).collect())
    }

    /// Flushes the last documents of a part set and returns what it wrote.
    pub fn finish_part_set(mut self) -> Result<PartSet, DatasetsError> {
        self.flush_row_group()?;
        self.encoder.finish()?;
        Ok(PartSet {
            parts: std::mem::take(&mut self.parts),
            documents: self.documents,
            tokens: self.total_tokens,
            max_token: self.max_token,
        })
    }

    /// Flushes the last documents, writes `vocab.tsv` and then `manifest.json`.
    ///
    /// Fails if a written token id is outside the vocabulary.
    pub fn finish(
        self,
        vocabulary: &Vocabulary,
        extras: ManifestExtras,
    ) -> Result<Manifest, DatasetsError> {
        let dir = self.dir.clone();
        let set = self.finish_part_set()?;
        finish_corpus(&dir, vec![set], vocabulary, extras)
    }
}

/// Completes a corpus directory whose parts were written by `sets` (in document order): writes
/// `vocab.tsv`, then `manifest.json` (atomically, directory synced).
///
/// Fails if a written token id is outside the vocabulary.
pub fn finish_corpus(
    dir: &Path,
    sets: Vec<PartSet>,
    vocabulary: &Vocabulary,
    extras: ManifestExtras,
) -> Result<Manifest, DatasetsError> {
    if let Some(max) = sets.iter().filter_map(|s| s.max_token).max()
        && max as usize >= vocabulary.len()
    {
        return Err(DatasetsError::InvalidArgument(format!(
            "token id {max} is outside the vocabulary of {} terms",
            vocabulary.len()
        )));
    }
    let vocabulary_size = u32::try_from(vocabulary.len()).map_err(|_| {
        DatasetsError::InvalidArgument("vocabulary larger than u32::MAX terms".into())
    })?;
    vocabulary.write_tsv(&dir.join(VOCAB_FILE))?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        documents: sets.iter().map(|s| s.documents).sum(),
        tokens: sets.iter().map(|s| s.tokens).sum(),
        vocabulary_size,
        skipped: extras.skipped,
        analyzer: extras.analyzer,
        inputs: extras.inputs,
        parts: sets.into_iter().flat_map(|s| s.parts).collect(),
        extra: extras.extra,
    };
    manifest.write(dir)?;
    tracing::info!(
        dir = %dir.display(),
        documents = manifest.documents,
        tokens = manifest.tokens,
        vocabulary = manifest.vocabulary_size,
        "corpus written"
    );
    Ok(manifest)
}
