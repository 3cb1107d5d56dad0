//! Resolves the command line's inputs (paths, directories, globs) into a sorted, de-duplicated
//! list of files or directories, each with its format.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::IngestError;
use crate::readers::Format;

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    /// Size on disk (0 for directories).
    pub bytes: u64,
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands `patterns` in order. A path that exists is taken as is; otherwise it must be a glob
/// matching at least one path. `format` overrides detection for every input.
pub fn resolve(patterns: &[String], format: Option<Format>) -> Result<Vec<Input>, IngestError> {
    if patterns.is_empty() {
        return Err(IngestError::Input(
            "list is empty: give at least one file, directory or glob".into(),
        ));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        if path.exists() {
            paths.push(path.to_path_buf());
        } else if has_glob_chars(pattern) {
            let matches = glob::glob(pattern)
                .map_err(|e| IngestError::Input(format!("{pattern:?}: bad glob: {e}")))?;
            let mut found: Vec<PathBuf> = matches
                .filter_map(Result::ok)
                .filter(|p| p.is_file() || p.is_dir())
                .collect();
            if found.is_empty() {
                return Err(IngestError::Input(format!(
                    "{pattern:?}: the glob matches no files"
                )));
            }
            found.sort();
            paths.append(&mut found);
        } else {
            return Err(IngestError::Input(format!(
                "{pattern}: no such file or directory"
            )));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    paths
        .into_iter()
        .map(|path| {
            let format = format.unwrap_or_else(|| Format::detect(&path));
            let meta = std::fs::metadata(&path).map_err(|e| IngestError::io(&path, e))?;
            if meta.is_dir() && !matches!(format, Format::Dir) {
                return Err(IngestError::Input(format!(
                    "{}: is a directory, but the format is {}",
                    path.display(),
                    format.name()
                )));
            }
            Ok(Input {
                bytes: if meta.is_file() { meta.len() } else { 0 },
                path,
                format,
            })
        })
        .collect()
}
