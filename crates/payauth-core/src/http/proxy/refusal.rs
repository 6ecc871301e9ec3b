//! What a proxy's failure means: a refusal that will be repeated (our
//! credentials, its policy, a server that is not the proxy it was said to
//! be) is [`ErrorKind::Proxy`], not transient; a proxy that could not reach
//! the provider stays a transient [`ErrorKind::Transport`] error. Either
//! way the error names where the proxy was set (a variable's name, or the
//! builder), never its URL or credentials.
//!
//! hyper-util's `Tunnel` and `SocksV5` speak the protocols; their error
//! types are private (`TunnelError`, `SocksError` cannot be downcast to),
//! so their failures are told apart by their `Display`, the one thing
//! they expose, as worded in hyper-util 0.1 (the workspace's proxy sweep,
//! `tests/it/proxies.rs`, pins every wording read here). And
//! `Tunnel` reports every status but 200 and 407 as "unsuccessful", so
//! the first line of the proxy's answer is recorded on its way to
//! `Tunnel` ([`Recorded`]) and its status read from it: only observed,
//! never parsed beyond `HTTP/1.x NNN`.

use std::fmt;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use tower_service::Service;

use super::BoxError;
use crate::error::ErrorKind;

/// A proxy failure payauth can say something about: its kind, and what
/// happened, naming the proxy's origin (never its URL).
#[derive(Debug)]
pub(in crate::http) struct ProxyFailed {
    pub(in crate::http) kind: ErrorKind,
    pub(in crate::http) description: String,
    source: BoxError,
}

impl fmt::Display for ProxyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("proxy handshake")
    }
}

impl std::error::Error for ProxyFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

fn failed(kind: ErrorKind, description: String, source: BoxError) -> BoxError {
    Box::new(ProxyFailed {
        kind,
        description,
        source,
    })
}

/// `error` from hyper-util's CONNECT tunnel through the proxy `origin`
/// names, which answered with `status` if it answered HTTP: a refusal as
/// [`ProxyFailed`], anything else (no connection, an early close) as it is.
pub(super) fn tunnel(
    origin: &str,
    status: Option<u16>,
    credentials: bool,
    error: BoxError,
) -> BoxError {
    let shown = error.to_string();
    let (kind, description) = if shown.ends_with("proxy authorization required") {
        let sent = if credentials {
            "refused the user name and password in its URL"
        } else {
            "requires a user name and password, and its URL has none"
        };
        (
            ErrorKind::Proxy,
            format!("{origin} {sent} (HTTP 407 Proxy Authentication Required)"),
        )
    } else if shown.ends_with("unsuccessful") {
        match status {
            Some(code @ 500..=599) => (
                ErrorKind::Transport,
                format!("{origin} could not open a tunnel to the provider (HTTP {code})"),
            ),
            Some(code) => (
                ErrorKind::Proxy,
                format!("{origin} refused to open a tunnel to the provider (HTTP {code})"),
            ),
            None => (
                ErrorKind::Proxy,
                format!("{origin} answered CONNECT with no HTTP status line: is it an HTTP proxy?"),
            ),
        }
    } else if shown.ends_with("failed to create underlying connection") {
        // No connection to the proxy (a certificate it showed is still
        // read as one: see `send_error_kind`).
        (ErrorKind::Transport, format!("cannot connect to {origin}"))
    } else if shown.ends_with("proxy response headers too long") {
        (
            ErrorKind::Proxy,
            format!("{origin} answered CONNECT with headers longer than 8 KiB"),
        )
    } else {
        return error;
    };
    failed(kind, description, error)
}

