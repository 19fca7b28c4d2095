//! Datagram sockets, UDP and UNIX: a [`DatagramProtocol`] per socket, Twisted's `listenUDP`
//! and `listenUNIXDatagram`. Datagrams are read until
//! WouldBlock into the reactor's shared 64 KiB buffer (a whole datagram always fits, so none
//! is cut silently: one that fills the buffer is reported as truncated); sends go out at once
//! and only what would block waits in a bounded queue.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use log::{error, warn};
use mio::event::Source;
use mio::net::{UdpSocket, UnixDatagram};
use mio::{Interest, Registry, Token};
use socket2::SockRef;

use crate::table::{Key, Kind};
use crate::timers::DelayedCall;
use crate::timers::TimerAction;
use crate::unix::SocketFile;
use crate::{Address, Reactor, UnixAddress};

/// Bytes of datagrams waiting for the socket to take them; past it, a send fails with
/// `WouldBlock` and its datagram is dropped (the newest goes, the queued ones keep their order).
pub(crate) const SEND_QUEUE_LIMIT: usize = 1 << 20;

/// Datagrams read from one socket per turn before the others get their go.
pub(crate) const DATAGRAMS_PER_TURN: usize = 256;

/// What a datagram socket (UDP, or UNIX datagram) does, Twisted's `DatagramProtocol`. Called one method at a time, with a
/// [`DatagramContext`] to send, connect, join groups and reach the reactor.
pub trait DatagramProtocol: Any {
    /// The socket is open (called once, from `listen_udp`'s turn).
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        let _ = cx;
    }

    /// A datagram arrived from `from` (on a UDP socket [`Address::Tcp`], an internet socket
    /// address: `from.as_tcp()`; on a UNIX one [`Address::Unix`], unnamed if the sender did
    /// not bind, and then it cannot be answered). `data` is only valid during the call.
    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address);

    /// A datagram too large for the receive buffer arrived; `data` is its first part. The
    /// default logs it and drops it.
    fn datagram_truncated(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        let _ = cx;
        warn!(
            "udp: datagram from {from} truncated to {} bytes: dropped",
            data.len()
        );
    }

    /// The peer of a connected socket is not listening (an ICMP port unreachable came back
    /// for an earlier datagram).
    fn connection_refused(&mut self, cx: &mut DatagramContext<'_>) {
        let _ = cx;
    }

    /// A datagram that had been queued (the socket would have blocked) failed when sent
    /// later; errors of a send attempted at once are returned by the send itself.
    fn send_failed(&mut self, cx: &mut DatagramContext<'_>, error: io::Error, to: Option<Address>) {
        let _ = cx;
        warn!("udp: queued datagram to {to:?} failed: {error}");
    }

    /// The socket is closing (stop_listening, or the reactor shutting down).
    fn stop_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        let _ = cx;
    }
}

/// A datagram waiting for the socket to take it: `None` as the address means the connected
/// peer.
pub(crate) type Queued = (Bytes, Option<Address>);

pub(crate) struct UdpEndpoint {
    pub(crate) socket: DatagramSocket,
    /// The socket file a UNIX datagram socket bound, removed when it closes.
    pub(crate) socket_file: Option<SocketFile>,
    /// `None` while the protocol is out, running a callback.
    pub(crate) protocol: Option<Box<dyn DatagramProtocol>>,
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) queued_bytes: usize,
    /// Set by `stop_listening` from inside a callback: close once it returns.
    pub(crate) closing: bool,
    /// Largest datagram received whole; a larger one is reported as truncated.
    pub(crate) max_datagram: usize,
}

/// Default for [`DatagramContext::set_max_datagram_size`]: any UDP datagram fits (65,507
/// bytes of payload over IPv4, 65,527 over IPv6).
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 65_535;

/// A datagram socket made by [`Reactor::listen_udp`] or [`Reactor::listen_unix_datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramPort {
    pub(crate) key: Key,
    /// A UDP socket's address; `None` for a UNIX one.
    pub(crate) addr: Option<SocketAddr>,
}

impl DatagramPort {
    /// The address a UDP socket is bound to (with the real port when bound to port 0). A
    /// UNIX datagram socket has no socket address: it answers the unspecified `0.0.0.0:0`;
    /// ask [`address`](DatagramPort::address) instead.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// The address the socket is bound to, of whatever kind; `None` once it is closed.
    pub fn address(&self, reactor: &Reactor) -> Option<Address> {
        let endpoint = reactor.datagrams_ref().get(self.key)?;
        endpoint.socket.local_address().ok()
    }

    /// Sends a datagram from this socket, from outside its protocol's callbacks (a timer,
    /// another protocol); see [`DatagramContext::send_to`].
    pub fn send_to(
        &self,
        reactor: &mut Reactor,
        data: &[u8],
        to: impl Into<Address>,
    ) -> io::Result<()> {
        reactor.udp_send(self.key, data, Some(to.into()))
    }

