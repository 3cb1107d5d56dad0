//! [`Corpus`]: opens a corpus directory and streams its documents part by part, row group by row
//! group, so reading never holds more than one batch in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, ListArray, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::DatasetsError;
use crate::manifest::Manifest;
use crate::schema::{ID_COLUMN, TOKENS_COLUMN};
use crate::vocabulary::{VOCAB_FILE, Vocabulary};

/// Rows decoded per batch when reading.
const READ_BATCH_ROWS: usize = 4096;

/// One document: its id and its token ids in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub tokens: Vec<u32>,
}

/// An opened corpus directory (manifest read, files checked).
#[derive(Debug, Clone)]
pub struct Corpus {
    dir: PathBuf,
    manifest: Manifest,
}

impl Corpus {
    /// Reads `dir/manifest.json` and checks that the vocabulary and every listed part exist.
    pub fn open(dir: &Path) -> Result<Corpus, DatasetsError> {
        let manifest = Manifest::read(dir)?;
        let vocab = dir.join(VOCAB_FILE);
        if !vocab.is_file() {
            return Err(DatasetsError::format(&vocab, "vocabulary file is missing"));
        }
        for part in &manifest.parts {
            let path = dir.join(part);
            if !path.is_file() {
                return Err(DatasetsError::format(
                    &path,
                    "document part listed in manifest.json is missing",
                ));
            }
        }
        Ok(Corpus {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Reads `vocab.tsv` and checks its size against the manifest.
    pub fn vocabulary(&self) -> Result<Vocabulary, DatasetsError> {
        let path = self.dir.join(VOCAB_FILE);
        let vocab = Vocabulary::read_tsv(&path)?;
        if vocab.len() != self.manifest.vocabulary_size as usize {
            return Err(DatasetsError::format(
                &path,
                format!(
                    "{} terms but manifest.json says vocabulary_size = {}",
                    vocab.len(),
                    self.manifest.vocabulary_size
                ),
            ));
        }
        Ok(vocab)
    }

    /// Absolute paths of the document parts, in order (for reading parts in parallel).
    pub fn part_paths(&self) -> Vec<PathBuf> {
        self.manifest
            .parts
            .iter()
            .map(|p| self.dir.join(p))
            .collect()
    }

    /// Streams all documents, in order.
    pub fn documents(&self) -> Result<DocumentReader, DatasetsError> {
        Ok(DocumentReader::new(self.part_paths()))
    }
}

/// Streaming iterator over the documents of some parts.
#[derive(Debug)]
pub struct DocumentReader {
    pending: VecDeque<PathBuf>,
    current: Option<(PathBuf, ParquetRecordBatchReader)>,
    batch: Option<(StringArray, ListArray)>,
    row: usize,
    failed: bool,
}

impl DocumentReader {
    /// A reader over the given part files, read in order.
    pub fn new(parts: Vec<PathBuf>) -> DocumentReader {
        DocumentReader {
            pending: parts.into(),
            current: None,
            batch: None,
            row: 0,
            failed: false,
        }
    }

    fn open_next_part(&mut self) -> Result<bool, DatasetsError> {
        let Some(path) = self.pending.pop_front() else {
            return Ok(false);
        };
        let file = File::open(&path).map_err(|e| DatasetsError::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(READ_BATCH_ROWS).build())
            .map_err(|e| DatasetsError::parquet(&path, e))?;
        self.current = Some((path, reader));
        Ok(true)
    }

    /// Loads the next non-empty batch; `Ok(false)` at the end of all parts.
    fn next_batch(&mut self) -> Result<bool, DatasetsError> {
        loop {
            if self.current.is_none() && !self.open_next_part()? {
                return Ok(false);
            }
            let Some((path, reader)) = self.current.as_mut() else {
                continue;
            };
            match reader.next() {
                None => self.current = None,
                Some(Err(e)) => return Err(DatasetsError::arrow(path.as_path(), e)),
                Some(Ok(batch)) => {
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    self.batch = Some(split_batch(path, &batch)?);
                    self.row = 0;
                    return Ok(true);
                }
            }
        }
    }
}

fn split_batch(
    path: &Path,
    batch: &RecordBatch,
) -> Result<(StringArray, ListArray), DatasetsError> {
    let ids = batch
        .column_by_name(ID_COLUMN)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| DatasetsError::format(path, "no Utf8 column `id`"))?
        .clone();
    let tokens = batch
        .column_by_name(TOKENS_COLUMN)
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or_else(|| DatasetsError::format(path, "no List<UInt32> column `tokens`"))?
        .clone();
    if tokens.values().as_primitive_opt::<UInt32Type>().is_none() {
        return Err(DatasetsError::format(
            path,
            "column `tokens` is not List<UInt32>",
        ));
    }
    Ok((ids, tokens))
}

impl Iterator for DocumentReader {
    type Item = Result<Document, DatasetsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let exhausted = match &self.batch {
            Some((ids, _)) => self.row >= ids.len(),
            None => true,
        };
        if exhausted {
            match self.next_batch() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    // One error ends the stream: later parts may depend on the failed one's order.
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        let (ids, lists) = self.batch.as_ref()?;
        let row = self.row;
        self.row += 1;
        let offsets = lists.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let values = lists.values().as_primitive::<UInt32Type>().values();
        Some(Ok(Document {
            id: ids.value(row).to_owned(),
            tokens: values[start..end].to_vec(),
        }))
    }
}
