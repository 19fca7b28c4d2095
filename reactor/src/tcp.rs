//! TCP: listening ports and their accept loop, outgoing connections and their non-blocking
//! connect.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Socket, Type};

use crate::connect::ConnectOptions;
use crate::delayed_call::TimerAction;
use crate::protocol::{AnyClientFactory, Factory};
use crate::slot::{flag, ConnectionId, Key, Listener, SlotKind};
use crate::stream::Stream;
use crate::time::TimerKey;
use crate::tls::io::{Accepted, ClientTls};
use crate::tls::ServerTls;
use crate::{ConnectError, Reactor};

/// Connections accepted per listener per turn before the other sockets get their go.
const ACCEPT_BUDGET_PER_TURN: usize = 128;

/// How long a listener stops accepting after the process or system ran out of descriptors
/// or memory. Short enough that service resumes promptly, long enough not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listening TCP port, returned by [`Reactor::listen_tcp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListeningPort {
    key: Key,
    addr: SocketAddr,
}

impl ListeningPort {
    /// The address the port is bound to, with the real port number when bound to port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listening socket and calls the factory's `stop_factory`. Connections it
    /// already accepted go on. Returns false if the port had already stopped.
    pub fn stop_listening(&self, reactor: &mut Reactor) -> bool {
        reactor.stop_listener(self.key)
    }
}

/// What the reactor keeps for an outgoing connection beside its slot (so that accepted
/// connections do not pay for these fields).
pub(crate) struct Outgoing {
    /// Builds the protocol once connected; hears how the attempt or the connection ends.
    pub(crate) factory: Box<dyn AnyClientFactory>,
    /// Addresses still to try if this attempt fails (a host name with several).
    fallback: VecDeque<SocketAddr>,
    options: ConnectOptions,
    /// The pending connect timeout, cancelled once connected.
    timeout: Option<TimerKey>,
    /// With TLS: the handshake to start once the TCP connection is made.
    tls: Option<ClientTls>,
}

/// A connection attempt started by [`Reactor::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connector {
    id: ConnectionId,
}

impl Connector {
    /// Abandons the attempt if it is still connecting: the factory's
    /// `client_connection_failed` gets [`ConnectError::Cancelled`] before this returns
    /// (Twisted's `stopConnecting`). False if the attempt already ended either way.
    pub fn stop_connecting(&self, reactor: &mut Reactor) -> bool {
        let key = self.id.0;
        if !reactor
            .connection(key)
            .is_some_and(|c| c.has(flag::CONNECTING | flag::HANDSHAKING))
        {
            return false;
        }
        reactor.fail_connect(key, ConnectError::Cancelled);
        true
    }

    /// The id the connection will have once established (it can be stored now, e.g. to write
    /// to the connection from elsewhere later). Stale if the attempt fails.
    pub fn id(&self) -> ConnectionId {
        self.id
    }
}

impl Reactor {
    /// Listens on `addr` (port 0 picks a free port) and builds a protocol with `factory` for
    /// each connection accepted. Calls the factory's `start_factory` once the port listens.
    ///
    /// Accepted sockets get `TCP_NODELAY`. When the process runs out of file descriptors the
    /// port stops accepting for a moment (logged once) instead of spinning.
    pub fn listen_tcp<F: Factory>(
        &mut self,
        addr: SocketAddr,
        factory: F,
    ) -> io::Result<ListeningPort> {
        self.listen_boxed(addr, Box::new(factory), None)
    }

    /// Listens on `addr`, with a TLS stage on every connection if `tls` is given.
    pub(crate) fn listen_boxed(
        &mut self,
        addr: SocketAddr,
        factory: Box<dyn crate::protocol::AnyFactory>,
        tls: Option<Box<ServerTls>>,
    ) -> io::Result<ListeningPort> {
        let socket = bind_listener(addr)?;
        let addr = socket.local_addr()?;
        let key = self.insert(socket, |socket| {
            SlotKind::Listener(Listener {
                socket,
                factory,
                backing_off: false,
                starved: false,
                tls,
            })
        })?;
        if let Some(listener) = self.listener_mut(key) {
            listener.factory.start();
        }
        info!("listening on {addr}");
        Ok(ListeningPort { key, addr })
    }

