//! A listening socket shared by several reactors: one socket, a duplicate of its descriptor
//! registered in each reactor's poll, so whichever reactor is free accepts the next
//! connection. The other way to serve one port from many reactors, one socket per reactor
//! with `SO_REUSEPORT`, is an option of the listen itself ([`ListenOptions`](crate::ListenOptions)).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

use crate::listeners::ListenSocket;
use crate::tls::{ServerTls, TlsOptions};
use crate::{ListeningPort, Reactor};

/// A listening port's socket (and its TLS configuration, on a TLS port), duplicated to be
/// listened on by other reactors, on other threads, with
/// [`Reactor::listen_shared`]. `Send`, so it can travel to them.
///
/// Every reactor listening on it is woken by each incoming connection and the first to
/// call `accept` gets it (the others find nothing): the free reactors take the
/// connections, at the cost of a wake-up per reactor per burst of connections. Each
/// reactor (the one that shared the port too) accepts only a few connections per turn
/// before serving its others, so a burst of connects is spread over the reactors instead
/// of drained by the first one awake; connections left in the queue are accepted on the
/// next turns without waiting for a new one to arrive.
#[derive(Debug)]
pub struct SharedListener {
    pub(crate) socket: SharedSocket,
    pub(crate) balance: Arc<AcceptBalance>,
    pub(crate) tls: Option<(Arc<ServerConfig>, TlsOptions)>,
}

/// The duplicated descriptor, of either kind.
#[derive(Debug)]
pub(crate) enum SharedSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl SharedListener {
    /// The TCP address the socket is bound to; `None` for a UNIX socket.
    pub fn local_addr(&self) -> io::Result<Option<std::net::SocketAddr>> {
        match &self.socket {
            SharedSocket::Tcp(s) => s.local_addr().map(Some),
            SharedSocket::Unix(_) => Ok(None),
        }
    }
}

impl SharedSocket {
    /// Another descriptor for the same socket (`dup`).
    pub(crate) fn duplicate(&self) -> io::Result<SharedSocket> {
        Ok(match self {
            SharedSocket::Tcp(s) => SharedSocket::Tcp(s.try_clone()?),
            SharedSocket::Unix(s) => SharedSocket::Unix(s.try_clone()?),
        })
    }

    /// The duplicate as a socket the reactor can register.
    pub(crate) fn into_listen_socket(self) -> ListenSocket {
        match self {
            SharedSocket::Tcp(s) => ListenSocket::Tcp(mio::net::TcpListener::from_std(s)),
            SharedSocket::Unix(s) => ListenSocket::Unix(mio::net::UnixListener::from_std(s)),
        }
    }
}

impl ListeningPort {
    /// Duplicates this port's socket for other reactors ([`Reactor::listen_shared`]). The
    /// port itself goes on as before; stopping it does not stop the others (each closes
    /// only its own descriptor; the socket closes with the last). A UNIX port's socket file
    /// stays owned by this port: it is removed when this port stops.
    pub fn share(&self, reactor: &Reactor) -> io::Result<SharedListener> {
        let gone = || io::Error::new(io::ErrorKind::NotFound, "the port has stopped listening");
        let listener = reactor.listeners_ref().get(self.key).ok_or_else(gone)?;
        // From now on other reactors accept on it too: this one takes its share.
        let balance = listener
            .share
            .get_or_init(|| ShareOfAccepts::join(Arc::new(AcceptBalance::default())))
            .balance
            .clone();
        let socket = match &listener.socket {
            ListenSocket::Tcp(s) => SharedSocket::Tcp(s.as_fd().try_clone_to_owned()?.into()),
            ListenSocket::Unix(s) => SharedSocket::Unix(s.as_fd().try_clone_to_owned()?.into()),
        };
        let tls = listener
            .tls
            .as_deref()
            .map(|tls: &ServerTls| (tls.config.clone(), tls.options));
        Ok(SharedListener {
            socket,
            balance,
            tls,
        })
    }
}

/// How many connections a reactor on a shared socket may accept beyond its even share
/// before it holds back for the others.
const SHARE_SLACK: u64 = 4;

/// How long a reactor that took more than its share leaves the queued connections to the
/// other reactors before it accepts them anyway: long enough for a woken reactor to be
/// scheduled on a busy machine, short enough that a stalled one costs a new connection
/// little. Only while the reactors are out of balance; a connection is never left waiting
/// longer than this for a reactor that does not come.
pub(crate) const SHARE_DEFERRAL: Duration = Duration::from_millis(2);

/// What the reactors listening on one shared socket know of each other: how many listen,
/// and how many connections they accepted in all.
#[derive(Debug, Default)]
pub(crate) struct AcceptBalance {
    members: AtomicUsize,
    accepted: AtomicU64,
}

/// One reactor's part of a shared socket's accepts. Leaves the balance when its port
/// stops (dropped with it).
#[derive(Debug)]
pub(crate) struct ShareOfAccepts {
    balance: Arc<AcceptBalance>,
    accepted: u64,
}

impl ShareOfAccepts {
    /// Joins `balance` as having accepted the average so far: a reactor that joins late is
    /// not owed every connection the others took before it came.
    pub(crate) fn join(balance: Arc<AcceptBalance>) -> ShareOfAccepts {
        let members = balance.members.fetch_add(1, Ordering::Relaxed) as u64;
        let accepted = match members {
            0 => 0,
            n => balance.accepted.load(Ordering::Relaxed) / n,
        };
        balance.accepted.fetch_add(accepted, Ordering::Relaxed);
        ShareOfAccepts { balance, accepted }
    }

    /// Whether this reactor has accepted more than its even share (plus a few): then it
    /// leaves the next connections to the others for a moment. The counts are read without
    /// locking: a race costs one connection's placement, never a connection.
    pub(crate) fn over_share(&self) -> bool {
        let members = self.balance.members.load(Ordering::Relaxed).max(1) as u64;
        let total = self.balance.accepted.load(Ordering::Relaxed);
        self.accepted.saturating_mul(members) > total + SHARE_SLACK * members
    }

    /// Counts a connection this reactor accepted.
    pub(crate) fn count(&mut self) {
        self.accepted += 1;
        self.balance.accepted.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ShareOfAccepts {
    fn drop(&mut self) {
        self.balance.members.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reactor_ahead_of_its_share_holds_back_until_the_others_catch_up() {
        let balance = Arc::new(AcceptBalance::default());
        let mut first = ShareOfAccepts::join(balance.clone());
        let mut second = ShareOfAccepts::join(balance.clone());
        for _ in 0..=2 * SHARE_SLACK {
            assert!(!first.over_share());
            first.count();
        }
        assert!(first.over_share());
        assert!(!second.over_share());
        for _ in 0..SHARE_SLACK {
            second.count();
        }
        assert!(!first.over_share());
    }

    #[test]
    fn a_late_member_starts_even_and_a_leaving_one_no_longer_counts() {
        let balance = Arc::new(AcceptBalance::default());
        let mut first = ShareOfAccepts::join(balance.clone());
        for _ in 0..100 {
            first.count();
        }
        let second = ShareOfAccepts::join(balance.clone());
        assert_eq!(second.accepted, 100);
        assert!(!first.over_share() && !second.over_share());
        drop(second);
        assert!(
            !first.over_share(),
            "alone, a reactor is never over its share"
        );
    }
}
