//! Token requests over TLS, through payauth's own transport: the sandbox
//! serving HTTPS (and requiring a client certificate) with a test CA
//! (rcgen). And the
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

/// A CA and a certificate it signed (for `localhost` unless said otherwise).
struct TestPki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
    /// The certificate and its key in PEM, as a client identity is read.
    leaf_pem: String,
    leaf_key_pem: String,
}

fn test_pki() -> TestPki {
    pki_for("localhost", false)
}

/// A CA and a certificate it signed for `name`, valid now or `expired`.
fn pki_for(name: &str, expired: bool) -> TestPki {
    pki_from("payauth test CA", name, expired)
}

/// A CA named `ca_name` and a certificate it signed for `name`, valid now
/// or `expired`.
fn pki_from(ca_name: &str, name: &str, expired: bool) -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    if expired {
        leaf_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca: ca.der().clone(),
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    }
}

/// Serves TLS on a loopback port with `pki`'s leaf and forwards the
/// plaintext to `upstream` (an `https://` proxy); returns the port.
async fn tls_terminator(pki: &TestPki, upstream: SocketAddr) -> u16 {
    #[allow(deprecated)] // rustls 0.23.48: ring has no post-quantum groups
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

/// The sandbox serving HTTPS with a certificate `pki`'s CA signed, and a
/// myPOS source for it over `http`.
struct OverTls {
    sandbox: RunningSandbox,
    https_port: u16,
    pki: TestPki,
}

impl OverTls {
    async fn start() -> Self {
        Self::start_with(test_pki()).await
    }

    /// The sandbox showing `pki`'s certificate.
    async fn start_with(pki: TestPki) -> Self {
        let sandbox = Sandbox::builder()
            .tls(pki.leaf_pem.clone(), pki.leaf_key_pem.clone())
            .start()
            .await
            .unwrap();
        let https_port = sandbox.addr().port();
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
async fn a_certificate_that_fails_verification_is_a_certificate_error_saying_which_check_failed() {
    // (certificate, trust the test CA?, the words of the failed check)
    let cases = [
        (test_pki(), false, "unknown CA"),
        (pki_for("localhost", true), true, "expired"),
        (pki_for("other.example", false), true, "name mismatch"),
    ];
    for (pki, trusted, check) in cases {
        let tls = OverTls::start_with(pki).await;
        let http = if trusted {
            tls.trusting_client()
        } else {
            payauth::core::http::default_client().unwrap()
        };
        let error = tls.mypos(&http).fetch_token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Certificate, "{check}: {error}");
        assert!(!error.is_transient(), "{check}: {error}");
        assert!(
            !error.is_permanent(),
            "keeps a valid token: {check}: {error}"
        );
        let shown = error.to_string();
        assert!(shown.contains(check), "{check}: {shown}");
        assert!(
            !shown.contains(&format!(":{}", tls.https_port)),
            "no URL: {shown}"
        );
        tls.sandbox.shutdown().await;
    }
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
    let plain = Sandbox::builder().start().await.unwrap();
    let answer = own
        .get(plain.base_url())
        .send()
        .await
        .expect("plain http to the sandbox");
    assert!(answer.status().as_u16() > 0);
    plain.shutdown().await;
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
                if let Some(auth) = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:"))
                {
                    log.lock().unwrap().push(auth.to_ascii_lowercase());
                }
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

/// A TCP relay to `upstream` that records every byte the client sends:
/// what an observer on the wire sees. Returns its port and the record.
async fn wire_recorder(upstream: u16) -> (u16, Arc<std::sync::Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let wire = Arc::<std::sync::Mutex<Vec<u8>>>::default();
    let record = Arc::clone(&wire);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                let upward = async move {
                    let mut buffer = [0u8; 8192];
                    while let Ok(n @ 1..) = client_in.read(&mut buffer).await {
                        record.lock().unwrap().extend_from_slice(&buffer[..n]);
                        if server_out.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let downward = tokio::io::copy(&mut server_in, &mut client_out);
                let _ = tokio::join!(upward, downward);
            });
        }
    });
    (port, wire)
}