    /// Resolves `host` on the thread pool, then connects (with a TLS handshake if `tls`).
    pub(crate) fn connect_host_boxed(
        &mut self,
        host: &str,
        port: u16,
        mut factory: Box<dyn AnyClientFactory>,
        options: ConnectOptions,
        tls: Option<ClientTls>,
    ) {
        let host = host.to_string();
        let resolve = move || -> io::Result<VecDeque<SocketAddr>> {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        };
        self.call_in_thread(resolve, move |reactor, resolved| {
            if reactor.shutdown.draining {
                return factory.failed(reactor, ConnectError::Cancelled);
            }
            let error = match resolved {
                Ok(Ok(addrs)) if !addrs.is_empty() => {
                    reactor.connect_boxed(addrs, factory, options, tls);
                    return;
                }
                Ok(Ok(_)) => io::Error::new(io::ErrorKind::NotFound, "no address for host"),
                Ok(Err(e)) => e,
                Err(panicked) => io::Error::other(panicked.to_string()),
            };
            factory.failed(reactor, ConnectError::Resolve(error));
        });
    }

    /// Starts connecting to the first address that a socket can be made for; the others
    /// are kept to try if this one fails.
    pub(crate) fn connect_boxed(
        &mut self,
        mut addrs: VecDeque<SocketAddr>,
        factory: Box<dyn AnyClientFactory>,
        options: ConnectOptions,
        tls: Option<ClientTls>,
    ) -> Connector {
        while let Some(addr) = addrs.pop_front() {
            match self.start_connect(addr, options.local_addr) {
                Ok(key) => {
                    let deadline = self.now() + options.timeout;
                    let timeout = self
                        .timers
                        .schedule(deadline, TimerAction::ConnectTimeout(key));
                    let outgoing = Outgoing {
                        factory,
                        fallback: addrs,
                        options,
                        timeout: Some(timeout),
                        tls,
                    };
                    self.outgoing.insert(key, outgoing);
                    return Connector {
                        id: ConnectionId(key),
                    };
                }
                Err(e) if addrs.is_empty() => return self.fail_later(factory, e),
                Err(e) => debug!("connect to {addr}: {e}; trying the next address"),
            }
        }
        let no_address = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        self.fail_later(factory, no_address)
    }

