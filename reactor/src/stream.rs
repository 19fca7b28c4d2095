//! What a connection reads from and writes to: a TCP socket, or (for the test harness) an
//! in-memory peer. One small enum rather than a trait object: the TCP arm is the hot path and
//! stays a direct call.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use mio::net::TcpStream;
use socket2::{SockRef, TcpKeepalive};

use crate::testing::MemoryPeer;

pub(crate) enum Stream {
    Tcp(TcpStream),
    Memory(Rc<RefCell<MemoryPeer>>),
}

impl Stream {
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.shutdown(Shutdown::Write),
            Stream::Memory(peer) => {
                peer.borrow_mut().write_shut = true;
                Ok(())
            }
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(socket) => socket.take_error(),
            Stream::Memory(_) => Ok(None),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(socket) => socket.peer_addr(),
            Stream::Memory(peer) => Ok(peer.borrow().peer_addr),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(socket) => socket.local_addr(),
            Stream::Memory(peer) => Ok(peer.borrow().local_addr),
        }
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => socket.set_nodelay(nodelay),
            Stream::Memory(_) => Ok(()),
        }
    }

    pub(crate) fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let Stream::Tcp(socket) = self else {
            return Ok(());
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

    /// The TCP socket, to register with or deregister from the poll.
    pub(crate) fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Tcp(socket) => Some(socket),
            Stream::Memory(_) => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.read(buf),
            Stream::Memory(peer) => peer.borrow_mut().read_inbound(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write(buf),
            Stream::Memory(peer) => peer.borrow_mut().take_outbound(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(socket) => socket.write_vectored(bufs),
            Stream::Memory(peer) => peer.borrow_mut().take_outbound(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
