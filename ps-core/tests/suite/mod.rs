//! The transport-independent test suite. Every transport's test file implements [`Harness`] and
//! instantiates all cases with [`transport_suite!`], so the in-process and the gRPC paths are held
//! to the same behaviour.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod faults;
pub mod model;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ps_core::message::{Request, Response};
use ps_core::transport::{Coordinator, FaultConfig, Faulty, Sabotage, Transport};
use ps_core::{
    Aggregator, Client, ClientConfig, DType, ModelSpec, PartitionerKind, PsError, PushToken, Row,
    Storage, WriterState,
};

/// A running cluster of some transport, with a registered `product` aggregator on every shard.
pub trait Harness: Send + Sync {
    fn transport(&self) -> Arc<dyn Transport>;
    /// A transport for clients with `config` (over gRPC its timeout is every call's deadline).
    fn transport_for(&self, _config: &ClientConfig) -> Arc<dyn Transport> {
        self.transport()
    }
    fn coordinator(&self) -> Arc<dyn Coordinator>;
    fn shards(&self) -> usize;
}

/// The user-defined aggregator every harness registers as `product` on its servers.
pub struct Product;
impl Aggregator for Product {
    fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
        current.max(1) * pushed
    }
    fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
        if current == 0.0 {
            pushed
        } else {
            current * pushed
        }
    }
}

pub fn client(h: &dyn Harness) -> Client {
    client_with(h, ClientConfig::default())
}

pub fn client_with(h: &dyn Harness, config: ClientConfig) -> Client {
    Client::new(h.transport(), h.coordinator(), config)
}

pub fn faulty_client(h: &dyn Harness, faults: FaultConfig) -> (Client, Arc<Faulty>) {
    let config = ClientConfig {
        timeout: Duration::from_secs(5),
        max_attempts: 30,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(20),
        ..ClientConfig::default()
    };
    let faulty = Arc::new(Faulty::new(h.transport(), faults));
    let transport: Arc<dyn Transport> = faulty.clone();
    (Client::new(transport, h.coordinator(), config), faulty)
}

fn kinds() -> [(Storage, PartitionerKind); 4] {
    [
        (Storage::Dense, PartitionerKind::Range),
        (Storage::Dense, PartitionerKind::Cyclic),
        (Storage::Sparse, PartitionerKind::Range),
        (Storage::Sparse, PartitionerKind::Cyclic),
    ]
}

pub async fn push_then_pull_every_layout(h: &dyn Harness) {
    let c = client(h);
    for (i, (storage, part)) in kinds().into_iter().enumerate() {
        let spec = ModelSpec::matrix(format!("m{i}"), 20, 6, DType::I64)
            .with_storage(storage)
            .with_partitioner(part);
        let m = c.create_matrix::<i64>(spec).await.unwrap();
        m.push(&[0, 19, 7, 7, 7], &[0, 5, 2, 2, 3], &[1, -4, 10, 5, 0])
            .await
            .unwrap();
        assert_eq!(
            m.pull(&[7, 19, 0, 1], &[2, 5, 0, 0]).await.unwrap(),
            vec![15, -4, 1, 0]
        );
        let rows = m.pull_rows(&[7, 3, 19]).await.unwrap();
        assert_eq!(rows[0].to_dense(6), vec![0, 0, 15, 0, 0, 0]);
        assert_eq!(rows[1].to_dense(6), vec![0; 6]);
        assert_eq!(rows[2].get(5), -4);
        if storage == Storage::Sparse {
            assert!(matches!(&rows[0], Row::Sparse { cols, .. } if cols == &vec![2]));
        }
    }
}

