//! TLS for the gRPC transport (rustls with ring, through tonic).
//!
//! - A server given a [`TlsServer`] in [`ServeOptions::tls`](super::ServeOptions::tls) accepts only
//!   TLS connections; with [`TlsServer::require_client_certs`] it also requires every client to
//!   present a certificate signed by the given CA (mutual TLS).
//! - A client given a [`TlsClient`] in [`ClientConfig::tls`](crate::ClientConfig::tls) dials
//!   every server (the master and each shard it learns from the master) over `https`, trusts
//!   only the given CA (no system roots), and presents its own certificate if it has one.
//!
//! PEM inputs are parsed when these values are built, so a bad file fails at startup with a
//! clear message, not at the first connection. A handshake that fails (an unknown issuer, a name
//! mismatch, a refused client certificate, a plain-text peer) fails the call with
//! [`PsError::Unauthenticated`](crate::PsError::Unauthenticated), which is not retried.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ps_core::ClientConfig;
//! use ps_core::grpc::{ServeOptions, TlsClient, TlsIdentity, TlsServer};
//! let read = std::fs::read;
//! // A server with its certificate, requiring client certificates from the cluster CA.
//! let identity = TlsIdentity::from_pem(read("node.pem")?, read("node.key")?)?;
//! let serve = ServeOptions {
//!     tls: Some(TlsServer::new(identity.clone()).require_client_certs(read("ca.pem")?)?),
//!     ..ServeOptions::default()
//! };
//! // A client of it: trusts the CA, presents a certificate, checks the name `ps.cluster`.
//! let tls = TlsClient::new(read("ca.pem")?)?
//!     .with_identity(identity)
//!     .with_domain("ps.cluster")?;
//! let config = ClientConfig { tls: Some(tls), ..ClientConfig::default() };
//! // ps_core::grpc::connect("10.0.0.5:7070", token, config, servers).await?
//! # let _ = (serve, config); Ok(()) }
//! ```

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::error::{PsError, Result};

/// A certificate chain (leaf first) and its private key, both PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsIdentity")
            .field("cert_chain_pem_bytes", &self.cert_chain_pem.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Checks that `cert_chain_pem` holds at least one `CERTIFICATE` block and `key_pem` a
    /// private key (PKCS#8, PKCS#1 or SEC1); the error says which is wrong.
    pub fn from_pem(
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Result<Self> {
        let cert_chain_pem = cert_chain_pem.into();
        let key_pem = key_pem.into();
        certificates(&cert_chain_pem, "certificate chain")?;
        PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| invalid(format!("private key: no usable PEM private key ({e})")))?;
        Ok(TlsIdentity {
            cert_chain_pem,
            key_pem,
        })
    }

    fn to_tonic(&self) -> Identity {
        Identity::from_pem(&self.cert_chain_pem, &self.key_pem)
    }
}

/// A server's TLS: its identity and, optionally, the CA that client certificates must chain to.
#[derive(Clone)]
pub struct TlsServer {
    identity: TlsIdentity,
    client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("identity", &self.identity)
            .field("requires_client_certs", &self.client_ca_pem.is_some())
            .finish()
    }
}

impl TlsServer {
    /// TLS with `identity`; clients are not asked for certificates.
    pub fn new(identity: TlsIdentity) -> Self {
        TlsServer {
            identity,
            client_ca_pem: None,
        }
    }

    /// Requires every client to present a certificate signed by a CA in `client_ca_pem`
    /// (mutual TLS); a client without one is refused during the handshake.
    pub fn require_client_certs(mut self, client_ca_pem: impl Into<Vec<u8>>) -> Result<Self> {
        let pem = client_ca_pem.into();
        certificates(&pem, "client CA")?;
        self.client_ca_pem = Some(pem);
        Ok(self)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certs(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    pub(crate) fn to_tonic(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity.to_tonic());
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// A client's TLS: the CA that server certificates must chain to, optionally a client identity
/// for servers that require one, and optionally the name to verify in every server's
/// certificate instead of the host of its address.
#[derive(Clone)]
pub struct TlsClient {
    ca_pem: Vec<u8>,
    identity: Option<TlsIdentity>,
    domain: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sizes, not PEM text: a `ClientConfig` is logged with its client.
        f.debug_struct("TlsClient")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("identity", &self.identity)
            .field("domain", &self.domain)
            .finish()
    }
}

impl TlsClient {
    /// TLS that trusts the CA certificates in `ca_pem` (and nothing else).
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Result<Self> {
        let ca_pem = ca_pem.into();
        certificates(&ca_pem, "CA")?;
        Ok(TlsClient {
            ca_pem,
            identity: None,
            domain: None,
        })
    }

    /// Presents `identity` to servers (needed by servers that require client certificates).
    pub fn with_identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Verifies `domain` in every server's certificate instead of the host of its address:
    /// servers are often registered by IP while their certificates name a DNS name. The name
    /// applies to the master and every shard alike, so their certificates must all carry it.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Result<Self> {
        let domain = domain.into();
        ServerName::try_from(domain.as_str())
            .map_err(|e| invalid(format!("domain name '{domain}': {e}")))?;
        self.domain = Some(domain);
        Ok(self)
    }

    pub(crate) fn to_tonic(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some(identity) = &self.identity {
            config = config.identity(identity.to_tonic());
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

/// The certificates in `pem`, which must hold at least one.
fn certificates(pem: &[u8], what: &str) -> Result<usize> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| invalid(format!("{what}: malformed PEM ({e})")))?;
        n += 1;
    }
    if n == 0 {
        return Err(invalid(format!("{what}: no PEM CERTIFICATE block found")));
    }
    Ok(n)
}

fn invalid(message: String) -> PsError {
    PsError::InvalidRequest(format!("TLS {message}"))
}
