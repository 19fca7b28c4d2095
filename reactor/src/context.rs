//! What a callback can do: the [`Context`] is the current connection's transport and a door
//! to the rest of the reactor.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use log::debug;
use socket2::{SockRef, TcpKeepalive};

use crate::connections::{Connection, ConnectionId};
use crate::stream::Stream;
use crate::{Address, Protocol, Reactor};

/// Handed to every [`Protocol`](crate::Protocol) callback: the transport of the connection
/// being called (Twisted's `self.transport`), plus the whole reactor through
/// [`reactor`](Context::reactor).
///
/// Everything asked here is recorded and carried out when the callback returns: writes are
/// queued and flushed together at the end of the reactor turn (one `writev` per connection,
/// tried at once, without waiting for a writable event; a connection that queued 16 KiB or
/// more in the callbacks of a full read is settled before its next read instead); closes,
/// half-closes and pauses take effect then too. Once the connection is gone (in
/// `connection_lost`, or after the id went stale), its operations are harmless no-ops.
pub struct Context<'a> {
    reactor: &'a mut Reactor,
    id: ConnectionId,
}

/// How far a flush got, told to [`Protocol::write_progress`](crate::Protocol::write_progress)
/// once a protocol asked for it with [`Context::watch_writes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteProgress {
    /// Bytes the transport took in this flush (for TLS, the encrypted records' bytes).
    pub sent: usize,
    /// Bytes still queued and not yet taken (what [`Context::queued_bytes`] says).
    pub queued: usize,
    /// Nothing is left to write: the queue is empty and the transport holds nothing of its
    /// own (a TLS layer's records) either.
    pub drained: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(reactor: &'a mut Reactor, id: ConnectionId) -> Self {
        Context { reactor, id }
    }

    /// This connection's id: store it to write to this connection from other callbacks.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The reactor, to stop it, listen, connect, or reach other connections by id.
    pub fn reactor(&mut self) -> &mut Reactor {
        self.reactor
    }

    /// Queues a copy of `data` for this connection.
    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        self.reactor.write_to(self.id, data);
    }

    /// Queues `data` for this connection without copying it (large buffers, shared buffers
    /// sent to many connections).
    pub fn write_bytes(&mut self, data: Bytes) {
        self.reactor.write_bytes_to(self.id, data);
    }

    /// Queues a range of a file for this connection, in order with the bytes around it: the
    /// kernel sends it from the page cache (`sendfile(2)`) on plain TCP; other streams (TLS)
    /// read and write it. See [`Reactor::write_file_to`] and [`FileSegment`](crate::FileSegment).
    pub fn write_file(&mut self, segment: crate::FileSegment) {
        self.reactor.write_file_to(self.id, segment);
    }

    /// Queues a copy of `data` for another connection (a chat broadcast). Returns false, doing
    /// nothing, if that connection is gone.
    pub fn write_to(&mut self, id: ConnectionId, data: &[u8]) -> bool {
        self.reactor.write_to(id, data)
    }

    /// Closes the connection once everything queued is written (Twisted's
    /// `loseConnection`). Reading stops at once; `connection_lost` follows with
    /// [`DisconnectReason::Closed`](crate::DisconnectReason::Closed).
    pub fn lose_connection(&mut self) {
        self.reactor.lose_connection(self.id);
    }

    /// Closes the connection now, dropping what is queued; `connection_lost` follows with
    /// [`DisconnectReason::Aborted`](crate::DisconnectReason::Aborted).
    pub fn abort_connection(&mut self) {
        self.reactor.abort_connection(self.id);
    }

    /// Half-closes: once the queue is written, sends FIN and writes nothing more, while
    /// reading goes on. Writes after this are dropped. When the peer's EOF has also arrived,
    /// the connection closes cleanly.
    pub fn shutdown_write(&mut self) {
        if self
            .reactor
            .connections()
            .request(self.id.0, |c| c.shutdown_write())
        {
            debug!("connection {}: write side shutting down", self.id);
        }
    }

    /// Stops reading: no `data_received` until [`resume_reading`](Context::resume_reading).
    /// The kernel's buffers fill and the peer is slowed down (TCP flow control).
    pub fn pause_reading(&mut self) {
        if let Some(conn) = self.reactor.connections().get_mut(self.id.0) {
            conn.pause_reading();
        }
    }

    /// Resumes reading after [`pause_reading`](Context::pause_reading). Bytes that arrived
    /// meanwhile are delivered on the next turn (no new readiness event would announce them).
    pub fn resume_reading(&mut self) {
        let Some(conn) = self.reactor.connections().get_mut(self.id.0) else {
            return;
        };
        // Bytes already waiting (in the socket, or decrypted by a TLS layer) come with no
        // new edge: read them on the next turn.
        if conn.resume_reading() && conn.may_read() && conn.has_input() {
            self.reactor.queue_read(self.id.0);
        }
    }

    /// Whether the connection is going away: [`lose_connection`](Context::lose_connection) or
    /// [`abort_connection`](Context::abort_connection) was asked (Twisted's
    /// `transport.disconnecting`), or it is already gone. Adapters check it to stop
    /// delivering buffered frames.
    pub fn is_closing(&self) -> bool {
        self.reactor
            .connections_ref()
            .get(self.id.0)
            .is_none_or(Connection::is_closing)
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.connection().is_some_and(Connection::is_reading_paused)
    }

    /// The peer's TCP address. On a connection that is not TCP (a UNIX socket) it fails
    /// with `InvalidInput`: [`peer_address`](Context::peer_address) answers for every kind.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        tcp_only(self.peer_address()?)
    }

    /// This end's TCP address; see [`peer_addr`](Context::peer_addr).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        tcp_only(self.local_address()?)
    }

    /// The peer's address, of whatever kind the connection is (TCP, or a UNIX socket, whose
    /// connecting peers are usually unnamed).
    ///
    /// Behind a proxy speaking the PROXY protocol (a `haproxy:` endpoint), it is the
    /// original client's address the proxy reported.
    pub fn peer_address(&self) -> io::Result<Address> {
        self.reactor.peer_address(self.id)
    }

    /// Makes `peer` this connection's peer address (a PROXY header's source).
    pub(crate) fn set_proxied_peer(&mut self, peer: Address) {
        let id = self.id.0;
        self.reactor.connections().set_proxied_peer(id, peer);
    }

    /// Hands the connection to `protocol` once the running callback returns (the protocol
    /// running it is dropped then).
    pub(crate) fn hand_over(&mut self, protocol: Box<dyn Protocol>) {
        let id = self.id.0;
        self.reactor.connections().handover = Some((id, protocol));
    }

    /// This end's address, of whatever kind the connection is.
    pub fn local_address(&self) -> io::Result<Address> {
        self.made()?.stream.local_addr()
    }

    /// The credentials (pid, uid, gid) of the process at the other end of a UNIX socket
    /// connection, as the kernel recorded them at connect time (`SO_PEERCRED`): a server can
    /// authorise by user with them (over TLS on a UNIX socket too). `None` for a connection
    /// that is not over a UNIX socket (TCP) or is gone; `Some(Err(_))` if the kernel refused.
    pub fn peer_credentials(&self) -> Option<io::Result<crate::Credentials>> {
        self.reactor.peer_credentials(self.id)
    }

    /// Queues `data` with the descriptors `fds` on a UNIX socket connection: they leave
    /// with the first byte of `data` (`SCM_RIGHTS`), in order with what is queued before and
    /// after, and this side's copies close once sent (or when the connection closes first).
    /// The peer receives duplicates, open in its process.
    ///
    /// Fails, closing `fds`, if `data` is empty (descriptors need a byte to travel with),
    /// if there are more than [`MAX_FDS_PER_MESSAGE`](crate::MAX_FDS_PER_MESSAGE), if the
    /// connection is not a plain UNIX socket, or if it no longer takes writes.
    pub fn write_with_fds(
        &mut self,
        data: &[u8],
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> io::Result<()> {
        self.reactor.write_with_fds_to(self.id, data, fds)
    }

    /// Takes the descriptors that arrived (`SCM_RIGHTS`) with the bytes delivered so far,
    /// oldest first: call it from `data_received` to get the ones that came with that data.
    /// Each is this process's own, to keep or drop (dropping closes it). Descriptors not
    /// taken are held, up to [`MAX_HELD_FDS`](crate::MAX_HELD_FDS) (more are closed as they
    /// arrive), and closed with the connection. Empty on other kinds of connection.
    pub fn take_received_fds(&mut self) -> Vec<std::os::fd::OwnedFd> {
        self.reactor.take_received_fds(self.id)
    }

    /// Sets `TCP_NODELAY` (on by default: small writes leave at once instead of waiting for
    /// Nagle's algorithm; torsion already coalesces the writes of one turn). A no-op on a
    /// stream that is not a TCP socket.
    pub fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        match self.made()?.stream.socket() {
            Some(socket) => socket.set_tcp_nodelay(nodelay),
            None => Ok(()),
        }
    }

    /// Turns TCP keep-alive on, probing after `idle` of silence and then every `idle` again,
    /// or off with `None`. A peer that leaves 3 probes unanswered (so after about 4 × `idle`)
    /// ends the connection with
    /// [`DisconnectReason::TimedOut`](crate::DisconnectReason::TimedOut). A no-op on a stream
    /// that is not a TCP socket.
    pub fn set_keepalive(&mut self, idle: Option<Duration>) -> io::Result<()> {
        match self.made()?.stream.socket() {
            Some(socket) => set_keepalive(&socket, idle),
            None => Ok(()),
        }
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn queued_bytes(&self) -> usize {
        self.reactor.queued_bytes(self.id)
    }

    /// Sets the write-queue watermarks: above `high` bytes queued the protocol gets
    /// `pause_writing`, and once back at `low` or below, `resume_writing`. Defaults: 64 KiB
    /// and 16 KiB. `low` is clamped to at most `high`.
    pub fn set_write_buffer_limits(&mut self, high: usize, low: usize) {
        let high = u32::try_from(high).unwrap_or(u32::MAX);
        let low = u32::try_from(low).unwrap_or(u32::MAX).min(high);
        let connections = self.reactor.connections();
        if let Some(conn) = connections.get_mut(self.id.0) {
            conn.high_water = high;
            conn.low_water = low;
            // The queue may already be past the new marks: settle decides at the turn's end.
            connections.mark_dirty(self.id.0);
        }
    }

    /// Asks to hear [`Protocol::write_progress`](crate::Protocol::write_progress) after every
    /// flush that sends some of this connection's bytes (`true`), or no more (`false`): how
    /// a protocol follows its bytes out (a send timeout, say) without guessing from the queue.
    pub fn watch_writes(&mut self, on: bool) {
        if let Some(conn) = self.reactor.connections().get_mut(self.id.0) {
            conn.watching_writes = on;
        }
    }

    /// Wakes this connection: its protocol's [`woken`](crate::Protocol::woken) runs after
    /// this callback returns, on this turn or the next (see [`Reactor::wake`]).
    pub fn wake(&mut self) {
        self.reactor.wake(self.id);
    }

    /// The connection, once made (connecting and handshaking ones answer nothing yet).
    pub(crate) fn connection(&self) -> Option<&Connection> {
        self.reactor
            .connections_ref()
            .get(self.id.0)
            .filter(|c| c.is_made())
    }

    fn made(&self) -> io::Result<&Connection> {
        self.connection()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

/// The TCP address in `address`, or `InvalidInput` for another kind.
fn tcp_only(address: Address) -> io::Result<SocketAddr> {
    address.as_tcp().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a TCP connection: {address}"),
        )
    })
}

/// Keep-alive probes after `idle` of silence, every `idle`, three of them; or none.
fn set_keepalive(socket: &SockRef<'_>, idle: Option<Duration>) -> io::Result<()> {
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
