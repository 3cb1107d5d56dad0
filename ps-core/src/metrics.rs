//! Process metrics in the Prometheus text format: counters and gauges registered once by name
//! and labels, rendered on demand, and a minimal HTTP endpoint that serves them (`GET /metrics`).
//!
//! Call sites keep the [`Counter`] or [`Gauge`] they registered, so updating one is a single
//! relaxed atomic operation; the registry's lock is taken only to register and to render.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{PsError, Result};

/// How a metric's value is kept and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    /// A counter of nanoseconds, shown in seconds.
    Seconds,
    Gauge,
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds a duration (for counters registered with [`seconds_counter`]).
    pub fn add_duration(&self, d: Duration) {
        self.add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as the bits of an f64).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Debug)]
enum Cell {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    /// Rendered label sets (`{rpc="push"}`) → value.
    cells: BTreeMap<String, Cell>,
}

#[derive(Debug, Default)]
struct Registry {
    families: BTreeMap<&'static str, Family>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// `{a="x",b="y"}` with values escaped as the text format requires.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn register(name: &'static str, help: &'static str, kind: Kind, labels: &[(&str, &str)]) -> Cell {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let family = reg.families.entry(name).or_insert_with(|| Family {
        help,
        kind,
        cells: BTreeMap::new(),
    });
    let cell = family
        .cells
        .entry(label_set(labels))
        .or_insert_with(|| match kind {
            Kind::Gauge => Cell::Gauge(Arc::default()),
            Kind::Counter | Kind::Seconds => Cell::Counter(Arc::default()),
        });
    match cell {
        Cell::Counter(c) => Cell::Counter(c.clone()),
        Cell::Gauge(g) => Cell::Gauge(g.clone()),
    }
}

/// The counter `name` with `labels` (created at 0 on first use; the same one afterwards).
/// A name first registered as a gauge yields a detached counter (a programming error that must
/// not take a server down).
pub fn counter(name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Arc<Counter> {
    match register(name, help, Kind::Counter, labels) {
        Cell::Counter(c) => c,
        Cell::Gauge(_) => Arc::default(),
    }
}

/// A counter of time: add durations, shown in seconds.
pub fn seconds_counter(
    name: &'static str,
    help: &'static str,
    labels: &[(&str, &str)],
) -> Arc<Counter> {
    match register(name, help, Kind::Seconds, labels) {
        Cell::Counter(c) => c,
        Cell::Gauge(_) => Arc::default(),
    }
}

/// The gauge `name` with `labels`.
pub fn gauge(name: &'static str, help: &'static str, labels: &[(&str, &str)]) -> Arc<Gauge> {
    match register(name, help, Kind::Gauge, labels) {
        Cell::Gauge(g) => g,
        Cell::Counter(_) => Arc::default(),
    }
}

/// Every registered metric in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, family) in &reg.families {
        let kind = match family.kind {
            Kind::Counter | Kind::Seconds => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", family.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, cell) in &family.cells {
            let value = match (cell, family.kind) {
                (Cell::Counter(c), Kind::Seconds) => format!("{}", c.get() as f64 / 1e9),
                (Cell::Counter(c), _) => c.get().to_string(),
                (Cell::Gauge(g), _) => {
                    let v = g.get();
                    if v.is_nan() {
                        "NaN".to_string()
                    } else {
                        format!("{v}")
                    }
                }
            };
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    }
    out
}

/// Largest request head the endpoint reads.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves `GET /metrics` on `listener` until `shutdown` completes. Each connection gets one
/// answer and is closed; a slow or oversized request is dropped without disturbing others.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            a = listener.accept() => a,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: accept failed");
                continue;
            }
        };
        tokio::spawn(async move {
            let answered = tokio::time::timeout(Duration::from_secs(5), async {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
                let line = String::from_utf8_lossy(line);
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next(), parts.next());
                let response = match (method, path) {
                    (Some("GET"), Some("/metrics" | "/")) => {
                        let body = render();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            if let Ok(Err(e)) = answered {
                tracing::debug!(%peer, error = %e, "metrics: connection failed");
            }
        });
    }
}

/// Binds `addr` for [`serve`]; an error names the address.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| PsError::Server(format!("metrics endpoint on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_in_the_text_format() {
        let c = counter("test_requests_total", "Requests.", &[("rpc", "push")]);
        c.add(3);
        counter("test_requests_total", "Requests.", &[("rpc", "push")]).inc();
        let g = gauge("test_perplexity", "Held-out perplexity.", &[]);
        g.set(1234.5);
        let s = seconds_counter("test_wait_seconds_total", "Waiting.", &[]);
        s.add_duration(Duration::from_millis(1500));
        let weird = counter("test_labels_total", "Escaping.", &[("path", "a\"b\\c")]);
        weird.inc();
        let text = render();
        assert!(
            text.contains("# TYPE test_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("test_requests_total{rpc=\"push\"} 4"),
            "{text}"
        );
        assert!(text.contains("# TYPE test_perplexity gauge"), "{text}");
        assert!(text.contains("test_perplexity 1234.5"), "{text}");
        assert!(text.contains("test_wait_seconds_total 1.5"), "{text}");
        assert!(
            text.contains(r#"test_labels_total{path="a\"b\\c"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_endpoint_answers_get_metrics_and_nothing_else() {
        counter("test_endpoint_total", "Endpoint test.", &[]).add(7);
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains("test_endpoint_total 7"), "{ok}");
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
