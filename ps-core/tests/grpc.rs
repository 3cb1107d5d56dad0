//! The shared suite over gRPC: a master and three shard servers in this process on
//! `127.0.0.1:0`, reached through the real tonic client. Plus what only gRPC has: tokens, message
//! size limits and malformed bytes on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::sync::Arc;
use std::time::Duration;

use ps_core::grpc::{GrpcCoordinator, GrpcTransport, ServeOptions, pb};
use ps_core::master::{Master, MasterRequest, MasterResponse};
use ps_core::transport::{Coordinator, Transport};
use ps_core::{
    AggregatorRegistry, Client, ClientConfig, DType, Limits, ModelSpec, PsError, Shard,
    ShardConfig, Storage,
};
use suite::Harness;
use tokio::net::TcpListener;
use tokio::sync::watch;

struct GrpcHarness {
    master_addr: String,
    shard_addrs: Vec<String>,
    transport: Arc<GrpcTransport>,
    coordinator: Arc<GrpcCoordinator>,
    token: Option<String>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for GrpcHarness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Harness for GrpcHarness {
    fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }
    fn transport_for(&self, config: &ClientConfig) -> Arc<dyn Transport> {
        Arc::new(GrpcTransport::new(&self.shard_addrs, self.token.as_deref(), config).unwrap())
    }
    fn coordinator(&self) -> Arc<dyn Coordinator> {
        self.coordinator.clone()
    }
    fn shards(&self) -> usize {
        self.shard_addrs.len()
    }
}

fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A master and 3 shards with `options` (token, message limit), registered through gRPC.
async fn cluster(options: ServeOptions) -> GrpcHarness {
    cluster_with(options, Limits::default()).await
}

/// [`cluster`] whose shards enforce `limits`.
async fn cluster_with(options: ServeOptions, limits: Limits) -> GrpcHarness {
    let dir = tempfile::tempdir().unwrap();
    let (stop, _) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let master_addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(ps_core::grpc::serve_master(
        listener,
        Arc::new(Master::new()),
        options.clone(),
        stopped(&stop),
    ));
    let token = options.token.clone();
    let config = ClientConfig::default();
    let coordinator =
        Arc::new(GrpcCoordinator::new(&master_addr, token.as_deref(), &config).unwrap());
    let mut shard_addrs = Vec::new();
    for i in 0..3 {
        let aggregators = AggregatorRegistry::default();
        aggregators
            .register("product", Arc::new(suite::Product))
            .unwrap();
        let shard_config = ShardConfig {
            data_dir: Some(dir.path().join(format!("shard-{i}"))),
            limits: limits.clone(),
        };
        let shard = Arc::new(Shard::new(shard_config, aggregators));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard,
            options.clone(),
            stopped(&stop),
        ));
        let answer = coordinator
            .call(MasterRequest::register(addr.clone()))
            .await
            .unwrap();
        assert!(
            matches!(answer, MasterResponse::Registered { shard, .. } if shard == i),
            "{answer:?}"
        );
        shard_addrs.push(addr);
    }
    let transport = Arc::new(GrpcTransport::new(&shard_addrs, token.as_deref(), &config).unwrap());
    GrpcHarness {
        master_addr,
        shard_addrs,
        transport,
        coordinator,
        token,
        stop,
        _dir: dir,
    }
}

async fn grpc_cluster(limits: Limits) -> GrpcHarness {
    cluster_with(ServeOptions::default(), limits).await
}

transport_suite!(grpc_cluster);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn connect_discovers_the_servers_from_the_master() {
    runtime().block_on(async {
        let h = grpc_cluster(Limits::default()).await;
        let c = ps_core::grpc::connect(&h.master_addr, None, ClientConfig::default(), 3)
            .await
            .unwrap();
        assert_eq!(c.shards(), 3);
        let m = c
            .create_matrix::<i32>(ModelSpec::matrix("c", 9, 2, DType::I32))
            .await
            .unwrap();
        m.push(&[8, 0], &[1, 1], &[4, 5]).await.unwrap();
        assert_eq!(m.pull(&[0, 8], &[1, 1]).await.unwrap(), vec![5, 4]);
        // Asking for more servers than registered fails after the timeout, naming the master.
        let quick = ClientConfig {
            timeout: Duration::from_millis(300),
            ..ClientConfig::default()
        };
        let err = ps_core::grpc::connect(&h.master_addr, None, quick, 4)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PsError::Master(ref m) if m.contains(&h.master_addr)),
            "{err}"
        );
    });
}

