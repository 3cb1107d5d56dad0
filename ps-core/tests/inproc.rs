//! The shared suite over the in-process transport.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::sync::Arc;

use ps_core::transport::{Coordinator, InProcessMaster, Transport};
use ps_core::{AggregatorRegistry, ClusterConfig, EmbeddedCluster, Limits};
use suite::Harness;

struct InProcessHarness {
    cluster: EmbeddedCluster,
    _dir: tempfile::TempDir,
}

impl Harness for InProcessHarness {
    fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(self.cluster.transport())
    }
    fn coordinator(&self) -> Arc<dyn Coordinator> {
        Arc::new(InProcessMaster::new(self.cluster.master().clone()))
    }
    fn shards(&self) -> usize {
        3
    }
}

async fn embedded(limits: Limits) -> InProcessHarness {
    let dir = tempfile::tempdir().unwrap();
    let aggregators = AggregatorRegistry::default();
    aggregators
        .register("product", Arc::new(suite::Product))
        .unwrap();
    let config = ClusterConfig {
        data_dir: Some(dir.path().to_path_buf()),
        aggregators,
        limits,
        ..ClusterConfig::default()
    };
    InProcessHarness {
        cluster: EmbeddedCluster::start(3, config).unwrap(),
        _dir: dir,
    }
}

transport_suite!(embedded);
