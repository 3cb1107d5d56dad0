//! Where a run writes: a staging directory beside `--out`, swapped in by rename only when the run
//! succeeded, so a failed, interrupted or empty run leaves an existing corpus untouched.
//!
//! The swap is two renames (old corpus aside, new corpus in) followed by a sync of the parent
//! directory; between them the old corpus is still complete under its aside name, so nothing is
//! lost even by a crash at that instant. An existing `--out` that is not a glint-lda corpus (no
//! `manifest.json`) and not empty is never replaced.

use std::path::{Path, PathBuf};

use datasets::MANIFEST_FILE;

use crate::IngestError;

/// A staging directory for the corpus that will replace `target`.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    dir: PathBuf,
    committed: bool,
}

fn sibling(target: &Path, tag: &str) -> Result<PathBuf, IngestError> {
    let name = target.file_name().ok_or_else(|| {
        IngestError::Config(format!(
            "{}: the output must name a directory",
            target.display()
        ))
    })?;
    let mut name = name.to_os_string();
    name.push(format!(".{tag}-{}", std::process::id()));
    Ok(target.with_file_name(name))
}

impl Staging {
    /// Checks `target` and creates a fresh staging directory beside it.
    pub fn create(target: &Path) -> Result<Staging, IngestError> {
        match std::fs::metadata(target) {
            Ok(meta) if !meta.is_dir() => {
                return Err(IngestError::Config(format!(
                    "{}: exists and is not a directory",
                    target.display()
                )));
            }
            Ok(_) => {
                let is_corpus = target.join(MANIFEST_FILE).is_file();
                let is_empty = std::fs::read_dir(target)
                    .map_err(|e| IngestError::io(target, e))?
                    .next()
                    .is_none();
                if !is_corpus && !is_empty {
                    return Err(IngestError::Config(format!(
                        "{}: exists, is not empty and is not a glint-lda corpus (no {MANIFEST_FILE}); refusing to replace it",
                        target.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IngestError::io(target, e)),
        }
        let dir = sibling(target, "ingest-new")?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| IngestError::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| IngestError::io(&dir, e))?;
        Ok(Staging {
            target: target.to_path_buf(),
            dir,
            committed: false,
        })
    }

    /// The directory the run writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces `target` by the staged corpus.
    pub fn commit(mut self) -> Result<(), IngestError> {
        let aside = sibling(&self.target, "ingest-old")?;
        let had_old = self.target.exists();
        if had_old {
            std::fs::rename(&self.target, &aside).map_err(|e| IngestError::io(&self.target, e))?;
        }
        if let Err(e) = std::fs::rename(&self.dir, &self.target) {
            if had_old {
                // Put the old corpus back: the new one stays in the staging directory.
                let _ = std::fs::rename(&aside, &self.target);
            }
            return Err(IngestError::io(&self.target, e));
        }
        let parent = match self.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        datasets::sync_dir(&parent)?;
        if had_old && let Err(e) = std::fs::remove_dir_all(&aside) {
            tracing::warn!(
                "could not remove the replaced corpus {}: {e}",
                aside.display()
            );
        }
        // The staging directory is now the target: nothing left to clean up.
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    /// A run that did not commit leaves nothing behind.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("corpus");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(MANIFEST_FILE), "old").unwrap();
        let staged = Staging::create(&out).unwrap();
        std::fs::write(staged.dir().join(MANIFEST_FILE), "new").unwrap();
        drop(staged);
        // Not committed: the old corpus is intact and no staging directory is left.
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let staged = Staging::create(&out).unwrap();
        std::fs::write(staged.dir().join(MANIFEST_FILE), "new").unwrap();
        staged.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap(),
            "new"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_to_replace_a_directory_that_is_not_a_corpus() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = Staging::create(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not a glint-lda corpus"), "{err}");
        let file = tmp.path().join("notes.txt");
        assert!(Staging::create(&file).is_err());
    }
}