#[tokio::test]
async fn an_https_proxy_is_spoken_to_over_tls_and_its_password_never_crosses_the_wire_in_clear() {
    let tls = OverTls::start().await;
    let (proxy_port, seen) = connect_proxy().await;
    // The proxy behind TLS (the same `localhost` certificate), and a
    // recorder of the bytes on the wire in front of it.
    let upstream: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    let proxy_tls_port = tls_terminator(&tls.pki, upstream).await;
    let (wire_port, wire) = wire_recorder(proxy_tls_port).await;
    let http = payauth::core::http::client_builder()
        .add_root_certificate(tls.pki.ca.to_vec())
        .proxy(format!("https://agent:pw-CANARY@localhost:{wire_port}"))
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
    let basic = "YWdlbnQ6cHctQ0FOQVJZ"; // base64("agent:pw-CANARY")
    assert_eq!(
        seen.lock().unwrap().clone(),
        [
            format!("CONNECT localhost:{} HTTP/1.1", tls.https_port),
            format!("proxy-authorization: basic {}", basic.to_ascii_lowercase()),
        ],
        "the proxy got the CONNECT and the credentials, inside TLS"
    );
    let wire = String::from_utf8_lossy(&wire.lock().unwrap()).into_owned();
    assert!(!wire.is_empty(), "the recorder saw the connection");
    for clear in ["pw-CANARY", basic, "CONNECT", "Proxy-Authorization"] {
        assert!(!wire.contains(clear), "{clear} crossed the wire in clear");
    }
    tls.sandbox.shutdown().await;
}

