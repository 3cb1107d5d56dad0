//! The `glint-lda` command line: parses arguments, sets up logging, dispatches to a subcommand
//! and chooses the exit code. The work itself lives in the library crates.
//!
//! The binary is `main_with(AggregatorRegistry::default())`. An application whose models use
//! its own aggregation builds its own binary around [`main_with`], with its aggregators
//! registered, and runs that as `server` (see `examples/custom_aggregator_server.rs`): every
//! other subcommand is unchanged.

mod commands;
mod console;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ps_core::AggregatorRegistry;

#[derive(Parser, Debug)]
#[command(
    name = "glint-lda",
    version,
    about = "LDA topic models on an asynchronous parameter server"
)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on the console.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Turn raw corpora (WARC, Parquet, text, UCI) into a token-id corpus directory.
    Ingest(commands::ingest::IngestArgs),
    /// Generate a synthetic corpus from the LDA generative process, with the true φ and θ.
    Synth(commands::synth::SynthArgs),
    /// Run the master (registry) of a parameter-server cluster.
    Master(commands::master::MasterArgs),
    /// Run a parameter-server shard that registers with a master.
    Server(commands::server::ServerArgs),
    /// Train an LDA model on a corpus: embedded, on a cluster's servers (--master), or as the
    /// driver of worker processes (--master with --workers).
    Train(commands::train::TrainArgs),
    /// Show what a cluster's master knows: servers (up or down, last heartbeat) and models.
    Status(commands::status::StatusArgs),
    /// Run one sampler worker of a cluster run (started by `train --master ADDR --workers N`).
    Worker(commands::worker::WorkerArgs),
    /// Show the top words of each topic of a trained model.
    Topics(commands::topics::TopicsArgs),
    /// Score a model: held-out perplexity, coherence, diversity, distance to a known truth.
    Eval(commands::eval::EvalArgs),
    /// Infer the topic distributions of new documents with a trained model (writes Parquet).
    Infer(commands::infer::InferArgs),
    /// Write the comparison report (HTML with plots, and Markdown) over evaluated run directories.
    Report(commands::report::ReportArgs),
}

/// The `glint-lda` command with the process's arguments, its servers knowing the built-in
/// aggregations and those of `aggregators`.
pub fn main_with(aggregators: AggregatorRegistry) -> ExitCode {
    run_with(std::env::args_os(), aggregators)
}

/// The `glint-lda` command with `args` (the first is the program name).
pub fn run_with(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    aggregators: AggregatorRegistry,
) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2, as clap's own.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let outcome = match cli.command {
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Synth(args) => commands::synth::run(args),
        Command::Master(args) => commands::master::run(args),
        Command::Server(args) => commands::server::run(args, aggregators),
        Command::Train(args) => commands::train::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Topics(args) => commands::topics::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Infer(args) => commands::infer::run(args),
        Command::Report(args) => commands::report::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr through the progress bars (`console::LogWriter`), coloured only on a
/// terminal; `-q` also hides the bars.
fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    console::init(quiet);
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second command in one process (an embedding application, a test) keeps the first's.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(console::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
