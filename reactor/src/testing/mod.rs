//! Testing protocols in memory, without sockets or sleeps: Twisted's `StringTransport` and
//! `task.Clock` in one.
//!
//! A [`TestReactor`] is a real [`Reactor`] on a [`ManualClock`] whose connections lead to
//! in-memory peers instead of sockets. Everything between the protocol and the peer is the
//! reactor's own code (write queue, flushing, watermarks, pause/resume, half-close, timers),
//! so a protocol tested here behaves as it will on a socket. A test feeds bytes, reads what the
//! protocol wrote, sees whether and how the connection closed, and advances time.
//!
//! [`Harness`] is the one-connection shorthand:
//!
//! ```
//! use std::time::Duration;
//! use torsion_reactor::testing::Harness;
//! use torsion_reactor::{Context, Protocol};
//!
//! /// Answers "pong" to anything, and hangs up after 30 s of silence.
//! struct Pong;
//!
//! impl Protocol for Pong {
//!     fn connection_made(&mut self, cx: &mut Context<'_>) {
//!         cx.call_later(Duration::from_secs(30), |_: &mut Pong, cx| cx.lose_connection());
//!     }
//!     fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
//!         cx.write(b"pong\n");
//!     }
//! }
//!
//! let mut h = Harness::new(Pong);
//! h.feed(b"ping\n");
//! assert_eq!(h.take_written(), b"pong\n");
//! h.advance(Duration::from_secs(29));
//! assert!(!h.is_closed());
//! h.advance(Duration::from_secs(1));
//! assert!(h.is_closed());
//! assert!(h.close_reason().unwrap().is_clean());
//! ```

use std::any::Any;
use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use crate::stream::Bits;
use crate::{ConnectionId, DisconnectReason, Factory, ManualClock, Protocol, Reactor};

mod memory;

pub(crate) use memory::{MemoryPeer, MemoryStream};

/// The longest [`TestReactor::run_pending`] waits for work in the thread pool to report back.
pub const THREAD_WORK_WAIT: Duration = Duration::from_secs(10);

/// One in-memory connection of a [`TestReactor`]: the test's end of it. Cheap to clone.
#[derive(Clone)]
pub struct TestConnection {
    id: ConnectionId,
    peer: Rc<RefCell<MemoryPeer>>,
}

impl TestConnection {
    /// The connection's id, as its protocol sees it.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Everything the protocol wrote (and the reactor flushed) since the last call.
    pub fn take_written(&self) -> Vec<u8> {
        std::mem::take(&mut self.peer.borrow_mut().outbound)
    }

    /// [`take_written`](TestConnection::take_written) as text (lossy UTF-8).
    pub fn take_text(&self) -> String {
        String::from_utf8_lossy(&self.take_written()).into_owned()
    }

    /// Whether the connection has closed (for any reason).
    pub fn is_closed(&self) -> bool {
        self.peer.borrow().reason.is_some()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<Ref<'_, DisconnectReason>> {
        Ref::filter_map(self.peer.borrow(), |p| p.reason.as_ref()).ok()
    }

    /// Whether the protocol half-closed (its write side is shut).
    pub fn is_write_shut(&self) -> bool {
        self.peer.borrow().write_shut
    }

    /// Makes the peer a slow reader: it takes `room` more bytes, then writes would block
    /// (so the queue grows and `pause_writing` fires). `None` takes everything again; the
    /// queued bytes then flush on the next [`TestReactor::run_pending`].
    pub fn set_write_room(&self, room: Option<usize>) {
        self.peer.borrow_mut().write_room = room;
    }
}

/// A reactor whose connections lead to in-memory peers, on a manual clock. See the module
/// documentation.
pub struct TestReactor {
    reactor: Reactor,
    clock: ManualClock,
    connections: Vec<TestConnection>,
    /// Protocols of closed connections, kept for inspection.
    closed: HashMap<ConnectionId, Box<dyn Protocol>>,
}

impl Default for TestReactor {
    fn default() -> Self {
        TestReactor::new()
    }
}

impl TestReactor {
    /// A test reactor on a fresh [`ManualClock`].
    ///
    /// # Panics
    /// If the system cannot create an epoll instance (out of file descriptors).
    pub fn new() -> TestReactor {
        let clock = ManualClock::new();
        let reactor =
            Reactor::with_clock(clock.clone()).expect("cannot create a reactor for a test");
        TestReactor {
            reactor,
            clock,
            connections: Vec::new(),
            closed: HashMap::new(),
        }
    }

