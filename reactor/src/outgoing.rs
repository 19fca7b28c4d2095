//! The outgoing part: connection attempts in progress and what each keeps beside its
//! connection's entry (so that accepted connections do not pay for it): the client factory
//! (kept for the connection's whole life, to hear how it ends), the addresses still to try,
//! the options, the pending connect timeout, and for Happy Eyeballs (RFC 8305) the other
//! sockets racing to connect and the timer that starts the next. Also the failures found
//! inside [`Reactor::connect`](crate::Reactor::connect), reported on the next turn.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::{Domain, Socket, Type};

use crate::connect::ConnectOptions;
use crate::protocol::AnyClientFactory;
use crate::table::Key;
use crate::timers::TimerKey;
use crate::{Address, ConnectError};

/// One outgoing connection's attempt (and, once made, its factory).
pub(crate) struct Attempt {
    /// Builds the protocol once connected; hears how the attempt or the connection ends.
    pub(crate) factory: Box<dyn AnyClientFactory>,
    /// Addresses still to try if the current one fails.
    pub(crate) addrs: VecDeque<SocketAddr>,
    pub(crate) options: ConnectOptions,
    /// The target's host name, if it had one (the default TLS server name).
    pub(crate) host: Option<String>,
    /// The pending connect timeout of the address tried last.
    pub(crate) timeout: Option<TimerKey>,
    /// Whether the connection's own stream is a socket connecting (false: detached, or a
    /// socket that failed).
    pub(crate) stream_connecting: bool,
    /// Happy Eyeballs: whether the addresses are raced (they are of both families).
    pub(crate) racing: bool,
    /// Happy Eyeballs: sockets connecting besides the connection's own stream, registered
    /// under the connection's token. The first to connect becomes the connection's stream.
    pub(crate) racers: Vec<Racer>,
    /// Happy Eyeballs: the pending timer that starts the next address.
    pub(crate) next_attempt: Option<TimerKey>,
}

impl Attempt {
    /// A new attempt for `addrs` (more may come from resolving a host).
    pub(crate) fn new(
        factory: Box<dyn AnyClientFactory>,
        addrs: Vec<SocketAddr>,
        options: ConnectOptions,
        host: Option<String>,
    ) -> Attempt {
        let mut attempt = Attempt {
            factory,
            addrs: VecDeque::new(),
            options,
            host,
            timeout: None,
            stream_connecting: false,
            racing: false,
            racers: Vec::new(),
            next_attempt: None,
        };
        attempt.set_addresses(addrs);
        attempt
    }

    /// The addresses to try: raced, IPv6 first, families alternating, if both are there.
    pub(crate) fn set_addresses(&mut self, addrs: Vec<SocketAddr>) {
        let (addrs, mixed) = interleave(addrs);
        self.addrs = addrs;
        self.racing = mixed;
    }

    /// Whether some socket is still connecting.
    pub(crate) fn in_flight(&self) -> bool {
        self.stream_connecting || !self.racers.is_empty()
    }
}

/// A socket racing to connect (Happy Eyeballs), and where to.
pub(crate) struct Racer {
    pub(crate) addr: SocketAddr,
    pub(crate) socket: TcpStream,
}

/// RFC 8305 §4: the addresses with the families alternating, IPv6 first, each family in
/// the order given (the resolver's preference); and whether both families are there.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> (VecDeque<SocketAddr>, bool) {
    let (mut v6, mut v4): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(SocketAddr::is_ipv6);
    if v6.is_empty() || v4.is_empty() {
        v6.append(&mut v4);
        return (v6, false);
    }
    let mut interleaved = VecDeque::with_capacity(v6.len() + v4.len());
    while !v6.is_empty() || !v4.is_empty() {
        interleaved.extend(v6.pop_front());
        interleaved.extend(v4.pop_front());
    }
    (interleaved, true)
}

/// How a non-blocking connect stands, from its socket's pending error and peer.
pub(crate) enum Progress {
    /// Not connected yet (a spurious wake-up, or another socket's event).
    Pending,
    /// Connected to this peer.
    Connected(Address),
    /// Failed.
    Failed(io::Error),
}

impl Progress {
    pub(crate) fn of<A: Into<Address>>(
        error: io::Result<Option<io::Error>>,
        peer: impl FnOnce() -> io::Result<A>,
    ) -> Progress {
        match error {
            Ok(Some(e)) | Err(e) => Progress::Failed(e),
            Ok(None) => match peer() {
                Ok(peer) => Progress::Connected(peer.into()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Progress::Pending,
                Err(e) => Progress::Failed(e),
            },
        }
    }
}

/// Every outgoing connection's attempt, by its connection's key.
#[derive(Default)]
pub(crate) struct Outgoing {
    attempts: HashMap<Key, Attempt>,
    /// Attempts that failed before they had a connection, reported on the next turn.
    failed: VecDeque<(Box<dyn AnyClientFactory>, ConnectError)>,
}

impl Outgoing {
    pub(crate) fn insert(&mut self, key: Key, attempt: Attempt) {
        self.attempts.insert(key, attempt);
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut Attempt> {
        self.attempts.get_mut(&key)
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<Attempt> {
        self.attempts.remove(&key)
    }

    /// Queues a failure for the next turn: a factory never hears of it from inside the call
    /// that started the attempt.
    pub(crate) fn fail_later(&mut self, factory: Box<dyn AnyClientFactory>, error: ConnectError) {
        self.failed.push_back((factory, error));
    }

    /// Whether failures wait to be reported.
    pub(crate) fn any_failed(&self) -> bool {
        !self.failed.is_empty()
    }

    /// The failures queued so far (those queued while they are reported wait for the next
    /// turn, so a factory that retries at once and fails at once cannot hold the reactor).
    pub(crate) fn take_failed(&mut self) -> VecDeque<(Box<dyn AnyClientFactory>, ConnectError)> {
        std::mem::take(&mut self.failed)
    }
}

/// A non-blocking connect to `addr`, from `local` if given, with `TCP_NODELAY` set before it
/// (no small write of the new connection waits).
pub(crate) fn start_connect(addr: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let Some(local) = local else {
        let socket = TcpStream::connect(addr)?;
        socket.set_nodelay(true)?;
        return Ok(socket);
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&local.into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Linux's errno for a non-blocking connect under way.
const EINPROGRESS: i32 = 115;

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn mixed_families_alternate_starting_with_ipv6() {
        let given = addrs(&["1.1.1.1:1", "2.2.2.2:1", "[::1]:1", "3.3.3.3:1", "[::2]:1"]);
        let (order, mixed) = interleave(given);
        let expected = addrs(&["[::1]:1", "1.1.1.1:1", "[::2]:1", "2.2.2.2:1", "3.3.3.3:1"]);
        assert_eq!(Vec::from(order), expected);
        assert!(mixed);
    }

    #[test]
    fn one_family_keeps_its_order_and_is_not_raced() {
        let given = addrs(&["2.2.2.2:1", "1.1.1.1:1"]);
        let (order, mixed) = interleave(given.clone());
        assert_eq!(Vec::from(order), given);
        assert!(!mixed);
        let (order, mixed) = interleave(Vec::new());
        assert!(order.is_empty() && !mixed);
    }
}
