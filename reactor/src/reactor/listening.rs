//! Listening ports on the reactor: listening, the accept loop, and making a connection of
//! each accepted socket.

use std::cell::OnceCell;
use std::io;
use std::net::SocketAddr;

use log::{debug, error, info, warn};

use crate::connections::{Connection, ConnectionId, Phase, Then};
use crate::listeners::{
    bind_listener, starvation_hint, Accepted, ListenSocket, Listener, ListeningPort, ACCEPT_BACKOFF,
};
use crate::protocol::AnyFactory;
use crate::shared_listener::{ShareOfAccepts, SHARE_DEFERRAL};
use crate::stream::{AnyStream, Bits};
use crate::table::{Key, Kind};
use crate::timers::TimerAction;
use crate::tls::ServerTls;
use crate::unix::SocketFile;
use crate::{Address, Factory, Reactor};

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
        self.listen_boxed(addr, None, Box::new(factory), None)
    }

    /// Listens on `addr` with an accept queue of `backlog` (the default if `None`), with a
    /// TLS layer on every connection if `tls` is given.
    pub(crate) fn listen_boxed(
        &mut self,
        addr: SocketAddr,
        backlog: Option<u32>,
        factory: Box<dyn AnyFactory>,
        tls: Option<Box<ServerTls>>,
    ) -> io::Result<ListeningPort> {
        let socket = bind_listener(addr, backlog)?;
        let addr = socket.local_addr()?;
        let key = self.listen_socket(ListenSocket::Tcp(socket), None, factory, tls)?;
        Ok(ListeningPort {
            key,
            addr: Some(addr),
        })
    }

    /// Starts a port on a bound, listening socket (and the socket file it made, removed
    /// when the port stops), and calls its factory's `start_factory`.
    pub(crate) fn listen_socket(
        &mut self,
        socket: ListenSocket,
        socket_file: Option<SocketFile>,
        factory: Box<dyn AnyFactory>,
        tls: Option<Box<ServerTls>>,
    ) -> io::Result<Key> {
        let addr = socket.local_address()?;
        let listener = Listener {
            socket,
            socket_file,
            factory,
            backing_off: false,
            starved: false,
            tls,
            admission: None,
            paused: false,
            share: OnceCell::new(),
            queued: false,
            deferring: false,
        };
        let key = self.listeners.insert(self.poll.registry(), listener)?;
        if let Some(listener) = self.listeners.get_mut(key) {
            listener.factory.start();
        }
        info!("listening on {addr}");
        Ok(key)
    }

    /// The listening ports, read-only.
    pub(crate) fn listeners_ref(&self) -> &crate::listeners::Listeners {
        &self.listeners
    }

    /// Closes a listening socket and calls its factory's `stop_factory`; false if `key` is
    /// stale.
    pub(crate) fn stop_listener(&mut self, key: Key) -> bool {
        let Some(mut listener) = self.listeners.remove(self.poll.registry(), key) else {
            return false;
        };
        // The address as text: a socket in trouble may not know it any more.
        let addr = match listener.socket.local_address() {
            Ok(addr) => addr.to_string(),
            Err(_) => "an unknown address".to_string(),
        };
        drop(listener.socket);
        // The file goes after the socket: from then on a connect is refused, never queued.
        drop(listener.socket_file);
        listener.factory.stop();
        info!("stopped listening on {addr}");
        true
    }

    /// Accepts until the backlog is empty (WouldBlock) or this turn's budget is spent (a
    /// few on a socket shared with other reactors, so that they get their share of a burst).
    pub(crate) fn accept_ready(&mut self, key: Key) {
        self.accept_some(key, false);
    }

    /// The accept loop; `forced`: even past this reactor's share of a shared socket (its
    /// deferral ran out).
    fn accept_some(&mut self, key: Key, forced: bool) {
        let Some(budget) = self.listeners.get(key).map(Listener::accept_budget) else {
            return;
        };
        for _ in 0..budget {
            if !self.may_accept(key) {
                return;
            }
            if !forced && self.over_share(key) {
                return self.defer_accepting(key);
            }
            match self.listeners.accept(key) {
                Accepted::Connection(socket, peer) => {
                    self.counters.connections_accepted += 1;
                    self.count_share(key);
                    self.adopt(key, socket, peer)
                }
                Accepted::Done => return,
                Accepted::Skipped(e) => {
                    debug!("accept: a connection failed before it was accepted: {e}")
                }
                Accepted::Starved(e) => return self.back_off_accepting(key, e),
            }
        }
        // More may wait in the backlog, and no new edge will announce them: the port goes
        // on the ready list (once), served next turn after this one's poll.
        self.queue_accept(key);
    }

    /// Whether port `key` shares its socket and has accepted more than its share.
    fn over_share(&self, key: Key) -> bool {
        let listener = self.listeners.get(key);
        listener
            .and_then(|l| l.share.get())
            .is_some_and(ShareOfAccepts::over_share)
    }

    fn count_share(&mut self, key: Key) {
        if let Some(share) = self.listeners.get_mut(key).and_then(|l| l.share.get_mut()) {
            share.count();
        }
    }

    /// Leaves the queued connections to the other reactors on the socket for a moment; the
    /// timer accepts what they left (their wake-ups came with the connections, this
    /// reactor's will not come again). One timer at a time; none while nothing is queued.
    fn defer_accepting(&mut self, key: Key) {
        let Some(listener) = self.listeners.get_mut(key) else {
            return;
        };
        if std::mem::replace(&mut listener.deferring, true) {
            return;
        }
        let deadline = self.now() + SHARE_DEFERRAL;
        self.timers
            .schedule(deadline, TimerAction::AcceptRetry(key));
    }

    /// Puts port `key` on the ready list unless it is there already (an event and a ready
    /// entry in one turn would otherwise both re-queue it, and the entries pile up).
    pub(crate) fn queue_accept(&mut self, key: Key) {
        if let Some(listener) = self.listeners.get_mut(key) {
            if !std::mem::replace(&mut listener.queued, true) {
                self.push_ready(Kind::Listener, key);
            }
        }
    }

    /// The ready list's turn for port `key`: it is off the list, and accepts.
    pub(crate) fn accept_queued(&mut self, key: Key) {
        if let Some(listener) = self.listeners.get_mut(key) {
            listener.queued = false;
            self.accept_ready(key);
        }
    }

    /// Builds a protocol for an accepted socket and starts it: made at once, or after the
    /// TLS handshake on a TLS port.
    pub(crate) fn adopt(&mut self, listener: Key, stream: AnyStream, peer: Address) {
        if self.over_address_limit(listener, &peer) {
            return drop(stream);
        }
        let Some(port) = self.listeners.get_mut(listener) else {
            return;
        };
        let Some(protocol) = port.factory.build(peer.clone()) else {
            debug!("factory refused connection from {peer}");
            return;
        };
        let tls = match port.tls.as_deref().map(ServerTls::session).transpose() {
            Ok(tls) => tls,
            Err(e) => return warn!("dropping connection from {peer}: {e}"),
        };
        let phase = match tls {
            Some(_) => Phase::Handshaking(Then::Open),
            None => Phase::Open,
        };
        let mut connection = Connection::new(stream, phase, Bits::WRITABLE);
        connection.protocol = Some(protocol);
        let key = match self.connections.insert(self.poll.registry(), connection) {
            Ok(key) => key,
            Err(e) => return warn!("dropping connection from {peer}: cannot register it: {e}"),
        };
        debug!("connection {} accepted from {peer}", ConnectionId(key));
        self.admit(key, listener, &peer, tls.is_some());
        match tls {
            Some((session, timeout)) => {
                let accepted = crate::tls::Accepted { listener, peer };
                self.start_server_handshake(key, session, timeout, accepted)
            }
            None => self.connection_made(key),
        }
    }

    /// Stops accepting for a moment after a resource error, logging once per episode.
    fn back_off_accepting(&mut self, key: Key, e: io::Error) {
        if self.listeners.starve(key) {
            let hint = starvation_hint(&e);
            error!("accept: {e}{hint}; retrying every {ACCEPT_BACKOFF:?} until it succeeds");
        }
        let deadline = self.now() + ACCEPT_BACKOFF;
        self.timers
            .schedule(deadline, TimerAction::AcceptRetry(key));
    }

    /// The timer of a deferral (a shared port that held back for the other reactors) or of
    /// a back-off: accept again (no readiness edge will come for connections that queued in
    /// the backlog meanwhile). A deferral's timer ends only the deferral.
    pub(crate) fn retry_accept(&mut self, key: Key) {
        let deferred = self
            .listeners
            .get_mut(key)
            .map(|l| std::mem::take(&mut l.deferring));
        if deferred == Some(true) {
            // The other reactors had their moment: whatever they left is accepted here.
            self.accept_some(key, true);
        } else if self.listeners.end_backoff(key) {
            self.accept_ready(key);
        }
    }
}
