//! Snapshot guarantees through the public API: a snapshot exists at every instant once the first
//! save finished, concurrent saves both succeed, and a shard refuses another shard's snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ps_core::message::{Push, Request, Response};
use ps_core::{
    AggregatorRegistry, ClusterConfig, DType, EmbeddedCluster, ModelSpec, PsError, Shard,
    ShardConfig, Storage, Values,
};

fn shard_in(dir: &std::path::Path) -> Shard {
    Shard::new(
        ShardConfig {
            data_dir: Some(dir.to_path_buf()),
            ..ShardConfig::default()
        },
        AggregatorRegistry::default(),
    )
}

#[test]
fn a_snapshot_exists_at_every_instant_and_concurrent_saves_both_succeed() {
    // Regression (issue 9): saves renamed the old snapshot away before renaming the new one in,
    // and two saves in one process shared one temporary directory.
    let dir = tempfile::tempdir().unwrap();
    let saver = Arc::new(shard_in(dir.path()));
    let spec = ModelSpec::matrix("m", 2_000, 50, DType::I64).with_storage(Storage::Sparse);
    saver
        .handle(&Request::Create {
            spec,
            shard: 0,
            shards: 1,
        })
        .unwrap();
    let rows: Vec<u64> = (0..20_000).map(|i| i % 2_000).collect();
    let cols: Vec<u32> = (0..20_000).map(|i| (i * 7 % 50) as u32).collect();
    saver
        .handle(&Request::Push(Push {
            model: "m".into(),
            writer: 1,
            seq: 1,
            rows,
            cols,
            values: Values::I64(vec![1; 20_000]),
        }))
        .unwrap();
    let save = |s: &Shard| s.handle(&Request::Save { name: "s".into() });
    save(&saver).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = {
        let (done, loads) = (done.clone(), loads.clone());
        let reader = shard_in(dir.path());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // Every load finds a whole snapshot, however the saves interleave.
                reader.handle(&Request::Load { name: "s".into() }).unwrap();
                loads.fetch_add(1, Ordering::Relaxed);
            }
            reader
        })
    };
    let savers: Vec<_> = (0..2)
        .map(|_| {
            let s = saver.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    save(&s).unwrap();
                }
            })
        })
        .collect();
    for t in savers {
        t.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let reader = loader.join().unwrap();
    assert!(loads.load(Ordering::Relaxed) > 0);
    // The result loads and holds the data; no temporary file is left behind.
    reader.handle(&Request::Load { name: "s".into() }).unwrap();
    let got = reader
        .handle(&Request::PullElements {
            model: "m".into(),
            rows: vec![0, 1_999],
            cols: vec![0, (1_999 * 7 % 50) as u32],
        })
        .unwrap();
    // Each of the 20,000 elements hits one of 2,000 cells ten times.
    assert_eq!(got, Response::Values(Values::I64(vec![10, 10])));
    let snapshot_dir = dir.path().join("snapshots").join("s");
    let names: Vec<String> = std::fs::read_dir(&snapshot_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["snapshot.bin".to_string()], "{names:?}");
}

#[test]
fn a_cluster_refuses_to_load_another_shards_snapshot() {
    // Regression (issue 9): swapped data directories loaded silently, putting shard 1's rows
    // on shard 0.
    let dir = tempfile::tempdir().unwrap();
    let config = ClusterConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..ClusterConfig::default()
    };
    let cluster = EmbeddedCluster::start(2, config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cluster.client();
        let m = client
            .create_matrix::<i32>(ModelSpec::matrix("m", 10, 2, DType::I32))
            .await
            .unwrap();
        m.push(&[0, 1], &[0, 0], &[5, 6]).await.unwrap();
        client.save_snapshot("s").await.unwrap();
        m.push(&[0, 1], &[0, 0], &[1, 1]).await.unwrap();
        // Shard 1's snapshot where shard 0's belongs.
        let file = |i: usize| {
            dir.path()
                .join(format!("shard-{i}/snapshots/s/snapshot.bin"))
        };
        std::fs::copy(file(1), file(0)).unwrap();
        let err = client.load_snapshot("s").await.unwrap_err();
        assert!(matches!(err, PsError::Snapshot { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("saved by shard 1") && text.contains("is shard 0"),
            "{text}"
        );
        // Shard 0 kept its rows: nothing of the wrong snapshot was loaded.
        assert_eq!(m.pull(&[0], &[0]).await.unwrap(), vec![6]);
    });
}
