//! The glint-lda corpus format and the tools around it.
//!
//! A corpus is a directory:
//!
//! ```text
//! corpus/
//!   manifest.json          documents, tokens, vocabulary_size, skipped, analyzer, inputs, parts
//!   vocab.tsv              id<TAB>term<TAB>count<TAB>docs, ids 0.. by descending count
//!   docs/part-00000.parquet  columns id (Utf8) and tokens (List<UInt32>), zstd, row groups of 8192
//! ```
//!
//! [`CorpusWriter`] streams documents into parts and writes the manifest last; [`Corpus`] opens a
//! directory and [`Corpus::documents`] streams it back row group by row group. [`synthetic`]
//! generates corpora with known φ and θ, [`npy`] reads and writes those matrices, and
//! [`export_terms`] writes the one-document-per-line interchange text for other toolkits.
//!
//! ```
//! use datasets::{Corpus, CorpusWriter, ManifestExtras, TermStats, Vocabulary, WriterOptions};
//! let dir = tempfile::tempdir()?;
//! let mut writer = CorpusWriter::create(dir.path(), WriterOptions::default())?;
//! writer.write_document("doc-1", &[0, 1, 0])?;
//! let vocab = Vocabulary::ranked(vec![
//!     TermStats { term: "apple".into(), count: 2, docs: 1 },
//!     TermStats { term: "pear".into(), count: 1, docs: 1 },
//! ]);
//! writer.finish(&vocab, ManifestExtras::default())?;
//! let corpus = Corpus::open(dir.path())?;
//! assert_eq!(corpus.manifest().tokens, 3);
//! let docs: Vec<_> = corpus.documents()?.collect::<Result<_, _>>()?;
//! assert_eq!(docs[0].tokens, [0, 1, 0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod encoder;
mod error;
mod export;
mod manifest;
pub mod npy;
pub mod paragraphs;
mod reader;
mod remap;
mod schema;
pub mod synthetic;
mod vocabulary;
mod writer;

pub use error::DatasetsError;
pub use export::export_terms;
pub use manifest::{FORMAT_VERSION, MANIFEST_FILE, Manifest, ManifestExtras, sync_dir};
pub use reader::{Corpus, Document, DocumentReader};
pub use remap::{DROPPED, RemapStats, remap_documents};
pub use schema::{DOCS_DIR, ID_COLUMN, TOKENS_COLUMN, document_schema, part_name};
pub use vocabulary::{TermStats, VOCAB_FILE, Vocabulary, sort_by_rank};
pub use writer::{CorpusWriter, PartSet, WriterOptions, finish_corpus};
