//! The Parquet reader over every string column type, nulls, a non-string column and a file that
//! is not Parquet at all.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail loudly on purpose

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int32Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use ingest::readers::{self, Body, ByteCounters, DocSink, RawDoc, Skip};
use ingest::{IngestError, ParquetColumns};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

#[derive(Default)]
struct Collect {
    docs: Vec<RawDoc>,
    skips: Vec<Skip>,
}

impl DocSink for Collect {
    fn document(&mut self, doc: RawDoc) -> Result<(), IngestError> {
        self.docs.push(doc);
        Ok(())
    }
    fn skip(&mut self, skip: Skip) -> Result<(), IngestError> {
        self.skips.push(skip);
        Ok(())
    }
    fn ignore(&mut self, _: &'static str) {}
}

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn read(path: &Path, text: &str, id: Option<&str>) -> Collect {
    let mut sink = Collect::default();
    let columns = ParquetColumns {
        text: text.into(),
        id: id.map(Into::into),
    };
    readers::parquet::read(
        path,
        &columns,
        &Arc::new(ByteCounters::default()),
        &mut sink,
    )
    .unwrap();
    sink
}

#[test]
fn every_string_type_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [Some("red apples"), None, Some("green pears"), Some("  ")];
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
    let variants: Vec<(&str, ArrayRef)> = vec![
        ("utf8", Arc::new(StringArray::from(texts.to_vec()))),
        ("large", Arc::new(LargeStringArray::from(texts.to_vec()))),
        ("view", Arc::new(StringViewArray::from(texts.to_vec()))),
    ];
    for (name, array) in variants {
        let path = dir.path().join(format!("{name}.parquet"));
        write(&path, vec![("body", array), ("key", Arc::clone(&ids))]);
        let sink = read(&path, "body", Some("key"));
        let got: Vec<(&str, &Body)> = sink.docs.iter().map(|d| (d.id.as_str(), &d.body)).collect();
        assert_eq!(
            got,
            [
                ("a", &Body::Text("red apples".into())),
                ("c", &Body::Text("green pears".into()))
            ],
            "{name}"
        );
        assert_eq!(
            sink.skips.len(),
            2,
            "{name}: null and blank rows are empty documents"
        );
        assert!(
            sink.skips
                .iter()
                .all(|s| s.reason == "empty" && s.message.contains(&format!("{name}.parquet")))
        );
        // Without an id column, ids are FILE_STEM:ROW.
        let sink = read(&path, "body", None);
        assert_eq!(sink.docs[1].id, format!("{name}:2"));
    }
}

#[test]
fn non_string_column_and_non_parquet_file_are_skips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ints.parquet");
    write(
        &path,
        vec![("n", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)],
    );
    let sink = read(&path, "n", None);
    assert_eq!(sink.skips.len(), 1);
    assert_eq!(sink.skips[0].reason, "missing-column");
    assert!(
        sink.skips[0].message.contains("not a string column"),
        "{}",
        sink.skips[0].message
    );

    let bogus = dir.path().join("bogus.parquet");
    std::fs::write(&bogus, b"PAR1 but not really").unwrap();
    let sink = read(&bogus, "text", None);
    assert_eq!(sink.skips[0].reason, "corrupt-parquet");
    assert!(sink.skips[0].message.contains("bogus.parquet"));
}
