//! Snapshots: a shard's partitions written to one file and read back.
//!
//! A snapshot `name` is the file `snapshots/NAME/snapshot.bin` under the server's data directory.
//! Saving never leaves a moment without a complete snapshot once the first save finished:
//! 1. each partition is copied under its read lock (so pushes wait only for a memory copy), then
//!    encoded into a temporary file with a name unique to this save (`.snapshot.bin.tmp-…`, opened
//!    with `create_new`), so concurrent saves never share a path;
//! 2. the temporary file is fsynced and renamed over `snapshot.bin` (atomic on POSIX: a reader
//!    opens the old file or the new one), then the directory is fsynced so the rename survives a
//!    crash. Concurrent saves both succeed; the last rename wins.
//!
//! A failed or interrupted save leaves the previous snapshot as it was (at worst a stray
//! temporary file, which loading ignores).
//!
//! Layout: the magic `GLPSSNP2`, a JSON header (format version, the shard index, the number of
//! partitions), then per partition a JSON entry (spec, shard index and shard count, the
//! exactly-once windows and tombstones) and its rows. Every JSON part is length-prefixed, and a
//! running FNV-1a checksum of everything before it follows the header and each partition, so
//! a torn or corrupted file is refused, not half loaded. The shard and placement recorded here
//! are what [`crate::Shard`] checks before a load replaces its partitions.
//!
//! Snapshots of the earlier directory layout (`manifest.json` and `part-N.bin`) still load.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregation, AggregatorRegistry};
use crate::codec::{FNV_START, LeBytes, checksum, fnv, put_varint};
use crate::dedup::{Dedup, DedupImage, SeqWindow, Tombstone};
use crate::error::{PsError, Result};
use crate::partition::Partitioner;
use crate::shard::Partition;
use crate::spec::{ModelSpec, Storage};
use crate::store::{AnyStore, RowStore};

const MAGIC: &[u8; 8] = b"GLPSSNP2";
const VERSION: u32 = 2;
/// The snapshot's file inside its directory.
pub(crate) const FILE: &str = "snapshot.bin";
/// Longest JSON part accepted (a header or one partition's entry with its writers).
const MAX_JSON_BYTES: u64 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    /// The shard index of every partition, when known.
    shard: Option<u32>,
    partitions: u64,
}

/// Inclusive ranges of sequence numbers given up on.
type Ranges = Vec<(u64, u64)>;

#[derive(Serialize, Deserialize)]
struct Entry {
    spec: ModelSpec,
    shard: u32,
    shards: u32,
    /// (writer, applied_through, applied sequence numbers above it, given-up ranges)
    windows: Vec<(u64, u64, Vec<u64>, Ranges)>,
    /// Forgotten writers: (writer, applied_through, given-up ranges).
    forgotten: Vec<(u64, u64, Ranges)>,
}

/// What a shard gets back from a snapshot: the shard index it was saved by, and its partitions.
pub(crate) struct Loaded {
    pub shard: Option<u32>,
    pub partitions: Vec<Restored>,
}

/// One partition as read from a snapshot, before the shard lays its rows out in lock stripes.
#[derive(Debug)]
pub(crate) struct Restored {
    pub spec: ModelSpec,
    pub shard: u32,
    pub shards: u32,
    pub aggregation: Aggregation,
    pub store: AnyStore,
    pub dedup: Dedup,
}

/// A partition as copied under its lock, written out after the lock is released.
struct Image {
    spec: ModelSpec,
    shard: u32,
    shards: u32,
    store: AnyStore,
    dedup: DedupImage,
}

/// Writes `partitions` to the snapshot directory `dir`, replacing any snapshot there.
/// `idle` is the writer expiry: writers idle past it are recorded as tombstones.
pub(crate) fn save(
    dir: &Path,
    shard: Option<u32>,
    partitions: &[Arc<Partition>],
    idle: Option<Duration>,
) -> Result<()> {
    prepare_dir(dir)?;
    commit(dir, |out| {
        let mut w = SumWriter::new(out);
        w.write_all(MAGIC)?;
        let header = Header {
            version: VERSION,
            shard,
            partitions: partitions.len() as u64,
        };
        w.json(&header)?;
        w.checkpoint()?;
        for part in partitions {
            let (store, dedup) = part.image(Instant::now(), idle);
            let image = Image {
                spec: part.spec.clone(),
                shard: part.shard,
                shards: part.shards,
                store,
                dedup,
            };
            write_image(&mut w, &image)?;
            // `image` (the copy) is dropped here: at most one partition is copied at a time.
        }
        w.flush()
    })
}

