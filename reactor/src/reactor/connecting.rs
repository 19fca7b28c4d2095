//! Outgoing connections on the reactor: the one `connect`, resolving a host on the thread
//! pool, trying its addresses in turn, the non-blocking connect's completion, timeouts and
//! failures, and the client factory hearing how it all ends.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use log::debug;

use crate::connect::{ConnectOptions, Connector, Target};
use crate::connections::{Connection, ConnectionId, Phase};
use crate::outgoing::{start_connect, Attempt};
use crate::protocol::AnyClientFactory;
use crate::stream::{AnyStream, Bits, Stream};
use crate::table::Key;
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
    /// - Each address gets [`ConnectOptions::timeout`] to answer.
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
            Target::Address(addr) => (VecDeque::from([addr]), None),
            Target::Addresses(addrs) => (VecDeque::from(addrs), None),
            Target::Host(host, port) => (VecDeque::new(), Some((host, port))),
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
        let attempt = Attempt {
            factory,
            addrs,
            options,
            host: host.as_ref().map(|(host, _)| host.clone()),
            timeout: None,
        };
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
        let resolve = move || -> io::Result<VecDeque<SocketAddr>> {
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
                    attempt.addrs = addrs;
                    return reactor.try_next_address(key, false);
                }
                Ok(Ok(_)) => io::Error::new(io::ErrorKind::NotFound, "no address for host"),
                Ok(Err(e)) => e,
                Err(panicked) => io::Error::other(panicked.to_string()),
            };
            reactor.fail_connect(key, ConnectError::Resolve(error));
        });
    }

    /// Starts connecting to the next address that a socket can be made for. When none is
    /// left the attempt fails: on the next turn if `inside_connect` (the factory never
    /// hears it from inside `connect`), at once otherwise.
    fn try_next_address(&mut self, key: Key, inside_connect: bool) {
        let mut error = None;
        while let Some(attempt) = self.outgoing.get_mut(key) {
            let Some(addr) = attempt.addrs.pop_front() else {
                break;
            };
            let local = attempt.options.local_addr;
            // The last address's socket goes first: it may hold the local address to bind.
            let registry = self.poll.registry();
            let detached = self
                .connections
                .replace_stream(registry, key, AnyStream::detached());
            let started = detached
                .and_then(|()| start_connect(addr, local))
                .and_then(|socket| {
                    let stream = AnyStream::Tcp(socket);
                    self.connections
                        .replace_stream(self.poll.registry(), key, stream)
                });
            match started {
                Ok(()) => return self.arm_connect_timeout(key, addr),
                Err(e) => {
                    debug!("connect to {addr}: {e}");
                    error = Some(e);
                }
            }
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

    /// The connect timeout of the address just tried.
    fn arm_connect_timeout(&mut self, key: Key, addr: SocketAddr) {
        debug!("connecting to {addr} as {}", ConnectionId(key));
        let Some(attempt) = self.outgoing.get_mut(key) else {
            return;
        };
        let deadline = self.timers.now() + attempt.options.timeout;
        attempt.timeout = Some(
            self.timers
                .schedule(deadline, TimerAction::ConnectTimeout(key)),
        );
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

    /// A readiness event on a connecting socket: connected, failed, or not yet.
    pub(crate) fn connect_ready(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        let outcome = match conn.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match conn.stream.peer_addr() {
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

    /// TCP is connected: the TLS handshake starts, or the connection is made.
    fn connection_established(&mut self, key: Key, peer: Address) {
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
