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
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use mio::{Registry, Token};

use crate::stream::{read_socket, Bits, Fault, Input, ReadState, Stream};
use crate::{ConnectionId, DisconnectReason, Factory, ManualClock, Protocol, Reactor};

/// The far end of an in-memory connection: what the protocol will read, what it wrote.
pub(crate) struct MemoryPeer {
    inbound: VecDeque<u8>,
    inbound_eof: bool,
    pub(crate) inbound_error: Option<io::ErrorKind>,
    outbound: Vec<u8>,
    /// Bytes the peer takes before writes would block; `None`: no limit.
    write_room: Option<usize>,
    pub(crate) write_shut: bool,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    reason: Option<DisconnectReason>,
    /// The protocol, handed over when the connection closes.
    lost_protocol: Option<Box<dyn Protocol>>,
}

impl MemoryPeer {
    fn new(peer_port: u16) -> MemoryPeer {
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

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.borrow().peer_addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.0.borrow().local_addr)
    }

    fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        Some(self.0.clone())
    }
}

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
        let protocol = factory.build_protocol(peer)?;
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
    /// due timers, writes to flush (to peers with room), calls from other threads.
    pub fn run_pending(&mut self) {
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
        self.collect_closed();
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
mod tests {
    use super::*;
    use crate::Context;

    /// Echoes, records what it saw, and follows flow control like a good server.
    #[derive(Default)]
    struct Recorder {
        received: Vec<u8>,
        events: Vec<String>,
    }

    impl Protocol for Recorder {
        fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
            self.received.extend_from_slice(data);
            cx.write(data);
        }
        fn eof_received(&mut self, cx: &mut Context<'_>) {
            self.events.push("eof".into());
            cx.write(b"bye");
            cx.lose_connection();
        }
        fn pause_writing(&mut self, cx: &mut Context<'_>) {
            self.events.push("pause".into());
            cx.pause_reading();
        }
        fn resume_writing(&mut self, cx: &mut Context<'_>) {
            self.events.push("resume".into());
            cx.resume_reading();
        }
        fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
            self.events
                .push(format!("lost clean={}", reason.is_clean()));
        }
    }

    #[test]
    fn bytes_fed_reach_the_protocol_and_its_writes_reach_the_peer() {
        let mut h = Harness::new(Recorder::default());
        h.feed(b"hello ");
        h.feed(b"world");
        assert_eq!(h.take_written(), b"hello world");
        assert_eq!(h.protocol().received, b"hello world");
        assert!(!h.is_closed());
    }

    #[test]
    fn eof_then_close_is_seen_with_the_protocol_kept_for_inspection() {
        let mut h = Harness::new(Recorder::default());
        h.feed(b"x");
        h.feed_eof();
        assert_eq!(h.take_written(), b"xbye");
        assert!(h.is_closed());
        assert!(h.close_reason().unwrap().is_clean());
        assert_eq!(h.protocol().events, ["eof", "lost clean=true"]);
    }

    #[test]
    fn a_reset_closes_with_reset() {
        let mut h = Harness::new(Recorder::default());
        h.reset();
        assert!(matches!(
            *h.close_reason().unwrap(),
            DisconnectReason::Reset(_)
        ));
    }

    /// Paused reading does not hide a reset, as a socket's error event does not wait for a
    /// read either.
    #[test]
    fn a_reset_while_reading_is_paused_closes_with_reset() {
        struct Paused;
        impl Protocol for Paused {
            fn connection_made(&mut self, cx: &mut Context<'_>) {
                cx.pause_reading();
            }
            fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
        }
        let mut h = Harness::new(Paused);
        h.reset();
        assert!(matches!(
            *h.close_reason().unwrap(),
            DisconnectReason::Reset(_)
        ));
    }

    #[test]
    fn a_slow_peer_pauses_writing_and_reading_and_nothing_is_lost() {
        let mut h = Harness::new(Recorder::default());
        h.connection().set_write_room(Some(10));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        h.feed(&data);
        assert_eq!(h.protocol().events, ["pause"]);
        assert!(h.protocol().received.len() < data.len(), "reading paused");
        h.connection().set_write_room(None);
        h.test_reactor().run_pending();
        // Each turn reads up to its budget, which queues past the high watermark: pause,
        // flush to the now-willing peer, resume.
        let events = &h.protocol().events;
        assert!(
            events.chunks(2).all(|pair| pair == ["pause", "resume"]),
            "{events:?}"
        );
        assert_eq!(h.take_written(), data, "every byte echoed, in order");
    }

    /// Records whether its context says it is closing, before and after asking to close.
    #[derive(Default)]
    struct Closer(Vec<bool>);

    impl Protocol for Closer {
        fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
            self.0.push(cx.is_closing());
            cx.lose_connection();
            self.0.push(cx.is_closing());
        }
    }

    #[test]
    fn is_closing_follows_lose_connection() {
        let mut h = Harness::new(Closer::default());
        h.feed(b"x");
        assert_eq!(h.protocol().0, [false, true]);
        assert!(h.is_closed());
    }

    #[test]
    fn several_connections_share_one_reactor() {
        let mut test = TestReactor::new();
        let a = test.connect(Recorder::default());
        let b = test.connect(Recorder::default());
        assert_ne!(a.id(), b.id());
        test.feed(&a, b"to a");
        assert!(test.reactor().write_to(b.id(), b"from a"));
        test.run_pending();
        assert_eq!(a.take_written(), b"to a");
        assert_eq!(b.take_written(), b"from a");
        test.reactor().abort_connection(a.id());
        test.run_pending();
        assert!(a.is_closed() && !b.is_closed());
        assert_eq!(
            test.protocol::<Recorder>(&a).unwrap().events,
            ["lost clean=false"]
        );
    }
}
