//! The traits user code implements: [`Protocol`] per connection, [`Factory`] per listening
//! port, [`ClientFactory`] per outgoing connection.

use crate::Address;
use std::any::Any;

use crate::tls::TlsError;
use crate::{ConnectError, Context, DisconnectReason, Reactor, WriteProgress};

/// The behaviour of one connection, called by the reactor as events arrive.
///
/// The reactor owns the protocol and calls one method at a time, never re-entering it: a write,
/// close or pause requested through the [`Context`] is recorded and carried out after the
/// method returns. Every method gets a `Context` that is the connection's transport and reaches
/// the rest of the reactor.
///
/// Order of calls: `connection_made` once, then any number of `data_received`, at most one
/// `eof_received`, interleaved with `pause_writing`/`resume_writing`, `write_progress` and
/// `woken`, and finally exactly one
/// `connection_lost` (unless the reactor is dropped first, which drops the protocol silently).
///
/// Protocols are `'static` (`Any`) so a timer scheduled with
/// [`Context::call_later`] can reach the concrete protocol type.
pub trait Protocol: Any {
    /// The connection is established. A greeting can be written from here.
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Bytes arrived. `data` is only valid during the call (it lives in the reactor's shared
    /// read buffer); keep what you need by copying it. Chunk boundaries are arbitrary: one
    /// message can arrive split over calls and several in one call.
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]);

    /// The peer half-closed its side (it will send nothing more). The default closes the
    /// connection once queued data is flushed; override it to keep writing, then call
    /// [`Context::lose_connection`] when done.
    fn eof_received(&mut self, cx: &mut Context<'_>) {
        cx.lose_connection();
    }

    /// The connection is gone, for `reason`. The context can still reach other connections and
    /// the reactor; writes to this connection are ignored.
    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let _ = (cx, reason);
    }

    /// The write queue rose above its high watermark: stop producing data until
    /// [`resume_writing`](Protocol::resume_writing). Writes still succeed (they queue), so
    /// this is advice the protocol follows to keep memory bounded.
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// The write queue drained to its low watermark after a `pause_writing`.
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// The connection was woken ([`Reactor::wake`], [`Context::wake`], or
    /// [`ReactorHandle::wake`](crate::ReactorHandle::wake) from another thread): something
    /// this protocol waits for is ready (a response computed elsewhere, a result from a
    /// thread, room in a shared resource). Runs on the reactor thread after the callback or
    /// timer that woke it, once however many wakes came meanwhile, and never before
    /// `connection_made`.
    fn woken(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Some of what this connection wrote has left: called after each flush that sent bytes,
    /// once the protocol asked with [`Context::watch_writes`]. `progress` says how much left
    /// in that flush, how much is still queued, and whether everything has gone. Runs between
    /// `pause_writing` (judged before the flush) and `resume_writing` (after it).
    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        let _ = (cx, progress);
    }

    /// The TLS handshake that [`Context::start_tls_server`] or [`Context::start_tls_client`]
    /// began has completed: the peer's certificates, SNI name and ALPN protocol can be read
    /// from the context now. (A connection from `listen_tls` or a TLS `connect` is only made
    /// once its handshake is complete, so `connection_made` is its moment for that.)
    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// The reactor is shutting down gracefully ([`Reactor::shutdown`](crate::Reactor::shutdown)):
    /// finish what is in flight and close. The default closes once what is queued is written
    /// ([`Context::lose_connection`]); an HTTP connection, say, first answers the requests it
    /// already received (and a new connection's first). A connection accepted or made during
    /// the shutdown (from the listener's queue, or at the end of its TLS handshake) hears it
    /// right after `connection_made`. Whatever is still open at the shutdown timeout is
    /// aborted.
    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        cx.lose_connection();
    }
}

