//! The `glint-lda` binary: the command line of `glint_lda_cli` with the built-in aggregations.

use std::process::ExitCode;

fn main() -> ExitCode {
    glint_lda_cli::main_with(ps_core::AggregatorRegistry::default())
}
