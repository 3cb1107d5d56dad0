//! Resolves the command line's inputs (paths, directories, globs) into a sorted, de-duplicated
//! list of files or directories, each with its format; `-` is standard input.

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

/// The command-line name of standard input.
pub const STDIN: &str = "-";

impl Input {
    /// Whether this input is standard input (`-`).
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == STDIN
    }
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands `patterns` in order. A path that exists is taken as is; otherwise it must be a glob
/// matching at least one path. `format` overrides detection for every input. A named file whose
/// format cannot be told from its name is an error; see [`resolve_reporting`] for globs.
pub fn resolve(patterns: &[String], format: Option<Format>) -> Result<Vec<Input>, IngestError> {
    let (inputs, unknown) = resolve_reporting(patterns, format)?;
    match unknown.first() {
        Some(path) => Err(unknown_format(path)),
        None => Ok(inputs),
    }
}

fn unknown_format(path: &Path) -> IngestError {
    IngestError::Input(format!(
        "{}: cannot tell the format from the name (known: .warc[.gz], .wet, .parquet, .tsv, .txt, docword.*); pass --format to read it anyway",
        path.display()
    ))
}

/// [`resolve`], but files matched by a glob whose format is unknown are returned apart (for the
/// caller to report) instead of failing the run; a named file of unknown format still fails.
pub fn resolve_reporting(
    patterns: &[String],
    format: Option<Format>,
) -> Result<(Vec<Input>, Vec<PathBuf>), IngestError> {
    if patterns.is_empty() {
        return Err(IngestError::Input(
            "list is empty: give at least one file, directory or glob".into(),
        ));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut globbed = std::collections::HashSet::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        if pattern == STDIN || path.exists() {
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
            globbed.extend(found.iter().cloned());
            paths.append(&mut found);
        } else {
            return Err(IngestError::Input(format!(
                "{pattern}: no such file or directory"
            )));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    let mut unknown = Vec::new();
    let inputs = paths
        .into_iter()
        .filter_map(|path| {
            if path.as_os_str() == STDIN {
                let format = match format {
                    None | Some(Format::Lines) => Format::Lines,
                    Some(Format::Tsv) => Format::Tsv,
                    Some(other) => {
                        return Some(Err(IngestError::Input(format!(
                            "standard input can be read as lines or tsv, not {}",
                            other.name()
                        ))));
                    }
                };
                return Some(Ok(Input {
                    path,
                    format,
                    bytes: 0,
                }));
            }
            let Some(format) = format.or_else(|| Format::detect(&path)) else {
                if globbed.contains(&path) {
                    unknown.push(path);
                    return None;
                }
                return Some(Err(unknown_format(&path)));
            };
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => return Some(Err(IngestError::io(&path, e))),
            };
            if meta.is_dir() && !matches!(format, Format::Dir) {
                return Some(Err(IngestError::Input(format!(
                    "{}: is a directory, but the format is {}",
                    path.display(),
                    format.name()
                ))));
            }
            Some(Ok(Input {
                bytes: if meta.is_file() { meta.len() } else { 0 },
                path,
                format,
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((inputs, unknown))
}
