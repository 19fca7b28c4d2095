//! One connection's I/O: reading it dry when it is readable, settling it at the end of a turn
//! (flush with one `writev`, watermark callbacks, the close or half-close that waited for the
//! queue), and closing it with its reason.

use std::io::{self, Read};

use log::{debug, warn};
use mio::event::Event;

use crate::context::Context;
use crate::reactor::{connection_in, READ_BUDGET_PER_TURN};
use crate::slot::{flag, Connection, ConnectionId, Key, SlotKind};
use crate::tls::io::{close_notify, flush_tls};
use crate::write_queue::BufferPool;
use crate::{DisconnectReason, Reactor};

/// Rounds of settling per turn; see `settle_dirty`.
const SETTLE_ROUNDS: usize = 8;

/// Bytes queued after a full read from which the connection is settled before its next read
/// (see `settle_if_bulk`): the plaintext of one full TLS record. A 64 KiB read of TLS records
/// decrypts to a little less than 64 KiB (its last record is cut short), so a threshold of a
/// whole read would settle a TLS bulk echo only every other read.
const SETTLE_AFTER_READ: usize = 16 * 1024;

impl Reactor {
    /// Readiness on an established connection: note it, read, surface errors.
    pub(crate) fn connection_event(&mut self, key: Key, event: &Event) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() {
            conn.set(flag::READABLE);
        }
        if event.is_read_closed() {
            conn.set(flag::READ_CLOSED);
        }
        let flush_pending = (event.is_writable() || event.is_write_closed()) && {
            conn.set(flag::WRITABLE);
            conn.has_output()
        };
        // A connection on the ready list is read from there this turn; reading it here too
        // would give it two read budgets in one turn.
        let queued_read = conn.has(flag::QUEUED_READ);
        if flush_pending {
            self.mark_dirty(key);
        }
        if !queued_read {
            self.read_ready(key);
        }
        if event.is_error() {
            self.check_socket_error(key);
        }
    }

    /// Reads until WouldBlock, a short read, EOF, a pause, or the turn's budget, handing each
    /// chunk to the protocol.
    pub(crate) fn read_ready(&mut self, key: Key) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET_PER_TURN;
        while let Some(conn) = self.connection_mut(key) {
            if conn.socket.tls().is_some() {
                // A TLS connection, or one that `start_tls` just switched over (whose
                // handed-back bytes are read even with the socket drained).
                self.read_buf = buf;
                return self.read_ready_tls(key);
            }
            if !conn.wants_read() {
                break;
            }
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    conn.clear(flag::READABLE);
                    conn.set(flag::EOF);
                    debug!("connection {} received EOF", ConnectionId(key));
                    self.callback(key, |p, cx| p.eof_received(cx));
                    self.mark_dirty(key);
                }
                Ok(n) => {
                    // A short read drained the socket: the next byte brings a new edge. Not
                    // so once the FIN is in: no edge follows it, so read on to see EOF.
                    let drained = n < buf.len() && !conn.has(flag::READ_CLOSED);
                    if drained {
                        conn.clear(flag::READABLE);
                    }
                    self.callback(key, |p, cx| p.data_received(cx, &buf[..n]));
                    if !drained {
                        self.settle_if_bulk(key);
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.queue_read(key);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.clear(flag::READABLE),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
            }
        }
        self.read_buf = buf;
    }

    /// Closes a connection whose socket reports an error (`EPOLLERR`) that no read surfaced,
    /// e.g. a reset while reading is paused.
    pub(crate) fn check_socket_error(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        match conn.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
        }
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
            if self.dirty.is_empty() {
                break;
            }
            std::mem::swap(&mut batch, &mut self.dirty);
            for key in batch.drain(..) {
                self.settle(key);
            }
        }
        // Keep the longer allocation for the next turn.
        if batch.capacity() > self.dirty.capacity() {
            self.dirty = batch;
        }
    }

    /// Called after a full read, before the next: settles the connection at once, rather
    /// than at the end of the turn, if it has [`SETTLE_AFTER_READ`] bytes or more queued (a
    /// bulk transfer, where little is gained by waiting to coalesce). The bytes just queued
    /// are then still in the CPU's cache when the kernel copies them, and the queue stays at
    /// about one read's worth instead of growing by a turn's reads. Short reads (the common
    /// case for small messages) skip the check: the end of the turn comes next.
    pub(crate) fn settle_if_bulk(&mut self, key: Key) {
        if self
            .connection(key)
            .is_some_and(|c| c.queue.len() >= SETTLE_AFTER_READ)
        {
            self.settle(key);
        }
    }

    /// Carries out what callbacks asked of one connection: abort, flush, watermark
    /// callbacks, then the close or half-close that waited for the queue to drain.
    // Forced inline, with its three steps below, into its two callers (`settle_dirty`, the
    // hot one, and `settle_if_bulk`): left to the compiler, the second caller made it an
    // out-of-line call, 18 to 34 more instructions per echoed 64-byte message in callgrind.
    #[inline(always)]
    fn settle(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        conn.clear(flag::DIRTY);
        if conn.has(flag::CONNECTING) {
            return;
        }
        if conn.has(flag::ABORTING) {
            self.close_connection(key, DisconnectReason::Aborted);
            return;
        }
        self.pause_writing_if_over_high_water(key);
        let Some(conn) = connection_in(&mut self.slots, key) else {
            return;
        };
        if let Err(e) = flush(conn, &mut self.buffers) {
            self.close_connection(key, DisconnectReason::from_io(e));
            return;
        }
        self.resume_writing_if_under_low_water(key);
        self.close_if_drained(key);
    }

    /// Once nothing waits to be written: the close or half-close that waited for the queue
    /// (after a TLS connection's `close_notify`).
    #[inline(always)]
    fn close_if_drained(&mut self, key: Key) {
        let Some(conn) = connection_in(&mut self.slots, key) else {
            return;
        };
        if conn.has_output() || conn.has(flag::ABORTING | flag::HANDSHAKING) {
            // The rest waits for writability; an abort asked meanwhile is settled next; a
            // close asked during a TLS handshake waits for its end.
            return;
        }
        let write_side_ends = conn.has(flag::CLOSING)
            || conn.has(flag::SHUTDOWN_REQUESTED) && !conn.has(flag::WRITE_SHUT);
        if write_side_ends {
            match close_notify(conn, &mut self.buffers) {
                Ok(true) => {}
                Ok(false) => return, // close_notify waits for writability
                Err(e) => return self.close_connection(key, DisconnectReason::from_io(e)),
            }
        }
        if conn.has(flag::CLOSING) {
            self.close_connection(key, DisconnectReason::Closed);
        } else if conn.has(flag::SHUTDOWN_REQUESTED) && !conn.has(flag::WRITE_SHUT) {
            conn.set(flag::WRITE_SHUT);
            match conn.socket.shutdown_write() {
                Ok(()) if conn.has(flag::EOF) => {
                    self.close_connection(key, DisconnectReason::Closed)
                }
                Ok(()) => debug!("connection {} half-closed", ConnectionId(key)),
                Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
            }
        } else if conn.has(flag::WRITE_SHUT) && conn.has(flag::EOF) {
            self.close_connection(key, DisconnectReason::Closed);
        }
    }

    /// Before the flush: the callbacks of this turn queued more than the high watermark, so
    /// the protocol is told to pause (what it would have heard had each write gone to the
    /// kernel at once, as in asyncio). Judged before the flush so that a producer whose
    /// writes the kernel swallows whole still hears `pause_writing` and then
    /// `resume_writing`, its cue to produce more.
    #[inline(always)]
    fn pause_writing_if_over_high_water(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        if conn.has(flag::HANDSHAKING) {
            return; // no protocol callback before `connection_made`; judged again after it
        }
        if !conn.has(flag::WRITING_PAUSED) && conn.queue.len() > conn.high_water as usize {
            conn.set(flag::WRITING_PAUSED);
            self.callback(key, |p, cx| p.pause_writing(cx));
        }
    }

    /// After the flush: a paused protocol whose queue drained to the low watermark resumes.
    #[inline(always)]
    fn resume_writing_if_under_low_water(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        if conn.has(flag::WRITING_PAUSED) && conn.queue.len() <= conn.low_water as usize {
            conn.clear(flag::WRITING_PAUSED);
            self.callback(key, |p, cx| p.resume_writing(cx));
        }
    }

    /// Removes a connection, closes its socket, and tells its protocol (and client factory)
    /// why. Only ever called between callbacks.
    pub(crate) fn close_connection(&mut self, key: Key, reason: DisconnectReason) {
        let Some(mut conn) = self.remove_connection(key) else {
            return;
        };
        if conn.has(flag::HANDSHAKING) {
            return self.handshake_abandoned(key, conn, reason);
        }
        let id = ConnectionId(key);
        match &reason {
            DisconnectReason::Error(_) | DisconnectReason::Tls(_) => {
                warn!("connection {id}: {reason}")
            }
            _ => debug!("connection {id}: {reason}"),
        }
        let memory_peer = conn.socket.memory_peer();
        // Close the socket before the callbacks, so the peer sees it whatever they do.
        drop(conn.socket);
        let mut protocol = conn.protocol.take();
        if let Some(protocol) = protocol.as_mut() {
            protocol.connection_lost(&mut Context::new(self, id), &reason);
        }
        if let Some(mut outgoing) = self.outgoing.remove(&key) {
            outgoing.factory.lost(self, &reason);
        }
        if let Some(peer) = memory_peer {
            // The harness keeps the protocol so a test can still inspect it.
            peer.borrow_mut().closed(reason, protocol);
        }
    }

    /// Takes a connection out of the slab and the poll, cancelling its timers.
    pub(crate) fn remove_connection(&mut self, key: Key) -> Option<Connection> {
        self.connection_mut(key)?;
        self.cancel_connection_timers(key);
        let slot = self.slots.remove(key.index as usize);
        let SlotKind::Connection(mut conn) = slot.kind else {
            return None;
        };
        let deregistered = match conn.socket.tcp_mut() {
            Some(socket) => self.poll.registry().deregister(socket),
            None => Ok(()),
        };
        if let Err(e) = deregistered {
            debug!("deregistering connection {}: {e}", ConnectionId(key));
        }
        Some(conn)
    }
}

