//! HTTPS for the sandbox, and mutual TLS: a server certificate and key
//! (PEM), and optionally the CA a client certificate must chain to, as a
//! bank gateway that requires one checks it (rustls'
//! `WebPkiClientVerifier`).

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The TLS settings of [`SandboxBuilder::tls`](crate::SandboxBuilder::tls):
/// PEM text, read when the sandbox starts.
#[derive(Clone)]
pub(crate) struct TlsPem {
    pub(crate) chain: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) client_ca: Option<Pem>,
}

impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key; the certificates are public but long.
        f.debug_struct("TlsPem")
            .field("chain", &format_args!("<{} bytes>", self.chain.len()))
            .field("key", &format_args!("<redacted>"))
            .field("client_ca", &self.client_ca)
            .finish()
    }
}

/// Public PEM text (a CA certificate), shown by its length only.
#[derive(Clone)]
pub(crate) struct Pem(pub(crate) Vec<u8>);

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes of PEM>", self.0.len())
    }
}

/// What a setting is, for the error that says it cannot be used.
fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("sandbox TLS: {what}"))
}

fn certificates(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| invalid(&format!("no PEM certificate in the {what}")))
}

impl TlsPem {
    /// The acceptor these settings describe, or an
    /// [`io::ErrorKind::InvalidInput`] error naming the setting that
    /// cannot be used (never quoting the key).
    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        // rustls 0.23.48 deprecates ring's provider for want of
        // post-quantum key exchange; a loopback test server does not
        // need it, and ring builds quickly.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(&self.chain, "server certificate chain")?;
        // The parse error is not kept: it could quote the key.
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|_| invalid("the server key is no PEM private key"))?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in certificates(&pem.0, "client CA file")? {
                    roots
                        .add(ca)
                        .map_err(|e| invalid(&format!("client CA: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .map_err(|e| invalid(&format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid(&format!("server certificate and key: {e}")))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