/// Creates `dir` if needed, fsyncing the parent of every directory it creates so the new
/// entries survive a crash (a renamed file in a directory that vanishes is no snapshot).
fn prepare_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|a| !a.is_dir()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| PsError::snapshot(dir, e))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Makes `write`'s bytes the snapshot in `dir`: a unique temporary file, fsync, rename over the
/// snapshot, fsync of the directory. On failure the temporary file is removed and the previous
/// snapshot is untouched.
fn commit(dir: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let (tmp, file) = create_temp(dir)?;
    let written = (|| {
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        write(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written {
        remove_quietly(&tmp);
        return Err(PsError::snapshot(&tmp, e));
    }
    let target = dir.join(FILE);
    if let Err(e) = fs::rename(&tmp, &target) {
        remove_quietly(&tmp);
        return Err(PsError::snapshot(&target, e));
    }
    sync_dir(dir)?;
    remove_legacy(dir);
    Ok(())
}

/// A new file in `dir` that no other save (in this process or another) can be using.
fn create_temp(dir: &Path) -> Result<(PathBuf, fs::File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            ".{FILE}.tmp-{}-{n}-{:016x}",
            std::process::id(),
            crate::client::random_id()
        );
        let path = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(PsError::snapshot(&path, e)),
        }
    }
    Err(PsError::snapshot(
        dir,
        "cannot find a free temporary file name",
    ))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale snapshot file");
    }
}

/// Fsyncs a directory, so that renames and new entries in it survive a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| PsError::snapshot(dir, e))
    }
    // Elsewhere a directory cannot be opened as a file; the rename is still atomic.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes the files of the earlier layout once a new snapshot replaced them.
fn remove_legacy(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let legacy =
            name == LEGACY_MANIFEST || (name.starts_with("part-") && name.ends_with(".bin"));
        if legacy {
            remove_quietly(&entry.path());
        }
    }
}

fn write_image<W: Write>(w: &mut SumWriter<W>, image: &Image) -> io::Result<()> {
    let entry = Entry {
        spec: image.spec.clone(),
        shard: image.shard,
        shards: image.shards,
        windows: image
            .dedup
            .windows
            .iter()
            .map(|(w, win)| {
                let ahead = win.ahead.iter().copied().collect();
                (*w, win.applied_through, ahead, win.expired.clone())
            })
            .collect(),
        forgotten: image
            .dedup
            .forgotten
            .iter()
            .map(|(w, t)| (*w, t.applied_through, t.expired.to_vec()))
            .collect(),
    };
    w.json(&entry)?;
    encode_store(&image.store, w)?;
    w.checkpoint()
}

/// Encodes rows through a small buffer: a tag, then dense values, or per sparse row its length
/// and (column, value) pairs.
fn encode_store<W: Write>(store: &AnyStore, w: &mut SumWriter<W>) -> io::Result<()> {
    fn enc<T: LeBytes, W: Write>(s: &RowStore<T>, w: &mut SumWriter<W>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 << 16);
        match s {
            RowStore::Dense { data, .. } => {
                w.write_all(&[0])?;
                for chunk in data.chunks(4096) {
                    buf.clear();
                    for &v in chunk {
                        v.write_le(&mut buf);
                    }
                    w.write_all(&buf)?;
                }
            }
            RowStore::Sparse { rows } => {
                w.write_all(&[1])?;
                for row in rows {
                    put_varint(&mut buf, row.len() as u64);
                    for &(c, v) in row {
                        put_varint(&mut buf, u64::from(c));
                        v.write_le(&mut buf);
                    }
                    if buf.len() >= 1 << 15 {
                        w.write_all(&buf)?;
                        buf.clear();
                    }
                }
                w.write_all(&buf)?;
            }
        }
        Ok(())
    }
    match store {
        AnyStore::I32(s) => enc(s, w),
        AnyStore::I64(s) => enc(s, w),
        AnyStore::F32(s) => enc(s, w),
        AnyStore::F64(s) => enc(s, w),
    }
}

