//! The listeners part: every listening port, TCP or UNIX (its socket, its factory, its TLS
//! configuration, the socket file it bound), and the accept loop's state (backing off after
//! running out of descriptors). The reactor (`reactor/listening.rs`) accepts and builds the
//! connections.

use std::cell::OnceCell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Socket, Type};

use crate::limits::PortAdmission;
use crate::protocol::AnyFactory;
use crate::shared_listener::ShareOfAccepts;
use crate::stream::{AnyStream, UnixSocketStream};
use crate::table::{Key, Kind, Table};
use crate::tls::ServerTls;
use crate::unix::SocketFile;
use crate::{Address, Reactor};

/// Connections accepted per listener per turn before the other sockets get their go.
pub(crate) const ACCEPT_BUDGET_PER_TURN: usize = 128;

/// Connections accepted per turn on a socket other reactors listen on too
/// ([`ListeningPort::share`]). Small, so that a burst of connects is spread over the
/// reactors instead of drained by the first one awake: between two helpings a reactor
/// polls and serves its connections, and the others, woken by the same connections, take
/// theirs meanwhile.
pub(crate) const SHARED_ACCEPT_BUDGET_PER_TURN: usize = 4;

/// How long a listener stops accepting after the process or system ran out of descriptors
/// or memory. Short enough that service resumes promptly, long enough not to spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections the kernel may hold waiting for `accept`. mio and std use 128, which a burst
/// of connects overflows (each overflow costs the client a 1 s SYN retransmit); the kernel
/// caps it at `net.core.somaxconn` (4096 on current Linux).
pub(crate) const LISTEN_BACKLOG: i32 = 1024;

/// A listening port, returned by [`Reactor::listen_tcp`], [`Reactor::listen_tls`] and
/// [`Reactor::listen_unix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListeningPort {
    pub(crate) key: Key,
    /// A TCP port's address; `None` on a UNIX port.
    pub(crate) addr: Option<SocketAddr>,
}

impl ListeningPort {
    /// The address a TCP port is bound to, with the real port number when bound to port 0.
    /// A UNIX port has no socket address: it answers the unspecified `0.0.0.0:0`; ask
    /// [`address`](ListeningPort::address) instead.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The address the port listens on, of whatever kind (TCP or UNIX); `None` once it has
    /// stopped.
    pub fn address(&self, reactor: &Reactor) -> Option<Address> {
        let listener = reactor.listeners_ref().get(self.key)?;
        listener.socket.local_address().ok()
    }

    /// Closes the listening socket and calls the factory's `stop_factory`. Connections it
    /// already accepted go on. Returns false if the port had already stopped.
    pub fn stop_listening(&self, reactor: &mut Reactor) -> bool {
        reactor.stop_listener(self.key)
    }
}

/// One listening port.
pub(crate) struct Listener {
    pub(crate) socket: ListenSocket,
    /// The socket file a UNIX port bound, removed when the port stops.
    pub(crate) socket_file: Option<SocketFile>,
    pub(crate) factory: Box<dyn AnyFactory>,
    /// True while accepting is suspended after EMFILE/ENFILE and a retry timer is pending.
    pub(crate) backing_off: bool,
    /// True from a resource error until the next successful accept: the error is logged once.
    pub(crate) starved: bool,
    /// On a TLS port: the server configuration each accepted connection handshakes with.
    pub(crate) tls: Option<Box<ServerTls>>,
    /// The port's connection limits and counts, once limits are set.
    pub(crate) admission: Option<Box<PortAdmission>>,
    /// True while the socket is out of the poll because a limit is reached.
    pub(crate) paused: bool,
    /// Once the socket is in other reactors' polls too (shared, or a share): this port's
    /// part of their accepts. A `OnceCell`, as sharing a port borrows the reactor only to
    /// read it.
    pub(crate) share: OnceCell<ShareOfAccepts>,
    /// True while the port is on the reactor's ready list, so that it is there once.
    pub(crate) queued: bool,
    /// True while a shared port holds back (it has accepted more than its share) and a
    /// timer is set to accept anyway if no other reactor has.
    pub(crate) deferring: bool,
}