pub async fn every_value_type(h: &dyn Harness) {
    let c = client(h);
    let a = c
        .create_matrix::<i32>(ModelSpec::matrix("i32", 5, 3, DType::I32))
        .await
        .unwrap();
    a.push(&[4, 4], &[2, 2], &[i32::MAX, 1]).await.unwrap();
    assert_eq!(
        a.pull(&[4], &[2]).await.unwrap(),
        vec![i32::MIN],
        "integer overflow wraps"
    );
    let b = c
        .create_matrix::<f32>(
            ModelSpec::matrix("f32", 5, 3, DType::F32).with_storage(Storage::Sparse),
        )
        .await
        .unwrap();
    b.push(&[1, 1], &[0, 0], &[0.25, 0.5]).await.unwrap();
    assert_eq!(b.pull(&[1], &[0]).await.unwrap(), vec![0.75]);
    let v = c
        .create_vector::<f64>(ModelSpec::vector("f64", 9, DType::F64))
        .await
        .unwrap();
    v.push(&[8, 0, 8], &[1.5, 2.0, 1.0]).await.unwrap();
    let all = v.pull_all().await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!((all[0], all[8], all[4]), (2.0, 2.5, 0.0));
    let w = c
        .create_vector::<i64>(ModelSpec::vector("i64", 3, DType::I64))
        .await
        .unwrap();
    w.push(&[2], &[-7]).await.unwrap();
    assert_eq!(w.pull(&[2, 1]).await.unwrap(), vec![-7, 0]);
}

pub async fn aggregations(h: &dyn Harness) {
    let c = client(h);
    for (agg, pushes, expected) in [
        ("max", vec![3i64, 9, -2], 9i64),
        ("min", vec![3, 9, -2], -2),
        ("replace", vec![3, 9, -2], -2),
        ("product", vec![3, 4, 2], 24),
    ] {
        for storage in [Storage::Dense, Storage::Sparse] {
            let name = format!("agg-{agg}-{storage:?}");
            let spec = ModelSpec::matrix(&name, 4, 2, DType::I64)
                .with_storage(storage)
                .with_aggregator(agg);
            let m = c.create_matrix::<i64>(spec).await.unwrap();
            // One push per value keeps their order, which replace and product depend on.
            for v in &pushes {
                m.push(&[2], &[1], &[*v]).await.unwrap();
            }
            assert_eq!(m.pull(&[2], &[1]).await.unwrap(), vec![expected], "{name}");
        }
    }
    let spec = ModelSpec::matrix("agg-unknown", 4, 2, DType::I64).with_aggregator("nope");
    let err = c.create_matrix::<i64>(spec).await.unwrap_err();
    assert!(
        matches!(err, PsError::UnknownAggregator(ref n) if n == "nope"),
        "{err}"
    );
    // The failed creation left nothing behind.
    assert!(c.matrix::<i64>("agg-unknown").await.is_err());
}