    /// Opens an in-memory connection running `protocol`; its `connection_made` has run and
    /// what it wrote is flushed when this returns.
    pub fn connect<P: Protocol>(&mut self, protocol: P) -> TestConnection {
        self.connect_boxed(Box::new(protocol))
    }

    /// Opens an in-memory connection with a protocol built by `factory`, as a listening port
    /// would; `None` if the factory refuses it.
    pub fn connect_from<F: Factory>(&mut self, factory: &mut F) -> Option<TestConnection> {
        let peer_port = self.next_peer_port();
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, peer_port));
        let protocol = factory.build_protocol(peer.into())?;
        Some(self.connect_boxed(Box::new(protocol)))
    }

    fn next_peer_port(&self) -> u16 {
        40_000u16.wrapping_add(self.connections.len() as u16)
    }

    fn connect_boxed(&mut self, protocol: Box<dyn Protocol>) -> TestConnection {
        let peer = Rc::new(RefCell::new(MemoryPeer::new(self.next_peer_port())));
        let key = self
            .reactor
            .insert_memory(peer.clone(), protocol)
            .expect("the slab has room for a test connection");
        let connection = TestConnection {
            id: ConnectionId(key),
            peer,
        };
        self.connections.push(connection.clone());
        self.run_pending();
        connection
    }

    /// The peer sends `data`: the protocol receives it (as the reactor would deliver it from
    /// a socket: at most one read buffer per `data_received`, not while reading is paused),
    /// and whatever follows from it runs.
    pub fn feed(&mut self, connection: &TestConnection, data: &[u8]) {
        connection.peer.borrow_mut().inbound.extend(data);
        self.mark_readable(connection);
    }

    /// The peer half-closes: the protocol gets `eof_received` once it has read everything
    /// fed before.
    pub fn feed_eof(&mut self, connection: &TestConnection) {
        connection.peer.borrow_mut().inbound_eof = true;
        self.mark_readable(connection);
    }

    /// The peer resets the connection: it closes with [`DisconnectReason::Reset`].
    pub fn reset(&mut self, connection: &TestConnection) {
        connection.peer.borrow_mut().inbound_error = Some(io::ErrorKind::ConnectionReset);
        // A socket reports a reset with an error event even while reading is paused (the
        // reactor then asks `SO_ERROR`); a reading connection sees it on its next read.
        let paused = self
            .reactor
            .connections()
            .get(connection.id.0)
            .is_some_and(|conn| !conn.may_read());
        if paused {
            self.reactor.check_socket_error(connection.id.0);
        }
        self.mark_readable(connection);
    }

    fn mark_readable(&mut self, connection: &TestConnection) {
        let key = connection.id.0;
        if let Some(conn) = self.reactor.connections().get_mut(key) {
            conn.bits.set(Bits::READABLE);
            if conn.may_read() {
                self.reactor.queue_read(key);
            }
            self.reactor.connections().mark_dirty(key);
        }
        self.run_pending();
    }

    /// Moves the clock forward by `by` and runs every timer that became due (and what they
    /// cause), as Twisted's `Clock.advance`.
    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
        self.run_pending();
    }

    /// Runs reactor turns until nothing is left to do now: reads the reactor could still do,
    /// due timers, writes to flush (to peers with room), calls from other threads, and work
    /// in the thread pool ([`Reactor::call_in_thread`]): its results are waited for (on the
    /// real clock, at most [`THREAD_WORK_WAIT`] in all) and handled in turn, so a handler
    /// that reads its files there answers within one `run_pending` as one that does not.
    pub fn run_pending(&mut self) {
        let deadline = std::time::Instant::now() + THREAD_WORK_WAIT;
        self.run_ready();
        while self.reactor.work_in_threads() > 0 && std::time::Instant::now() < deadline {
            if let Err(e) = self.reactor.iterate(Duration::from_millis(5)) {
                panic!("reactor turn failed in a test: {e}");
            }
            self.run_ready();
        }
        self.collect_closed();
    }

    /// Runs turns until nothing is left to do without waiting.
    fn run_ready(&mut self) {
        for connection in &self.connections {
            let connections = self.reactor.connections();
            if let Some(conn) = connections.get_mut(connection.id.0) {
                if conn.has_output() {
                    conn.bits.set(Bits::WRITABLE);
                    connections.mark_dirty(connection.id.0);
                }
            }
        }
        // Bounded: a protocol that keeps itself busy forever fails the test, not hangs it.
        for _ in 0..10_000 {
            if let Err(e) = self.reactor.iterate(Duration::ZERO) {
                panic!("reactor turn failed in a test: {e}");
            }
            if self.reactor.next_timeout() != Some(Duration::ZERO) {
                break;
            }
        }
    }

    fn collect_closed(&mut self) {
        for connection in &self.connections {
            if let Some(protocol) = connection.peer.borrow_mut().lost_protocol.take() {
                self.closed.insert(connection.id, protocol);
            }
        }
        self.connections.retain(|c| !c.is_closed());
    }

    /// The protocol of `connection`, live or closed, if it is a `P`.
    pub fn protocol<P: Protocol>(&self, connection: &TestConnection) -> Option<&P> {
        let protocol = match self.reactor.protocol_of(connection.id) {
            Some(protocol) => protocol,
            None => self.closed.get(&connection.id)?.as_ref(),
        };
        (protocol as &dyn Any).downcast_ref::<P>()
    }

    /// The protocol of `connection`, mutably, if it is a `P`.
    pub fn protocol_mut<P: Protocol>(&mut self, connection: &TestConnection) -> Option<&mut P> {
        let protocol = match self.reactor.protocol_of_mut(connection.id) {
            Some(protocol) => protocol,
            None => self.closed.get_mut(&connection.id)?.as_mut(),
        };
        (protocol as &mut dyn Any).downcast_mut::<P>()
    }

    /// The reactor, for anything else (scheduling calls, writing by id, stopping).
    pub fn reactor(&mut self) -> &mut Reactor {
        &mut self.reactor
    }

    /// The manual clock the reactor runs on.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }
}