impl Listener {
    /// How many connections this port accepts in one turn.
    pub(crate) fn accept_budget(&self) -> usize {
        if self.share.get().is_some() {
            SHARED_ACCEPT_BUDGET_PER_TURN
        } else {
            ACCEPT_BUDGET_PER_TURN
        }
    }
}

/// What one accept brought.
pub(crate) enum Accepted {
    /// A connection, and its peer's address.
    Connection(AnyStream, Address),
    /// Nothing more now (or the port is gone, or backing off).
    Done,
    /// A connection failed before it was accepted: go on accepting.
    Skipped(io::Error),
    /// Out of descriptors or memory: stop accepting for a while.
    Starved(io::Error),
}

/// Every listening port of a reactor.
#[derive(Default)]
pub(crate) struct Listeners {
    table: Table<Listener>,
}

impl Listeners {
    /// Adds a port for a bound, listening socket, registered with the poll.
    pub(crate) fn insert(
        &mut self,
        registry: &Registry,
        mut listener: Listener,
    ) -> io::Result<Key> {
        let key = self.table.next_key()?;
        registry.register(
            &mut listener.socket,
            key.token(Kind::Listener),
            Interest::READABLE,
        )?;
        self.table.insert_at(key, listener);
        Ok(key)
    }

    /// The port `key` names, unless it stopped, read-only.
    pub(crate) fn get(&self, key: Key) -> Option<&Listener> {
        self.table.get(key)
    }

    /// The port `key` names, unless it stopped.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut Listener> {
        self.table.get_mut(key)
    }

    /// Takes a port out of the table and the poll.
    pub(crate) fn remove(&mut self, registry: &Registry, key: Key) -> Option<Listener> {
        let mut listener = self.table.remove(key)?;
        if listener.paused {
            return Some(listener);
        }
        if let Err(e) = registry.deregister(&mut listener.socket) {
            log::debug!("deregistering a listener: {e}");
        }
        Some(listener)
    }

    /// Takes port `key` out of the poll while a limit holds it back: the kernel's backlog
    /// holds new connections, and no event wakes the reactor for them.
    pub(crate) fn pause(&mut self, registry: &Registry, key: Key) {
        let Some(listener) = self.table.get_mut(key) else {
            return;
        };
        if let Err(e) = registry.deregister(&mut listener.socket) {
            log::debug!("deregistering a listener at its limit: {e}");
        }
        listener.paused = true;
    }

    /// Puts a paused port `key` back in the poll; true if it was paused.
    pub(crate) fn resume(&mut self, registry: &Registry, key: Key) -> bool {
        let Some(listener) = self.table.get_mut(key).filter(|l| l.paused) else {
            return false;
        };
        let token = key.token(Kind::Listener);
        if let Err(e) = registry.register(&mut listener.socket, token, Interest::READABLE) {
            log::error!("a listener cannot accept again: {e}");
            return false;
        }
        listener.paused = false;
        true
    }

    /// The keys of every port.
    pub(crate) fn keys(&self) -> Vec<Key> {
        self.table.iter().map(|(key, _)| key).collect()
    }

    /// Accepts one connection on port `key`, if it is not backing off.
    pub(crate) fn accept(&mut self, key: Key) -> Accepted {
        let Some(listener) = self.table.get_mut(key) else {
            return Accepted::Done;
        };
        if listener.backing_off {
            return Accepted::Done;
        }
        match listener.socket.accept() {
            Ok((socket, peer)) => {
                if std::mem::take(&mut listener.starved) {
                    log::info!("accept: accepting connections again");
                }
                Accepted::Connection(socket, peer)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Done,
            Err(e) if is_per_connection_error(&e) => Accepted::Skipped(e),
            Err(e) => Accepted::Starved(e),
        }
    }

    /// Suspends accepting on port `key` after a resource error; true if it is the first of
    /// an episode (to be logged).
    pub(crate) fn starve(&mut self, key: Key) -> bool {
        let Some(listener) = self.table.get_mut(key) else {
            return false;
        };
        listener.backing_off = true;
        !std::mem::replace(&mut listener.starved, true)
    }

    /// Lets port `key` accept again after its back-off; false if it stopped meanwhile.
    pub(crate) fn end_backoff(&mut self, key: Key) -> bool {
        match self.table.get_mut(key) {
            Some(listener) => {
                listener.backing_off = false;
                true
            }
            None => false,
        }
    }
}

