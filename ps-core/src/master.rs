//! The master: a registry of servers (shards) and of models. It holds no model data; clients ask it
//! where things are, then talk to the shards directly.
//!
//! It also keeps a small bounded board of entries (string key → bytes) for coordination records
//! such as the job description a driver publishes for workers on other machines; see
//! [`MAX_ENTRIES`], [`MAX_ENTRY_KEY_BYTES`] and [`MAX_ENTRY_VALUE_BYTES`].
//!
//! Liveness: a shard index, once given, belongs to that server for good. A server re-registers
//! as its index ([`MasterRequest::Register`] with `shard`) after a restart (its `--data-dir`
//! keeps the index, see [`crate::registration`]) and every heartbeat interval; the master then
//! records the address it came from, so a server may come back on a new address. A claim is
//! refused while the index's holder at another address is alive (heard from within
//! [`MasterConfig::server_timeout`]): [`PsError::ShardHeld`]. Each master has a cluster identity;
//! a claim carrying another cluster's identity is refused ([`PsError::ForeignCluster`]), except
//! by a master without a data directory that has heard from no server since it started: it
//! adopts the identity of the first claim (its own restart forgot it).
//!
//! With [`MasterConfig::data_dir`] the registry (cluster identity, server addresses, models and
//! entries) is written to [`REGISTRY_FILE`] on every change, before the change is answered, and
//! read back at start. Without it, a restarted master relearns its servers from their
//! heartbeats but has forgotten every model and entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{PsError, Result};
use crate::spec::ModelSpec;

/// A model as the master records it: its spec and over how many shards it is partitioned
/// (the first `shards` registered servers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub spec: ModelSpec,
    pub shards: u32,
}

/// Longest entry key, in bytes (keys must also be non-empty).
pub const MAX_ENTRY_KEY_BYTES: usize = 256;
/// Largest entry value, in bytes (1 MiB): entries are coordination records, not model data.
pub const MAX_ENTRY_VALUE_BYTES: usize = 1 << 20;
/// Most entries the master holds; a put of a new key beyond it is refused (overwrites are not).
pub const MAX_ENTRIES: usize = 1024;
/// Most shard indices a master gives out or accepts in a claim.
pub const MAX_SERVERS: u32 = 1 << 16;
/// The registry's file in the master's data directory.
pub const REGISTRY_FILE: &str = "registry.json";
/// How long a server may go unheard before it counts as gone, by default: three heartbeats of
/// a server's default interval.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest server address accepted.
const MAX_ADDR_BYTES: usize = 512;
/// Version of [`REGISTRY_FILE`]'s format.
const REGISTRY_VERSION: u32 = 1;

/// How a master runs.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Where the registry is persisted ([`REGISTRY_FILE`]); `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// A server unheard for this long is not alive: listed so, and its index may be claimed
    /// by a server at another address. Should be a few of the servers' heartbeat intervals.
    pub server_timeout: Duration,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            data_dir: None,
            server_timeout: DEFAULT_SERVER_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MasterRequest {
    /// A server announces itself, and again every heartbeat interval. Without `shard` it gets
    /// a new index (registering the same address again returns the same index). With `shard`
    /// it claims that index, given to it earlier by the master of cluster `cluster`: the
    /// master records `addr` as the index's address (see the module documentation for when a
    /// claim is refused). Build the first kind with [`MasterRequest::register`].
    Register {
        addr: String,
        shard: Option<u32>,
        cluster: Option<String>,
    },
    /// Addresses by shard index (an empty one: an index claimed beyond the others whose
    /// servers have not re-registered yet).
    Servers,
    /// Every server with the time since its last heartbeat: answered with `Status`.
    Status,
    /// Record a new model over `shards` shards; fails if the name is taken.
    CreateModel {
        spec: ModelSpec,
        shards: u32,
    },
    GetModel {
        name: String,
    },
    ListModels,
    RemoveModel {
        name: String,
    },
    /// Store `value` under `key`, replacing any earlier value (so a retry is harmless).
    PutEntry {
        key: String,
        value: Vec<u8>,
    },
    /// Answered with `Entry(None)` when no value is stored under `key`.
    GetEntry {
        key: String,
    },
    /// Removing a missing key succeeds (a harmless retry).
    RemoveEntry {
        key: String,
    },
}