    /// Closes the socket after calling `stop_protocol`. False if it was already closed.
    pub fn stop_listening(&self, reactor: &mut Reactor) -> bool {
        reactor.close_udp(self.key)
    }
}

/// Handed to every [`DatagramProtocol`] callback: the socket's transport and the reactor.
pub struct DatagramContext<'a> {
    pub(crate) reactor: &'a mut Reactor,
    pub(crate) key: Key,
}

impl DatagramContext<'_> {
    /// Sends `data` as one datagram to `to` (a `SocketAddr` from a UDP socket, a
    /// [`UnixAddress`] from a UNIX one). Sent at once; if the socket would block it is
    /// queued (bounded: past 1 MiB queued the send fails with `WouldBlock` and the datagram
    /// is dropped). Errors (`EMSGSIZE` for a datagram too large, `EACCES` for a broadcast
    /// without [`set_broadcast`](DatagramContext::set_broadcast), `ECONNREFUSED` after an
    /// ICMP port unreachable, `ENETUNREACH`...) are returned; none closes the socket.
    pub fn send_to(&mut self, data: &[u8], to: impl Into<Address>) -> io::Result<()> {
        self.reactor.udp_send(self.key, data, Some(to.into()))
    }

    /// Sends `data` to the connected peer (see [`connect`](DatagramContext::connect)).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.reactor.udp_send(self.key, data, None)
    }

    /// Connects the socket to `peer`: only its datagrams are received, `send` goes to it, and
    /// (UDP) an ICMP port unreachable is reported through `connection_refused`.
    pub fn connect(&mut self, peer: impl Into<Address>) -> io::Result<()> {
        let endpoint = self.endpoint()?;
        endpoint.socket.connect(&peer.into())
    }

    /// A UDP socket's address (a UNIX one fails with `InvalidInput`: see
    /// [`local_address`](DatagramContext::local_address)).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket_ref()?.local_addr()
    }

    /// The socket's address, of whatever kind.
    pub fn local_address(&self) -> io::Result<Address> {
        let endpoint = self.reactor.datagrams_ref().get(self.key);
        let endpoint = endpoint.ok_or(io::ErrorKind::NotConnected)?;
        endpoint.socket.local_address()
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    pub fn set_broadcast(&mut self, on: bool) -> io::Result<()> {
        self.socket()?.set_broadcast(on)
    }

    /// Joins the IPv4 multicast `group` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice).
    pub fn join_multicast_v4(&mut self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket()?.join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&mut self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.socket()?.leave_multicast_v4(&group, &interface)
    }

    /// Joins the IPv6 multicast `group` on interface index `interface` (0: the system's choice).
    pub fn join_multicast_v6(&mut self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket()?.join_multicast_v6(&group, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&mut self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket()?.leave_multicast_v6(&group, interface)
    }

    /// How many hops IPv4 multicast datagrams sent from this socket may take (default 1).
    pub fn set_multicast_ttl_v4(&mut self, ttl: u32) -> io::Result<()> {
        self.socket()?.set_multicast_ttl_v4(ttl)
    }

    /// Whether this host's own multicast datagrams come back to its sockets (default on).
    pub fn set_multicast_loop_v4(&mut self, on: bool) -> io::Result<()> {
        self.socket()?.set_multicast_loop_v4(on)
    }

    /// The IPv6 counterpart of [`set_multicast_loop_v4`](DatagramContext::set_multicast_loop_v4).
    pub fn set_multicast_loop_v6(&mut self, on: bool) -> io::Result<()> {
        self.socket()?.set_multicast_loop_v6(on)
    }

    /// The interface (by its address) IPv4 multicast datagrams are sent from.
    pub fn set_multicast_interface_v4(&mut self, interface: Ipv4Addr) -> io::Result<()> {
        SockRef::from(self.socket_ref()?).set_multicast_if_v4(&interface)
    }

    /// The interface (by index) IPv6 multicast datagrams are sent from.
    pub fn set_multicast_interface_v6(&mut self, interface: u32) -> io::Result<()> {
        SockRef::from(self.socket_ref()?).set_multicast_if_v6(interface)
    }

    /// Receives datagrams of up to `size` bytes whole (default 65,535, at most that); a larger
    /// one reaches [`DatagramProtocol::datagram_truncated`] with its first `size` bytes,
    /// never `datagram_received` cut short.
    pub fn set_max_datagram_size(&mut self, size: usize) {
        if let Some(endpoint) = self.reactor.datagrams().get_mut(self.key) {
            endpoint.max_datagram = size.min(DEFAULT_MAX_DATAGRAM_SIZE);
        }
    }

    /// Closes the socket once this callback returns, after calling `stop_protocol`.
    pub fn stop_listening(&mut self) {
        if let Some(endpoint) = self.reactor.datagrams().get_mut(self.key) {
            endpoint.closing = true;
        }
    }

    /// Runs `f` on this socket's protocol (of type `P`) once `delay` has passed; cancelled
    /// if the socket closes first. `None` if it is closed already.
    pub fn call_later<P: DatagramProtocol>(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut P, &mut DatagramContext<'_>) + 'static,
    ) -> Option<DelayedCall> {
        let key = self.key;
        self.reactor.datagrams().get_mut(key)?;
        let call: DatagramCallback = Box::new(move |protocol, cx| {
            let protocol: &mut dyn Any = protocol;
            match protocol.downcast_mut::<P>() {
                Some(protocol) => f(protocol, cx),
                None => error!(
                    "udp timer expected protocol {}: dropped",
                    std::any::type_name::<P>()
                ),
            }
        });
        let deadline = self.reactor.now() + delay;
        let action = TimerAction::DatagramCall(key, call);
        let owner = key.token(Kind::Udp);
        let timer = self
            .reactor
            .timers()
            .schedule_owned(owner, deadline, action);
        Some(DelayedCall(timer))
    }

    /// The reactor, to schedule calls, connect, stop.
    pub fn reactor(&mut self) -> &mut Reactor {
        self.reactor
    }

    fn endpoint(&mut self) -> io::Result<&mut UdpEndpoint> {
        self.reactor
            .datagrams()
            .get_mut(self.key)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// The UDP socket, for the options only UDP has.
    fn socket(&mut self) -> io::Result<&mut UdpSocket> {
        match &mut self.endpoint()?.socket {
            DatagramSocket::Udp(socket) => Ok(socket),
            DatagramSocket::Unix(_) => Err(not_udp()),
        }
    }

    fn socket_ref(&self) -> io::Result<&UdpSocket> {
        let endpoint = self.reactor.datagrams_ref().get(self.key);
        match &endpoint.ok_or(io::ErrorKind::NotConnected)?.socket {
            DatagramSocket::Udp(socket) => Ok(socket),
            DatagramSocket::Unix(_) => Err(not_udp()),
        }
    }
}

/// A timer's call on a datagram protocol, type-erased.
pub(crate) type DatagramCallback =
    Box<dyn FnOnce(&mut dyn DatagramProtocol, &mut DatagramContext<'_>)>;

fn not_udp() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a UDP socket")
}

/// A datagram socket of either kind.
pub(crate) enum DatagramSocket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl DatagramSocket {
    /// Receives one datagram into `buf`.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Address)> {
        match self {
            DatagramSocket::Udp(socket) => {
                let (n, from) = socket.recv_from(buf)?;
                Ok((n, Address::Tcp(from)))
            }
            DatagramSocket::Unix(socket) => {
                let (n, from) = socket.recv_from(buf)?;
                Ok((n, Address::Unix(UnixAddress::from_std(&from))))
            }
        }
    }

    /// The address the socket is bound to.
    pub(crate) fn local_address(&self) -> io::Result<Address> {
        match self {
            DatagramSocket::Udp(socket) => socket.local_addr().map(Address::Tcp),
            DatagramSocket::Unix(socket) => {
                let addr = socket.local_addr()?;
                Ok(Address::Unix(UnixAddress::from_std(&addr)))
            }
        }
    }

    fn connect(&self, peer: &Address) -> io::Result<()> {
        match (self, peer) {
            (DatagramSocket::Udp(socket), Address::Tcp(peer)) => socket.connect(*peer),
            (DatagramSocket::Unix(socket), Address::Unix(peer)) => {
                SockRef::from(socket).connect(&peer.to_sockaddr()?)
            }
            _ => Err(wrong_kind(peer)),
        }
    }

    /// Sends `data` to `to`, or to the connected peer: what the kernel took.
    fn send(&self, data: &[u8], to: Option<&Address>) -> io::Result<usize> {
        match (self, to) {
            (DatagramSocket::Udp(socket), None) => socket.send(data),
            (DatagramSocket::Unix(socket), None) => socket.send(data),
            (DatagramSocket::Udp(socket), Some(Address::Tcp(to))) => socket.send_to(data, *to),
            (DatagramSocket::Unix(socket), Some(Address::Unix(to))) => {
                SockRef::from(socket).send_to(data, &to.to_sockaddr()?)
            }
            (_, Some(to)) => Err(wrong_kind(to)),
        }
    }
}

fn wrong_kind(address: &Address) -> io::Error {
    let why = format!("{address} is not an address of this socket's kind");
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

impl Source for DatagramSocket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            DatagramSocket::Udp(s) => s.register(registry, token, interest),
            DatagramSocket::Unix(s) => s.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            DatagramSocket::Udp(s) => s.reregister(registry, token, interest),
            DatagramSocket::Unix(s) => s.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            DatagramSocket::Udp(s) => s.deregister(registry),
            DatagramSocket::Unix(s) => s.deregister(registry),
        }
    }
}

/// Sends one datagram, whole, or fails.
pub(crate) fn send_one(
    socket: &DatagramSocket,
    data: &[u8],
    to: Option<&Address>,
) -> io::Result<()> {
    loop {
        let sent = socket.send(data, to);
        match sent {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "datagram cut short: {n} of {} bytes",
                    data.len()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