/// Checks run on each partition before its rows are read (the shard's limits).
pub(crate) type Admit<'a> = &'a dyn Fn(&ModelSpec, u32, u32) -> Result<()>;

/// Reads the snapshot in the snapshot directory `dir`.
pub(crate) fn load(
    dir: &Path,
    aggregators: &AggregatorRegistry,
    admit: Admit<'_>,
) -> Result<Loaded> {
    let path = dir.join(FILE);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.join(LEGACY_MANIFEST).is_file() => {
            return load_legacy(dir, aggregators, admit);
        }
        Err(e) => return Err(PsError::snapshot(&path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| PsError::snapshot(&path, e))?
        .len();
    let mut r = SumReader::new(BufReader::with_capacity(1 << 20, file), len);
    read_snapshot(&mut r, aggregators, admit).map_err(|m| PsError::snapshot(&path, m))
}

fn read_snapshot<R: Read>(
    r: &mut SumReader<R>,
    aggregators: &AggregatorRegistry,
    admit: Admit<'_>,
) -> std::result::Result<Loaded, String> {
    if r.bytes(MAGIC.len())? != MAGIC {
        return Err("not a snapshot file (bad magic)".to_string());
    }
    let header: Header = r.json()?;
    r.checkpoint()?;
    if header.version != VERSION {
        return Err(format!("unknown snapshot version {}", header.version));
    }
    // Each partition takes at least its entry's length prefix.
    if header.partitions > r.remaining() / 8 {
        return Err(format!(
            "{} partitions do not fit in the file",
            header.partitions
        ));
    }
    let mut partitions = Vec::with_capacity(header.partitions as usize);
    for _ in 0..header.partitions {
        let entry: Entry = r.json()?;
        if let Some(s) = header.shard
            && s != entry.shard
        {
            return Err(format!(
                "model '{}' is shard {} of {}, but the snapshot is of shard {s}",
                entry.spec.name, entry.shard, entry.shards
            ));
        }
        let (spec, shard, shards, dedup) = check_entry(entry)?;
        admit(&spec, shard, shards).map_err(|e| e.to_string())?;
        let aggregation = aggregators
            .resolve(&spec.aggregator)
            .map_err(|e| e.to_string())?;
        let store = decode_store(r, &spec, shard, shards)?;
        r.checkpoint()?;
        let dedup = Dedup::from_image(dedup, Instant::now());
        partitions.push(Restored {
            spec,
            shard,
            shards,
            aggregation,
            store,
            dedup,
        });
    }
    if r.remaining() != 0 {
        return Err(format!("{} unexpected trailing bytes", r.remaining()));
    }
    Ok(Loaded {
        shard: header.shard,
        partitions,
    })
}

/// Validates an entry's placement and exactly-once state.
fn check_entry(entry: Entry) -> std::result::Result<(ModelSpec, u32, u32, DedupImage), String> {
    entry.spec.validate().map_err(|e| e.to_string())?;
    if entry.shards == 0 || entry.shard >= entry.shards {
        return Err(format!(
            "model '{}' is recorded as shard {} of {}",
            entry.spec.name, entry.shard, entry.shards
        ));
    }
    let ranges_ok = |r: &[(u64, u64)]| {
        r.iter().all(|&(lo, hi)| lo <= hi) && r.windows(2).all(|w| w[0].1 < w[1].0)
    };
    let mut dedup = DedupImage::default();
    for (writer, applied_through, ahead, expired) in entry.windows {
        if !ranges_ok(&expired) {
            return Err(format!("writer {writer} has malformed given-up ranges"));
        }
        let ahead: BTreeSet<u64> = ahead.into_iter().collect();
        let window = SeqWindow {
            applied_through,
            ahead,
            expired,
        };
        dedup.windows.push((writer, window));
    }
    for (writer, applied_through, expired) in entry.forgotten {
        if !ranges_ok(&expired) {
            return Err(format!("writer {writer} has malformed given-up ranges"));
        }
        let tombstone = Tombstone {
            applied_through,
            expired: expired.into_boxed_slice(),
        };
        dedup.forgotten.push((writer, tombstone));
    }
    Ok((entry.spec, entry.shard, entry.shards, dedup))
}

/// Decodes the rows of one partition of `spec`, refusing before allocating anything the rest
/// of the file cannot hold.
fn decode_store<R: Read>(
    r: &mut SumReader<R>,
    spec: &ModelSpec,
    shard: u32,
    shards: u32,
) -> std::result::Result<AnyStore, String> {
    let local_rows =
        Partitioner::new(spec.partitioner, spec.rows, shards as usize).rows_on(shard as usize);
    fn dec<T: LeBytes, R: Read>(
        r: &mut SumReader<R>,
        storage: Storage,
        local_rows: u64,
        cols: u32,
    ) -> std::result::Result<RowStore<T>, String> {
        let tag = r.bytes(1)?[0];
        match (tag, storage) {
            (0, Storage::Dense) => {
                let n = local_rows.saturating_mul(u64::from(cols));
                if n.saturating_mul(T::SIZE as u64) > r.remaining() {
                    return Err(truncated());
                }
                let mut data = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    data.push(r.value::<T>()?);
                }
                Ok(RowStore::Dense {
                    cols: cols as usize,
                    data,
                })
            }
            (1, Storage::Sparse) => {
                if local_rows > r.remaining() {
                    return Err(truncated());
                }
                let mut rows = Vec::with_capacity(local_rows as usize);
                for _ in 0..local_rows {
                    let n = r.varint()?;
                    if n > r.remaining() || n > u64::from(cols) {
                        return Err(truncated());
                    }
                    let mut row: Vec<(u32, T)> = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let c = r.varint()?;
                        let c = u32::try_from(c)
                            .ok()
                            .filter(|&c| c < cols)
                            .ok_or_else(|| format!("column {c} out of range"))?;
                        if row.last().is_some_and(|&(prev, _)| prev >= c) {
                            return Err("sparse row columns are not increasing".to_string());
                        }
                        row.push((c, r.value::<T>()?));
                    }
                    rows.push(row);
                }
                Ok(RowStore::Sparse { rows })
            }
            _ => Err(format!(
                "storage tag {tag} does not match the model's storage"
            )),
        }
    }
    let (storage, cols) = (spec.storage, spec.cols);
    Ok(match spec.dtype {
        crate::value::DType::I32 => AnyStore::I32(dec(r, storage, local_rows, cols)?),
        crate::value::DType::I64 => AnyStore::I64(dec(r, storage, local_rows, cols)?),
        crate::value::DType::F32 => AnyStore::F32(dec(r, storage, local_rows, cols)?),
        crate::value::DType::F64 => AnyStore::F64(dec(r, storage, local_rows, cols)?),
    })
}

