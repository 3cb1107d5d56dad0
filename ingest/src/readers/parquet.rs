//! Parquet tables: a named string column (Utf8, LargeUtf8 or Utf8View) is the text, an optional
//! column the id. Only those columns are decoded, one batch at a time, so memory stays at about a
//! row group whatever the file size.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Body, ByteCounters, DocSink, RawDoc, Skip};
use crate::IngestError;

const BATCH_ROWS: usize = 2048;

/// Which columns to read.
#[derive(Debug, Clone)]
pub struct ParquetColumns {
    pub text: String,
    pub id: Option<String>,
}

/// The string at `row` of a Utf8 / LargeUtf8 / Utf8View column (`None` when null or not a string
/// column).
fn string_at(col: &ArrayRef, row: usize) -> Option<&str> {
    if col.is_null(row) {
        return None;
    }
    if let Some(a) = col.as_string_opt::<i32>() {
        Some(a.value(row))
    } else if let Some(a) = col.as_string_opt::<i64>() {
        Some(a.value(row))
    } else {
        col.as_string_view_opt().map(|a| a.value(row))
    }
}

fn is_string(t: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType::{LargeUtf8, Utf8, Utf8View};
    matches!(t, Utf8 | LargeUtf8 | Utf8View)
}

/// Streams the documents of one Parquet file.
pub fn read(
    path: &Path,
    columns: &ParquetColumns,
    counters: &Arc<ByteCounters>,
    sink: &mut dyn DocSink,
) -> Result<(), IngestError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder = match ParquetRecordBatchReaderBuilder::try_new(file) {
        Ok(b) => b,
        Err(e) => {
            return sink.skip(Skip::new(
                "corrupt-parquet",
                format!("{name}: not a readable Parquet file: {e}"),
            ));
        }
    };
    let schema = Arc::clone(builder.schema());
    let available = || {
        schema
            .fields()
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut roots = Vec::new();
    for (wanted, role) in [(Some(&columns.text), "text"), (columns.id.as_ref(), "id")] {
        let Some(wanted) = wanted else { continue };
        match schema.index_of(wanted) {
            Ok(i) if is_string(schema.field(i).data_type()) => roots.push(i),
            Ok(i) => {
                return sink.skip(Skip::new(
                    "missing-column",
                    format!(
                        "{name}: {role} column {wanted:?} is {}, not a string column",
                        schema.field(i).data_type()
                    ),
                ));
            }
            Err(_) => {
                return sink.skip(Skip::new(
                    "missing-column",
                    format!(
                        "{name}: no {role} column {wanted:?}; columns are: {}",
                        available()
                    ),
                ));
            }
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| IngestError::Config(format!("{name}: {e}")))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut row_base = 0usize;
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                return sink.skip(Skip::new(
                    "corrupt-parquet",
                    format!(
                        "{name}: decoding failed after row {row_base}: {e}; rest of file skipped"
                    ),
                ));
            }
        };
        let (Some(text_col), id_col) = (
            batch.column_by_name(&columns.text),
            columns.id.as_ref().and_then(|c| batch.column_by_name(c)),
        ) else {
            return Err(IngestError::Pipeline(format!(
                "{name}: projected column vanished"
            )));
        };
        for row in 0..batch.num_rows() {
            let rowno = row_base + row;
            let id = id_col
                .and_then(|c| string_at(c, row))
                .map_or_else(|| format!("{stem}:{rowno}"), str::to_owned);
            let text = string_at(text_col, row).unwrap_or("");
            counters
                .uncompressed
                .fetch_add(text.len() as u64, Ordering::Relaxed);
            if text.trim().is_empty() {
                sink.skip(Skip::new(
                    "empty",
                    format!("{name}: row {rowno} ({id}): empty or null text"),
                ))?;
                continue;
            }
            sink.document(RawDoc {
                id,
                body: Body::Text(text.to_owned()),
            })?;
        }
        row_base += batch.num_rows();
    }
    counters.disk.fetch_add(file_len, Ordering::Relaxed);
    Ok(())
}
