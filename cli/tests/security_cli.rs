//! The security of the cluster roles as processes: a master or server bound beyond loopback
//! refuses to start unauthenticated unless `--insecure`; TLS flags come in pairs; and a master
//! and a server started with certificates made here (mutual TLS, the server registering over
//! TLS) serve a TLS client of ps-core and refuse a plain-text one.
//!
//! Binding 0.0.0.0 only listens on this machine's interfaces; nothing here dials beyond loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::listen;
use ps_core::grpc::{TlsClient, TlsIdentity};
use ps_core::{ClientConfig, DType, ModelSpec, PsError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

const BIN: &str = env!("CARGO_BIN_EXE_glint-lda");

/// Runs `glint-lda args...`, which must exit by itself within a few seconds: a role that
/// should refuse to start but serves instead fails the test rather than hanging it.
fn refused(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} kept running instead of refusing to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_master_or_server_beyond_loopback_needs_a_token_or_insecure() {
    let out = refused(&["master", "--bind", "0.0.0.0:0"]);
    let err = stderr(&out);
    assert!(
        err.contains("refusing to serve on 0.0.0.0:")
            && err.contains("--token-file")
            && err.contains("--insecure"),
        "{err}"
    );
    // A server is refused before it tries to register (the master here does not exist).
    let out = refused(&[
        "server",
        "--master",
        "127.0.0.1:9",
        "--bind",
        "0.0.0.0:0",
        "--register-timeout-secs",
        "1",
    ]);
    let err = stderr(&out);
    assert!(err.contains("refusing to serve on 0.0.0.0:"), "{err}");

    // --insecure, or a token, lets it start.
    let master = listen(&["master", "--bind", "0.0.0.0:0", "--insecure"]);
    assert!(
        master.banner.starts_with("listening on 0.0.0.0:"),
        "{}",
        master.banner
    );
    drop(master);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let master = listen(&[
        "master",
        "--bind",
        "0.0.0.0:0",
        "--token-file",
        path(&token),
    ]);
    drop(master);
    // Loopback needs neither.
    drop(listen(&["master", "--bind", "127.0.0.1:0"]));
}

#[test]
fn tls_flags_come_in_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("x.pem");
    std::fs::write(&pem, "not used").unwrap();
    for (args, missing) in [
        (vec!["master", "--tls-cert", path(&pem)], "--tls-key"),
        (vec!["master", "--tls-key", path(&pem)], "--tls-cert"),
        (vec!["master", "--tls-client-ca", path(&pem)], "--tls-cert"),
        (
            vec![
                "server",
                "--master",
                "127.0.0.1:9",
                "--tls-client-cert",
                path(&pem),
            ],
            "--tls-client-key",
        ),
        (
            vec![
                "server",
                "--master",
                "127.0.0.1:9",
                "--tls-domain",
                "ps.test",
            ],
            "--tls-ca",
        ),
    ] {
        let out = refused(&args);
        let err = stderr(&out);
        assert!(err.contains(missing), "{args:?}: {err}");
    }
    // A file that is not PEM is named in the error, before anything is served.
    let key = dir.path().join("k.pem");
    std::fs::write(&key, "nor this").unwrap();
    let out = refused(&[
        "master",
        "--bind",
        "127.0.0.1:0",
        "--tls-cert",
        path(&pem),
        "--tls-key",
        path(&key),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("x.pem") && err.contains("CERTIFICATE"),
        "{err}"
    );
}

/// PEM files of a CA and of one certificate it signed for `127.0.0.1`, usable by a server and
/// as a client certificate.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "glint test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "glint node");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let files = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("node.pem"),
        key: dir.join("node.key"),
    };
    std::fs::write(&files.ca, ca_cert.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_mutual_tls_master_and_server_serve_a_tls_client() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let serve_tls = [
        "--tls-cert",
        path(&pki.cert),
        "--tls-key",
        path(&pki.key),
        "--tls-client-ca",
        path(&pki.ca),
    ];
    let mut args = vec!["master", "--bind", "127.0.0.1:0"];
    args.extend(serve_tls);
    let master = listen(&args);
    let master_addr = master.addr.clone();
    // The server registers over mutual TLS, presenting the same certificate as a client.
    let mut args = vec!["server", "--master", &master_addr, "--bind", "127.0.0.1:0"];
    args.extend(serve_tls);
    args.extend([
        "--tls-ca",
        path(&pki.ca),
        "--tls-client-cert",
        path(&pki.cert),
        "--tls-client-key",
        path(&pki.key),
    ]);
    let server = listen(&args);
    assert!(server.banner.ends_with("as shard 0"), "{}", server.banner);

    let read = |p: &Path| std::fs::read(p).unwrap();
    let identity = TlsIdentity::from_pem(read(&pki.cert), read(&pki.key)).unwrap();
    let tls = TlsClient::new(read(&pki.ca))
        .unwrap()
        .with_identity(identity);
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        tls: Some(tls.clone()),
        ..ClientConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ps_core::grpc::connect(&master_addr, None, config.clone(), 1)
            .await
            .unwrap();
        let m = client
            .create_matrix::<i64>(ModelSpec::matrix("tls", 20, 3, DType::I64))
            .await
            .unwrap();
        m.push(&[19, 0, 19], &[2, 0, 2], &[4, 1, 6]).await.unwrap();
        assert_eq!(m.pull(&[19, 0], &[2, 0]).await.unwrap(), vec![10, 1]);

        // Plain text, and TLS without a client certificate, are refused at once.
        for (what, tls) in [
            ("plain text", None),
            (
                "no client cert",
                Some(TlsClient::new(read(&pki.ca)).unwrap()),
            ),
        ] {
            let config = ClientConfig {
                tls,
                ..config.clone()
            };
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                ps_core::grpc::connect(&master_addr, None, config, 1),
            )
            .await
            .unwrap_or_else(|_| panic!("{what}: connect hung"));
            let err = answer.err().unwrap_or_else(|| panic!("{what}: connected"));
            assert!(matches!(err, PsError::Unauthenticated(_)), "{what}: {err}");
        }
    });

    // A driver and a worker train over mutual TLS as well.
    let corpus = dir.path().join("corpus");
    let bin = env!("CARGO_BIN_EXE_glint-lda");
    let synth = std::process::Command::new(bin)
        .args([
            "-q",
            "synth",
            "--out",
            path(&corpus),
            "--docs",
            "200",
            "--vocab",
            "100",
        ])
        .output()
        .unwrap();
    assert!(synth.status.success(), "{}", stderr(&synth));
    let client_tls = [
        "--tls-ca",
        path(&pki.ca),
        "--tls-client-cert",
        path(&pki.cert),
        "--tls-client-key",
        path(&pki.key),
    ];
    let mut args = vec![
        "worker",
        "--master",
        &master_addr,
        "--job",
        "tls",
        "--index",
        "0",
    ];
    args.extend(["--corpus", path(&corpus)]);
    args.extend(client_tls);
    let worker = std::process::Command::new(bin)
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let model = dir.path().join("model");
    let mut args = vec![
        "train",
        "--master",
        &master_addr,
        "--workers",
        "1",
        "--job",
        "tls",
    ];
    args.extend([
        "--corpus",
        path(&corpus),
        "--topics",
        "4",
        "--iterations",
        "5",
    ]);
    args.extend(["--out", path(&model)]);
    args.extend(client_tls);
    let driver = std::process::Command::new(bin)
        .args(&args)
        .output()
        .unwrap();
    let worker = worker.wait_with_output().unwrap();
    assert!(driver.status.success(), "{}", stderr(&driver));
    assert!(worker.status.success(), "{}", stderr(&worker));
    assert!(model.join("phi.npy").is_file());
}
