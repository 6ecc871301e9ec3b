//! The loopback listener the bank redirects the browser to: a small
//! hyper server that serves every connection at once (a browser opens
//! idle spare connections; one must never hold the redirect up) and
//! waits for the one request that is the awaited callback, `GET
//! /callback` carrying this login's `state`. Anything else, a stray
//! `GET /callback?state=x`, a favicon, a port scan, is answered and
//! ignored.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use payauth_core::{Error, ErrorKind, Secret};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::failure::Failure;

/// The redirect URI's path.
pub(crate) const PATH: &str = "/callback";
/// How long the answers in flight get to reach the browser once the
/// callback has arrived.
const GRACE: Duration = Duration::from_secs(1);

/// A bound listener, not yet serving.
pub(crate) struct CallbackServer {
    listener: TcpListener,
    port: u16,
}

impl CallbackServer {
    /// Binds `127.0.0.1:port` (0: any free port).
    pub(crate) async fn bind(port: u16) -> Result<Self, Failure> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| listen_error(port, &e))?;
        let port = listener
            .local_addr()
            .map_err(|e| listen_error(port, &e))?
            .port();
        Ok(Self { listener, port })
    }

    /// `http://127.0.0.1:<port>/callback`, to register with the bank.
    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// Serves until the awaited callback arrives and returns its query
    /// string; its answer and those in flight are sent before the
    /// listener closes.
    pub(crate) async fn wait(self, state: &Secret) -> String {
        let state = Arc::new(state.clone());
        let (found, mut arrived) = mpsc::channel(1);
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        let query = loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection(stream, Arc::clone(&state), found.clone(), stopped.clone()));
                    }
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                Some(query) = arrived.recv() => break query,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        };
        drop(self.listener);
        let _ = stop.send(true);
        let drain = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(GRACE, drain).await;
        query
    }
}

fn listen_error(port: u16, error: &std::io::Error) -> Failure {
    Error::new(ErrorKind::Config)
        .with_description(format!("cannot listen on 127.0.0.1:{port}: {error}"))
        .into()
}

/// Serves one connection (HTTP/1.1, keep-alive) until the client closes
/// it or the login is done.
async fn connection(
    stream: TcpStream,
    state: Arc<Secret>,
    found: mpsc::Sender<String>,
    mut stopped: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let response = answer(&request, &state, &found);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = until_stopped(&mut stopped) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Resolves once the login is done.
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it at once.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// The answer to one request; the awaited callback's query goes to
/// `found`.
fn answer(
    request: &Request<Incoming>,
    state: &Secret,
    found: &mpsc::Sender<String>,
) -> Response<Body> {
    if request.uri().path() != PATH {
        return page(StatusCode::NOT_FOUND, "payauth: not the login callback.");
    }
    if request.method() != Method::GET {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "payauth: the login callback is a GET.",
        );
    }
    let query = request.uri().query().unwrap_or_default();
    if !carries_state(query, state) {
        tracing::debug!("a callback request without this login's state: answered and ignored");
        return page(
            StatusCode::BAD_REQUEST,
            "payauth: this is not the login payauth is waiting for (its state does not match). Still waiting.",
        );
    }
    // The first awaited callback wins; the terminal reads the rest of the
    // story.
    let _ = found.try_send(query.to_owned());
    page(
        StatusCode::OK,
        "payauth: the login reached the terminal. You can close this window.",
    )
}

/// Whether `query` has exactly one `state` and it is this login's
/// (compared in constant time).
fn carries_state(query: &str, state: &Secret) -> bool {
    let mut states = form_urlencoded::parse(query.as_bytes()).filter(|(key, _)| key == "state");
    match (states.next(), states.next()) {
        (Some((_, value)), None) => Secret::new(value.into_owned()) == *state,
        _ => false,
    }
}

fn page(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_matching_state_is_the_awaited_callback() {
        let state = Secret::new("s-1 2");
        assert!(carries_state("code=c&state=s-1+2", &state));
        assert!(carries_state("state=s-1%202&code=c", &state));
        assert!(!carries_state("code=c", &state));
        assert!(!carries_state("code=c&state=x", &state));
        assert!(!carries_state("state=s-1+2&state=x", &state), "two states");
        assert!(!carries_state("state=x&state=s-1+2", &state), "two states");
        assert!(!carries_state("", &state));
        assert!(!carries_state("xstate=s-1+2", &state));
    }
}
