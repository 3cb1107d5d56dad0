//! The security flags of the cluster roles, and turning them into ps-core's options.
//!
//! - [`ServerSecurity`] (flattened into `master` and `server`): the shared-secret token, the TLS
//!   identity, the CA of client certificates (mutual TLS), and `--insecure`. A server bound to
//!   an address beyond loopback refuses to start unauthenticated ([`ServerSecurity::check_exposure`]).
//! - [`ClientSecurity`] (flattened into every role that dials the master: `server` for its
//!   registration, `train --master`, `worker`): the CA that servers' certificates must chain
//!   to (which turns TLS on), a client certificate for mutual TLS, and a name override.
//!   [`ClientSecurity::client_config`] puts it into the [`ClientConfig`] that
//!   `ps_core::grpc::connect` and `GrpcCoordinator::new` take.
//!
//! Every file is read here, so a missing or malformed one fails at startup naming its flag and
//! path, never at the first connection.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use ps_core::ClientConfig;
use ps_core::grpc::{ServeOptions, TlsClient, TlsIdentity, TlsServer};

/// Largest PEM or token file read: real ones are a few KiB, and a wrong path (a corpus, a
/// device) must not be read whole into memory.
const MAX_SECRET_FILE_BYTES: u64 = 1 << 20;

/// How a master or server authenticates callers and encrypts its connections.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerSecurity {
    /// File holding the shared-secret token that every call must present (a server also
    /// presents it to the master). Required to bind beyond loopback, unless --tls-client-ca or
    /// --insecure.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) this process presents: turns on TLS, so every
    /// connection must be TLS. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that clients' certificates must chain to: every client must then
    /// present one (mutual TLS). Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve without authentication on an address beyond loopback (a trusted network only).
    #[arg(long)]
    pub insecure: bool,
}

impl ServerSecurity {
    /// The token and TLS of [`ServeOptions`] (its other fields at their defaults), with every
    /// file read and checked.
    pub fn serve_options(&self) -> anyhow::Result<ServeOptions> {
        Ok(ServeOptions {
            token: read_token(self.token_file.as_deref())?,
            tls: self.tls()?,
            ..ServeOptions::default()
        })
    }

    /// The TLS configuration, if --tls-cert is given.
    pub fn tls(&self) -> anyhow::Result<Option<TlsServer>> {
        let identity = identity(
            ("--tls-cert", self.tls_cert.as_deref()),
            ("--tls-key", self.tls_key.as_deref()),
        )?;
        let Some(identity) = identity else {
            if self.tls_client_ca.is_some() {
                bail!("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first");
            }
            return Ok(None);
        };
        let tls = TlsServer::new(identity);
        let Some(path) = &self.tls_client_ca else {
            return Ok(Some(tls));
        };
        let pem = read_secret_file(path, "--tls-client-ca")?;
        let tls = tls
            .require_client_certs(pem)
            .with_context(|| format!("--tls-client-ca {}", path.display()))?;
        Ok(Some(tls))
    }

    /// Refuses to serve on `bound` without authentication (a token, or client certificates)
    /// when it is reachable beyond this machine, unless `--insecure`. Warns when a token would
    /// travel there in clear text.
    pub fn check_exposure(&self, bound: SocketAddr, options: &ServeOptions) -> anyhow::Result<()> {
        if bound.ip().is_loopback() {
            return Ok(());
        }
        let mutual_tls = options
            .tls
            .as_ref()
            .is_some_and(|t| t.requires_client_certs());
        if options.token.is_none() && !mutual_tls {
            if self.insecure {
                tracing::warn!(%bound, "serving without authentication beyond loopback (--insecure)");
                return Ok(());
            }
            bail!(
                "refusing to serve on {bound} without authentication: the address is reachable \
                 from other machines, and anyone who can reach it could read and change every \
                 model. Give --token-file FILE (with --tls-cert/--tls-key so that the token is \
                 not sent in clear text), or --tls-client-ca for mutual TLS, or pass --insecure \
                 if this network is trusted. Binding 127.0.0.1 needs none of these."
            );
        }
        if options.tls.is_none() {
            tracing::warn!(
                %bound,
                "the token and all data travel in clear text; add --tls-cert/--tls-key on \
                 untrusted networks"
            );
        }
        Ok(())
    }
}

/// How a client (a server registering, a driver, a worker) verifies and authenticates itself
/// to the cluster's TLS servers. Without --tls-ca it dials in plain text.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientSecurity {
    /// PEM CA certificate(s) that the master's and servers' certificates must chain to: turns
    /// on TLS for every connection to the cluster (no system roots are trusted).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate chain presented to servers that require one (--tls-client-ca on
    /// their side). Needs --tls-client-key and --tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["tls_client_key", "tls_ca"])]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key of --tls-client-cert.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
    /// Name to verify in every server's certificate instead of the host of its address (for
    /// servers reached by IP whose certificates carry a DNS name). Needs --tls-ca.
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_domain: Option<String>,
}

