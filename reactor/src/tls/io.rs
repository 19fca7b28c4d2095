//! The reactor's side of the TLS stage: reading (socket into the stage's buffer, rustls,
//! decrypted bytes to the protocol), flushing (the plaintext queue through rustls to the socket), the end of
//! the handshake (when the protocol hears `connection_made`), its timeout, and its failure.
//! Nothing here calls rustls: the stage module (`stage.rs`) does.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, warn};

use crate::delayed_call::TimerAction;
use crate::reactor::{connection_in, READ_BUDGET_PER_TURN};
use crate::slot::{flag, Connection, ConnectionId, Key};
use crate::tls::buffers::READ_SIZE;
use crate::tls::stage::{Plaintext, Session};
use crate::tls::TlsError;
use crate::write_queue::BufferPool;
use crate::{ConnectError, DisconnectReason, Reactor};

impl Reactor {
    /// Reads a TLS connection: ciphertext the stage already holds is processed first
    /// (handed back by `start_tls`, or kept while reading was paused), then the socket is
    /// read until WouldBlock, a short read, EOF, a pause, or the turn's budget, each read
    /// processed as it comes: rustls decrypts the records in place in the stage's buffer and
    /// the protocol is handed the plaintext, copied into the reactor's read buffer (up to
    /// 64 KiB, so a few records per `data_received`).
    pub(crate) fn read_ready_tls(&mut self, key: Key) {
        let mut plain = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET_PER_TURN;
        while self.process_received(key, &mut plain) {
            let Some(conn) = self.connection_mut(key) else {
                break;
            };
            let n = match read_socket(conn) {
                None => break,
                Some(Ok(n)) => n,
                Some(Err(e)) => {
                    self.close_connection(key, DisconnectReason::from_io(e));
                    break;
                }
            };
            if n == 0 {
                self.tls_eof(key, &mut plain);
                break;
            }
            if n == READ_SIZE {
                // A full read: more is waiting. The protocol gets what it decrypts to now,
                // and its answer is sent before the next read (see `settle_if_bulk`).
                if !self.process_received(key, &mut plain) {
                    break;
                }
                self.settle_if_bulk(key);
            }
            budget = budget.saturating_sub(n);
            if budget == 0 {
                self.process_received(key, &mut plain);
                self.queue_read(key);
                break;
            }
        }
        self.read_buf = plain;
    }

    /// Lets rustls act on the ciphertext received (handshake messages, alerts, data) and
    /// hands the protocol what it decrypts, until all of it is processed (true: read the
    /// socket for more) or the protocol may take no more (false): reading paused, closing,
    /// the peer's `close_notify` (then `eof_received`), a TLS error (the connection is
    /// closed, after trying to send rustls's alert), or the connection gone. The end of the
    /// handshake tells the protocol before any data; records rustls wants to send
    /// (handshake, alerts) are flushed at the end of the turn.
    fn process_received(&mut self, key: Key, buf: &mut [u8]) -> bool {
        loop {
            let Some(conn) = self.connection_mut(key) else {
                return false;
            };
            if !conn.may_read() {
                return false;
            }
            let Some(tls) = conn.socket.tls_mut() else {
                return false;
            };
            let result = tls.read_plaintext(buf);
            if let Err(e) = result {
                tls.flush_best_effort();
                self.close_connection(key, DisconnectReason::Tls(e));
                return false;
            }
            let finished = !tls.handshake_reported && !tls.is_handshaking();
            if conn.has_output() {
                self.mark_dirty(key);
            }
            if finished {
                self.handshake_completed(key);
                if matches!(result, Ok(Plaintext::Empty)) {
                    continue; // data that came with the end of the handshake, now it is told
                }
            }
            match result {
                Ok(Plaintext::Data(n)) => {
                    self.callback(key, |p, cx| p.data_received(cx, &buf[..n]))
                }
                Ok(Plaintext::Empty) | Err(_) => return true,
                Ok(Plaintext::CloseNotify) => {
                    self.tls_close_notify(key);
                    return false;
                }
                Ok(Plaintext::Truncated) => {
                    self.close_connection(key, DisconnectReason::Truncated);
                    return false;
                }
            }
        }
    }

