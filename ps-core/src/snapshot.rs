//! Snapshots: a shard's partitions written to a directory and read back.
//!
//! Layout: `manifest.json` (specs, shard placement, the exactly-once windows) and one
//! `part-N.bin` per partition (rows, then an FNV-1a checksum). The directory is written under a
//! temporary name and renamed into place, so a reader sees the old snapshot or the new one, never
//! a torn mix.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::aggregate::AggregatorRegistry;
use crate::codec::{LeBytes, Reader, checksum, put_varint};
use crate::dedup::{Dedup, SeqWindow};
use crate::error::{PsError, Result};
use crate::shard::Partition;
use crate::spec::ModelSpec;
use crate::store::{AnyStore, RowStore};

const MAGIC: &[u8; 8] = b"GLPSPRT1";
const MANIFEST: &str = "manifest.json";

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: u32,
    partitions: Vec<PartitionEntry>,
}

#[derive(Serialize, Deserialize)]
struct PartitionEntry {
    spec: ModelSpec,
    shard: u32,
    shards: u32,
    file: String,
    /// (writer, applied_through, applied sequence numbers above it)
    windows: Vec<(u64, u64, Vec<u64>)>,
    /// (writer, given-up ranges): absent in snapshots of earlier versions.
    #[serde(default)]
    expired: Vec<(u64, Vec<(u64, u64)>)>,
}

/// Writes `partitions` to `dir`, replacing any snapshot there.
pub(crate) fn save(dir: &Path, partitions: &[Arc<RwLock<Partition>>]) -> Result<()> {
    let parent = dir
        .parent()
        .ok_or_else(|| PsError::snapshot(dir, "has no parent directory"))?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| PsError::snapshot(dir, "has no usable file name"))?;
    fs::create_dir_all(parent).map_err(|e| PsError::snapshot(parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| PsError::snapshot(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| PsError::snapshot(&tmp, e))?;

    let mut entries = Vec::with_capacity(partitions.len());
    for (i, part) in partitions.iter().enumerate() {
        // Each partition is read under its own lock: a consistent copy of that model. Callers that
        // need all models at one instant stop pushing first (the trainer checkpoints between iterations).
        let part = part.read().unwrap_or_else(|e| e.into_inner());
        let file = format!("part-{i}.bin");
        let mut bytes = MAGIC.to_vec();
        encode_store(&part.store, &mut bytes);
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        write_synced(&tmp.join(&file), &bytes)?;
        let windows = part
            .dedup
            .writers
            .iter()
            .map(|(&w, win)| (w, win.applied_through, win.ahead.iter().copied().collect()))
            .collect();
        let expired = part
            .dedup
            .writers
            .iter()
            .filter(|(_, win)| !win.expired.is_empty())
            .map(|(&w, win)| (w, win.expired.clone()))
            .collect();
        entries.push(PartitionEntry {
            spec: part.spec.clone(),
            shard: part.shard,
            shards: part.shards,
            file,
            windows,
            expired,
        });
    }
    let manifest = Manifest {
        version: 1,
        partitions: entries,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| PsError::snapshot(dir, e))?;
    write_synced(&tmp.join(MANIFEST), &json)?;

    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(|e| PsError::snapshot(dir, e))?;
    }
    fs::rename(&tmp, dir).map_err(|e| PsError::snapshot(dir, e))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| PsError::snapshot(&old, e))?;
    }
    Ok(())
}

