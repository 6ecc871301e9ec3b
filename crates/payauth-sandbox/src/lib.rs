//! Stateful loopback simulators of the auth APIs payauth speaks to, for
//! tests, benchmarks and `payauth demo`.
//!
//! One HTTP/1.1 server serves all four APIs on one port (their paths do
//! not collide), in plain HTTP or, with [`SandboxBuilder::tls`], HTTPS;
//! with [`SandboxBuilder::client_ca`] it also requires a client
//! certificate that CA signed (mutual TLS, as bank gateways do):
//!
//! | provider | routes |
//! | --- | --- |
//! | iyzico Terminal API login | `POST /in-store/oauth2/authorize`, `/in-store/oauth2/token`, `/in-store/oauth2/token/refresh` |
//! | iyzico Pay with iyzico | `POST /v1/pay-with-iyzico/third-party-session/retrieve/access-token` (IYZWSv2-signed), and one later call, `POST …/retrieve/last-payment-info`, which also wants the token in its `access-token` header |
//! | VakıfBank API Gateway | `GET /auth/oauth/v2/authorize`, `GET /auth/oauth/v2/commercial/authorize`, `POST /auth/oauth/v2/token` |
//! | myPOS | `POST /oauth/token`, `POST /oauth/revoke` |
//!
//! The simulators keep state as the providers do: auth codes are single
//! use and expire, refresh tokens rotate, revoked myPOS tokens are
//! remembered. They accept the credentials in [`SandboxCredentials`]
//! (public defaults in [`defaults`]), answer in the providers' own shapes,
//! and can be told to misbehave ([`Faults`]) or to take the other branch
//! where providers are known to differ ([`Behaviour`]).
//!
//! By default each rule the vendors' docs state is enforced, with the
//! vendor's error shape: every required field, the only scopes the docs
//! name (`iyzipayApiGateway`; `webhooks` for myPOS; VakıfBank's known
//! list), an iyzico `request_timestamp` that is the time of the request (in
//! seconds or milliseconds, within five minutes), a VakıfBank `resource`
//! that is an API plan (`sandbox` or `production`) wherever it is sent,
//! and a live `access-token` on Pay-with-iyzico's later call. Where the
//! docs are silent the default is the lax reading, and [`Behaviour`] has
//! the strict one (a `resource` required or read per RFC 8707, a code
//! exchange without client credentials, a timestamp unit). Nothing is logged,
//! so no secret is. [`browser::authorize`] plays the customer's browser on
//! the VakıfBank authorize page.
//!
//! ```
//! use payauth_sandbox::{Endpoint, Fault, Sandbox, Schedule, defaults};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder().start().await?;
//! let client = reqwest::Client::new();
//! let token = |client: &reqwest::Client| {
//!     client
//!         .post(sandbox.url(Endpoint::MyposToken))
//!         .basic_auth(defaults::MYPOS_CLIENT_ID, Some(defaults::MYPOS_CLIENT_SECRET))
//!         .header("content-type", "application/x-www-form-urlencoded")
//!         .body("grant_type=client_credentials")
//!         .send()
//! };
//!
//! let response = token(&client).await?;
//! assert_eq!(response.status(), 200);
//! let body: serde_json::Value = response.json().await?;
//! assert_eq!(body["token_type"], "Bearer");
//! assert_eq!(body["expires_in"], 86_400);
//!
//! // The next request gets a 503 with Retry-After.
//! sandbox.faults().set(
//!     Endpoint::MyposToken,
//!     Fault::Status { status: 503, retry_after: Some(1) },
//!     Schedule::Times(1),
//! );
//! let response = token(&client).await?;
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["retry-after"], "1");
//! assert_eq!(sandbox.requests(Endpoint::MyposToken), 2);
//!
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod browser;
mod config;
mod endpoint;
mod fault;
mod iyzico;
mod iyzwsv2;
mod mypos;
mod pwi;
mod server;
mod state;
mod tls;
mod util;
mod vakifbank;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    Behaviour, ClientAuthCheck, PwiFailureStyle, ResourceCheck, SandboxCredentials,
    SandboxPwiSession, TimestampCheck, TokenLifetimes, defaults,
};
pub use endpoint::Endpoint;
pub use fault::{DEFAULT_SEED, Fault, Faults, Schedule};

