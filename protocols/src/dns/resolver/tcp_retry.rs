//! The resolver's retry over TCP of a query whose UDP reply came back truncated (RFC 7766):
//! the same question to the same server, within the same try's timeout; its reply is checked
//! as a UDP one is, and a failure moves on to the next try.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use log::debug;
use torsion_reactor::{ConnectOptions, Connector, Reactor};

use super::{Resolver, Token};
use crate::dns::message::Message;
use crate::dns::transport::TcpQueryFactory;
use crate::dns::ResolveError;

impl Resolver {
    /// The reply was truncated: ask `server` again over TCP, within the same timeout.
    pub(super) fn ask_over_tcp(&self, reactor: &mut Reactor, token: Token, server: SocketAddr) {
        let found = {
            let state = self.state.borrow();
            let timeout = state.config.timeout;
            state
                .queries
                .get(&token)
                .map(|q| (q.tries, q.wire.clone(), timeout))
        };
        let Some((try_number, wire, timeout)) = found else {
            return;
        };
        debug!("dns: truncated reply from {server}: asking over TCP");
        let factory = TcpQueryFactory::new(self.this.clone(), token, try_number, wire);
        let options = ConnectOptions::with_timeout(timeout);
        let connector = reactor.connect(server, factory, options);
        if let Some(query) = self.state.borrow_mut().queries.get_mut(&token) {
            query.tcp = Some((try_number, connector));
        }
        let this = self.this.clone();
        let timer = reactor.call_later(timeout, move |reactor| {
            if let Some(this) = this.upgrade() {
                this.timed_out(reactor, token, try_number);
            }
        });
        self.set_timer(reactor, token, Some(timer));
    }

    /// The reply to the TCP retry of try `try_number`.
    pub(in crate::dns) fn tcp_reply(
        &self,
        reactor: &mut Reactor,
        token: Token,
        try_number: u32,
        frame: &[u8],
    ) {
        let checked = {
            let mut state = self.state.borrow_mut();
            let Some(query) = state.queries.get_mut(&token) else {
                return;
            };
            if query.tcp.map(|(n, _)| n) != Some(try_number) {
                return;
            }
            let checked = Message::decode(frame)
                .map_err(|e| e.to_string())
                .and_then(|m| query.check(&(m.header, m.questions.clone())).map(|_| m));
            if checked.is_ok() {
                // The connection closes itself once this returns.
                query.tcp = None;
            }
            checked
        };
        match checked {
            Ok(message) => self.answered(reactor, token, message),
            Err(why) => {
                debug!("dns: bad reply over TCP: {why}");
                let error = io::Error::new(io::ErrorKind::InvalidData, why);
                self.tcp_failed(
                    reactor,
                    token,
                    try_number,
                    ResolveError::Io(Arc::new(error)),
                );
            }
        }
    }

    /// The TCP retry of try `try_number` failed (connect, connection lost, bad reply): on to
    /// the next try.
    pub(in crate::dns) fn tcp_failed(
        &self,
        reactor: &mut Reactor,
        token: Token,
        try_number: u32,
        error: ResolveError,
    ) {
        let tcp = {
            let mut state = self.state.borrow_mut();
            let Some(query) = state.queries.get_mut(&token) else {
                return;
            };
            match query.tcp {
                Some((n, _)) if n == try_number => {}
                _ => return,
            }
            query.last_error = Some(error);
            query.tcp.take()
        };
        if let Some((_, connector)) = tcp {
            abandon_tcp(reactor, connector);
        }
        self.set_timer(reactor, token, None);
        self.next_try(reactor, token);
    }
}

/// Gives up on a TCP retry: stops it connecting, or closes it.
pub(super) fn abandon_tcp(reactor: &mut Reactor, connector: Connector) {
    if !connector.stop_connecting(reactor) {
        reactor.abort_connection(connector.id());
    }
}
