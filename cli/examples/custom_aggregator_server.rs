//! A `glint-lda` binary whose servers also know an application's own aggregation: build it,
//! then run `custom_aggregator_server server --master ADDR ...` in place of `glint-lda server`
//! (every other subcommand works as in `glint-lda`). Models created with
//! `ModelSpec::with_aggregator("append-digit")` combine pushes by `current * 10 + pushed`.
//!
//! ```sh
//! cargo build --release --example custom_aggregator_server
//! target/release/examples/custom_aggregator_server server --master 127.0.0.1:7000
//! ```
//!
//! The aggregation depends on the order of pushes, as `replace` does: a push's pieces for one
//! shard are applied in the order the client pushed them.

use std::process::ExitCode;
use std::sync::Arc;

use ps_core::{Aggregator, AggregatorRegistry};

/// Appends the pushed digit to the stored number (order-dependent, not commutative).
struct AppendDigit;

impl Aggregator for AppendDigit {
    fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
        current.saturating_mul(10).saturating_add(pushed)
    }

    fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
        current * 10.0 + pushed
    }
}

fn main() -> ExitCode {
    let aggregators = AggregatorRegistry::default();
    if let Err(e) = aggregators.register("append-digit", Arc::new(AppendDigit)) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    glint_lda_cli::main_with(aggregators)
}
