//! An application's own aggregation on a real gRPC server: a server built with
//! `glint_lda_cli::run_with` and a registered aggregator (what
//! `examples/custom_aggregator_server.rs` is) applies it, in the order the client pushed, to a
//! push split into many pieces; the stock `glint-lda server` refuses the model, naming the
//! aggregator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::listen;
use ps_core::{Aggregator, AggregatorRegistry, ClientConfig, DType, ModelSpec};

/// `current * 10 + pushed`: the result spells the order in which digits arrived.
struct AppendDigit;

impl Aggregator for AppendDigit {
    fn combine_i64(&self, current: i64, pushed: i64) -> i64 {
        current * 10 + pushed
    }
    fn combine_f64(&self, current: f64, pushed: f64) -> f64 {
        current * 10.0 + pushed
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Digits 1..=9 into every row of `rows` in one push, in digit order.
fn digits(rows: u64) -> (Vec<u64>, Vec<u32>, Vec<i64>) {
    let (mut r, mut c, mut v) = (vec![], vec![], vec![]);
    for d in 1..=9 {
        for row in 0..rows {
            r.push(row);
            c.push(0);
            v.push(d);
        }
    }
    (r, c, v)
}

#[test]
fn a_server_with_an_applications_aggregator_applies_it_in_push_order() {
    let master = listen(&["master", "--bind", "127.0.0.1:0"]);
    let aggregators = AggregatorRegistry::default();
    aggregators
        .register("append-digit", Arc::new(AppendDigit))
        .unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let args = vec![
        "glint-lda".to_string(),
        "server".into(),
        "--master".into(),
        master.addr.clone(),
        "--bind".into(),
        bind,
    ];
    // The server runs for the rest of this test process.
    std::thread::spawn(move || glint_lda_cli::run_with(args, aggregators));

    runtime().block_on(async {
        // 256-byte messages: a push of 72 elements travels in 7 pieces.
        let config = ClientConfig {
            max_message_bytes: 256,
            ..ClientConfig::default()
        };
        let client = ps_core::grpc::connect(&master.addr, None, config, 1)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("digits", 8, 1, DType::I64).with_aggregator("append-digit");
        let m = client.create_matrix::<i64>(spec).await.unwrap();
        let (rows, cols, values) = digits(8);
        m.push(&rows, &cols, &values).await.unwrap();
        let got = m.pull(&(0..8).collect::<Vec<_>>(), &[0; 8]).await.unwrap();
        assert_eq!(got, vec![123_456_789; 8]);
    });
}

#[test]
fn the_stock_server_refuses_an_unknown_aggregator_by_name() {
    let master = listen(&["master", "--bind", "127.0.0.1:0"]);
    let _server = listen(&["server", "--master", &master.addr, "--bind", "127.0.0.1:0"]);
    runtime().block_on(async {
        let client = ps_core::grpc::connect(&master.addr, None, ClientConfig::default(), 1)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("digits", 8, 1, DType::I64).with_aggregator("append-digit");
        let err = client.create_matrix::<i64>(spec).await.unwrap_err();
        assert!(err.to_string().contains("append-digit"), "{err}");
    });
}
