//! Driving connections: readiness, the read loop, the end-of-turn settle, closing, waking,
//! and the operations on a connection by id. Written once, against the [`Stream`] interface,
//! for every kind of stream; the connection table (`connections/`) keeps the state, this is
//! where the protocols are called.

use log::{debug, warn};
use mio::event::Event;

use crate::connections::{Connection, ConnectionId, Phase, WriteSide, READ_BUDGET_PER_TURN};
use crate::protocol::Protocol;
use crate::stream::{AnyStream, Bits, Input, ReadState, Stream};
use crate::table::{Key, Kind};
use crate::{Bytes, Context, DisconnectReason, Reactor, WriteProgress};

/// Rounds of settling per turn; see `settle_dirty`.
pub(super) const SETTLE_ROUNDS: usize = 8;

/// Bytes queued after a full read from which the connection is settled before its next read
/// (see `settle_if_bulk`): the plaintext of one full TLS record. A 64 KiB read of TLS records
/// decrypts to a little less than 64 KiB (its last record is cut short), so a threshold of a
/// whole read would settle a TLS bulk echo only every other read.
const SETTLE_AFTER_READ: usize = 16 * 1024;

impl Reactor {
    /// Queues a copy of `data` for connection `id`, to be flushed at the end of this turn.
    /// Returns false, doing nothing, if `id` is stale, still connecting, or half-closed.
    #[inline]
    pub fn write_to(&mut self, id: ConnectionId, data: &[u8]) -> bool {
        self.connections.write(id.0, data)
    }

    /// Queues `data` for connection `id` without copying it. Returns false, doing nothing,
    /// if `id` is stale, still connecting, or half-closed.
    pub fn write_bytes_to(&mut self, id: ConnectionId, data: Bytes) -> bool {
        self.connections.write_bytes(id.0, data)
    }

    /// Queues a range of a file for connection `id`, after what is queued before it: sent
    /// with `sendfile(2)` on plain TCP, read and written (encrypted) on other streams. Load
    /// its bytes into the page cache first if the disk may be slow
    /// ([`FileSegment::load`](crate::FileSegment::load), in the thread pool): sending reads
    /// it on the reactor thread. Returns false, doing nothing, as
    /// [`write_to`](Reactor::write_to).
    pub fn write_file_to(&mut self, id: ConnectionId, segment: crate::FileSegment) -> bool {
        self.connections.write_file(id.0, segment)
    }

    /// Closes connection `id` once its queue is flushed; a no-op if `id` is stale.
    pub fn lose_connection(&mut self, id: ConnectionId) {
        self.connections.request(id.0, |c| c.lose());
    }

    /// Closes connection `id` now, dropping its queue; a no-op if `id` is stale.
    pub fn abort_connection(&mut self, id: ConnectionId) {
        self.connections.request(id.0, |c| c.abort());
    }

    /// Stops reading connection `id`, as its protocol's
    /// [`Context::pause_reading`](crate::Context::pause_reading) does: for another protocol
    /// that produces what this one consumes (a no-op if `id` is stale).
    pub fn pause_reading(&mut self, id: ConnectionId) {
        Context::new(self, id).pause_reading();
    }

    /// Resumes reading connection `id` after [`pause_reading`](Reactor::pause_reading).
    pub fn resume_reading(&mut self, id: ConnectionId) {
        Context::new(self, id).resume_reading();
    }

    /// Whether `id` names a live, established connection (for a TLS port or a TLS connect,
    /// one whose handshake is complete).
    pub fn is_connected(&self, id: ConnectionId) -> bool {
        self.connections.get(id.0).is_some_and(|c| c.is_made())
    }

    /// The peer address of connection `id`, as [`Context::peer_address`] reports it (the
    /// client a PROXY header named, on a `haproxy:` port); `NotConnected` if `id` is stale
    /// or not yet established.
    pub fn peer_address(&self, id: ConnectionId) -> std::io::Result<crate::Address> {
        let Some(connection) = self.connections.get(id.0).filter(|c| c.is_made()) else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        match self.connections.proxied_peer(id.0) {
            Some(peer) => Ok(peer.clone()),
            None => connection.stream.peer_addr(),
        }
    }

