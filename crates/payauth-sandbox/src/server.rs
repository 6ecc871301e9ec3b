//! The HTTP server: an accept loop over hyper (over rustls when the
//! sandbox serves HTTPS), the axum router of the four APIs, and the fault
//! injection that sits between them.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::endpoint::Endpoint;
use crate::fault::Fault;
use crate::state::Shared;
use crate::{iyzico, mypos, pwi, vakifbank};

/// How long a graceful shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(5);

/// The axum router of every provider route.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(Endpoint::IyzicoAuthorize.path(), post(iyzico::authorize))
        .route(Endpoint::IyzicoToken.path(), post(iyzico::token))
        .route(Endpoint::IyzicoRefresh.path(), post(iyzico::refresh))
        .route(Endpoint::PwiAccessToken.path(), post(pwi::access_token))
        .route(
            Endpoint::PwiLastPaymentInfo.path(),
            post(pwi::last_payment_info),
        )
        .route(
            Endpoint::VakifbankAuthorize.path(),
            get(vakifbank::authorize_retail),
        )
        .route(
            Endpoint::VakifbankCommercialAuthorize.path(),
            get(vakifbank::authorize_corporate),
        )
        .route(Endpoint::VakifbankToken.path(), post(vakifbank::token))
        .route(Endpoint::MyposToken.path(), post(mypos::token))
        .route(Endpoint::MyposRevoke.path(), post(mypos::revoke))
        .with_state(shared)
}

/// Accepts connections until `shutdown` turns true (or its sender is
/// dropped), then lets the open ones finish their requests in flight, for
/// at most [`GRACE`]. Every connection task lives in a [`JoinSet`] owned by
/// this future, so aborting it ends them all.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = router(Arc::clone(&shared));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(
                        stream,
                        tls.clone(),
                        Arc::clone(&shared),
                        router.clone(),
                        shutdown.clone(),
                    ));
                }
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    // Whatever is still running after the grace period is aborted when
    // `connections` is dropped.
    let _ = tokio::time::timeout(GRACE, drain).await;
}

/// Resolves once the sandbox is told to stop (or its handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it at once.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves one connection (HTTP/1.1, keep-alive), after the TLS handshake
/// when there is `tls`. A failed handshake (no client certificate, one
/// from another CA, plain HTTP sent to HTTPS) ends the connection with
/// rustls' alert, before any request is read or counted.
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    // Token exchanges are small request/response pairs: Nagle would only
    // add latency.
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let stream = ResettableStream {
        inner: stream,
        reset: Arc::clone(&reset),
    };
    let Some(acceptor) = tls else {
        return serve(stream, shared, router, reset, shutdown).await;
    };
    let accepted = tokio::select! {
        accepted = acceptor.accept(stream) => accepted,
        () = stopped(&mut shutdown) => return,
    };
    if let Ok(stream) = accepted {
        serve(stream, shared, router, reset, shutdown).await;
    }
}

/// Serves HTTP/1.1 on `stream` until the client closes it or the sandbox
/// stops.
async fn serve<S>(
    stream: S,
    shared: Arc<Shared>,
    router: Router,
    reset: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |request| {
        handle(
            Arc::clone(&shared),
            router.clone(),
            Arc::clone(&reset),
            request,
        )
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The error that makes hyper drop a connection without answering.
#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset injected by payauth-sandbox")
    }
}

impl std::error::Error for InjectedReset {}