impl MasterRequest {
    /// The registration of a new server at `addr` (no claimed index).
    pub fn register(addr: impl Into<String>) -> Self {
        MasterRequest::Register {
            addr: addr.into(),
            shard: None,
            cluster: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MasterResponse {
    /// The server's index, and the master's cluster identity (which a server keeps with it).
    Registered {
        shard: u32,
        cluster: String,
    },
    Servers(Vec<String>),
    Status(ClusterStatus),
    Model(ModelRecord),
    Models(Vec<ModelRecord>),
    /// The value of an entry, `None` if the key holds none.
    Entry(Option<Vec<u8>>),
    Done,
}

/// The servers of a cluster as its master sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// The master's cluster identity.
    pub cluster: String,
    /// A server unheard for this long is not alive.
    pub server_timeout: Duration,
    /// By shard index.
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerStatus {
    pub shard: u32,
    /// `None`: an index no server has re-registered as yet (see [`MasterRequest::Servers`]).
    pub addr: Option<String>,
    /// Time since the server's last registration or heartbeat; `None` if the master has not
    /// heard from it since it started (a registry read from its data directory).
    pub last_seen: Option<Duration>,
    /// Heard from within the server timeout.
    pub alive: bool,
}

/// One shard index: the address of its server, and when that server was last heard from.
#[derive(Debug, Clone)]
struct Slot {
    addr: Option<String>,
    last_seen: Option<Instant>,
    /// Logged as silent since it was last heard from (so it is logged once).
    silent: bool,
}

impl Slot {
    fn heard(addr: String, now: Instant) -> Self {
        Slot {
            addr: Some(addr),
            last_seen: Some(now),
            silent: false,
        }
    }

    fn vacant() -> Self {
        Slot {
            addr: None,
            last_seen: None,
            silent: false,
        }
    }
}

#[derive(Debug)]
struct Registry {
    cluster: String,
    /// Whether `cluster` is fixed. Only a master without a data directory that has heard from
    /// no server yet is unsettled: it may have been restarted, and adopts the cluster of the
    /// first claim.
    settled: bool,
    servers: Vec<Slot>,
    models: BTreeMap<String, ModelRecord>,
    entries: BTreeMap<String, Vec<u8>>,
}

impl Registry {
    fn new(settled: bool) -> Self {
        Registry {
            cluster: format!("{:016x}", crate::client::random_id()),
            settled,
            servers: Vec::new(),
            models: BTreeMap::new(),
            entries: BTreeMap::new(),
        }
    }
}

/// The registry state. A short `std::sync::Mutex` is enough: every operation is a few map lookups
/// (plus, with a data directory, one small file write per change) and the master sees a handful
/// of requests per model and per heartbeat, not per update.
#[derive(Debug)]
pub struct Master {
    registry: Mutex<Registry>,
    /// The registry file, with a data directory.
    file: Option<PathBuf>,
    server_timeout: Duration,
    /// Servers not heard from since the master started count as heard from at its start, so
    /// that their indices are not given away before they had a chance to send a heartbeat.
    started: Instant,
}

impl Default for Master {
    fn default() -> Self {
        Master::new()
    }
}

impl Master {
    /// A master with its registry in memory only and the default server timeout.
    pub fn new() -> Self {
        Master {
            registry: Mutex::new(Registry::new(false)),
            file: None,
            server_timeout: DEFAULT_SERVER_TIMEOUT,
            started: Instant::now(),
        }
    }

    /// A master with `config`: with a data directory, the registry is read from it (or, the first
    /// time, created there with a new cluster identity).
    pub fn open(config: MasterConfig) -> Result<Self> {
        let (registry, file) = match &config.data_dir {
            None => (Registry::new(false), None),
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    PsError::Master(format!(
                        "creating the data directory {}: {e}",
                        dir.display()
                    ))
                })?;
                let path = dir.join(REGISTRY_FILE);
                let registry = match std::fs::read(&path) {
                    Ok(bytes) => read_registry(&path, &bytes)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let registry = Registry::new(true);
                        // Written now: the cluster identity must outlive the first answer.
                        write_registry(&path, &registry)?;
                        registry
                    }
                    Err(e) => {
                        return Err(PsError::Master(format!(
                            "reading the registry {}: {e}",
                            path.display()
                        )));
                    }
                };
                tracing::info!(
                    path = %path.display(),
                    cluster = registry.cluster,
                    servers = registry.servers.len(),
                    models = registry.models.len(),
                    entries = registry.entries.len(),
                    "registry loaded"
                );
                (registry, Some(path))
            }
        };
        Ok(Master {
            registry: Mutex::new(registry),
            file,
            server_timeout: config.server_timeout,
            started: Instant::now(),
        })
    }

    /// The cluster identity servers keep with their index.
    pub fn cluster(&self) -> String {
        self.lock().cluster.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the registry, with a data directory; called under the lock after each change,
    /// which the caller undoes if this fails (so memory never holds what the file does not).
    fn persist(&self, reg: &Registry) -> Result<()> {
        match &self.file {
            Some(path) => write_registry(path, reg),
            None => Ok(()),
        }
    }

    /// Servers that have gone silent (unheard for the server timeout) since the last sweep;
    /// each is returned once until it is heard from again. For logging.
    pub fn sweep(&self) -> Vec<ServerStatus> {
        let now = Instant::now();
        let mut reg = self.lock();
        let mut silent = Vec::new();
        for (shard, slot) in reg.servers.iter_mut().enumerate() {
            let age = now.saturating_duration_since(slot.last_seen.unwrap_or(self.started));
            if slot.addr.is_some() && !slot.silent && age >= self.server_timeout {
                slot.silent = true;
                silent.push(ServerStatus {
                    shard: shard as u32,
                    addr: slot.addr.clone(),
                    last_seen: slot.last_seen.map(|t| now.saturating_duration_since(t)),
                    alive: false,
                });
            }
        }
        silent
    }

    pub fn handle(&self, request: MasterRequest) -> Result<MasterResponse> {
        let mut reg = self.lock();
        match request {
            MasterRequest::Register {
                addr,
                shard,
                cluster,
            } => {
                if addr.is_empty() || addr.len() > MAX_ADDR_BYTES {
                    return Err(PsError::InvalidRequest(format!(
                        "bad server address '{addr}'"
                    )));
                }
                let shard = match shard {
                    None => self.register_new(&mut reg, addr)?,
                    Some(shard) => {
                        self.claim(&mut reg, addr, shard, cluster.filter(|c| !c.is_empty()))?
                    }
                };
                Ok(MasterResponse::Registered {
                    shard,
                    cluster: reg.cluster.clone(),
                })
            }
            MasterRequest::Servers => Ok(MasterResponse::Servers(
                reg.servers
                    .iter()
                    .map(|s| s.addr.clone().unwrap_or_default())
                    .collect(),
            )),
            MasterRequest::Status => {
                let now = Instant::now();
                let servers = reg
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(shard, slot)| {
                        let last_seen = slot.last_seen.map(|t| now.saturating_duration_since(t));
                        ServerStatus {
                            shard: shard as u32,
                            addr: slot.addr.clone(),
                            last_seen,
                            alive: slot.addr.is_some()
                                && last_seen.is_some_and(|d| d < self.server_timeout),
                        }
                    })
                    .collect();
                Ok(MasterResponse::Status(ClusterStatus {
                    cluster: reg.cluster.clone(),
                    server_timeout: self.server_timeout,
                    servers,
                }))
            }
            MasterRequest::CreateModel { spec, shards } => {
                spec.validate()?;
                if shards == 0 || shards as usize > reg.servers.len() {
                    return Err(PsError::Master(format!(
                        "model '{}' wants {shards} shards but {} servers are registered",
                        spec.name,
                        reg.servers.len()
                    )));
                }
                if let Some(vacant) = reg.servers[..shards as usize]
                    .iter()
                    .position(|s| s.addr.is_none())
                {
                    return Err(PsError::Master(format!(
                        "model '{}' wants {shards} shards but shard {vacant} has not \
                         re-registered yet",
                        spec.name
                    )));
                }
                if let Some(existing) = reg.models.get(&spec.name) {
                    // The same request again (its first reply may have been lost): success.
                    if existing.spec == spec && existing.shards == shards {
                        return Ok(MasterResponse::Model(existing.clone()));
                    }
                    return Err(PsError::ModelExists(describe_difference(
                        &existing.spec,
                        existing.shards,
                        &spec,
                        shards,
                    )));
                }
                let record = ModelRecord { spec, shards };
                let name = record.spec.name.clone();
                reg.models.insert(name.clone(), record.clone());
                if let Err(e) = self.persist(&reg) {
                    reg.models.remove(&name);
                    return Err(e);
                }
                Ok(MasterResponse::Model(record))
            }
            MasterRequest::GetModel { name } => reg
                .models
                .get(&name)
                .cloned()
                .map(MasterResponse::Model)
                .ok_or(PsError::UnknownModel(name)),
            MasterRequest::ListModels => Ok(MasterResponse::Models(
                reg.models.values().cloned().collect(),
            )),
            // Removing a model that is already gone is a harmless retry.
            MasterRequest::RemoveModel { name } => {
                if let Some(old) = reg.models.remove(&name)
                    && let Err(e) = self.persist(&reg)
                {
                    reg.models.insert(name, old);
                    return Err(e);
                }
                Ok(MasterResponse::Done)
            }
            MasterRequest::PutEntry { key, value } => {
                check_entry(&key, Some(&value))?;
                let count = reg.entries.len();
                if !reg.entries.contains_key(&key) && count >= MAX_ENTRIES {
                    return Err(PsError::InvalidRequest(format!(
                        "entry {}: the master already holds the limit of {MAX_ENTRIES} \
                         entries (remove one first)",
                        shown_key(&key)
                    )));
                }
                let bytes = value.len();
                let old = reg.entries.insert(key.clone(), value);
                if old.is_none() {
                    tracing::debug!(key = %shown_key(&key), bytes, "entry added");
                }
                if let Err(e) = self.persist(&reg) {
                    match old {
                        Some(old) => reg.entries.insert(key, old),
                        None => reg.entries.remove(&key),
                    };
                    return Err(e);
                }
                Ok(MasterResponse::Done)
            }
            MasterRequest::GetEntry { key } => {
                check_entry(&key, None)?;
                Ok(MasterResponse::Entry(reg.entries.get(&key).cloned()))
            }
            MasterRequest::RemoveEntry { key } => {
                check_entry(&key, None)?;
                if let Some(old) = reg.entries.remove(&key)
                    && let Err(e) = self.persist(&reg)
                {
                    reg.entries.insert(key, old);
                    return Err(e);
                }
                Ok(MasterResponse::Done)
            }
        }
    }

    /// A server without an index: the index of its address if it has one, else a new one.
    fn register_new(&self, reg: &mut Registry, addr: String) -> Result<u32> {
        let now = Instant::now();
        reg.settled = true;
        if let Some(i) = reg
            .servers
            .iter()
            .position(|s| s.addr.as_deref() == Some(addr.as_str()))
        {
            heard_from(&mut reg.servers[i], i, now);
            tracing::info!(%addr, shard = i, "server registered again");
            return Ok(i as u32);
        }
        if reg.servers.len() >= MAX_SERVERS as usize {
            return Err(PsError::Master(format!(
                "{addr}: the master already holds the limit of {MAX_SERVERS} servers"
            )));
        }
        reg.servers.push(Slot::heard(addr.clone(), now));
        if let Err(e) = self.persist(reg) {
            reg.servers.pop();
            return Err(e);
        }
        let shard = reg.servers.len() - 1;
        tracing::info!(%addr, shard, "server registered");
        Ok(shard as u32)
    }

    /// A server claiming index `shard`: a heartbeat when it holds it at `addr` already, a
    /// takeover of the index (a restart, perhaps on a new address) when its holder is gone.
    fn claim(
        &self,
        reg: &mut Registry,
        addr: String,
        shard: u32,
        cluster: Option<String>,
    ) -> Result<u32> {
        let now = Instant::now();
        if shard >= MAX_SERVERS {
            return Err(PsError::InvalidRequest(format!(
                "{addr} claims shard {shard}, beyond the limit of {MAX_SERVERS} servers"
            )));
        }
        if let Some(claimed) = cluster
            && claimed != reg.cluster
        {
            if reg.settled {
                return Err(PsError::ForeignCluster {
                    shard,
                    claimant: addr,
                    claimed,
                    cluster: reg.cluster.clone(),
                });
            }
            // A master without a data directory has no memory of its cluster: the first server
            // to come back tells it (its other servers then agree).
            tracing::info!(%addr, shard, cluster = claimed, "adopting the cluster identity of a re-registering server");
            reg.cluster = claimed;
        }
        reg.settled = true;
        let index = shard as usize;
        if let Some(slot) = reg.servers.get_mut(index) {
            match &slot.addr {
                Some(holder) if *holder == addr => {
                    heard_from(slot, index, now);
                    return Ok(shard);
                }
                Some(holder) => {
                    let age = now.saturating_duration_since(slot.last_seen.unwrap_or(self.started));
                    if age < self.server_timeout {
                        return Err(PsError::ShardHeld {
                            shard,
                            holder: holder.clone(),
                            claimant: addr,
                            last_seen_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                        });
                    }
                }
                None => {}
            }
        }
        let before = reg.servers.clone();
        if reg.servers.len() <= index {
            if reg.servers.len() < index {
                tracing::warn!(
                    %addr,
                    shard,
                    registered = reg.servers.len(),
                    "a server claims an index beyond the registered ones; the indices between \
                     stay vacant until their servers re-register"
                );
            }
            reg.servers.resize_with(index + 1, Slot::vacant);
        }
        let previous = std::mem::replace(&mut reg.servers[index], Slot::heard(addr.clone(), now));
        if let Err(e) = self.persist(reg) {
            reg.servers = before;
            return Err(e);
        }
        match previous.addr {
            Some(previous) => {
                tracing::info!(%addr, shard, %previous, "server took its index back at a new address");
            }
            None => tracing::info!(%addr, shard, "server re-registered under its index"),
        }
        Ok(shard)
    }
}

