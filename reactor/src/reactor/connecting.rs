//! Outgoing connections on the reactor: the one `connect`, resolving a host on the thread
//! pool, trying its addresses in turn (raced with Happy Eyeballs when they are of both
//! families), the non-blocking connect's completion, timeouts and failures, and the client
//! factory hearing how it all ends.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use log::debug;
use mio::Interest;

use crate::connect::{ConnectOptions, Connector, Target};
use crate::connections::{Connection, ConnectionId, Phase};
use crate::outgoing::{start_connect, Attempt, Progress, Racer};
use crate::protocol::AnyClientFactory;
use crate::stream::{AnyStream, Bits, Stream};
use crate::table::{Key, Kind};
use crate::timers::TimerAction;
use crate::tls::stage::server_name;
use crate::{Address, ClientFactory, ConnectError, DisconnectReason, Reactor};

impl Reactor {
    /// Connects `factory` to `target` (Twisted's `connectTCP` and `connectSSL` in one).
    ///
    /// - `Target::Address`: one non-blocking connect. `Target::Addresses`: each address in
    ///   turn until one answers. `Target::Host`: the name is resolved on the thread pool
    ///   (getaddrinfo blocks, so never on the reactor thread), then its addresses are tried
    ///   in turn.
    /// - Happy Eyeballs (RFC 8305): when the addresses are of both families (a host with
    ///   IPv6 and IPv4 addresses, or such a list), they are tried IPv6 first, the families
    ///   alternating; each next address is tried alongside those still connecting once
    ///   [`ConnectOptions::attempt_delay`] (250 ms) passes without an answer, or at once when
    ///   a connect fails. The first to connect wins and the others are closed. Addresses of
    ///   one family are tried one after the other.
    /// - The address tried last gets [`ConnectOptions::timeout`] to answer (those started
    ///   before it, racing, get as long).
    /// - With [`ConnectOptions::tls`], a TLS handshake follows the TCP connect, verifying the
    ///   server's certificate for [`ConnectOptions::server_name`], else the host name, else
    ///   the IP address connected to (also sent as SNI), within
    ///   [`ConnectOptions::handshake_timeout`].
    ///
    /// Once connected (and the handshake complete), the factory builds the protocol and
    /// `connection_made` runs. If the attempt fails, the factory's
    /// `client_connection_failed` hears why: [`ConnectError::Resolve`] for a name that does
    /// not resolve, [`ConnectError::Tls`] for TLS reasons (a bad server name, a refused
    /// certificate, a handshake timeout), else the error of the last address tried
    /// (refused, unreachable, timed out). Never from inside this call: at the earliest once
    /// the callback that called it has returned.
    ///
    /// The returned [`Connector`] names the connection from the start (its id stays the
    /// same through resolving and every address tried) and can abandon the attempt.
    pub fn connect<F: ClientFactory>(
        &mut self,
        target: impl Into<Target>,
        factory: F,
        options: ConnectOptions,
    ) -> Connector {
        self.connect_boxed(target.into(), Box::new(factory), options)
    }

    /// [`connect`](Reactor::connect) for a boxed factory.
    pub(crate) fn connect_boxed(
        &mut self,
        target: Target,
        factory: Box<dyn AnyClientFactory>,
        options: ConnectOptions,
    ) -> Connector {
        let (addrs, host) = match target {
            Target::Address(addr) => (vec![addr], None),
            Target::Addresses(addrs) => (addrs, None),
            Target::Host(host, port) => (Vec::new(), Some((host, port))),
            Target::Unix(address) => return self.connect_unix(address, factory, options),
        };
        if options.tls.is_some() {
            let name = options.server_name.as_deref();
            if let Some(name) = name.or(host.as_ref().map(|(host, _)| host.as_str())) {
                if let Err(e) = server_name(name) {
                    self.outgoing.fail_later(factory, ConnectError::Tls(e));
                    return Connector::failed();
                }
            }
        }
        let connection = Connection::new(AnyStream::detached(), Phase::Connecting, 0);
        let key = match self.connections.insert(self.poll.registry(), connection) {
            Ok(key) => key,
            Err(e) => {
                self.outgoing.fail_later(factory, ConnectError::from_io(e));
                return Connector::failed();
            }
        };
        let name = host.as_ref().map(|(host, _)| host.clone());
        let attempt = Attempt::new(factory, addrs, options, name);
        self.outgoing.insert(key, attempt);
        match host {
            Some((host, port)) => self.resolve(key, host, port),
            None => self.try_next_address(key, true),
        }
        Connector {
            id: ConnectionId(key),
        }
    }

