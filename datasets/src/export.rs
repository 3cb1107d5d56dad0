//! The interchange export: one document per line of space-separated terms, so other tools
//! (tomotopy, gensim, Mallet) train on exactly the same preprocessed corpus.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::DatasetsError;
use crate::reader::Corpus;

/// Writes every document of `corpus` to `path` as a line of terms (gzip-compressed when the path
/// ends in `.gz`). Returns the number of lines written.
pub fn export_terms(corpus: &Corpus, path: &Path) -> Result<u64, DatasetsError> {
    let vocab = corpus.vocabulary()?;
    let file = File::create(path).map_err(|e| DatasetsError::io(path, e))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut out: Box<dyn Write> = if gz {
        Box::new(BufWriter::new(GzEncoder::new(file, Compression::default())))
    } else {
        Box::new(BufWriter::new(file))
    };
    let mut lines = 0u64;
    let mut line = String::new();
    for doc in corpus.documents()? {
        let doc = doc?;
        line.clear();
        for (i, &t) in doc.tokens.iter().enumerate() {
            let term = vocab.term(t).ok_or_else(|| {
                DatasetsError::format(
                    corpus.dir(),
                    format!(
                        "document {:?} has token id {t} outside the vocabulary",
                        doc.id
                    ),
                )
            })?;
            if i > 0 {
                line.push(' ');
            }
            line.push_str(term);
        }
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|e| DatasetsError::io(path, e))?;
        lines += 1;
    }
    out.flush().map_err(|e| DatasetsError::io(path, e))?;
    drop(out);
    Ok(lines)
}