/// Reads the partitions of the snapshot in `dir`.
pub(crate) fn load(dir: &Path, aggregators: &AggregatorRegistry) -> Result<Vec<Partition>> {
    let manifest_path = dir.join(MANIFEST);
    let json = fs::read(&manifest_path).map_err(|e| PsError::snapshot(&manifest_path, e))?;
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| PsError::snapshot(&manifest_path, e))?;
    if manifest.version != 1 {
        return Err(PsError::snapshot(
            &manifest_path,
            format!("unknown version {}", manifest.version),
        ));
    }
    let mut out = Vec::with_capacity(manifest.partitions.len());
    for entry in manifest.partitions {
        if entry.file.contains('/') || entry.file.contains("..") {
            return Err(PsError::snapshot(
                &manifest_path,
                format!("bad file name {}", entry.file),
            ));
        }
        let path = dir.join(&entry.file);
        let bytes = fs::read(&path).map_err(|e| PsError::snapshot(&path, e))?;
        let aggregation = aggregators.resolve(&entry.spec.aggregator)?;
        let mut part = Partition::new(entry.spec, entry.shard, entry.shards, aggregation);
        part.store = decode_store(&bytes, &part.store).map_err(|m| PsError::snapshot(&path, m))?;
        let mut dedup = Dedup::default();
        for (writer, applied_through, ahead) in entry.windows {
            let ahead: BTreeSet<u64> = ahead.into_iter().collect();
            dedup.writers.insert(
                writer,
                SeqWindow {
                    applied_through,
                    ahead,
                    expired: Vec::new(),
                },
            );
        }
        for (writer, ranges) in entry.expired {
            dedup.writers.entry(writer).or_default().expired = ranges;
        }
        part.dedup = dedup;
        out.push(part);
    }
    Ok(out)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| PsError::snapshot(path, e))?;
    f.write_all(bytes).map_err(|e| PsError::snapshot(path, e))?;
    f.sync_all().map_err(|e| PsError::snapshot(path, e))
}

fn encode_store(store: &AnyStore, out: &mut Vec<u8>) {
    fn enc<T: LeBytes>(s: &RowStore<T>, out: &mut Vec<u8>) {
        match s {
            RowStore::Dense { data, .. } => {
                out.push(0);
                for &v in data {
                    v.write_le(out);
                }
            }
            RowStore::Sparse { rows } => {
                out.push(1);
                for row in rows {
                    put_varint(out, row.len() as u64);
                    for &(c, v) in row {
                        put_varint(out, u64::from(c));
                        v.write_le(out);
                    }
                }
            }
        }
    }
    match store {
        AnyStore::I32(s) => enc(s, out),
        AnyStore::I64(s) => enc(s, out),
        AnyStore::F32(s) => enc(s, out),
        AnyStore::F64(s) => enc(s, out),
    }
}

/// Decodes into a store shaped like `empty` (same type, storage and size).
fn decode_store(bytes: &[u8], empty: &AnyStore) -> std::result::Result<AnyStore, String> {
    if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a partition file (bad magic or too short)".to_string());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut expected = [0u8; 8];
    expected.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(expected) {
        return Err("checksum mismatch: the file is corrupted".to_string());
    }
    let mut r = Reader::new(&body[MAGIC.len()..]);
    fn dec<T: LeBytes>(
        r: &mut Reader<'_>,
        shape: &RowStore<T>,
    ) -> std::result::Result<RowStore<T>, String> {
        let truncated = || "truncated partition data".to_string();
        let tag = r.bytes(1).ok_or_else(truncated)?[0];
        match (tag, shape) {
            (0, RowStore::Dense { cols, data }) => {
                let mut out = Vec::with_capacity(data.len());
                for _ in 0..data.len() {
                    out.push(r.value::<T>().ok_or_else(truncated)?);
                }
                Ok(RowStore::Dense {
                    cols: *cols,
                    data: out,
                })
            }
            (1, RowStore::Sparse { rows }) => {
                let mut out = Vec::with_capacity(rows.len());
                for _ in 0..rows.len() {
                    let n = r.varint().ok_or_else(truncated)? as usize;
                    if n > r.remaining() {
                        return Err(truncated());
                    }
                    let mut row = Vec::with_capacity(n);
                    for _ in 0..n {
                        let c = r.varint().ok_or_else(truncated)?;
                        let c = u32::try_from(c).map_err(|_| format!("column {c} out of range"))?;
                        row.push((c, r.value::<T>().ok_or_else(truncated)?));
                    }
                    out.push(row);
                }
                Ok(RowStore::Sparse { rows: out })
            }
            _ => Err(format!(
                "storage tag {tag} does not match the model's storage"
            )),
        }
    }
    let store = match empty {
        AnyStore::I32(s) => AnyStore::I32(dec(&mut r, s)?),
        AnyStore::I64(s) => AnyStore::I64(dec(&mut r, s)?),
        AnyStore::F32(s) => AnyStore::F32(dec(&mut r, s)?),
        AnyStore::F64(s) => AnyStore::F64(dec(&mut r, s)?),
    };
    if r.remaining() != 0 {
        return Err(format!("{} unexpected trailing bytes", r.remaining()));
    }
    Ok(store)
}
