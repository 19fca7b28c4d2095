//! Datagram sockets (UDP, UNIX) on the reactor: opening them, reading datagrams into the shared buffer,
//! sending (at once, or queued while the socket would block), closing, and calling their
//! [`DatagramProtocol`]s.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use crate::unix::SocketFile;
use crate::Address;

use bytes::Bytes;
use log::{debug, warn};
use mio::net::UdpSocket;
use mio::Interest;

use crate::table::{Key, Kind, Table};
use crate::udp::{
    send_one, DatagramContext, DatagramPort, DatagramProtocol, DatagramSocket, UdpEndpoint,
    DATAGRAMS_PER_TURN, DEFAULT_MAX_DATAGRAM_SIZE, SEND_QUEUE_LIMIT,
};
use crate::Reactor;

impl Reactor {
    /// Opens a UDP socket on `addr` (port 0 picks one; IPv4 or IPv6) run by `protocol`, whose
    /// `start_protocol` has run when this returns.
    pub fn listen_udp<P: DatagramProtocol>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let socket = DatagramSocket::Udp(UdpSocket::bind(addr)?);
        self.open_udp(socket, None, protocol)
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
        let socket = bind_udp_with(addr, |socket| socket.set_reuse_address(true))?;
        self.open_udp(socket, None, protocol)
    }

    /// Starts a bound datagram socket (and the socket file it made, removed when it
    /// closes) run by `protocol`.
    pub(crate) fn open_udp<P: DatagramProtocol>(
        &mut self,
        socket: DatagramSocket,
        socket_file: Option<SocketFile>,
        protocol: P,
    ) -> io::Result<DatagramPort> {
        let addr = socket.local_address()?;
        let mut endpoint = UdpEndpoint {
            socket,
            socket_file,
            protocol: Some(Box::new(protocol)),
            queue: VecDeque::new(),
            queued_bytes: 0,
            closing: false,
            max_datagram: DEFAULT_MAX_DATAGRAM_SIZE,
        };
        let key = self.datagrams.next_key()?;
        self.poll.registry().register(
            &mut endpoint.socket,
            key.token(Kind::Udp),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.datagrams.insert_at(key, endpoint);
        debug!("datagram socket on {addr}");
        self.udp_callback(key, |p, cx| p.start_protocol(cx));
        Ok(DatagramPort {
            key,
            addr: addr.as_tcp(),
        })
    }

    /// The UDP sockets, for their contexts.
    pub(crate) fn datagrams(&mut self) -> &mut Table<UdpEndpoint> {
        &mut self.datagrams
    }

    /// The UDP sockets, read-only.
    pub(crate) fn datagrams_ref(&self) -> &Table<UdpEndpoint> {
        &self.datagrams
    }

    /// Calls the protocol with a context; afterwards closes the socket if it asked to.
    pub(crate) fn udp_callback(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut dyn DatagramProtocol, &mut DatagramContext<'_>),
    ) {
        let Some(mut protocol) = self.datagrams.get_mut(key).and_then(|e| e.protocol.take()) else {
            return;
        };
        f(&mut *protocol, &mut DatagramContext { reactor: self, key });
        let Some(endpoint) = self.datagrams.get_mut(key) else {
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
        to: Option<Address>,
    ) -> io::Result<()> {
        let endpoint = self
            .datagrams
            .get_mut(key)
            .ok_or(io::ErrorKind::NotConnected)?;
        if endpoint.queue.is_empty() {
            match send_one(&endpoint.socket, data, to.as_ref()) {
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
        let Some(endpoint) = self.datagrams.get_mut(key) else {
            return;
        };
        while let Some((data, to)) = endpoint.queue.front() {
            match send_one(&endpoint.socket, data, to.as_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                result => {
                    if let Err(e) = result {
                        failures.push((e, to.clone()));
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
        let mut buf = self.connections.take_read_buf();
        let mut budget_spent = true;
        for _ in 0..DATAGRAMS_PER_TURN {
            let Some(endpoint) = self.datagrams.get_mut(key) else {
                budget_spent = false;
                break;
            };
            // One byte more than the largest whole datagram: a datagram that fills it all was
            // longer than allowed (the kernel cut it).
            let limit = (endpoint.max_datagram + 1).min(buf.len());
            match endpoint.socket.recv_from(&mut buf[..limit]) {
                // A UNIX datagram reports its real length only with MSG_TRUNC: one that
                // fills the buffer is treated the same way.
                Ok((n, from)) if n >= limit => {
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
        self.connections.put_read_buf(buf);
        // More may wait, and no new edge will announce them.
        if budget_spent {
            self.push_ready(Kind::Udp, key);
        }
    }

    /// Closes a UDP socket, then calls its protocol's `stop_protocol` (Twisted's order: the
    /// port is gone when the protocol hears it).
    pub(crate) fn close_udp(&mut self, key: Key) -> bool {
        let Some(endpoint) = self.datagrams.get_mut(key) else {
            return false;
        };
        if endpoint.protocol.is_none() {
            // Inside its own callback: close when it returns.
            endpoint.closing = true;
            return true;
        }
        self.timers.cancel_owned(key.token(Kind::Udp));
        let Some(mut endpoint) = self.datagrams.remove(key) else {
            return false;
        };
        if let Err(e) = self.poll.registry().deregister(&mut endpoint.socket) {
            debug!("deregistering a udp socket: {e}");
        }
        let protocol = endpoint.protocol.take();
        // The socket first, then its file (if it made one).
        drop(endpoint.socket);
        drop(endpoint.socket_file);
        if let Some(mut protocol) = protocol {
            protocol.stop_protocol(&mut DatagramContext { reactor: self, key });
        }
        true
    }
}

/// A non-blocking UDP socket bound to `addr`, with `options` set on it before the bind
/// (`SO_REUSEADDR`, `SO_REUSEPORT`).
pub(crate) fn bind_udp_with(
    addr: SocketAddr,
    options: impl FnOnce(&socket2::Socket) -> io::Result<()>,
) -> io::Result<DatagramSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    options(&socket)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(DatagramSocket::Udp(UdpSocket::from_std(socket.into())))
}
