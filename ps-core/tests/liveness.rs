//! Liveness over gRPC: stable shard indices across a server's restart on a new address, clients
//! that follow a moved shard, a refused second claim, a master whose registry survives its
//! restart, and heartbeats in the status listing.
//!
//! Every server and master runs on its own tokio runtime, and "killing" one shuts its runtime
//! down: its listener, its connections and its heartbeats vanish at once, as with SIGKILL (the
//! process-level versions are in `cli/tests/liveness_cli.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ps_core::grpc::{GrpcCoordinator, GrpcTransport, ServeOptions};
use ps_core::master::{Master, MasterConfig, MasterRequest, MasterResponse};
use ps_core::registration::{Registration, SHARD_ID_FILE, ShardIdentity};
use ps_core::transport::Coordinator;
use ps_core::{
    AggregatorRegistry, Client, ClientConfig, DType, ModelSpec, PsError, Shard, ShardConfig,
    Storage,
};
use tokio::runtime::Runtime;

const HEARTBEAT: Duration = Duration::from_millis(200);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A server or master on its own runtime; dropping it is a kill.
struct Node {
    rt: Option<Runtime>,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A listener on `addr` (`127.0.0.1:0` or a port a killed node just released), with
/// SO_REUSEADDR so that the closed connections of a killed node do not hold the port.
async fn listen(addr: &str) -> tokio::net::TcpListener {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(addr).and_then(|()| socket.listen(128)) {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot listen on {addr}: {e}"),
        }
    }
}

/// A master listening on `addr`.
fn master(addr: &str, config: MasterConfig) -> Node {
    let rt = runtime();
    let master = Arc::new(Master::open(config).unwrap());
    let addr = addr.to_string();
    let addr = rt.block_on(async move {
        let listener = listen(&addr).await;
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(ps_core::grpc::serve_master(
            listener,
            master,
            ServeOptions::default(),
            std::future::pending(),
        ));
        addr
    });
    Node { rt: Some(rt), addr }
}

fn master_config(dir: Option<&Path>, server_timeout: Duration) -> MasterConfig {
    MasterConfig {
        data_dir: dir.map(Path::to_path_buf),
        server_timeout,
    }
}

/// A shard server registered with the master at `master_addr` (claiming the index in
/// `data_dir` if any), sending heartbeats.
fn server(master_addr: &str, data_dir: Option<&Path>) -> Result<(Node, ShardIdentity), PsError> {
    let rt = runtime();
    let master_addr = master_addr.to_string();
    let data_dir: Option<PathBuf> = data_dir.map(Path::to_path_buf);
    let outcome = rt.block_on(async move {
        let listener = listen("127.0.0.1:0").await;
        let addr = listener.local_addr().unwrap().to_string();
        let config = ShardConfig {
            data_dir: data_dir.clone(),
            ..ShardConfig::default()
        };
        let shard = Arc::new(Shard::new(config, AggregatorRegistry::default()));
        tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard.clone(),
            ServeOptions::default(),
            std::future::pending(),
        ));
        let client_config = ClientConfig {
            timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        };
        let coordinator = GrpcCoordinator::new(&master_addr, None, &client_config).unwrap();
        let registration = Registration {
            data_dir,
            patience: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            retry_every: Duration::from_millis(50),
            ..Registration::new(addr.clone())
        };
        let id = registration.register(&coordinator).await?;
        shard.assign_index(id.shard);
        let beat = id.clone();
        tokio::spawn(async move {
            let e = registration
                .heartbeats(&coordinator, &beat, HEARTBEAT)
                .await;
            tracing::error!(error = %e, "replaced");
        });
        Ok::<_, PsError>((addr, id))
    });
    match outcome {
        Ok((addr, id)) => Ok((Node { rt: Some(rt), addr }, id)),
        Err(e) => {
            rt.shutdown_background();
            Err(e)
        }
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_secs(5),
        max_attempts: 10,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..ClientConfig::default()
    }
}

/// 2 × 40 rows × 5 columns, every cell its own value.
fn expected(rows: u64, cols: u32) -> Vec<Vec<i64>> {
    (0..rows)
        .map(|r| (0..cols).map(|c| (r * 100 + c as u64) as i64 + 1).collect())
        .collect()
}

async fn fill(m: &ps_core::Matrix<i64>, rows: u64, cols: u32) {
    let (mut rs, mut cs, mut vs) = (vec![], vec![], vec![]);
    for (r, row) in expected(rows, cols).into_iter().enumerate() {
        for (c, v) in row.into_iter().enumerate() {
            rs.push(r as u64);
            cs.push(c as u32);
            vs.push(v);
        }
    }
    m.push(&rs, &cs, &vs).await.unwrap();
}