/// One protocol on one in-memory connection: the shorthand for most protocol unit tests.
/// See the module documentation for an example.
pub struct Harness<P: Protocol> {
    test: TestReactor,
    connection: TestConnection,
    protocol: PhantomData<P>,
}

impl<P: Protocol> Harness<P> {
    /// Connects `protocol` to an in-memory peer; `connection_made` has run.
    pub fn new(protocol: P) -> Harness<P> {
        let mut test = TestReactor::new();
        let connection = test.connect(protocol);
        Harness {
            test,
            connection,
            protocol: PhantomData,
        }
    }

    /// The peer sends `data`; see [`TestReactor::feed`].
    pub fn feed(&mut self, data: &[u8]) {
        self.test.feed(&self.connection, data);
    }

    /// The peer half-closes; see [`TestReactor::feed_eof`].
    pub fn feed_eof(&mut self) {
        self.test.feed_eof(&self.connection);
    }

    /// The peer resets the connection.
    pub fn reset(&mut self) {
        self.test.reset(&self.connection);
    }

    /// Everything the protocol wrote since the last call.
    pub fn take_written(&mut self) -> Vec<u8> {
        self.connection.take_written()
    }

    /// [`take_written`](Harness::take_written) as text (lossy UTF-8).
    pub fn take_text(&mut self) -> String {
        self.connection.take_text()
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.connection.is_closed()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<Ref<'_, DisconnectReason>> {
        self.connection.close_reason()
    }

    /// Moves the clock forward and runs what became due.
    pub fn advance(&mut self, by: Duration) {
        self.test.advance(by);
    }

    /// The protocol, live or after its connection closed.
    pub fn protocol(&self) -> &P {
        self.test
            .protocol(&self.connection)
            .expect("the harness's protocol is a P and is only out of its slot during callbacks")
    }

    /// The protocol, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        let connection = self.connection.clone();
        self.test
            .protocol_mut(&connection)
            .expect("the harness's protocol is a P and is only out of its slot during callbacks")
    }

    /// The connection, for what the shorthands do not cover (write room, half-close).
    pub fn connection(&self) -> &TestConnection {
        &self.connection
    }

    /// The test reactor underneath.
    pub fn test_reactor(&mut self) -> &mut TestReactor {
        &mut self.test
    }
}

#[cfg(test)]
mod tests;
