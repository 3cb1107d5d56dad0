//! The master: a registry of servers (shards) and of models. It holds no model data; clients ask it
//! where things are, then talk to the shards directly.
//!
//! It also keeps a small bounded board of entries (string key → bytes) for coordination records
//! such as the job description a driver publishes for workers on other machines; see
//! [`MAX_ENTRIES`], [`MAX_ENTRY_KEY_BYTES`] and [`MAX_ENTRY_VALUE_BYTES`].

use std::collections::BTreeMap;
use std::sync::Mutex;

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

#[derive(Debug, Clone, PartialEq)]
pub enum MasterRequest {
    /// A server announces itself; registering the same address again returns the same index.
    Register {
        addr: String,
    },
    Servers,
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

#[derive(Debug, Clone, PartialEq)]
pub enum MasterResponse {
    Registered {
        shard: u32,
    },
    Servers(Vec<String>),
    Model(ModelRecord),
    Models(Vec<ModelRecord>),
    /// The value of an entry, `None` if the key holds none.
    Entry(Option<Vec<u8>>),
    Done,
}

#[derive(Debug, Default)]
struct Registry {
    servers: Vec<String>,
    models: BTreeMap<String, ModelRecord>,
    entries: BTreeMap<String, Vec<u8>>,
}

/// The registry state. A short `std::sync::Mutex` is enough: every operation is a few map lookups
/// and the master sees a handful of requests per model, not per update.
#[derive(Debug, Default)]
pub struct Master {
    registry: Mutex<Registry>,
}

impl Master {
    pub fn new() -> Self {
        Master::default()
    }

    pub fn handle(&self, request: MasterRequest) -> Result<MasterResponse> {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        match request {
            MasterRequest::Register { addr } => {
                if addr.is_empty() || addr.len() > 512 {
                    return Err(PsError::InvalidRequest(format!(
                        "bad server address '{addr}'"
                    )));
                }
                let shard = match reg.servers.iter().position(|a| *a == addr) {
                    Some(i) => i,
                    None => {
                        reg.servers.push(addr.clone());
                        reg.servers.len() - 1
                    }
                };
                tracing::info!(%addr, shard, "server registered");
                Ok(MasterResponse::Registered {
                    shard: shard as u32,
                })
            }
            MasterRequest::Servers => Ok(MasterResponse::Servers(reg.servers.clone())),
            MasterRequest::CreateModel { spec, shards } => {
                spec.validate()?;
                if shards == 0 || shards as usize > reg.servers.len() {
                    return Err(PsError::Master(format!(
                        "model '{}' wants {shards} shards but {} servers are registered",
                        spec.name,
                        reg.servers.len()
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
                reg.models.insert(record.spec.name.clone(), record.clone());
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
                reg.models.remove(&name);
                Ok(MasterResponse::Done)
            }
            MasterRequest::PutEntry { key, value } => {
                check_entry(&key, Some(&value))?;
                let count = reg.entries.len();
                match reg.entries.get_mut(&key) {
                    Some(existing) => *existing = value,
                    None if count >= MAX_ENTRIES => {
                        return Err(PsError::InvalidRequest(format!(
                            "entry {}: the master already holds the limit of {MAX_ENTRIES} \
                             entries (remove one first)",
                            shown_key(&key)
                        )));
                    }
                    None => {
                        tracing::debug!(key = %shown_key(&key), bytes = value.len(), "entry added");
                        reg.entries.insert(key, value);
                    }
                }
                Ok(MasterResponse::Done)
            }
            MasterRequest::GetEntry { key } => {
                check_entry(&key, None)?;
                Ok(MasterResponse::Entry(reg.entries.get(&key).cloned()))
            }
            MasterRequest::RemoveEntry { key } => {
                check_entry(&key, None)?;
                reg.entries.remove(&key);
                Ok(MasterResponse::Done)
            }
        }
    }
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
