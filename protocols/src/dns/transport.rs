//! The resolver's sockets: a [`QuerySocket`] per query and server (UDP), a [`TcpQuery`] for
//! the retry of a truncated reply. Both are thin: they hand what they hear to the
//! [`Resolver`], which holds the query's state.

use std::net::SocketAddr;
use std::rc::Weak;
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use torsion_reactor::{
    Address, ClientFactory, ConnectError, DatagramContext, DatagramProtocol, DisconnectReason,
    Reactor,
};

use super::resolver::{Resolver, Token};
use super::ResolveError;
use crate::prefixed::{FrameContext, FrameProtocol, FrameReceiver, Prefix};

/// A UDP socket of one query, connected to one server: the kernel then delivers only that
/// server's datagrams and reports its ICMP port unreachable.
pub(super) struct QuerySocket {
    resolver: Weak<Resolver>,
    token: Token,
    server: SocketAddr,
    /// When the socket closes itself if the resolver has not closed it before.
    lifetime: Duration,
}

impl QuerySocket {
    pub(super) fn new(
        resolver: Weak<Resolver>,
        token: Token,
        server: SocketAddr,
        lifetime: Duration,
    ) -> Self {
        QuerySocket {
            resolver,
            token,
            server,
            lifetime,
        }
    }
}

impl DatagramProtocol for QuerySocket {
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        // Unconnected, the socket still works: the resolver checks each reply's source itself.
        if let Err(e) = cx.connect(self.server) {
            debug!(
                "dns: cannot connect the query socket to {}: {e}",
                self.server
            );
        }
        // The resolver closes the socket when its query ends; this is for a resolver dropped
        // with the query in flight.
        cx.call_later(self.lifetime, |_: &mut QuerySocket, cx| cx.stop_listening());
    }

    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        // A UDP socket's datagrams come from internet addresses.
        let Some(from) = from.as_tcp() else {
            return;
        };
        if let Some(resolver) = self.resolver.upgrade() {
            resolver.datagram(cx.reactor(), self.token, self.server, data, from);
        }
    }

    fn datagram_truncated(&mut self, _cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        debug!(
            "dns: dropped a datagram of over {} bytes from {from}",
            data.len()
        );
    }

    fn connection_refused(&mut self, cx: &mut DatagramContext<'_>) {
        if let Some(resolver) = self.resolver.upgrade() {
            resolver.refused(cx.reactor(), self.token, self.server);
        }
    }
}

/// Asks once over TCP (RFC 1035 §4.2.2: the message after a two-byte length) and hands the
/// one reply to the resolver.
pub(super) struct TcpQuery {
    resolver: Weak<Resolver>,
    token: Token,
    try_number: u32,
    wire: Vec<u8>,
    replied: bool,
}

impl FrameReceiver for TcpQuery {
    fn connection_made(&mut self, cx: &mut FrameContext<'_, '_>) {
        // A query is a few hundred bytes at most: it always fits the prefix.
        if cx.send_frame(&self.wire).is_err() {
            cx.lose_connection();
        }
    }

    fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
        if std::mem::replace(&mut self.replied, true) {
            return;
        }
        cx.lose_connection();
        if let Some(resolver) = self.resolver.upgrade() {
            let reactor = cx.transport().reactor();
            resolver.tcp_reply(reactor, self.token, self.try_number, frame);
        }
    }

    fn connection_lost(&mut self, cx: &mut FrameContext<'_, '_>, reason: &DisconnectReason) {
        if self.replied {
            return;
        }
        if let Some(resolver) = self.resolver.upgrade() {
            let error = std::io::Error::other(format!("TCP connection lost: {reason}"));
            let error = ResolveError::Io(Arc::new(error));
            let reactor = cx.transport().reactor();
            resolver.tcp_failed(reactor, self.token, self.try_number, error);
        }
    }
}

/// Builds the [`TcpQuery`] of a truncated reply's retry, and hears if the connect fails.
pub(super) struct TcpQueryFactory {
    resolver: Weak<Resolver>,
    token: Token,
    try_number: u32,
    wire: Vec<u8>,
}

impl TcpQueryFactory {
    pub(super) fn new(
        resolver: Weak<Resolver>,
        token: Token,
        try_number: u32,
        wire: Vec<u8>,
    ) -> Self {
        TcpQueryFactory {
            resolver,
            token,
            try_number,
            wire,
        }
    }
}

impl ClientFactory for TcpQueryFactory {
    type Protocol = FrameProtocol<TcpQuery>;

    fn build_protocol(&mut self, _peer: Address) -> FrameProtocol<TcpQuery> {
        let query = TcpQuery {
            resolver: self.resolver.clone(),
            token: self.token,
            try_number: self.try_number,
            wire: std::mem::take(&mut self.wire),
            replied: false,
        };
        FrameProtocol::new(query, Prefix::U16).with_max_frame_length(usize::from(u16::MAX))
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        if let Some(resolver) = self.resolver.upgrade() {
            let error = ResolveError::Io(Arc::new(std::io::Error::other(error)));
            resolver.tcp_failed(reactor, self.token, self.try_number, error);
        }
    }
}