/// Counts the request, applies a fault if one fires, and otherwise hands
/// the request to the router.
async fn handle(
    shared: Arc<Shared>,
    router: Router,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<Body>, InjectedReset> {
    let endpoint = Endpoint::from_path(request.uri().path());
    let fault = endpoint.and_then(|endpoint| {
        shared.count(endpoint);
        shared.faults.pick(endpoint)
    });
    let Some(fault) = fault else {
        return Ok(route(router, request).await);
    };
    Ok(match fault {
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            route(router, request).await
        }
        Fault::Reset => {
            reset.store(true, Ordering::Relaxed);
            return Err(InjectedReset);
        }
        Fault::Status {
            status,
            retry_after,
        } => status_fault(status, retry_after),
        Fault::Garbage => raw(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"\x00\xff\xfe<<garbage>> not json \x80\x81"),
        ),
        Fault::Html => raw(
            StatusCode::BAD_GATEWAY,
            "text/html",
            Bytes::from_static(HTML_502.as_bytes()),
        ),
        Fault::HugeBody { bytes } => raw(StatusCode::OK, "application/json", huge_body(bytes)),
        Fault::TornBody => {
            let (parts, body) = route(router, request).await.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut response = Response::from_parts(parts, Body::new(TornBody::new(&full)));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        Fault::TruncatedJson => {
            let (parts, body) = route(router, request).await.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut response =
                Response::from_parts(parts, Body::from(full.slice(..full.len() / 2)));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
        Fault::WrongTypes => {
            let (parts, body) = route(router, request).await.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let mut response = Response::from_parts(parts, Body::from(wrong_types(full)));
            response.headers_mut().remove(header::CONTENT_LENGTH);
            response
        }
    })
}

async fn route(mut router: Router, request: Request<Incoming>) -> Response<Body> {
    let ready: Result<(), Infallible> = std::future::poll_fn(|cx| {
        tower_service::Service::<Request<Incoming>>::poll_ready(&mut router, cx)
    })
    .await;
    match ready {
        Ok(()) => match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    }
}

fn raw(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn status_fault(status: u16, retry_after: Option<u64>) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            "temporarily_unavailable"
        }
        _ => "server_error",
    };
    let body = serde_json::json!({
        "error": error,
        "error_description": "fault injected by payauth-sandbox",
    });
    let mut response = raw(status, "application/json", Bytes::from(body.to_string()));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// A valid token response padded to `size` bytes.
fn huge_body(size: usize) -> Bytes {
    const HEAD: &[u8] = br#"{"access_token":""#;
    const TAIL: &[u8] = br#"","token_type":"Bearer","expires_in":3600}"#;
    let padding = size.saturating_sub(HEAD.len() + TAIL.len());
    let mut body = Vec::with_capacity(HEAD.len() + padding + TAIL.len());
    body.extend_from_slice(HEAD);
    body.resize(HEAD.len() + padding, b'A');
    body.extend_from_slice(TAIL);
    Bytes::from(body)
}

/// The body with well-known fields replaced by values of the wrong type.
fn wrong_types(body: Bytes) -> Bytes {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(&body) else {
        return body;
    };
    let mut changed = false;
    for (field, wrong) in [
        ("expires_in", serde_json::json!(true)),
        ("accessToken", serde_json::json!(true)),
        ("code", serde_json::json!(true)),
        ("systemTime", serde_json::json!("now")),
        ("expiredAt", serde_json::json!(0)),
    ] {
        if let Some(value) = object.get_mut(field) {
            *value = wrong;
            changed = true;
        }
    }
    if changed {
        Bytes::from(serde_json::Value::Object(object).to_string())
    } else {
        body
    }
}

/// A body that announces `full.len()` bytes, yields the first half, then
/// fails, so hyper closes the connection mid-body.
struct TornBody {
    head: Option<Bytes>,
    /// Whether the flush after the head has had its chance.
    flushed: bool,
    announced: u64,
}

impl TornBody {
    fn new(full: &Bytes) -> Self {
        let announced = u64::try_from(full.len()).unwrap_or(u64::MAX);
        Self {
            head: Some(full.slice(..full.len() / 2)),
            flushed: false,
            announced,
        }
    }
}

impl hyper::body::Body for TornBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if !self.flushed {
            // Pending once, so hyper flushes the status line, the headers
            // and the first half to the socket before the error drops the
            // connection (it would otherwise discard its unflushed buffer).
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "torn body injected by payauth-sandbox",
        ))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.announced)
    }
}

/// A TCP stream that, when told to, closes with `SO_LINGER` 0 so the peer
/// gets a RST instead of a FIN.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            // A zero linger never blocks (tokio deprecates only the
            // blocking, non-zero kind); `set_zero_linger` needs tokio 1.50.
            #[allow(deprecated)]
            let _ = self.inner.set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_body_has_the_asked_size_and_is_json() {
        let body = huge_body(10_000);
        assert_eq!(body.len(), 10_000);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["expires_in"], 3600);
    }

    #[test]
    fn wrong_types_replace_only_known_fields() {
        let body = wrong_types(Bytes::from_static(
            br#"{"access_token":"a","expires_in":3600}"#,
        ));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["expires_in"], true);
        assert_eq!(value["access_token"], "a");
        assert_eq!(
            wrong_types(Bytes::from_static(b"x")),
            Bytes::from_static(b"x")
        );
    }
}