/// Writes the queue while the socket takes it. Skips the syscall when the last write already
/// hit WouldBlock and no writable edge has come since.
fn flush(conn: &mut Connection, pool: &mut BufferPool) -> io::Result<()> {
    if conn.socket.tls().is_some() {
        return flush_tls(conn, pool);
    }
    if conn.queue.is_empty() || !conn.has(flag::WRITABLE) || conn.has(flag::WRITE_SHUT) {
        return Ok(());
    }
    conn.queue.write_to(&mut conn.socket, pool)?;
    if !conn.queue.is_empty() {
        conn.clear(flag::WRITABLE);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use super::SETTLE_ROUNDS;
    use crate::reactor::READ_BUFFER_SIZE;
    use crate::testing::TestReactor;
    use crate::{Context, Protocol};

    /// Starts producing 100 KiB per `resume_writing` once its timer fires, `left` times.
    struct Producer {
        resumes: Rc<Cell<usize>>,
        left: usize,
    }

    impl Producer {
        fn produce(&mut self, cx: &mut Context<'_>) {
            if self.left > 0 {
                self.left -= 1;
                cx.write(&[7; 100 * 1024]);
            }
        }
    }

    impl Protocol for Producer {
        fn connection_made(&mut self, cx: &mut Context<'_>) {
            cx.call_later(Duration::from_secs(1), |this: &mut Producer, cx| {
                this.produce(cx)
            });
        }
        fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
        fn resume_writing(&mut self, cx: &mut Context<'_>) {
            self.resumes.set(self.resumes.get() + 1);
            self.produce(cx);
        }
    }

    /// Echoes, noting how many bytes were still queued when each chunk arrived.
    struct NotingEcho {
        queued_on_arrival: Rc<RefCell<Vec<usize>>>,
    }

    impl Protocol for NotingEcho {
        fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
            self.queued_on_arrival.borrow_mut().push(cx.queued_bytes());
            cx.write(data);
        }
    }

    #[test]
    fn a_bulk_echo_is_flushed_read_by_read_not_at_the_end_of_the_turn() {
        let mut test = TestReactor::new();
        let queued = Rc::new(RefCell::new(Vec::new()));
        let connection = test.connect(NotingEcho {
            queued_on_arrival: queued.clone(),
        });
        let data: Vec<u8> = (0..3 * READ_BUFFER_SIZE + 100).map(|i| i as u8).collect();
        test.feed(&connection, &data);
        assert_eq!(connection.take_written(), data);
        assert_eq!(
            *queued.borrow(),
            [0, 0, 0, 0],
            "each read's echo left before the next"
        );
    }

    #[test]
    fn a_bulk_echo_the_peer_does_not_take_stays_queued_in_order() {
        let mut test = TestReactor::new();
        let queued = Rc::new(RefCell::new(Vec::new()));
        let connection = test.connect(NotingEcho {
            queued_on_arrival: queued.clone(),
        });
        connection.set_write_room(Some(1000));
        let data: Vec<u8> = (0..2 * READ_BUFFER_SIZE).map(|i| (i % 251) as u8).collect();
        test.feed(&connection, &data);
        assert_eq!(*queued.borrow(), [0, READ_BUFFER_SIZE - 1000]);
        assert_eq!(
            test.reactor().queued_bytes(connection.id()),
            data.len() - 1000
        );
        connection.set_write_room(None);
        test.run_pending();
        assert_eq!(connection.take_written(), data);
    }

    #[test]
    fn a_producer_the_kernel_keeps_up_with_cannot_hold_a_turn() {
        let mut test = TestReactor::new();
        let resumes = Rc::new(Cell::new(0));
        let connection = test.connect(Producer {
            resumes: resumes.clone(),
            left: 100,
        });
        test.clock().advance(Duration::from_secs(1));
        test.reactor().iterate(Duration::ZERO).unwrap();
        assert!(
            (1..=SETTLE_ROUNDS).contains(&resumes.get()),
            "{} pause/resume cycles in one turn",
            resumes.get()
        );
        test.run_pending();
        assert_eq!(connection.take_written().len(), 100 * 100 * 1024);
    }
}
