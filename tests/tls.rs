//! Token requests over TLS, through payauth's own transport: a loopback
//! TLS terminator with a test CA (rcgen) in front of the sandbox. And the
//! application's own reqwest, untouched by depending on payauth: it builds
//! a client with no crypto provider installed and no panic.
//!
//! A binary of its own, not a module of `it/`: it asserts that nothing in
//! the process installed a global rustls `CryptoProvider`, which any other
//! test (or a dependency it uses) doing so would falsify.

use std::net::SocketAddr;
use std::sync::Arc;

use payauth::core::http::HttpClient;
use payauth::core::{Environment, ErrorKind, Secret};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{RunningSandbox, Sandbox, defaults};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA and a `localhost` certificate it signed.
struct TestPki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "payauth test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    TestPki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    }
}

/// Serves TLS on a loopback port with `pki`'s leaf and forwards the
/// plaintext to `upstream`; returns the port.
async fn tls_terminator(pki: &TestPki, upstream: SocketAddr) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.leaf.clone()],
            PrivateKeyDer::Pkcs8(pki.leaf_key.clone_key()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
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
    port
}

/// The sandbox behind a TLS terminator whose certificate `pki`'s CA
/// signed, and a myPOS source for it over `http`.
struct OverTls {
    sandbox: RunningSandbox,
    https_port: u16,
    pki: TestPki,
}

impl OverTls {
    async fn start() -> Self {
        let pki = test_pki();
        let sandbox = Sandbox::builder().start().await.unwrap();
        let upstream: SocketAddr = sandbox
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let https_port = tls_terminator(&pki, upstream).await;
        Self {
            sandbox,
            https_port,
            pki,
        }
    }

    /// payauth's client, trusting the test CA.
    fn trusting_client(&self) -> HttpClient {
        payauth::core::http::client_builder()
            .add_root_certificate(self.pki.ca.to_vec())
            .build()
            .unwrap()
    }

    fn mypos(&self, http: &HttpClient) -> Mypos {
        let settings = MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            Environment::Custom(format!("https://localhost:{}", self.https_port)),
        );
        Mypos::new(&settings, http).unwrap()
    }
}

#[tokio::test]
async fn a_sandbox_token_arrives_over_tls_from_a_server_whose_ca_the_client_was_given() {
    let tls = OverTls::start().await;
    let mypos = tls.mypos(&tls.trusting_client());
    for _ in 0..2 {
        let token = mypos.fetch_token().await.unwrap();
        assert!(
            token
                .authorization()
                .to_str()
                .unwrap()
                .starts_with("Bearer ")
        );
    }
    tls.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_certificate_from_a_ca_the_client_does_not_trust_is_a_transient_transport_error() {
    let tls = OverTls::start().await;
    let http = payauth::core::http::default_client().unwrap();
    let error = tls.mypos(&http).fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    assert!(error.is_transient());
    let shown = error.to_string();
    assert!(shown.contains("certificate"), "{shown}");
    assert!(!shown.contains("localhost"), "no URL: {shown}");
    tls.sandbox.shutdown().await;
}

#[tokio::test]
async fn the_applications_own_reqwest_client_builds_after_payauth_fetched_over_tls() {
    let tls = OverTls::start().await;
    tls.mypos(&tls.trusting_client())
        .fetch_token()
        .await
        .unwrap();
    // payauth gave rustls its provider directly and installed none...
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    // ...and turned on no TLS feature of reqwest, so this does not panic
    // ("No rustls crypto provider is configured") as it did when
    // payauth-core enabled reqwest's `rustls-no-provider`.
    let own = reqwest::Client::new();
    let answer = own
        .get(tls.sandbox.base_url())
        .send()
        .await
        .expect("plain http to the sandbox");
    assert!(answer.status().as_u16() > 0);
    tls.sandbox.shutdown().await;
}

/// A `CONNECT` proxy on loopback: tunnels each connection to the host and
/// port it is asked for (`localhost` is 127.0.0.1 here) and records the
/// request lines.
async fn connect_proxy() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::<std::sync::Mutex<Vec<String>>>::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let Ok(n) = client.read(&mut head).await else {
                    return;
                };
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                log.lock().unwrap().push(line.clone());
                let Some(target) = line
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                    .map(|t| t.replace("localhost", "127.0.0.1"))
                else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                if client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn https_token_requests_go_through_the_configured_proxy_in_a_connect_tunnel() {
    let tls = OverTls::start().await;
    let (proxy_port, seen) = connect_proxy().await;
    let http = payauth::core::http::client_builder()
        .add_root_certificate(tls.pki.ca.to_vec())
        .proxy(format!("http://127.0.0.1:{proxy_port}"))
        .build()
        .unwrap();
    let token = tls.mypos(&http).fetch_token().await.unwrap();
    assert!(
        token
            .authorization()
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [format!("CONNECT localhost:{} HTTP/1.1", tls.https_port)],
        "one tunnel, to the provider's host: TLS ran end to end inside it"
    );
    tls.sandbox.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_the_sandbox_never_goes_through_a_proxy() {
    let sandbox = Sandbox::builder().start().await.unwrap();
    let (proxy_port, seen) = connect_proxy().await;
    let http = payauth::core::http::client_builder()
        .proxy(format!("http://127.0.0.1:{proxy_port}"))
        .build()
        .unwrap();
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    );
    Mypos::new(&settings, &http)
        .unwrap()
        .fetch_token()
        .await
        .unwrap();
    assert!(seen.lock().unwrap().is_empty(), "the proxy saw a request");
    sandbox.shutdown().await;
}
