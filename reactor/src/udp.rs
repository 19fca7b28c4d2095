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
use log::{debug, error, warn};
use mio::net::UdpSocket;
use socket2::SockRef;

use crate::delayed_call::{DelayedCall, TimerAction};
use crate::slot::{Key, SlotKind};
use crate::Reactor;

/// Bytes of datagrams waiting for the socket to take them; past it, a send fails with
/// `WouldBlock` and its datagram is dropped (the newest goes, the queued ones keep their order).
const SEND_QUEUE_LIMIT: usize = 1 << 20;

/// Datagrams read from one socket per turn before the others get their go.
const DATAGRAMS_PER_TURN: usize = 256;

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
type Queued = (Bytes, Option<SocketAddr>);

pub(crate) struct UdpEndpoint {
    socket: UdpSocket,
    /// `None` while the protocol is out, running a callback.
    protocol: Option<Box<dyn DatagramProtocol>>,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// Set by `stop_listening` from inside a callback: close once it returns.
    closing: bool,
    /// Largest datagram received whole; a larger one is reported as truncated.
    max_datagram: usize,
}

/// Default for [`DatagramContext::set_max_datagram_size`]: any UDP datagram fits (65,507
/// bytes of payload over IPv4, 65,527 over IPv6).
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 65_535;

