//! A server's side of liveness: registering with the master, keeping its shard index across
//! restarts, and heartbeats.
//!
//! A server with a data directory keeps the index the master gave it, with the master's cluster
//! identity, in [`SHARD_ID_FILE`] there (replaced atomically and fsynced). Restarted with that
//! directory, it claims the index again, from whatever address it now has, so the models
//! placed on that index find their shard again (their data comes back from a snapshot). Every
//! heartbeat is the same claim: a master that restarted without its registry relearns the
//! server's index from it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ps_core::master::{Master, MasterConfig};
//! use ps_core::registration::Registration;
//! use ps_core::transport::InProcessMaster;
//!
//! // A zero server timeout: a holder counts as gone at once (here, the "killed" first server).
//! let config = MasterConfig { server_timeout: Duration::ZERO, ..MasterConfig::default() };
//! let master = InProcessMaster::new(Arc::new(Master::open(config)?));
//! let dir = tempfile::tempdir()?;
//! let id = Registration::new("10.0.0.7:7071").with_data_dir(dir.path()).register(&master).await?;
//! // Restarted with the same directory on another address: the same index.
//! let again = Registration::new("10.0.0.8:7071").with_data_dir(dir.path());
//! assert_eq!(again.register(&master).await?, id);
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{PsError, Result};
use crate::master::{MasterRequest, MasterResponse};
use crate::transport::Coordinator;

/// The file in a server's data directory that holds its shard index.
pub const SHARD_ID_FILE: &str = "shard-id.json";
/// Format version of [`SHARD_ID_FILE`].
const VERSION: u32 = 1;

/// A server's shard index and the identity of the cluster whose master gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIdentity {
    pub shard: u32,
    pub cluster: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u32,
    shard: u32,
    cluster: String,
}

impl ShardIdentity {
    /// The identity kept in `data_dir`, `None` if there is none yet.
    pub fn read(data_dir: &Path) -> Result<Option<ShardIdentity>> {
        let path = data_dir.join(SHARD_ID_FILE);
        let bad = |message: String| {
            PsError::Server(format!("shard identity {}: {message}", path.display()))
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let file: IdentityFile = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a shard identity file: {e}")))?;
        if file.version != VERSION {
            return Err(bad(format!(
                "format version {} (this server reads {VERSION})",
                file.version
            )));
        }
        Ok(Some(ShardIdentity {
            shard: file.shard,
            cluster: file.cluster,
        }))
    }

    /// Keeps this identity in `data_dir`, atomically and durably: a crash leaves the old file
    /// or the new one.
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(SHARD_ID_FILE);
        let file = IdentityFile {
            version: VERSION,
            shard: self.shard,
            cluster: self.cluster.clone(),
        };
        let failed =
            |e: &dyn std::fmt::Display| PsError::Server(format!("writing {}: {e}", path.display()));
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| failed(&e))?;
        bytes.push(b'\n');
        std::fs::create_dir_all(data_dir).map_err(|e| failed(&e))?;
        crate::durable::write_atomic(&path, &bytes).map_err(|e| failed(&e))
    }
}

/// How a server registers with the master.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The address clients dial to reach this server.
    pub addr: String,
    /// Where the shard index is kept across restarts ([`SHARD_ID_FILE`]); `None`: a new index
    /// at every start, as before liveness.
    pub data_dir: Option<PathBuf>,
    /// How long [`Registration::register`] keeps trying while the master is unreachable or the
    /// claimed index is still held by a predecessor at another address that has not yet missed
    /// its heartbeats for the master's server timeout.
    pub patience: Duration,
    /// Time allowed for one call to the master.
    pub timeout: Duration,
    /// Pause between attempts.
    pub retry_every: Duration,
}