    /// Bytes queued for connection `id` and not yet taken by the kernel (0 if stale).
    pub fn queued_bytes(&self, id: ConnectionId) -> usize {
        self.connections.get(id.0).map_or(0, |c| c.queue.len())
    }

    /// Wakes connection `id`: its protocol's [`woken`](Protocol::woken) runs, on this turn
    /// if the turn has not yet told its woken connections, else on the next (the reactor then
    /// polls without waiting). Wakes coalesce: however many come before it runs, it runs
    /// once. A connection not yet made (connecting, or in a TLS port's handshake) is told
    /// once it is. Returns false, doing nothing, if `id` is stale.
    ///
    /// From another thread, use [`ReactorHandle::wake`](crate::ReactorHandle::wake).
    pub fn wake(&mut self, id: ConnectionId) -> bool {
        self.connections.wake(id.0)
    }

    /// The connection table, for the context and the test harness.
    pub(crate) fn connections(&mut self) -> &mut crate::connections::Connections {
        &mut self.connections
    }

    /// The connection table, read-only.
    pub(crate) fn connections_ref(&self) -> &crate::connections::Connections {
        &self.connections
    }

    /// Calls into a connection's protocol with a context for it. The protocol is taken out of
    /// its place for the call, so the context can borrow the whole reactor; a connection
    /// whose protocol is already out (in a callback) is never re-entered.
    pub(crate) fn call(&mut self, key: Key, f: impl FnOnce(&mut dyn Protocol, &mut Context<'_>)) {
        let Some(mut protocol) = self
            .connections
            .get_mut(key)
            .and_then(|c| c.protocol.take())
        else {
            return;
        };
        f(&mut *protocol, &mut Context::new(self, ConnectionId(key)));
        // Connections are only removed by the reactor between callbacks, so the entry is
        // still there; if not, the protocol is dropped with it.
        if let Some((to, replacement)) = self.connections.handover.take() {
            // A wrapper (the PROXY header reader) handed the connection to the protocol it
            // built; it is dropped here.
            if to == key {
                protocol = replacement;
            }
        }
        if let Some(conn) = self.connections.get_mut(key) {
            conn.protocol = Some(protocol);
        }
    }

    /// Puts a connection with bytes left to read on the ready list, once.
    pub(crate) fn queue_read(&mut self, key: Key) {
        if let Some(conn) = self.connections.get_mut(key) {
            if !conn.bits.has(Bits::QUEUED_READ) {
                conn.bits.set(Bits::QUEUED_READ);
                self.push_ready(Kind::Connection, key);
            }
        }
    }

    /// Readiness on a connection: a connect completing, or bytes to read, room to write, an
    /// error.
    pub(crate) fn connection_event(&mut self, key: Key, event: &Event) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if conn.phase == Phase::Connecting {
            self.connect_ready(key);
            // The edge that completed the connect may also carry the peer's first bytes (a
            // server that speaks first): no other edge will announce them.
            if !self
                .connections
                .get(key)
                .is_some_and(|c| c.phase != Phase::Connecting)
            {
                return;
            }
        }
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() {
            conn.bits.set(Bits::READABLE);
        }
        if event.is_read_closed() {
            conn.bits.set(Bits::READ_CLOSED);
        }
        let flush_pending = (event.is_writable() || event.is_write_closed()) && {
            conn.bits.set(Bits::WRITABLE);
            conn.has_output()
        };
        // A connection on the ready list is read from there this turn; reading it here too
        // would give it two read budgets in one turn.
        let queued_read = conn.bits.has(Bits::QUEUED_READ);
        if flush_pending {
            self.connections.mark_dirty(key);
        }
        if !queued_read {
            self.read_connection(key);
        }
        if event.is_error() {
            self.check_socket_error(key);
        }
    }

