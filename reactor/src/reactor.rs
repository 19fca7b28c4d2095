//! The reactor: owns every socket, waits for readiness, does the I/O and calls the protocols.
//!
//! One turn is Twisted's three steps: run due timers, poll with a timeout computed from the
//! next deadline, dispatch. After dispatch, every connection that a callback touched is
//! settled once (flushed with one `writev`, closed, half-closed, told to pause or resume
//! writing), so writes made during a turn coalesce and leave in that same turn.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::event::Event;
use mio::{Events, Interest, Poll};
use slab::Slab;

use crate::context::Context;
use crate::delayed_call::TimerAction;
use crate::looping_call::Loops;
use crate::protocol::{AnyClientFactory, Protocol};
use crate::remote::{PendingWork, Remote, ThreadPool, WAKER_TOKEN};
use crate::shutdown::{Shutdown, SIGNAL_TOKEN};
use crate::slot::{flag, Connection, ConnectionId, Key, Listener, Slot, SlotKind};
use crate::stream::Stream;
use crate::tcp::Outgoing;
use crate::time::{Clock, ManualClock, TimerKey, TimerQueue};
use crate::write_queue::{BufferPool, WriteQueue};
use crate::{ConnectError, DisconnectReason};

/// Size of the one read buffer all connections share. A whole UDP datagram fits; for TCP it
/// is large enough that one `read` usually drains the socket.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Bytes one connection may read per turn before the others get their go (fairness).
const READ_BUDGET_PER_TURN: usize = 4 * READ_BUFFER_SIZE;

/// Events taken from one `epoll_wait`.
const EVENTS_CAPACITY: usize = 1024;

/// Default write-queue watermarks (asyncio's defaults).
pub(crate) const DEFAULT_HIGH_WATER: u32 = 64 * 1024;
pub(crate) const DEFAULT_LOW_WATER: u32 = 16 * 1024;

/// The event loop. Create one per thread with [`Reactor::new`], add listening ports and
/// outgoing connections, then [`run`](Reactor::run) it (or drive it turn by turn with
/// [`iterate`](Reactor::iterate) from another loop).
///
/// The reactor is single-threaded (`!Send` protocols are welcome): everything it calls runs on
/// the thread that runs it. Dropping it closes every socket and drops every protocol and
/// factory without calling them.
pub struct Reactor {
    pub(crate) poll: Poll,
    events: Events,
    pub(crate) slots: Slab<Slot>,
    next_generation: u32,
    pub(crate) read_buf: Vec<u8>,
    /// Connections a callback touched this turn, to settle before the turn ends.
    dirty: Vec<Key>,
    /// Sockets with work left that no new readiness edge will announce: a connection over its
    /// read budget or whose reading was resumed, a listener with a backlog left.
    pub(crate) ready: VecDeque<Key>,
    /// Connect attempts that failed inside `connect_tcp`, reported on the next turn.
    pub(crate) failed_connects: VecDeque<(Box<dyn AnyClientFactory>, ConnectError)>,
    pub(crate) timers: TimerQueue<TimerAction>,
    /// The factories of outgoing connections, kept beside the slab rather than in every slot
    /// so that accepted connections do not pay for the field.
    pub(crate) outgoing: HashMap<Key, Outgoing>,
    pub(crate) clock: Clock,
    pub(crate) loops: Loops,
    /// The pending timers of each connection that has any, cancelled when it closes.
    pub(crate) connection_timers: HashMap<Key, Vec<TimerKey>>,
    pub(crate) remote: Arc<Remote>,
    pub(crate) pending_work: PendingWork,
    pub(crate) thread_pool: ThreadPool,
    pub(crate) shutdown: Shutdown,
    /// Drained write buffers for reuse by any connection.
    pub(crate) buffers: BufferPool,
    stop_requested: bool,
    in_turn: bool,
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.remote.mark_gone();
    }
}

impl AsRawFd for Reactor {
    /// The epoll descriptor: readable whenever the reactor has events to dispatch. Another
    /// loop can wait on it (with [`next_timeout`](Reactor::next_timeout) as its timeout) and
    /// then call `iterate(Duration::ZERO)`.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl AsFd for Reactor {
    /// The epoll descriptor; see the `AsRawFd` implementation.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poll.registry().as_fd()
    }
}

