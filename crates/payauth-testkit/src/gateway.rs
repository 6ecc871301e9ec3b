//! A raw TCP "gateway" for tests: it answers every request with bytes the
//! test wrote by hand, so a test can send what no well-behaved HTTP server
//! library would (an empty 401, a chunked HTML page, a header with
//! non-UTF-8 bytes, garbage on a TLS port).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A loopback server answering the `n`th connection with the `n`th answer
/// (the last one repeats), one request per connection. Each answer gets a
/// `connection: close` header after its status line unless it has a
/// `connection` header already, so the client never reuses a socket the
/// server closes. It lives until the test process ends.
#[derive(Clone)]
pub struct RawGateway {
    address: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    /// The answers, and the request number the first of them answers.
    answers: Arc<Mutex<(usize, Vec<Vec<u8>>)>>,
}

impl RawGateway {
    /// A gateway answering every request with `answer`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    #[must_use]
    pub fn answering(answer: impl Into<Vec<u8>>) -> Self {
        Self::sequence(vec![answer.into()])
    }

    /// A gateway answering requests with `answers` in turn, the last one
    /// for every request after.
    ///
    /// # Panics
    /// When `answers` is empty or no loopback port can be bound.
    #[must_use]
    pub fn sequence(answers: Vec<Vec<u8>>) -> Self {
        assert!(!answers.is_empty(), "a gateway needs an answer");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let gateway = Self {
            address: listener.local_addr().expect("a bound address"),
            hits: Arc::default(),
            answers: Arc::new(Mutex::new((0, answers.into_iter().map(close).collect()))),
        };
        let served = gateway.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let n = served.hits.fetch_add(1, Ordering::SeqCst);
                let answer = {
                    let guard = served
                        .answers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let (first, answers) = &*guard;
                    answers[n.saturating_sub(*first).min(answers.len() - 1)].clone()
                };
                std::thread::spawn(move || serve(stream, &answer));
            }
        });
        gateway
    }

    /// Replaces the answers from the next request on.
    ///
    /// # Panics
    /// When `answers` is empty.
    pub fn answer_next(&self, answers: Vec<Vec<u8>>) {
        assert!(!answers.is_empty(), "a gateway needs an answer");
        let mut guard = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = (self.hits(), answers.into_iter().map(close).collect());
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `https://127.0.0.1:<port>`: the same plain-TCP server, for a TLS
    /// handshake that meets garbage.
    #[must_use]
    pub fn https_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// How many connections were answered so far.
    #[must_use]
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An HTTP/1.1 answer: `status_line` (e.g. `401 Unauthorized`), the
/// headers as given (no `Content-Length` is added: put one in, or use
/// [`chunked`] framing, or let the closed connection end the body), a
/// blank line and `body`.
#[must_use]
pub fn answer(status_line: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status_line}\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `body` as a chunked transfer encoding, in chunks of at most `chunk`
/// bytes; send it with a `transfer-encoding: chunked` header.
#[must_use]
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A JSON answer with a correct `Content-Length`.
#[must_use]
pub fn json(status_line: &str, body: &str) -> Vec<u8> {
    let length = body.len().to_string();
    answer(
        status_line,
        &[
            ("content-type", b"application/json"),
            ("content-length", length.as_bytes()),
        ],
        body.as_bytes(),
    )
}

fn close(answer: Vec<u8>) -> Vec<u8> {
    let head_end = find(&answer, b"\r\n\r\n").unwrap_or(answer.len());
    let has_connection = String::from_utf8_lossy(&answer[..head_end])
        .lines()
        .any(|line| line.to_ascii_lowercase().starts_with("connection:"));
    match find(&answer, b"\r\n") {
        Some(line_end) if !has_connection && answer.starts_with(b"HTTP/") => {
            let mut out = answer[..line_end + 2].to_vec();
            out.extend_from_slice(b"connection: close\r\n");
            out.extend_from_slice(&answer[line_end + 2..]);
            out
        }
        _ => answer,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (headers, then `Content-Length` bytes of body; a TLS
/// hello or anything else is read once), answers, and closes.
fn serve(mut stream: TcpStream, answer: &[u8]) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
        if !request.starts_with(b"POST") && !request.starts_with(b"GET") {
            break;
        }
        if let Some(end) = find(&request, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    let _ = stream.write_all(answer);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Drain what the client still sends so the close is not a reset.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.read(&mut buffer);
}
