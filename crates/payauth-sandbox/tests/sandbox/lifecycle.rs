//! Starting, addressing and stopping a sandbox.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use payauth_sandbox::{Endpoint, Sandbox, SandboxCredentials, defaults};

use crate::common::{client, sandbox};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something accepts connections on `addr`, retried briefly so a
/// server that is going away has time to go.
async fn gone(addr: SocketAddr) -> bool {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

#[tokio::test]
async fn the_base_url_is_loopback_with_the_bound_port() {
    let sandbox = sandbox().await;
    let port = sandbox.addr().port();
    assert_ne!(port, 0);
    assert_eq!(sandbox.base_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        sandbox.url(Endpoint::MyposToken),
        format!("http://127.0.0.1:{port}/oauth/token")
    );
}

#[tokio::test]
async fn a_sandbox_can_listen_on_a_given_port() {
    let port = free_port();
    let sandbox = Sandbox::builder().port(port).start().await.unwrap();
    assert_eq!(sandbox.addr().port(), port);
    // A second sandbox cannot take the same port.
    assert!(Sandbox::builder().port(port).start().await.is_err());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sandbox = sandbox().await;
    let addr = sandbox.addr();
    // A kept-alive connection must not hold the shutdown up.
    let client = client();
    let response = client
        .post(sandbox.url(Endpoint::MyposToken))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    tokio::time::timeout(Duration::from_secs(2), sandbox.shutdown())
        .await
        .unwrap();
    assert!(gone(addr).await);
}

#[tokio::test]
async fn dropping_the_sandbox_stops_the_server() {
    let sandbox = sandbox().await;
    let addr = sandbox.addr();
    drop(sandbox);
    assert!(gone(addr).await);
}

#[tokio::test]
async fn serve_runs_until_its_future_is_dropped() {
    let port = free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = tokio::spawn(payauth_sandbox::serve(addr));
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(response) = client()
            .post(format!("http://{addr}/oauth/token"))
            .send()
            .await
        {
            assert_eq!(response.status(), 401);
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(answered);
    server.abort();
    assert!(server.await.unwrap_err().is_cancelled());
    assert!(gone(addr).await);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let printed = format!("{:?}", SandboxCredentials::default());
    for secret in [
        defaults::IYZICO_CLIENT_SECRET,
        defaults::IYZICO_PASSWORD,
        defaults::IYZICO_SECRET_KEY,
        defaults::VAKIFBANK_CLIENT_SECRET,
        defaults::MYPOS_CLIENT_SECRET,
    ] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(printed.contains(defaults::MYPOS_CLIENT_ID));
}

#[tokio::test]
async fn tls_settings_it_cannot_use_fail_the_start_naming_which_and_never_show_the_key() {
    let builder = || Sandbox::builder().tls("no certificate", "KEY-CANARY");
    let shown = format!("{:?}", builder().client_ca("ca"));
    assert!(!shown.contains("KEY-CANARY"), "{shown}");
    let cases = [
        (builder(), "server certificate chain"),
        (
            Sandbox::builder().client_ca("-----BEGIN CERTIFICATE-----"),
            "needs a server certificate and key",
        ),
    ];
    for (builder, named) in cases {
        let error = builder.start().await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
        let shown = error.to_string();
        assert!(shown.contains(named), "{shown}");
        assert!(!shown.contains("KEY-CANARY"), "{shown}");
    }
}