/// Records a registration or heartbeat of the server of `slot`.
fn heard_from(slot: &mut Slot, shard: usize, now: Instant) {
    if slot.silent {
        tracing::info!(
            addr = slot.addr.as_deref().unwrap_or(""),
            shard,
            "server heard from again"
        );
        slot.silent = false;
    }
    slot.last_seen = Some(now);
}

/// [`REGISTRY_FILE`]: everything but liveness (which the servers' heartbeats rebuild).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    cluster: String,
    servers: Vec<ServerRecord>,
    models: Vec<ModelRecord>,
    entries: Vec<EntryRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerRecord {
    shard: u32,
    addr: String,
}

/// An entry's value in hexadecimal: values are bytes, and JSON has no byte strings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRecord {
    key: String,
    value_hex: String,
}

fn write_registry(path: &Path, reg: &Registry) -> Result<()> {
    let file = RegistryFile {
        version: REGISTRY_VERSION,
        cluster: reg.cluster.clone(),
        servers: reg
            .servers
            .iter()
            .enumerate()
            .filter_map(|(shard, s)| {
                s.addr.as_ref().map(|addr| ServerRecord {
                    shard: shard as u32,
                    addr: addr.clone(),
                })
            })
            .collect(),
        models: reg.models.values().cloned().collect(),
        entries: reg
            .entries
            .iter()
            .map(|(key, value)| EntryRecord {
                key: key.clone(),
                value_hex: to_hex(value),
            })
            .collect(),
    };
    let failed = |e: &dyn std::fmt::Display| {
        PsError::Master(format!(
            "persisting the registry to {}: {e}",
            path.display()
        ))
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| failed(&e))?;
    crate::durable::write_atomic(path, &bytes).map_err(|e| failed(&e))
}

