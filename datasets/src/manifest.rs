//! `manifest.json`: the summary of a corpus directory, written last so that its presence means the
//! corpus is complete.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DatasetsError;

/// Version of the on-disk layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// File name of the manifest inside a corpus directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The content of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Number of documents kept in the corpus.
    pub documents: u64,
    /// Total number of tokens over all kept documents.
    pub tokens: u64,
    /// Number of entries in `vocab.tsv`.
    pub vocabulary_size: u32,
    /// Documents (or records) skipped, by reason.
    #[serde(default)]
    pub skipped: BTreeMap<String, u64>,
    /// Analyzer settings used to produce the tokens (free-form JSON).
    #[serde(default)]
    pub analyzer: serde_json::Value,
    /// The inputs the corpus was built from (free-form JSON objects or strings).
    #[serde(default)]
    pub inputs: Vec<serde_json::Value>,
    /// Document part files, relative to the corpus directory, in reading order.
    pub parts: Vec<String>,
    /// Anything else a producer wants to record (vocabulary filters, synthetic spec, timings, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What a producer adds to the manifest on top of the figures the writer counts itself.
#[derive(Debug, Clone, Default)]
pub struct ManifestExtras {
    pub skipped: BTreeMap<String, u64>,
    pub analyzer: serde_json::Value,
    pub inputs: Vec<serde_json::Value>,
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Manifest {
    /// Reads and parses `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, DatasetsError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(|e| DatasetsError::io(&path, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| DatasetsError::Json {
                path: path.clone(),
                source,
            })?;
        if manifest.format_version > FORMAT_VERSION {
            return Err(DatasetsError::format(
                &path,
                format!(
                    "format_version {} is newer than this build understands ({FORMAT_VERSION})",
                    manifest.format_version
                ),
            ));
        }
        Ok(manifest)
    }

    /// Writes `dir/manifest.json` through a temporary file and a rename, so readers never see a
    /// half-written manifest.
    pub fn write(&self, dir: &Path) -> Result<(), DatasetsError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).map_err(|source| DatasetsError::Json {
            path: path.clone(),
            source,
        })?;
        let mut file = fs::File::create(&tmp).map_err(|e| DatasetsError::io(&tmp, e))?;
        file.write_all(&json)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| DatasetsError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| DatasetsError::io(&path, e))?;
        sync_dir(dir)
    }

    /// Total number of skipped documents over all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Makes a rename inside `dir` durable (POSIX: the directory entry is only on disk once the
/// directory itself is synced). Platforms that cannot open a directory for syncing skip it.
pub fn sync_dir(dir: &Path) -> Result<(), DatasetsError> {
    match fs::File::open(dir) {
        Ok(d) => match d.sync_all() {
            Ok(()) => Ok(()),
            // Some file systems and platforms refuse fsync on a directory handle.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidInput
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(DatasetsError::io(dir, e)),
        },
        Err(_) => Ok(()),
    }
}