/// `error` from hyper-util's SOCKS5 client through the proxy `origin`
/// names: a refusal as [`ProxyFailed`], anything else as it is.
pub(super) fn socks(origin: &str, error: BoxError) -> BoxError {
    if error.is::<Unreachable>() {
        return failed(
            ErrorKind::Transport,
            format!("cannot connect to {origin}"),
            error,
        );
    }
    let shown = error.to_string();
    let Some(what) = shown.strip_prefix("SOCKS error: ") else {
        return error;
    };
    let (kind, description) = match what {
        "credentials not accepted" => (
            ErrorKind::Proxy,
            format!("{origin} refused the user name and password in its URL (SOCKS5)"),
        ),
        "server does not support user/pass authentication" => (
            ErrorKind::Proxy,
            format!(
                "{origin} accepts none of the authentication methods offered (SOCKS5: a user \
                 name and password when its URL has them, else none)"
            ),
        ),
        "server implements authentication incorrectly" => (
            ErrorKind::Proxy,
            format!(
                "{origin} chose an authentication method payauth did not offer (SOCKS5: does it \
                 want a user name and password in its URL?)"
            ),
        ),
        "connection not allowed" => (
            ErrorKind::Proxy,
            format!("{origin} does not allow a connection to the provider (SOCKS5 ruleset)"),
        ),
        "command not supported" | "address type not supported" => (
            ErrorKind::Proxy,
            format!(
                "{origin} refused the request (SOCKS5: {what}; socks5:// sends an address, \
                 socks5h:// a host name)"
            ),
        ),
        "failed parsing server response" => (
            ErrorKind::Proxy,
            format!("{origin} answered with no SOCKS5 reply: is it a SOCKS5 proxy?"),
        ),
        "general server failure"
        | "network unreachable"
        | "host unreachable"
        | "connection refused"
        | "ttl expired" => (
            ErrorKind::Transport,
            format!("{origin} could not reach the provider (SOCKS5: {what})"),
        ),
        _ => return error,
    };
    failed(kind, description, error)
}

/// No connection to a SOCKS proxy: `error`, marked so that [`socks`]
/// names the proxy.
#[cfg_attr(not(feature = "socks"), allow(dead_code))]
pub(super) fn unreachable(error: BoxError) -> BoxError {
    Box::new(Unreachable(error))
}

/// No connection to a SOCKS proxy (its cause the source).
#[derive(Debug)]
struct Unreachable(BoxError);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no connection to the proxy")
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The status code of an HTTP answer's first line (`HTTP/1.1 403
/// Forbidden`), if `head` starts with one.
pub(super) fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|code| (100..=599).contains(code))
}

/// The longest first line recorded.
const HEAD: usize = 64;

/// The connector to a proxy, each connection recording the first line
/// read from it into `head`.
pub(super) struct Recorded<T> {
    pub(super) inner: T,
    pub(super) head: Arc<Mutex<Vec<u8>>>,
}

impl<T> Service<http::Uri> for Recorded<T>
where
    T: Service<http::Uri>,
    T::Future: Send + 'static,
{
    type Response = Recording<T::Response>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, T::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, proxy: http::Uri) -> Self::Future {
        let connecting = self.inner.call(proxy);
        let head = Arc::clone(&self.head);
        Box::pin(async move {
            Ok(Recording {
                inner: connecting.await?,
                head: Some(head),
            })
        })
    }
}

/// A connection to a proxy that records the first line it reads (up to
/// [`HEAD`] bytes), then passes bytes through untouched.
pub(super) struct Recording<S> {
    inner: S,
    head: Option<Arc<Mutex<Vec<u8>>>>,
}

impl<S> Recording<S> {
    /// The connection, no longer recorded.
    pub(super) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Read + Unpin> Read for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let Some(head) = self.head.clone() else {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        };
        let mut local = [MaybeUninit::<u8>::uninit(); 512];
        let room = buf.remaining().min(local.len());
        let mut read = ReadBuf::uninit(&mut local[..room]);
        ready!(Pin::new(&mut self.inner).poll_read(cx, read.unfilled()))?;
        let bytes = read.filled();
        let mut recorded = head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let take = bytes.len().min(HEAD.saturating_sub(recorded.len()));
        recorded.extend_from_slice(&bytes[..take]);
        if recorded.contains(&b'\n') || recorded.len() >= HEAD || bytes.is_empty() {
            drop(recorded);
            self.head = None;
        }
        buf.put_slice(bytes);
        Poll::Ready(Ok(()))
    }
}

impl<S: Write + Unpin> Write for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::status;

    #[test]
    fn the_status_of_a_connect_answer_is_read_from_its_first_line_only() {
        let cases: [(&[u8], Option<u16>); 7] = [
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", Some(403)),
            (b"HTTP/1.0 502 Bad Gateway\r\n", Some(502)),
            (b"HTTP/1.1 407", Some(407)),
            (b"SSH-2.0-OpenSSH\r\n", None),
            (b"HTTP/1.1 999 Nine\r\n", None),
            (b"\x00\xff garbage", None),
            (b"", None),
        ];
        for (head, expected) in cases {
            assert_eq!(status(head), expected, "{head:?}");
        }
    }
}
