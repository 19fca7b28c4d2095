//! The in-memory peer of a test connection, and the protocol's side of it as a [`Stream`]:
//! what the test feeds is read as from a socket, what the protocol writes is kept for the test.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use mio::{Registry, Token};

use crate::stream::{read_socket, Fault, Input, ReadState, Stream};
use crate::{DisconnectReason, Protocol};

/// The far end of an in-memory connection: what the protocol will read, what it wrote.
pub(crate) struct MemoryPeer {
    pub(crate) inbound: VecDeque<u8>,
    pub(crate) inbound_eof: bool,
    pub(crate) inbound_error: Option<io::ErrorKind>,
    pub(crate) outbound: Vec<u8>,
    /// Bytes the peer takes before writes would block; `None`: no limit.
    pub(crate) write_room: Option<usize>,
    pub(crate) write_shut: bool,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) reason: Option<DisconnectReason>,
    /// The protocol, handed over when the connection closes.
    pub(crate) lost_protocol: Option<Box<dyn Protocol>>,
}

impl MemoryPeer {
    pub(crate) fn new(peer_port: u16) -> MemoryPeer {
        MemoryPeer {
            inbound: VecDeque::new(),
            inbound_eof: false,
            inbound_error: None,
            outbound: Vec::new(),
            write_room: None,
            write_shut: false,
            peer_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, peer_port)),
            local_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            reason: None,
            lost_protocol: None,
        }
    }

    /// The protocol side reads what the test fed.
    pub(crate) fn read_inbound(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.inbound_error.take() {
            return Err(kind.into());
        }
        if self.inbound.is_empty() {
            return if self.inbound_eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.inbound.len());
        for (slot, byte) in buf.iter_mut().zip(self.inbound.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    /// The protocol side's flush: takes what the peer has room for.
    pub(crate) fn take_outbound(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = self.write_room.unwrap_or(usize::MAX);
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(room);
            self.outbound.extend_from_slice(&buf[..n]);
            room -= n;
            taken += n;
        }
        if let Some(limit) = self.write_room.as_mut() {
            *limit -= taken;
        }
        Ok(taken)
    }

    pub(crate) fn closed(&mut self, reason: DisconnectReason, protocol: Option<Box<dyn Protocol>>) {
        self.reason = Some(reason);
        self.lost_protocol = protocol;
    }
}

/// The protocol's side of an in-memory connection: a stream like a socket's, edge-triggered
/// the same way (the harness sets `READABLE` where a socket would have an event).
pub(crate) struct MemoryStream(pub(crate) Rc<RefCell<MemoryPeer>>);

impl io::Read for MemoryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read_inbound(buf)
    }
}

impl Stream for MemoryStream {
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        read_socket(self, buf, state)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.borrow_mut().take_outbound(bufs)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.borrow_mut().write_shut = true;
        Ok(())
    }

    /// As `SO_ERROR` does, a pending reset is reported (once) to whoever asks.
    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(self.0.borrow_mut().inbound_error.take().map(Into::into))
    }

    fn register(&mut self, _registry: &Registry, _token: Token) -> io::Result<()> {
        Ok(()) // the harness announces readiness itself
    }

    fn deregister(&mut self, _registry: &Registry) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<crate::Address> {
        Ok(self.0.borrow().peer_addr.into())
    }

    fn local_addr(&self) -> io::Result<crate::Address> {
        Ok(self.0.borrow().local_addr.into())
    }

    fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        Some(self.0.clone())
    }
}
