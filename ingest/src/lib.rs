//! Raw corpora to token-id corpora: the engine behind `glint-lda ingest`.
//!
//! Readers ([`readers`]) stream WARC, Parquet, line, TSV, directory and UCI inputs into raw
//! documents; the [`analyzer`] (a tantivy tokenizer pipeline with Snowball stemming) turns text
//! into terms; [`pipeline::run`] does this on several threads with bounded memory, builds the
//! [`vocabulary`] (ids by descending frequency) and writes a `datasets` corpus directory.
//!
//! Bad input never panics: each malformed record is a counted skip with a message naming the file
//! and offset, and `strict` turns the first skip into an error.

pub mod analyzer;
pub mod dictionary;
mod error;
pub mod input;
pub mod pipeline;
pub mod readers;
pub mod scratch;
pub mod skips;
pub mod surface;
pub mod vocabulary;

pub use analyzer::{Analyzer, AnalyzerConfig, Preset, TokenizerKind};
pub use error::IngestError;
pub use input::Input;
pub use pipeline::{IngestOptions, IngestReport, Progress, peak_rss_bytes, run};
pub use readers::Format;
pub use readers::parquet::ParquetColumns;
pub use vocabulary::VocabularyFilter;