use state::Shared;

/// The sandbox: start one with [`Sandbox::builder`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Sandbox;

impl Sandbox {
    /// A builder with the default credentials, lifetimes and behaviour,
    /// bound to an ephemeral loopback port.
    #[must_use]
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }
}

/// Configures and starts a sandbox.
#[derive(Debug)]
pub struct SandboxBuilder {
    addr: SocketAddr,
    credentials: SandboxCredentials,
    behaviour: Behaviour,
    seed: u64,
    tls: Option<tls::TlsPem>,
    client_ca: Option<tls::Pem>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            credentials: SandboxCredentials::default(),
            behaviour: Behaviour::default(),
            seed: DEFAULT_SEED,
            tls: None,
            client_ca: None,
        }
    }
}

impl SandboxBuilder {
    /// The credentials to accept (default: [`defaults`]).
    #[must_use]
    pub fn credentials(mut self, credentials: SandboxCredentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The knobs (default: [`Behaviour::default`]).
    #[must_use]
    pub fn behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Token and code lifetimes (a shortcut for the `lifetimes` field of
    /// [`Behaviour`]).
    #[must_use]
    pub fn lifetimes(mut self, lifetimes: TokenLifetimes) -> Self {
        self.behaviour.lifetimes = lifetimes;
        self
    }

    /// Seeds the generator behind [`Schedule::Rate`] faults and issued
    /// tokens (default: [`DEFAULT_SEED`]): the same seed and the same
    /// requests, sent one after the other, give the same faults.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Listens on `127.0.0.1:port` (default: port 0, an ephemeral port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        self
    }

    /// Listens on `addr`. The sandbox is meant for loopback: its
    /// credentials are public.
    #[must_use]
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serves HTTPS (TLS 1.2 and 1.3, rustls) with this certificate chain
    /// (PEM: the server's certificate, then any intermediates) and its
    /// private key (PEM, PKCS#8, PKCS#1 or SEC1), instead of plain HTTP.
    /// [`RunningSandbox::base_url`] is then `https://127.0.0.1:PORT`, so
    /// the certificate must name `127.0.0.1` (an IP address SAN), or
    /// clients use `https://localhost:PORT` with a certificate for
    /// `localhost`.
    ///
    /// Both are read when the sandbox [starts](Self::start).
    #[must_use]
    pub fn tls(
        mut self,
        certificate_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls = Some(tls::TlsPem {
            chain: certificate_chain_pem.into(),
            key: key_pem.into(),
            client_ca: None,
        });
        self
    }

    /// Mutual TLS, as a bank API gateway requires it: with [`tls`](Self::tls),
    /// every client must show a certificate that chains to one of the CA
    /// certificates in `ca_pem` (PEM, one or more), checked by rustls'
    /// `WebPkiClientVerifier`. A client without one, or with one from
    /// another CA, fails the TLS handshake: it never reaches a route and
    /// is not counted in [`RunningSandbox::requests`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let (certificate_pem, key_pem, client_ca_pem) = (String::new(), String::new(), String::new());
    /// # if certificate_pem.is_empty() { return Ok(()) }
    /// let sandbox = payauth_sandbox::Sandbox::builder()
    ///     .tls(certificate_pem, key_pem)
    ///     .client_ca(client_ca_pem)
    ///     .start()
    ///     .await?;
    /// assert!(sandbox.base_url().starts_with("https://"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn client_ca(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some(tls::Pem(ca_pem.into()));
        self
    }

