//! The parameter-server benchmark (run by `benchsuite/ps.sh`). An LDA-like workload on a sparse
//! i32 matrix (by default 100,000 × 1,000): pushes of 100,000 (row, col, ±1) updates over 1,000
//! rows, and pulls of 1,000 sparse rows. It runs in-process, over gRPC on loopback against 1 and 3
//! `glint-lda server` processes (spawned, with their master, from the built `glint-lda` binary),
//! and beside them measures raw loopback TCP throughput of the same encoded push bytes. Prints a
//! Markdown table of medians and ratios. Then (`--concurrent-clients`, default 2) several client
//! processes of this program push and pull at once against one server: total push throughput and
//! the pull latency (p50/p99) while pushes run (`concurrent.rs`).
//!
//! ```text
//! cargo build --release -p cli --bin glint-lda --example ps_bench
//! target/release/examples/ps_bench --reps 3 [--glint-lda target/release/glint-lda]
//! ```

mod concurrent;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use ps_core::message::Push;
use ps_core::{
    Client, ClientConfig, ClusterConfig, DType, EmbeddedCluster, Matrix, ModelSpec, Storage, Values,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The parameter server: pushes and pulls in-process, over gRPC, and raw TCP beside them.
#[derive(Parser, Debug)]
#[command(name = "ps_bench")]
struct PsBenchArgs {
    /// Rows of the matrix (words).
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Columns of the matrix (topics).
    #[arg(long, default_value_t = 1_000)]
    cols: u32,
    /// Updates per push.
    #[arg(long, default_value_t = 100_000)]
    batch: usize,
    /// Distinct rows one push touches.
    #[arg(long, default_value_t = 1_000)]
    batch_rows: u64,
    /// Pushes per repetition.
    #[arg(long, default_value_t = 8)]
    pushes: usize,
    /// Pushes in flight at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Rows per pull.
    #[arg(long, default_value_t = 1_000)]
    pull_rows: usize,
    /// Repetitions; the report gives medians.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Server process counts to run the gRPC path with.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    servers: Vec<usize>,
    /// In-process shard counts to run the embedded path with (`glint-lda train` uses one shard
    /// per sampler thread).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    inproc_shards: Vec<usize>,
    /// The `glint-lda` binary that runs the master and servers (default: $GLINT_LDA, else the
    /// `glint-lda` of the build this program belongs to, e.g. target/release/glint-lda).
    #[arg(long, value_name = "PATH")]
    glint_lda: Option<PathBuf>,
    /// Client processes of the concurrent run against one server (0 skips it).
    #[arg(long, default_value_t = 2)]
    concurrent_clients: usize,
    /// Tasks per client process in the concurrent run; half push, half pull.
    #[arg(long, default_value_t = 8)]
    concurrent_tasks: usize,
    /// Seconds each concurrent repetition runs.
    #[arg(long, default_value_t = 5.0)]
    concurrent_secs: f64,
    /// Lock stripes per partition of the concurrent run's server (`glint-lda server
    /// --lock-stripes`), one row each, repetitions interleaved; 1 is one lock per partition.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    concurrent_stripes: Vec<usize>,
    /// Internal: run as one client process of the concurrent run against this master.
    #[arg(long, hide = true, value_name = "ADDR")]
    client_of: Option<String>,
    /// Internal: the client process's number (varies its batches).
    #[arg(long, hide = true, default_value_t = 0)]
    client_seed: u64,
}

/// The seed of the batches every run pushes (a concurrent client adds its number).
const BATCH_SEED: u64 = 0x5eed;

fn main() -> ExitCode {
    let args = PsBenchArgs::parse();
    let result = match args.client_of.clone() {
        Some(master) => concurrent::client_process(&args, &master),
        None => bench_ps(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `glint-lda` binary: the flag, else `$GLINT_LDA`, else beside this example's directory
/// (`target/<profile>/examples/ps_bench` → `target/<profile>/glint-lda`).
fn glint_lda(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match (given, std::env::var_os("GLINT_LDA")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            let exe = std::env::current_exe().context("locating this executable")?;
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .context("this executable has no target/<profile> directory above it")?;
            profile_dir.join(format!("glint-lda{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        bail!(
            "no glint-lda binary at {} (build it with `cargo build --release -p cli`, or pass \
             --glint-lda PATH or set GLINT_LDA)",
            path.display()
        );
    }
    Ok(path)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// One pushed batch, in the column layout a push takes.
struct Batch {
    rows: Vec<u64>,
    cols: Vec<u32>,
    values: Vec<i32>,
}

/// A measured path: medians over the repetitions.
struct Figures {
    path: String,
    /// Server processes behind the path (0 in-process).
    servers: usize,
    push_updates_per_s: f64,
    wire_bytes_per_update: Option<f64>,
    pull_ms: f64,
    pulled_elements: usize,
}

fn bench_ps(a: PsBenchArgs) -> anyhow::Result<()> {
    if a.rows == 0
        || a.cols == 0
        || a.batch == 0
        || a.batch_rows == 0
        || a.reps == 0
        || a.pushes == 0
    {
        bail!("--rows, --cols, --batch, --batch-rows, --pushes and --reps must be positive");
    }
    let exe = glint_lda(a.glint_lda.as_deref())?;
    let batches = make_batches(&a, BATCH_SEED);
    let pull: Vec<u64> = distinct_rows(&batches[0], a.pull_rows);
    let rt = runtime()?;
    let mut results = Vec::new();

    for &shards in &a.inproc_shards {
        eprintln!("in-process, {shards} shard(s) ...");
        let cluster = EmbeddedCluster::start(shards, ClusterConfig::default())
            .context("starting the embedded cluster")?;
        results.push(rt.block_on(measure(
            format!("in-process, {shards} shard(s)"),
            0,
            cluster.client(),
            &a,
            &batches,
            &pull,
            None,
        ))?);
    }

    for &n in &a.servers {
        eprintln!("gRPC, {n} server processes ...");
        let cluster = Processes::start(&exe, n, &[])?;
        let wire = wire_bytes(&batches[0], n)?;
        let figures = rt.block_on(async {
            let config = ClientConfig {
                timeout: Duration::from_secs(120),
                ..ClientConfig::default()
            };
            let client = ps_core::grpc::connect(&cluster.master, None, config, n)
                .await
                .with_context(|| {
                    format!("connecting to the benchmark master at {}", cluster.master)
                })?;
            measure(
                format!("gRPC loopback, {n} server process(es)"),
                n,
                client,
                &a,
                &batches,
                &pull,
                Some(wire),
            )
            .await
        })?;
        results.push(figures);
    }

    eprintln!("raw TCP ...");
    let payload: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| {
            push_message(b)
                .and_then(|p| ps_core::grpc::encode::push_bytes(&p).map_err(anyhow::Error::from))
        })
        .collect::<anyhow::Result<_>>()?;
    let raw_mb_s = rt.block_on(raw_tcp(&payload, a.reps))?;

    print_report(&a, &results, raw_mb_s, &payload);

    if a.concurrent_clients > 0 {
        if a.concurrent_tasks < 2 || !a.concurrent_secs.is_finite() || a.concurrent_secs <= 0.0 {
            bail!("--concurrent-tasks must be at least 2 and --concurrent-secs positive");
        }
        eprintln!(
            "gRPC, 1 server process, {} concurrent client processes ...",
            a.concurrent_clients
        );
        if a.concurrent_stripes.contains(&0) {
            bail!("--concurrent-stripes must be positive");
        }
        let clusters = a
            .concurrent_stripes
            .iter()
            .map(|n| Processes::start(&exe, 1, &["--lock-stripes".to_string(), n.to_string()]))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut runs: Vec<Vec<_>> = clusters.iter().map(|_| Vec::new()).collect();
        for _ in 0..a.reps {
            for (cluster, runs) in clusters.iter().zip(&mut runs) {
                runs.push(concurrent::run(&rt, &a, &cluster.master)?);
            }
        }
        concurrent::print(&a.concurrent_stripes, &runs);
    }
    Ok(())
}

/// Pushes then pulls on `client`; returns the medians.
async fn measure(
    path: String,
    servers: usize,
    client: Client,
    a: &PsBenchArgs,
    batches: &[Batch],
    pull: &[u64],
    wire_bytes_per_update: Option<f64>,
) -> anyhow::Result<Figures> {
    let spec = ModelSpec::matrix("bench", a.rows, a.cols, DType::I32).with_storage(Storage::Sparse);
    let m = client
        .create_matrix::<i32>(spec)
        .await
        .context("creating the benchmark matrix")?;
    let batches: Arc<Vec<Batch>> = Arc::new(batches.iter().map(copy_batch).collect());
    let mut push_times = Vec::new();
    for _ in 0..a.reps {
        let start = Instant::now();
        let mut workers = Vec::new();
        for w in 0..a.in_flight.max(1) {
            let (m, batches, step) = (m.clone(), batches.clone(), a.in_flight.max(1));
            workers.push(tokio::spawn(async move {
                for b in batches.iter().skip(w).step_by(step) {
                    m.push(&b.rows, &b.cols, &b.values).await?;
                }
                anyhow::Ok(())
            }));
        }
        for w in workers {
            w.await.context("a push task failed")??;
        }
        push_times.push(start.elapsed().as_secs_f64());
    }
    let mut pull_times = Vec::new();
    let mut pulled_elements = 0;
    for _ in 0..a.reps {
        let start = Instant::now();
        let rows = pull_rows(&m, pull).await?;
        pull_times.push(start.elapsed().as_secs_f64());
        pulled_elements = rows;
    }
    client
        .destroy("bench")
        .await
        .context("destroying the benchmark matrix")?;
    let updates = (a.pushes * a.batch) as f64;
    Ok(Figures {
        path,
        servers,
        push_updates_per_s: updates / median(&mut push_times),
        wire_bytes_per_update,
        pull_ms: median(&mut pull_times) * 1e3,
        pulled_elements,
    })
}

async fn pull_rows(m: &Matrix<i32>, rows: &[u64]) -> anyhow::Result<usize> {
    let got = m.pull_rows(rows).await.context("pulling rows")?;
    Ok(got.iter().map(|r| r.nonzeros().len()).sum())
}

/// Average encoded bytes per update of `batch` split over `shards` cyclically partitioned shards.
fn wire_bytes(batch: &Batch, shards: usize) -> anyhow::Result<f64> {
    let mut total = 0;
    for s in 0..shards.max(1) {
        let keep: Vec<usize> = (0..batch.rows.len())
            .filter(|&i| batch.rows[i] as usize % shards.max(1) == s)
            .collect();
        let part = Batch {
            rows: keep.iter().map(|&i| batch.rows[i]).collect(),
            cols: keep.iter().map(|&i| batch.cols[i]).collect(),
            values: keep.iter().map(|&i| batch.values[i]).collect(),
        };
        total += ps_core::grpc::encode::push_bytes(&push_message(&part)?)?.len();
    }
    Ok(total as f64 / batch.rows.len() as f64)
}

fn push_message(b: &Batch) -> anyhow::Result<Push> {
    Ok(Push {
        model: "bench".to_string(),
        writer: 1,
        seq: 1,
        rows: b.rows.clone(),
        cols: b.cols.clone(),
        values: Values::I32(b.values.clone()),
    })
}

fn copy_batch(b: &Batch) -> Batch {
    Batch {
        rows: b.rows.clone(),
        cols: b.cols.clone(),
        values: b.values.clone(),
    }
}

/// Sends every payload as a length-prefixed frame over loopback TCP to a sink that reads them into
/// one reused buffer and acknowledges each repetition (of at least 64 MB); returns the median MB/s.
async fn raw_tcp(payload: &[Vec<u8>], reps: usize) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the TCP sink")?;
    let addr = listener.local_addr()?;
    // Enough rounds of the payload per repetition to move at least 64 MB.
    let once: usize = payload.iter().map(|p| p.len() + 4).sum();
    let rounds = (64_000_000 / once.max(1)).max(1);
    let frames = payload.len() * rounds;
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = Vec::new();
        for _ in 0..reps {
            for _ in 0..frames {
                let len = s.read_u32_le().await? as usize;
                buf.resize(len, 0);
                s.read_exact(&mut buf).await?;
            }
            s.write_u8(1).await?;
        }
        std::io::Result::Ok(())
    });
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting to the TCP sink")?;
    s.set_nodelay(true)?;
    let bytes = once * rounds;
    let mut times = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        for p in payload.iter().cycle().take(frames) {
            s.write_u32_le(p.len() as u32).await?;
            s.write_all(p).await?;
        }
        s.read_u8()
            .await
            .context("waiting for the sink's acknowledgement")?;
        times.push(start.elapsed().as_secs_f64());
    }
    sink.await.context("the TCP sink failed")??;
    Ok(bytes as f64 / median(&mut times) / 1e6)
}

/// The Markdown report: the workload, then one row per path with its medians, the updates per
/// server process and the push bytes/s as a share of raw TCP's.
fn print_report(a: &PsBenchArgs, results: &[Figures], raw_mb_s: f64, payload: &[Vec<u8>]) {
    let raw_bpu =
        payload.iter().map(Vec::len).sum::<usize>() as f64 / (payload.len() * a.batch) as f64;
    println!(
        "Workload: sparse i32 matrix {} × {}; {} pushes of {} (row, col, ±1) updates over {} rows per repetition, \
         {} in flight; pulls of {} rows; {} repetitions, medians.\n",
        a.rows, a.cols, a.pushes, a.batch, a.batch_rows, a.in_flight, a.pull_rows, a.reps
    );
    println!(
        "| path | push updates/s | per server process | wire bytes/update | push MB/s | vs raw TCP | pull {} rows (ms) | pulled non-zeros |",
        a.pull_rows
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let per_process = if r.servers > 0 {
            format!("{:.2}M", r.push_updates_per_s / r.servers as f64 / 1e6)
        } else {
            "-".into()
        };
        let (bpu, mb_s, ratio) = match r.wire_bytes_per_update {
            Some(b) => {
                let mb = r.push_updates_per_s * b / 1e6;
                (
                    format!("{b:.2}"),
                    format!("{mb:.1}"),
                    format!("{:.1}%", 100.0 * mb / raw_mb_s),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {:.2}M | {per_process} | {bpu} | {mb_s} | {ratio} | {:.1} | {} |",
            r.path,
            r.push_updates_per_s / 1e6,
            r.pull_ms,
            r.pulled_elements
        );
    }
    println!(
        "| raw loopback TCP, same push bytes | {:.2}M (at {raw_bpu:.2} B/update) | - | {raw_bpu:.2} | {raw_mb_s:.1} | 100% | - | - |",
        raw_mb_s / raw_bpu
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// SplitMix64: a small deterministic generator, so every run pushes the same batches.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn make_batches(a: &PsBenchArgs, seed: u64) -> Vec<Batch> {
    let mut rng = Rng(seed);
    (0..a.pushes)
        .map(|_| {
            let words: Vec<u64> = (0..a.batch_rows).map(|_| rng.below(a.rows)).collect();
            let mut b = Batch {
                rows: Vec::with_capacity(a.batch),
                cols: Vec::with_capacity(a.batch),
                values: Vec::with_capacity(a.batch),
            };
            for _ in 0..a.batch {
                b.rows.push(words[rng.below(words.len() as u64) as usize]);
                b.cols.push(rng.below(u64::from(a.cols)) as u32);
                b.values.push(if rng.next() & 1 == 0 { 1 } else { -1 });
            }
            b
        })
        .collect()
}

/// Up to `n` distinct rows of `batch`, then more rows after them if it has fewer.
fn distinct_rows(batch: &Batch, n: usize) -> Vec<u64> {
    let mut rows = batch.rows.clone();
    rows.sort_unstable();
    rows.dedup();
    rows.truncate(n);
    let mut next = 0;
    while rows.len() < n {
        if !rows.contains(&next) {
            rows.push(next);
        }
        next += 1;
    }
    rows
}

/// A master and `n` server processes spawned from the `glint-lda` binary, killed on drop.
struct Processes {
    master: String,
    children: Vec<Child>,
}

impl Processes {
    /// `server_args` are added to every server's command line.
    fn start(exe: &Path, n: usize, server_args: &[String]) -> anyhow::Result<Self> {
        let mut procs = Processes {
            master: String::new(),
            children: Vec::new(),
        };
        let banner =
            procs.spawn(Command::new(exe).args(["-q", "master", "--bind", "127.0.0.1:0"]))?;
        procs.master = banner
            .split(' ')
            .nth(2)
            .context("no address in the master's banner")?
            .to_string();
        for _ in 0..n {
            let mut cmd = Command::new(exe);
            cmd.args([
                "-q",
                "server",
                "--master",
                &procs.master,
                "--bind",
                "127.0.0.1:0",
            ]);
            cmd.args(server_args);
            procs.spawn(&mut cmd)?;
        }
        Ok(procs)
    }

    /// Starts `cmd` and returns its first stdout line (`listening on ...`).
    fn spawn(&mut self, cmd: &mut Command) -> anyhow::Result<String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        self.children.push(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .with_context(|| format!("reading the banner of {cmd:?}"))?;
        if !line.starts_with("listening on ") {
            bail!("{cmd:?} did not start (printed {line:?})");
        }
        Ok(line.trim().to_string())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
