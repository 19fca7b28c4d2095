//! One non-blocking client connection, over TLS (a rustls `ClientConnection` driven by hand
//! over a mio socket) or plain TCP (for the reference servers), with one interface: read
//! plaintext, write plaintext, flush. Every method returns `WouldBlock` when the socket
//! cannot go on; the caller waits for the next edge-triggered event.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the clients speak.
#[derive(Clone)]
pub struct Dialer {
    /// `None` for plain TCP.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// A client connection.
pub struct ClientStream {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl Dialer {
    /// Connects to `addr` (blocking: a loopback connect completes in the kernel, before the
    /// server accepts), sets `TCP_NODELAY`, and registers the socket under `token`. A TLS
    /// handshake starts with the first [`ClientStream::flush`].
    pub fn connect(
        &self,
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
    ) -> io::Result<ClientStream> {
        let std_stream = StdTcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let mut sock = TcpStream::from_std(std_stream);
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        let tls = match &self.tls {
            Some((config, name)) => Some(Box::new(
                ClientConnection::new(config.clone(), name.clone()).map_err(io::Error::other)?,
            )),
            None => None,
        };
        Ok(ClientStream { sock, tls })
    }
}

impl ClientStream {
    /// Reads plaintext into `buf`: `Ok(n > 0)`, `WouldBlock`, or an error (a close by the
    /// server is an error: the benchmark's clients always close first).
    pub fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return match retry_interrupted(|| self.sock.read(buf)) {
                Ok(0) => Err(closed()),
                other => other,
            };
        };
        loop {
            match tls.reader().read(buf) {
                Ok(0) => return Err(closed()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.sock) {
                Ok(0) => return Err(closed()),
                Ok(_) => {
                    tls.process_new_packets().map_err(io::Error::other)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes (a prefix of) `data`: `Ok(n > 0)` or `WouldBlock`. Over TLS, takes new
    /// plaintext only once everything encrypted before it is on the socket, so the
    /// connection never buffers more than one write's records.
    pub fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = match self.tls.as_deref_mut() {
            None => retry_interrupted(|| self.sock.write(data))?,
            Some(tls) => {
                if !flush_tls(tls, &mut self.sock)? {
                    return Err(would_block());
                }
                tls.writer().write(data)?
            }
        };
        if n == 0 {
            return Err(would_block());
        }
        self.flush()?;
        Ok(n)
    }

    /// Writes what TLS has encrypted (handshake messages, records) until the socket would
    /// block; true if nothing is left. Plain TCP has nothing buffered.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self.tls.as_deref_mut() {
            None => Ok(true),
            Some(tls) => flush_tls(tls, &mut self.sock),
        }
    }

    /// Whether the TLS handshake is still going on (false for plain TCP).
    pub fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// The protocol version and cipher suite negotiated, for the report.
    pub fn describe(&self) -> String {
        match self.tls.as_deref() {
            None => "plain TCP".into(),
            Some(tls) => match (tls.protocol_version(), tls.negotiated_cipher_suite()) {
                (Some(version), Some(suite)) => format!("{version:?} {:?}", suite.suite()),
                _ => "TLS not negotiated yet".into(),
            },
        }
    }

    /// Sends TLS's `close_notify` (best effort) and deregisters the socket; dropping the
    /// stream then closes it.
    pub fn close(&mut self, registry: &Registry) -> io::Result<()> {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.send_close_notify();
            let _ = flush_tls(tls, &mut self.sock);
        }
        registry.deregister(&mut self.sock)
    }
}

/// Writes `tls`'s pending records to `sock` until done (true) or the socket would block.
fn flush_tls(tls: &mut ClientConnection, sock: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn retry_interrupted(mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
}
