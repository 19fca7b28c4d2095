//! The TLS stage of one connection: a rustls connection between the socket and the
//! protocol. This is the one file that calls rustls's connection API (`read_tls`,
//! `process_new_packets`, `reader`, `writer`, `write_tls`, ...), so the next rustls API change
//! touches it alone; the reactor's read and flush paths (`tls/io.rs`) call only this.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use crate::stream::Stream;
use crate::time::TimerKey;
use crate::tls::TlsError;
use crate::write_queue::{BufferPool, WriteQueue};

/// What reading decrypted bytes out of rustls gave.
pub(crate) enum Plaintext {
    /// `n` bytes were copied into the buffer.
    Data(usize),
    /// Nothing decrypted is waiting.
    Empty,
    /// The peer sent `close_notify`: nothing more will come (a clean TLS EOF).
    CloseNotify,
    /// The TCP connection ended without `close_notify`: what came may be cut short.
    Truncated,
}

/// A rustls session not yet put over a stream.
pub(crate) struct Session(Connection);

impl Session {
    /// The server side of a handshake.
    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Session, TlsError> {
        let conn = ServerConnection::new(config).map_err(TlsError::from_rustls)?;
        Ok(Session(conn.into()))
    }

    /// The client side of a handshake, verifying the server as `name`.
    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Session, TlsError> {
        let conn = ClientConnection::new(config, name).map_err(TlsError::from_rustls)?;
        Ok(Session(conn.into()))
    }
}

/// Parses a server name for a client: a DNS name or an IP address.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string())
        .map_err(|_| TlsError::InvalidServerName(name.to_string()))
}

/// One connection's TLS state: the socket beneath, rustls above it.
pub(crate) struct TlsStream {
    /// The transport beneath: a TCP socket (or the test harness's in-memory peer).
    pub(crate) inner: Stream,
    conn: Connection,
    /// Plaintext queued before `start_tls`: it goes out raw, before the first TLS byte.
    pub(crate) raw_prefix: WriteQueue,
    /// Ciphertext already read that rustls is still to take: bytes the protocol received
    /// before `start_tls` and handed back, or the rest of a socket read that arrived while
    /// the protocol paused reading. Read before the socket; empty (no heap) otherwise.
    handed_back: Vec<u8>,
    /// The pending handshake timeout.
    pub(crate) handshake_timer: Option<TimerKey>,
    /// The end of the handshake has been acted on (the protocol was told).
    pub(crate) handshake_reported: bool,
    close_notify_sent: bool,
    /// rustls holds decrypted bytes not yet delivered (reading was paused mid-delivery).
    plaintext_waiting: bool,
}

impl TlsStream {
    fn new(inner: Stream, conn: Connection) -> TlsStream {
        // rustls's buffer limits stay at their defaults (64 KiB of records waiting to be
        // written; 16 KiB of received plaintext): the backlog is the write queue's, so the
        // watermarks see it.
        TlsStream {
            inner,
            conn,
            raw_prefix: WriteQueue::default(),
            handed_back: Vec::new(),
            handshake_timer: None,
            handshake_reported: false,
            close_notify_sent: false,
            plaintext_waiting: false,
        }
    }

    /// The stage over `inner`, for a session made beforehand (so that a failure to make one
    /// leaves the stream untouched).
    pub(crate) fn over(inner: Stream, session: Session) -> TlsStream {
        TlsStream::new(inner, session.0)
    }

    /// Queues `bytes` to be read before anything from the socket.
    pub(crate) fn hand_back(&mut self, bytes: &[u8]) {
        self.handed_back.extend_from_slice(bytes);
    }

    /// Whether ciphertext handed back is still to be read.
    pub(crate) fn has_handed_back(&self) -> bool {
        !self.handed_back.is_empty()
    }

