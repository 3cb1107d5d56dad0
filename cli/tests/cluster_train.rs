//! Cluster mode as a user runs it: a `glint-lda master`, two `glint-lda server` processes, two
//! `glint-lda worker` processes and the driver (`glint-lda train --master --workers`), all on
//! 127.0.0.1 with ephemeral ports and a shared token. Processes are killed when a test ends,
//! however it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{glint, ok, split_corpus};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");
const TOKEN: &str = "cluster-secret";

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Waits for the process to exit (at most `limit`), returning its output.
    fn wait(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "a process did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }

    /// Its stderr, after asserting that it exited successfully.
    fn succeeds(self) -> String {
        let out = self.wait(Duration::from_secs(300));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        err
    }

    /// Its stderr, after asserting that it failed.
    fn fails(self) -> String {
        let out = self.wait(Duration::from_secs(60));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Starts a master or server and returns it with the address of its `listening on` banner.
fn listen(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let addr = banner
        .trim()
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{args:?} printed {banner:?}"))
        .to_string();
    (Proc(child), addr)
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap())
}

/// One test's cluster: a temporary directory with a corpus and a token, a master, and servers
/// (2 on ephemeral ports unless the test starts its own).
struct Run {
    tmp: tempfile::TempDir,
    token: String,
    master: String,
    corpus: String,
    procs: Vec<Proc>,
}

impl Run {
    /// `big`: a corpus on which a run lasts seconds (for killing things mid-run); else the
    /// split synthetic corpus of `common::split_corpus` (`train`, `test`, truth in `all`).
    fn new(big: bool, servers: usize) -> Run {
        let tmp = tempfile::tempdir().unwrap();
        let corpus = if big {
            let dir = tmp.path().join("corpus");
            ok(&glint(&[
                "-q",
                "synth",
                "--out",
                dir.to_str().unwrap(),
                "--docs",
                "3000",
                "--vocab",
                "2000",
                "--topics",
                "10",
                "--mean-len",
                "100",
                "--seed",
                "5",
                "--no-theta",
            ]));
            dir
        } else {
            split_corpus(tmp.path());
            tmp.path().join("train")
        };
        let token = tmp.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let token = token.to_str().unwrap().to_string();
        let (master, addr) = listen(&["master", "--bind", "127.0.0.1:0", "--token-file", &token]);
        let mut run = Run {
            corpus: corpus.to_str().unwrap().to_string(),
            tmp,
            token,
            master: addr,
            procs: vec![master],
        };
        for _ in 0..servers {
            let server = run.server("127.0.0.1:0");
            run.procs.push(server);
        }
        run
    }

    fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).to_str().unwrap().to_string()
    }

    /// A server on `bind`; one on a fixed address keeps its data directory (and shard id)
    /// across restarts, ephemeral ones have none (two would otherwise share it).
    fn server(&self, bind: &str) -> Proc {
        let args = [
            "server",
            "--master",
            &self.master,
            "--bind",
            bind,
            "--token-file",
            &self.token,
        ];
        if bind.ends_with(":0") {
            return listen(&args).0;
        }
        let data = self.path(&format!("data-{}", bind.replace([':', '.'], "-")));
        listen(&[&args[..], &["--data-dir", &data]].concat()).0
    }

    /// Worker `index` of `job` with its own state directory, plus `extra` flags.
    fn worker(&self, job: &str, index: &str, extra: &[&str]) -> Proc {
        let state = self.path(&format!("state-{index}"));
        let base = [
            "worker",
            "--master",
            &self.master,
            "--job",
            job,
            "--corpus",
            &self.corpus,
            "--index",
            index,
            "--threads",
            "1",
            "--token-file",
            &self.token,
            "--state-dir",
            &state,
        ];
        spawn(&[&base[..], extra].concat(), &[])
    }

    /// The driver of `workers` workers of `job`, writing to `model`, plus `extra` flags.
    fn driver(&self, job: &str, model: &str, extra: &[&str]) -> Proc {
        let base = [
            "train",
            "--master",
            &self.master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            job,
            "--token-file",
            &self.token,
            "--corpus",
            &self.corpus,
            "--out",
            model,
        ];
        spawn(&[&base[..], extra].concat(), &[])
    }
}

fn heldout_perplexity(model: &Path) -> f64 {
    let text = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    let last = text.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    v["heldout_perplexity"].as_f64().unwrap()
}

fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Iterations in the driver's metrics.jsonl, in order.
fn logged_iterations(model: &Path) -> Vec<u64> {
    std::fs::read_to_string(model.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["iteration"].as_u64())
        .collect()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exported model accounts for every token of the corpus exactly once.
fn assert_counts_match(model: &Path, corpus: &str) {
    let totals: Vec<i64> = serde_json::from_value(json(model.join("topic_totals.json"))).unwrap();
    let tokens = json(Path::new(corpus).join("manifest.json"))["tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(totals.iter().sum::<i64>() as u64, tokens);
}

const TRAIN: [&str; 10] = [
    "--topics",
    "5",
    "--alpha",
    "0.2",
    "--beta",
    "0.05",
    "--iterations",
    "60",
    "--eval-every",
    "20",
];

#[test]
fn two_worker_processes_train_as_well_as_the_embedded_run() {
    let run = Run::new(false, 2);
    let (test, truth) = (run.path("test"), run.path("all"));
    // Workers may start before the driver: they wait for the job. One takes its index from the
    // Kubernetes variable, the other from Slurm's.
    let worker = |var: &str, index: &str| {
        let args = [
            "worker",
            "--master",
            &run.master,
            "--job",
            "t1",
            "--corpus",
            &run.corpus,
            "--threads",
            "1",
            "--token-file",
            &run.token,
        ];
        spawn(&args, &[(var, index)])
    };
    let workers = [
        worker("JOB_COMPLETION_INDEX", "0"),
        worker("SLURM_PROCID", "1"),
    ];
    let model = run.path("cluster-model");
    run.driver("t1", &model, &[&["--test", &test][..], &TRAIN].concat())
        .succeeds();
    for w in workers {
        w.succeeds();
    }
    let embedded = run.path("embedded-model");
    let args = [
        "train",
        "--corpus",
        &run.corpus,
        "--test",
        &test,
        "--out",
        &embedded,
    ];
    ok(&glint(&[&args[..], &["--threads", "2"], &TRAIN].concat()));

    let (c, e) = (
        heldout_perplexity(Path::new(&model)),
        heldout_perplexity(Path::new(&embedded)),
    );
    assert!((c / e - 1.0).abs() < 0.03, "cluster {c} vs embedded {e}");
    // The model directory is complete: every document's θ, and topics close to the truth.
    let eval = ok(&glint(&[
        "eval", "--model", &model, "--test", &test, "--truth", &truth, "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let hellinger = v["truth_hellinger"].as_f64().unwrap();
    assert!(hellinger < 0.2, "Hellinger to the truth {hellinger}");
    let topics = ok(&glint(&["topics", "--model", &model]));
    assert!(topics.lines().count() >= 5, "{topics}");
    let vis = run.path("vis");
    ok(&glint(&[
        "topics", "--model", &model, "--format", "pyldavis", "--out", &vis,
    ]));
    let lengths: Vec<u64> =
        serde_json::from_value(json(Path::new(&vis).join("doc_lengths.json"))).unwrap();
    assert_eq!(lengths.len(), 360, "documents with a θ row");
    let tokens = json(Path::new(&run.corpus).join("manifest.json"))["tokens"].as_u64();
    assert_eq!(Some(lengths.iter().sum::<u64>()), tokens);
}

#[test]
fn a_worker_on_the_wrong_corpus_stops_the_whole_run_with_a_clear_error() {
    let run = Run::new(false, 2);
    let good = run.worker("t2", "0", &["--stall-secs", "30"]);
    let wrong = {
        let args = [
            "worker",
            "--master",
            &run.master,
            "--job",
            "t2",
            "--corpus",
            &run.path("test"),
            "--index",
            "1",
            "--token-file",
            &run.token,
        ];
        spawn(&args, &[])
    };
    let model = run.path("model");
    let driver = run.driver("t2", &model, &["--topics", "5", "--stall-secs", "30"]);
    let err = wrong.fails();
    assert!(
        err.contains("but the job 't2' was started on one with"),
        "{err}"
    );
    let err = driver.fails();
    assert!(err.contains("aborted"), "{err}");
    good.fails();
    assert!(!Path::new(&model).join("phi.npy").exists());
}

#[test]
fn a_worker_without_an_index_says_where_it_looks() {
    let out = Command::new(BIN)
        .args([
            "worker",
            "--master",
            "127.0.0.1:1",
            "--corpus",
            "/nonexistent",
        ])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_PROCID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JOB_COMPLETION_INDEX") && err.contains("SLURM_PROCID"),
        "{err}"
    );
}

/// Kills a process of a running job once the driver has logged `after` iterations, lets
/// `restart` bring it back, and checks that the run finishes with every iteration logged once
/// and the counts exact. Returns the driver's stderr and the restarted process.
fn kill_mid_run(
    run: &Run,
    job: &str,
    iterations: &str,
    extra: &[&str],
    after: usize,
    victim: impl FnOnce(&mut Vec<Proc>) -> Proc,
    restart: impl FnOnce(Proc) -> Proc,
) -> (String, Proc) {
    let mut workers = vec![run.worker(job, "0", &[]), run.worker(job, "1", &[])];
    let model = run.path("model");
    let flags = [
        &[
            "--topics",
            "10",
            "--iterations",
            iterations,
            "--checkpoint-every",
        ][..],
        extra,
    ]
    .concat();
    let driver = run.driver(job, &model, &flags);
    let model_dir = PathBuf::from(&model);
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= after
    });
    let killed = victim(&mut workers);
    let back = restart(killed);
    let err = driver.succeeds();
    let n: u64 = iterations.parse().unwrap();
    // One metrics line per iteration, in order: the rolled-back ones were rewritten.
    assert_eq!(logged_iterations(&model_dir), (1..=n).collect::<Vec<u64>>());
    for w in workers {
        w.succeeds();
    }
    // The driver checked the invariants before releasing each attempt and at the end; the
    // exported counts account for every token once more.
    assert_counts_match(&model_dir, &run.corpus);
    (err, back)
}

#[test]
fn a_killed_worker_is_missed_by_its_heartbeat_and_the_run_rolls_back_and_finishes_exactly() {
    let run = Run::new(true, 2);
    let (err, back) = kill_mid_run(
        &run,
        "t3",
        "60",
        &["5", "--heartbeat-timeout-secs", "2"],
        12,
        |w| w.remove(1), // dropped below: kill -9
        |killed| {
            drop(killed);
            // Restarted only after its heartbeat has been missed, as an orchestrator would.
            std::thread::sleep(Duration::from_secs(6));
            run.worker("t3", "1", &[])
        },
    );
    assert!(
        err.contains("worker 1 sent no heartbeat for 2s; rolling back to iteration"),
        "{err}"
    );
    assert!(err.contains("recovered (attempt 1)"), "{err}");
    back.succeeds();
}

#[test]
fn a_worker_restarted_at_once_asks_for_the_rollback_itself() {
    let run = Run::new(true, 2);
    let (err, back) = kill_mid_run(
        &run,
        "t5",
        "40",
        &["4", "--heartbeat-timeout-secs", "30"],
        10,
        |w| w.remove(0),
        |killed| {
            drop(killed);
            run.worker("t5", "0", &[])
        },
    );
    assert!(
        err.contains("recovering: a worker asked for it; rolling back to iteration"),
        "{err}"
    );
    back.succeeds();
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_killed_server_restarted_on_its_address_rolls_the_run_back_and_it_finishes_exactly() {
    let mut run = Run::new(true, 0);
    let addrs = [free_port(), free_port()].map(|port| format!("127.0.0.1:{port}"));
    let s0 = run.server(&addrs[0]);
    run.procs.push(s0);
    let s1 = run.server(&addrs[1]);
    let (err, _server) = kill_mid_run(
        &run,
        "t6",
        "40",
        &["5"],
        12,
        |_| s1,
        |killed| {
            drop(killed); // kill -9: its partitions of every model are gone
            std::thread::sleep(Duration::from_millis(500));
            run.server(&addrs[1])
        },
    );
    assert!(err.contains("rolling back to iteration"), "{err}");
    assert!(err.contains("passed the count invariants"), "{err}");
}

#[test]
fn a_restarted_driver_reattaches_to_the_running_workers() {
    let run = Run::new(true, 2);
    let workers = [run.worker("t4", "0", &[]), run.worker("t4", "1", &[])];
    let model = run.path("model");
    let flags = [
        "--topics",
        "10",
        "--iterations",
        "40",
        "--checkpoint-every",
        "5",
    ];
    let driver = run.driver("t4", &model, &flags);
    let model_dir = PathBuf::from(&model);
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= 8
    });
    drop(driver); // kill -9 of the driver; the workers go on
    let err = run
        .driver("t4", &model, &[&flags[..], &["--resume"]].concat())
        .succeeds();
    assert!(err.contains("resumed the job 't4'"), "{err}");
    assert!(model_dir.join("phi.npy").exists());
    // Iterations the workers ran while no driver was attached are not logged (their figures
    // were never taken); what is logged is in order, once each.
    let logged = logged_iterations(&model_dir);
    assert!(logged.len() >= 8 && logged[0] == 1, "{logged:?}");
    assert!(logged.windows(2).all(|w| w[0] < w[1]), "{logged:?}");
    assert!(logged.last().is_some_and(|&l| l <= 40), "{logged:?}");
    for w in workers {
        w.succeeds();
    }
    assert_counts_match(&model_dir, &run.corpus);
}
