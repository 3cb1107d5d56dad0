//! The first pass's temporary document store: documents with worker-local term ids, in segment
//! files that the second pass remaps in parallel. The layout is compact and sequential: per
//! document `varint id length, id bytes, varint token count, tokens as varints` (LEB128). Ids of
//! frequent terms are small (they are met first), so a token takes 1–2 bytes instead of 4.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use datasets::{DatasetsError, Document};

use crate::IngestError;

/// Largest id length and token count a scratch reader accepts (the writer never exceeds them:
/// documents are capped long before).
const MAX_FIELD: u64 = 1 << 32;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends documents to a scratch file.
#[derive(Debug)]
pub struct ScratchWriter {
    path: PathBuf,
    out: BufWriter<File>,
    buf: Vec<u8>,
    documents: u64,
    tokens: u64,
}

impl ScratchWriter {
    pub fn create(path: &Path) -> Result<ScratchWriter, IngestError> {
        let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
        Ok(ScratchWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            buf: Vec::new(),
            documents: 0,
            tokens: 0,
        })
    }

    pub fn write(&mut self, id: &str, tokens: &[u32]) -> Result<(), IngestError> {
        self.buf.clear();
        put_varint(&mut self.buf, id.len() as u64);
        self.buf.extend_from_slice(id.as_bytes());
        put_varint(&mut self.buf, tokens.len() as u64);
        for &t in tokens {
            put_varint(&mut self.buf, u64::from(t));
        }
        self.documents += 1;
        self.tokens += tokens.len() as u64;
        self.out
            .write_all(&self.buf)
            .map_err(|e| IngestError::io(&self.path, e))
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    pub fn finish(mut self) -> Result<(), IngestError> {
        self.out.flush().map_err(|e| IngestError::io(&self.path, e))
    }
}

/// Reads a scratch file back as documents.
#[derive(Debug)]
pub struct ScratchReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl ScratchReader {
    pub fn open(path: &Path) -> Result<ScratchReader, IngestError> {
        let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
        Ok(ScratchReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
        })
    }

    /// A varint, or `None` at a clean end of file.
    fn varint(&mut self) -> std::io::Result<Option<u64>> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = match self.input.fill_buf()?.first() {
                Some(&b) => b,
                None if shift == 0 => return Ok(None),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            };
            self.input.consume(1);
            if shift > 63 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "varint too long",
                ));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(Some(v));
            }
            shift += 7;
        }
    }

    fn field(&mut self) -> std::io::Result<u64> {
        match self.varint()? {
            Some(v) if v < MAX_FIELD => Ok(v),
            Some(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "field out of range",
            )),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }

    fn next_document(&mut self) -> std::io::Result<Option<Document>> {
        let Some(id_len) = self.varint()? else {
            return Ok(None);
        };
        if id_len >= MAX_FIELD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "id length out of range",
            ));
        }
        let mut id = vec![0u8; id_len as usize];
        std::io::Read::read_exact(&mut self.input, &mut id)?;
        let n = self.field()?;
        let mut tokens = Vec::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let t = self.field()?;
            tokens.push(t as u32);
        }
        Ok(Some(Document {
            id: String::from_utf8_lossy(&id).into_owned(),
            tokens,
        }))
    }
}

impl Iterator for ScratchReader {
    type Item = Result<Document, DatasetsError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_document()
            .map_err(|source| DatasetsError::Io {
                path: self.path.clone(),
                source,
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = ScratchWriter::create(&path).unwrap();
        w.write("a", &[1, 2, 3, u32::MAX - 1]).unwrap();
        w.write("é", &[]).unwrap();
        w.finish().unwrap();
        let docs: Vec<Document> = ScratchReader::open(&path)
            .unwrap()
            .map(|d| d.unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].tokens, [1, 2, 3, u32::MAX - 1]);
        assert_eq!(docs[1].id, "é");
        // Small ids take one byte each.
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            2 + 1 + 3 + 5 + 3 + 1
        );
    }

    #[test]
    fn a_truncated_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = ScratchWriter::create(&path).unwrap();
        w.write("doc", &[300, 5]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let docs: Vec<_> = ScratchReader::open(&path).unwrap().collect();
        assert!(docs.last().unwrap().is_err());
    }

    proptest! {
        #[test]
        fn any_documents_round_trip(docs in prop::collection::vec(
            ("[a-z]{0,8}", prop::collection::vec(any::<u32>(), 0..40)), 0..20)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.bin");
            let mut w = ScratchWriter::create(&path).unwrap();
            for (id, tokens) in &docs {
                w.write(id, tokens).unwrap();
            }
            w.finish().unwrap();
            let back: Vec<(String, Vec<u32>)> = ScratchReader::open(&path).unwrap()
                .map(|d| d.map(|d| (d.id, d.tokens)).unwrap())
                .collect();
            prop_assert_eq!(back, docs);
        }
    }
}
