//! Cluster mode as a user runs it: a `glint-lda master`, two `glint-lda server` processes, two
//! `glint-lda worker` processes and the driver (`glint-lda train --master --workers`), all on
//! 127.0.0.1 with ephemeral ports and a shared token. Processes are killed when a test ends,
//! however it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
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

/// A master and two servers sharing `token_file`.
fn cluster(token_file: &Path) -> (Vec<Proc>, String) {
    let token = token_file.to_str().unwrap();
    let (master, addr) = listen(&["master", "--bind", "127.0.0.1:0", "--token-file", token]);
    let mut procs = vec![master];
    for _ in 0..2 {
        let (server, _) = listen(&[
            "server",
            "--master",
            &addr,
            "--bind",
            "127.0.0.1:0",
            "--token-file",
            token,
        ]);
        procs.push(server);
    }
    (procs, addr)
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap())
}

fn heldout_perplexity(model: &Path) -> f64 {
    let text = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    let last = text.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    v["heldout_perplexity"].as_f64().unwrap()
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
    let tmp = tempfile::tempdir().unwrap();
    split_corpus(tmp.path());
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let (train, test, truth) = (p("train"), p("test"), p("all"));
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_cluster, master) = cluster(&token_file);

    // Workers may start before the driver: they wait for the job. One takes its index from the
    // Kubernetes variable, the other from Slurm's.
    let worker = |var: &str, index: &str| {
        spawn(
            &[
                "worker",
                "--master",
                &master,
                "--job",
                "t1",
                "--corpus",
                &train,
                "--threads",
                "1",
                "--token-file",
                token,
            ],
            &[(var, index)],
        )
    };
    let w0 = worker("JOB_COMPLETION_INDEX", "0");
    let w1 = worker("SLURM_PROCID", "1");
    let model = p("cluster-model");
    let mut args = vec![
        "train",
        "--master",
        &master,
        "--servers",
        "2",
        "--workers",
        "2",
        "--job",
        "t1",
        "--token-file",
        token,
        "--corpus",
        &train,
        "--test",
        &test,
        "--out",
        &model,
    ];
    args.extend(TRAIN);
    ok(&glint(&args));
    for w in [w0, w1] {
        let out = w.wait(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let embedded = p("embedded-model");
    let mut args = vec![
        "train",
        "--corpus",
        &train,
        "--test",
        &test,
        "--out",
        &embedded,
        "--threads",
        "2",
    ];
    args.extend(TRAIN);
    ok(&glint(&args));

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
    let vis = p("vis");
    ok(&glint(&[
        "topics", "--model", &model, "--format", "pyldavis", "--out", &vis,
    ]));
    let lengths: Vec<u64> = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&vis).join("doc_lengths.json")).unwrap(),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&train).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(lengths.len(), 360, "documents with a θ row");
    assert_eq!(
        lengths.iter().sum::<u64>(),
        manifest["tokens"].as_u64().unwrap()
    );
}

#[test]
fn a_worker_on_the_wrong_corpus_stops_the_whole_run_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    split_corpus(tmp.path());
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let (train, test) = (p("train"), p("test"));
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_cluster, master) = cluster(&token_file);

    let worker = |index: &str, corpus: &str| {
        spawn(
            &[
                "worker",
                "--master",
                &master,
                "--job",
                "t2",
                "--corpus",
                corpus,
                "--index",
                index,
                "--token-file",
                token,
                "--stall-secs",
                "30",
            ],
            &[],
        )
    };
    let good = worker("0", &train);
    let wrong = worker("1", &test);
    let driver = spawn(
        &[
            "train",
            "--master",
            &master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            "t2",
            "--token-file",
            token,
            "--corpus",
            &train,
            "--topics",
            "5",
            "--iterations",
            "20",
            "--out",
            &p("model"),
            "--stall-secs",
            "30",
        ],
        &[],
    );
    let wrong = wrong.wait(Duration::from_secs(30));
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("but the job 't2' was started on one with"),
        "{err}"
    );
    let driver = driver.wait(Duration::from_secs(30));
    assert!(!driver.status.success());
    let err = String::from_utf8_lossy(&driver.stderr);
    assert!(err.contains("aborted"), "{err}");
    let good = good.wait(Duration::from_secs(30));
    assert!(!good.status.success(), "the other worker must stop too");
    assert!(!Path::new(&p("model")).join("phi.npy").exists());
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

