//! A factory wrapper that reads each connection's PROXY header before the wrapped factory
//! builds its protocol (Twisted's `HAProxyWrappingFactory`).
//!
//! The wrapper's protocol buffers the header (at most [`header::MAX_HEADER_LENGTH`] bytes,
//! within a timeout), then builds the real protocol with the header's source address as its
//! peer, gives it `connection_made` and the bytes that followed the header, and hands the
//! connection over to it: from then on the reactor calls the real protocol directly (its
//! timers and downcasts work as on any connection), and
//! [`Context::peer_address`] answers the header's source address. A connection whose header
//! is missing, malformed or late is closed and logged; nothing reaches the wrapped factory.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use log::{debug, warn};

use super::header::{self, Parsed, ProxyHeader};
use crate::{Address, Context, DelayedCall, DisconnectReason, Factory, Protocol, TlsError};

/// How long a connection may take to send its PROXY header before it is closed.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Wraps a [`Factory`] so that every connection must open with a PROXY protocol header
/// (version 1 or 2), and the wrapped factory and its protocols see the original client's
/// address as the peer. Listening on `haproxy:tcp:PORT` uses it.
pub struct ProxiedFactory<F: Factory> {
    inner: Rc<RefCell<F>>,
    timeout: Duration,
}

impl<F: Factory> ProxiedFactory<F> {
    /// Wraps `factory`, allowing each connection [`DEFAULT_HEADER_TIMEOUT`] for its header.
    pub fn new(factory: F) -> Self {
        ProxiedFactory {
            inner: Rc::new(RefCell::new(factory)),
            timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }

    /// Sets how long a connection may take to send its header.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<F: Factory> Factory for ProxiedFactory<F> {
    type Protocol = HeaderReader<F>;

    fn build_protocol(&mut self, peer: Address) -> Option<HeaderReader<F>> {
        Some(HeaderReader {
            factory: Rc::clone(&self.inner),
            timeout: self.timeout,
            proxy: peer,
            buffer: Vec::new(),
            timer: None,
        })
    }

    fn start_factory(&mut self) {
        self.inner.borrow_mut().start_factory();
    }

    fn stop_factory(&mut self) {
        self.inner.borrow_mut().stop_factory();
    }

    fn handshake_failed(&mut self, peer: Address, error: &TlsError) {
        self.inner.borrow_mut().handshake_failed(peer, error);
    }
}

/// The protocol of a connection whose PROXY header has not arrived yet; see
/// [`ProxiedFactory`]. It never outlives the header.
pub struct HeaderReader<F: Factory> {
    factory: Rc<RefCell<F>>,
    timeout: Duration,
    /// The proxy's address (the socket's peer).
    proxy: Address,
    /// The header's bytes so far, when it came in pieces.
    buffer: Vec<u8>,
    timer: Option<DelayedCall>,
}

impl<F: Factory> HeaderReader<F> {
    fn refuse(&mut self, cx: &mut Context<'_>, why: &dyn std::fmt::Display) {
        warn!("refusing a connection from {}: {why}", self.proxy);
        self.cancel_timer(cx);
        self.buffer = Vec::new();
        cx.abort_connection();
    }

    fn cancel_timer(&mut self, cx: &mut Context<'_>) {
        if let Some(timer) = self.timer.take() {
            timer.cancel(cx.reactor());
        }
    }

    /// The header is complete: builds the real protocol and hands the connection to it.
    fn hand_over(&mut self, cx: &mut Context<'_>, header: ProxyHeader, rest: &[u8]) {
        self.cancel_timer(cx);
        let peer = match header {
            ProxyHeader::Proxied { source, .. } => Address::Tcp(source),
            ProxyHeader::Local => self.proxy.clone(),
        };
        debug!("PROXY header from {}: client {peer}", self.proxy);
        let built = self.factory.borrow_mut().build_protocol(peer.clone());
        let Some(mut protocol) = built else {
            cx.abort_connection();
            return;
        };
        cx.set_proxied_peer(peer);
        protocol.connection_made(cx);
        if !rest.is_empty() && !cx.is_closing() {
            protocol.data_received(cx, rest);
        }
        cx.hand_over(Box::new(protocol));
    }
}

impl<F: Factory> Protocol for HeaderReader<F> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.timer = cx.call_later(self.timeout, |this: &mut Self, cx| {
            this.timer = None;
            this.refuse(cx, &"no PROXY header in time");
        });
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        // The common case: the whole header in the first read, parsed without a copy.
        let buffered = self.buffer.len();
        let parsed = if buffered == 0 {
            header::parse(data)
        } else {
            let room = header::MAX_HEADER_LENGTH - buffered;
            self.buffer.extend_from_slice(&data[..data.len().min(room)]);
            header::parse(&self.buffer)
        };
        match parsed {
            // What was buffered before this read is all header: the rest is in `data`.
            Ok(Parsed::Complete(header, consumed)) => {
                self.buffer = Vec::new();
                self.hand_over(cx, header, &data[consumed - buffered..]);
            }
            Ok(Parsed::Partial) if buffered == 0 => self.buffer.extend_from_slice(data),
            Ok(Parsed::Partial) => {}
            Err(error) => self.refuse(cx, &error),
        }
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.refuse(cx, &"the connection ended before its PROXY header");
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, _reason: &DisconnectReason) {
        self.cancel_timer(cx);
    }

    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        cx.lose_connection();
    }
}
