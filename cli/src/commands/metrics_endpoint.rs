//! `--metrics-addr`: the Prometheus text endpoint of a process, off by default.

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (requests, bytes, retries, errors, lock wait, tokens/s, iteration,
    /// held-out perplexity) at http://ADDR/metrics. Off by default; give a loopback address
    /// (127.0.0.1:9100) unless the scraper runs elsewhere.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Starts the endpoint on `rt` (it runs until the process exits).
    pub fn start(&self, rt: &tokio::runtime::Handle) -> anyhow::Result<()> {
        rt.block_on(self.spawn())
    }

    /// Binds the endpoint and serves it on a task of the current runtime.
    pub async fn spawn(&self) -> anyhow::Result<()> {
        let Some(addr) = &self.metrics_addr else {
            return Ok(());
        };
        let listener = ps_core::metrics::bind(addr)
            .await
            .with_context(|| format!("--metrics-addr {addr}"))?;
        let bound = listener
            .local_addr()
            .context("reading the metrics address")?;
        if !bound.ip().is_loopback() {
            tracing::warn!(%bound, "the metrics endpoint is reachable beyond this machine");
        }
        eprintln!("metrics on http://{bound}/metrics");
        tokio::spawn(async move {
            if let Err(e) = ps_core::metrics::serve(listener, std::future::pending()).await {
                tracing::warn!(error = %e, "metrics endpoint stopped");
            }
        });
        Ok(())
    }
}
