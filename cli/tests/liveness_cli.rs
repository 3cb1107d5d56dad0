//! Liveness with real processes: a `glint-lda server` with `--data-dir` killed with SIGKILL and
//! restarted on another port takes its shard index back and a client made before reaches it; a
//! second live server claiming that index is refused; a master with `--data-dir` killed and
//! restarted on its port still knows its servers, models and entries; a stopped server shows in
//! the master's status as silent for as long as it has been. Processes are killed when a test
//! ends, however it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ps_core::master::ClusterStatus;
use ps_core::{Client, ClientConfig, DType, Matrix, ModelSpec, Storage};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");

/// A child process killed (SIGKILL) on drop.
struct Proc {
    child: Child,
    addr: String,
    banner: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn signal(&self, name: &str) {
        // The shell's built-in `kill`: present wherever `sh` is, unlike /bin/kill.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{name} {}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Starts `glint-lda args...` and waits for its `listening on ADDR[ as shard N]` line; `None`
/// if it exited without one.
fn try_start(args: &[&str]) -> Option<Proc> {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let banner = banner.trim().to_string();
    let Some(rest) = banner.strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let addr = rest.split(' ').next().unwrap().to_string();
    Some(Proc {
        child,
        addr,
        banner,
    })
}

fn start(args: &[&str]) -> Proc {
    try_start(args).unwrap_or_else(|| panic!("{args:?} printed no banner"))
}

/// A master counting a server gone after `timeout` seconds without a heartbeat.
fn master(timeout: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "master",
        "--bind",
        "127.0.0.1:0",
        "--server-timeout-secs",
        timeout,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

/// A server of the master at `master` with a 1 s heartbeat, keeping its index in `data_dir`.
fn server(master: &str, data_dir: Option<&Path>, extra: &[&str]) -> Proc {
    let mut args = vec![
        "server",
        "--master",
        master,
        "--bind",
        "127.0.0.1:0",
        "--heartbeat-secs",
        "1",
    ];
    let dir;
    if let Some(d) = data_dir {
        dir = d.to_str().unwrap().to_string();
        args.extend(["--data-dir", dir.as_str()]);
    }
    args.extend_from_slice(extra);
    start(&args)
}

fn shard_of(p: &Proc) -> u32 {
    p.banner
        .rsplit_once("as shard ")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no shard in {:?}", p.banner))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    }
}

const ROWS: u64 = 60;
const COLS: u32 = 6;

/// Every cell its own value.
fn cells() -> Vec<Vec<i64>> {
    (0..ROWS)
        .map(|r| (0..COLS).map(|c| (r * 10 + c as u64) as i64 - 25).collect())
        .collect()
}

async fn fill(m: &Matrix<i64>) {
    let (mut rs, mut cs, mut vs) = (vec![], vec![], vec![]);
    for (r, row) in cells().into_iter().enumerate() {
        for (c, v) in row.into_iter().enumerate() {
            rs.push(r as u64);
            cs.push(c as u32);
            vs.push(v);
        }
    }
    m.push(&rs, &cs, &vs).await.unwrap();
}

async fn dense(m: &Matrix<i64>) -> Vec<Vec<i64>> {
    let all: Vec<u64> = (0..ROWS).collect();
    let rows = m.pull_rows(&all).await.unwrap();
    rows.iter().map(|r| r.to_dense(COLS as usize)).collect()
}

async fn status(client: &Client) -> ClusterStatus {
    client.cluster_status().await.unwrap()
}

#[test]
fn a_killed_server_restarted_on_another_port_keeps_its_index_and_an_old_client_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (d0, d1) = (tmp.path().join("s0"), tmp.path().join("s1"));
    let m = master("3", &[]);
    let s0 = server(&m.addr, Some(&d0), &[]);
    let s1 = server(&m.addr, Some(&d1), &[]);
    assert_eq!((shard_of(&s0), shard_of(&s1)), (0, 1));
    let id: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d1.join("shard-id.json")).unwrap()).unwrap();
    assert_eq!(id["shard"], 1);
    let old_addr = s1.addr.clone();

    let rt = runtime();
    let client = rt.block_on(async {
        let client = ps_core::grpc::connect(&m.addr, None, config(), 2)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("m", ROWS, COLS, DType::I64).with_storage(Storage::Sparse);
        let mat = client.create_matrix::<i64>(spec).await.unwrap();
        fill(&mat).await;
        assert_eq!(dense(&mat).await, cells());
        client.save_snapshot("before").await.unwrap();
        client
    });

    drop(s1); // SIGKILL: its partition is gone with it
    let s1 = server(&m.addr, Some(&d1), &[]);
    assert_eq!(shard_of(&s1), 1, "{}", s1.banner);
    assert_ne!(s1.addr, old_addr);

    rt.block_on(async {
        let st = status(&client).await;
        let addrs: Vec<_> = st.servers.iter().map(|s| s.addr.clone()).collect();
        assert_eq!(addrs, [Some(s0.addr.clone()), Some(s1.addr.clone())]);
        // The client from before the restart: the snapshot load reaches the new address.
        client.load_snapshot("before").await.unwrap();
        let mat = client.matrix::<i64>("m").await.unwrap();
        assert_eq!(dense(&mat).await, cells());
        mat.push(&[1, 58], &[5, 0], &[100, -3]).await.unwrap();
        let mut want = cells();
        want[1][5] += 100;
        want[58][0] -= 3;
        assert_eq!(dense(&mat).await, want);
    });
}

