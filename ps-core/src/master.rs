//! The master: a registry of servers (shards) and of models. It holds no model data; clients ask it
//! where things are, then talk to the shards directly.

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
}

#[derive(Debug, Clone, PartialEq)]
pub enum MasterResponse {
    Registered { shard: u32 },
    Servers(Vec<String>),
    Model(ModelRecord),
    Models(Vec<ModelRecord>),
    Done,
}

#[derive(Debug, Default)]
struct Registry {
    servers: Vec<String>,
    models: BTreeMap<String, ModelRecord>,
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
        }
    }
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
