//! The limits of `glint-lda server`, from its flags and an optional JSON config file
//! (`--config FILE`): a flag given on the command line wins over the file, the file over the
//! built-in default. Unknown keys in the file are an error, so a typo cannot silently leave a
//! limit at its default.
//!
//! ```json
//! { "max_request_elements": 16777216, "max_model_mb": 4096, "max_models": 1024,
//!   "writer_idle_secs": 3600, "dedup_window": 65536, "max_message_mb": 64, "max_memory_mb": 8192,
//!   "lock_stripes": 64 }
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use ps_core::Limits;
use serde::Deserialize;

/// The settings a config file may hold; each is also a flag of the same name.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub max_request_elements: Option<usize>,
    pub max_model_mb: Option<u64>,
    pub max_models: Option<usize>,
    pub writer_idle_secs: Option<u64>,
    pub dedup_window: Option<usize>,
    pub max_message_mb: Option<usize>,
    pub max_memory_mb: Option<u64>,
    pub lock_stripes: Option<usize>,
}

/// The most lock stripes a partition may be configured with.
const MAX_LOCK_STRIPES: usize = 4096;

impl ServerSettings {
    /// Reads a config file.
    pub fn read(path: &Path) -> anyhow::Result<ServerSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the server config {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing the server config {}", path.display()))
    }

    /// `self` (the flags) over `file` over the defaults, validated.
    pub fn resolve(&self, file: &ServerSettings) -> anyhow::Result<(Limits, usize)> {
        let d = Limits::default();
        let limits = Limits {
            max_request_elements: self
                .max_request_elements
                .or(file.max_request_elements)
                .unwrap_or(d.max_request_elements),
            max_partition_bytes: self
                .max_model_mb
                .or(file.max_model_mb)
                .map_or(d.max_partition_bytes, |mb| mb.saturating_mul(1 << 20)),
            max_models: self.max_models.or(file.max_models).unwrap_or(d.max_models),
            writer_idle_expiry: match self.writer_idle_secs.or(file.writer_idle_secs) {
                Some(0) => None,
                Some(secs) => Some(Duration::from_secs(secs)),
                None => d.writer_idle_expiry,
            },
            dedup_window: self
                .dedup_window
                .or(file.dedup_window)
                .unwrap_or(d.dedup_window),
            max_memory_bytes: self
                .max_memory_mb
                .or(file.max_memory_mb)
                .map(|mb| mb.saturating_mul(1 << 20)),
            lock_stripes: self
                .lock_stripes
                .or(file.lock_stripes)
                .unwrap_or(d.lock_stripes),
        };
        let max_message_mb = self.max_message_mb.or(file.max_message_mb).unwrap_or(64);
        // gRPC frames carry a 32-bit length, so no message can exceed 4 GiB.
        if !(1..4096).contains(&max_message_mb) {
            bail!("max_message_mb must be between 1 and 4095, not {max_message_mb}");
        }
        for (name, value) in [
            ("max_request_elements", limits.max_request_elements),
            ("max_models", limits.max_models),
            ("dedup_window", limits.dedup_window),
            ("lock_stripes", limits.lock_stripes),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // Element counts and positions travel as 32-bit numbers on the wire.
        if limits.max_request_elements > u32::MAX as usize {
            bail!(
                "max_request_elements must be at most {}, not {}",
                u32::MAX,
                limits.max_request_elements
            );
        }
        // Beyond a few thousand stripes a partition spends more on lock headers than it gains.
        if limits.lock_stripes > MAX_LOCK_STRIPES {
            bail!(
                "lock_stripes must be at most {MAX_LOCK_STRIPES}, not {}",
                limits.lock_stripes
            );
        }
        if limits.max_memory_bytes == Some(0) {
            bail!("max_memory_mb must be at least 1");
        }
        if limits.max_partition_bytes == 0 {
            bail!("max_model_mb must be at least 1");
        }
        Ok((limits, max_message_mb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: ServerSettings =
            serde_json::from_str(r#"{"max_models": 7, "dedup_window": 99, "writer_idle_secs": 0}"#)
                .unwrap();
        let flags = ServerSettings {
            max_models: Some(3),
            ..ServerSettings::default()
        };
        let (limits, mb) = flags.resolve(&file).unwrap();
        assert_eq!(limits.max_models, 3);
        assert_eq!(limits.dedup_window, 99);
        assert_eq!(limits.writer_idle_expiry, None);
        assert_eq!(
            limits.max_request_elements,
            Limits::default().max_request_elements
        );
        assert_eq!(mb, 64);
    }

    #[test]
    fn out_of_range_stripes_and_request_sizes_are_errors() {
        for (flags, word) in [
            (
                ServerSettings {
                    lock_stripes: Some(MAX_LOCK_STRIPES + 1),
                    ..ServerSettings::default()
                },
                "lock_stripes",
            ),
            (
                ServerSettings {
                    max_request_elements: Some(u32::MAX as usize + 1),
                    ..ServerSettings::default()
                },
                "max_request_elements",
            ),
        ] {
            let err = flags.resolve(&ServerSettings::default()).unwrap_err();
            assert!(err.to_string().contains(word), "{err}");
        }
        let most = ServerSettings {
            lock_stripes: Some(MAX_LOCK_STRIPES),
            ..ServerSettings::default()
        };
        assert!(most.resolve(&ServerSettings::default()).is_ok());
    }

    #[test]
    fn typos_and_zeros_are_errors() {
        assert!(serde_json::from_str::<ServerSettings>(r#"{"max_model": 1}"#).is_err());
        let zero = ServerSettings {
            dedup_window: Some(0),
            ..ServerSettings::default()
        };
        let err = zero
            .resolve(&ServerSettings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("dedup_window"), "{err}");
        let huge = ServerSettings {
            max_message_mb: Some(5000),
            ..ServerSettings::default()
        };
        assert!(huge.resolve(&ServerSettings::default()).is_err());
    }
}