#[test]
fn a_second_live_server_claiming_the_same_index_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let m = master("30", &[]);
    let s0 = server(&m.addr, Some(tmp.path()), &[]);
    assert_eq!(shard_of(&s0), 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let twin_addr = format!("127.0.0.1:{port}");
    let out = Command::new(BIN)
        .args([
            "server",
            "--master",
            &m.addr,
            "--bind",
            &twin_addr,
            "--register-timeout-secs",
            "2",
            "--data-dir",
            tmp.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "the twin never served");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("shard 0 is held by {}", s0.addr))
            && err.contains(&format!("{twin_addr} cannot take shard 0 over"))
            && err.contains("--data-dir"),
        "{err}"
    );
    // The first server keeps its index.
    let rt = runtime();
    rt.block_on(async {
        let client = ps_core::grpc::connect(&m.addr, None, config(), 1)
            .await
            .unwrap();
        let st = status(&client).await;
        assert_eq!(st.servers.len(), 1);
        assert_eq!(st.servers[0].addr.as_deref(), Some(s0.addr.as_str()));
        assert!(st.servers[0].alive);
    });
}

#[test]
fn a_killed_master_with_a_data_dir_restarted_on_its_port_keeps_servers_models_and_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let master_dir = tmp.path().join("master");
    let dir = master_dir.to_str().unwrap();
    let m = master("3", &["--data-dir", dir]);
    let master_addr = m.addr.clone();
    let s0 = server(&master_addr, Some(&tmp.path().join("s0")), &[]);
    let s1 = server(&master_addr, None, &[]);
    let rt = runtime();
    let (client, cluster) = rt.block_on(async {
        let client = ps_core::grpc::connect(&master_addr, None, config(), 2)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("m", ROWS, COLS, DType::I64);
        let mat = client.create_matrix::<i64>(spec).await.unwrap();
        fill(&mat).await;
        client
            .put_entry("job/x", b"{\"topics\": 20}".to_vec())
            .await
            .unwrap();
        let cluster = status(&client).await.cluster;
        (client, cluster)
    });
    assert!(master_dir.join("registry.json").is_file());

    drop(m); // SIGKILL
    // Its port is free again once the kernel has closed the old socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _m = loop {
        let args = ["master", "--bind", &master_addr, "--data-dir", dir];
        match try_start(&args) {
            Some(p) => break p,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            None => panic!("the master could not restart on {master_addr}"),
        }
    };

    rt.block_on(async {
        // The old client and a new one both see the registry as it was.
        let fresh = ps_core::grpc::connect(&master_addr, None, config(), 2)
            .await
            .unwrap();
        for c in [&client, &fresh] {
            let st = status(c).await;
            assert_eq!(st.cluster, cluster);
            let addrs: Vec<_> = st.servers.iter().map(|s| s.addr.clone()).collect();
            assert_eq!(addrs, [Some(s0.addr.clone()), Some(s1.addr.clone())]);
            let models = c.list_models().await.unwrap();
            assert_eq!(models.len(), 1);
            assert_eq!(
                (
                    models[0].spec.name.as_str(),
                    models[0].spec.rows,
                    models[0].shards
                ),
                ("m", ROWS, 2)
            );
            assert_eq!(
                c.entry("job/x").await.unwrap().as_deref(),
                Some(&b"{\"topics\": 20}"[..])
            );
            let mat = c.matrix::<i64>("m").await.unwrap();
            assert_eq!(dense(&mat).await, cells());
        }
        // The servers' heartbeats reach the restarted master.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let st = status(&fresh).await;
            if st.servers.iter().all(|s| s.alive) {
                break;
            }
            assert!(Instant::now() < deadline, "{st:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn a_stopped_server_shows_as_silent_for_as_long_as_it_has_been() {
    let m = master("2", &[]);
    let _s0 = server(&m.addr, None, &[]);
    let s1 = server(&m.addr, None, &[]);
    let rt = runtime();
    rt.block_on(async {
        let client = ps_core::grpc::connect(&m.addr, None, config(), 2)
            .await
            .unwrap();
        let st = status(&client).await;
        assert!(st.servers.iter().all(|s| s.alive), "{st:?}");
        assert_eq!(st.server_timeout, Duration::from_secs(2));

        s1.signal("STOP");
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let st = status(&client).await;
        let (live, stopped) = (&st.servers[0], &st.servers[1]);
        assert!(
            live.alive && live.last_seen.unwrap() < Duration::from_secs(2),
            "{st:?}"
        );
        assert!(!stopped.alive, "{st:?}");
        // At least the pause minus one heartbeat interval.
        let silent = stopped.last_seen.unwrap();
        assert!(
            silent >= Duration::from_millis(2400) && silent < Duration::from_secs(6),
            "{silent:?}"
        );

        // Resumed, it is alive again at its next heartbeat.
        s1.signal("CONT");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let st = status(&client).await;
            if st.servers[1].alive {
                assert!(st.servers[1].last_seen.unwrap() < Duration::from_secs(2));
                break;
            }
            assert!(Instant::now() < deadline, "{st:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn glint_lda_status_shows_servers_up_then_down() {
    let m = master("1", &[]);
    let s0 = server(&m.addr, None, &[]);
    let status = |m: &Proc| {
        let out = Command::new(BIN)
            .args(["status", "--master", &m.addr, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let up = status(&m);
    assert_eq!(
        up["servers"][0]["addr"].as_str(),
        Some(s0.addr.as_str()),
        "{up}"
    );
    assert_eq!(up["servers"][0]["alive"], serde_json::json!(true), "{up}");
    drop(s0);
    std::thread::sleep(Duration::from_millis(2500));
    let down = status(&m);
    assert_eq!(
        down["servers"][0]["alive"],
        serde_json::json!(false),
        "{down}"
    );
    // The table names the state too.
    let out = Command::new(BIN)
        .args(["status", "--master", &m.addr])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DOWN"), "{text}");
}