    /// A non-blocking connect, registered.
    fn start_connect(&mut self, addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<Key> {
        let socket = connecting_socket(addr, local)?;
        let key = self.insert(socket, |socket| {
            Reactor::new_connection(Stream::Tcp(socket), flag::CONNECTING)
        })?;
        debug!("connecting to {addr} as {}", ConnectionId(key));
        Ok(key)
    }

    /// Queues a failure detected inside `connect` for the next turn.
    fn fail_later(&mut self, factory: Box<dyn AnyClientFactory>, e: io::Error) -> Connector {
        self.fail_later_with(factory, ConnectError::from_io(e))
    }

    /// Queues a failure for the next turn, as `fail_later`.
    pub(crate) fn fail_later_with(
        &mut self,
        factory: Box<dyn AnyClientFactory>,
        error: ConnectError,
    ) -> Connector {
        self.failed_connects.push_back((factory, error));
        stale_connector()
    }

    /// Reports the connect failures queued by `fail_later`. Only those queued before this
    /// call: a factory that retries at once and fails at once again is heard next turn, so a
    /// retry loop cannot hold the reactor.
    pub(crate) fn report_failed_connects(&mut self) {
        for _ in 0..self.failed_connects.len() {
            let Some((mut factory, error)) = self.failed_connects.pop_front() else {
                return;
            };
            factory.failed(self, error);
        }
    }

    /// A readiness event on a connecting socket: connected, failed, or not yet.
    pub(crate) fn connect_ready(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        let outcome = match conn.socket.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match conn.socket.peer_addr() {
                Ok(peer) => Ok(peer),
                // Not connected yet: a spurious wake-up; the real edge is still to come.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(peer) => self.connection_established(key, peer),
            Err(e) => self.fail_connect(key, ConnectError::from_io(e)),
        }
    }

    fn connection_established(&mut self, key: Key, peer: SocketAddr) {
        let Some(outgoing) = self.outgoing.get_mut(&key) else {
            return;
        };
        outgoing.fallback.clear();
        if let Some(timeout) = outgoing.timeout.take() {
            self.timers.cancel(timeout);
        }
        if let Some(tls) = outgoing.tls.take() {
            return self.start_client_handshake(key, tls, peer);
        }
        let protocol = outgoing.factory.build(peer);
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        conn.clear(flag::CONNECTING);
        conn.set(flag::WRITABLE);
        conn.protocol = Some(protocol);
        debug!("connection {} established to {peer}", ConnectionId(key));
        self.callback(key, |p, cx| p.connection_made(cx));
    }

    pub(crate) fn connect_timed_out(&mut self, key: Key) {
        let Some(outgoing) = self.outgoing.get_mut(&key) else {
            return;
        };
        outgoing.timeout = None;
        let after = format!("no answer within {:?}", outgoing.options.timeout);
        let error = io::Error::new(io::ErrorKind::TimedOut, after);
        self.fail_connect(key, ConnectError::TimedOut(error));
    }

    /// Ends a connection attempt: on to the next address if there is one, else the factory
    /// hears why.
    pub(crate) fn fail_connect(&mut self, key: Key, error: ConnectError) {
        let Some(conn) = self.remove_connection(key) else {
            return;
        };
        debug!("connection {} failed: {error}", ConnectionId(key));
        drop(conn);
        let Some(mut outgoing) = self.outgoing.remove(&key) else {
            return;
        };
        if let Some(timeout) = outgoing.timeout.take() {
            self.timers.cancel(timeout);
        }
        if outgoing.fallback.is_empty() || matches!(error, ConnectError::Cancelled) {
            outgoing.factory.failed(self, error);
        } else {
            let (fallback, tls) = (outgoing.fallback, outgoing.tls);
            self.connect_boxed(fallback, outgoing.factory, outgoing.options, tls);
        }
    }

    /// Closes a listening socket and calls its factory's `stop_factory`; false if `key` is
    /// stale.
    pub(crate) fn stop_listener(&mut self, key: Key) -> bool {
        if self.listener_mut(key).is_none() {
            return false;
        }
        let slot = self.slots.remove(key.index as usize);
        if let SlotKind::Listener(mut listener) = slot.kind {
            // The address as text: a socket in trouble may not know it any more.
            let addr = match listener.socket.local_addr() {
                Ok(addr) => addr.to_string(),
                Err(_) => "an unknown address".to_string(),
            };
            if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                debug!("deregistering listener {addr}: {e}");
            }
            drop(listener.socket);
            listener.factory.stop();
            info!("stopped listening on {addr}");
        }
        true
    }

