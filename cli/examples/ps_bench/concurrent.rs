//! The concurrent part of `ps_bench`: several client processes, each with several tasks, pushing
//! and pulling against one `glint-lda server` at once (the LDA pattern: samplers push deltas while
//! others pull the rows of their next block). Reports total push throughput and the p50/p99
//! latency of a pull while the pushes run.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ps_core::{ClientConfig, DType, ModelSpec, Storage};

use crate::{BATCH_SEED, Batch, PsBenchArgs, distinct_rows, make_batches, median};

/// The model every client process of the concurrent run pushes to and pulls from.
const MODEL: &str = "bench-concurrent";

/// What one client process measured.
pub struct ClientFigures {
    pub updates: u64,
    pub secs: f64,
    pub pull_ms: Vec<f64>,
}

/// The merged figures of all client processes.
pub struct ConcurrentFigures {
    pub clients: usize,
    pub tasks: usize,
    pub push_updates_per_s: f64,
    pub pulls: usize,
    pub pull_p50_ms: f64,
    pub pull_p99_ms: f64,
}

fn client_config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(120),
        ..ClientConfig::default()
    }
}

/// Creates the model on the cluster at `master`, runs `--concurrent-clients` copies of this
/// program as clients (`--client-of`), and merges their figures.
pub fn run(
    rt: &tokio::runtime::Runtime,
    a: &PsBenchArgs,
    master: &str,
) -> anyhow::Result<ConcurrentFigures> {
    rt.block_on(async {
        let client = ps_core::grpc::connect(master, None, client_config(), 1)
            .await
            .with_context(|| format!("connecting to {master}"))?;
        let spec =
            ModelSpec::matrix(MODEL, a.rows, a.cols, DType::I32).with_storage(Storage::Sparse);
        client
            .create_matrix::<i32>(spec)
            .await
            .context("creating the concurrent benchmark matrix")?;
        anyhow::Ok(())
    })?;
    let exe = std::env::current_exe().context("locating this executable")?;
    let children: Vec<_> = (0..a.concurrent_clients)
        .map(|i| {
            Command::new(&exe)
                .args(["--client-of", master, "--client-seed", &i.to_string()])
                .args(["--rows", &a.rows.to_string(), "--cols", &a.cols.to_string()])
                .args(["--batch", &a.batch.to_string()])
                .args(["--batch-rows", &a.batch_rows.to_string()])
                .args(["--pushes", &a.pushes.to_string()])
                .args(["--pull-rows", &a.pull_rows.to_string()])
                .args(["--concurrent-tasks", &a.concurrent_tasks.to_string()])
                .args(["--concurrent-secs", &a.concurrent_secs.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("spawning client process {i}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut all = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for client process {i}"))?;
        if !out.status.success() {
            bail!("client process {i} failed ({})", out.status);
        }
        all.push(parse(&String::from_utf8_lossy(&out.stdout))?);
    }
    rt.block_on(async {
        let client = ps_core::grpc::connect(master, None, client_config(), 1).await?;
        client.destroy(MODEL).await?;
        anyhow::Ok(())
    })
    .context("destroying the concurrent benchmark matrix")?;
    Ok(merge(a, &all))
}

fn merge(a: &PsBenchArgs, all: &[ClientFigures]) -> ConcurrentFigures {
    let updates: u64 = all.iter().map(|c| c.updates).sum();
    let secs = all.iter().map(|c| c.secs).fold(0.0, f64::max);
    let mut pulls: Vec<f64> = all.iter().flat_map(|c| c.pull_ms.iter().copied()).collect();
    pulls.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if pulls.is_empty() {
            f64::NAN
        } else {
            pulls[((pulls.len() - 1) as f64 * q).round() as usize]
        }
    };
    ConcurrentFigures {
        clients: all.len(),
        tasks: a.concurrent_tasks,
        push_updates_per_s: updates as f64 / secs.max(1e-9),
        pulls: pulls.len(),
        pull_p50_ms: quantile(0.5),
        pull_p99_ms: quantile(0.99),
    }
}

/// One client process (`--client-of MASTER`): half its tasks push batches in a loop, the other
/// half pull rows in a loop and time each pull, for `--concurrent-secs`. Prints its figures as
/// `updates SECS` on the first line and the pull latencies (ms) on the second.
pub fn client_process(a: &PsBenchArgs, master: &str) -> anyhow::Result<()> {
    let rt = crate::runtime()?;
    let batches: Arc<Vec<Batch>> = Arc::new(make_batches(a, BATCH_SEED + a.client_seed));
    let pull = Arc::new(distinct_rows(&batches[0], a.pull_rows));
    let figures = rt.block_on(async {
        let client = ps_core::grpc::connect(master, None, client_config(), 1)
            .await
            .with_context(|| format!("connecting to {master}"))?;
        let m = client.matrix::<i32>(MODEL).await?;
        let until = Instant::now() + Duration::from_secs_f64(a.concurrent_secs);
        let start = Instant::now();
        let tasks = a.concurrent_tasks;
        let mut pushers = Vec::new();
        let mut pullers = Vec::new();
        for t in 0..tasks {
            let (m, batches, pull) = (m.clone(), batches.clone(), pull.clone());
            if t % 2 == 0 {
                pushers.push(tokio::spawn(async move {
                    let mut updates = 0u64;
                    for b in batches.iter().cycle().skip(t) {
                        if Instant::now() >= until {
                            break;
                        }
                        m.push(&b.rows, &b.cols, &b.values).await?;
                        updates += b.rows.len() as u64;
                    }
                    anyhow::Ok(updates)
                }));
            } else {
                pullers.push(tokio::spawn(async move {
                    let mut times = Vec::new();
                    while Instant::now() < until {
                        let t0 = Instant::now();
                        m.pull_rows(&pull).await?;
                        times.push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                    anyhow::Ok(times)
                }));
            }
        }
        let mut updates = 0;
        for p in pushers {
            updates += p.await.context("a push task failed")??;
        }
        let secs = start.elapsed().as_secs_f64();
        let mut pull_ms = Vec::new();
        for p in pullers {
            pull_ms.extend(p.await.context("a pull task failed")??);
        }
        anyhow::Ok(ClientFigures {
            updates,
            secs,
            pull_ms,
        })
    })?;
    println!("{} {}", figures.updates, figures.secs);
    let ms: Vec<String> = figures.pull_ms.iter().map(|v| format!("{v:.3}")).collect();
    println!("{}", ms.join(" "));
    Ok(())
}

fn parse(out: &str) -> anyhow::Result<ClientFigures> {
    let mut lines = out.lines();
    let head = lines.next().context("a client process printed nothing")?;
    let mut head = head.split_whitespace();
    let updates = head
        .next()
        .context("no update count")?
        .parse()
        .context("update count")?;
    let secs = head
        .next()
        .context("no duration")?
        .parse()
        .context("duration")?;
    let pull_ms = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|v| v.parse::<f64>().context("pull latency"))
        .collect::<anyhow::Result<_>>()?;
    Ok(ClientFigures {
        updates,
        secs,
        pull_ms,
    })
}

/// The report's concurrent section: per stripe count, the medians over repetitions of each
/// figure.
pub fn print(stripes: &[usize], runs: &[Vec<ConcurrentFigures>]) {
    let Some(first) = runs.iter().find_map(|r| r.first()) else {
        return;
    };
    let (clients, tasks) = (first.clients, first.tasks);
    let pick = |f: fn(&ConcurrentFigures) -> f64, runs: &[ConcurrentFigures]| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        median(&mut v)
    };
    println!(
        "\nConcurrent: {clients} client processes × {tasks} tasks (half pushing, half pulling) \
         against 1 server process per lock-stripe setting; medians over {} repetitions, the \
         settings' repetitions interleaved.\n",
        runs.first().map_or(0, Vec::len)
    );
    println!("| lock stripes | push updates/s | pulls per run | pull p50 (ms) | pull p99 (ms) |");
    println!("|---:|---:|---:|---:|---:|");
    for (n, runs) in stripes.iter().zip(runs) {
        if runs.is_empty() {
            continue;
        }
        let push = pick(|r| r.push_updates_per_s, runs);
        let p50 = pick(|r| r.pull_p50_ms, runs);
        let p99 = pick(|r| r.pull_p99_ms, runs);
        let pulls = pick(|r| r.pulls as f64, runs);
        println!(
            "| {n} | {:.2}M | {pulls:.0} | {p50:.1} | {p99:.1} |",
            push / 1e6
        );
    }
}
