//! The first pass's temporary document store: documents with worker-local term ids, one file per
//! input, in a plain length-prefixed binary layout (`u32 id length, id bytes, u32 token count,
//! tokens as u32`, little endian). It is written and read once, sequentially, so it needs
//! neither compression nor an index.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use datasets::{DatasetsError, Document};

use crate::IngestError;

/// Appends documents to a scratch file.
#[derive(Debug)]
pub struct ScratchWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl ScratchWriter {
    pub fn create(path: &Path) -> Result<ScratchWriter, IngestError> {
        let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
        Ok(ScratchWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    pub fn write(&mut self, id: &str, tokens: &[u32]) -> Result<(), IngestError> {
        let io = |e| IngestError::io(&self.path, e);
        self.out
            .write_all(&(id.len() as u32).to_le_bytes())
            .map_err(io)?;
        self.out.write_all(id.as_bytes()).map_err(io)?;
        self.out
            .write_all(&(tokens.len() as u32).to_le_bytes())
            .map_err(io)?;
        let mut bytes = Vec::with_capacity(tokens.len() * 4);
        for t in tokens {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
        self.out.write_all(&bytes).map_err(io)
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

    fn read_u32(&mut self) -> std::io::Result<Option<u32>> {
        let mut b = [0u8; 4];
        match self.input.read(&mut b[..1])? {
            0 => return Ok(None),
            _ => self.input.read_exact(&mut b[1..])?,
        }
        Ok(Some(u32::from_le_bytes(b)))
    }

    fn next_document(&mut self) -> std::io::Result<Option<Document>> {
        let Some(id_len) = self.read_u32()? else {
            return Ok(None);
        };
        let mut id = vec![0u8; id_len as usize];
        self.input.read_exact(&mut id)?;
        let n = self.read_u32()?.ok_or(std::io::ErrorKind::UnexpectedEof)? as usize;
        let mut bytes = vec![0u8; n * 4];
        self.input.read_exact(&mut bytes)?;
        let tokens = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
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

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        let mut w = ScratchWriter::create(&path).unwrap();
        w.write("a", &[1, 2, 3]).unwrap();
        w.write("é", &[]).unwrap();
        w.finish().unwrap();
        let docs: Vec<Document> = ScratchReader::open(&path)
            .unwrap()
            .map(|d| d.unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].tokens, [1, 2, 3]);
        assert_eq!(docs[1].id, "é");
    }
}