impl Registration {
    pub fn new(addr: impl Into<String>) -> Self {
        Registration {
            addr: addr.into(),
            data_dir: None,
            patience: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retry_every: Duration::from_millis(200),
        }
    }

    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Registers with the master: as the index kept in the data directory if there is one,
    /// else as a new server (then keeping the index it gets). Fails at once on a refusal other
    /// than [`PsError::ShardHeld`]; that one, and an unreachable master, are retried for
    /// `patience`, and the last error is returned after it.
    pub async fn register(&self, master: &dyn Coordinator) -> Result<ShardIdentity> {
        let stored = match &self.data_dir {
            Some(dir) => ShardIdentity::read(dir)?,
            None => None,
        };
        if let Some(id) = &stored {
            tracing::info!(
                shard = id.shard,
                cluster = id.cluster,
                addr = self.addr,
                "claiming the shard index kept in the data directory"
            );
        }
        let start = Instant::now();
        let mut waiting = false;
        loop {
            let error = match self.send(master, stored.as_ref()).await {
                Ok(id) => {
                    if let (Some(dir), true) = (&self.data_dir, stored.as_ref() != Some(&id)) {
                        id.write(dir)?;
                    }
                    return Ok(id);
                }
                Err(e @ PsError::ShardHeld { .. }) => {
                    if !waiting {
                        tracing::warn!(error = %e, "waiting for the index's holder to miss its heartbeats");
                        waiting = true;
                    }
                    e
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            if start.elapsed() >= self.patience {
                return Err(error);
            }
            tokio::time::sleep(self.retry_every).await;
        }
    }

    /// One registration (or heartbeat): claims `id` if given.
    async fn send(
        &self,
        master: &dyn Coordinator,
        id: Option<&ShardIdentity>,
    ) -> Result<ShardIdentity> {
        let request = MasterRequest::Register {
            addr: self.addr.clone(),
            shard: id.map(|id| id.shard),
            cluster: id.map(|id| id.cluster.clone()),
        };
        match tokio::time::timeout(self.timeout, master.call(request)).await {
            Ok(Ok(MasterResponse::Registered { shard, cluster })) => {
                // A claim is answered with its own index or refused; anything else is a bug.
                if let Some(id) = id
                    && id.shard != shard
                {
                    return Err(PsError::Master(format!(
                        "{} claimed shard {} but the master answered shard {shard}",
                        self.addr, id.shard
                    )));
                }
                Ok(ShardIdentity { shard, cluster })
            }
            Ok(Ok(other)) => Err(PsError::Master(format!(
                "unexpected answer {other:?} to a registration"
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PsError::Transient(format!(
                "the master did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// Sends a heartbeat (the claim of `id` from this address) every `interval`, forever: an
    /// unreachable master is logged and tried again at the next beat. Returns only when the
    /// master refuses the claim because another live server holds the index or the master
    /// runs another cluster: this server has been replaced and should stop serving, so that
    /// clients do not split between two servers of one shard.
    pub async fn heartbeats(
        &self,
        master: &dyn Coordinator,
        id: &ShardIdentity,
        interval: Duration,
    ) -> PsError {
        let mut failing = false;
        loop {
            tokio::time::sleep(interval).await;
            match self.send(master, Some(id)).await {
                Ok(_) => {
                    if failing {
                        tracing::info!(shard = id.shard, "heartbeats reach the master again");
                        failing = false;
                    }
                }
                Err(e @ (PsError::ShardHeld { .. } | PsError::ForeignCluster { .. })) => {
                    return e;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(shard = id.shard, error = %e, "heartbeat failed; retrying every interval");
                        failing = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::master::{Master, MasterConfig};
    use crate::transport::InProcessMaster;

    fn master(timeout: Duration) -> InProcessMaster {
        let config = MasterConfig {
            server_timeout: timeout,
            ..MasterConfig::default()
        };
        InProcessMaster::new(Arc::new(Master::open(config).unwrap()))
    }

    fn quick(addr: &str, dir: &Path) -> Registration {
        Registration {
            patience: Duration::from_millis(300),
            retry_every: Duration::from_millis(20),
            ..Registration::new(addr).with_data_dir(dir)
        }
    }

    #[tokio::test]
    async fn the_index_survives_a_restart_on_another_address() {
        let m = master(Duration::from_millis(100));
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = quick("h:1", a.path()).register(&m).await.unwrap();
        let second = quick("h:2", b.path()).register(&m).await.unwrap();
        assert_eq!((first.shard, second.shard), (0, 1));
        assert_eq!(ShardIdentity::read(a.path()).unwrap(), Some(first.clone()));
        // "h:1" dies; after the timeout its successor on "h:9" takes index 0 back.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let back = quick("h:9", a.path()).register(&m).await.unwrap();
        assert_eq!(back, first);
        assert_eq!(
            m.call(MasterRequest::Servers).await.unwrap(),
            MasterResponse::Servers(vec!["h:9".into(), "h:2".into()])
        );
        // Without a data directory a restart is a new server.
        let fresh = Registration::new("h:3").register(&m).await.unwrap();
        assert_eq!(fresh.shard, 2);
    }

    #[tokio::test]
    async fn a_live_holder_keeps_its_index_and_the_claimant_is_told_why() {
        let m = master(Duration::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        quick("h:1", dir.path()).register(&m).await.unwrap();
        let err = quick("h:2", dir.path()).register(&m).await.unwrap_err();
        assert!(
            matches!(&err, PsError::ShardHeld { shard: 0, holder, claimant, .. }
                if holder == "h:1" && claimant == "h:2"),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("h:1") && text.contains("h:2"), "{text}");
        // The refused claim changed nothing.
        assert_eq!(
            m.call(MasterRequest::Servers).await.unwrap(),
            MasterResponse::Servers(vec!["h:1".into()])
        );
    }

    #[tokio::test]
    async fn a_bad_identity_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SHARD_ID_FILE), b"{\"shard\": 1}").unwrap();
        let err = quick("h:1", dir.path())
            .register(&master(Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(SHARD_ID_FILE), "{err}");
    }
}
