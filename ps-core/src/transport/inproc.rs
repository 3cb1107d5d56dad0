//! The in-process transport: requests are handed to shards in the same process by reference,
//! with no serialization. The shard's work runs on the caller's thread.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Coordinator, Transport};
use crate::error::{PsError, Result};
use crate::master::{Master, MasterRequest, MasterResponse};
use crate::message::{Request, Response};
use crate::shard::Shard;

#[derive(Debug, Clone)]
pub struct InProcess {
    shards: Arc<[Arc<Shard>]>,
}

impl InProcess {
    pub fn new(shards: Vec<Arc<Shard>>) -> Self {
        InProcess {
            shards: shards.into(),
        }
    }
}

impl Transport for InProcess {
    fn shards(&self) -> usize {
        self.shards.len()
    }

    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
        let result = match self.shards.get(shard) {
            Some(s) => s.handle(&request),
            None => Err(PsError::NoSuchShard {
                shard,
                shards: self.shards.len(),
            }),
        };
        futures::future::ready(result).boxed()
    }
}

#[derive(Debug, Clone)]
pub struct InProcessMaster {
    master: Arc<Master>,
}

impl InProcessMaster {
    pub fn new(master: Arc<Master>) -> Self {
        InProcessMaster { master }
    }
}

impl Coordinator for InProcessMaster {
    fn call(&self, request: MasterRequest) -> BoxFuture<'static, Result<MasterResponse>> {
        futures::future::ready(self.master.handle(request)).boxed()
    }
}
