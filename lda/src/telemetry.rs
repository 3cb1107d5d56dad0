//! The sampler's figures as Prometheus metrics (see `ps_core::metrics`): what a trainer, a
//! cluster worker or a driver exposes on `--metrics-addr`.

use std::sync::{Arc, LazyLock};

use ps_core::metrics::{Counter, Gauge, counter, gauge, seconds_counter};

pub(crate) struct Sampler {
    pub iteration: Arc<Gauge>,
    pub tokens: Arc<Counter>,
    pub tokens_per_s: Arc<Gauge>,
    pub ps_wait: Arc<Counter>,
}

pub(crate) static SAMPLER: LazyLock<Sampler> = LazyLock::new(|| Sampler {
    iteration: gauge(
        "glint_sampler_iteration",
        "Iterations this process's sampler finished.",
        &[],
    ),
    tokens: counter(
        "glint_sampler_tokens_total",
        "Tokens sampled by this process.",
        &[],
    ),
    tokens_per_s: gauge(
        "glint_sampler_tokens_per_second",
        "Tokens per second of the last iteration.",
        &[],
    ),
    ps_wait: seconds_counter(
        "glint_sampler_ps_wait_seconds_total",
        "Seconds sampler threads waited for the parameter server.",
        &[],
    ),
});

pub(crate) struct Driver {
    pub iteration: Arc<Gauge>,
    pub tokens_per_s: Arc<Gauge>,
    pub loglik: Arc<Gauge>,
    pub recoveries: Arc<Counter>,
    pub attempt: Arc<Gauge>,
}

pub(crate) static DRIVER: LazyLock<Driver> = LazyLock::new(|| Driver {
    iteration: gauge(
        "glint_driver_iteration",
        "Iterations every worker has finished.",
        &[],
    ),
    tokens_per_s: gauge(
        "glint_driver_tokens_per_second",
        "Tokens per second of the last iteration over all workers.",
        &[],
    ),
    loglik: gauge(
        "glint_driver_loglik",
        "log p(w, z) after the last iteration.",
        &[],
    ),
    recoveries: counter(
        "glint_driver_recoveries_total",
        "Rollbacks to a checkpoint.",
        &[],
    ),
    attempt: gauge("glint_driver_attempt", "The run's current attempt.", &[]),
});