pub async fn errors_name_the_value_and_the_server_keeps_serving(h: &dyn Harness) {
    let c = client(h);
    let m = c
        .create_matrix::<i32>(ModelSpec::matrix("e", 10, 4, DType::I32))
        .await
        .unwrap();
    let err = m.push(&[10], &[0], &[1]).await.unwrap_err();
    assert_eq!(
        err,
        PsError::RowOutOfRange {
            model: "e".into(),
            row: 10,
            rows: 10
        }
    );
    assert!(err.to_string().contains("row 10"));
    let err = m.pull(&[1], &[4]).await.unwrap_err();
    assert_eq!(
        err,
        PsError::ColOutOfRange {
            model: "e".into(),
            col: 4,
            cols: 4
        }
    );
    let err = m.push(&[1, 2], &[0], &[1, 1]).await.unwrap_err();
    assert!(matches!(err, PsError::InvalidRequest(_)), "{err}");
    let err = c.matrix::<i32>("missing").await.unwrap_err();
    assert_eq!(err, PsError::UnknownModel("missing".into()));
    let err = c.matrix::<f64>("e").await.unwrap_err();
    assert!(matches!(
        err,
        PsError::TypeMismatch {
            actual: DType::I32,
            requested: DType::F64,
            ..
        }
    ));
    // Creating the identical model again is a harmless retry (its first reply may have been
    // lost); a different specification under the same name is an error that says what differs.
    c.create_matrix::<i32>(ModelSpec::matrix("e", 10, 4, DType::I32))
        .await
        .unwrap();
    let err = c
        .create_matrix::<i32>(ModelSpec::matrix("e", 12, 4, DType::I32))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PsError::ModelExists(m) if m.contains("'e'") && m.contains("rows")),
        "{err}"
    );
    let err = c
        .create_matrix::<i32>(ModelSpec::matrix("", 10, 4, DType::I32))
        .await
        .unwrap_err();
    assert!(matches!(err, PsError::InvalidRequest(_)));
    // Bypass the client's own checks: the shard must reject a bad request by itself.
    let raw = h.transport();
    let bad = ps_core::message::Request::PullRows {
        model: "e".into(),
        rows: vec![u64::MAX],
    };
    let err = raw.call(0, Arc::new(bad)).await.unwrap_err();
    assert!(
        matches!(err, PsError::RowOutOfRange { row: u64::MAX, .. }),
        "{err}"
    );
    let bad = ps_core::message::Request::Push(ps_core::message::Push {
        model: "e".into(),
        writer: 1,
        seq: 1,
        rows: vec![0],
        cols: vec![0],
        values: ps_core::Values::F64(vec![1.0]),
    });
    let err = raw.call(0, Arc::new(bad)).await.unwrap_err();
    assert!(matches!(err, PsError::TypeMismatch { .. }), "{err}");
    // Still serving, and nothing of the rejected requests was applied.
    m.push(&[1], &[1], &[3]).await.unwrap();
    assert_eq!(m.pull(&[1, 0], &[1, 0]).await.unwrap(), vec![3, 0]);
}

pub async fn destroy_and_list(h: &dyn Harness) {
    let c = client(h);
    c.create_matrix::<i32>(ModelSpec::matrix("d1", 3, 3, DType::I32))
        .await
        .unwrap();
    c.create_vector::<f32>(ModelSpec::vector("d2", 3, DType::F32))
        .await
        .unwrap();
    let names: Vec<String> = c
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.spec.name)
        .collect();
    assert!(names.contains(&"d1".to_string()) && names.contains(&"d2".to_string()));
    c.destroy("d1").await.unwrap();
    assert_eq!(
        c.matrix::<i32>("d1").await.unwrap_err(),
        PsError::UnknownModel("d1".into())
    );
    // The name can be used again, from zero.
    let m = c
        .create_matrix::<i32>(ModelSpec::matrix("d1", 3, 3, DType::I32))
        .await
        .unwrap();
    assert_eq!(m.pull(&[2], &[2]).await.unwrap(), vec![0]);
}

