//! `--metrics-addr` and `--max-memory-mb` on a real `glint-lda server`: a push past the memory
//! cap is refused whole (and not applied), and the Prometheus endpoint counts what happened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ps_core::{ClientConfig, DType, ModelSpec, Storage};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `glint-lda args...`; returns it, its `listening on` address and, if it printed one
/// before, its metrics address.
fn start(args: &[&str]) -> (Proc, String, Option<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut banner = String::new();
    BufReader::new(stdout).read_line(&mut banner).unwrap();
    let addr = banner
        .trim()
        .strip_prefix("listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{args:?} printed {banner:?}"))
        .to_string();
    // Drain stderr for the process's whole life (a closed pipe would fail its log writes),
    // passing on the metrics address it announces.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line
                .strip_prefix("metrics on http://")
                .and_then(|r| r.strip_suffix("/metrics"))
            {
                let _ = tx.send(a.to_string());
            }
        }
    });
    let metrics = args
        .contains(&"--metrics-addr")
        .then(|| rx.recv_timeout(Duration::from_secs(10)).ok())
        .flatten();
    (Proc(child), addr, metrics)
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    out
}

/// The value of the sample `line_start` (metric name with labels) in a scrape.
fn sample(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
}

#[test]
fn a_server_under_a_memory_cap_refuses_growth_and_reports_it() {
    let (_master, master, _) = start(&["master", "--bind", "127.0.0.1:0"]);
    let (_server, _, metrics) = start(&[
        "server",
        "--master",
        &master,
        "--bind",
        "127.0.0.1:0",
        "--max-memory-mb",
        "1",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let metrics = metrics.expect("the server printed its metrics address");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = ClientConfig {
            timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        };
        let client = ps_core::grpc::connect(&master, None, config, 1)
            .await
            .unwrap();
        let spec = ModelSpec::matrix("m", 10, 1_000_000, DType::I32).with_storage(Storage::Sparse);
        let m = client.create_matrix::<i32>(spec).await.unwrap();
        // 1,000 new cells fit in 1 MiB; 150,000 (1.2 MB of cells, one request) do not.
        let cols: Vec<u32> = (0..1000).collect();
        m.push(&vec![0; 1000], &cols, &vec![1; 1000]).await.unwrap();
        let cols: Vec<u32> = (0..150_000).collect();
        let err = m
            .push(&vec![1; 150_000], &cols, &vec![1; 150_000])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("memory cap"), "{err}");
        // Nothing of the refused push was applied.
        assert_eq!(m.pull(&[1, 1], &[0, 149_999]).await.unwrap(), vec![0, 0]);
        assert_eq!(m.pull(&[0], &[999]).await.unwrap(), vec![1]);
    });
    let text = scrape(&metrics);
    assert!(
        sample(&text, "ps_shard_requests_total{kind=\"push\"}") >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "ps_shard_errors_total{kind=\"push\"}") >= 1.0,
        "{text}"
    );
    let memory = sample(&text, "ps_shard_memory_bytes");
    assert!(memory > 8000.0 && memory < 1_048_576.0, "{memory}");
    assert!(
        text.contains("# TYPE ps_shard_lock_wait_seconds_total counter"),
        "{text}"
    );
}
