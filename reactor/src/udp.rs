//! UDP: a [`DatagramProtocol`] per socket, Twisted's `listenUDP`. Datagrams are read until
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
use mio::net::UdpSocket;
use socket2::SockRef;

use crate::table::{Key, Kind};
use crate::timers::DelayedCall;
use crate::timers::TimerAction;
use crate::Reactor;

/// Bytes of datagrams waiting for the socket to take them; past it, a send fails with
/// `WouldBlock` and its datagram is dropped (the newest goes, the queued ones keep their order).
pub(crate) const SEND_QUEUE_LIMIT: usize = 1 << 20;

/// Datagrams read from one socket per turn before the others get their go.
pub(crate) const DATAGRAMS_PER_TURN: usize = 256;

/// What a UDP socket does, Twisted's `DatagramProtocol`. Called one method at a time, with a
/// [`DatagramContext`] to send, connect, join groups and reach the reactor.
pub trait DatagramProtocol: Any {
    /// The socket is open (called once, from `listen_udp`'s turn).
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        let _ = cx;
    }

    /// A datagram arrived from `from`. `data` is only valid during the call.
    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr);

    /// A datagram too large for the receive buffer arrived; `data` is its first part. The
    /// default logs it and drops it.
    fn datagram_truncated(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
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
    fn send_failed(
        &mut self,
        cx: &mut DatagramContext<'_>,
        error: io::Error,
        to: Option<SocketAddr>,
    ) {
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
pub(crate) type Queued = (Bytes, Option<SocketAddr>);

pub(crate) struct UdpEndpoint {
    pub(crate) socket: UdpSocket,
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

/// A UDP socket made by [`Reactor::listen_udp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramPort {
    pub(crate) key: Key,
    pub(crate) addr: SocketAddr,
}

impl DatagramPort {
    /// The address the socket is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a datagram from this socket, from outside its protocol's callbacks (a timer,
    /// another protocol); see [`DatagramContext::send_to`].
    pub fn send_to(&self, reactor: &mut Reactor, data: &[u8], to: SocketAddr) -> io::Result<()> {
        reactor.udp_send(self.key, data, Some(to))
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
    /// Sends `data` as one datagram to `to`. Sent at once; if the socket would block it is
    /// queued (bounded: past 1 MiB queued the send fails with `WouldBlock` and the datagram
    /// is dropped). Errors (`EMSGSIZE` for a datagram too large, `EACCES` for a broadcast
    /// without [`set_broadcast`](DatagramContext::set_broadcast), `ECONNREFUSED` after an
    /// ICMP port unreachable, `ENETUNREACH`...) are returned; none closes the socket.
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.reactor.udp_send(self.key, data, Some(to))
    }

    /// Sends `data` to the connected peer (see [`connect`](DatagramContext::connect)).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.reactor.udp_send(self.key, data, None)
    }

    /// Connects the socket to `peer`: only its datagrams are received, `send` goes to it, and
    /// an ICMP port unreachable is reported through `connection_refused`.
    pub fn connect(&mut self, peer: SocketAddr) -> io::Result<()> {
        self.socket()?.connect(peer)
    }

    /// The socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket_ref()?.local_addr()
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

    fn socket(&mut self) -> io::Result<&mut UdpSocket> {
        self.reactor
            .datagrams()
            .get_mut(self.key)
            .map(|e| &mut e.socket)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn socket_ref(&self) -> io::Result<&UdpSocket> {
        self.reactor
            .datagrams_ref()
            .get(self.key)
            .map(|e| &e.socket)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

/// A timer's call on a datagram protocol, type-erased.
pub(crate) type DatagramCallback =
    Box<dyn FnOnce(&mut dyn DatagramProtocol, &mut DatagramContext<'_>)>;

/// Sends one datagram, whole, or fails.
pub(crate) fn send_one(socket: &UdpSocket, data: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
    loop {
        let sent = match to {
            Some(to) => socket.send_to(data, to),
            None => socket.send(data),
        };
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
