//! `glint-lda status`: what the master of a cluster knows: its servers (address, last heartbeat,
//! alive or not) and its models.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use ps_core::ClientConfig;
use ps_core::grpc::GrpcCoordinator;
use ps_core::master::{MasterRequest, MasterResponse};
use ps_core::transport::Coordinator;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Address of the cluster's master.
    #[arg(long, value_name = "ADDR")]
    pub master: String,
    /// File holding the cluster's shared-secret token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: super::security::ClientSecurity,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let token = super::security::read_token(args.token_file.as_deref())?;
    let config = args.tls.client_config(ClientConfig::default())?;
    let rt = super::server::runtime()?;
    let (status, models) = rt
        .block_on(async {
            let master = GrpcCoordinator::new(&args.master, token.as_deref(), &config)?;
            let status = match master.call(MasterRequest::Status).await? {
                MasterResponse::Status(s) => s,
                other => bail!("unexpected answer from the master: {other:?}"),
            };
            let models = match master.call(MasterRequest::ListModels).await? {
                MasterResponse::Models(m) => m,
                other => bail!("unexpected answer from the master: {other:?}"),
            };
            anyhow::Ok((status, models))
        })
        .with_context(|| format!("asking the master at {}", args.master))?;
    if args.json {
        let servers: Vec<_> = status
            .servers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "shard": s.shard,
                    "addr": s.addr,
                    "alive": s.alive,
                    "last_seen_secs": s.last_seen.map(|d| d.as_secs_f64()),
                })
            })
            .collect();
        let models: Vec<_> = models
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.spec.name, "rows": m.spec.rows, "cols": m.spec.cols,
                    "dtype": format!("{:?}", m.spec.dtype), "shards": m.shards,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "cluster": status.cluster,
            "server_timeout_secs": status.server_timeout.as_secs_f64(),
            "servers": servers,
            "models": models,
        });
        crate::console::print_line(serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = vec![format!(
        "cluster {} ({} servers, a server unheard for {}s is down)",
        status.cluster,
        status.servers.len(),
        status.server_timeout.as_secs()
    )];
    for s in &status.servers {
        let seen = s
            .last_seen
            .map_or("not heard since the master started".to_string(), |d| {
                format!("last heard {:.1}s ago", d.as_secs_f64())
            });
        out.push(format!(
            "  shard {:>3}  {:<28} {:<5} {seen}",
            s.shard,
            s.addr.as_deref().unwrap_or("(empty slot)"),
            if s.alive { "up" } else { "DOWN" },
        ));
    }
    out.push(format!("{} models", models.len()));
    for m in &models {
        out.push(format!(
            "  {}  {} × {} {:?} over {} shards",
            m.spec.name, m.spec.rows, m.spec.cols, m.spec.dtype, m.shards
        ));
    }
    crate::console::print_line(out.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
