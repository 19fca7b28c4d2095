//! TLS on the reactor: TLS ports, putting a TLS layer over a connection (accepted,
//! connected, or upgraded in place with STARTTLS), the end of the handshake (when the protocol
//! hears `connection_made` or `tls_handshake_completed`), its timeout, and its failure. The
//! layer itself (`tls/layer.rs`) is a stream like any other: the read loop and the flush do
//! not know it is there.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, warn};
use rustls::{ClientConfig, ServerConfig};

use crate::connections::{Connection, ConnectionId, Phase, WriteSide};
use crate::stream::{AnyStream, Bits, Stream};
use crate::table::{Key, Kind};
use crate::timers::TimerAction;
use crate::tls::stage::{server_name, Session, TlsStream};
use crate::tls::{Accepted, ServerTls, TlsError, TlsOptions, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::{ConnectError, DisconnectReason, Factory, ListeningPort, Reactor};

impl Reactor {
    /// Listens on `addr` for TLS connections (Twisted's `listenSSL`), with the default
    /// [`TlsOptions`]; see [`listen_tls_with`](Reactor::listen_tls_with).
    pub fn listen_tls<F: Factory>(
        &mut self,
        addr: SocketAddr,
        config: impl Into<Arc<ServerConfig>>,
        factory: F,
    ) -> io::Result<ListeningPort> {
        self.listen_tls_with(addr, config, factory, TlsOptions::default())
    }

    /// Listens on `addr` for TLS connections: each accepted connection handshakes with
    /// `config`, and its protocol (built by `factory` at accept time, so the factory can
    /// refuse a peer by address before any cryptography) hears `connection_made` only once
    /// the handshake is complete. A handshake that fails or takes longer than
    /// `options.handshake_timeout` closes that connection only, and the factory's
    /// [`handshake_failed`](Factory::handshake_failed) hears why (by default, it logs it at
    /// `warn!`), between callbacks, never from inside this call.
    pub fn listen_tls_with<F: Factory>(
        &mut self,
        addr: SocketAddr,
        config: impl Into<Arc<ServerConfig>>,
        factory: F,
        options: TlsOptions,
    ) -> io::Result<ListeningPort> {
        let tls = ServerTls::new(config.into(), options);
        self.listen_boxed(addr, None, Box::new(factory), Some(Box::new(tls)))
    }

    /// Switches connection `key` to TLS with `session` (STARTTLS): what the protocol queued
    /// before goes out raw, first; `handed_back` is ciphertext that came with the plaintext.
    pub(crate) fn start_tls(
        &mut self,
        key: Key,
        session: Session,
        handed_back: &[u8],
    ) -> Result<(), TlsError> {
        let Some(conn) = self.connections.get_mut(key) else {
            return Err(TlsError::CannotStartTls("the connection is gone"));
        };
        if conn.stream.tls().is_some() {
            return Err(TlsError::CannotStartTls("the connection already uses TLS"));
        }
        let open =
            conn.phase == Phase::Open && conn.write == WriteSide::Open && !conn.has_read_ended();
        if !open {
            return Err(TlsError::CannotStartTls("the connection is closing"));
        }
        let raw = std::mem::take(&mut conn.queue);
        let tls = wrap_tls(&mut conn.stream, session);
        tls.raw_prefix = raw;
        tls.hand_back(handed_back);
        debug!("connection {}: starting TLS", ConnectionId(key));
        if !handed_back.is_empty() {
            // No socket edge will announce bytes that are already here.
            self.queue_read(key);
        }
        self.arm_handshake_timeout(key, DEFAULT_HANDSHAKE_TIMEOUT);
        self.connections.mark_dirty(key);
        Ok(())
    }

    /// Puts a server TLS layer over a connection just accepted; `connection_made` waits for
    /// the handshake, and the port's factory hears if it fails.
    pub(crate) fn start_server_handshake(
        &mut self,
        key: Key,
        session: Session,
        timeout: Duration,
        accepted: Accepted,
    ) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        wrap_tls(&mut conn.stream, session).accepted = Some(accepted);
        self.arm_handshake_timeout(key, timeout);
    }

    /// Puts a client TLS layer over a connection whose TCP connect just completed,
    /// verifying the server as `name`; the protocol is built once the handshake completes.
    pub(crate) fn start_client_handshake(
        &mut self,
        key: Key,
        config: Arc<ClientConfig>,
        name: &str,
        timeout: Duration,
    ) {
        let session = server_name(name).and_then(|name| Session::client(config, name));
        let session = match session {
            Ok(session) => session,
            Err(e) => return self.fail_connect(key, ConnectError::Tls(e)),
        };
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        conn.handshake_started();
        conn.bits.set(Bits::WRITABLE);
        wrap_tls(&mut conn.stream, session);
        debug!(
            "connection {} TCP connected; TLS handshake",
            ConnectionId(key)
        );
        self.arm_handshake_timeout(key, timeout);
        self.connections.mark_dirty(key); // the ClientHello
    }

    /// The handshake is done: a connection that waited for it is made now (a client's
    /// protocol is built first); one upgraded with STARTTLS hears `tls_handshake_completed`.
    pub(crate) fn handshake_completed(&mut self, key: Key) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        let made_now = !conn.is_made();
        let Some(tls) = conn.stream.tls_mut() else {
            return;
        };
        debug!(
            "connection {} TLS handshake complete: {:?}, ALPN {:?}",
            ConnectionId(key),
            tls.protocol_version(),
            tls.alpn_protocol().map(String::from_utf8_lossy)
        );
        let timer = tls.handshake_timer.take();
        let needs_protocol = conn.protocol.is_none() && made_now;
        // Only a client's protocol is built now (a server's was, at accept), from its peer.
        let peer = needs_protocol.then(|| conn.stream.peer_addr());
        if let Some(timer) = timer {
            self.timers.cancel(timer);
        }
        self.release_handshake(key);
        if let Some(peer) = peer {
            let Some(attempt) = self.outgoing.get_mut(key) else {
                return;
            };
            let Ok(peer) = peer else {
                return self.close_connection(key, DisconnectReason::Closed);
            };
            let protocol = attempt.factory.build(peer);
            if let Some(conn) = self.connections.get_mut(key) {
                conn.protocol = Some(protocol);
            }
        }
        // Writes queued meanwhile (by id, or by `connection_made`) can now be encrypted.
        self.connections.mark_dirty(key);
        if made_now {
            self.connection_made(key);
        } else {
            self.call(key, |p, cx| p.tls_handshake_completed(cx));
        }
    }

    /// Starts the handshake timer of a new TLS layer.
    fn arm_handshake_timeout(&mut self, key: Key, timeout: Duration) {
        let deadline = self.now() + timeout;
        let action = TimerAction::TlsHandshakeTimeout(key, timeout);
        let timer = self
            .timers
            .schedule_owned(key.token(Kind::Connection), deadline, action);
        if let Some(tls) = self
            .connections
            .get_mut(key)
            .and_then(|c| c.stream.tls_mut())
        {
            tls.handshake_timer = Some(timer);
        }
    }

    /// The handshake timer fired: a handshake still going is failed.
    pub(crate) fn tls_handshake_timed_out(&mut self, key: Key, timeout: Duration) {
        let Some(tls) = self
            .connections
            .get_mut(key)
            .and_then(|c| c.stream.tls_mut())
        else {
            return;
        };
        tls.handshake_timer = None;
        if !tls.handshake_reported {
            let error = TlsError::HandshakeTimeout(timeout);
            self.close_connection(key, DisconnectReason::Tls(error));
        }
    }

    /// A connection that was never made is closed (its handshake failed, timed out, or was
    /// abandoned): a client's factory hears why (`client_connection_failed`), and so does a
    /// server's (`handshake_failed`; no protocol was told anything).
    pub(crate) fn handshake_abandoned(
        &mut self,
        key: Key,
        conn: Connection,
        reason: DisconnectReason,
    ) {
        let accepted = conn.stream.tls().and_then(|tls| tls.accepted.clone());
        // The peer as text: a socket reset before the handshake ended may not know it.
        let peer = match (&accepted, conn.stream.peer_addr()) {
            (Some(Accepted { peer, .. }), _) => peer.to_string(),
            (None, Ok(peer)) => peer.to_string(),
            (None, Err(_)) => "a peer".to_string(),
        };
        drop(conn);
        match self.outgoing.remove(key) {
            Some(mut attempt) => {
                let error = connect_error(reason);
                debug!("connection {}: {error}", ConnectionId(key));
                attempt.factory.failed(self, error);
            }
            None => self.server_handshake_failed(accepted, &peer, reason),
        }
    }

    /// A server's handshake failed: the factory of the port that accepted the connection
    /// hears why, if the port still listens; else it is logged.
    fn server_handshake_failed(
        &mut self,
        accepted: Option<Accepted>,
        peer: &str,
        reason: DisconnectReason,
    ) {
        let error = match reason {
            DisconnectReason::Tls(e) => e,
            // This side gave up on it (a shutdown): not the peer's failure.
            DisconnectReason::Aborted => return debug!("TLS handshake with {peer} cancelled"),
            DisconnectReason::Reset(e)
            | DisconnectReason::TimedOut(e)
            | DisconnectReason::Error(e) => TlsError::Io(e),
            _ => TlsError::ClosedDuringHandshake,
        };
        let port = accepted.and_then(|a| Some((self.listeners.get_mut(a.listener)?, a.peer)));
        match port {
            Some((listener, peer)) => listener.factory.handshake_failed(peer, &error),
            None => warn!("TLS handshake with {peer} failed: {error}"),
        }
    }
}

/// Puts a TLS layer running `session` over `stream`, and returns it.
fn wrap_tls(stream: &mut AnyStream, session: Session) -> &mut TlsStream {
    stream.wrap(|inner| AnyStream::boxed(TlsStream::over(inner, session)));
    match stream.tls_mut() {
        Some(tls) => tls,
        None => unreachable!("a TLS layer was just put here"),
    }
}

/// Why a client's handshake failed, as its factory hears it.
fn connect_error(reason: DisconnectReason) -> ConnectError {
    match reason {
        DisconnectReason::Tls(e) => ConnectError::Tls(e),
        DisconnectReason::Aborted => ConnectError::Cancelled,
        DisconnectReason::Reset(e) | DisconnectReason::TimedOut(e) | DisconnectReason::Error(e) => {
            ConnectError::from_io(e)
        }
        _ => ConnectError::Tls(TlsError::ClosedDuringHandshake),
    }
}
