//! Background Parquet encoding for [`crate::CorpusWriter`]: row groups are handed to one encoder
//! thread over a bounded channel, so building the next row group (and whatever produces the
//! documents) overlaps with compression and I/O. At most two row groups wait in the channel.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::DatasetsError;
use crate::schema::document_schema;

/// One row group, opening a new part file first when `new_part` is set.
struct Job {
    batch: RecordBatch,
    new_part: Option<PathBuf>,
}

/// Handle to the encoder thread.
pub(crate) struct PartEncoder {
    tx: Option<SyncSender<Job>>,
    handle: Option<JoinHandle<Result<(), DatasetsError>>>,
}

impl PartEncoder {
    pub(crate) fn spawn(docs_per_row_group: usize) -> Result<PartEncoder, DatasetsError> {
        let (tx, rx) = sync_channel(2);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(docs_per_row_group.max(1)))
            .build();
        let handle = std::thread::Builder::new()
            .name("corpus-encoder".into())
            .spawn(move || encode(rx, props))
            .map_err(|e| DatasetsError::io("corpus-encoder thread", e))?;
        Ok(PartEncoder {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Queues a row group. If the encoder has failed, returns its error.
    pub(crate) fn send(
        &mut self,
        batch: RecordBatch,
        new_part: Option<PathBuf>,
    ) -> Result<(), DatasetsError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Job { batch, new_part }).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread only hangs up after an error: report it.
            self.finish()?;
            Err(DatasetsError::InvalidArgument(
                "corpus encoder already finished".into(),
            ))
        }
    }

    /// Waits until every queued row group is written and the last part is closed.
    pub(crate) fn finish(&mut self) -> Result<(), DatasetsError> {
        self.tx = None;
        match self.handle.take() {
            Some(handle) => handle.join().map_err(|_| {
                DatasetsError::InvalidArgument("the corpus encoder thread panicked".into())
            })?,
            None => Ok(()),
        }
    }
}

impl Drop for PartEncoder {
    fn drop(&mut self) {
        // Let the thread finish the file it is writing; errors here have no one to go to.
        let _ = self.finish();
    }
}

type PartWriter = (PathBuf, ArrowWriter<BufWriter<File>>);

fn encode(rx: Receiver<Job>, props: WriterProperties) -> Result<(), DatasetsError> {
    let mut current: Option<PartWriter> = None;
    for job in rx {
        if let Some(path) = job.new_part {
            close(current.take())?;
            let file = File::create(&path).map_err(|e| DatasetsError::io(&path, e))?;
            let writer =
                ArrowWriter::try_new(BufWriter::new(file), document_schema(), Some(props.clone()))
                    .map_err(|e| DatasetsError::parquet(&path, e))?;
            current = Some((path, writer));
        }
        let Some((path, writer)) = current.as_mut() else {
            return Err(DatasetsError::InvalidArgument(
                "row group sent before any part was opened".into(),
            ));
        };
        writer
            .write(&job.batch)
            .and_then(|()| writer.flush())
            .map_err(|e| DatasetsError::parquet(path.as_path(), e))?;
    }
    close(current.take())
}

fn close(part: Option<PartWriter>) -> Result<(), DatasetsError> {
    if let Some((path, writer)) = part {
        let inner = writer
            .into_inner()
            .map_err(|e| DatasetsError::parquet(&path, e))?;
        let file = inner
            .into_inner()
            .map_err(|e| DatasetsError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| DatasetsError::io(&path, e))?;
    }
    Ok(())
}
