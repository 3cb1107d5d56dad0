//! `glint-lda server`: one parameter-server shard. It binds its listener, starts serving, registers
//! its address with the master (which answers with its shard index), prints
//! `listening on ADDR as shard N` on stdout, and serves until SIGINT or SIGTERM. Bound beyond
//! loopback it refuses to start without a token or client certificates (see `security`); with
//! `--tls-ca` it registers with a TLS master.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ps_core::grpc::{GrpcCoordinator, ServeOptions};
use ps_core::master::{MasterRequest, MasterResponse};
use ps_core::transport::Coordinator;
use ps_core::{AggregatorRegistry, ClientConfig, Limits, Shard, ShardConfig};

use super::security::{ClientSecurity, ServerSecurity};
use super::server_config::ServerSettings;

// Kept here for the commands that read a token through this path (`train`, `worker`).
pub(crate) use super::security::read_token;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address of the master, HOST:PORT.
    #[arg(long)]
    pub master: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
    /// Address clients use to reach this server; defaults to the bound address.
    #[arg(long)]
    pub advertise: Option<String>,
    #[command(flatten)]
    pub security: ServerSecurity,
    /// How this server reaches the master to register (TLS when the master serves TLS).
    #[command(flatten)]
    pub master_security: ClientSecurity,
    /// Directory for snapshots; without it, save and load requests are refused.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Largest gRPC message accepted, in MiB [default: 64].
    #[arg(long)]
    pub max_message_mb: Option<usize>,
    /// How long to keep trying to register with the master, in seconds.
    #[arg(long, default_value_t = 30)]
    pub register_timeout_secs: u64,
    /// Most rows or elements in one request, and most values in one pull's answer
    /// [default: 16777216].
    #[arg(long)]
    pub max_request_elements: Option<usize>,
    /// Most bytes one model's partition may allocate when it is created, in MiB [default: 4096].
    #[arg(long)]
    pub max_model_mb: Option<u64>,
    /// Most models this server holds [default: 1024].
    #[arg(long)]
    pub max_models: Option<usize>,
    /// Seconds without a push after which a writer's exactly-once window is dropped (a compact
    /// tombstone keeps answers exact); 0 keeps every writer forever. Must exceed how long a
    /// client retries one push [default: 3600].
    #[arg(long)]
    pub writer_idle_secs: Option<u64>,
    /// Pushes of one writer applied above a missing one before it is given up (then answered
    /// SeqExpired, never silently) [default: 65536].
    #[arg(long)]
    pub dedup_window: Option<usize>,
    /// JSON file of the settings above (same names, snake_case); flags given on the command line
    /// win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let options = args.security.serve_options()?;
    // Read before binding: a bad certificate file fails before anything is served.
    let register_config = args.master_security.client_config(ClientConfig {
        timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })?;
    if let Some(dir) = &args.data_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let file = match &args.config {
        Some(path) => ServerSettings::read(path)?,
        None => ServerSettings::default(),
    };
    let flags = ServerSettings {
        max_request_elements: args.max_request_elements,
        max_model_mb: args.max_model_mb,
        max_models: args.max_models,
        writer_idle_secs: args.writer_idle_secs,
        dedup_window: args.dedup_window,
        max_message_mb: args.max_message_mb,
    };
    let (limits, max_message_mb) = flags.resolve(&file)?;
    let options = ServeOptions {
        max_message_bytes: max_message_mb << 20,
        ..options
    };
    runtime()?.block_on(serve(args, options, register_config, limits))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    args: ServerArgs,
    options: ServeOptions,
    register_config: ClientConfig,
    limits: Limits,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding the server to {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    args.security.check_exposure(addr, &options)?;
    let advertise = match args.advertise {
        Some(a) => a,
        None if addr.ip().is_unspecified() => {
            bail!("bound to {addr}, which clients cannot dial: pass --advertise HOST:PORT")
        }
        None => addr.to_string(),
    };
    let config = ShardConfig {
        data_dir: args.data_dir.clone(),
        limits,
    };
    let shard = Arc::new(Shard::new(config, AggregatorRegistry::default()));
    let token = options.token.clone();
    let serving = tokio::spawn(ps_core::grpc::serve_shard_with(
        listener,
        shard.clone(),
        options,
        shutdown_signal(),
    ));

    let deadline = Duration::from_secs(args.register_timeout_secs);
    let index = register(
        &args.master,
        token.as_deref(),
        &register_config,
        &advertise,
        deadline,
    )
    .await?;
    // Snapshots record the index, and a load of another shard's snapshot is refused.
    shard.assign_index(index);
    println!("listening on {addr} as shard {index}");
    tracing::info!(%addr, advertise, index, master = args.master, "server ready");

    serving
        .await
        .context("the server task failed")?
        .with_context(|| format!("serving on {addr}"))?;
    tracing::info!(%addr, "server stopped");
    Ok(())
}

/// Registers `addr` with the master, retrying while the master is unreachable.
async fn register(
    master: &str,
    token: Option<&str>,
    config: &ClientConfig,
    addr: &str,
    patience: Duration,
) -> anyhow::Result<u32> {
    let coordinator = GrpcCoordinator::new(master, token, config)
        .with_context(|| format!("connecting to the master at {master}"))?;
    let start = Instant::now();
    loop {
        let request = MasterRequest::Register {
            addr: addr.to_string(),
        };
        match tokio::time::timeout(config.timeout, coordinator.call(request)).await {
            Ok(Ok(MasterResponse::Registered { shard })) => return Ok(shard),
            Ok(Ok(other)) => bail!("master at {master} answered {other:?} to a registration"),
            Ok(Err(e)) if !e.is_retryable() => {
                return Err(e).with_context(|| format!("registering with the master at {master}"));
            }
            Ok(Err(e)) if start.elapsed() > patience => {
                return Err(e)
                    .with_context(|| format!("master at {master} unreachable for {patience:?}"));
            }
            Err(_) if start.elapsed() > patience => {
                bail!("master at {master} did not answer for {patience:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Completes on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown signal received");
}
