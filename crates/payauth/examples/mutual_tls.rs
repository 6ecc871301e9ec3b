//! Mutual TLS: a client certificate and key (PEM, the key a `Secret`)
//! shown to a gateway that requires one, as bank API gateways do for
//! production access. Runs on loopback: a CA made here (rcgen) signs the
//! gateway's and the client's certificates, and a TLS terminator requiring
//! a client certificate stands in front of the sandbox. `cargo run -p
//! payauth --example mutual_tls --features mypos,rustls-ring`.
//!
//! In production, the identity comes from files or the environment:
//! `ClientIdentity::from_pem(std::fs::read("client-chain.pem")?,
//! Secret::from_file("client-key.pem")?)`.

use std::net::SocketAddr;
use std::sync::Arc;

use payauth::core::http::{ClientIdentity, HttpClient};
use payauth::core::{Environment, Secret};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One CA for the gateway's certificate and the client's.
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let gateway_key = KeyPair::generate()?;
    let gateway =
        CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&gateway_key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(vec!["merchant-client".to_owned()])?
        .signed_by(&client_key, &issuer)?;

    let sandbox = Sandbox::builder().start().await?;
    let upstream: SocketAddr = sandbox.base_url().trim_start_matches("http://").parse()?;
    let port = gateway_requiring_client_certificates(
        ca.der().clone(),
        gateway.der().clone(),
        PrivatePkcs8KeyDer::from(gateway_key.serialize_der()),
        upstream,
    )
    .await?;
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(format!("https://localhost:{port}")),
    );

    let identity = ClientIdentity::from_pem(client.pem(), Secret::new(client_key.serialize_pem()));
    println!("{identity:?}"); // the key is never shown
    let http = HttpClient::builder()
        .add_root_certificate(ca.der().to_vec())
        .identity(identity)
        .build()?;
    let token = Mypos::new(&settings, &http)?.fetch_token().await?;
    println!(
        "with the client certificate: a {} token",
        token.token_type()
    );

    let anonymous = HttpClient::builder()
        .add_root_certificate(ca.der().to_vec())
        .build()?;
    let refused = Mypos::new(&settings, &anonymous)?.fetch_token().await;
    println!(
        "without it: {}",
        refused
            .err()
            .map_or("accepted?!".to_owned(), |e| e.to_string())
    );
    sandbox.shutdown().await;
    Ok(())
}

/// A loopback TLS terminator in front of `upstream` that requires a client
/// certificate signed by `ca`; returns its port.
async fn gateway_requiring_client_certificates(
    ca: CertificateDer<'static>,
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    upstream: SocketAddr,
) -> Result<u16, Box<dyn std::error::Error>> {
    #[allow(deprecated)] // rustls 0.23.48: ring has no post-quantum groups
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca)?;
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certificate], PrivateKeyDer::Pkcs8(key))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok(port)
}