    /// Resolves `host` on the thread pool, then tries its addresses (unless the attempt was
    /// abandoned meanwhile).
    fn resolve(&mut self, key: Key, host: String, port: u16) {
        debug!("connection {}: resolving {host}", ConnectionId(key));
        let resolve = move || -> io::Result<Vec<SocketAddr>> {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        };
        self.call_in_thread(resolve, move |reactor, resolved| {
            if reactor.shutdown.is_draining() {
                return reactor.fail_connect(key, ConnectError::Cancelled);
            }
            let Some(attempt) = reactor.outgoing.get_mut(key) else {
                return; // stopped, or cancelled by a shutdown
            };
            let error = match resolved {
                Ok(Ok(addrs)) if !addrs.is_empty() => {
                    attempt.set_addresses(addrs);
                    return reactor.try_next_address(key, false);
                }
                Ok(Ok(_)) => io::Error::new(io::ErrorKind::NotFound, "no address for host"),
                Ok(Err(e)) => e,
                Err(panicked) => io::Error::other(panicked.to_string()),
            };
            reactor.fail_connect(key, ConnectError::Resolve(error));
        });
    }

    /// Starts connecting to the next address that a socket can be made for: as the
    /// connection's stream, or racing beside it if that is still connecting. When none is
    /// left and nothing is connecting any more, the attempt fails: on the next turn if
    /// `inside_connect` (the factory never hears it from inside `connect`), at once
    /// otherwise.
    fn try_next_address(&mut self, key: Key, inside_connect: bool) {
        let mut error = None;
        while let Some(attempt) = self.outgoing.get_mut(key) {
            let Some(addr) = attempt.addrs.pop_front() else {
                break;
            };
            let started = match attempt.stream_connecting {
                true => self.start_racer(key, addr),
                false => self.start_on_stream(key, addr),
            };
            match started {
                Ok(()) => {
                    self.arm_connect_timeout(key, addr);
                    return self.arm_attempt_delay(key);
                }
                Err(e) => {
                    debug!("connect to {addr}: {e}");
                    error = Some(e);
                }
            }
        }
        if self.outgoing.get_mut(key).is_some_and(|a| a.in_flight()) {
            return; // those racing may still connect
        }
        let error = error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to connect to"));
        let error = ConnectError::from_io(error);
        if inside_connect {
            self.remove_connection(key);
            if let Some(attempt) = self.outgoing.remove(key) {
                self.outgoing.fail_later(attempt.factory, error);
            }
        } else {
            self.abandon_attempt(key, error);
        }
    }

    /// Connects to `addr` on the connection's own stream.
    fn start_on_stream(&mut self, key: Key, addr: SocketAddr) -> io::Result<()> {
        let local = self
            .outgoing
            .get_mut(key)
            .and_then(|a| a.options.local_addr);
        // The last address's socket goes first: it may hold the local address to bind.
        let registry = self.poll.registry();
        self.connections
            .replace_stream(registry, key, AnyStream::detached())?;
        let socket = start_connect(addr, local)?;
        let registry = self.poll.registry();
        self.connections
            .replace_stream(registry, key, AnyStream::Tcp(socket))?;
        if let Some(attempt) = self.outgoing.get_mut(key) {
            attempt.stream_connecting = true;
        }
        Ok(())
    }