fn truncated() -> String {
    "truncated snapshot data".to_string()
}

/// A writer that keeps the running checksum of what it wrote.
struct SumWriter<W> {
    inner: W,
    sum: u64,
}

impl<W: Write> SumWriter<W> {
    fn new(inner: W) -> Self {
        SumWriter {
            inner,
            sum: FNV_START,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum = fnv(self.sum, bytes);
        self.inner.write_all(bytes)
    }

    fn json<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        let json = serde_json::to_vec(value).map_err(io::Error::other)?;
        self.write_all(&(json.len() as u64).to_le_bytes())?;
        self.write_all(&json)
    }

    /// Writes the checksum of everything so far (not itself part of later checksums).
    fn checkpoint(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.sum.to_le_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that keeps the running checksum of what it read and how much is left.
struct SumReader<R> {
    inner: R,
    sum: u64,
    remaining: u64,
}

impl<R: Read> SumReader<R> {
    fn new(inner: R, len: u64) -> Self {
        SumReader {
            inner,
            sum: FNV_START,
            remaining: len,
        }
    }

    fn remaining(&self) -> u64 {
        self.remaining
    }

    fn raw(&mut self, n: usize) -> std::result::Result<Vec<u8>, String> {
        if n as u64 > self.remaining {
            return Err(truncated());
        }
        let mut buf = vec![0; n];
        self.inner.read_exact(&mut buf).map_err(|e| e.to_string())?;
        self.remaining -= n as u64;
        Ok(buf)
    }

    fn bytes(&mut self, n: usize) -> std::result::Result<Vec<u8>, String> {
        let buf = self.raw(n)?;
        self.sum = fnv(self.sum, &buf);
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        if N as u64 > self.remaining {
            return Err(truncated());
        }
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(|e| e.to_string())?;
        self.remaining -= N as u64;
        self.sum = fnv(self.sum, &buf);
        Ok(buf)
    }

    fn value<T: LeBytes>(&mut self) -> std::result::Result<T, String> {
        // Every value type is at most 8 bytes; read 4 or 8 without allocating.
        if T::SIZE == 4 {
            Ok(T::read_le(&self.array::<4>()?))
        } else {
            Ok(T::read_le(&self.array::<8>()?))
        }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.array::<1>()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("malformed varint".to_string())
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self) -> std::result::Result<T, String> {
        let len = u64::from_le_bytes(self.array::<8>()?);
        if len > MAX_JSON_BYTES || len > self.remaining {
            return Err(truncated());
        }
        let bytes = self.bytes(len as usize)?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// Reads a checksum written by [`SumWriter::checkpoint`] and compares it with its own.
    fn checkpoint(&mut self) -> std::result::Result<(), String> {
        let expected = self.raw(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&expected);
        if u64::from_le_bytes(a) != self.sum {
            return Err("checksum mismatch: the file is corrupted".to_string());
        }
        Ok(())
    }
}

// ---------- the earlier directory layout, read only ----------

const LEGACY_MAGIC: &[u8; 8] = b"GLPSPRT1";
const LEGACY_MANIFEST: &str = "manifest.json";

#[derive(Deserialize)]
struct LegacyManifest {
    version: u32,
    partitions: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
struct LegacyEntry {
    spec: ModelSpec,
    shard: u32,
    shards: u32,
    file: String,
    windows: Vec<(u64, u64, Vec<u64>)>,
    #[serde(default)]
    expired: Vec<(u64, Ranges)>,
}

/// Reads a snapshot of the earlier layout: `manifest.json` and one checksummed `part-N.bin` each.
fn load_legacy(dir: &Path, aggregators: &AggregatorRegistry, admit: Admit<'_>) -> Result<Loaded> {
    let manifest_path = dir.join(LEGACY_MANIFEST);
    let json = fs::read(&manifest_path).map_err(|e| PsError::snapshot(&manifest_path, e))?;
    let manifest: LegacyManifest =
        serde_json::from_slice(&json).map_err(|e| PsError::snapshot(&manifest_path, e))?;
    if manifest.version != 1 {
        return Err(PsError::snapshot(
            &manifest_path,
            format!("unknown version {}", manifest.version),
        ));
    }
    let mut partitions = Vec::with_capacity(manifest.partitions.len());
    let mut shard_index = None;
    for legacy in manifest.partitions {
        if legacy.file.contains('/') || legacy.file.contains('\\') || legacy.file.contains("..") {
            return Err(PsError::snapshot(
                &manifest_path,
                format!("bad file name {}", legacy.file),
            ));
        }
        let path = dir.join(&legacy.file);
        let mut windows: Vec<_> = legacy
            .windows
            .into_iter()
            .map(|(w, through, ahead)| (w, through, ahead, Vec::new()))
            .collect();
        for (writer, ranges) in legacy.expired {
            match windows.iter_mut().find(|e| e.0 == writer) {
                Some(e) => e.3 = ranges,
                None => windows.push((writer, 0, Vec::new(), ranges)),
            }
        }
        let entry = Entry {
            spec: legacy.spec,
            shard: legacy.shard,
            shards: legacy.shards,
            windows,
            forgotten: Vec::new(),
        };
        let (spec, shard, shards, dedup) =
            check_entry(entry).map_err(|m| PsError::snapshot(&manifest_path, m))?;
        if shard_index.is_some_and(|s| s != shard) {
            return Err(PsError::snapshot(
                &manifest_path,
                "partitions of different shards in one snapshot",
            ));
        }
        shard_index = Some(shard);
        admit(&spec, shard, shards)?;
        let aggregation = aggregators.resolve(&spec.aggregator)?;
        let bytes = fs::read(&path).map_err(|e| PsError::snapshot(&path, e))?;
        let store = decode_legacy_part(&bytes, &spec, shard, shards)
            .map_err(|m| PsError::snapshot(&path, m))?;
        let dedup = Dedup::from_image(dedup, Instant::now());
        partitions.push(Restored {
            spec,
            shard,
            shards,
            aggregation,
            store,
            dedup,
        });
    }
    Ok(Loaded {
        shard: shard_index,
        partitions,
    })
}

/// A legacy part file: magic, rows (the same encoding as today's), FNV-1a of all before it.
fn decode_legacy_part(
    bytes: &[u8],
    spec: &ModelSpec,
    shard: u32,
    shards: u32,
) -> std::result::Result<AnyStore, String> {
    if bytes.len() < LEGACY_MAGIC.len() + 8 || &bytes[..LEGACY_MAGIC.len()] != LEGACY_MAGIC {
        return Err("not a partition file (bad magic or too short)".to_string());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut expected = [0u8; 8];
    expected.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(expected) {
        return Err("checksum mismatch: the file is corrupted".to_string());
    }
    let rows = &body[LEGACY_MAGIC.len()..];
    let mut r = SumReader::new(rows, rows.len() as u64);
    let store = decode_store(&mut r, spec, shard, shards)?;
    if r.remaining() != 0 {
        return Err(format!("{} unexpected trailing bytes", r.remaining()));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{DType, Values};

    fn partition(name: &str, storage: Storage, shard: u32, shards: u32) -> Partition {
        let spec = ModelSpec::matrix(name, 10, 6, DType::I64).with_storage(storage);
        let p = Partition::new(spec, shard, shards, Aggregation::Add, 2);
        let limits = crate::shard::Limits::default();
        // Writer 11 applied pushes 1 and 3 (2 is missing): the window is in the snapshot too.
        for (seq, locals, cols, values) in [
            (1, vec![0, 1], vec![5, 0], vec![3, -4]),
            (3, vec![2], vec![2], vec![7]),
        ] {
            let push = crate::message::Push {
                model: name.to_string(),
                writer: 11,
                seq,
                rows: Vec::new(),
                cols,
                values: Values::I64(values),
            };
            p.apply_once(&push, &locals, &limits, |_| {}).unwrap();
        }
        p
    }

    fn shared(parts: Vec<Partition>) -> Vec<Arc<Partition>> {
        parts.into_iter().map(Arc::new).collect()
    }

    /// What a partition holds, as a snapshot sees it.
    fn content(p: &Partition) -> (ModelSpec, AnyStore, DedupImage) {
        let (store, dedup) = p.image(Instant::now(), None);
        (p.spec.clone(), store, dedup)
    }

    fn restored(p: &Restored) -> (ModelSpec, AnyStore, DedupImage) {
        (
            p.spec.clone(),
            p.store.clone(),
            p.dedup.image(Instant::now(), None),
        )
    }

    fn no_limits(_: &ModelSpec, _: u32, _: u32) -> Result<()> {
        Ok(())
    }

    fn load_dir(dir: &Path) -> Result<Loaded> {
        load(dir, &AggregatorRegistry::default(), &no_limits)
    }

    proptest::proptest! {
        #[test]
        fn varints_round_trip(values in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..50)) {
            let mut buf = Vec::new();
            for &v in &values {
                put_varint(&mut buf, v);
            }
            let mut r = SumReader::new(&buf[..], buf.len() as u64);
            for &v in &values {
                proptest::prop_assert_eq!(r.varint(), Ok(v));
            }
            proptest::prop_assert_eq!(r.remaining(), 0);
            proptest::prop_assert!(r.varint().is_err());
        }
    }

    #[test]
    fn round_trips_rows_placement_and_windows() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let parts = vec![
            partition("d", Storage::Dense, 1, 3),
            partition("s", Storage::Sparse, 1, 3),
        ];
        let expected: Vec<_> = parts.iter().map(content).collect();
        save(&dir, Some(1), &shared(parts), None).unwrap();
        let loaded = load_dir(&dir).unwrap();
        assert_eq!(loaded.shard, Some(1));
        let got: Vec<_> = loaded.partitions.iter().map(restored).collect();
        assert_eq!(got, expected);
        assert!(
            loaded
                .partitions
                .iter()
                .all(|p| p.shard == 1 && p.shards == 3)
        );
    }

    #[test]
    fn a_failed_write_leaves_the_previous_snapshot_loadable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        save(
            &dir,
            Some(0),
            &shared(vec![partition("m", Storage::Sparse, 0, 1)]),
            None,
        )
        .unwrap();
        let before = fs::read(dir.join(FILE)).unwrap();
        // A save that dies half way through writing its temporary file (a full disk, a crash).
        let err = commit(&dir, |out| {
            out.write_all(&before[..before.len() / 2])?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(fs::read(dir.join(FILE)).unwrap(), before);
        assert_eq!(load_dir(&dir).unwrap().partitions.len(), 1);
        // A crash leaves its temporary file behind: ignored by loads, no obstacle to saves.
        fs::write(dir.join(format!(".{FILE}.tmp-1-0-0")), &before[..10]).unwrap();
        assert_eq!(load_dir(&dir).unwrap().partitions.len(), 1);
        save(&dir, Some(0), &shared(vec![]), None).unwrap();
        assert_eq!(load_dir(&dir).unwrap().partitions.len(), 0);
    }

    #[test]
    fn torn_or_corrupted_files_are_refused_not_half_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let parts = vec![
            partition("a", Storage::Dense, 0, 1),
            partition("b", Storage::Sparse, 0, 1),
        ];
        save(&dir, Some(0), &shared(parts), None).unwrap();
        let good = fs::read(dir.join(FILE)).unwrap();
        for cut in [0, 5, 8, 20, good.len() / 2, good.len() - 1] {
            fs::write(dir.join(FILE), &good[..cut]).unwrap();
            assert!(load_dir(&dir).is_err(), "cut at {cut}");
        }
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            fs::write(dir.join(FILE), &bad).unwrap();
            // A flipped bit is refused (never a panic); the error names the file.
            let err = load_dir(&dir).err().map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains(FILE)), "byte {i}");
        }
        let mut longer = good.clone();
        longer.push(0);
        fs::write(dir.join(FILE), &longer).unwrap();
        assert!(load_dir(&dir).is_err());
    }

    #[test]
    fn partitions_are_checked_against_the_limits_before_reading_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        save(
            &dir,
            None,
            &shared(vec![partition("m", Storage::Dense, 0, 1)]),
            None,
        )
        .unwrap();
        let refuse = |spec: &ModelSpec, _: u32, _: u32| {
            Err(PsError::InvalidRequest(format!(
                "'{}' is too large",
                spec.name
            )))
        };
        let err = load(&dir, &AggregatorRegistry::default(), &refuse)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn snapshots_of_the_directory_layout_still_load() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("old");
        fs::create_dir_all(&dir).unwrap();
        let p = content(&partition("m", Storage::Sparse, 0, 2));
        let mut bytes = LEGACY_MAGIC.to_vec();
        let mut w = SumWriter::new(&mut bytes);
        encode_store(&p.1, &mut w).unwrap();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        fs::write(dir.join("part-0.bin"), &bytes).unwrap();
        let manifest = serde_json::json!({
            "version": 1,
            "partitions": [{
                "spec": p.0, "shard": 0, "shards": 2, "file": "part-0.bin",
                "windows": [[11, 1, [3]]], "expired": [],
            }],
        });
        fs::write(dir.join(LEGACY_MANIFEST), manifest.to_string()).unwrap();
        let loaded = load_dir(&dir).unwrap();
        assert_eq!(loaded.shard, Some(0));
        assert_eq!(restored(&loaded.partitions[0]), p);
        // Saving over it replaces the old files.
        let again: Vec<Partition> = loaded
            .partitions
            .into_iter()
            .map(|r| Partition::restore(r, 3))
            .collect();
        save(&dir, Some(0), &shared(again), None).unwrap();
        assert!(!dir.join(LEGACY_MANIFEST).exists() && !dir.join("part-0.bin").exists());
        assert_eq!(load_dir(&dir).unwrap().partitions[0].store, p.1);
    }
}
