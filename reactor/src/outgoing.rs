//! The outgoing part: connection attempts in progress and what each keeps beside its
//! connection's entry (so that accepted connections do not pay for it): the client factory
//! (kept for the connection's whole life, to hear how it ends), the addresses still to try,
//! the options, the pending connect timeout. Also the failures found inside
//! [`Reactor::connect`](crate::Reactor::connect), reported on the next turn.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::{Domain, Socket, Type};

use crate::connect::ConnectOptions;
use crate::protocol::AnyClientFactory;
use crate::table::Key;
use crate::timers::TimerKey;
use crate::ConnectError;

/// One outgoing connection's attempt (and, once made, its factory).
pub(crate) struct Attempt {
    /// Builds the protocol once connected; hears how the attempt or the connection ends.
    pub(crate) factory: Box<dyn AnyClientFactory>,
    /// Addresses still to try if the current one fails.
    pub(crate) addrs: VecDeque<SocketAddr>,
    pub(crate) options: ConnectOptions,
    /// The target's host name, if it had one (the default TLS server name).
    pub(crate) host: Option<String>,
    /// The pending connect timeout of the address being tried.
    pub(crate) timeout: Option<TimerKey>,
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