async fn dense(m: &ps_core::Matrix<i64>, rows: u64, cols: u32) -> Vec<Vec<i64>> {
    let all: Vec<u64> = (0..rows).collect();
    m.pull_rows(&all)
        .await
        .unwrap()
        .iter()
        .map(|r| r.to_dense(cols as usize))
        .collect()
}

#[test]
fn a_server_restarted_on_another_port_keeps_its_index_and_an_old_client_follows_it() {
    let dirs = tempfile::tempdir().unwrap();
    let (dir0, dir1) = (dirs.path().join("s0"), dirs.path().join("s1"));
    let m = master("127.0.0.1:0", master_config(None, Duration::from_secs(1)));
    let (_s0, id0) = server(&m.addr, Some(&dir0)).unwrap();
    let (s1, id1) = server(&m.addr, Some(&dir1)).unwrap();
    assert_eq!((id0.shard, id1.shard), (0, 1));
    assert_eq!(ShardIdentity::read(&dir1).unwrap(), Some(id1.clone()));
    let old_addr = s1.addr.clone();

    let client_rt = runtime();
    let (rows, cols) = (40u64, 5u32);
    let (client, fixed) = client_rt.block_on(async {
        let client = ps_core::grpc::connect(&m.addr, None, config(), 2)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("m", rows, cols, DType::I64).with_storage(Storage::Sparse);
        let mat = client.create_matrix::<i64>(spec).await.unwrap();
        fill(&mat, rows, cols).await;
        client.save_snapshot("before").await.unwrap();
        // The same cluster without the master's help: fixed addresses.
        let servers = vec![_s0.addr.clone(), old_addr.clone()];
        let transport = GrpcTransport::new(&servers, None, &config()).unwrap();
        let coordinator = GrpcCoordinator::new(&m.addr, None, &config()).unwrap();
        let fixed = Client::new(Arc::new(transport), Arc::new(coordinator), config());
        (client, fixed)
    });

    drop(s1); // killed: its partition of "m" is gone
    let (s1, again) = server(&m.addr, Some(&dir1)).unwrap();
    assert_eq!(again, id1, "the restarted server claims its old index");
    assert_ne!(s1.addr, old_addr);

    client_rt.block_on(async {
        let status = client.cluster_status().await.unwrap();
        assert_eq!(status.servers.len(), 2);
        assert_eq!(status.servers[1].addr.as_deref(), Some(s1.addr.as_str()));
        assert!(status.servers[1].alive);
        // The client made before the restart reaches the new address: the load goes to both
        // shards, the restarted one included.
        client.load_snapshot("before").await.unwrap();
        let mat = client.matrix::<i64>("m").await.unwrap();
        assert_eq!(dense(&mat, rows, cols).await, expected(rows, cols));
        mat.push(&[1, 2], &[0, 4], &[1000, -7]).await.unwrap();
        let mut want = expected(rows, cols);
        want[1][0] += 1000;
        want[2][4] -= 7;
        assert_eq!(dense(&mat, rows, cols).await, want);
        // A transport that never asks the master keeps dialling the dead address.
        let stale = fixed.matrix::<i64>("m").await.unwrap();
        let err = stale.pull(&[1], &[0]).await.unwrap_err();
        assert!(
            matches!(err, PsError::ShardUnreachable { shard: 1, .. }),
            "{err}"
        );
    });
}