/// A listening socket of either kind.
pub(crate) enum ListenSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSocket {
    /// Accepts one connection: TCP ones get `TCP_NODELAY` (torsion coalesces a turn's writes
    /// itself, so Nagle's algorithm only delays them).
    fn accept(&self) -> io::Result<(AnyStream, Address)> {
        match self {
            ListenSocket::Tcp(listener) => {
                let (socket, peer) = listener.accept()?;
                if let Err(e) = socket.set_nodelay(true) {
                    log::debug!("TCP_NODELAY on connection from {peer}: {e}");
                }
                Ok((AnyStream::Tcp(socket), Address::Tcp(peer)))
            }
            ListenSocket::Unix(listener) => {
                let (socket, peer) = listener.accept()?;
                let peer = crate::UnixAddress::from_std(&peer);
                let stream = AnyStream::boxed(UnixSocketStream::new(socket));
                Ok((stream, Address::Unix(peer)))
            }
        }
    }

    /// The address the socket is bound to.
    pub(crate) fn local_address(&self) -> io::Result<Address> {
        match self {
            ListenSocket::Tcp(listener) => listener.local_addr().map(Address::Tcp),
            ListenSocket::Unix(listener) => listener
                .local_addr()
                .map(|addr| Address::Unix(crate::UnixAddress::from_std(&addr))),
        }
    }
}

impl Source for ListenSocket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(s) => s.register(registry, token, interest),
            ListenSocket::Unix(s) => s.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(s) => s.reregister(registry, token, interest),
            ListenSocket::Unix(s) => s.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            ListenSocket::Tcp(s) => s.deregister(registry),
            ListenSocket::Unix(s) => s.deregister(registry),
        }
    }
}

/// Socket options for [`Reactor::listen_tcp_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// The accept queue's length; `None` for the default (1024, capped by the kernel at
    /// `net.core.somaxconn`).
    pub backlog: Option<u32>,
    /// `SO_REUSEPORT`: several sockets (one per reactor thread, or another process) may
    /// listen on the same address and port, and the kernel spreads incoming connections
    /// among them by a hash of each connection's addresses. Every socket on the port must
    /// set it, all in processes of the same user.
    pub reuse_port: bool,
}

impl ListenOptions {
    /// The defaults: the default backlog, no `SO_REUSEPORT`.
    pub fn new() -> ListenOptions {
        ListenOptions::default()
    }

    /// Sets the accept queue's length.
    pub fn backlog(mut self, backlog: u32) -> ListenOptions {
        self.backlog = Some(backlog);
        self
    }

    /// Sets `SO_REUSEPORT` (see [`reuse_port`](ListenOptions#structfield.reuse_port)).
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }
}

/// A non-blocking listening socket with `SO_REUSEADDR` (a restarted server can bind again
/// while old connections linger in TIME_WAIT) and a deep backlog unless `backlog` says
/// otherwise.
pub(crate) fn bind_listener(addr: SocketAddr, backlog: Option<u32>) -> io::Result<TcpListener> {
    bind_listener_with(addr, ListenOptions::new().with_backlog(backlog))
}

impl ListenOptions {
    pub(crate) fn with_backlog(mut self, backlog: Option<u32>) -> ListenOptions {
        self.backlog = backlog;
        self
    }
}

/// [`bind_listener`] with every option, `SO_REUSEPORT` included.
pub(crate) fn bind_listener_with(
    addr: SocketAddr,
    options: ListenOptions,
) -> io::Result<TcpListener> {
    let backlog = options.backlog;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    let backlog = backlog.map_or(LISTEN_BACKLOG, |n| i32::try_from(n).unwrap_or(i32::MAX));
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

// Linux errno values for resource exhaustion on accept.
const ENOMEM: i32 = 12;
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ENOBUFS: i32 = 105;
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

/// What to tell the operator about a resource error on accept.
pub(crate) fn starvation_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(EMFILE | ENFILE) => " (raise the file descriptor limit?)",
        Some(ENOBUFS | ENOMEM) => " (out of memory)",
        _ => "",
    }
}