pub async fn entries(h: &dyn Harness) {
    use ps_core::master::{MAX_ENTRIES, MAX_ENTRY_VALUE_BYTES, MasterRequest, MasterResponse};
    let c = client(h);
    assert_eq!(c.entry("job").await.unwrap(), None);
    let job = br#"{"topics":20,"corpus":"s3://x"}"#.to_vec();
    c.put_entry("job", job.clone()).await.unwrap();
    assert_eq!(c.entry("job").await.unwrap(), Some(job));
    // A second client (another process, in practice) sees the same board; puts overwrite.
    let other = client(h);
    other.put_entry("job", b"v2".to_vec()).await.unwrap();
    other.put_entry("job", b"v2".to_vec()).await.unwrap();
    assert_eq!(c.entry("job").await.unwrap(), Some(b"v2".to_vec()));
    // An empty value is found, and told apart from a missing key.
    c.put_entry("empty", Vec::new()).await.unwrap();
    assert_eq!(c.entry("empty").await.unwrap(), Some(Vec::new()));
    // Exactly 1 MiB of every byte value round-trips exactly, also from a client whose shard
    // messages are split far below it.
    let big: Vec<u8> = (0..MAX_ENTRY_VALUE_BYTES)
        .map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8)
        .collect();
    let small = client_with(
        h,
        ClientConfig {
            max_message_bytes: 512,
            ..ClientConfig::default()
        },
    );
    small.put_entry("big", big.clone()).await.unwrap();
    assert!(
        c.entry("big").await.unwrap() == Some(big.clone()),
        "1 MiB value changed"
    );
    assert!(
        small.entry("big").await.unwrap() == Some(big.clone()),
        "1 MiB value changed"
    );
    // One byte more is refused with the key and the size, by the client and, bypassing it, by
    // the master itself; the stored value is untouched.
    let too_big = vec![1u8; MAX_ENTRY_VALUE_BYTES + 1];
    let err = c.put_entry("big", too_big.clone()).await.unwrap_err();
    assert!(
        matches!(&err, PsError::InvalidRequest(m) if m.contains("'big'") && m.contains("1048577 bytes")),
        "{err}"
    );
    let raw = h.coordinator();
    let err = raw
        .call(MasterRequest::PutEntry {
            key: "big".into(),
            value: too_big,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PsError::InvalidRequest(m) if m.contains("'big'") && m.contains("1048577 bytes")),
        "{err}"
    );
    assert!(
        c.entry("big").await.unwrap() == Some(big),
        "refused put changed the value"
    );
    let err = raw
        .call(MasterRequest::GetEntry { key: String::new() })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PsError::InvalidRequest(m) if m.contains("empty")),
        "{err}"
    );
    let err = c.put_entry(&"k".repeat(257), vec![]).await.unwrap_err();
    assert!(
        matches!(&err, PsError::InvalidRequest(m) if m.contains("257 bytes")),
        "{err}"
    );
    // Remove, and remove again (a retry).
    c.remove_entry("job").await.unwrap();
    c.remove_entry("job").await.unwrap();
    assert_eq!(c.entry("job").await.unwrap(), None);
    assert_eq!(
        raw.call(MasterRequest::GetEntry { key: "job".into() })
            .await
            .unwrap(),
        MasterResponse::Entry(None)
    );
    // Fill the board to its cap ("empty" and "big" are two of them): a new key is refused,
    // overwriting one is not.
    let c = &c;
    futures::future::try_join_all((2..MAX_ENTRIES).map(|i| async move {
        c.put_entry(&format!("e{i}"), i.to_string().into_bytes())
            .await
    }))
    .await
    .unwrap();
    let err = c.put_entry("job", b"x".to_vec()).await.unwrap_err();
    assert!(
        matches!(&err, PsError::InvalidRequest(m) if m.contains("'job'") && m.contains("1024 entries")),
        "{err}"
    );
    c.put_entry("e5", b"five".to_vec()).await.unwrap();
    assert_eq!(c.entry("e5").await.unwrap(), Some(b"five".to_vec()));
    assert_eq!(c.entry("e1023").await.unwrap(), Some(b"1023".to_vec()));
    assert_eq!(c.entry("job").await.unwrap(), None);
    c.remove_entry("e5").await.unwrap();
    c.put_entry("job", b"x".to_vec()).await.unwrap();
    assert_eq!(c.entry("job").await.unwrap(), Some(b"x".to_vec()));
}

pub async fn large_requests_are_split(h: &dyn Harness) {
    // A tiny message limit forces every request into many pieces.
    let config = ClientConfig {
        max_message_bytes: 512,
        ..ClientConfig::default()
    };
    let c = client_with(h, config);
    let spec = ModelSpec::matrix("big", 300, 50, DType::I32).with_storage(Storage::Sparse);
    let m = c.create_matrix::<i32>(spec).await.unwrap();
    let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
    for r in 0..300u64 {
        for col in (0..50u32).step_by(3) {
            rows.push(r);
            cols.push(col);
            vals.push((r as i32) - (col as i32));
        }
    }
    m.push(&rows, &cols, &vals).await.unwrap();
    let pulled = m.pull(&rows, &cols).await.unwrap();
    assert_eq!(pulled, vals);
    let all: Vec<u64> = (0..300).collect();
    let got = m.pull_rows(&all).await.unwrap();
    for (r, row) in got.iter().enumerate() {
        for col in 0..50u32 {
            let expected = if col % 3 == 0 {
                r as i32 - col as i32
            } else {
                0
            };
            assert_eq!(row.get(col), expected, "row {r} col {col}");
        }
    }
}