    /// Accepts until the backlog is empty (WouldBlock) or this turn's budget is spent.
    pub(crate) fn accept_ready(&mut self, key: Key) {
        for _ in 0..ACCEPT_BUDGET_PER_TURN {
            let Some(listener) = self.listener_mut(key) else {
                return;
            };
            if listener.backing_off {
                return;
            }
            match listener.socket.accept() {
                Ok((socket, peer)) => {
                    if std::mem::take(&mut listener.starved) {
                        info!("accept: accepting connections again");
                    }
                    self.adopt(key, socket, peer)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_per_connection_error(&e) => {
                    debug!("accept: a connection failed before it was accepted: {e}")
                }
                Err(e) => return self.back_off_accepting(key, e),
            }
        }
        // More may wait in the backlog, and no new edge will announce them.
        self.ready.push_back(key);
    }

    /// Builds a protocol for an accepted socket and starts it.
    fn adopt(&mut self, listener: Key, socket: TcpStream, peer: SocketAddr) {
        let Some(l) = self.listener_mut(listener) else {
            return;
        };
        let Some(protocol) = l.factory.build(peer) else {
            debug!("factory refused connection from {peer}");
            return;
        };
        let tls = match l.tls.as_deref().map(ServerTls::session).transpose() {
            Ok(tls) => tls,
            Err(e) => return warn!("dropping connection from {peer}: {e}"),
        };
        if let Err(e) = socket.set_nodelay(true) {
            debug!("TCP_NODELAY on connection from {peer}: {e}");
        }
        let mut protocol = Some(protocol);
        let inserted = self.insert(socket, |socket| {
            let mut slot = Reactor::new_connection(Stream::Tcp(socket), flag::WRITABLE);
            if let SlotKind::Connection(conn) = &mut slot {
                conn.protocol = protocol.take();
            }
            slot
        });
        match inserted {
            Ok(key) => {
                debug!("connection {} accepted from {peer}", ConnectionId(key));
                match tls {
                    Some((session, timeout)) => {
                        let accepted = Accepted { listener, peer };
                        self.start_server_handshake(key, session, timeout, accepted)
                    }
                    None => self.callback(key, |p, cx| p.connection_made(cx)),
                }
            }
            Err(e) => warn!("dropping connection from {peer}: cannot register it: {e}"),
        }
    }

    /// Stops accepting for a moment after a resource error, logging once per episode.
    fn back_off_accepting(&mut self, key: Key, e: io::Error) {
        let Some(listener) = self.listener_mut(key) else {
            return;
        };
        listener.backing_off = true;
        if !listener.starved {
            listener.starved = true;
            let hint = match e.raw_os_error() {
                Some(EMFILE | ENFILE) => " (raise the file descriptor limit?)",
                Some(ENOBUFS | ENOMEM) => " (out of memory)",
                _ => "",
            };
            error!("accept: {e}{hint}; retrying every {ACCEPT_BACKOFF:?} until it succeeds");
        }
        let deadline = self.now() + ACCEPT_BACKOFF;
        self.timers
            .schedule(deadline, TimerAction::AcceptRetry(key));
    }

    /// The back-off timer: accept again (no readiness edge will come for connections that
    /// queued in the backlog meanwhile).
    pub(crate) fn retry_accept(&mut self, key: Key) {
        let Some(listener) = self.listener_mut(key) else {
            return;
        };
        listener.backing_off = false;
        self.accept_ready(key);
    }
}

/// Connections the kernel may hold waiting for `accept`. mio and std use 128, which a burst
/// of connects overflows (each overflow costs the client a 1 s SYN retransmit); the kernel
/// caps it at `net.core.somaxconn` (4096 on current Linux).
const LISTEN_BACKLOG: i32 = 1024;

/// A non-blocking listening socket with `SO_REUSEADDR` (a restarted server can bind again
/// while old connections linger in TIME_WAIT) and a deep backlog.
fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A non-blocking socket connecting to `addr`, bound to `local` first if given (socket2,
/// since mio cannot bind a socket before connecting it).
fn connecting_socket(addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    // TCP_NODELAY before connecting: no small write of the new connection waits.
    socket.set_tcp_nodelay(true)?;
    if let Some(local) = local {
        socket.bind(&local.into())?;
    }
    match socket.connect(&addr.into()) {
        // A non-blocking connect is under way; its completion is a writable edge.
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        other => other?,
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// The id of a connection attempt that failed before it had a slot: stale from the start.
pub(crate) fn stale_connector() -> Connector {
    Connector {
        id: ConnectionId(Key {
            index: u32::MAX,
            generation: u32::MAX,
        }),
    }
}

// Linux errno values for resource exhaustion on accept.
const ENOMEM: i32 = 12;
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ENOBUFS: i32 = 105;
// A non-blocking connect that has started but not completed.
const EINPROGRESS: i32 = 115;
// A connection that died in the backlog or was refused by a filter: skip it, go on accepting.
const EPROTO: i32 = 71;
const EPERM: i32 = 1;

fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(EPROTO | EPERM))
}