/// Reads and checks a registry file: it must be one this master could have written.
fn read_registry(path: &Path, bytes: &[u8]) -> Result<Registry> {
    let bad = |message: String| PsError::Master(format!("registry {}: {message}", path.display()));
    let file: RegistryFile =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a registry file: {e}")))?;
    if file.version != REGISTRY_VERSION {
        return Err(bad(format!(
            "format version {} (this master reads {REGISTRY_VERSION})",
            file.version
        )));
    }
    if file.cluster.is_empty() {
        return Err(bad("empty cluster identity".to_string()));
    }
    let mut registry = Registry {
        cluster: file.cluster,
        settled: true,
        servers: Vec::new(),
        models: BTreeMap::new(),
        entries: BTreeMap::new(),
    };
    for ServerRecord { shard, addr } in file.servers {
        if shard >= MAX_SERVERS {
            return Err(bad(format!(
                "shard {shard} is beyond the limit of {MAX_SERVERS}"
            )));
        }
        if addr.is_empty() || addr.len() > MAX_ADDR_BYTES {
            return Err(bad(format!("shard {shard} has a bad address '{addr}'")));
        }
        let index = shard as usize;
        if registry.servers.len() <= index {
            registry.servers.resize_with(index + 1, Slot::vacant);
        }
        let slot = &mut registry.servers[index];
        if slot.addr.is_some() {
            return Err(bad(format!("shard {shard} is listed twice")));
        }
        slot.addr = Some(addr);
    }
    for record in file.models {
        record
            .spec
            .validate()
            .map_err(|e| bad(format!("model '{}': {e}", record.spec.name)))?;
        if record.shards == 0 {
            return Err(bad(format!("model '{}' has 0 shards", record.spec.name)));
        }
        let name = record.spec.name.clone();
        if registry.models.insert(name.clone(), record).is_some() {
            return Err(bad(format!("model '{name}' is listed twice")));
        }
    }
    if file.entries.len() > MAX_ENTRIES {
        return Err(bad(format!(
            "{} entries, over the limit of {MAX_ENTRIES}",
            file.entries.len()
        )));
    }
    for EntryRecord { key, value_hex } in file.entries {
        let value = from_hex(&value_hex).ok_or_else(|| {
            bad(format!(
                "entry {}: value is not hexadecimal",
                shown_key(&key)
            ))
        })?;
        check_entry(&key, Some(&value)).map_err(|e| bad(e.to_string()))?;
        if registry.entries.insert(key.clone(), value).is_some() {
            return Err(bad(format!("entry {} is listed twice", shown_key(&key))));
        }
    }
    Ok(registry)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Checks an entry's key and, for a put, its value against the limits. Shared with the client,
/// which checks before sending a value that could only be refused.
pub(crate) fn check_entry(key: &str, value: Option<&[u8]>) -> Result<()> {
    if key.is_empty() {
        return Err(PsError::InvalidRequest(
            "entry key must not be empty".to_string(),
        ));
    }
    if key.len() > MAX_ENTRY_KEY_BYTES {
        return Err(PsError::InvalidRequest(format!(
            "entry key {} is {} bytes, over the limit of {MAX_ENTRY_KEY_BYTES} bytes",
            shown_key(key),
            key.len()
        )));
    }
    if let Some(value) = value
        && value.len() > MAX_ENTRY_VALUE_BYTES
    {
        return Err(PsError::InvalidRequest(format!(
            "entry {}: value of {} bytes is over the limit of {MAX_ENTRY_VALUE_BYTES} bytes",
            shown_key(key),
            value.len()
        )));
    }
    Ok(())
}

/// A key quoted for messages and logs, cut to its first 64 bytes (at a character boundary) so
/// that an over-long key does not flood them.
fn shown_key(key: &str) -> String {
    const SHOWN: usize = 64;
    if key.len() <= SHOWN {
        return format!("'{}'", key.escape_debug());
    }
    let end = (0..=SHOWN)
        .rev()
        .find(|&i| key.is_char_boundary(i))
        .unwrap_or(0);
    format!("'{}…'", key[..end].escape_debug())
}

/// "'name' already exists with 10 rows, not 12" and the like: what differs between two specs.
pub(crate) fn describe_difference(
    old: &ModelSpec,
    old_shards: u32,
    new: &ModelSpec,
    new_shards: u32,
) -> String {
    let mut diffs = Vec::new();
    let mut field = |what: &str, a: String, b: String| {
        if a != b {
            diffs.push(format!("{a} {what}, not {b}"));
        }
    };
    field("rows", old.rows.to_string(), new.rows.to_string());
    field("columns", old.cols.to_string(), new.cols.to_string());
    field("shards", old_shards.to_string(), new_shards.to_string());
    field(
        "(value type)",
        format!("{:?}", old.dtype),
        format!("{:?}", new.dtype),
    );
    if diffs.is_empty() {
        diffs.push(format!(
            "another layout or aggregator: {old:?}, not {new:?}"
        ));
    }
    format!("'{}' already exists with {}", old.name, diffs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(m: &Master, key: &str, value: &[u8]) -> Result<MasterResponse> {
        m.handle(MasterRequest::PutEntry {
            key: key.to_string(),
            value: value.to_vec(),
        })
    }

    fn get(m: &Master, key: &str) -> Option<Vec<u8>> {
        match m.handle(MasterRequest::GetEntry {
            key: key.to_string(),
        }) {
            Ok(MasterResponse::Entry(v)) => v,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn remove(m: &Master, key: &str) -> Result<MasterResponse> {
        m.handle(MasterRequest::RemoveEntry {
            key: key.to_string(),
        })
    }

    fn invalid(result: Result<MasterResponse>) -> String {
        match result {
            Err(PsError::InvalidRequest(message)) => message,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn entries_put_get_overwrite_remove() {
        let m = Master::new();
        assert_eq!(get(&m, "job"), None);
        assert_eq!(put(&m, "job", b"{\"k\":20}"), Ok(MasterResponse::Done));
        assert_eq!(get(&m, "job").as_deref(), Some(&b"{\"k\":20}"[..]));
        // Overwrite, and the same put again (a retry): the last value stays.
        put(&m, "job", b"v2").unwrap();
        put(&m, "job", b"v2").unwrap();
        assert_eq!(get(&m, "job").as_deref(), Some(&b"v2"[..]));
        // An empty value is a value, not a missing key.
        put(&m, "empty", b"").unwrap();
        assert_eq!(get(&m, "empty"), Some(vec![]));
        // Keys are distinct from each other and from model names.
        assert_eq!(get(&m, "Job"), None);
        assert_eq!(remove(&m, "job"), Ok(MasterResponse::Done));
        assert_eq!(get(&m, "job"), None);
        assert_eq!(get(&m, "empty"), Some(vec![]));
        // Removing a missing key is a harmless retry.
        assert_eq!(remove(&m, "job"), Ok(MasterResponse::Done));
        assert_eq!(remove(&m, "never"), Ok(MasterResponse::Done));
    }

    #[test]
    fn entry_keys_and_values_are_bounded() {
        let m = Master::new();
        let message = invalid(put(&m, "", b"x"));
        assert!(message.contains("empty"), "{message}");
        assert!(
            invalid(m.handle(MasterRequest::GetEntry { key: String::new() })).contains("empty")
        );
        assert!(invalid(remove(&m, "")).contains("empty"));
        // Exactly at the key limit is fine; one byte more names the size, the limit and a
        // truncated key.
        let longest = "k".repeat(MAX_ENTRY_KEY_BYTES);
        put(&m, &longest, b"ok").unwrap();
        assert_eq!(get(&m, &longest).as_deref(), Some(&b"ok"[..]));
        let too_long = "k".repeat(MAX_ENTRY_KEY_BYTES + 1);
        let message = invalid(put(&m, &too_long, b"x"));
        assert!(
            message.contains("257 bytes") && message.contains("256"),
            "{message}"
        );
        assert!(
            message.contains(&format!("'{}…'", "k".repeat(64))),
            "{message}"
        );
        assert!(!message.contains(&"k".repeat(65)), "{message}");
        assert!(invalid(remove(&m, &too_long)).contains("257 bytes"));
        // Truncation respects character boundaries.
        let wide = "é".repeat(200);
        let message = invalid(put(&m, &wide, b"x"));
        assert!(
            message.contains(&format!("'{}…'", "é".repeat(32))),
            "{message}"
        );
        // Values: 1 MiB fits exactly, one byte more is refused and names key and size.
        let big = vec![7u8; MAX_ENTRY_VALUE_BYTES];
        put(&m, "big", &big).unwrap();
        assert_eq!(get(&m, "big"), Some(big));
        let message = invalid(put(&m, "big", &vec![0u8; MAX_ENTRY_VALUE_BYTES + 1]));
        assert!(
            message.contains("'big'")
                && message.contains("1048577 bytes")
                && message.contains("1048576"),
            "{message}"
        );
        // The refused put changed nothing.
        assert_eq!(get(&m, "big").map(|v| v.len()), Some(MAX_ENTRY_VALUE_BYTES));
    }

    fn claim(m: &Master, addr: &str, shard: u32, cluster: &str) -> Result<MasterResponse> {
        m.handle(MasterRequest::Register {
            addr: addr.to_string(),
            shard: Some(shard),
            cluster: Some(cluster.to_string()),
        })
    }

    fn servers(m: &Master) -> Vec<String> {
        match m.handle(MasterRequest::Servers) {
            Ok(MasterResponse::Servers(list)) => list,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn status(m: &Master) -> ClusterStatus {
        match m.handle(MasterRequest::Status) {
            Ok(MasterResponse::Status(s)) => s,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn with_timeout(data_dir: Option<&Path>, server_timeout: Duration) -> Master {
        Master::open(MasterConfig {
            data_dir: data_dir.map(Path::to_path_buf),
            server_timeout,
        })
        .unwrap()
    }

    #[test]
    fn a_claim_replaces_a_silent_holder_but_not_a_live_one() {
        let m = with_timeout(None, Duration::from_millis(200));
        let cluster = m.cluster();
        for (i, addr) in ["a:1", "b:1"].iter().enumerate() {
            assert_eq!(
                m.handle(MasterRequest::register(*addr)),
                Ok(MasterResponse::Registered {
                    shard: i as u32,
                    cluster: cluster.clone()
                })
            );
        }
        // A heartbeat (the holder's own claim) changes nothing.
        assert!(claim(&m, "a:1", 0, &cluster).is_ok());
        // Another address while "a:1" is alive: refused, naming both.
        let err = claim(&m, "a:2", 0, &cluster).unwrap_err();
        assert!(
            matches!(&err, PsError::ShardHeld { shard: 0, holder, claimant, last_seen_ms }
                if holder == "a:1" && claimant == "a:2" && *last_seen_ms < 200),
            "{err}"
        );
        assert_eq!(servers(&m), ["a:1", "b:1"]);
        std::thread::sleep(Duration::from_millis(250));
        // "b:1" keeps beating; "a:1" fell silent and is reported once by a sweep.
        claim(&m, "b:1", 1, &cluster).unwrap();
        let silent = m.sweep();
        assert_eq!(silent.len(), 1);
        assert_eq!(
            (silent[0].shard, silent[0].addr.as_deref(), silent[0].alive),
            (0, Some("a:1"), false)
        );
        assert!(m.sweep().is_empty());
        let st = status(&m);
        assert_eq!(st.servers.len(), 2);
        assert!(!st.servers[0].alive && st.servers[1].alive, "{st:?}");
        assert!(st.servers[0].last_seen.unwrap() >= Duration::from_millis(250));
        assert!(st.servers[1].last_seen.unwrap() < Duration::from_millis(100));
        // Now the claim succeeds: same index, new address.
        assert_eq!(
            claim(&m, "a:2", 0, &cluster),
            Ok(MasterResponse::Registered {
                shard: 0,
                cluster: cluster.clone()
            })
        );
        assert_eq!(servers(&m), ["a:2", "b:1"]);
        assert!(status(&m).servers[0].alive);
        // A new server gets a new index, not a silent one's.
        assert!(matches!(
            m.handle(MasterRequest::register("c:1")),
            Ok(MasterResponse::Registered { shard: 2, .. })
        ));
        assert!(matches!(
            claim(&m, "x:1", MAX_SERVERS, &cluster),
            Err(PsError::InvalidRequest(_))
        ));
    }

    #[test]
    fn a_forgetful_master_adopts_the_first_cluster_and_then_refuses_others() {
        let m = Master::new();
        // A restarted master without a data directory: servers come back in any order.
        assert_eq!(
            claim(&m, "c:1", 2, "c0ffee"),
            Ok(MasterResponse::Registered {
                shard: 2,
                cluster: "c0ffee".into()
            })
        );
        assert_eq!(m.cluster(), "c0ffee");
        assert_eq!(servers(&m), ["", "", "c:1"]);
        let st = status(&m);
        assert_eq!(st.servers[0].addr, None);
        assert!(!st.servers[0].alive && st.servers[0].last_seen.is_none());
        // A model cannot be placed on an index that has not come back.
        let spec = ModelSpec::matrix("m", 4, 4, crate::value::DType::I32);
        let err = m
            .handle(MasterRequest::CreateModel { spec, shards: 3 })
            .unwrap_err();
        assert!(err.to_string().contains("shard 0"), "{err}");
        claim(&m, "a:1", 0, "c0ffee").unwrap();
        claim(&m, "b:1", 1, "c0ffee").unwrap();
        assert_eq!(servers(&m), ["a:1", "b:1", "c:1"]);
        let err = claim(&m, "d:1", 3, "beef").unwrap_err();
        assert!(
            matches!(&err, PsError::ForeignCluster { shard: 3, claimant, claimed, cluster }
                if claimant == "d:1" && claimed == "beef" && cluster == "c0ffee"),
            "{err}"
        );
        // A settled master (here: one that gave out an index) never adopts.
        let fresh = Master::new();
        fresh.handle(MasterRequest::register("a:1")).unwrap();
        assert!(matches!(
            claim(&fresh, "b:1", 1, "c0ffee"),
            Err(PsError::ForeignCluster { .. })
        ));
    }

    #[test]
    fn the_registry_survives_a_restart_with_a_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let timeout = Duration::from_millis(200);
        let cluster;
        {
            let m = with_timeout(Some(dir.path()), timeout);
            cluster = m.cluster();
            m.handle(MasterRequest::register("a:1")).unwrap();
            m.handle(MasterRequest::register("b:1")).unwrap();
            let spec = ModelSpec::matrix("counts", 10, 3, crate::value::DType::I64);
            m.handle(MasterRequest::CreateModel { spec, shards: 2 })
                .unwrap();
            let spec = ModelSpec::vector("gone", 3, crate::value::DType::F64);
            m.handle(MasterRequest::CreateModel { spec, shards: 1 })
                .unwrap();
            m.handle(MasterRequest::RemoveModel {
                name: "gone".into(),
            })
            .unwrap();
            put(&m, "job", &[0, 255, 7, b'{']).unwrap();
            put(&m, "tmp", b"x").unwrap();
            remove(&m, "tmp").unwrap();
        } // dropped, as a killed master
        let m = with_timeout(Some(dir.path()), timeout);
        assert_eq!(m.cluster(), cluster);
        assert_eq!(servers(&m), ["a:1", "b:1"]);
        let models = match m.handle(MasterRequest::ListModels) {
            Ok(MasterResponse::Models(models)) => models,
            other => panic!("{other:?}"),
        };
        assert_eq!(models.len(), 1);
        assert_eq!(
            (
                models[0].spec.name.as_str(),
                models[0].spec.rows,
                models[0].shards
            ),
            ("counts", 10, 2)
        );
        assert_eq!(get(&m, "job"), Some(vec![0, 255, 7, b'{']));
        assert_eq!(get(&m, "tmp"), None);
        // Not heard from since the restart, yet protected for one server timeout.
        assert!(status(&m).servers.iter().all(|s| s.last_seen.is_none()));
        assert!(matches!(
            claim(&m, "a:2", 0, &cluster),
            Err(PsError::ShardHeld { .. })
        ));
        assert!(claim(&m, "b:1", 1, &cluster).is_ok());
        std::thread::sleep(timeout + Duration::from_millis(50));
        claim(&m, "a:2", 0, &cluster).unwrap();
        // Another cluster's server is refused by a master with a data directory.
        assert!(matches!(
            claim(&m, "z:1", 0, "other"),
            Err(PsError::ForeignCluster { .. })
        ));
        drop(m);
        assert_eq!(
            servers(&with_timeout(Some(dir.path()), timeout)),
            ["a:2", "b:1"]
        );
        // Without one, everything but what heartbeats bring back is forgotten.
        let forgetful = Master::new();
        assert!(servers(&forgetful).is_empty());
        assert_eq!(get(&forgetful, "job"), None);
    }

    #[test]
    fn a_change_that_cannot_be_persisted_is_refused_and_undone() {
        let dir = tempfile::tempdir().unwrap();
        let m = with_timeout(Some(dir.path()), DEFAULT_SERVER_TIMEOUT);
        put(&m, "kept", b"1").unwrap();
        // A directory in the file's place: the rename over it fails.
        let file = dir.path().join(REGISTRY_FILE);
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        std::fs::write(file.join("block"), b"").unwrap();
        let err = put(&m, "new", b"2").unwrap_err();
        assert!(
            matches!(&err, PsError::Master(text) if text.contains(REGISTRY_FILE)),
            "{err}"
        );
        assert_eq!(get(&m, "new"), None);
        assert!(put(&m, "kept", b"3").is_err());
        assert_eq!(get(&m, "kept").as_deref(), Some(&b"1"[..]));
        assert!(m.handle(MasterRequest::register("a:1")).is_err());
        assert!(servers(&m).is_empty());
    }

    #[test]
    fn a_damaged_registry_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REGISTRY_FILE);
        for (text, expected) in [
            ("{", "not a registry file"),
            (
                r#"{"version":9,"cluster":"c","servers":[],"models":[],"entries":[]}"#,
                "version 9",
            ),
            (
                r#"{"version":1,"cluster":"c","servers":[{"shard":0,"addr":"a"},{"shard":0,"addr":"b"}],"models":[],"entries":[]}"#,
                "listed twice",
            ),
            (
                r#"{"version":1,"cluster":"c","servers":[],"models":[],"entries":[{"key":"k","value_hex":"zz"}]}"#,
                "not hexadecimal",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Master::open(MasterConfig {
                data_dir: Some(dir.path().to_path_buf()),
                ..MasterConfig::default()
            })
            .unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(REGISTRY_FILE) && message.contains(expected),
                "{message}"
            );
        }
    }

    #[test]
    fn hex_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&all)), Some(all));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex(""), Some(vec![]));
    }

    #[test]
    fn at_most_max_entries_but_overwrites_always_pass() {
        let m = Master::new();
        for i in 0..MAX_ENTRIES {
            put(&m, &format!("e{i}"), &i.to_le_bytes()).unwrap();
        }
        let message = invalid(put(&m, "one-more", b"x"));
        assert!(
            message.contains("'one-more'") && message.contains("1024 entries"),
            "{message}"
        );
        assert_eq!(get(&m, "one-more"), None);
        // At the cap, overwriting an existing key is allowed.
        put(&m, "e7", b"new").unwrap();
        assert_eq!(get(&m, "e7").as_deref(), Some(&b"new"[..]));
        assert_eq!(get(&m, "e8"), Some(8usize.to_le_bytes().to_vec()));
        // Removing one makes room for exactly one new key.
        remove(&m, "e0").unwrap();
        put(&m, "one-more", b"x").unwrap();
        assert!(invalid(put(&m, "two-more", b"x")).contains("1024"));
    }
}
