//! Multi-process: a `glint-lda master` and three `glint-lda server` processes on 127.0.0.1 with
//! ephemeral ports and a shared token; several client tasks push concurrently and the result is
//! exact. Processes are killed when the test ends, however it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Listening, listen};
use ps_core::{ClientConfig, DType, ModelSpec, PsError, Storage};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");

fn cluster(dir: &Path, token_file: &Path) -> (Listening, Vec<Listening>) {
    let token = token_file.to_str().unwrap();
    let master = listen(&["master", "--bind", "127.0.0.1:0", "--token-file", token]);
    let master_addr = master.addr.clone();
    let mut servers = Vec::new();
    for i in 0..3 {
        let data = dir.join(format!("shard-{i}"));
        servers.push(listen(&[
            "server",
            "--master",
            &master_addr,
            "--bind",
            "127.0.0.1:0",
            "--token-file",
            token,
            "--data-dir",
            data.to_str().unwrap(),
            "--max-message-mb",
            "16",
        ]));
    }
    (master, servers)
}

#[test]
fn three_server_processes_apply_concurrent_pushes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "cluster-secret\n").unwrap();
    let (master, mut servers) = cluster(dir.path(), &token_file);
    let master_addr = master.addr.clone();
    let mut indices: Vec<String> = servers.iter().map(|s| s.banner.clone()).collect();
    indices.sort_by_key(|b| b.chars().last());
    for (i, b) in indices.iter().enumerate() {
        assert!(b.ends_with(&format!("as shard {i}")), "{b}");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = ClientConfig {
            timeout: Duration::from_secs(20),
            ..ClientConfig::default()
        };
        let client =
            ps_core::grpc::connect(&master_addr, Some("cluster-secret"), config.clone(), 3)
                .await
                .unwrap();
        assert_eq!(client.shards(), 3);
        let (rows, cols) = (500u64, 40u32);
        let spec =
            ModelSpec::matrix("counts", rows, cols, DType::I64).with_storage(Storage::Sparse);
        let m = client.create_matrix::<i64>(spec).await.unwrap();

        // 6 tasks, each with its own handle (its own writer identity), push 20 batches of 2,000.
        let mut tasks = Vec::new();
        for t in 0..6u64 {
            let m = client.matrix::<i64>("counts").await.unwrap();
            tasks.push(tokio::spawn(async move {
                for b in 0..20u64 {
                    let (r, c, v) = batch(t, b, rows, cols);
                    m.push(&r, &c, &v).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut expected = vec![vec![0i64; cols as usize]; rows as usize];
        for t in 0..6 {
            for b in 0..20 {
                let (r, c, v) = batch(t, b, rows, cols);
                for i in 0..r.len() {
                    expected[r[i] as usize][c[i] as usize] += v[i];
                }
            }
        }
        let all: Vec<u64> = (0..rows).collect();
        let got = m.pull_rows(&all).await.unwrap();
        for (r, row) in got.iter().enumerate() {
            assert_eq!(row.to_dense(cols as usize), expected[r], "row {r}");
        }
        // The servers' data directories take snapshots.
        client.save_snapshot("after-pushes").await.unwrap();
        for i in 0..3 {
            assert!(
                dir.path()
                    .join(format!("shard-{i}/snapshots/after-pushes"))
                    .is_dir()
            );
        }

        // A stranger is turned away by the master and the shards.
        let err = ps_core::grpc::connect(&master_addr, Some("guess"), config.clone(), 3)
            .await
            .unwrap_err();
        assert!(matches!(err, PsError::Unauthenticated(_)), "{err}");
        let err = ps_core::grpc::connect(&master_addr, None, config, 3)
            .await
            .unwrap_err();
        assert!(matches!(err, PsError::Unauthenticated(_)), "{err}");
    });

    // SIGTERM stops a server cleanly.
    let server = servers.remove(0);
    let pid = server.child.id().to_string();
    // The shell's built-in `kill`: present wherever `sh` is, unlike /bin/kill.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let mut server = server;
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "server exited with {exit}");
}

/// Deterministic batch `b` of task `t`: rows and columns spread over the matrix, values in -2..=2.
fn batch(t: u64, b: u64, rows: u64, cols: u32) -> (Vec<u64>, Vec<u32>, Vec<i64>) {
    let n = 2_000u64;
    let r = (0..n).map(|i| (t * 97 + b * 31 + i * 7) % rows).collect();
    let c = (0..n)
        .map(|i| ((t + b * 3 + i * 11) % cols as u64) as u32)
        .collect();
    let v = (0..n).map(|i| ((t + b + i) % 5) as i64 - 2).collect();
    (r, c, v)
}

#[test]
fn a_server_without_a_reachable_master_fails_with_a_clear_error() {
    let out = Command::new(BIN)
        .args([
            "server",
            "--master",
            "127.0.0.1:1",
            "--register-timeout-secs",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    let out = Command::new(BIN)
        .args([
            "master",
            "--bind",
            "127.0.0.1:0",
            "--token-file",
            "/nonexistent/token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/token"));
}

#[test]
fn a_bad_server_config_is_a_clear_error_before_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("server.json");
    std::fs::write(&config, r#"{"max_modls": 3}"#).unwrap();
    let out = Command::new(BIN)
        .args(["server", "--master", "127.0.0.1:9", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.json") && err.contains("max_modls"),
        "{err}"
    );
    std::fs::write(&config, r#"{"dedup_window": 0}"#).unwrap();
    let out = Command::new(BIN)
        .args(["server", "--master", "127.0.0.1:9", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("dedup_window must be at least 1"));
}
