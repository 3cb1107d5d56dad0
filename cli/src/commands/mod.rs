//! One module per subcommand: clap arguments, validation into a config, and the call into the libraries.

pub mod bench;
pub mod ingest;
pub mod master;
pub mod server;
pub mod topics;
pub mod train;
