//! `glint-lda master`: the registry of a parameter-server cluster. Prints `listening on ADDR` on
//! stdout once it accepts connections and serves until SIGINT or SIGTERM. Bound beyond
//! loopback it refuses to start without a token or client certificates (see `security`).
//! With `--data-dir` the registry (servers, models, entries) is kept in `registry.json` there
//! and read back at start; without it, a restarted master relearns its servers from their
//! heartbeats but forgets every model and entry. A server unheard for `--server-timeout-secs`
//! is logged once as silent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use ps_core::master::{Master, MasterConfig};

use super::security::ServerSecurity;
use super::server::{runtime, shutdown_signal};

#[derive(Args, Debug)]
pub struct MasterArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub bind: String,
    #[command(flatten)]
    pub security: ServerSecurity,
    #[command(flatten)]
    pub metrics: super::metrics_endpoint::MetricsArgs,
    /// Directory where the registry (servers, models and entries) survives a restart; without
    /// it a restarted master relearns its servers from their heartbeats but forgets models and
    /// entries.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seconds without a heartbeat after which a server counts as gone, and its index may be
    /// claimed by a server restarted on another address (a few of the servers' --heartbeat-secs).
    #[arg(long, default_value_t = 15)]
    pub server_timeout_secs: u64,
}

pub fn run(args: MasterArgs) -> anyhow::Result<ExitCode> {
    if args.server_timeout_secs == 0 {
        bail!("--server-timeout-secs must be at least 1");
    }
    let options = args.security.serve_options()?;
    // Read before binding: a damaged registry fails before anything is served.
    let master = Master::open(MasterConfig {
        data_dir: args.data_dir.clone(),
        server_timeout: Duration::from_secs(args.server_timeout_secs),
    })
    .context("opening the master's registry")?;
    let master = Arc::new(master);
    runtime()?.block_on(async {
        args.metrics.spawn().await?;
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("binding the master to {}", args.bind))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        args.security.check_exposure(addr, &options)?;
        println!("listening on {addr}");
        tokio::spawn(log_silent_servers(master.clone()));
        ps_core::grpc::serve_master(listener, master, options, shutdown_signal())
            .await
            .with_context(|| format!("serving the master on {addr}"))?;
        tracing::info!(%addr, "master stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Logs each server that stops sending heartbeats, once (the master logs its return).
async fn log_silent_servers(master: Arc<Master>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for s in master.sweep() {
            tracing::warn!(
                shard = s.shard,
                addr = s.addr.as_deref().unwrap_or(""),
                last_seen_secs = s.last_seen.map(|d| d.as_secs()),
                "server silent: no heartbeat within the server timeout"
            );
        }
    }
}
