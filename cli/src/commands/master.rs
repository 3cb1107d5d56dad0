//! `glint-lda master`: the registry of a parameter-server cluster. Prints `listening on ADDR` on
//! stdout once it accepts connections and serves until SIGINT or SIGTERM. Bound beyond
//! loopback it refuses to start without a token or client certificates (see `security`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ps_core::master::Master;

use super::security::ServerSecurity;
use super::server::{runtime, shutdown_signal};

#[derive(Args, Debug)]
pub struct MasterArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub bind: String,
    #[command(flatten)]
    pub security: ServerSecurity,
}

pub fn run(args: MasterArgs) -> anyhow::Result<ExitCode> {
    let options = args.security.serve_options()?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("binding the master to {}", args.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        args.security.check_exposure(addr, &options)?;
        println!("listening on {addr}");
        ps_core::grpc::serve_master_with(
            listener,
            Arc::new(Master::new()),
            options,
            shutdown_signal(),
        )
        .await
        .with_context(|| format!("serving the master on {addr}"))?;
        tracing::info!(%addr, "master stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