/// A UDP socket made by [`Reactor::listen_udp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramPort {
    key: Key,
    addr: SocketAddr,
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
    reactor: &'a mut Reactor,
    key: Key,
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
        if let Some(endpoint) = self.reactor.udp_mut(self.key) {
            endpoint.max_datagram = size.min(DEFAULT_MAX_DATAGRAM_SIZE);
        }
    }

    /// Closes the socket once this callback returns, after calling `stop_protocol`.
    pub fn stop_listening(&mut self) {
        if let Some(endpoint) = self.reactor.udp_mut(self.key) {
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
        self.reactor.udp_mut(key)?;
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
        let timer = self
            .reactor
            .timers
            .schedule(deadline, TimerAction::DatagramCall(key, call));
        self.reactor
            .connection_timers
            .entry(key)
            .or_default()
            .push(timer);
        Some(DelayedCall(timer))
    }

    /// The reactor, to schedule calls, connect, stop.
    pub fn reactor(&mut self) -> &mut Reactor {
        self.reactor
    }

    fn socket(&mut self) -> io::Result<&mut UdpSocket> {
        self.reactor
            .udp_mut(self.key)
            .map(|e| &mut e.socket)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn socket_ref(&self) -> io::Result<&UdpSocket> {
        match self.reactor.slots.get(self.key.index as usize) {
            Some(slot) if slot.generation == self.key.generation => match &slot.kind {
                SlotKind::Udp(endpoint) => Ok(&endpoint.socket),
                _ => Err(io::ErrorKind::NotConnected.into()),
            },
            _ => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// A timer's call on a datagram protocol, type-erased.
pub(crate) type DatagramCallback =
    Box<dyn FnOnce(&mut dyn DatagramProtocol, &mut DatagramContext<'_>)>;

impl Reactor {
    /// Opens a UDP socket on `addr` (port 0 picks one; IPv4 or IPv6) run by `protocol`, whose
    /// `start_protocol` has run when this returns.
    pub fn listen_udp<P: DatagramProtocol>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        self.open_udp(UdpSocket::bind(addr)?, protocol)
    }

    /// Like [`listen_udp`](Reactor::listen_udp), but several sockets (in this or other
    /// processes) may bind the same address and port (`SO_REUSEADDR`), as listeners on a
    /// multicast group or broadcast port do (Twisted's `listenMulticast(listenMultiple=True)`).
    /// Each then receives every multicast or broadcast datagram.
    pub fn listen_multicast<P: DatagramProtocol>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            None,
        )?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        self.open_udp(UdpSocket::from_std(socket.into()), protocol)
    }

    fn open_udp<P: DatagramProtocol>(
        &mut self,
        socket: UdpSocket,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let addr = socket.local_addr()?;
        let key = self.insert(socket, |socket| {
            SlotKind::Udp(Box::new(UdpEndpoint {
                socket,
                protocol: Some(Box::new(protocol)),
                queue: VecDeque::new(),
                queued_bytes: 0,
                closing: false,
                max_datagram: DEFAULT_MAX_DATAGRAM_SIZE,
            }))
        })?;
        debug!("udp socket on {addr}");
        self.udp_callback(key, |p, cx| p.start_protocol(cx));
        Ok(DatagramPort { key, addr })
    }

    pub(crate) fn udp_mut(&mut self, key: Key) -> Option<&mut UdpEndpoint> {
        match self.slots.get_mut(key.index as usize) {
            Some(slot) if slot.generation == key.generation => match &mut slot.kind {
                SlotKind::Udp(endpoint) => Some(endpoint),
                _ => None,
            },
            _ => None,
        }
    }

    /// Calls the protocol with a context; afterwards closes the socket if it asked to.
    pub(crate) fn udp_callback(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut dyn DatagramProtocol, &mut DatagramContext<'_>),
    ) {
        let Some(mut protocol) = self.udp_mut(key).and_then(|e| e.protocol.take()) else {
            return;
        };
        f(&mut *protocol, &mut DatagramContext { reactor: self, key });
        let Some(endpoint) = self.udp_mut(key) else {
            return;
        };
        endpoint.protocol = Some(protocol);
        if endpoint.closing {
            self.close_udp(key);
        }
    }

    /// Sends at once, or queues behind what already waits.
    pub(crate) fn udp_send(
        &mut self,
        key: Key,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> io::Result<()> {
        let endpoint = self.udp_mut(key).ok_or(io::ErrorKind::NotConnected)?;
        if endpoint.queue.is_empty() {
            match send_one(&endpoint.socket, data, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
        }
        if endpoint.queued_bytes + data.len() > SEND_QUEUE_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "UDP send queue full (1 MiB): datagram dropped",
            ));
        }
        endpoint.queued_bytes += data.len();
        endpoint.queue.push_back((Bytes::copy_from_slice(data), to));
        Ok(())
    }

    /// The socket is writable: send what waits, in order.
    fn udp_flush(&mut self, key: Key) {
        let mut failures = Vec::new();
        let Some(endpoint) = self.udp_mut(key) else {
            return;
        };
        while let Some((data, to)) = endpoint.queue.front() {
            match send_one(&endpoint.socket, data, *to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                result => {
                    if let Err(e) = result {
                        failures.push((e, *to));
                    }
                    endpoint.queued_bytes -= data.len();
                    endpoint.queue.pop_front();
                }
            }
        }
        for (error, to) in failures {
            self.udp_callback(key, |p, cx| p.send_failed(cx, error, to));
        }
    }

    /// Readiness on a UDP socket: send what waits, read datagrams until WouldBlock.
    pub(crate) fn udp_ready(&mut self, key: Key, writable: bool) {
        if writable {
            self.udp_flush(key);
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget_spent = true;
        for _ in 0..DATAGRAMS_PER_TURN {
            let Some(endpoint) = self.udp_mut(key) else {
                budget_spent = false;
                break;
            };
            // One byte more than the largest whole datagram: a datagram that fills it all was
            // longer than allowed (the kernel cut it).
            let limit = (endpoint.max_datagram + 1).min(buf.len());
            match endpoint.socket.recv_from(&mut buf[..limit]) {
                Ok((n, from)) if n == limit => {
                    let kept = n.min(limit - 1);
                    self.udp_callback(key, |p, cx| p.datagram_truncated(cx, &buf[..kept], from))
                }
                Ok((n, from)) => {
                    self.udp_callback(key, |p, cx| p.datagram_received(cx, &buf[..n], from))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    budget_spent = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP port unreachable for an earlier send: not fatal, the socket goes on.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    self.udp_callback(key, |p, cx| p.connection_refused(cx))
                }
                // Not fatal either, and not retried this turn: the next datagram's edge or
                // the next turn tries again, so a lasting error cannot spin the loop.
                Err(e) => {
                    warn!("udp: receive failed: {e}");
                    budget_spent = false;
                    break;
                }
            }
        }
        self.read_buf = buf;
        // More may wait, and no new edge will announce them.
        if budget_spent {
            self.ready.push_back(key);
        }
    }

    /// Closes a UDP socket, then calls its protocol's `stop_protocol` (Twisted's order: the
    /// port is gone when the protocol hears it).
    pub(crate) fn close_udp(&mut self, key: Key) -> bool {
        let Some(endpoint) = self.udp_mut(key) else {
            return false;
        };
        if endpoint.protocol.is_none() {
            // Inside its own callback: close when it returns.
            endpoint.closing = true;
            return true;
        }
        self.cancel_connection_timers(key);
        let SlotKind::Udp(mut endpoint) = self.slots.remove(key.index as usize).kind else {
            return false;
        };
        if let Err(e) = self.poll.registry().deregister(&mut endpoint.socket) {
            debug!("deregistering a udp socket: {e}");
        }
        let protocol = endpoint.protocol.take();
        drop(endpoint);
        if let Some(mut protocol) = protocol {
            protocol.stop_protocol(&mut DatagramContext { reactor: self, key });
        }
        true
    }

    /// A timer's call on a datagram protocol.
    pub(crate) fn udp_timer(&mut self, key: Key, f: DatagramCallback) {
        self.udp_callback(key, f);
    }
}

fn send_one(socket: &UdpSocket, data: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
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
