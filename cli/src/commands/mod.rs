//! One module per subcommand: clap arguments, validation into a config, and the call into the libraries.

pub mod eval;
pub mod infer;
pub mod ingest;
pub mod master;
pub mod metrics_endpoint;
pub mod report;
pub mod security;
pub mod server;
pub mod server_config;
pub mod status;
pub mod synth;
pub mod topics;
pub mod train;
pub mod worker;

/// The thread count to use: the option's value, else the available cores.
pub fn default_threads(given: Option<usize>) -> usize {
    given
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}