#[test]
fn a_second_live_server_claiming_an_index_is_refused_naming_both_addresses() {
    let dirs = tempfile::tempdir().unwrap();
    let m = master("127.0.0.1:0", master_config(None, Duration::from_secs(30)));
    let (holder, id) = server(&m.addr, Some(dirs.path())).unwrap();
    assert_eq!(id.shard, 0);
    let rt = runtime();
    let err = rt.block_on(async {
        let coordinator = GrpcCoordinator::new(&m.addr, None, &config()).unwrap();
        let twin = Registration {
            patience: Duration::from_millis(600),
            retry_every: Duration::from_millis(100),
            ..Registration::new("127.0.0.1:9").with_data_dir(dirs.path())
        };
        let err = twin.register(&coordinator).await.unwrap_err();
        // The refusal changed nothing.
        let servers = coordinator.call(MasterRequest::Servers).await.unwrap();
        assert_eq!(servers, MasterResponse::Servers(vec![holder.addr.clone()]));
        err
    });
    match &err {
        PsError::ShardHeld {
            shard: 0,
            holder: h,
            claimant,
            ..
        } => {
            assert_eq!(h, &holder.addr);
            assert_eq!(claimant, "127.0.0.1:9");
        }
        other => panic!("expected ShardHeld, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&holder.addr) && text.contains("127.0.0.1:9") && text.contains("shard 0"),
        "{text}"
    );
    // The refused twin left the identity file as it was.
    assert_eq!(ShardIdentity::read(dirs.path()).unwrap(), Some(id));
    assert!(dirs.path().join(SHARD_ID_FILE).is_file());
}

#[test]
fn a_master_restarted_with_its_data_dir_keeps_servers_models_and_entries() {
    let dirs = tempfile::tempdir().unwrap();
    let master_dir = dirs.path().join("master");
    let timeout = Duration::from_secs(1);
    let m = master("127.0.0.1:0", master_config(Some(&master_dir), timeout));
    let master_addr = m.addr.clone();
    let (s0, _) = server(&master_addr, Some(&dirs.path().join("s0"))).unwrap();
    let (s1, _) = server(&master_addr, None).unwrap();
    let rt = runtime();
    let (client, cluster) = rt.block_on(async {
        let client = ps_core::grpc::connect(&master_addr, None, config(), 2)
            .await
            .unwrap();
        let v = client
            .create_vector::<i64>(ModelSpec::vector("v", 10, DType::I64))
            .await
            .unwrap();
        v.push(&[3, 8], &[30, 80]).await.unwrap();
        client.put_entry("job", vec![1, 2, 0, 255]).await.unwrap();
        let cluster = client.cluster_status().await.unwrap().cluster;
        (client, cluster)
    });

    drop(m); // killed
    let m = master(&master_addr, master_config(Some(&master_dir), timeout));
    assert_eq!(m.addr, master_addr);
    rt.block_on(async {
        // Straight from the file, before any heartbeat: servers, models and entries.
        let status = client.cluster_status().await.unwrap();
        assert_eq!(status.cluster, cluster);
        let addrs: Vec<_> = status.servers.iter().map(|s| s.addr.clone()).collect();
        assert_eq!(addrs, [Some(s0.addr.clone()), Some(s1.addr.clone())]);
        let models = client.list_models().await.unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!((models[0].spec.name.as_str(), models[0].shards), ("v", 2));
        assert_eq!(client.entry("job").await.unwrap(), Some(vec![1, 2, 0, 255]));
        // The shards kept their data (only the master restarted).
        let v = client.vector::<i64>("v").await.unwrap();
        assert_eq!(v.pull(&[3, 8, 0]).await.unwrap(), vec![30, 80, 0]);
        // Heartbeats reach the new master.
        tokio::time::sleep(HEARTBEAT * 3).await;
        let status = client.cluster_status().await.unwrap();
        assert!(status.servers.iter().all(|s| s.alive), "{status:?}");
    });

    // Without a data directory the servers come back with their heartbeats, the models not.
    drop(m);
    let m = master(&master_addr, master_config(None, timeout));
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            let status = client.cluster_status().await.unwrap();
            if status.servers.len() == 2 && status.servers.iter().all(|s| s.alive) {
                break status;
            }
            assert!(Instant::now() < deadline, "{status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            status.cluster, cluster,
            "the first heartbeat's cluster is adopted"
        );
        assert_eq!(status.servers[0].addr.as_deref(), Some(s0.addr.as_str()));
        assert_eq!(status.servers[1].addr.as_deref(), Some(s1.addr.as_str()));
        assert!(client.list_models().await.unwrap().is_empty());
        assert_eq!(client.entry("job").await.unwrap(), None);
    });
    drop(m);
}

#[test]
fn a_stopped_server_shows_how_long_it_has_been_silent() {
    let m = master("127.0.0.1:0", master_config(None, Duration::from_secs(1)));
    let (_s0, _) = server(&m.addr, None).unwrap();
    let (s1, _) = server(&m.addr, None).unwrap();
    let rt = runtime();
    rt.block_on(async {
        let coordinator = GrpcCoordinator::new(&m.addr, None, &config()).unwrap();
        let status = || async {
            match coordinator.call(MasterRequest::Status).await.unwrap() {
                MasterResponse::Status(s) => s,
                other => panic!("{other:?}"),
            }
        };
        tokio::time::sleep(HEARTBEAT * 2).await;
        let before = status().await;
        assert!(before.servers.iter().all(|s| s.alive), "{before:?}");
        assert_eq!(before.server_timeout, Duration::from_secs(1));
        drop(s1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = status().await;
        let (alive, silent) = (&after.servers[0], &after.servers[1]);
        assert!(
            alive.alive && alive.last_seen.unwrap() < HEARTBEAT * 3,
            "{after:?}"
        );
        assert!(!silent.alive, "{after:?}");
        let quiet = silent.last_seen.unwrap();
        assert!(
            quiet >= Duration::from_millis(1300) && quiet < Duration::from_secs(3),
            "{quiet:?}"
        );
    });
}