    /// Reads until the stream has nothing more now, reading ends or pauses, the connection
    /// goes, or the turn's budget is spent, handing each piece to the protocol. The same loop
    /// for every stream: a layer's events (its handshake's end, a truncated stream) come
    /// through it as well.
    pub(crate) fn read_connection(&mut self, key: Key) {
        let mut buf = self.connections.take_read_buf();
        let mut budget = READ_BUDGET_PER_TURN;
        while let Some(conn) = self.connections.get_mut(key) {
            if !conn.may_read() {
                break;
            }
            let mut state = ReadState {
                bits: &mut conn.bits,
                budget: &mut budget,
            };
            let input = conn.stream.read(&mut buf, &mut state);
            // A read that filled the buffer left more in the socket: the moment a bulk
            // transfer's queue is flushed, once per read (a layer says `Refill` instead, once
            // it has handed over all of a read).
            let socket_has_more = conn.bits.has(Bits::READABLE) && !conn.stream.input_waiting();
            if conn.stream.has_output() {
                // Records a layer made while reading (its handshake, alerts) leave this turn.
                self.connections.mark_dirty(key);
            }
            match input {
                Ok(Input::Data(n)) => {
                    // Counted before the callback, so a snapshot taken in it includes this
                    // read. One `inc` and one `add` to memory: counting in locals stored
                    // after the loop would cost as many instructions and miss the snapshot.
                    self.counters.reads += 1;
                    self.counters.bytes_received += n as u64;
                    self.call(key, |p, cx| p.data_received(cx, &buf[..n]));
                    if socket_has_more {
                        self.settle_if_bulk(key);
                    }
                }
                Ok(Input::Refill) => self.settle_if_bulk(key),
                Ok(Input::Pending) => break,
                Ok(Input::Yield) => {
                    self.queue_read(key);
                    break;
                }
                Ok(Input::Eof) => self.eof_received(key),
                Ok(Input::Truncated) => self.close_connection(key, DisconnectReason::Truncated),
                Ok(Input::HandshakeDone) => self.handshake_completed(key),
                Err(fault) => self.close_connection(key, fault.into()),
            }
        }
        self.connections.put_read_buf(buf);
    }

    /// The peer's stream ended cleanly.
    fn eof_received(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.read_ended();
        debug!("connection {} received EOF", ConnectionId(key));
        self.call(key, |p, cx| p.eof_received(cx));
        self.connections.mark_dirty(key);
    }