impl Reactor {
    /// Creates a reactor with its own epoll instance, on the monotonic clock.
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_clock_source(Clock::Monotonic)
    }

    /// Creates a reactor whose time moves only when `clock` is advanced: timers become due
    /// only through [`ManualClock::advance`], so tests of timer-driven logic need no sleeps.
    /// All of the reactor's own timers follow that clock too (connect timeouts, the accept
    /// back-off, the shutdown timeout), while sockets stay real.
    pub fn with_clock(clock: ManualClock) -> io::Result<Reactor> {
        Reactor::with_clock_source(Clock::Manual(clock))
    }

    fn with_clock_source(clock: Clock) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            slots: Slab::new(),
            next_generation: 0,
            read_buf: vec![0; READ_BUFFER_SIZE],
            dirty: Vec::new(),
            ready: VecDeque::new(),
            failed_connects: VecDeque::new(),
            timers: TimerQueue::default(),
            outgoing: HashMap::new(),
            clock,
            loops: Loops::default(),
            connection_timers: HashMap::new(),
            remote: Remote::new(waker),
            pending_work: PendingWork::new(),
            thread_pool: ThreadPool::default(),
            shutdown: Shutdown::default(),
            buffers: BufferPool::default(),
            stop_requested: false,
            in_turn: false,
        })
    }

    /// Runs turns until [`stop`](Reactor::stop) is called, then returns (after finishing the
    /// turn in which it was called, so writes made in it are flushed).
    ///
    /// Errors only if polling itself fails; socket errors close their connection instead.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.iterate(None)?;
            if std::mem::take(&mut self.stop_requested) {
                return Ok(());
            }
        }
    }

    /// Asks [`run`](Reactor::run) to return at the end of the current turn. Callable from any
    /// callback. If `run` is not running, the next `run` returns after one turn.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Runs turns until `deadline` passes or [`stop`](Reactor::stop) is called, whichever
    /// comes first: for a host loop that gives the reactor a slice of time. Returns true if
    /// it returned for a `stop` (which it then consumes, as `run` does), false at the
    /// deadline.
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(self.now());
            self.iterate(left)?;
            if std::mem::take(&mut self.stop_requested) {
                return Ok(true);
            }
            if self.now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// How long the reactor may wait before its next turn has work: zero when work is
    /// pending, the time to the next timer, or `None` when only I/O can bring work. With the
    /// reactor's fd ([`AsRawFd`]) this lets another loop wait on the reactor's behalf.
    pub fn next_timeout(&mut self) -> Option<Duration> {
        self.poll_timeout(None)
    }

    /// Whether [`stop`](Reactor::stop) was called and `run` has not yet returned for it.
    /// Hosts that drive the reactor with [`iterate`](Reactor::iterate) check this.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// Runs one turn: due timers, one poll that waits at most `timeout` (`None`: until
    /// something happens or the next timer is due), then dispatch. The primitive for
    /// embedding the reactor in another loop: `iterate(Duration::ZERO)` never blocks,
    /// `iterate(Duration::from_millis(10))` waits at most 10 ms, `iterate(None)` waits for
    /// the next event or timer.
    ///
    /// Calling it from inside a reactor callback is an error (`io::ErrorKind::Other`).
    pub fn iterate(&mut self, timeout: impl Into<Option<Duration>>) -> io::Result<()> {
        let timeout = timeout.into();
        if self.in_turn {
            return Err(io::Error::other(
                "Reactor::iterate called from inside a reactor callback",
            ));
        }
        self.in_turn = true;
        let result = self.turn(timeout);
        self.in_turn = false;
        result
    }

    /// Poll, dispatch, then timers: the poll sleeps at most until the next deadline, and the
    /// timers it woke for fire in the same turn, so `iterate(None)` returns once it has done
    /// something.
    fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let carried_over = self.ready.len();
        let timeout = self.poll_timeout(timeout);
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = match self.poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        };
        if polled.is_ok() {
            for event in events.iter() {
                self.dispatch(event);
            }
        }
        self.events = events;
        polled?;
        self.run_ready(carried_over);
        self.report_failed_connects();
        self.run_due_timers();
        self.settle_dirty();
        if self.shutdown.draining {
            self.finish_shutdown_if_drained();
        }
        Ok(())
    }

    /// How long this turn's poll may sleep: not at all when work is waiting, else until the
    /// next timer (on a manual clock, timers never shorten the wait: only `advance` moves
    /// time), capped by `limit`.
    fn poll_timeout(&mut self, limit: Option<Duration>) -> Option<Duration> {
        let urgent = !self.ready.is_empty()
            || !self.failed_connects.is_empty()
            || !self.dirty.is_empty()
            || self.stop_requested;
        if urgent {
            return Some(Duration::ZERO);
        }
        let Some(next) = self.timers.next_deadline() else {
            return limit;
        };
        let until_next = next.saturating_duration_since(self.now());
        if until_next.is_zero() {
            Some(Duration::ZERO)
        } else if self.clock.is_manual() {
            limit
        } else {
            Some(limit.map_or(until_next, |limit| limit.min(until_next)))
        }
    }

    fn dispatch(&mut self, event: &Event) {
        match event.token() {
            WAKER_TOKEN => return self.run_remote_calls(),
            SIGNAL_TOKEN => return self.signals_received(),
            _ => {}
        }
        let key = Key::from_token(event.token());
        let Some(slot) = self.slots.get_mut(key.index as usize) else {
            return;
        };
        if slot.generation != key.generation {
            return; // a stale event for a socket closed earlier in this batch
        }
        match &mut slot.kind {
            SlotKind::Listener(_) => self.accept_ready(key),
            SlotKind::Connection(conn) if conn.has(flag::CONNECTING) => {
                self.connect_ready(key);
                // The edge that completed the connect may also carry the peer's first bytes
                // (a server that speaks first): no other edge will announce them.
                if self
                    .connection(key)
                    .is_some_and(|c| !c.has(flag::CONNECTING))
                {
                    self.connection_event(key, event);
                }
            }
            SlotKind::Connection(_) => self.connection_event(key, event),
            SlotKind::Reader(_) => self.reader_ready(key),
        }
    }

    /// Readiness on an established connection: note it, read, surface errors.
    fn connection_event(&mut self, key: Key, event: &Event) {
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
            !conn.queue.is_empty()
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
    fn read_ready(&mut self, key: Key) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET_PER_TURN;
        while let Some(conn) = self.connection_mut(key).filter(|c| c.wants_read()) {
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
                    if n < buf.len() && !conn.has(flag::READ_CLOSED) {
                        conn.clear(flag::READABLE);
                    }
                    self.callback(key, |p, cx| p.data_received(cx, &buf[..n]));
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
    fn check_socket_error(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        match conn.socket.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => self.close_connection(key, DisconnectReason::from_io(e)),
        }
    }

    /// Puts a connection with bytes left to read on the ready list, once.
    pub(crate) fn queue_read(&mut self, key: Key) {
        if let Some(conn) = self.connection_mut(key) {
            if !conn.has(flag::QUEUED_READ) {
                conn.set(flag::QUEUED_READ);
                self.ready.push_back(key);
            }
        }
    }

    /// Serves the first `count` entries of the ready list; entries added meanwhile wait for
    /// the next turn, so one busy socket cannot hold the loop.
    fn run_ready(&mut self, count: usize) {
        for _ in 0..count {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            match self.slots.get_mut(key.index as usize) {
                Some(slot) if slot.generation == key.generation => match &mut slot.kind {
                    SlotKind::Listener(_) => self.accept_ready(key),
                    SlotKind::Connection(conn) => {
                        conn.clear(flag::QUEUED_READ);
                        self.read_ready(key);
                    }
                    SlotKind::Reader(_) => self.reader_ready(key),
                },
                _ => {}
            }
        }
    }

    /// Calls into a connection's protocol with a context for it. The protocol is taken out of
    /// its slot for the call, so the context can borrow the whole reactor; a connection whose
    /// protocol is already out (in a callback) is never re-entered.
    pub(crate) fn callback(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut dyn Protocol, &mut Context<'_>),
    ) {
        let Some(mut protocol) = self.connection_mut(key).and_then(|c| c.protocol.take()) else {
            return;
        };
        f(&mut *protocol, &mut Context::new(self, ConnectionId(key)));
        // Connections are only removed by the reactor between callbacks, so the slot is
        // still there; if not, the protocol is dropped with it.
        if let Some(conn) = self.connection_mut(key) {
            conn.protocol = Some(protocol);
        }
    }

    /// Records that a connection needs settling at the end of this turn.
    pub(crate) fn mark_dirty(&mut self, key: Key) {
        if let Some(conn) = self.connection_mut(key) {
            if !conn.has(flag::DIRTY) {
                conn.set(flag::DIRTY);
                self.dirty.push(key);
            }
        }
    }

    /// Settles every dirty connection, including those dirtied by callbacks made while
    /// settling (a `connection_lost` that broadcasts, a `resume_writing` that writes).
    fn settle_dirty(&mut self) {
        let mut batch = Vec::new();
        while !self.dirty.is_empty() {
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

    /// Carries out what callbacks asked of one connection: abort, flush, watermark
    /// callbacks, then the close or half-close that waited for the queue to drain.
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
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        if !conn.queue.is_empty() || conn.has(flag::ABORTING) {
            return; // the rest waits for writability; an abort asked meanwhile is settled next
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
    fn pause_writing_if_over_high_water(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        if !conn.has(flag::WRITING_PAUSED) && conn.queue.len() > conn.high_water as usize {
            conn.set(flag::WRITING_PAUSED);
            self.callback(key, |p, cx| p.pause_writing(cx));
        }
    }

    /// After the flush: a paused protocol whose queue drained to the low watermark resumes.
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
        let id = ConnectionId(key);
        match &reason {
            DisconnectReason::Error(_) => warn!("connection {id}: {reason}"),
            _ => debug!("connection {id}: {reason}"),
        }
        let memory_peer = match &conn.socket {
            Stream::Memory(peer) => Some(peer.clone()),
            Stream::Tcp(_) => None,
        };
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

    /// The connection at `key`, if `key` is not stale.
    pub(crate) fn connection_mut(&mut self, key: Key) -> Option<&mut Connection> {
        connection_in(&mut self.slots, key)
    }

    /// The connection at `key`, if `key` is not stale.
    pub(crate) fn connection(&self, key: Key) -> Option<&Connection> {
        match self.slots.get(key.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Connection(conn),
            }) if *generation == key.generation => Some(conn),
            _ => None,
        }
    }

    /// The listener at `key`, if `key` is not stale.
    pub(crate) fn listener_mut(&mut self, key: Key) -> Option<&mut Listener> {
        match self.slots.get_mut(key.index as usize) {
            Some(Slot {
                generation,
                kind: SlotKind::Listener(l),
            }) if *generation == key.generation => Some(l),
            _ => None,
        }
    }

    /// Puts a new socket in the slab under a fresh generation, registered for both
    /// interests once (edge-triggered: never re-registered).
    pub(crate) fn insert<S: mio::event::Source>(
        &mut self,
        mut socket: S,
        make: impl FnOnce(S) -> SlotKind,
    ) -> io::Result<Key> {
        let key = self.next_key()?;
        self.poll.registry().register(
            &mut socket,
            key.token(),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.insert_at(key, make(socket));
        Ok(key)
    }

    /// The key the next inserted slot gets.
    pub(crate) fn next_key(&self) -> io::Result<Key> {
        let index = u32::try_from(self.slots.vacant_key())
            .map_err(|_| io::Error::other("too many sockets"))?;
        Ok(Key {
            index,
            generation: self.next_generation,
        })
    }

    /// Fills the slot `next_key` named.
    pub(crate) fn insert_at(&mut self, key: Key, kind: SlotKind) {
        self.next_generation = self.next_generation.wrapping_add(1);
        let index = self.slots.insert(Slot {
            generation: key.generation,
            kind,
        });
        debug_assert_eq!(
            index, key.index as usize,
            "slab::vacant_key names the next insert"
        );
    }

    /// An established connection to an in-memory peer (the test harness), running
    /// `protocol`; `connection_made` has run when this returns.
    pub(crate) fn insert_memory(
        &mut self,
        peer: std::rc::Rc<std::cell::RefCell<crate::testing::MemoryPeer>>,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Key> {
        let key = self.next_key()?;
        let mut kind = Reactor::new_connection(Stream::Memory(peer), flag::WRITABLE);
        if let SlotKind::Connection(conn) = &mut kind {
            conn.protocol = Some(protocol);
        }
        self.insert_at(key, kind);
        self.callback(key, |p, cx| p.connection_made(cx));
        self.settle_dirty();
        Ok(key)
    }

    /// The protocol of a live connection, unless it is out of its slot in a callback.
    pub(crate) fn protocol_of(&self, key: Key) -> Option<&dyn Protocol> {
        self.connection(key)?.protocol.as_deref()
    }

    /// The protocol of a live connection, mutably.
    pub(crate) fn protocol_of_mut(&mut self, key: Key) -> Option<&mut dyn Protocol> {
        self.connection_mut(key)?.protocol.as_deref_mut()
    }

    /// A connection slot for a fresh socket: no protocol yet, empty queue, default watermarks.
    pub(crate) fn new_connection(socket: Stream, flags: u16) -> SlotKind {
        SlotKind::Connection(Connection {
            socket,
            flags,
            high_water: DEFAULT_HIGH_WATER,
            low_water: DEFAULT_LOW_WATER,
            protocol: None,
            queue: WriteQueue::default(),
        })
    }
}

/// The connection at `key` in `slots`, if `key` is not stale. A function of the slab alone,
/// so callers can borrow the reactor's other fields (the buffer pool) beside it.
pub(crate) fn connection_in(slots: &mut Slab<Slot>, key: Key) -> Option<&mut Connection> {
    match slots.get_mut(key.index as usize) {
        Some(Slot {
            generation,
            kind: SlotKind::Connection(conn),
        }) if *generation == key.generation => Some(conn),
        _ => None,
    }
}

/// Writes the queue while the socket takes it. Skips the syscall when the last write already
/// hit WouldBlock and no writable edge has come since.
fn flush(conn: &mut Connection, pool: &mut BufferPool) -> io::Result<()> {
    if conn.queue.is_empty() || !conn.has(flag::WRITABLE) || conn.has(flag::WRITE_SHUT) {
        return Ok(());
    }
    conn.queue.write_to(&mut conn.socket, pool)?;
    if !conn.queue.is_empty() {
        conn.clear(flag::WRITABLE);
    }
    Ok(())
}
