//! The TLS echo servers under test, and plain-TCP references, each on a thread of its own,
//! measured through the echo benchmark's [`Control`](crate::servers::Control).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpListener, TcpStream};
use ::tokio::runtime::Builder;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::cpu::CpuTimes;
use crate::servers::{self, loopback_any_port, Meter, RunningServer};

use super::torsion;

/// Each tokio connection task's buffer: one full TLS record of plaintext.
pub const TASK_BUFFER_SIZE: usize = 16 * 1024;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsKind {
    /// torsion's reactor with its TLS stage (`listen_tls`) and an echo `Protocol`: see
    /// `src/tls/torsion.rs`.
    Torsion,
    /// tokio-rustls on a current-thread runtime, one task per connection.
    TokioRustls,
    /// Reference: torsion's plain-TCP echo server (the echo benchmark's).
    TorsionTcp,
    /// Reference: the tokio task of [`TlsKind::TokioRustls`] without TLS.
    TokioTcp,
}

impl TlsKind {
    /// Every server, in the default order.
    pub const ALL: [TlsKind; 4] = [
        TlsKind::Torsion,
        TlsKind::TokioRustls,
        TlsKind::TorsionTcp,
        TlsKind::TokioTcp,
    ];

    /// The short name, as printed and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TlsKind::Torsion => "torsion",
            TlsKind::TokioRustls => "tokio-rustls",
            TlsKind::TorsionTcp => "torsion-tcp",
            TlsKind::TokioTcp => "tokio-tcp",
        }
    }

    /// The server named `name`, if any.
    pub fn from_name(name: &str) -> Option<TlsKind> {
        TlsKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether its clients speak TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, TlsKind::Torsion | TlsKind::TokioRustls)
    }

    /// The servers run when `--servers` is not given: all of them.
    pub fn defaults() -> Vec<TlsKind> {
        TlsKind::ALL.to_vec()
    }
}

impl crate::external::Builtin for TlsKind {
    fn label(self) -> &'static str {
        self.name()
    }
}

impl fmt::Display for TlsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Starts a `kind` server on its own thread, on `127.0.0.1` and a free port; the TLS servers
/// present `config`.
pub fn spawn(kind: TlsKind, config: Arc<ServerConfig>) -> io::Result<RunningServer> {
    servers::spawn_with(kind.name(), move |meter, addr_tx| match kind {
        TlsKind::Torsion => torsion::serve(meter, addr_tx, config),
        TlsKind::TokioRustls => serve_tokio(meter, addr_tx, Some(TlsAcceptor::from(config))),
        TlsKind::TorsionTcp => servers::torsion::serve(meter, addr_tx),
        TlsKind::TokioTcp => serve_tokio(meter, addr_tx, None),
    })
}

/// The tokio server, over TLS when given an acceptor: a current-thread runtime, an accept
/// task, and one task per connection. Serves until the meter is told to stop; returns the
/// measured phase's CPU time.
fn serve_tokio(
    mut meter: Meter,
    addr_tx: mpsc::Sender<SocketAddr>,
    acceptor: Option<TlsAcceptor>,
) -> io::Result<CpuTimes> {
    let runtime = Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(loopback_any_port()).await?;
        let _ = addr_tx.send(listener.local_addr()?);
        let control = meter.control_arc();
        let accept_task = ::tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _peer)) => stream,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(_) => return,
                };
                control.count_accept();
                ::tokio::spawn(connection(stream, acceptor.clone()));
            }
        });
        let result = loop {
            match meter.check() {
                Ok(Some(used)) => break Ok(used),
                Ok(None) => meter.changed().await,
                Err(e) => break Err(e),
            }
        };
        accept_task.abort();
        result
    })
}

/// One connection's task: the TLS handshake if any, then the echo.
async fn connection(stream: TcpStream, acceptor: Option<TlsAcceptor>) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    match acceptor {
        None => echo(stream).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                echo(tls).await;
            }
        }
    }
}

/// Reads and writes it all back until EOF or an error, then closes (over TLS with
/// `close_notify`). The `flush` matters over TLS: tokio-rustls's `write` may return with
/// records still in rustls's buffer (the socket was full), and only a flush or the next
/// write sends them; without it, a client waiting for those bytes would wait forever.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; TASK_BUFFER_SIZE];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}
