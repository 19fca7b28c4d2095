//! The reactor: owns every socket, waits for readiness, does the I/O and calls the protocols.
//!
//! One turn is Twisted's three steps, in the order that lets `iterate` return once it has
//! done something: poll with a timeout computed from the next deadline, dispatch, run the
//! timers that are due. Then every connection that a callback touched is settled once
//! (`connection.rs`: flushed with one `writev`, closed, half-closed, told to pause or resume
//! writing), so writes made during a turn coalesce and leave in that same turn.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use crate::ConnectError;

/// Size of the one read buffer all connections share. A whole UDP datagram fits; for TCP it
/// is large enough that one `read` usually drains the socket.
pub(crate) const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Bytes one connection may read per turn before the others get their go (fairness).
pub(crate) const READ_BUDGET_PER_TURN: usize = 4 * READ_BUFFER_SIZE;

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
    pub(crate) dirty: Vec<Key>,
    /// Sockets with work left that no new readiness edge will announce: a connection over its
    /// read budget or whose reading was resumed, a listener with a backlog left.
    pub(crate) ready: VecDeque<Key>,
    /// Connect attempts that failed inside `connect`, reported on the next turn.
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

    /// Runs one turn: one poll that waits at most `timeout` (`None`: until something happens
    /// or the next timer is due), dispatch, then the timers that are due. The primitive for
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
        // What the host asked between turns (writes, closes by id) is carried out first, so
        // a close asked before a timer is due beats the timer.
        self.settle_dirty();
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
            SlotKind::Udp(_) => self.udp_ready(key, event.is_writable()),
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
                    SlotKind::Udp(_) => self.udp_ready(key, false),
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
        let mut kind = Reactor::new_connection(Stream::memory(peer), flag::WRITABLE);
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
