//! TLS over gRPC: a master and shards served with certificates made at test time (rcgen), shards
//! registering over TLS, clients verifying servers against the CA, mutual TLS, and the failures
//! a misconfigured client must see quickly and clearly instead of a hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ps_core::grpc::{GrpcCoordinator, ServeOptions, TlsClient, TlsIdentity, TlsServer};
use ps_core::master::{Master, MasterRequest, MasterResponse};
use ps_core::transport::Coordinator;
use ps_core::{AggregatorRegistry, Client, ClientConfig, DType, ModelSpec, PsError, Shard};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A CA that signs server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Leaf {
    fn identity(&self) -> TlsIdentity {
        TlsIdentity::from_pem(self.cert.as_bytes(), self.key.as_bytes()).unwrap()
    }
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses) with the extended key usage `usage`.
    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "glint-lda test");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self) -> Leaf {
        self.leaf(&["worker.glint.test"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn trust(&self) -> TlsClient {
        TlsClient::new(self.pem.as_bytes()).unwrap()
    }
}

struct TlsCluster {
    master_addr: String,
    stop: watch::Sender<bool>,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// A master and `shards` shards served with `options`; each shard registers over gRPC with
/// `register` (its client side: the CA, and a client certificate under mutual TLS).
async fn cluster(options: ServeOptions, register: ClientConfig, shards: usize) -> TlsCluster {
    let (stop, _) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let master_addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(ps_core::grpc::serve_master(
        listener,
        Arc::new(Master::new()),
        options.clone(),
        stopped(&stop),
    ));
    let master = GrpcCoordinator::new(&master_addr, options.token.as_deref(), &register).unwrap();
    for i in 0..shards {
        let shard = Arc::new(Shard::new(
            Default::default(),
            AggregatorRegistry::default(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(ps_core::grpc::serve_shard(
            listener,
            shard,
            options.clone(),
            stopped(&stop),
        ));
        let answer = master.call(MasterRequest::register(addr)).await.unwrap();
        assert!(
            matches!(answer, MasterResponse::Registered { shard, .. } if shard == i as u32),
            "{answer:?}"
        );
    }
    TlsCluster { master_addr, stop }
}

fn tls_options(server: &Leaf, client_ca: Option<&Ca>) -> ServeOptions {
    let mut tls = TlsServer::new(server.identity());
    if let Some(ca) = client_ca {
        tls = tls.require_client_certs(ca.pem.as_bytes()).unwrap();
    }
    ServeOptions {
        tls: Some(tls),
        ..ServeOptions::default()
    }
}

fn with_tls(tls: Option<TlsClient>, timeout: Duration) -> ClientConfig {
    ClientConfig {
        timeout,
        tls,
        ..ClientConfig::default()
    }
}

/// Creates a matrix, pushes and pulls it back through `client`.
async fn round_trip(client: &Client, name: &str) {
    let m = client
        .create_matrix::<i64>(ModelSpec::matrix(name, 50, 4, DType::I64))
        .await
        .unwrap();
    m.push(&[1, 49, 49], &[0, 3, 3], &[5, 2, 3]).await.unwrap();
    assert_eq!(m.pull(&[1, 49], &[0, 3]).await.unwrap(), vec![5, 5]);
}

/// `connect` with `config`, which must fail well within `bound` (a hang fails the test).
async fn connect_fails(addr: &str, config: ClientConfig, bound: Duration) -> PsError {
    let start = Instant::now();
    let answer = tokio::time::timeout(bound, ps_core::grpc::connect(addr, None, config, 1)).await;
    let err = match answer {
        Ok(Ok(_)) => panic!("a client that should be refused connected to {addr}"),
        Ok(Err(e)) => e,
        Err(_) => panic!("connect to {addr} hung for {bound:?}"),
    };
    eprintln!("refused after {:?}: {err}", start.elapsed());
    err
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A CA, a server certificate for the loopback address and a client trusting the CA.
fn loopback_ca() -> (Ca, Leaf, ClientConfig) {
    let ca = Ca::new("glint test CA");
    let server = ca.server(&["localhost", "127.0.0.1"]);
    let client = with_tls(Some(ca.trust()), Duration::from_secs(5));
    (ca, server, client)
}

#[test]
fn a_tls_cluster_works_end_to_end() {
    runtime().block_on(async {
        let (_ca, server, client) = loopback_ca();
        // The shards register over TLS too: `cluster` registers through a TLS coordinator.
        let h = cluster(tls_options(&server, None), client.clone(), 2).await;
        let c = ps_core::grpc::connect(&h.master_addr, None, client, 2)
            .await
            .unwrap();
        assert_eq!(c.shards(), 2);
        round_trip(&c, "over-tls").await;
    });
}

#[test]
fn a_client_that_does_not_trust_the_servers_ca_is_refused_at_once() {
    runtime().block_on(async {
        let (_ca, server, client) = loopback_ca();
        let h = cluster(tls_options(&server, None), client.clone(), 1).await;
        let stranger = with_tls(Some(Ca::new("another CA").trust()), client.timeout);
        let start = Instant::now();
        let err = connect_fails(&h.master_addr, stranger, Duration::from_secs(20)).await;
        assert!(
            matches!(&err, PsError::Unauthenticated(m) if m.contains("invalid peer certificate")),
            "{err}"
        );
        // Not retried until the client's timeout: a certificate does not become trusted later.
        assert!(start.elapsed() < client.timeout, "{:?}", start.elapsed());
        // The master's real clients are unaffected.
        ps_core::grpc::connect(&h.master_addr, None, client, 1)
            .await
            .unwrap();
    });
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca() {
    runtime().block_on(async {
        let (ca, server, _) = loopback_ca();
        // Client certificates come from their own CA, so the server must be checking that one.
        let client_ca = Ca::new("glint client CA");
        let worker = client_ca.client();
        let member = with_tls(
            Some(ca.trust().with_identity(worker.identity())),
            Duration::from_secs(5),
        );
        let options = ServeOptions {
            token: Some("and-a-token".into()),
            ..tls_options(&server, Some(&client_ca))
        };
        let h = cluster(options, member.clone(), 2).await;
        let c = ps_core::grpc::connect(&h.master_addr, Some("and-a-token"), member.clone(), 2)
            .await
            .unwrap();
        round_trip(&c, "mutual").await;

        let cases = [
            ("no client certificate", ca.trust()),
            (
                "a certificate from another CA",
                ca.trust().with_identity(ca.client().identity()),
            ),
        ];
        for (what, tls) in cases {
            let config = with_tls(Some(tls), member.timeout);
            let start = Instant::now();
            let answer = tokio::time::timeout(
                Duration::from_secs(20),
                ps_core::grpc::connect(&h.master_addr, Some("and-a-token"), config, 1),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: connect hung"));
            let err = answer.err().unwrap_or_else(|| panic!("{what}: connected"));
            assert!(
                matches!(&err, PsError::Unauthenticated(m) if m.contains("TLS handshake failed")),
                "{what}: {err}"
            );
            assert!(
                start.elapsed() < member.timeout,
                "{what}: {:?}",
                start.elapsed()
            );
        }
        let err = connect_fails(
            &h.master_addr,
            with_tls(Some(ca.trust()), member.timeout),
            Duration::from_secs(20),
        )
        .await;
        assert!(
            err.to_string().contains("requires a client certificate"),
            "{err}"
        );
    });
}

#[test]
fn plain_text_and_tls_do_not_mix_and_say_so() {
    runtime().block_on(async {
        let (_ca, server, client) = loopback_ca();
        let secure = cluster(tls_options(&server, None), client.clone(), 1).await;
        let plain = cluster(ServeOptions::default(), ClientConfig::default(), 1).await;

        // A plain-text client of a TLS server.
        let err = connect_fails(
            &secure.master_addr,
            with_tls(None, client.timeout),
            Duration::from_secs(20),
        )
        .await;
        assert!(
            matches!(&err, PsError::Unauthenticated(m) if m.contains("plain-text") && m.contains("TLS")),
            "{err}"
        );
        // A TLS client of a plain-text server.
        let err = connect_fails(&plain.master_addr, client.clone(), Duration::from_secs(20)).await;
        assert!(
            matches!(&err, PsError::Unauthenticated(m) if m.contains("serving plain text")),
            "{err}"
        );
        // An explicit scheme that contradicts the configuration is refused before dialling.
        let http = format!("http://{}", secure.master_addr);
        let err = connect_fails(&http, client.clone(), Duration::from_secs(5)).await;
        assert!(
            matches!(&err, PsError::InvalidRequest(m) if m.contains("TLS is configured")),
            "{err}"
        );
        let https = format!("https://{}", plain.master_addr);
        let err = connect_fails(&https, ClientConfig::default(), Duration::from_secs(5)).await;
        assert!(
            matches!(&err, PsError::InvalidRequest(m) if m.contains("no TLS CA")),
            "{err}"
        );
        // An explicit https scheme with TLS is the same as a bare address.
        let https = format!("https://{}", secure.master_addr);
        ps_core::grpc::connect(&https, None, client, 1).await.unwrap();
    });
}

#[test]
fn a_domain_override_verifies_servers_reached_by_ip_under_their_name() {
    runtime().block_on(async {
        let ca = Ca::new("glint test CA");
        // The certificate names a DNS name only; the cluster is dialled by IP.
        let server = ca.server(&["ps.glint.test"]);
        let named = with_tls(
            Some(ca.trust().with_domain("ps.glint.test").unwrap()),
            Duration::from_secs(5),
        );
        let h = cluster(tls_options(&server, None), named.clone(), 2).await;
        let err = connect_fails(
            &h.master_addr,
            with_tls(Some(ca.trust()), named.timeout),
            Duration::from_secs(20),
        )
        .await;
        assert!(
            matches!(&err, PsError::Unauthenticated(m) if m.contains("not valid for name")),
            "{err}"
        );
        // The override covers the shards too, which the client learns by IP from the master.
        let c = ps_core::grpc::connect(&h.master_addr, None, named, 2)
            .await
            .unwrap();
        round_trip(&c, "named").await;
    });
}

#[test]
fn bad_pem_is_refused_when_the_options_are_built() {
    let ca = Ca::new("glint test CA");
    let leaf = ca.server(&["localhost"]);
    let err = TlsClient::new(b"not a certificate".as_slice()).unwrap_err();
    assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");
    let err = TlsClient::new(leaf.key.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("CA"), "{err}");
    let err = TlsIdentity::from_pem(leaf.key.as_bytes(), leaf.key.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("certificate chain"), "{err}");
    let err = TlsIdentity::from_pem(leaf.cert.as_bytes(), leaf.cert.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
    let err = TlsServer::new(leaf.identity())
        .require_client_certs(b"".as_slice())
        .unwrap_err();
    assert!(err.to_string().contains("client CA"), "{err}");
    let err = ca.trust().with_domain("not a name!").unwrap_err();
    assert!(err.to_string().contains("not a name!"), "{err}");
    // The key never appears in debug output (a `ClientConfig` is logged with its client).
    let shown = format!("{:?}", leaf.identity());
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let config = with_tls(
        Some(ca.trust().with_identity(leaf.identity())),
        Duration::from_secs(1),
    );
    let shown = format!("{config:?}");
    assert!(
        shown.contains("TlsClient") && !shown.contains("45, 45, 45"),
        "{shown}"
    );
    let shown = format!("{:?}", TlsServer::new(leaf.identity()));
    assert!(shown.contains("requires_client_certs: false"), "{shown}");
}