/// A SOCKS5 proxy on loopback (RFC 1928, user/password RFC 1929):
/// records `user host` of each request and tunnels it to 127.0.0.1 at the
/// requested port.
async fn socks5_proxy() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::<std::sync::Mutex<Vec<String>>>::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                client.read_exact(&mut methods).await?;
                let mut user = String::new();
                if methods.contains(&2) {
                    client.write_all(&[5, 2]).await?;
                    client.read_exact(&mut byte).await?;
                    client.read_exact(&mut byte).await?;
                    let mut name = vec![0u8; usize::from(byte[0])];
                    client.read_exact(&mut name).await?;
                    client.read_exact(&mut byte).await?;
                    let mut password = vec![0u8; usize::from(byte[0])];
                    client.read_exact(&mut password).await?;
                    user = format!(
                        "{}:{}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(&password)
                    );
                    client.write_all(&[1, 0]).await?;
                } else {
                    client.write_all(&[5, 0]).await?;
                }
                let mut request = [0u8; 4];
                client.read_exact(&mut request).await?;
                let host = match request[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await?;
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    4 => {
                        let mut ip = [0u8; 16];
                        client.read_exact(&mut ip).await?;
                        std::net::Ipv6Addr::from(ip).to_string()
                    }
                    _ => {
                        client.read_exact(&mut byte).await?;
                        let mut name = vec![0u8; usize::from(byte[0])];
                        client.read_exact(&mut name).await?;
                        String::from_utf8_lossy(&name).into_owned()
                    }
                };
                let mut port = [0u8; 2];
                client.read_exact(&mut port).await?;
                log.lock().unwrap().push(format!("{user} {host}"));
                let target = ("127.0.0.1", u16::from_be_bytes(port));
                let mut upstream = tokio::net::TcpStream::connect(target).await?;
                client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn socks5h_lets_the_proxy_resolve_the_host_and_socks5_resolves_it_here() {
    let tls = OverTls::start().await;
    for scheme in ["socks5h", "socks5"] {
        let (proxy_port, seen) = socks5_proxy().await;
        let http = payauth::core::http::client_builder()
            .add_root_certificate(tls.pki.ca.to_vec())
            .proxy(format!("{scheme}://agent:pw@127.0.0.1:{proxy_port}"))
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
        assert_eq!(seen.len(), 1, "{scheme}: one tunnel: {seen:?}");
        let (user, host) = seen[0].split_once(' ').unwrap();
        assert_eq!(user, "agent:pw", "{scheme}");
        match scheme {
            "socks5h" => assert_eq!(host, "localhost"),
            _ => assert!(
                host.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()),
                "socks5 sends an address: {host}"
            ),
        }
    }
    tls.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_gateway_that_requires_a_client_certificate_gets_the_identity_given_to_the_builder() {
    use payauth::core::http::ClientIdentity;

    let server = test_pki();
    let client = pki_for("payauth client", false);
    let sandbox = Sandbox::builder()
        .tls(server.leaf_pem.clone(), server.leaf_key_pem.clone())
        .client_ca(client.ca_pem.clone())
        .start()
        .await
        .unwrap();
    let https_port = sandbox.addr().port();
    let fetch = |http: HttpClient| async move {
        let settings = MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            Environment::Custom(format!("https://localhost:{https_port}")),
        );
        Mypos::new(&settings, &http).unwrap().fetch_token().await
    };
    let builder = || payauth::core::http::client_builder().add_root_certificate(server.ca.to_vec());
    // Without an identity the gateway refuses the connection: a
    // configuration problem, not an outage.
    let refused = fetch(builder().build().unwrap()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Certificate, "{refused}");
    assert!(
        refused.to_string().contains("client certificate"),
        "{refused}"
    );
    let identity = ClientIdentity::from_pem(
        client.leaf_pem.clone(),
        Secret::new(client.leaf_key_pem.clone()),
    );
    let shown = format!("{identity:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    let token = fetch(builder().identity(identity).build().unwrap())
        .await
        .unwrap();
    assert!(
        token
            .authorization()
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    // An identity that is not one fails the build, quoting nothing of it.
    for (chain, key) in [
        (client.leaf_pem.as_str(), "KEY-CANARY"),
        ("CHAIN-CANARY", client.leaf_key_pem.as_str()),
    ] {
        let error = builder()
            .identity(ClientIdentity::from_pem(chain, Secret::new(key)))
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        let shown = error.to_string();
        assert!(shown.contains("client identity"), "{shown}");
        assert!(
            !shown.contains("CANARY") && !shown.contains("PRIVATE"),
            "{shown}"
        );
    }
    sandbox.shutdown().await;
}

mod flows;

#[tokio::test]
async fn every_flow_gets_its_token_over_mutual_tls_and_a_client_without_the_right_certificate_is_refused()
 {
    use payauth::config::Config;
    use payauth::core::http::ClientIdentity;

    let server = test_pki();
    let client = pki_for("payauth client", false);
    // Another CA under the same name (its signature fails) and under its
    // own (an unknown issuer).
    let impostor = pki_for("payauth client", false);
    let stranger = pki_from("another CA", "payauth client", false);
    let sandbox = Sandbox::builder()
        .tls(server.leaf_pem.clone(), server.leaf_key_pem.clone())
        .client_ca(client.ca_pem.clone())
        .start()
        .await
        .unwrap();
    let base = format!("https://localhost:{}", sandbox.addr().port());
    let with = |identity: Option<&TestPki>| {
        let mut builder =
            payauth::core::http::client_builder().add_root_certificate(server.ca.to_vec());
        if let Some(pki) = identity {
            builder = builder.identity(ClientIdentity::from_pem(
                pki.leaf_pem.clone(),
                Secret::new(pki.leaf_key_pem.clone()),
            ));
        }
        builder.build().unwrap()
    };
    // (client, its identity, refused?)
    let clients = [
        ("the CA's client", with(Some(&client)), false),
        ("no identity", with(None), true),
        ("a same-named CA's client", with(Some(&impostor)), true),
        ("another CA's client", with(Some(&stranger)), true),
    ];
    let mut configs = flows::configs(&base);
    configs.push(flows::vakifbank_b2b(&base));
    assert_eq!(configs.len(), 5, "every flow");
    for (flow, config) in configs {
        let config = Config::from_toml(&config).unwrap();
        for (who, http, refused) in &clients {
            let (source, _) = config.source(http).unwrap();
            let fetched = source.fetch(None).await;
            match (fetched, refused) {
                (Ok(token), false) => assert!(
                    token
                        .authorization()
                        .to_str()
                        .unwrap()
                        .starts_with("Bearer "),
                    "{flow} / {who}"
                ),
                (Err(error), true) => {
                    assert_eq!(
                        error.kind(),
                        ErrorKind::Certificate,
                        "{flow} / {who}: {error}"
                    );
                    assert!(!error.is_transient(), "{flow} / {who}: {error}");
                    let shown = error.to_string();
                    assert!(
                        shown.contains("client certificate"),
                        "{flow} / {who}: {shown}"
                    );
                    assert!(!shown.contains("PRIVATE"), "{flow} / {who}: {shown}");
                }
                (Ok(_), true) => panic!("{flow} / {who}: a token without the CA's certificate"),
                (Err(error), false) => panic!("{flow} / {who}: {error}"),
            }
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_https_proxy_whose_certificate_fails_verification_is_a_certificate_error_not_a_proxy_one()
 {
    let tls = OverTls::start().await;
    let (proxy_port, seen) = connect_proxy().await;
    // The proxy shows a certificate from a CA the client does not trust.
    let stranger = pki_from("another CA", "localhost", false);
    let upstream: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    let proxy_tls_port = tls_terminator(&stranger, upstream).await;
    let http = payauth::core::http::client_builder()
        .add_root_certificate(tls.pki.ca.to_vec())
        .proxy(format!(
            "https://agent:pw-CANARY@localhost:{proxy_tls_port}"
        ))
        .build()
        .unwrap();
    let error = tls.mypos(&http).fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Certificate, "{error}");
    assert!(error.to_string().contains("unknown CA"), "{error}");
    assert!(
        !format!("{error} {error:?}").contains("pw-CANARY"),
        "{error}"
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the proxy");
    tls.sandbox.shutdown().await;
}
