//! UNIX domain stream sockets on the reactor: listening on a path or an abstract name,
//! connecting to one, and passing descriptors. Accepting, the read loop, the flush and
//! closing are the ones every stream shares (`listening.rs`, `connections.rs`).

use std::io;
use std::os::fd::OwnedFd;

use log::debug;
use mio::net::UnixStream;

use crate::connect::{ConnectOptions, Connector};
use crate::connections::{Connection, ConnectionId, Phase};
use crate::listeners::{ListenSocket, ListeningPort};
use crate::outgoing::Attempt;
use crate::protocol::AnyClientFactory;
use crate::stream::{AnyStream, Stream, UnixSocketStream, MAX_FDS_PER_MESSAGE};
use crate::timers::TimerAction;
use crate::udp::DatagramSocket;
use crate::unix::{bind_unix_datagram, bind_unix_listener, Credentials, UnixListenOptions};
use crate::{
    ConnectError, DatagramPort, DatagramProtocol, Factory, Reactor, TlsError, UnixAddress,
};

impl Reactor {
    /// Listens on the UNIX socket `address` (a path, or a name in Linux's abstract
    /// namespace) and builds a protocol with `factory` for each connection accepted, as
    /// [`listen_tcp`](Reactor::listen_tcp) does for TCP. The factory sees each peer as
    /// [`Address::Unix`](crate::Address::Unix) (usually unnamed: clients rarely bind); a
    /// protocol can ask who it is with [`Context::peer_credentials`](crate::Context::peer_credentials).
    ///
    /// For a path:
    /// - A socket file already there is tested with a connect. If nothing answers, it was
    ///   left by a server that is gone: it is removed and replaced. If a server answers, this
    ///   fails with `AddrInUse` and leaves it alone. Anything there that is not a socket is
    ///   never removed (`AddrInUse` too).
    /// - [`UnixListenOptions::mode`] sets the file's permissions before the socket listens,
    ///   so no client connects under the umask's mode meanwhile.
    /// - The file is removed when the port stops ([`ListeningPort::stop_listening`], or the
    ///   reactor is dropped), if it is still the file this port made.
    ///
    /// The port's [`ListeningPort::local_addr`] is meaningless (a UNIX port has no socket
    /// address); [`ListeningPort::address`] gives its address.
    pub fn listen_unix<F: Factory>(
        &mut self,
        address: UnixAddress,
        options: UnixListenOptions,
        factory: F,
    ) -> io::Result<ListeningPort> {
        let (socket, file) = bind_unix_listener(&address, &options)?;
        let socket = ListenSocket::Unix(socket);
        let key = self.listen_socket(socket, file, Box::new(factory), None)?;
        Ok(ListeningPort { key, addr: None })
    }

    /// Opens a UNIX datagram socket bound to `address` (a path, an abstract name, or
    /// [`UnixAddress::unnamed`] for a socket that only sends, to connected or named peers)
    /// run by `protocol`, whose `start_protocol` has run when this returns: UDP's
    /// [`listen_udp`](Reactor::listen_udp) for UNIX sockets, with the same
    /// [`DatagramProtocol`] (peers are [`Address::Unix`](crate::Address::Unix)).
    ///
    /// A socket file already at the path is replaced only if nothing is bound to it any
    /// more, as for [`listen_unix`](Reactor::listen_unix); the mode is set right after
    /// `bind` (a datagram socket cannot wait for `listen`: see `docs/unix-sockets.md`); the
    /// file is removed when the socket closes, if it is still this socket's.
    pub fn listen_unix_datagram<P: DatagramProtocol>(
        &mut self,
        address: UnixAddress,
        options: UnixListenOptions,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let (socket, file) = bind_unix_datagram(&address, &options)?;
        self.open_udp(DatagramSocket::Unix(socket), file, protocol)
    }

    /// `connect` to a UNIX socket: the socket connects at once or fails at once (refused, no
    /// such file, a full backlog), and the failure is reported on the next turn like any
    /// other; a connected socket is made on its first writable event. TLS needs a
    /// `server_name` (there is no host name to verify), else it fails with
    /// [`TlsError::InvalidServerName`].
    pub(crate) fn connect_unix(
        &mut self,
        address: UnixAddress,
        factory: Box<dyn AnyClientFactory>,
        options: ConnectOptions,
    ) -> Connector {
        if options.tls.is_some() && options.server_name.is_none() {
            // No host name to verify the server's certificate for: the caller must say.
            let error = TlsError::InvalidServerName(address.to_string());
            self.outgoing.fail_later(factory, ConnectError::Tls(error));
            return Connector::failed();
        }
        let socket = address.to_std().and_then(|a| UnixStream::connect_addr(&a));
        let stream = match socket {
            Ok(socket) => AnyStream::boxed(UnixSocketStream::new(socket)),
            Err(e) => {
                debug!("connect to {address}: {e}");
                self.outgoing.fail_later(factory, ConnectError::from_io(e));
                return Connector::failed();
            }
        };
        let connection = Connection::new(stream, Phase::Connecting, 0);
        let key = match self.connections.insert(self.poll.registry(), connection) {
            Ok(key) => key,
            Err(e) => {
                self.outgoing.fail_later(factory, ConnectError::from_io(e));
                return Connector::failed();
            }
        };
        debug!("connecting to {address} as {}", ConnectionId(key));
        let deadline = self.timers.now() + options.timeout;
        let timeout = self
            .timers
            .schedule(deadline, TimerAction::ConnectTimeout(key));
        let mut attempt = Attempt::new(factory, Vec::new(), options, None);
        attempt.timeout = Some(timeout);
        attempt.stream_connecting = true;
        self.outgoing.insert(key, attempt);
        Connector {
            id: ConnectionId(key),
        }
    }

    /// Queues `data` for connection `id` with the descriptors `fds`, which leave with its
    /// first byte (`SCM_RIGHTS`), in order with everything queued before and after; see
    /// [`Context::write_with_fds`](crate::Context::write_with_fds).
    pub fn write_with_fds_to(
        &mut self,
        id: ConnectionId,
        data: &[u8],
        fds: Vec<OwnedFd>,
    ) -> io::Result<()> {
        if data.is_empty() {
            return Err(invalid("descriptors must travel with at least one byte"));
        }
        if fds.len() > MAX_FDS_PER_MESSAGE {
            let many = format!("at most {MAX_FDS_PER_MESSAGE} descriptors per write");
            return Err(invalid(&many));
        }
        let conn = self
            .connections
            .get_mut(id.0)
            .ok_or(io::ErrorKind::NotConnected)?;
        let queued = conn.queue.len();
        if conn.stream.unix().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "descriptors can only be sent over a plain UNIX socket connection",
            ));
        }
        if !self.connections.write(id.0, data) {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if let Some(unix) = self
            .connections
            .get_mut(id.0)
            .and_then(|c| c.stream.unix_mut())
        {
            unix.send_fds_at(queued, fds);
        }
        Ok(())
    }

    /// The descriptors connection `id` has received and not yet handed over.
    pub(crate) fn take_received_fds(&mut self, id: ConnectionId) -> Vec<OwnedFd> {
        self.connections
            .get_mut(id.0)
            .and_then(|c| c.stream.unix_mut())
            .map(UnixSocketStream::take_received)
            .unwrap_or_default()
    }

    /// The credentials of connection `id`'s peer, if it is a UNIX socket connection.
    pub(crate) fn peer_credentials(&self, id: ConnectionId) -> Option<io::Result<Credentials>> {
        self.connections.get(id.0)?.stream.peer_credentials()
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_string())
}