#[test]
fn tokens_are_accepted_and_strangers_rejected() {
    runtime().block_on(async {
        let secret = ServeOptions {
            token: Some("let-me-in".into()),
            ..ServeOptions::default()
        };
        let h = cluster(secret).await;
        let config = ClientConfig::default();
        // The right token works end to end.
        let c = ps_core::grpc::connect(&h.master_addr, h.token.as_deref(), config.clone(), 3)
            .await
            .unwrap();
        let m = c
            .create_matrix::<i64>(ModelSpec::matrix("t", 6, 2, DType::I64))
            .await
            .unwrap();
        m.push(&[5], &[1], &[7]).await.unwrap();
        assert_eq!(m.pull(&[5], &[1]).await.unwrap(), vec![7]);
        // No token and a wrong token are refused by the master and by every shard, not retried.
        for token in [None, Some("let-me-out")] {
            let master = GrpcCoordinator::new(&h.master_addr, token, &config).unwrap();
            let err = master.call(MasterRequest::ListModels).await.unwrap_err();
            assert!(matches!(err, PsError::Unauthenticated(_)), "{err}");
            let shards = GrpcTransport::new(&h.shard_addrs, token, &config).unwrap();
            for s in 0..3 {
                let err = shards
                    .call(s, Arc::new(ps_core::message::Request::Ping))
                    .await
                    .unwrap_err();
                assert!(matches!(err, PsError::Unauthenticated(_)), "{err}");
            }
            let stranger = Client::new(Arc::new(shards), h.coordinator.clone(), config.clone());
            let sm = stranger.matrix::<i64>("t").await.unwrap();
            let err = sm.push(&[5], &[1], &[100]).await.unwrap_err();
            assert!(matches!(err, PsError::Unauthenticated(_)), "{err}");
        }
        // Nothing the strangers sent was applied.
        assert_eq!(m.pull(&[5], &[1]).await.unwrap(), vec![7]);
    });
}

#[test]
fn oversized_requests_are_rejected_and_the_server_keeps_serving() {
    runtime().block_on(async {
        let small = ServeOptions {
            max_message_bytes: 16 << 10,
            ..ServeOptions::default()
        };
        let h = cluster(small).await;
        // A client that does not split (its limit is far above the server's).
        let big = ClientConfig {
            max_message_bytes: 64 << 20,
            ..ClientConfig::default()
        };
        let transport = Arc::new(GrpcTransport::new(&h.shard_addrs, None, &big).unwrap());
        let c = Client::new(transport, h.coordinator.clone(), big);
        let spec = ModelSpec::matrix("o", 30_000, 8, DType::I32).with_storage(Storage::Sparse);
        let m = c.create_matrix::<i32>(spec).await.unwrap();
        let rows: Vec<u64> = (0..30_000).collect();
        let cols: Vec<u32> = rows.iter().map(|&r| (r % 8) as u32).collect();
        let ones = vec![1; rows.len()];
        let err = m.push(&rows, &cols, &ones).await.unwrap_err();
        assert!(
            matches!(err, PsError::RequestTooLarge { bytes, limit: 16384 } if bytes > 16384),
            "{err}"
        );
        // Small requests still go through, on the same connections, and nothing was applied.
        m.push(&[3], &[3], &[2]).await.unwrap();
        assert_eq!(m.pull(&[3, 4], &[3, 4]).await.unwrap(), vec![2, 0]);
        // A client that splits under the server's limit gets the whole push through.
        let fits = ClientConfig {
            max_message_bytes: 8 << 10,
            ..ClientConfig::default()
        };
        let split = ps_core::grpc::connect(&h.master_addr, None, fits, 3)
            .await
            .unwrap();
        let m2 = split.matrix::<i32>("o").await.unwrap();
        m2.push(&rows, &cols, &ones).await.unwrap();
        assert_eq!(m2.pull(&[3, 29_999], &[3, 7]).await.unwrap(), vec![3, 1]);
    });
}

#[test]
fn entries_of_the_largest_size_pass_small_message_limits() {
    runtime().block_on(async {
        // Message limits sized for shard traffic, far below an entry's 1 MiB: the master and its
        // clients still let the largest entry through, and refuse one byte more by its size.
        let small = ServeOptions {
            max_message_bytes: 16 << 10,
            ..ServeOptions::default()
        };
        let h = cluster(small).await;
        let config = ClientConfig {
            max_message_bytes: 8 << 10,
            ..ClientConfig::default()
        };
        let c = ps_core::grpc::connect(&h.master_addr, None, config.clone(), 3)
            .await
            .unwrap();
        let max = ps_core::master::MAX_ENTRY_VALUE_BYTES;
        let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
        c.put_entry("job", big.clone()).await.unwrap();
        assert!(
            c.entry("job").await.unwrap() == Some(big),
            "1 MiB value changed"
        );
        let master = GrpcCoordinator::new(&h.master_addr, None, &config).unwrap();
        let err = master
            .call(MasterRequest::PutEntry {
                key: "job".into(),
                value: vec![0; max + 1],
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PsError::InvalidRequest(m) if m.contains("1048577 bytes")),
            "{err}"
        );
    });
}

/// Sends raw bytes as the body of a shard `Push` call, whatever they are.
async fn raw_push(addr: &str, body: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/glint.ps.v1.Shard/Push");
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .unwrap_err()
}