    /// The peer's `close_notify`: its stream ended cleanly (`eof_received`).
    fn tls_close_notify(&mut self, key: Key) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        conn.set(flag::EOF);
        conn.clear(flag::READABLE);
        debug!("connection {} received TLS close_notify", ConnectionId(key));
        self.callback(key, |p, cx| p.eof_received(cx));
        self.mark_dirty(key);
    }

    /// The socket reached EOF: the protocol gets what is left and then, if the peer sent
    /// `close_notify`, `eof_received`; if not, the connection closes as truncated.
    fn tls_eof(&mut self, key: Key, buf: &mut [u8]) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        let handshaking = conn.has(flag::HANDSHAKING)
            || conn.socket.tls().is_some_and(|tls| tls.is_handshaking());
        if handshaking {
            let error = TlsError::ClosedDuringHandshake;
            return self.close_connection(key, DisconnectReason::Tls(error));
        }
        if let Some(tls) = conn.socket.tls_mut() {
            tls.feed_eof();
        }
        if self.process_received(key, buf) {
            // Reading stopped with the data, before rustls could say how the stream ended.
            self.close_connection(key, DisconnectReason::Truncated);
        }
    }

    /// The handshake is done: a `listen_tls`/TLS `connect` connection is made now (a client's
    /// protocol is built first); a `start_tls` one hears `tls_handshake_completed`.
    fn handshake_completed(&mut self, key: Key) {
        let Some(conn) = connection_in(&mut self.slots, key) else {
            return;
        };
        let Some(tls) = conn.socket.tls_mut() else {
            return;
        };
        tls.handshake_reported = true;
        debug!(
            "connection {} TLS handshake complete: {:?}, ALPN {:?}",
            ConnectionId(key),
            tls.protocol_version(),
            tls.alpn_protocol().map(String::from_utf8_lossy)
        );
        let timer = tls.handshake_timer.take();
        let made_now = conn.has(flag::HANDSHAKING);
        conn.clear(flag::HANDSHAKING);
        if conn.protocol.is_none() && made_now {
            let peer = conn.socket.peer_addr();
            let Some(outgoing) = self.outgoing.get_mut(&key) else {
                return;
            };
            let Ok(peer) = peer else {
                return self.close_connection(key, DisconnectReason::Closed);
            };
            let protocol = outgoing.factory.build(peer);
            if let Some(conn) = connection_in(&mut self.slots, key) {
                conn.protocol = Some(protocol);
            }
        }
        if let Some(timer) = timer {
            self.cancel_timer(timer);
        }
        // Writes queued meanwhile (by id, or by `connection_made`) can now be encrypted.
        self.mark_dirty(key);
        if made_now {
            self.callback(key, |p, cx| p.connection_made(cx));
        } else {
            self.callback(key, |p, cx| p.tls_handshake_completed(cx));
        }
    }

    /// Starts the handshake timer of a new TLS stage.
    pub(crate) fn arm_handshake_timeout(&mut self, key: Key, timeout: Duration) {
        let deadline = self.now() + timeout;
        let timer = self
            .timers
            .schedule(deadline, TimerAction::TlsHandshakeTimeout(key, timeout));
        self.connection_timers.entry(key).or_default().push(timer);
        if let Some(tls) = self.connection_mut(key).and_then(|c| c.socket.tls_mut()) {
            tls.handshake_timer = Some(timer);
        }
    }

    /// The handshake timer fired: a handshake still going is failed.
    pub(crate) fn tls_handshake_timed_out(&mut self, key: Key, timeout: Duration) {
        let Some(tls) = self.connection_mut(key).and_then(|c| c.socket.tls_mut()) else {
            return;
        };
        tls.handshake_timer = None;
        if !tls.handshake_reported {
            let error = TlsError::HandshakeTimeout(timeout);
            self.close_connection(key, DisconnectReason::Tls(error));
        }
    }

    /// Puts a server TLS stage over a connection just accepted; `connection_made` waits for
    /// the handshake, and the port's factory hears if it fails.
    pub(crate) fn start_server_handshake(
        &mut self,
        key: Key,
        session: Session,
        timeout: Duration,
        accepted: Accepted,
    ) {
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        conn.set(flag::HANDSHAKING);
        conn.socket.wrap_tls(session).accepted = Some(accepted);
        self.arm_handshake_timeout(key, timeout);
    }

    /// Puts a client TLS stage over a connection whose TCP connect to `peer` just completed;
    /// the protocol is built once the handshake completes.
    pub(crate) fn start_client_handshake(&mut self, key: Key, tls: ClientTls, peer: SocketAddr) {
        let name = tls.name.unwrap_or_else(|| peer.ip().into());
        let session = match Session::client(tls.config, name) {
            Ok(session) => session,
            Err(e) => return self.fail_connect(key, ConnectError::Tls(e)),
        };
        let Some(conn) = self.connection_mut(key) else {
            return;
        };
        conn.clear(flag::CONNECTING);
        conn.set(flag::WRITABLE | flag::HANDSHAKING);
        conn.socket.wrap_tls(session);
        debug!(
            "connection {} TCP connected; TLS handshake",
            ConnectionId(key)
        );
        self.arm_handshake_timeout(key, tls.handshake_timeout);
        self.mark_dirty(key); // the ClientHello
    }

    /// A connection whose handshake never completed is closed: a client's factory hears why
    /// (`client_connection_failed`), and so does a server's (`handshake_failed`; no protocol
    /// was told anything).
    pub(crate) fn handshake_abandoned(
        &mut self,
        key: Key,
        conn: Connection,
        reason: DisconnectReason,
    ) {
        let accepted = conn.socket.tls().and_then(|tls| tls.accepted);
        // The peer as text: a socket reset before the handshake ended may not know it.
        let peer = match (accepted, conn.socket.peer_addr()) {
            (Some(Accepted { peer, .. }), _) | (None, Ok(peer)) => peer.to_string(),
            (None, Err(_)) => "a peer".to_string(),
        };
        drop(conn);
        match self.outgoing.remove(&key) {
            Some(mut outgoing) => {
                let error = connect_error(reason);
                debug!("connection {}: {error}", ConnectionId(key));
                outgoing.factory.failed(self, error);
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
        let port = accepted.and_then(|a| Some((self.listener_mut(a.listener)?, a.peer)));
        match port {
            Some((listener, peer)) => listener.factory.handshake_failed(peer, &error),
            None => warn!("TLS handshake with {peer} failed: {error}"),
        }
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

/// Which `listen_tls` port accepted a connection, and from whom: kept in the connection's
/// TLS stage, so that the port's factory can hear of a failed handshake.
#[derive(Clone, Copy)]
pub(crate) struct Accepted {
    /// The listener's slot; stale once the port stops listening.
    pub(crate) listener: Key,
    pub(crate) peer: SocketAddr,
}

/// Reads the socket beneath the stage if the connection may read: `None` to stop (nothing
/// to read now, or not allowed), else the bytes read, 0 at EOF. As for plain TCP, a short
/// read means the socket is drained, unless the peer's FIN is in (then read on to EOF).
fn read_socket(conn: &mut Connection) -> Option<io::Result<usize>> {
    if !conn.wants_read() {
        return None;
    }
    let read_closed = conn.has(flag::READ_CLOSED);
    let result = loop {
        match conn.socket.tls_mut()?.read_socket() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => break result,
        }
    };
    match result {
        Ok(n) if n == 0 || n < READ_SIZE && !read_closed => conn.clear(flag::READABLE),
        Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => {
            conn.clear(flag::READABLE);
            return None;
        }
        _ => {}
    }
    Some(result)
}

/// Flushes a TLS connection: what the stage holds, then the queue's plaintext encrypted.
/// Skips the syscall when the socket last said WouldBlock and no writable edge came since.
pub(crate) fn flush_tls(conn: &mut Connection, pool: &mut BufferPool) -> io::Result<()> {
    if !conn.has(flag::WRITABLE) || conn.has(flag::WRITE_SHUT) {
        return Ok(());
    }
    let Some(tls) = conn.socket.tls_mut() else {
        return Ok(());
    };
    if tls.flush(&mut conn.queue, pool)? {
        conn.clear(flag::WRITABLE);
    }
    Ok(())
}

/// Queues `close_notify` (once) and flushes it: the clean end of a TLS connection's write
/// side, before its TCP close or half-close. True once nothing is left to write.
pub(crate) fn close_notify(conn: &mut Connection, pool: &mut BufferPool) -> io::Result<bool> {
    let Some(tls) = conn.socket.tls_mut() else {
        return Ok(true);
    };
    if !tls.close_notify_sent() {
        tls.send_close_notify();
        flush_tls(conn, pool)?;
    }
    Ok(!conn.has_output())
}

/// What a TLS client needs once its TCP connection is made.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub(crate) config: std::sync::Arc<rustls::ClientConfig>,
    /// The name the server's certificate is verified for; `None`: the IP address connected
    /// to, which differs from one address tried to the next.
    pub(crate) name: Option<rustls::pki_types::ServerName<'static>>,
    pub(crate) handshake_timeout: Duration,
}
