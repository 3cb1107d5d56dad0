//! An embedded cluster: a master and N shards in this process, reached through the in-process
//! transport. The default for a laptop, and the reference the tests compare the gRPC path against.

use std::path::PathBuf;
use std::sync::Arc;

use crate::aggregate::AggregatorRegistry;
use crate::client::{Client, ClientConfig};
use crate::error::Result;
use crate::master::{Master, MasterRequest};
use crate::shard::{Limits, Shard, ShardConfig};
use crate::transport::{InProcess, InProcessMaster, Transport};

#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    pub client: ClientConfig,
    pub limits: Limits,
    /// Snapshots of shard `i` go to `data_dir/shard-i`.
    pub data_dir: Option<PathBuf>,
    pub aggregators: AggregatorRegistry,
}

#[derive(Debug)]
pub struct EmbeddedCluster {
    master: Arc<Master>,
    transport: InProcess,
    config: ClusterConfig,
}

impl EmbeddedCluster {
    pub fn start(shards: usize, config: ClusterConfig) -> Result<Self> {
        let master = Arc::new(Master::new());
        let mut list = Vec::with_capacity(shards.max(1));
        for i in 0..shards.max(1) {
            let shard_config = ShardConfig {
                data_dir: config
                    .data_dir
                    .as_ref()
                    .map(|d| d.join(format!("shard-{i}"))),
                limits: config.limits.clone(),
            };
            let shard = Shard::new(shard_config, config.aggregators.clone());
            shard.assign_index(i as u32);
            list.push(Arc::new(shard));
            master.handle(MasterRequest::register(format!("in-process:{i}")))?;
        }
        Ok(EmbeddedCluster {
            master,
            transport: InProcess::new(list),
            config,
        })
    }

    pub fn client(&self) -> Client {
        self.client_with(Arc::new(self.transport.clone()))
    }

    /// A client whose shard requests go through `transport` (e.g. a fault-injecting wrapper
    /// around [`EmbeddedCluster::transport`]).
    pub fn client_with(&self, transport: Arc<dyn Transport>) -> Client {
        let coordinator = Arc::new(InProcessMaster::new(self.master.clone()));
        Client::new(transport, coordinator, self.config.client.clone())
    }

    pub fn transport(&self) -> InProcess {
        self.transport.clone()
    }

    pub fn master(&self) -> &Arc<Master> {
        &self.master
    }
}