    /// Takes the ciphertext handed back, to feed it.
    pub(crate) fn take_handed_back(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.handed_back)
    }

    /// Gives rustls ciphertext read from the socket (`data` not empty). Returns how much it
    /// took: at most what its record buffer has room for (so: feed, `process`, repeat), and
    /// 0 once the peer's `close_notify` is in (nothing after it is read).
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> io::Result<usize> {
        debug_assert!(!data.is_empty(), "an empty read tells rustls of EOF");
        self.conn.read_tls(&mut data)
    }

    /// Tells rustls the socket reached EOF.
    pub(crate) fn feed_eof(&mut self) {
        // An empty reader is EOF to rustls; it cannot fail.
        let _ = self.conn.read_tls(&mut io::empty());
    }

    /// Decrypts and acts on the records read so far (handshake messages, alerts, data).
    pub(crate) fn process(&mut self) -> Result<(), TlsError> {
        let state = self
            .conn
            .process_new_packets()
            .map_err(TlsError::from_rustls)?;
        self.plaintext_waiting = state.plaintext_bytes_to_read() > 0 || state.peer_has_closed();
        Ok(())
    }

    /// Copies decrypted bytes into `buf` (which must not be empty).
    pub(crate) fn read_plaintext(&mut self, buf: &mut [u8]) -> io::Result<Plaintext> {
        match self.conn.reader().read(buf) {
            Ok(0) => {
                self.plaintext_waiting = false;
                Ok(Plaintext::CloseNotify)
            }
            Ok(n) => Ok(Plaintext::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.plaintext_waiting = false;
                Ok(Plaintext::Empty)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.plaintext_waiting = false;
                Ok(Plaintext::Truncated)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether rustls holds decrypted bytes (or a clean end) not yet delivered.
    pub(crate) fn plaintext_waiting(&self) -> bool {
        self.plaintext_waiting
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether anything waits to be written: raw bytes from before `start_tls`, or records
    /// rustls has made (handshake, alerts, encrypted data).
    pub(crate) fn has_output(&self) -> bool {
        !self.raw_prefix.is_empty() || self.conn.wants_write()
    }

    /// Writes until the socket would block or nothing is left: the raw prefix, then the
    /// plaintext of `queue` encrypted, as much as rustls's buffer limit takes at a time (so
    /// the backlog stays in the queue, where the watermarks see it). Returns whether output
    /// is still pending (the socket would block).
    pub(crate) fn flush(
        &mut self,
        queue: &mut WriteQueue,
        pool: &mut BufferPool,
    ) -> io::Result<bool> {
        if !self.raw_prefix.is_empty() {
            self.raw_prefix.write_to(&mut self.inner, pool)?;
            if !self.raw_prefix.is_empty() {
                return Ok(true);
            }
        }
        if self.close_notify_sent && !queue.is_empty() {
            // Written after the TLS stream ended (by id, from elsewhere): it cannot be sent,
            // and must not keep the close waiting.
            log::debug!("dropping {} bytes written after close_notify", queue.len());
            *queue = WriteQueue::default();
        }
        loop {
            if !queue.is_empty() && !self.conn.is_handshaking() {
                queue.write_to(&mut PlaintextSink(&mut self.conn), pool)?;
            }
            if !self.conn.wants_write() {
                return Ok(false);
            }
            match self.conn.write_tls(&mut self.inner) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what rustls holds (a fatal alert, say) without waiting, ignoring errors: the
    /// connection is being closed anyway.
    pub(crate) fn flush_best_effort(&mut self) {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.inner) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
        }
    }

    /// Queues the `close_notify` alert (once): the clean end of this side's TLS stream.
    pub(crate) fn send_close_notify(&mut self) {
        if !self.close_notify_sent {
            self.close_notify_sent = true;
            self.conn.send_close_notify();
        }
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify_sent
    }

    /// The peer's certificate chain, once the handshake has verified it (end entity first).
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// On a server, the name the client asked for with SNI.
    pub(crate) fn sni_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(server) => server.server_name(),
            Connection::Client(_) => None,
        }
    }

    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    pub(crate) fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }
}

/// rustls's plaintext writer as a sink for the write queue: a full rustls buffer (`Ok(0)`)
/// reads as `WouldBlock`, so the queue keeps the rest.
struct PlaintextSink<'a>(&'a mut Connection);

impl Write for PlaintextSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.0.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