/// A synthetic corpus large enough that a run lasts a few seconds.
fn bigger_corpus(dir: &Path) {
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

#[test]
fn a_killed_worker_is_missed_by_its_heartbeat_and_the_run_rolls_back_and_finishes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    bigger_corpus(&corpus);
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_cluster, master) = cluster(&token_file);
    let corpus = corpus.to_str().unwrap().to_string();
    let worker = |index: &str| {
        let state = p(&format!("state-{index}"));
        spawn(
            &[
                "worker",
                "--master",
                &master,
                "--job",
                "t3",
                "--corpus",
                &corpus,
                "--index",
                index,
                "--threads",
                "1",
                "--token-file",
                token,
                "--state-dir",
                &state,
            ],
            &[],
        )
    };
    let w0 = worker("0");
    let w1 = worker("1");
    let model = p("model");
    let driver = spawn(
        &[
            "train",
            "--master",
            &master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            "t3",
            "--token-file",
            token,
            "--corpus",
            &corpus,
            "--topics",
            "10",
            "--iterations",
            "60",
            "--checkpoint-every",
            "5",
            "--heartbeat-timeout-secs",
            "2",
            "--out",
            &model,
        ],
        &[],
    );
    let model_dir = Path::new(&model).to_path_buf();
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= 12
    });
    drop(w1); // kill -9
    // Restarted only after its heartbeat has been missed, as an orchestrator would.
    std::thread::sleep(Duration::from_secs(4));
    let w1 = worker("1");
    let out = driver.wait(Duration::from_secs(300));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("worker 1 sent no heartbeat for 2s; rolling back to iteration"),
        "{err}"
    );
    assert!(err.contains("recovered (attempt 1)"), "{err}");
    // One metrics line per iteration, in order: the rolled-back ones were rewritten.
    assert_eq!(
        logged_iterations(&model_dir),
        (1..=60).collect::<Vec<u64>>()
    );
    for w in [w0, w1] {
        let out = w.wait(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The driver checked the invariants before releasing each attempt and at the end; the
    // exported counts account for every token once more.
    let totals: Vec<i64> = serde_json::from_str(
        &std::fs::read_to_string(model_dir.join("topic_totals.json")).unwrap(),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&corpus).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        totals.iter().sum::<i64>() as u64,
        manifest["tokens"].as_u64().unwrap()
    );
}

