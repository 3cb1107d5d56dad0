//! A transport wrapper that misbehaves on purpose: it drops requests, drops responses after the
//! request was applied, delivers requests twice, and delays deliveries by random amounts (which
//! reorders them). Tests use it to prove nothing is lost and nothing is applied twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::Transport;
use crate::error::{PsError, Result};
use crate::message::{Request, Response};

#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Probability a request is lost before reaching the shard.
    pub drop_request: f64,
    /// Probability a response is lost after the shard applied the request.
    pub drop_response: f64,
    /// Probability a request is delivered a second time, later.
    pub duplicate: f64,
    /// Upper bound of the random delay before each delivery.
    pub max_delay: Duration,
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop_request: 0.1,
            drop_response: 0.1,
            duplicate: 0.1,
            max_delay: Duration::from_millis(5),
            seed: 7,
        }
    }
}

pub struct Faulty {
    inner: Arc<dyn Transport>,
    config: FaultConfig,
    rng: Mutex<StdRng>,
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Plan {
    drop_request: bool,
    drop_response: bool,
    duplicate: Option<Duration>,
    delay: Duration,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Transport>, config: FaultConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(config.seed));
        Faulty { inner, config, rng }
    }

    fn plan(&self) -> Plan {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let max = self.config.max_delay.as_micros() as u64;
        let mut delay = || {
            Duration::from_micros(if max == 0 {
                0
            } else {
                rng.random_range(0..=max)
            })
        };
        let d1 = delay();
        let d2 = delay();
        Plan {
            drop_request: rng.random_bool(self.config.drop_request),
            drop_response: rng.random_bool(self.config.drop_response),
            duplicate: rng.random_bool(self.config.duplicate).then_some(d2),
            delay: d1,
        }
    }
}

impl Transport for Faulty {
    fn shards(&self) -> usize {
        self.inner.shards()
    }

    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
        let plan = self.plan();
        let inner = self.inner.clone();
        if let Some(later) = plan.duplicate {
            let (inner, request) = (inner.clone(), request.clone());
            tokio::spawn(async move {
                tokio::time::sleep(later).await;
                let _ = inner.call(shard, request).await;
            });
        }
        async move {
            tokio::time::sleep(plan.delay).await;
            if plan.drop_request {
                return Err(PsError::Transient(
                    "fault injection: request dropped".into(),
                ));
            }
            let response = inner.call(shard, request).await;
            if plan.drop_response {
                return Err(PsError::Transient(
                    "fault injection: response dropped".into(),
                ));
            }
            response
        }
        .boxed()
    }
}