    /// Closes a connection whose stream reports an error (`EPOLLERR`) that no read surfaced,
    /// e.g. a reset while reading is paused.
    pub(crate) fn check_socket_error(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        match conn.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
        }
    }

    /// Tells every connection woken before this step (`Protocol::woken`). Those woken while
    /// it runs are told on the next turn, so a protocol that wakes itself cannot hold the loop.
    pub(crate) fn tell_woken(&mut self) {
        for key in self.connections.take_woken() {
            let Some(conn) = self.connections.get_mut(key) else {
                continue;
            };
            if !conn.bits.has(Bits::WOKEN) || !conn.is_made() {
                continue;
            }
            conn.bits.clear(Bits::WOKEN);
            if conn.phase != Phase::Aborting {
                self.call(key, |p, cx| p.woken(cx));
            }
        }
    }

    /// The connection is made: `connection_made`, and a wake that came before it is queued
    /// (before the callback, so a wake the callback asks is the same one, told once).
    pub(crate) fn connection_made(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.made();
        self.connections.wake_if_woken(key);
        self.call(key, |p, cx| p.connection_made(cx));
        self.made_while_draining(key);
    }

    /// Settles every dirty connection, including those dirtied by callbacks made while
    /// settling (a `connection_lost` that broadcasts, a `resume_writing` that writes).
    ///
    /// At most [`SETTLE_ROUNDS`] rounds per turn: a producer that writes past its high
    /// watermark in every `resume_writing` to a peer that takes it all would otherwise hold
    /// the turn for as long as the kernel keeps up. What is left stays dirty for the next
    /// turn, which then polls without waiting.
    pub(crate) fn settle_dirty(&mut self) {
        let mut batch = Vec::new();
        for _ in 0..SETTLE_ROUNDS {
            if !self.connections.any_dirty() {
                break;
            }
            self.connections.take_dirty(&mut batch);
            for key in batch.drain(..) {
                self.settle(key);
            }
        }
        self.connections.return_dirty_list(batch);
    }

    /// Called after a read that left more to read: settles the connection at once, rather
    /// than at the end of the turn, if it has [`SETTLE_AFTER_READ`] bytes or more queued (a
    /// bulk transfer, where little is gained by waiting to coalesce). The bytes just queued
    /// are then still in the CPU's cache when the kernel copies them, and the queue stays at
    /// about one read's worth instead of growing by a turn's reads. Reads that drained the
    /// socket (the common case for small messages) skip the check: the end of the turn comes
    /// next.
    fn settle_if_bulk(&mut self, key: Key) {
        if self
            .connections
            .get(key)
            .is_some_and(|c| c.queue.len() >= SETTLE_AFTER_READ)
        {
            self.settle(key);
        }
    }

    /// Carries out what callbacks asked of one connection: abort, flush, the watermark and
    /// progress callbacks, then the close or half-close that waited for the queue to drain.
    // Forced inline, with its steps below, into its two callers (`settle_dirty`, the hot one,
    // and `settle_if_bulk`): left to the compiler, the second caller made it an out-of-line
    // call, 18 to 34 more instructions per echoed 64-byte message in callgrind.
    #[inline(always)]
    fn settle(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.bits.clear(Bits::DIRTY);
        if conn.phase == Phase::Connecting {
            return;
        }
        if conn.is_aborting() {
            return self.close_connection(key, DisconnectReason::Aborted);
        }
        self.pause_writing_if_over_high_water(key);
        let sent = match self.connections.flush(key) {
            Ok(sent) => sent,
            Err(fault) => return self.close_connection(key, fault.into()),
        };
        if sent > 0 {
            self.counters.writes += 1;
            self.counters.bytes_sent += sent as u64;
            self.tell_write_progress(key, sent);
        }
        self.resume_writing_if_under_low_water(key);
        self.close_if_drained(key);
    }

    /// Before the flush: the callbacks of this turn queued more than the high watermark, so
    /// the protocol is told to pause (what it would have heard had each write gone to the
    /// kernel at once, as in asyncio). Judged before the flush so that a producer whose
    /// writes the kernel swallows whole still hears `pause_writing` and then
    /// `resume_writing`, its cue to produce more.
    #[inline(always)]
    fn pause_writing_if_over_high_water(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if !conn.is_made() {
            return; // no protocol callback before `connection_made`; judged again after it
        }
        if !conn.writing_paused && conn.queue.len() > conn.high_water as usize {
            conn.writing_paused = true;
            self.call(key, |p, cx| p.pause_writing(cx));
        }
    }

    /// After a flush that sent bytes: a protocol watching its writes hears how far they got.
    #[inline(always)]
    fn tell_write_progress(&mut self, key: Key, sent: usize) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if conn.watching_writes && conn.is_made() {
            let progress = WriteProgress {
                sent,
                queued: conn.queue.len(),
                drained: !conn.has_output(),
            };
            self.call(key, |p, cx| p.write_progress(cx, progress));
        }
    }

    /// After the flush: a paused protocol whose queue drained to the low watermark resumes.
    #[inline(always)]
    fn resume_writing_if_under_low_water(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if conn.writing_paused && conn.queue.len() <= conn.low_water as usize {
            conn.writing_paused = false;
            self.call(key, |p, cx| p.resume_writing(cx));
        }
    }

    /// Once nothing waits to be written: the close or half-close that waited for the queue
    /// (after the stream's clean end: a TLS connection's `close_notify`).
    #[inline(always)]
    fn close_if_drained(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if conn.has_output() || conn.is_aborting() || !conn.is_made() {
            // The rest waits for writability; an abort asked meanwhile is settled next; a
            // close asked during a handshake waits for its end.
            return;
        }
        let closing = conn.phase == Phase::Closing;
        let shutting = conn.write == WriteSide::ShutdownRequested;
        let shut_and_ended = conn.write == WriteSide::Shut && conn.has_read_ended();
        if !closing && !shutting {
            if shut_and_ended {
                self.close_connection(key, DisconnectReason::Closed);
            }
            return;
        }
        match self.connections.finish(key) {
            Ok(true) => {}
            Ok(false) => return, // the stream's end waits for writability
            Err(fault) => return self.close_connection(key, fault.into()),
        }
        if closing {
            return self.close_connection(key, DisconnectReason::Closed);
        }
        self.half_close(key);
    }

    /// Shuts the write side (FIN) once what was queued before `shutdown_write` is out.
    fn half_close(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.write_shut();
        match conn.stream.shutdown_write() {
            Ok(()) if conn.has_read_ended() => self.close_connection(key, DisconnectReason::Closed),
            Ok(()) => debug!("connection {} half-closed", ConnectionId(key)),
            Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
        }
    }

    /// Removes a connection, closes its stream, and tells its protocol (and client factory)
    /// why. Only ever called between callbacks.
    pub(crate) fn close_connection(&mut self, key: Key, reason: DisconnectReason) {
        let Some(mut conn) = self.remove_connection(key) else {
            return;
        };
        if !conn.is_made() {
            return self.handshake_abandoned(key, conn, reason);
        }
        let id = ConnectionId(key);
        match &reason {
            DisconnectReason::Error(_) | DisconnectReason::Tls(_) => {
                warn!("connection {id}: {reason}")
            }
            _ => debug!("connection {id}: {reason}"),
        }
        let memory_peer = conn.stream.memory_peer();
        // Close the stream before the callbacks, so the peer sees it whatever they do.
        drop(conn.stream);
        let mut protocol = conn.protocol.take();
        if let Some(protocol) = protocol.as_mut() {
            protocol.connection_lost(&mut Context::new(self, id), &reason);
        }
        self.connection_ended(key, &reason);
        if let Some(peer) = memory_peer {
            // The harness keeps the protocol so a test can still inspect it.
            peer.borrow_mut().closed(reason, protocol);
        }
    }

    /// Takes a connection out of the table and the poll, cancelling its timers.
    pub(crate) fn remove_connection(&mut self, key: Key) -> Option<Connection> {
        self.connections.get(key)?;
        self.timers.cancel_owned(key.token(Kind::Connection));
        let conn = self.connections.remove(self.poll.registry(), key);
        self.release_admission(key);
        conn
    }

    /// An established connection to an in-memory peer (the test harness), running
    /// `protocol`; `connection_made` has run when this returns.
    pub(crate) fn insert_memory(
        &mut self,
        peer: std::rc::Rc<std::cell::RefCell<crate::testing::MemoryPeer>>,
        protocol: Box<dyn Protocol>,
    ) -> std::io::Result<Key> {
        let stream = AnyStream::boxed(crate::testing::MemoryStream(peer));
        let mut connection = Connection::new(stream, Phase::Open, Bits::WRITABLE);
        connection.protocol = Some(protocol);
        let key = self.connections.insert(self.poll.registry(), connection)?;
        self.connection_made(key);
        self.settle_dirty();
        Ok(key)
    }

    /// The protocol of a live connection, unless it is out of its place in a callback.
    pub(crate) fn protocol_of(&self, id: ConnectionId) -> Option<&dyn Protocol> {
        self.connections.get(id.0)?.protocol.as_deref()
    }

    /// The protocol of a live connection, mutably.
    pub(crate) fn protocol_of_mut(&mut self, id: ConnectionId) -> Option<&mut dyn Protocol> {
        self.connections.get_mut(id.0)?.protocol.as_deref_mut()
    }
}