#[test]
fn a_restarted_driver_reattaches_to_the_running_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    bigger_corpus(&corpus);
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_cluster, master) = cluster(&token_file);
    let corpus = corpus.to_str().unwrap().to_string();
    let workers: Vec<Proc> = ["0", "1"]
        .iter()
        .map(|i| {
            spawn(
                &[
                    "worker",
                    "--master",
                    &master,
                    "--job",
                    "t4",
                    "--corpus",
                    &corpus,
                    "--index",
                    i,
                    "--threads",
                    "1",
                    "--token-file",
                    token,
                    "--state-dir",
                    &p(&format!("s{i}")),
                ],
                &[],
            )
        })
        .collect();
    let model = p("model");
    let driver_args = |resume: bool| {
        let mut a = vec![
            "train",
            "--master",
            &master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            "t4",
            "--token-file",
            token,
            "--corpus",
            &corpus,
            "--topics",
            "10",
            "--iterations",
            "40",
            "--checkpoint-every",
            "5",
            "--out",
            &model,
        ];
        if resume {
            a.push("--resume");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args: Vec<String> = driver_args(false);
    let driver = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let model_dir = Path::new(&model).to_path_buf();
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= 8
    });
    drop(driver); // kill -9 of the driver; the workers go on
    let args: Vec<String> = driver_args(true);
    let out = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
        .wait(Duration::from_secs(300));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("resumed the job 't4'"), "{err}");
    assert!(Path::new(&model).join("phi.npy").exists());
    let logged = logged_iterations(&model_dir);
    assert_eq!(logged.last(), Some(&40), "{logged:?}");
    assert!(logged.windows(2).all(|w| w[0] < w[1]), "{logged:?}");
    for w in workers {
        let out = w.wait(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_worker_restarted_at_once_asks_for_the_rollback_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    bigger_corpus(&corpus);
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_cluster, master) = cluster(&token_file);
    let corpus = corpus.to_str().unwrap().to_string();
    let worker = |index: &str| {
        let state = p(&format!("state-{index}"));
        spawn(
            &[
                "worker",
                "--master",
                &master,
                "--job",
                "t5",
                "--corpus",
                &corpus,
                "--index",
                index,
                "--threads",
                "1",
                "--token-file",
                token,
                "--state-dir",
                &state,
            ],
            &[],
        )
    };
    let w0 = worker("0");
    let w1 = worker("1");
    let model = p("model");
    let driver = spawn(
        &[
            "train",
            "--master",
            &master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            "t5",
            "--token-file",
            token,
            "--corpus",
            &corpus,
            "--topics",
            "10",
            "--iterations",
            "40",
            "--checkpoint-every",
            "4",
            "--heartbeat-timeout-secs",
            "30",
            "--out",
            &model,
        ],
        &[],
    );
    let model_dir = Path::new(&model).to_path_buf();
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= 10
    });
    drop(w0);
    let w0 = worker("0");
    let out = driver.wait(Duration::from_secs(300));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("recovering: a worker asked for it; rolling back to iteration"),
        "{err}"
    );
    assert_eq!(
        logged_iterations(&model_dir),
        (1..=40).collect::<Vec<u64>>()
    );
    for w in [w0, w1] {
        let out = w.wait(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    bigger_corpus(&corpus);
    let p = |s: &str| tmp.path().join(s).to_str().unwrap().to_string();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token = token_file.to_str().unwrap();
    let (_master, master) = listen(&["master", "--bind", "127.0.0.1:0", "--token-file", token]);
    let server = |addr: &str| {
        let data = p(&format!("data-{}", addr.rsplit(':').next().unwrap()));
        listen(&[
            "server",
            "--master",
            &master,
            "--bind",
            addr,
            "--token-file",
            token,
            "--data-dir",
            &data,
        ])
        .0
    };
    let addrs = [free_port(), free_port()].map(|port| format!("127.0.0.1:{port}"));
    let _s0 = server(&addrs[0]);
    let s1 = server(&addrs[1]);
    let corpus = corpus.to_str().unwrap().to_string();
    let workers: Vec<Proc> = ["0", "1"]
        .iter()
        .map(|i| {
            spawn(
                &[
                    "worker",
                    "--master",
                    &master,
                    "--job",
                    "t6",
                    "--corpus",
                    &corpus,
                    "--index",
                    i,
                    "--threads",
                    "1",
                    "--token-file",
                    token,
                    "--state-dir",
                    &p(&format!("s{i}")),
                ],
                &[],
            )
        })
        .collect();
    let model = p("model");
    let driver = spawn(
        &[
            "train",
            "--master",
            &master,
            "--servers",
            "2",
            "--workers",
            "2",
            "--job",
            "t6",
            "--token-file",
            token,
            "--corpus",
            &corpus,
            "--topics",
            "10",
            "--iterations",
            "40",
            "--checkpoint-every",
            "5",
            "--out",
            &model,
        ],
        &[],
    );
    let model_dir = Path::new(&model).to_path_buf();
    wait_until(Duration::from_secs(120), || {
        logged_iterations(&model_dir).len() >= 12
    });
    drop(s1); // kill -9: its partitions of every model are gone
    std::thread::sleep(Duration::from_millis(500));
    let _s1 = server(&addrs[1]);
    let out = driver.wait(Duration::from_secs(300));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rolling back to iteration"), "{err}");
    assert!(err.contains("passed the count invariants"), "{err}");
    assert_eq!(
        logged_iterations(&model_dir),
        (1..=40).collect::<Vec<u64>>()
    );
    for w in workers {
        let out = w.wait(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
