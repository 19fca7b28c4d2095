//! What a callback can do: the [`Context`] is the current connection's transport and a door
//! to the rest of the reactor. The reactor's own by-id operations live here too.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use log::debug;
use slab::Slab;

use crate::reactor::connection_in;
use crate::slot::{flag, Connection, ConnectionId, Key, Slot};
use crate::stream::Stream;
use crate::Reactor;

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
    pub fn write(&mut self, data: &[u8]) {
        self.reactor.write_to(self.id, data);
    }

    /// Queues `data` for this connection without copying it (large buffers, shared buffers
    /// sent to many connections).
    pub fn write_bytes(&mut self, data: Bytes) {
        self.reactor.write_bytes_to(self.id, data);
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
            .request(self.id.0, flag::SHUTDOWN_REQUESTED)
            .is_some()
        {
            debug!("connection {}: write side shutting down", self.id);
        }
    }

    /// Stops reading: no `data_received` until [`resume_reading`](Context::resume_reading).
    /// The kernel's buffers fill and the peer is slowed down (TCP flow control).
    pub fn pause_reading(&mut self) {
        if let Some(conn) = self.reactor.connection_mut(self.id.0) {
            conn.set(flag::READING_PAUSED);
        }
    }

    /// Resumes reading after [`pause_reading`](Context::pause_reading). Bytes that arrived
    /// meanwhile are delivered on the next turn (no new readiness event would announce them).
    pub fn resume_reading(&mut self) {
        let Some(conn) = self.reactor.connection_mut(self.id.0) else {
            return;
        };
        if conn.has(flag::READING_PAUSED) {
            conn.clear(flag::READING_PAUSED);
            // Bytes rustls already decrypted are waiting too, with no socket edge to come.
            let tls_waiting = conn
                .socket
                .tls()
                .is_some_and(|tls| tls.plaintext_waiting() || tls.has_handed_back());
            if conn.wants_read() || tls_waiting && conn.may_read() {
                self.reactor.queue_read(self.id.0);
            }
        }
    }

    /// Whether the connection is going away: [`lose_connection`](Context::lose_connection) or
    /// [`abort_connection`](Context::abort_connection) was asked (Twisted's
    /// `transport.disconnecting`), or it is already gone. Adapters check it to stop
    /// delivering buffered frames.
    pub fn is_closing(&self) -> bool {
        self.connection()
            .is_none_or(|c| c.has(flag::CLOSING | flag::ABORTING))
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.connection()
            .is_some_and(|c| c.has(flag::READING_PAUSED))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket()?.peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket()?.local_addr()
    }

    /// Sets `TCP_NODELAY` (on by default: small writes leave at once instead of waiting for
    /// Nagle's algorithm; torsion already coalesces the writes of one turn).
    pub fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        self.socket()?.set_nodelay(nodelay)
    }

    /// Turns TCP keep-alive on, probing after `idle` of silence and then every `idle` again,
    /// or off with `None`. A peer that leaves 3 probes unanswered (so after about 4 × `idle`)
    /// ends the connection with
    /// [`DisconnectReason::TimedOut`](crate::DisconnectReason::TimedOut).
    pub fn set_keepalive(&mut self, idle: Option<Duration>) -> io::Result<()> {
        self.socket()?.set_keepalive(idle)
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
        if let Some(conn) = self.reactor.connection_mut(self.id.0) {
            conn.high_water = high;
            conn.low_water = low;
            // The queue may already be past the new marks: settle decides at the turn's end.
            self.reactor.mark_dirty(self.id.0);
        }
    }

    pub(crate) fn connection(&self) -> Option<&Connection> {
        self.reactor
            .connection(self.id.0)
            .filter(|c| !c.has(flag::CONNECTING | flag::HANDSHAKING))
    }

    fn socket(&self) -> io::Result<&Stream> {
        self.connection()
            .map(|c| &c.socket)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl Reactor {
    /// Queues a copy of `data` for connection `id`, to be flushed at the end of this turn.
    /// Returns false, doing nothing, if `id` is stale, still connecting, or half-closed.
    pub fn write_to(&mut self, id: ConnectionId, data: &[u8]) -> bool {
        match writable_connection(&mut self.slots, id.0) {
            Some(conn) if !data.is_empty() => {
                conn.queue.push_slice(data, &mut self.buffers);
                self.mark_dirty(id.0);
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Queues `data` for connection `id` without copying it. Returns false, doing nothing,
    /// if `id` is stale, still connecting, or half-closed.
    pub fn write_bytes_to(&mut self, id: ConnectionId, data: Bytes) -> bool {
        match writable_connection(&mut self.slots, id.0) {
            Some(conn) if !data.is_empty() => {
                conn.queue.push_bytes(data, &mut self.buffers);
                self.mark_dirty(id.0);
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Closes connection `id` once its queue is flushed; a no-op if `id` is stale.
    pub fn lose_connection(&mut self, id: ConnectionId) {
        self.request(id.0, flag::CLOSING);
    }

    /// Closes connection `id` now, dropping its queue; a no-op if `id` is stale.
    pub fn abort_connection(&mut self, id: ConnectionId) {
        self.request(id.0, flag::ABORTING);
    }

    /// Whether `id` names a live, established connection (for `listen_tls` and a TLS `connect`,
    /// one whose handshake is complete).
    pub fn is_connected(&self, id: ConnectionId) -> bool {
        self.connection(id.0)
            .is_some_and(|c| !c.has(flag::CONNECTING | flag::HANDSHAKING))
    }

    /// Bytes queued for connection `id` and not yet taken by the kernel (0 if stale).
    pub fn queued_bytes(&self, id: ConnectionId) -> usize {
        self.connection(id.0).map_or(0, |c| c.queue.len())
    }

    /// Sets `bits` on an established connection and marks it for settling.
    fn request(&mut self, key: Key, bits: u16) -> Option<()> {
        let conn = self
            .connection_mut(key)
            .filter(|c| !c.has(flag::CONNECTING))?;
        conn.set(bits);
        self.mark_dirty(key);
        Some(())
    }
}

/// The connection at `key` if it can take writes (established, write side open).
fn writable_connection(slots: &mut Slab<Slot>, key: Key) -> Option<&mut Connection> {
    let conn = connection_in(slots, key)?;
    if conn.has(flag::CONNECTING | flag::SHUTDOWN_REQUESTED | flag::WRITE_SHUT) {
        debug!(
            "write to connection {} dropped: not writable",
            ConnectionId(key)
        );
        return None;
    }
    Some(conn)
}