/// A push split into many pieces for one shard keeps its order: with an order-dependent
/// aggregation (`replace`), the value pushed last is the one that stays.
pub async fn split_pushes_keep_their_order(h: &dyn Harness) {
    let config = ClientConfig {
        max_message_bytes: 256,
        ..ClientConfig::default()
    };
    let c = client_with(h, config);
    let spec = ModelSpec::matrix("ordered", 4, 2, DType::I64).with_aggregator("replace");
    let m = c.create_matrix::<i64>(spec).await.unwrap();
    for round in 0..5i64 {
        // Every cell written 300 times in one push (dozens of pieces per shard).
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        for i in 0..300i64 {
            for r in 0..4u64 {
                rows.push(r);
                cols.push((i % 2) as u32);
                vals.push(round * 1000 + i);
            }
        }
        m.push(&rows, &cols, &vals).await.unwrap();
        let got = m
            .pull(&[0, 0, 1, 1, 2, 2, 3, 3], &[0, 1, 0, 1, 0, 1, 0, 1])
            .await
            .unwrap();
        let last = [round * 1000 + 298, round * 1000 + 299];
        assert_eq!(
            got,
            last.repeat(4),
            "round {round}: the last value pushed must win"
        );
    }
}

pub async fn concurrent_pushes_are_exact(h: &dyn Harness) {
    let c = client(h);
    let spec = ModelSpec::matrix("conc", 64, 16, DType::I64).with_storage(Storage::Sparse);
    let m = c.create_matrix::<i64>(spec).await.unwrap();
    let expected = many_concurrent_pushes(&m, 8, 40).await;
    check_matrix(&m, &expected).await;
}