impl ClientSecurity {
    /// The TLS configuration, if --tls-ca is given.
    pub fn tls(&self) -> anyhow::Result<Option<TlsClient>> {
        let identity = identity(
            ("--tls-client-cert", self.tls_client_cert.as_deref()),
            ("--tls-client-key", self.tls_client_key.as_deref()),
        )?;
        let Some(path) = &self.tls_ca else {
            if identity.is_some() || self.tls_domain.is_some() {
                bail!("--tls-client-cert and --tls-domain need --tls-ca: they only apply to TLS");
            }
            return Ok(None);
        };
        let pem = read_secret_file(path, "--tls-ca")?;
        let mut tls =
            TlsClient::new(pem).with_context(|| format!("--tls-ca {}", path.display()))?;
        if let Some(identity) = identity {
            tls = tls.with_identity(identity);
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.with_domain(domain.clone()).context("--tls-domain")?;
        }
        Ok(Some(tls))
    }

    /// `base` with this TLS: what `ps_core::grpc::connect`, `GrpcCoordinator::new` and
    /// `GrpcTransport::new` take.
    pub fn client_config(&self, base: ClientConfig) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig {
            tls: self.tls()?,
            ..base
        })
    }
}

/// A certificate chain and key given as a pair of flags: both or neither.
fn identity(
    (cert_flag, cert): (&str, Option<&Path>),
    (key_flag, key): (&str, Option<&Path>),
) -> anyhow::Result<Option<TlsIdentity>> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{cert_flag} needs {key_flag} (the certificate's private key)"),
        (None, Some(_)) => bail!("{key_flag} needs {cert_flag} (the certificate it belongs to)"),
        (Some(cert), Some(key)) => {
            let cert_pem = read_secret_file(cert, cert_flag)?;
            let key_pem = read_secret_file(key, key_flag)?;
            let identity = TlsIdentity::from_pem(cert_pem, key_pem).with_context(|| {
                format!(
                    "{cert_flag} {} / {key_flag} {}",
                    cert.display(),
                    key.display()
                )
            })?;
            Ok(Some(identity))
        }
    }
}

/// The contents of `path`, given by `flag`, of at most [`MAX_SECRET_FILE_BYTES`].
fn read_secret_file(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening {flag} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {flag} {}", path.display()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        bail!(
            "{flag} {} is larger than {} KiB: not a PEM or token file",
            path.display(),
            MAX_SECRET_FILE_BYTES >> 10
        );
    }
    Ok(bytes)
}

/// The shared-secret token in `path`, without surrounding whitespace.
pub fn read_token(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let bytes = read_secret_file(path, "--token-file")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the token file {} is not UTF-8 text", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(Some(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_loopback_may_serve_unauthenticated() {
        let open = ServerSecurity::default();
        let none = ServeOptions::default();
        for ok in ["127.0.0.1:7070", "127.8.9.10:0", "[::1]:7070"] {
            open.check_exposure(addr(ok), &none).unwrap();
        }
        for exposed in ["0.0.0.0:7070", "[::]:0", "10.1.2.3:7070", "192.168.0.5:1"] {
            let err = open.check_exposure(addr(exposed), &none).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("--token-file") && text.contains("--insecure"),
                "{text}"
            );
        }
        let insecure = ServerSecurity {
            insecure: true,
            ..ServerSecurity::default()
        };
        insecure
            .check_exposure(addr("0.0.0.0:7070"), &none)
            .unwrap();
        let token = ServeOptions {
            token: Some("t".into()),
            ..ServeOptions::default()
        };
        open.check_exposure(addr("0.0.0.0:7070"), &token).unwrap();
    }

    #[test]
    fn flags_come_in_pairs_and_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let half = ServerSecurity {
            tls_cert: Some(missing.clone()),
            ..ServerSecurity::default()
        };
        let err = half.tls().unwrap_err().to_string();
        assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
        let half = ServerSecurity {
            tls_key: Some(missing.clone()),
            ..ServerSecurity::default()
        };
        let err = half.tls().unwrap_err().to_string();
        assert!(err.contains("--tls-key needs --tls-cert"), "{err}");
        let ca_only = ServerSecurity {
            tls_client_ca: Some(missing.clone()),
            ..ServerSecurity::default()
        };
        assert!(ca_only.tls().is_err());

        let client = ClientSecurity {
            tls_ca: Some(missing.clone()),
            ..ClientSecurity::default()
        };
        let err = format!("{:#}", client.tls().unwrap_err());
        assert!(
            err.contains("--tls-ca") && err.contains("nope.pem"),
            "{err}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let client = ClientSecurity {
            tls_ca: Some(garbage),
            ..ClientSecurity::default()
        };
        let err = format!("{:#}", client.tls().unwrap_err());
        assert!(
            err.contains("garbage.pem") && err.contains("CERTIFICATE"),
            "{err}"
        );
        let no_ca = ClientSecurity {
            tls_domain: Some("ps.example".into()),
            ..ClientSecurity::default()
        };
        assert!(no_ca.tls().is_err());
        assert!(ClientSecurity::default().tls().unwrap().is_none());
    }

    #[test]
    fn tokens_are_trimmed_and_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(read_token(Some(&path)).unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(Some(&path)).is_err());
        assert_eq!(read_token(None).unwrap(), None);
    }
}
