//! A transport wrapper that misbehaves on purpose: it drops requests, drops responses after the
//! request was applied, delivers requests twice, delays deliveries by random amounts (which
//! reorders them), and holds some requests or responses back for longer than a client waits.
//! Tests use it to prove nothing is lost and nothing is applied twice.
//!
//! Each delivery runs in its own task, so a request whose caller timed out still arrives, late,
//! after its retry: the case an exactly-once window exists for. [`Faulty::settled`] waits until
//! every delivery has ended, so a test can check the result once no stray copy is in flight.
//!
//! [`Sabotage`] breaks exactly-once on purpose, as a negative control: a test that passes with
//! sabotage on cannot tell a working dedup from a broken one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::Transport;
use crate::error::{PsError, Result};
use crate::message::{Push, Request, Response};

/// How a [`Faulty`] transport misbehaves. Probabilities apply to each delivery independently.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Probability a request is lost before reaching the shard.
    pub drop_request: f64,
    /// Probability a response is lost after the shard applied the request.
    pub drop_response: f64,
    /// Probability a request is delivered a second time, up to `late_delay` later.
    pub duplicate: f64,
    /// Upper bound of the random delay before each delivery.
    pub max_delay: Duration,
    /// Probability a request is held back for between half and all of `late_delay` before it
    /// is delivered (set `late_delay` beyond the client's timeout: it then arrives after its
    /// caller gave up on it, possibly after its retry).
    pub late_request: f64,
    /// Probability a response is held back the same way after the request was applied (the
    /// client times out and retries a push that was applied).
    pub late_response: f64,
    /// Longest hold-back of a late request or response, and of a duplicate.
    pub late_delay: Duration,
    /// Negative controls only: break exactly-once on the way to the shard.
    pub sabotage: Sabotage,
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop_request: 0.1,
            drop_response: 0.1,
            duplicate: 0.1,
            max_delay: Duration::from_millis(5),
            late_request: 0.0,
            late_response: 0.0,
            late_delay: Duration::ZERO,
            sabotage: Sabotage::None,
            seed: 7,
        }
    }
}

/// Ways to defeat a shard's exactly-once window by rewriting each delivered push's identity,
/// for tests that must fail when deduplication is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sabotage {
    #[default]
    None,
    /// Every push is delivered as writer 0: the shard dedups by sequence number only, so
    /// different writers' pushes with the same number are taken for duplicates.
    SeqOnly,
    /// Every delivery (first, retry or duplicate) comes from a writer never seen before: the
    /// window never recognises a repeat, as if it were disabled.
    NoWindow,
}

/// Counts deliveries in flight; each holds a [`Delivery`] guard until it ends.
#[derive(Debug, Default)]
struct InFlight(AtomicUsize);

struct Delivery(Arc<InFlight>);

impl Delivery {
    fn start(in_flight: &Arc<InFlight>) -> Self {
        in_flight.0.fetch_add(1, Ordering::SeqCst);
        Delivery(in_flight.clone())
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Faulty {
    inner: Arc<dyn Transport>,
    config: FaultConfig,
    rng: Mutex<StdRng>,
    in_flight: Arc<InFlight>,
    /// Writer ids handed out by [`Sabotage::NoWindow`], far from random ids in practice.
    fresh_writer: Arc<AtomicU64>,
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
    request_delay: Duration,
    response_delay: Duration,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Transport>, config: FaultConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(config.seed));
        Faulty {
            inner,
            config,
            rng,
            in_flight: Arc::default(),
            fresh_writer: Arc::new(AtomicU64::new(1 << 62)),
        }
    }

    /// Waits until no delivery (original, late or duplicate) is in flight any more.
    pub async fn settled(&self) {
        while self.in_flight.0.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn plan(&self) -> Plan {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let c = &self.config;
        let mut upto = |max: Duration| {
            let max = max.as_micros() as u64;
            Duration::from_micros(if max == 0 {
                0
            } else {
                rng.random_range(0..=max)
            })
        };
        let request_delay = upto(c.max_delay);
        let duplicate_delay = upto(c.max_delay.max(c.late_delay));
        let late_request = upto(c.late_delay / 2) + c.late_delay / 2;
        let late_response = upto(c.late_delay / 2) + c.late_delay / 2;
        Plan {
            drop_request: rng.random_bool(c.drop_request),
            drop_response: rng.random_bool(c.drop_response),
            duplicate: rng.random_bool(c.duplicate).then_some(duplicate_delay),
            request_delay: if rng.random_bool(c.late_request) {
                late_request
            } else {
                request_delay
            },
            response_delay: if rng.random_bool(c.late_response) {
                late_response
            } else {
                Duration::ZERO
            },
        }
    }

    /// The request as the shard receives it, after any sabotage of its identity.
    fn rewrite(
        sabotage: Sabotage,
        fresh_writer: &AtomicU64,
        request: Arc<Request>,
    ) -> Arc<Request> {
        let Request::Push(push) = &*request else {
            return request;
        };
        let writer = match sabotage {
            Sabotage::None => return request,
            Sabotage::SeqOnly => 0,
            Sabotage::NoWindow => fresh_writer.fetch_add(1, Ordering::Relaxed),
        };
        Arc::new(Request::Push(Push {
            writer,
            ..push.clone()
        }))
    }
}

impl Transport for Faulty {
    fn shards(&self) -> usize {
        self.inner.shards()
    }

    fn call(&self, shard: usize, request: Arc<Request>) -> BoxFuture<'static, Result<Response>> {
        let plan = self.plan();
        let sabotage = self.config.sabotage;
        if let Some(later) = plan.duplicate {
            let (inner, fresh) = (self.inner.clone(), self.fresh_writer.clone());
            let request = request.clone();
            let delivery = Delivery::start(&self.in_flight);
            tokio::spawn(async move {
                let _delivery = delivery;
                tokio::time::sleep(later).await;
                let request = Faulty::rewrite(sabotage, &fresh, request);
                let _ = inner.call(shard, request).await;
            });
        }
        // The delivery outlives its caller: a request whose caller timed out still arrives.
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (inner, fresh) = (self.inner.clone(), self.fresh_writer.clone());
        let delivery = Delivery::start(&self.in_flight);
        tokio::spawn(async move {
            let _delivery = delivery;
            tokio::time::sleep(plan.request_delay).await;
            if plan.drop_request {
                let dropped = PsError::Transient("fault injection: request dropped".into());
                let _ = answer.send(Err(dropped));
                return;
            }
            let request = Faulty::rewrite(sabotage, &fresh, request);
            let response = inner.call(shard, request).await;
            tokio::time::sleep(plan.response_delay).await;
            let response = if plan.drop_response {
                Err(PsError::Transient(
                    "fault injection: response dropped".into(),
                ))
            } else {
                response
            };
            let _ = answer.send(response);
        });
        async move {
            answered.await.unwrap_or_else(|_| {
                Err(PsError::Transient(
                    "fault injection: delivery ended without an answer".into(),
                ))
            })
        }
        .boxed()
    }
}