#[test]
fn malformed_bytes_are_rejected_and_the_server_keeps_serving() {
    runtime().block_on(async {
        let h = grpc_cluster(Limits::default()).await;
        let c = suite::client(&h);
        let m = c
            .create_matrix::<i32>(ModelSpec::matrix("x", 9, 4, DType::I32))
            .await
            .unwrap();
        let addr = &h.shard_addrs[0];
        // Not protobuf at all: a truncated varint, then a field of wire type 7.
        for garbage in [vec![0x08, 0xff], vec![0x0f, 1, 2, 3], vec![0xff; 64]] {
            let status = raw_push(addr, garbage).await;
            assert_ne!(status.code(), tonic::Code::Ok);
            assert!(
                !ps_core::grpc::status::error_from_status(&status).is_retryable(),
                "{status:?}"
            );
        }
        // Valid protobuf that describes an impossible push: counts that do not add up.
        use prost::Message;
        let lie = pb::PushRequest {
            model: "x".into(),
            writer: 1,
            seq: 1,
            row_deltas: vec![0],
            row_counts: vec![5],
            col_deltas: vec![1],
            values: Some(ps_core::grpc::encode::values_to_pb(ps_core::Values::I32(
                vec![1],
            ))),
        };
        let status = raw_push(addr, lie.encode_to_vec()).await;
        let err = ps_core::grpc::status::error_from_status(&status);
        assert!(
            matches!(err, PsError::InvalidRequest(ref m) if m.contains("add up")),
            "{err}"
        );
        // A column past the end of the model, smuggled past the client.
        let far = pb::PushRequest {
            row_counts: vec![1],
            col_deltas: vec![u32::MAX],
            ..lie
        };
        let err =
            ps_core::grpc::status::error_from_status(&raw_push(addr, far.encode_to_vec()).await);
        assert!(
            matches!(err, PsError::ColOutOfRange { col: u32::MAX, .. }),
            "{err}"
        );
        // Still serving, and nothing was applied.
        m.push(&[0], &[1], &[6]).await.unwrap();
        assert_eq!(m.pull(&[0, 0], &[1, 0]).await.unwrap(), vec![6, 0]);
    });
}

/// A codec that sends the bytes it is given and decodes nothing: lets a test put arbitrary
/// bytes on the wire.
#[derive(Clone, Copy)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = ();
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<()>, tonic::Status> {
        use prost::bytes::Buf;
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[test]
fn servers_stop_when_their_shutdown_future_completes() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shard = Arc::new(Shard::new(
            ShardConfig::default(),
            AggregatorRegistry::default(),
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard,
            ServeOptions::default(),
            async {
                let _ = stopped.await;
            },
        ));
        let config = ClientConfig::default();
        let t = GrpcTransport::new(std::slice::from_ref(&addr), None, &config).unwrap();
        let pong = t
            .call(0, Arc::new(ps_core::message::Request::Ping))
            .await
            .unwrap();
        assert_eq!(pong, ps_core::message::Response::Pong { models: vec![] });
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Nobody listens any more: the call fails as a transient (retryable) error.
        let fresh = GrpcTransport::new(&[addr], None, &config).unwrap();
        let err = fresh
            .call(0, Arc::new(ps_core::message::Request::Ping))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    });
}

/// An aggregator that takes 100 ms per element: a push that keeps its thread busy.
struct Slow;
impl ps_core::Aggregator for Slow {
    fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
        std::thread::sleep(Duration::from_millis(100));
        current + pushed
    }
    fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
        std::thread::sleep(Duration::from_millis(100));
        current + pushed
    }
}

#[test]
fn a_slow_push_does_not_stall_the_server() {
    // Regression (issue 9): pushes were applied on a tokio worker, so one long push (a wide
    // sparse row, a big batch) stalled every connection of the server. On a single-threaded
    // runtime that stall is total; with pushes on the blocking pool a ping is answered at once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use ps_core::message::{Push, Request, Response};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let aggregators = AggregatorRegistry::default();
        aggregators.register("slow", Arc::new(Slow)).unwrap();
        let shard = Arc::new(Shard::new(ShardConfig::default(), aggregators));
        tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard,
            ServeOptions::default(),
            std::future::pending(),
        ));
        let config = ClientConfig::default();
        let t = Arc::new(GrpcTransport::new(&[addr], None, &config).unwrap());
        let spec = ModelSpec::matrix("s", 8, 1, DType::I64).with_aggregator("slow");
        let create = Request::Create {
            spec,
            shard: 0,
            shards: 1,
        };
        assert_eq!(t.call(0, Arc::new(create)).await.unwrap(), Response::Done);
        let push = Request::Push(Push {
            model: "s".into(),
            writer: 1,
            seq: 1,
            rows: (0..8).collect(),
            cols: vec![0; 8],
            values: ps_core::Values::I64(vec![1; 8]),
        });
        let pushing = {
            let t = t.clone();
            tokio::spawn(async move { t.call(0, Arc::new(push)).await })
        };
        // Let the push reach the server and start (800 ms of work).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let start = std::time::Instant::now();
        let pong = t.call(0, Arc::new(Request::Ping)).await.unwrap();
        let waited = start.elapsed();
        assert!(matches!(pong, Response::Pong { .. }));
        assert!(
            waited < Duration::from_millis(400),
            "a ping waited {waited:?} for a push"
        );
        assert!(!pushing.is_finished(), "the push should still be running");
        assert_eq!(pushing.await.unwrap().unwrap(), Response::Done);
    });
}