    /// Happy Eyeballs: connects to `addr` beside the connection's stream, which is still
    /// connecting, on a socket registered under the connection's token.
    fn start_racer(&mut self, key: Key, addr: SocketAddr) -> io::Result<()> {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return Ok(());
        };
        let mut socket = start_connect(addr, attempt.options.local_addr)?;
        let token = key.token(Kind::Connection);
        let interest = Interest::READABLE | Interest::WRITABLE;
        self.poll
            .registry()
            .register(&mut socket, token, interest)?;
        attempt.racers.push(Racer { addr, socket });
        Ok(())
    }

    /// The connect timeout of the address just tried (replacing the previous one's: those
    /// still racing get as long).
    fn arm_connect_timeout(&mut self, key: Key, addr: SocketAddr) {
        debug!("connecting to {addr} as {}", ConnectionId(key));
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        if let Some(timeout) = attempt.timeout.take() {
            self.timers.cancel(timeout);
        }
        let deadline = self.timers.now() + attempt.options.timeout;
        attempt.timeout = Some(
            self.timers
                .schedule(deadline, TimerAction::ConnectTimeout(key)),
        );
    }

    /// Happy Eyeballs: the timer that starts the next address if no connect answers within
    /// the connection attempt delay (replacing the previous one's).
    fn arm_attempt_delay(&mut self, key: Key) {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        if let Some(timer) = attempt.next_attempt.take() {
            self.timers.cancel(timer);
        }
        if !attempt.racing || attempt.addrs.is_empty() {
            return;
        }
        let deadline = self.timers.now() + attempt.options.attempt_delay;
        let action = TimerAction::NextConnectAttempt(key);
        attempt.next_attempt = Some(self.timers.schedule(deadline, action));
    }

    /// Happy Eyeballs: the connection attempt delay passed with no answer: the next
    /// address starts alongside.
    pub(crate) fn attempt_delay_passed(&mut self, key: Key) {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        attempt.next_attempt = None;
        let connecting = self
            .connections
            .get(key)
            .is_some_and(|c| c.phase == Phase::Connecting);
        if connecting {
            debug!(
                "connection {}: no answer yet, racing the next address",
                ConnectionId(key)
            );
            self.try_next_address(key, false);
        }
    }

    /// Reports the failures queued by `connect` before this call.
    pub(crate) fn report_failed_connects(&mut self) {
        if !self.outgoing.any_failed() {
            return;
        }
        for (mut factory, error) in self.outgoing.take_failed() {
            factory.failed(self, error);
        }
    }

    /// A readiness event on a connecting connection: its stream, or one of the sockets
    /// racing beside it (they share its token), connected, failed, or not yet (a spurious
    /// wake-up, or another socket's event; the real edge is still to come).
    pub(crate) fn connect_ready(&mut self, key: Key) {
        let stream_connecting = self
            .outgoing
            .get_mut(key)
            .is_some_and(|a| a.stream_connecting);
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        if stream_connecting {
            let stream = &mut conn.stream;
            match Progress::of(stream.take_error(), || stream.peer_addr()) {
                Progress::Connected(peer) => return self.connection_established(key, peer),
                Progress::Failed(e) => self.stream_connect_failed(key, e),
                Progress::Pending => {}
            }
        }
        self.racers_ready(key);
    }

    /// The connection's own stream failed to connect.
    fn stream_connect_failed(&mut self, key: Key, error: io::Error) {
        if let Some(attempt) = self.outgoing.get_mut(key) {
            attempt.stream_connecting = false;
            if attempt.racers.is_empty() {
                // Nothing else connecting: on to the next address, or fail.
                return self.fail_connect(key, ConnectError::from_io(error));
            }
        }
        let registry = self.poll.registry();
        if let Err(e) = self
            .connections
            .replace_stream(registry, key, AnyStream::detached())
        {
            debug!("connection {}: detaching: {e}", ConnectionId(key));
        }
        self.racing_connect_failed(key, error);
    }

    /// Happy Eyeballs: checks every socket racing beside the connection's stream.
    fn racers_ready(&mut self, key: Key) {
        let mut next = 0;
        loop {
            let Some(attempt) = self.outgoing.get_mut(key) else {
                return;
            };
            let Some(racer) = attempt.racers.get(next) else {
                return;
            };
            let socket = &racer.socket;
            match Progress::of(socket.take_error(), || socket.peer_addr()) {
                Progress::Pending => next += 1,
                Progress::Connected(peer) => {
                    let racer = attempt.racers.swap_remove(next);
                    return self.racer_won(key, racer, peer);
                }
                Progress::Failed(e) => {
                    let mut racer = attempt.racers.swap_remove(next);
                    let _ = self.poll.registry().deregister(&mut racer.socket);
                    debug!("connect to {}: {e}", racer.addr);
                    self.racing_connect_failed(key, e);
                }
            }
        }
    }

    /// Happy Eyeballs: one of the racing connects failed (and is gone). RFC 8305 §5: the
    /// next address starts at once; when none is left and nothing races any more, the
    /// attempt fails with this error.
    fn racing_connect_failed(&mut self, key: Key, error: io::Error) {
        if !self.outgoing.get_mut(key).is_some_and(|a| a.in_flight()) {
            return self.fail_connect(key, ConnectError::from_io(error));
        }
        debug!(
            "connection {}: a racing connect failed: {error}",
            ConnectionId(key)
        );
        self.try_next_address(key, false);
    }

    /// Happy Eyeballs: a racing socket connected first: it becomes the connection's stream.
    fn racer_won(&mut self, key: Key, mut racer: Racer, peer: Address) {
        let registry = self.poll.registry();
        if let Err(e) = registry.deregister(&mut racer.socket) {
            debug!("connection {}: deregistering: {e}", ConnectionId(key));
        }
        let stream = AnyStream::Tcp(racer.socket);
        if let Err(e) = self.connections.replace_stream(registry, key, stream) {
            return self.racing_connect_failed(key, e);
        }
        self.connection_established(key, peer);
    }

    /// Happy Eyeballs: the race is over (won, timed out or abandoned): the other sockets
    /// close and no next address starts.
    fn end_race(&mut self, key: Key) {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        attempt.stream_connecting = false;
        if let Some(timer) = attempt.next_attempt.take() {
            self.timers.cancel(timer);
        }
        for mut racer in attempt.racers.drain(..) {
            debug!(
                "connection {}: closing the connect to {}",
                ConnectionId(key),
                racer.addr
            );
            let _ = self.poll.registry().deregister(&mut racer.socket);
        }
    }

    /// TCP is connected: the TLS handshake starts, or the connection is made.
    fn connection_established(&mut self, key: Key, peer: Address) {
        self.end_race(key);
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        attempt.addrs.clear();
        let timeout = attempt.timeout.take();
        if let Some(config) = attempt.options.tls.clone() {
            let name = attempt
                .options
                .server_name
                .clone()
                .or_else(|| attempt.host.clone())
                .unwrap_or_else(|| server_name_of(&peer));
            let handshake_timeout = attempt.options.handshake_timeout;
            if let Some(timeout) = timeout {
                self.timers.cancel(timeout);
            }
            return self.start_client_handshake(key, config, &name, handshake_timeout);
        }
        let protocol = attempt.factory.build(peer.clone());
        if let Some(timeout) = timeout {
            self.timers.cancel(timeout);
        }
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.bits.set(Bits::WRITABLE);
        conn.protocol = Some(protocol);
        debug!("connection {} established to {peer}", ConnectionId(key));
        self.connection_made(key);
    }

    /// The connect timeout of the address being tried passed.
    pub(crate) fn connect_timed_out(&mut self, key: Key) {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        attempt.timeout = None;
        let after = format!("no answer within {:?}", attempt.options.timeout);
        // Those still racing had as long: they go too.
        self.end_race(key);
        let error = io::Error::new(io::ErrorKind::TimedOut, after);
        self.fail_connect(key, ConnectError::TimedOut(error));
    }

    /// The address being tried failed: on to the next if there is one, else the factory
    /// hears why. A cancel ends the attempt whatever is left.
    pub(crate) fn fail_connect(&mut self, key: Key, error: ConnectError) {
        let Some(attempt) = self.outgoing.get_mut(key) else {
            // A server's connection in its handshake (a shutdown cancels it): just closed.
            self.remove_connection(key);
            return;
        };
        if let Some(timeout) = attempt.timeout.take() {
            self.timers.cancel(timeout);
        }
        debug!("connection {} failed: {error}", ConnectionId(key));
        let cancelled = matches!(error, ConnectError::Cancelled);
        let connecting = self
            .connections
            .get(key)
            .is_some_and(|c| c.phase == Phase::Connecting);
        let more = self
            .outgoing
            .get_mut(key)
            .is_some_and(|a| !a.addrs.is_empty());
        if more && connecting && !cancelled {
            return self.try_next_address(key, false);
        }
        self.abandon_attempt(key, error);
    }

    /// Ends an attempt for good: its connection goes, its factory hears `error`.
    fn abandon_attempt(&mut self, key: Key, error: ConnectError) {
        self.end_race(key);
        self.remove_connection(key);
        if let Some(mut attempt) = self.outgoing.remove(key) {
            if let Some(timeout) = attempt.timeout.take() {
                self.timers.cancel(timeout);
            }
            attempt.factory.failed(self, error);
        }
    }

    /// Abandons connection `key`'s attempt if it is still going (resolving, connecting or
    /// in its handshake); false if it already ended either way.
    pub(crate) fn stop_connecting(&mut self, key: Key) -> bool {
        let going = self.connections.get(key).is_some_and(|c| !c.is_made())
            && self.outgoing.get_mut(key).is_some();
        if going {
            self.fail_connect(key, ConnectError::Cancelled);
        }
        going
    }

    /// An outgoing connection that was made has closed: its factory hears it, after the
    /// protocol's `connection_lost`.
    pub(crate) fn connection_ended(&mut self, key: Key, reason: &DisconnectReason) {
        if let Some(mut attempt) = self.outgoing.remove(key) {
            attempt.factory.lost(self, reason);
        }
    }
}

/// The name a TLS client verifies when none was given: the IP address connected to, or, for
/// a UNIX socket, its address as text (which no certificate names: give a server name).
fn server_name_of(peer: &Address) -> String {
    match peer.as_tcp() {
        Some(addr) => addr.ip().to_string(),
        None => peer.to_string(),
    }
}
