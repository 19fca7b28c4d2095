//! What a connection reads from and writes to: a TCP socket, or (for the test harness) an
//! in-memory peer, either of them possibly beneath a TLS stage. One small enum rather than a
//! trait object: the TCP arm is the hot path and stays a direct call. Everything else is
//! boxed behind one variant, so that `Stream` is no larger than a TCP socket (the tag lives
//! in the descriptor's niche) and a plain connection pays nothing for TLS.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use mio::net::TcpStream;
use socket2::{SockRef, TcpKeepalive};

use crate::testing::MemoryPeer;
use crate::tls::stage::{Session, TlsStream};

pub(crate) enum Stream {
    Tcp(TcpStream),
    Boxed(Box<Layer>),
}

/// The streams that are not a bare TCP socket.
// The layer is boxed already; only the test harness's memory peer pays for the TLS
// variant's size.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Layer {
    Memory(Rc<RefCell<MemoryPeer>>),
    /// A TLS stage over another stream.
    Tls(TlsStream),
    /// Nothing: only for the moment a stream is moved beneath a new TLS stage.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream detached")
}

impl Stream {
    /// A stream to the test harness's in-memory peer.
    pub(crate) fn memory(peer: Rc<RefCell<MemoryPeer>>) -> Stream {
        Stream::Boxed(Box::new(Layer::Memory(peer)))
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.shutdown(Shutdown::Write),
            Stream::Boxed(layer) => match &**layer {
                Layer::Memory(peer) => {
                    peer.borrow_mut().write_shut = true;
                    Ok(())
                }
                Layer::Tls(tls) => tls.inner.shutdown_write(),
                Layer::Detached => Err(detached()),
            },
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(socket) => socket.take_error(),
            Stream::Boxed(layer) => match &**layer {
                Layer::Tls(tls) => tls.inner.take_error(),
                // As `SO_ERROR` does, a pending reset is reported (once) to whoever asks.
                Layer::Memory(peer) => Ok(peer.borrow_mut().inbound_error.take().map(Into::into)),
                Layer::Detached => Ok(None),
            },
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(socket) => socket.peer_addr(),
            Stream::Boxed(layer) => match &**layer {
                Layer::Memory(peer) => Ok(peer.borrow().peer_addr),
                Layer::Tls(tls) => tls.inner.peer_addr(),
                Layer::Detached => Err(detached()),
            },
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(socket) => socket.local_addr(),
            Stream::Boxed(layer) => match &**layer {
                Layer::Memory(peer) => Ok(peer.borrow().local_addr),
                Layer::Tls(tls) => tls.inner.local_addr(),
                Layer::Detached => Err(detached()),
            },
        }
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.set_nodelay(nodelay),
            Stream::Boxed(layer) => match &**layer {
                Layer::Tls(tls) => tls.inner.set_nodelay(nodelay),
                Layer::Memory(_) | Layer::Detached => Ok(()),
            },
        }
    }

    pub(crate) fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let socket = match self {
            Stream::Tcp(socket) => socket,
            Stream::Boxed(layer) => match &**layer {
                Layer::Tls(tls) => return tls.inner.set_keepalive(idle),
                Layer::Memory(_) | Layer::Detached => return Ok(()),
            },
        };
        let socket = SockRef::from(socket);
        match idle {
            Some(idle) => {
                let probes = TcpKeepalive::new()
                    .with_time(idle)
                    .with_interval(idle)
                    .with_retries(3);
                socket.set_tcp_keepalive(&probes)
            }
            None => socket.set_keepalive(false),
        }
    }

    /// The TLS stage, if this stream has one.
    pub(crate) fn tls(&self) -> Option<&TlsStream> {
        match self {
            Stream::Boxed(layer) => match &**layer {
                Layer::Tls(tls) => Some(tls),
                _ => None,
            },
            Stream::Tcp(_) => None,
        }
    }

    /// The TLS stage, mutably.
    pub(crate) fn tls_mut(&mut self) -> Option<&mut TlsStream> {
        match self {
            Stream::Boxed(layer) => match &mut **layer {
                Layer::Tls(tls) => Some(tls),
                _ => None,
            },
            Stream::Tcp(_) => None,
        }
    }

    /// Puts a TLS stage running `session` over this stream, and returns it.
    pub(crate) fn wrap_tls(&mut self, session: Session) -> &mut TlsStream {
        let inner = std::mem::replace(self, Stream::Boxed(Box::new(Layer::Detached)));
        let tls = Layer::Tls(TlsStream::over(inner, session));
        match self {
            Stream::Boxed(layer) => {
                **layer = tls;
                match &mut **layer {
                    Layer::Tls(tls) => tls,
                    _ => unreachable!("just put a TLS stage here"),
                }
            }
            Stream::Tcp(_) => unreachable!("just replaced by a layer"),
        }
    }

    /// The test harness's peer beneath any TLS stage.
    pub(crate) fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        match self {
            Stream::Boxed(layer) => match &**layer {
                Layer::Memory(peer) => Some(peer.clone()),
                Layer::Tls(tls) => tls.inner.memory_peer(),
                Layer::Detached => None,
            },
            Stream::Tcp(_) => None,
        }
    }

    /// The TCP socket, to register with or deregister from the poll.
    pub(crate) fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Tcp(socket) => Some(socket),
            Stream::Boxed(layer) => match &mut **layer {
                Layer::Tls(tls) => tls.inner.tcp_mut(),
                Layer::Memory(_) | Layer::Detached => None,
            },
        }
    }
}

/// Raw bytes never pass a TLS stage's socket by these impls: the TLS read and flush paths
/// go through the stage. Reaching them is a reactor bug, reported as an error.
fn raw_io_on_tls() -> io::Error {
    io::Error::other("raw I/O on a TLS stream")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.read(buf),
            Stream::Boxed(layer) => match &mut **layer {
                Layer::Memory(peer) => peer.borrow_mut().read_inbound(buf),
                Layer::Tls(_) => Err(raw_io_on_tls()),
                Layer::Detached => Err(detached()),
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write(buf),
            Stream::Boxed(_) => self.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write_vectored(bufs),
            Stream::Boxed(layer) => match &mut **layer {
                Layer::Memory(peer) => peer.borrow_mut().take_outbound(bufs),
                Layer::Tls(_) => Err(raw_io_on_tls()),
                Layer::Detached => Err(detached()),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
