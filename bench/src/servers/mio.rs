//! The baseline: a hand-written edge-triggered mio echo loop, the way one would write it by
//! hand for speed.
//!
//! Each connection is registered once for `READABLE | WRITABLE` and never re-registered. On a
//! readable event it reads into one buffer shared by all connections until WouldBlock or a
//! short read, writing each chunk straight back; whatever the socket does not take is kept
//! per connection and flushed on the next writable event. Connections live in a slab.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;

use ::mio::net::{TcpListener, TcpStream};
use ::mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::cpu::CpuTimes;

use super::{loopback_any_port, Control, Meter, TICK};

/// The listener's token (connections use their slab index).
const LISTENER: Token = Token(usize::MAX);

/// The shared read buffer's size: the same as torsion's.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Events taken per `epoll_wait`: the same as torsion.
const EVENTS_CAPACITY: usize = 1024;

/// One connection: its socket and the bytes it has not yet taken.
struct Conn {
    stream: TcpStream,
    /// Echoed bytes the socket did not take yet (empty, without heap memory, when idle).
    pending: Vec<u8>,
}

impl Conn {
    /// Reads until WouldBlock or a short read (or, once the peer's FIN was seen, EOF),
    /// writing each chunk back. Returns false when the connection should close.
    fn echo(&mut self, buf: &mut [u8], read_closed: bool) -> bool {
        loop {
            match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if !self.send(&buf[..n]) {
                        return false;
                    }
                    // A short read drained the socket; the next byte brings a new edge.
                    if n < buf.len() && !read_closed {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Writes `data` at once, keeping what the socket does not take. False on error.
    fn send(&mut self, data: &[u8]) -> bool {
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(data);
            return self.flush();
        }
        let mut written = 0;
        while written < data.len() {
            match self.stream.write(&data[written..]) {
                Ok(0) => return false,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.pending.extend_from_slice(&data[written..]);
        true
    }

    /// Writes pending bytes until WouldBlock or none are left. False on error.
    fn flush(&mut self) -> bool {
        let mut written = 0;
        while written < self.pending.len() {
            match self.stream.write(&self.pending[written..]) {
                Ok(0) => return false,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.pending.drain(..written);
        true
    }
}

/// Serves until the meter is told to stop; returns the measured phase's CPU time.
pub fn serve(mut meter: Meter, addr_tx: mpsc::Sender<SocketAddr>) -> io::Result<CpuTimes> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut listener = TcpListener::bind(loopback_any_port())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let _ = addr_tx.send(listener.local_addr()?);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; READ_BUFFER_SIZE];
    loop {
        match poll.poll(&mut events, Some(TICK)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &listener, &mut conns, meter.control())?;
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let mut open = true;
            if event.is_writable() && !conn.pending.is_empty() {
                open = conn.flush();
            }
            if open && (event.is_readable() || event.is_read_closed()) {
                open = conn.echo(&mut buf, event.is_read_closed());
            }
            if !open || event.is_error() {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
        if let Some(used) = meter.check()? {
            return Ok(used);
        }
    }
}

/// Accepts until WouldBlock, registering each connection once for both interests.
fn accept_all(
    poll: &Poll,
    listener: &TcpListener,
    conns: &mut Slab<Conn>,
    control: &Control,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((mut stream, _peer)) => {
                stream.set_nodelay(true)?;
                let entry = conns.vacant_entry();
                poll.registry().register(
                    &mut stream,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                entry.insert(Conn {
                    stream,
                    pending: Vec::new(),
                });
                control.count_accept();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
