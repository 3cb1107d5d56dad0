//! Rewrites a corpus through an id mapping: the second pass of ingest (temporary ids to
//! frequency-ranked ids, dropping filtered terms) and of the synthetic generator.

use crate::DatasetsError;
use crate::reader::Document;
use crate::writer::CorpusWriter;

/// Marks a term that the mapping drops.
pub const DROPPED: u32 = u32::MAX;

/// What a remap pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemapStats {
    pub documents_in: u64,
    pub documents_out: u64,
    /// Documents left without tokens after dropping terms (not written).
    pub emptied: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
}

/// Maps every token through `mapping` (old id → new id or [`DROPPED`]) and writes the documents
/// that keep at least one token.
pub fn remap_documents<I>(
    documents: I,
    mapping: &[u32],
    writer: &mut CorpusWriter,
) -> Result<RemapStats, DatasetsError>
where
    I: IntoIterator<Item = Result<Document, DatasetsError>>,
{
    let mut stats = RemapStats::default();
    let mut out = Vec::new();
    for doc in documents {
        let doc = doc?;
        stats.documents_in += 1;
        stats.tokens_in += doc.tokens.len() as u64;
        out.clear();
        for &t in &doc.tokens {
            let mapped = *mapping.get(t as usize).ok_or_else(|| {
                DatasetsError::InvalidArgument(format!(
                    "document {:?}: token id {t} outside the mapping of {} ids",
                    doc.id,
                    mapping.len()
                ))
            })?;
            if mapped != DROPPED {
                out.push(mapped);
            }
        }
        if out.is_empty() {
            stats.emptied += 1;
            continue;
        }
        writer.write_document(&doc.id, &out)?;
        stats.documents_out += 1;
        stats.tokens_out += out.len() as u64;
    }
    Ok(stats)
}
