//! A minimal `.npy` codec for 2-D `float64` arrays (format 1.0, `'<f8'`, C order), enough to hand
//! topic-word (φ) and document-topic (θ) matrices to NumPy and back.
//!
//! [`NpyWriter`] streams rows, so a θ of millions of documents never sits in memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::DatasetsError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array2 {
    pub rows: usize,
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f64>,
}

impl Array2 {
    /// Row `r` as a slice. Panics if `r >= rows` (caller's invariant, like slice indexing).
    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// Streams a `rows x cols` matrix to a `.npy` file row by row.
#[derive(Debug)]
pub struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    rows: usize,
    cols: usize,
    written: usize,
}

impl NpyWriter {
    /// Creates `path` and writes the header for a `rows x cols` array.
    pub fn create(path: &Path, rows: usize, cols: usize) -> Result<NpyWriter, DatasetsError> {
        let file = File::create(path).map_err(|e| DatasetsError::io(path, e))?;
        let mut out = BufWriter::new(file);
        out.write_all(&header(rows, cols))
            .map_err(|e| DatasetsError::io(path, e))?;
        Ok(NpyWriter {
            path: path.to_path_buf(),
            out,
            rows,
            cols,
            written: 0,
        })
    }

    /// Appends one row of exactly `cols` values.
    pub fn write_row(&mut self, row: &[f64]) -> Result<(), DatasetsError> {
        if row.len() != self.cols || self.written >= self.rows {
            return Err(DatasetsError::InvalidArgument(format!(
                "{}: row {} of length {} does not fit a {}x{} array",
                self.path.display(),
                self.written,
                row.len(),
                self.rows,
                self.cols
            )));
        }
        for v in row {
            self.out
                .write_all(&v.to_le_bytes())
                .map_err(|e| DatasetsError::io(&self.path, e))?;
        }
        self.written += 1;
        Ok(())
    }

    /// Checks that every row was written and flushes the file.
    pub fn finish(mut self) -> Result<(), DatasetsError> {
        if self.written != self.rows {
            return Err(DatasetsError::InvalidArgument(format!(
                "{}: {} rows written, header promises {}",
                self.path.display(),
                self.written,
                self.rows
            )));
        }
        self.out
            .flush()
            .map_err(|e| DatasetsError::io(&self.path, e))
    }
}

/// The magic, version 1.0, header length and a header dict padded so data starts 64-aligned.
fn header(rows: usize, cols: usize) -> Vec<u8> {
    let mut dict =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a whole matrix.
pub fn write(path: &Path, array: &Array2) -> Result<(), DatasetsError> {
    if array.data.len() != array.rows * array.cols {
        return Err(DatasetsError::InvalidArgument(format!(
            "{}: {} values for a {}x{} array",
            path.display(),
            array.data.len(),
            array.rows,
            array.cols
        )));
    }
    let mut w = NpyWriter::create(path, array.rows, array.cols)?;
    for r in 0..array.rows {
        w.write_row(array.row(r))?;
    }
    w.finish()
}

/// Reads a 2-D `'<f8'` C-order array (format 1.x, 2.x or 3.x).
pub fn read(path: &Path) -> Result<Array2, DatasetsError> {
    let bad =
        |msg: &str| DatasetsError::format(path, format!("not a 2-D '<f8' C-order .npy: {msg}"));
    let file = File::open(path).map_err(|e| DatasetsError::io(path, e))?;
    let mut input = BufReader::new(file);
    let mut pre = [0u8; 8];
    input
        .read_exact(&mut pre)
        .map_err(|e| DatasetsError::io(path, e))?;
    if &pre[..6] != MAGIC {
        return Err(bad("bad magic"));
    }
    let header_len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            input
                .read_exact(&mut b)
                .map_err(|e| DatasetsError::io(path, e))?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            input
                .read_exact(&mut b)
                .map_err(|e| DatasetsError::io(path, e))?;
            u32::from_le_bytes(b) as usize
        }
        _ => return Err(bad("unsupported version")),
    };
    if header_len > 1 << 20 {
        return Err(bad("header longer than 1 MiB"));
    }
    let mut dict = vec![0u8; header_len];
    input
        .read_exact(&mut dict)
        .map_err(|e| DatasetsError::io(path, e))?;
    let dict = String::from_utf8_lossy(&dict);
    let compact: String = dict.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("'descr':'<f8'") {
        return Err(bad("descr is not '<f8'"));
    }
    if !compact.contains("'fortran_order':False") {
        return Err(bad("Fortran order"));
    }
    let shape = compact
        .split("'shape':(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("bad shape"))?;
    let [rows, cols] = dims[..] else {
        return Err(bad("not 2-D"));
    };
    let len = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(8))
        .ok_or_else(|| bad("shape overflows"))?;
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| DatasetsError::io(path, e))?;
    if bytes.len() != len {
        return Err(bad(&format!(
            "{} data bytes, shape needs {len}",
            bytes.len()
        )));
    }
    let data = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect();
    Ok(Array2 { rows, cols, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let a = Array2 {
            rows: 2,
            cols: 3,
            data: vec![0.5, -1.0, 2.25, 1e-300, f64::MAX, 0.0],
        };
        write(&path, &a).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - 48) % 64, 0, "data must start 64-aligned");
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(read(&path).unwrap(), a);
    }

    #[test]
    fn rejects_wrong_rows_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.npy");
        let mut w = NpyWriter::create(&path, 2, 2).unwrap();
        assert!(w.write_row(&[1.0]).is_err());
        w.write_row(&[1.0, 2.0]).unwrap();
        assert!(w.finish().is_err());
        std::fs::write(&path, b"not numpy at all").unwrap();
        assert!(read(&path).is_err());
    }
}