/// Builds a [`Protocol`] for each connection a listening port accepts (Twisted's
/// `ServerFactory`). State shared by all connections lives here, typically behind an
/// `Rc<RefCell<_>>` the protocols also hold: the reactor is single-threaded.
///
/// Any `FnMut() -> P` closure is a factory that accepts every connection (and logs failed
/// TLS handshakes, the default of [`handshake_failed`](Factory::handshake_failed)).
pub trait Factory: 'static {
    /// The protocol type this factory builds.
    type Protocol: Protocol;

    /// Builds the protocol for a connection from `peer`, or refuses it with `None` (the socket
    /// is closed at once, and no protocol method is called). On a TCP port `peer` is
    /// [`Address::Tcp`] (`peer.as_tcp()` gives the `SocketAddr`); on a UNIX port it is
    /// [`Address::Unix`], usually unnamed (see [`Context::peer_credentials`] to tell who it is).
    fn build_protocol(&mut self, peer: Address) -> Option<Self::Protocol>;

    /// Called once when the port starts listening.
    fn start_factory(&mut self) {}

    /// Called once when the port stops listening (connections already accepted go on).
    fn stop_factory(&mut self) {}

    /// On a [`listen_tls`](crate::Reactor::listen_tls) port: the TLS handshake of a
    /// connection this port accepted from `peer` failed, for `error` (a client certificate
    /// missing or refused, no protocol version in common, plaintext sent to the port, no
    /// handshake within the timeout, the peer gone, ...). The connection is closed already;
    /// the protocol built for it is dropped without any callback, since it was never made.
    /// The default logs it at `warn!`; override it to count or act on failed attempts (a
    /// peer's address to throttle, say).
    ///
    /// Called between callbacks, never from inside `listen_tls`, and only while the port
    /// listens: once it has stopped (after `stop_factory`), a failure is only logged. A
    /// handshake cancelled by this side (a shutdown) is not a failure and is not reported.
    /// The handshake of [`Context::start_tls_server`](crate::Context::start_tls_server) is not
    /// reported here: its protocol exists and hears it in `connection_lost`.
    fn handshake_failed(&mut self, peer: Address, error: &TlsError) {
        log::warn!("TLS handshake with {peer} failed: {error}");
    }
}

impl<F, P> Factory for F
where
    F: FnMut() -> P + 'static,
    P: Protocol,
{
    type Protocol = P;

    fn build_protocol(&mut self, _peer: Address) -> Option<P> {
        Some(self())
    }
}

/// Builds the [`Protocol`] of an outgoing connection and hears how the attempt and the
/// connection end (Twisted's `ClientFactory`). The reactor keeps it for the connection's life.
///
/// Any `FnMut() -> P` closure is a client factory whose failure is only logged.
pub trait ClientFactory: 'static {
    /// The protocol type this factory builds.
    type Protocol: Protocol;

    /// Builds the protocol once the connection to `peer` is established.
    fn build_protocol(&mut self, peer: Address) -> Self::Protocol;

    /// The connection attempt failed with `error` (refused, unreachable, timed out, ...).
    /// Never called from inside [`Reactor::connect`] itself: at the earliest once the
    /// callback that called it has returned.
    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        let _ = reactor;
        log::warn!("connection failed: {error}");
    }

    /// The established connection was lost, after the protocol's
    /// [`connection_lost`](Protocol::connection_lost).
    fn client_connection_lost(&mut self, reactor: &mut Reactor, reason: &DisconnectReason) {
        let _ = (reactor, reason);
    }
}

impl<F, P> ClientFactory for F
where
    F: FnMut() -> P + 'static,
    P: Protocol,
{
    type Protocol = P;

    fn build_protocol(&mut self, _peer: Address) -> P {
        self()
    }
}

/// Object-safe face of [`Factory`], so listeners of different factory types share the slab.
pub(crate) trait AnyFactory {
    fn build(&mut self, peer: Address) -> Option<Box<dyn Protocol>>;
    fn start(&mut self);
    fn stop(&mut self);
    fn handshake_failed(&mut self, peer: Address, error: &TlsError);
}

impl<F: Factory> AnyFactory for F {
    fn build(&mut self, peer: Address) -> Option<Box<dyn Protocol>> {
        self.build_protocol(peer)
            .map(|p| Box::new(p) as Box<dyn Protocol>)
    }
    fn start(&mut self) {
        self.start_factory()
    }
    fn stop(&mut self) {
        self.stop_factory()
    }
    fn handshake_failed(&mut self, peer: Address, error: &TlsError) {
        Factory::handshake_failed(self, peer, error)
    }
}

/// Object-safe face of [`ClientFactory`].
pub(crate) trait AnyClientFactory {
    fn build(&mut self, peer: Address) -> Box<dyn Protocol>;
    fn failed(&mut self, reactor: &mut Reactor, error: ConnectError);
    fn lost(&mut self, reactor: &mut Reactor, reason: &DisconnectReason);
}

impl<F: ClientFactory> AnyClientFactory for F {
    fn build(&mut self, peer: Address) -> Box<dyn Protocol> {
        Box::new(self.build_protocol(peer))
    }
    fn failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        self.client_connection_failed(reactor, error)
    }
    fn lost(&mut self, reactor: &mut Reactor, reason: &DisconnectReason) {
        self.client_connection_lost(reactor, reason)
    }
}