/// `tasks` tasks each push `batches` deterministic batches; returns the expected dense contents.
pub async fn many_concurrent_pushes(
    m: &ps_core::Matrix<i64>,
    tasks: u64,
    batches: u64,
) -> Vec<Vec<i64>> {
    let rows = m.rows();
    let cols = m.cols() as u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let m = m.clone();
        handles.push(tokio::spawn(async move {
            for b in 0..batches {
                let n = 50u64;
                let rs: Vec<u64> = (0..n).map(|i| (t * 31 + b * 7 + i * 13) % rows).collect();
                let cs: Vec<u32> = (0..n).map(|i| ((t + b + i * 5) % cols) as u32).collect();
                let vs: Vec<i64> = (0..n).map(|i| ((t + i) % 5) as i64 - 1).collect();
                m.push(&rs, &cs, &vs).await.unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let mut expected = vec![vec![0i64; cols as usize]; rows as usize];
    for t in 0..tasks {
        for b in 0..batches {
            for i in 0..50u64 {
                let r = (t * 31 + b * 7 + i * 13) % rows;
                let c = (t + b + i * 5) % cols;
                expected[r as usize][c as usize] += ((t + i) % 5) as i64 - 1;
            }
        }
    }
    expected
}

pub async fn check_matrix(m: &ps_core::Matrix<i64>, expected: &[Vec<i64>]) {
    let all: Vec<u64> = (0..m.rows()).collect();
    let got = m.pull_rows(&all).await.unwrap();
    for (r, row) in got.iter().enumerate() {
        assert_eq!(row.to_dense(m.cols() as usize), expected[r], "row {r}");
    }
}

pub async fn faults_lose_nothing_and_apply_nothing_twice(h: &dyn Harness) {
    let setup = client(h);
    let spec = ModelSpec::matrix("faulty", 64, 16, DType::I64).with_storage(Storage::Sparse);
    setup.create_matrix::<i64>(spec).await.unwrap();
    let faults = FaultConfig {
        drop_request: 0.15,
        drop_response: 0.15,
        duplicate: 0.2,
        max_delay: Duration::from_millis(3),
        seed: 42,
        ..FaultConfig::default()
    };
    let (c, faulty) = faulty_client(h, faults);
    let m = c.matrix::<i64>("faulty").await.unwrap();
    let expected = many_concurrent_pushes(&m, 8, 30).await;
    // Let late duplicates arrive before checking: they must all be ignored.
    faulty.settled().await;
    check_matrix(&setup.matrix::<i64>("faulty").await.unwrap(), &expected).await;
}

pub async fn retries_give_up_with_a_clear_error(h: &dyn Harness) {
    let faults = FaultConfig {
        drop_request: 1.0,
        drop_response: 0.0,
        duplicate: 0.0,
        max_delay: Duration::ZERO,
        seed: 1,
        ..FaultConfig::default()
    };
    let setup = client(h);
    setup
        .create_matrix::<i32>(ModelSpec::matrix("gone", 4, 4, DType::I32))
        .await
        .unwrap();
    let config = ClientConfig {
        max_attempts: 3,
        backoff_initial: Duration::from_millis(1),
        ..ClientConfig::default()
    };
    let c = Client::new(
        Arc::new(Faulty::new(h.transport(), faults)),
        h.coordinator(),
        config,
    );
    let m = c.matrix::<i32>("gone").await.unwrap();
    let err = m.push(&[0], &[0], &[1]).await.unwrap_err();
    assert!(matches!(err, PsError::PushUnconfirmed { .. }), "{err}");
    assert!(
        matches!(err.cause(), PsError::ShardUnreachable { attempts: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("dropped"), "{err}");
}

/// Shard `down` fails every call; with `applied`, only after handing the request to the shard
/// (its answer is lost), else before.
struct ShardDown {
    inner: Arc<dyn Transport>,
    down: usize,
    applied: bool,
}

impl Transport for ShardDown {
    fn shards(&self) -> usize {
        self.inner.shards()
    }
    fn call(
        &self,
        shard: usize,
        request: Arc<Request>,
    ) -> BoxFuture<'static, Result<Response, PsError>> {
        if shard != self.down {
            return self.inner.call(shard, request);
        }
        let lost = PsError::Transient(format!("shard {shard} is down"));
        if !self.applied {
            return futures::future::ready(Err(lost)).boxed();
        }
        let call = self.inner.call(shard, request);
        async move {
            let _ = call.await;
            Err(lost)
        }
        .boxed()
    }
}

fn quick_retries() -> ClientConfig {
    ClientConfig {
        max_attempts: 2,
        backoff_initial: Duration::from_millis(1),
        ..ClientConfig::default()
    }
}

pub async fn unconfirmed_pushes_are_resent_exactly_once(h: &dyn Harness) {
    // Regression (issue 9): a push that failed on one shard cancelled its other pieces and left
    // no way to finish it under the same (writer, seq).
    let good = client(h);
    for applied in [true, false] {
        let name = format!("tok-{applied}");
        let spec =
            ModelSpec::matrix(&name, 30, 4, DType::I64).with_partitioner(PartitionerKind::Range);
        let m = good.create_matrix::<i64>(spec).await.unwrap();
        let down = ShardDown {
            inner: h.transport(),
            down: 1,
            applied,
        };
        let broken = Client::new(Arc::new(down), h.coordinator(), quick_retries());
        let bm = broken.matrix::<i64>(&name).await.unwrap();
        // Rows 0..10 live on shard 0, 10..20 on shard 1, 20..30 on shard 2.
        let (rows, cols, vals) = ([1, 12, 25, 13], [0, 1, 2, 1], [5, 7, 9, 1]);
        let err = bm.push(&rows, &cols, &vals).await.unwrap_err();
        let token = err
            .push_token()
            .cloned()
            .unwrap_or_else(|| panic!("no token: {err}"));
        assert_eq!(token.shards(), vec![1], "{err}");
        assert_eq!(token.model, name);
        assert!(
            matches!(err.cause(), PsError::ShardUnreachable { shard: 1, .. }),
            "{err}"
        );
        // The healthy pieces were applied, not cancelled by the failing one.
        let here = || m.pull(&rows, &cols);
        let shard1 = if applied { [7, 1] } else { [0, 0] };
        assert_eq!(here().await.unwrap(), vec![5, shard1[0], 9, shard1[1]]);
        // Resending the token, as often as wanted and from another client, finishes the push
        // exactly once; so does a copy that went through serialization (a restarted caller).
        good.resend(token.clone()).await.unwrap();
        good.resend(token.clone()).await.unwrap();
        let persisted = serde_json::to_string(&token).unwrap();
        let restored: PushToken = serde_json::from_str(&persisted).unwrap();
        client(h).resend(restored).await.unwrap();
        assert_eq!(here().await.unwrap(), vec![5, 7, 9, 1], "applied={applied}");
        // A resend that still cannot get through comes back with the same token.
        let again = broken.resend(token.clone()).await.unwrap_err();
        assert_eq!(again.push_token(), Some(&token));
    }
}

pub async fn durable_writers_resume_their_sequence(h: &dyn Harness) {
    let c = client(h);
    let spec =
        ModelSpec::matrix("durable", 12, 2, DType::I64).with_partitioner(PartitionerKind::Cyclic);
    let m = c.create_matrix::<i64>(spec).await.unwrap();
    let writer = m
        .with_writer(WriterState::new(0xD0_7AB1E, m.shards()))
        .unwrap();
    writer
        .push(&[0, 1, 2], &[0, 0, 0], &[1, 1, 1])
        .await
        .unwrap();
    // The worker checkpoints its state here, pushes once more and dies.
    let persisted = serde_json::to_string(&writer.writer_state()).unwrap();
    writer
        .push(&[0, 1, 2], &[1, 1, 1], &[10, 20, 30])
        .await
        .unwrap();
    drop(writer);
    // Restarted from the checkpoint, it replays the same push: the shards recognise it.
    let restarted = client(h);
    let state: WriterState = serde_json::from_str(&persisted).unwrap();
    assert_eq!(state.next_seq, vec![2; m.shards()]);
    let writer = restarted
        .matrix::<i64>("durable")
        .await
        .unwrap()
        .with_writer(state)
        .unwrap();
    writer
        .push(&[0, 1, 2], &[1, 1, 1], &[10, 20, 30])
        .await
        .unwrap();
    // And goes on from there, applied once each.
    writer
        .push(&[0, 1, 2], &[1, 1, 1], &[1, 1, 1])
        .await
        .unwrap();
    assert_eq!(
        m.pull(&[0, 1, 2, 0, 1, 2], &[0, 0, 0, 1, 1, 1])
            .await
            .unwrap(),
        vec![1, 1, 1, 11, 21, 31]
    );
    // A state that does not fit the model is refused rather than risking a silent drop.
    let err = m
        .with_writer(WriterState::new(1, m.shards() + 1))
        .unwrap_err();
    assert!(matches!(err, PsError::InvalidRequest(_)), "{err}");
    let zero = WriterState {
        id: 1,
        next_seq: vec![0; m.shards()],
    };
    assert!(matches!(
        m.with_writer(zero),
        Err(PsError::InvalidRequest(_))
    ));
}

/// The fault scenario of [`faults`] with working dedup: must equal the reference exactly.
pub async fn faults_with_many_writers_match_the_reference(h: &dyn Harness) {
    let resent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcome = faults::scenario(h, Sabotage::None, resent.clone()).await;
    assert_eq!(outcome, Ok(()));
    let resent = resent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        resent > 0,
        "no push needed its token resent: the faults are too mild"
    );
    eprintln!("{resent} unconfirmed pushes resent");
}

/// Negative control: dedup keyed by sequence number only must make the scenario fail.
pub async fn faults_catch_a_dedup_keyed_by_seq_only(h: &dyn Harness) {
    let resent = Arc::default();
    let outcome = faults::scenario(h, Sabotage::SeqOnly, resent).await;
    let caught = outcome.expect_err("a dedup by seq only went unnoticed");
    eprintln!("dedup by seq only caught: {caught}");
}

/// Negative control: a disabled window must make the scenario fail.
pub async fn faults_catch_a_disabled_window(h: &dyn Harness) {
    let resent = Arc::default();
    let outcome = faults::scenario(h, Sabotage::NoWindow, resent).await;
    let caught = outcome.expect_err("a disabled dedup window went unnoticed");
    eprintln!("disabled window caught: {caught}");
}

pub async fn snapshots_round_trip(h: &dyn Harness) {
    let c = client(h);
    let spec = ModelSpec::matrix("snap", 30, 5, DType::I64).with_storage(Storage::Sparse);
    let m = c.create_matrix::<i64>(spec).await.unwrap();
    let v = c
        .create_vector::<f64>(ModelSpec::vector("snapv", 7, DType::F64))
        .await
        .unwrap();
    m.push(&[0, 29, 13], &[4, 0, 2], &[5, 6, 7]).await.unwrap();
    v.push(&[6], &[0.5]).await.unwrap();
    c.save_snapshot("s1").await.unwrap();
    m.push(&[0, 1], &[4, 1], &[100, 100]).await.unwrap();
    v.push(&[6], &[9.0]).await.unwrap();
    c.save_snapshot("s2").await.unwrap();
    c.load_snapshot("s1").await.unwrap();
    assert_eq!(
        m.pull(&[0, 29, 13, 1], &[4, 0, 2, 1]).await.unwrap(),
        vec![5, 6, 7, 0]
    );
    assert_eq!(v.pull(&[6]).await.unwrap(), vec![0.5]);
    // Exactly-once state travels with the snapshot: the same handle keeps pushing correctly.
    m.push(&[1], &[1], &[1]).await.unwrap();
    assert_eq!(m.pull(&[1], &[1]).await.unwrap(), vec![1]);
    c.load_snapshot("s2").await.unwrap();
    assert_eq!(m.pull(&[0, 1], &[4, 1]).await.unwrap(), vec![105, 100]);
    let err = c.load_snapshot("never-saved").await.unwrap_err();
    assert!(err.to_string().contains("never-saved"), "{err}");
    let err = c.save_snapshot("../escape").await.unwrap_err();
    assert!(matches!(err, PsError::InvalidRequest(_)), "{err}");
}

/// Runs random operation sequences against a `HashMap` reference (see [`model`]).
pub async fn random_operations_match_reference(h: &dyn Harness, seed: u64) {
    model::run(&client(h), seed, 60).await;
}

pub type Reference = HashMap<(u64, u32), i64>;

/// Declares one `#[test]` per suite case for a harness constructor
/// `$make: async fn(ps_core::Limits) -> impl Harness`.
#[macro_export]
macro_rules! transport_suite {
    ($make:path) => {
        $crate::transport_suite!(@cases $make, ps_core::Limits::default();
            push_then_pull_every_layout,
            every_value_type,
            aggregations,
            errors_name_the_value_and_the_server_keeps_serving,
            destroy_and_list,
            entries,
            large_requests_are_split,
            split_pushes_keep_their_order,
            concurrent_pushes_are_exact,
            faults_lose_nothing_and_apply_nothing_twice,
            retries_give_up_with_a_clear_error,
            snapshots_round_trip,
            unconfirmed_pushes_are_resent_exactly_once,
            durable_writers_resume_their_sequence,
        );
        $crate::transport_suite!(@cases $make, suite::faults::limits();
            faults_with_many_writers_match_the_reference,
            faults_catch_a_dedup_keyed_by_seq_only,
            faults_catch_a_disabled_window,
        );
        #[test]
        fn random_operations_match_reference() {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                for seed in 0..8 {
                    let h = $make(ps_core::Limits::default()).await;
                    suite::random_operations_match_reference(&h, seed).await;
                }
            });
        }
    };
    (@cases $make:path, $limits:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                rt.block_on(async {
                    let h = $make($limits).await;
                    suite::$case(&h).await;
                });
            }
        )*
    };
}
