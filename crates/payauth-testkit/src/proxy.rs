//! A misbehaving proxy for tests: a raw python3 TCP server that answers an
//! HTTP `CONNECT` or a SOCKS5 handshake with one scripted failure (a 407,
//! a 403, a 502, garbage, an early close, each SOCKS5 refusal), so every
//! way a proxy can fail is one row of a table. It is a process of its own,
//! written with nothing but the standard library's `socket`, so nothing
//! of the client's protocol code is shared with it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// The server: `python3 -c SCRIPT MODE`; prints its port, then serves
/// every connection the same way until killed.
const SCRIPT: &str = r#"
import socket, sys, threading

mode = sys.argv[1]

def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

def exact(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def http(c, kind):
    read_head(c)
    if kind == "close":
        return
    if kind == "garbage":
        c.sendall(b"\x00\xffnot a proxy\r\n\r\n")
        return
    code = int(kind)
    extra = b"Proxy-Authenticate: Basic realm=\"proxy\"\r\n" if code == 407 else b""
    c.sendall(b"HTTP/1.1 %d Refused\r\n%sContent-Length: 0\r\n\r\n" % (code, extra))

def socks(c, kind):
    version, count = exact(c, 2)
    methods = exact(c, count)
    if kind == "close":
        return
    if kind == "garbage":
        c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        return
    if kind == "none-acceptable":
        c.sendall(b"\x05\xff")
        return
    if kind == "wants-password":
        c.sendall(b"\x05\x02")
        return
    if 2 in methods:
        c.sendall(b"\x05\x02")
        exact(c, 1)
        exact(c, exact(c, 1)[0])
        exact(c, exact(c, 1)[0])
        if kind == "auth-refused":
            c.sendall(b"\x01\x01")
            return
        c.sendall(b"\x01\x00")
    else:
        c.sendall(b"\x05\x00")
    head = exact(c, 4)
    kind_of_address = head[3]
    if kind_of_address == 1:
        exact(c, 4)
    elif kind_of_address == 4:
        exact(c, 16)
    else:
        exact(c, exact(c, 1)[0])
    exact(c, 2)
    c.sendall(bytes([5, int(kind), 0, 1, 0, 0, 0, 0, 0, 0]))

def serve(c):
    try:
        protocol, kind = mode.split(":", 1)
        (http if protocol == "http" else socks)(c, kind)
    except Exception:
        pass
    finally:
        c.close()

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
print(server.getsockname()[1], flush=True)
while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"#;

/// A scripted proxy on a loopback port, killed when dropped.
pub struct ScriptedProxy {
    child: Child,
    port: u16,
}

impl ScriptedProxy {
    /// Starts one failing as `mode` says:
    ///
    /// - `http:407`, `http:403`, `http:502`, any status: the answer to
    ///   `CONNECT`; `http:garbage`, bytes that are no HTTP; `http:close`,
    ///   the connection closed unanswered.
    /// - `socks:auth-refused`, the user name and password refused (RFC
    ///   1929); `socks:none-acceptable`, no method offered accepted;
    ///   `socks:wants-password`, user/password chosen whatever was
    ///   offered; `socks:N`, the reply code `N` to the request (1 general
    ///   failure, 2 not allowed by ruleset, ... 8 address type not
    ///   supported); `socks:garbage`; `socks:close`.
    ///
    /// # Panics
    /// When python3 cannot be run or prints no port.
    #[must_use]
    pub fn start(mode: &str) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", SCRIPT, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (the scripted proxy)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the scripted proxy prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port from the scripted proxy: {line:?}"));
        Self { child, port }
    }

    /// Its loopback port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ScriptedProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (bound, then released): a proxy
/// that is down.
///
/// # Panics
/// When no loopback port can be bound.
#[must_use]
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}