    /// Binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound (port in use, say); or, of kind
    /// [`io::ErrorKind::InvalidInput`], when the [`tls`](Self::tls)
    /// certificate or key or the [`client_ca`](Self::client_ca) cannot be
    /// used (the message names which, never quoting the key), or a client
    /// CA is given without `tls`.
    pub async fn start(self) -> io::Result<RunningSandbox> {
        let acceptor = match (self.tls, self.client_ca) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sandbox TLS: a client CA needs a server certificate and key (tls)",
                ));
            }
            (Some(mut tls), client_ca) => {
                tls.client_ca = client_ca;
                Some(tls.acceptor()?)
            }
        };
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(self.credentials, self.behaviour, self.seed));
        let (shutdown, stop) = watch::channel(false);
        let https = acceptor.is_some();
        let task = tokio::spawn(server::run(listener, acceptor, Arc::clone(&shared), stop));
        Ok(RunningSandbox {
            addr,
            https,
            shared,
            shutdown,
            task: Some(task),
        })
    }
}

/// A sandbox serving requests. Dropping it stops the server at once (the
/// accept loop and every connection task are aborted); [`shutdown`]
/// stops it gracefully.
///
/// [`shutdown`]: RunningSandbox::shutdown
#[derive(Debug)]
pub struct RunningSandbox {
    addr: SocketAddr,
    /// Whether it serves HTTPS ([`SandboxBuilder::tls`]).
    https: bool,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the base URL to give clients (an unspecified
    /// bind address is replaced by loopback); `https://` when it serves
    /// TLS ([`SandboxBuilder::tls`]).
    #[must_use]
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The full URL of one endpoint.
    #[must_use]
    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base_url(), endpoint.path())
    }

    /// The fault-injection handle.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// How many requests reached `endpoint` (any method, faulted or not)
    /// since the start or the last [`reset_counters`](Self::reset_counters).
    #[must_use]
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.shared.requests(endpoint)
    }

    /// The sum of [`requests`](Self::requests) over every endpoint.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        Endpoint::ALL.into_iter().map(|e| self.requests(e)).sum()
    }

    /// Sets every request counter back to zero.
    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// The credentials the sandbox accepts.
    #[must_use]
    pub fn credentials(&self) -> &SandboxCredentials {
        &self.shared.credentials
    }

    /// The knobs in force.
    #[must_use]
    pub fn behaviour(&self) -> Behaviour {
        self.shared.behaviour()
    }

    /// Changes the knobs; requests that arrive afterwards see the change.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.set_behaviour(behaviour);
    }

    /// Changes some knobs: `sandbox.update_behaviour(|b| b.expires_in_as_string = true)`.
    pub fn update_behaviour(&self, change: impl FnOnce(&mut Behaviour)) {
        let mut behaviour = self.shared.behaviour();
        change(&mut behaviour);
        self.shared.set_behaviour(behaviour);
    }

    /// Makes a Pay-with-iyzico session known (a member starting a payment).
    pub fn add_pwi_session(&self, session: SandboxPwiSession) {
        self.shared
            .store()
            .pwi_sessions
            .insert(session.session_token, session.member_identifier);
    }

    /// Whether `token` is a myPOS access token this sandbox issued and
    /// that was then revoked.
    #[must_use]
    pub fn is_revoked(&self, token: &str) -> bool {
        self.shared.store().mypos_revoked.contains(token)
    }

    /// Stops accepting connections, lets requests in flight finish (for a
    /// few seconds at most), and waits until the server is gone.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves a default sandbox on `addr` until the returned future is
/// dropped, for `payauth sandbox --port N`. To learn the port of an
/// ephemeral address, or to change credentials, use [`Sandbox::builder`]
/// and keep the [`RunningSandbox`] instead.
///
/// # Errors
/// When `addr` cannot be bound, or the server task panics.
pub async fn serve(addr: SocketAddr) -> io::Result<()> {
    let mut sandbox = Sandbox::builder().addr(addr).start().await?;
    // Await the task through `sandbox`, so that dropping this future drops
    // `sandbox` and so aborts the server.
    let Some(task) = sandbox.task.as_mut() else {
        return Ok(());
    };
    task.await.map_err(io::Error::other)
}
