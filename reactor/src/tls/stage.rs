//! The TLS stage of one connection: a rustls connection, on rustls's *unbuffered* API, between
//! the socket and the protocol. This module (this file and its flush side, `stage/writing.rs`)
//! is the one place that calls rustls's connection API
//! (`process_tls_records` and the states it returns: decrypting, encoding handshake records,
//! encrypting), so the next rustls API change touches it alone; the layer (`layer.rs`, the
//! stage as a [`Stream`](crate::stream::Stream)) calls only this.
//!
//! The stage owns the two ciphertext buffers rustls works in (`buffers.rs`): received records
//! are decrypted in place in the one, records to send are encrypted into the other, and each
//! goes back to a pool when it empties. rustls itself buffers neither side's records.
//!
//! rustls wants every state it returns handled before it is called again, and `discard` bytes
//! removed from the front of the received ciphertext each time. It is called from two places:
//! reading (`read_plaintext`: decrypt, hand over plaintext, encode handshake replies) and
//! flushing (`fill`: encrypt the write queue). The flush must never decrypt (reading may be
//! paused, and the ciphertext must then wait undecrypted), so it shows rustls only the prefix
//! of the received bytes that rustls has already seen through (`seen`): what it holds of a
//! handshake message being joined, or the start of an incomplete record. Nothing in that
//! prefix can be a new record.

use std::io;
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, InsufficientSizeError, UnbufferedStatus,
};
use rustls::{ClientConfig, CommonState, ServerConfig};

use crate::stream::{AnyStream, Bits, Fault, Input, Raw, ReadState, Stream};
use crate::timers::TimerKey;
use crate::tls::buffers::{CipherBuffer, READ_SIZE};
use crate::tls::sni;
use crate::tls::Accepted;
use crate::tls::TlsError;
use crate::write_queue::{BufferPool, WriteQueue};

mod writing;

use writing::Writing;

/// The largest plaintext of one record (RFC 8446 §5.1): a read asks rustls to decrypt only
/// while the caller's buffer has this much room, so a decrypted record always fits.
const MAX_PLAINTEXT: usize = 1 << 14;

/// What encrypting one full record adds to its plaintext, at most, over ring's cipher suites
/// (TLS 1.2 AES-GCM: 5 header + 8 nonce + 16 tag = 29), with a margin.
const RECORD_OVERHEAD: usize = 64;

/// What reading decrypted bytes gave.
pub(crate) enum Plaintext {
    /// `n` bytes were decrypted into the buffer.
    Data(usize),
    /// Nothing decrypted: more ciphertext is needed.
    Empty,
    /// The peer sent `close_notify`: nothing more will come (a clean TLS EOF).
    CloseNotify,
    /// The TCP connection ended without `close_notify`: what came may be cut short.
    Truncated,
}

enum Conn {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// A rustls session not yet put over a stream.
pub(crate) struct Session(Conn);

impl Session {
    /// The server side of a handshake (`config` from `sni::recording`, so the name the
    /// client asks for can be read back).
    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Session, TlsError> {
        let conn = UnbufferedServerConnection::new(config).map_err(TlsError::from_rustls)?;
        Ok(Session(Conn::Server(conn)))
    }

    /// The client side of a handshake, verifying the server as `name`.
    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Session, TlsError> {
        let conn = UnbufferedClientConnection::new(config, name).map_err(TlsError::from_rustls)?;
        Ok(Session(Conn::Client(conn)))
    }
}

/// Parses a server name for a client: a DNS name or an IP address.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string())
        .map_err(|_| TlsError::InvalidServerName(name.to_string()))
}

/// Where `close_notify` stands on this side.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CloseNotify {
    NotAsked,
    /// Asked for; encrypted into the outgoing buffer once the queue before it is.
    Asked,
    /// Encrypted (or given up on: asked before the handshake completed).
    Done,
}

/// What one call to rustls came to, once the state it returned was acted on.
enum Step {
    /// More plaintext decrypted into the caller's buffer.
    Read(usize),
    /// A transient state was handled (a handshake record encoded or sent): call again.
    Again,
    /// Nothing more to do without more ciphertext (or, flushing, the queue was encrypted).
    Settled,
    /// rustls holds a decrypted record the caller could not take now.
    Held,
    /// The peer's `close_notify` came (rustls says so once).
    PeerClosed,
    /// Both sides have sent `close_notify`.
    Closed,
}

/// One connection's TLS state: the socket beneath, rustls above it, and the ciphertext
/// buffers between them.
pub(crate) struct TlsStream {
    /// The stream beneath: a TCP socket, or any other stream (the test harness's peer).
    pub(crate) inner: AnyStream,
    conn: Conn,
    /// Ciphertext received and not yet discarded by rustls: ciphertext handed back by
    /// `start_tls`, the rest of a read while reading is paused, an incomplete record, a
    /// handshake message being joined. At most one maximal record plus a read's worth
    /// (`buffers::CIPHER_BUFFER_SIZE`), and no memory at all while empty.
    incoming: CipherBuffer,
    /// How much of `incoming`'s front rustls has seen through (see the module docs).
    seen: usize,
    /// Records to send, not yet taken by the socket.
    outgoing: CipherBuffer,
    /// Plaintext already taken out of rustls that the reader has not had yet (only when a
    /// flush found a decrypted record waiting: rare, see `fill`).
    held: Vec<u8>,
    /// rustls holds a decrypted record not yet taken.
    record_waiting: bool,
    /// Plaintext queued before `start_tls`: it goes out raw, before the first TLS byte.
    pub(crate) raw_prefix: WriteQueue,
    /// The pending handshake timeout.
    pub(crate) handshake_timer: Option<TimerKey>,
    /// The end of the handshake has been reported to the reader (`Input::HandshakeDone`).
    pub(crate) handshake_reported: bool,
    /// What the read that completed the handshake brought besides, told right after it.
    pub(crate) after_handshake: Option<Input>,
    /// Plaintext was handed over since the stream beneath was last read (the layer then says
    /// `Input::Refill` before reading it again).
    pub(crate) delivered: bool,
    /// On a connection accepted by a `listen_tls` port: which port, and from whom (told if
    /// the handshake fails). Kept here so that `Connection` does not grow.
    pub(crate) accepted: Option<Accepted>,
    close_notify: CloseNotify,
    /// rustls said the peer's `close_notify` came; `peer_close_told` once the reader knows.
    peer_closed: bool,
    peer_close_told: bool,
    /// The socket reached EOF.
    eof: bool,
    /// An error found while plaintext was still to be handed over: reported next.
    error: Option<rustls::Error>,
    /// On a server, the name the client asked for (SNI).
    sni: Option<String>,
}

impl TlsStream {
    /// The stage over `inner`, for a session made beforehand (so that a failure to make one
    /// leaves the stream untouched).
    pub(crate) fn over(inner: AnyStream, session: Session) -> TlsStream {
        TlsStream {
            inner,
            conn: session.0,
            incoming: CipherBuffer::default(),
            seen: 0,
            outgoing: CipherBuffer::default(),
            held: Vec::new(),
            record_waiting: false,
            raw_prefix: WriteQueue::default(),
            handshake_timer: None,
            handshake_reported: false,
            after_handshake: None,
            delivered: false,
            accepted: None,
            close_notify: CloseNotify::NotAsked,
            peer_closed: false,
            peer_close_told: false,
            eof: false,
            error: None,
            sni: None,
        }
    }

    /// Queues ciphertext to be processed before anything read from the socket.
    pub(crate) fn hand_back(&mut self, bytes: &[u8]) {
        self.incoming.extend(bytes);
    }

    /// Whether received ciphertext waits to be processed.
    #[cfg(test)]
    pub(crate) fn has_handed_back(&self) -> bool {
        !self.incoming.is_empty()
    }

    /// Reads the stream beneath into the incoming buffer (a read's worth at most), if it is
    /// readable and this turn's budget allows: what the stream beneath said.
    pub(crate) fn read_inner(&mut self, state: &mut ReadState<'_>) -> Result<Input, Fault> {
        if !state.bits.has(Bits::READABLE) {
            return Ok(Input::Pending);
        }
        if state.spent() {
            return Ok(Input::Yield);
        }
        let room = &mut self.incoming.spare(READ_SIZE)[..READ_SIZE];
        let input = self.inner.read(room, state);
        let n = match input {
            Ok(Input::Data(n)) => n,
            _ => 0,
        };
        self.incoming.filled(n); // an empty buffer goes back to the pool
        input
    }

    /// Notes that the stream beneath reached EOF.
    pub(crate) fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Whether the stream beneath reached EOF.
    pub(crate) fn saw_eof(&self) -> bool {
        self.eof
    }

    /// Processes the ciphertext received so far (handshake messages, alerts, data), with
    /// decrypted bytes going into `buf`, as many records as fit. Handshake records to send
    /// are encoded into the outgoing buffer (`has_output` then says so). No plaintext is
    /// given in the call that completes the handshake, so that the reactor can tell the
    /// protocol first.
    pub(crate) fn read_plaintext(&mut self, buf: &mut [u8]) -> Result<Plaintext, TlsError> {
        if let Some(e) = self.error.take() {
            return Err(TlsError::from_rustls(e));
        }
        let mut n = self.take_held(buf);
        if !self.held.is_empty() {
            return Ok(Plaintext::Data(n)); // the rest of it first, before anything newer
        }
        let handshaking = self.is_handshaking();
        while n == 0 || buf.len() - n >= MAX_PLAINTEXT {
            let room = if handshaking {
                None
            } else {
                Some(&mut buf[n..])
            };
            match self.step_reading(room) {
                Ok(Step::Read(k)) => n += k,
                Ok(Step::Again) => {}
                Ok(Step::PeerClosed) => self.peer_closed = true,
                Ok(Step::Settled | Step::Held | Step::Closed) => break,
                Err(e) if n > 0 => {
                    self.error = Some(e);
                    break;
                }
                Err(e) => return Err(TlsError::from_rustls(e)),
            }
        }
        Ok(self.reading_result(n))
    }

    fn reading_result(&mut self, n: usize) -> Plaintext {
        if n > 0 {
            Plaintext::Data(n)
        } else if self.peer_closed && !self.peer_close_told {
            self.peer_close_told = true;
            Plaintext::CloseNotify
        } else if self.eof && !self.peer_close_told && !self.record_waiting {
            Plaintext::Truncated
        } else {
            Plaintext::Empty
        }
    }

    /// Plaintext a flush took out of rustls, first.
    fn take_held(&mut self, buf: &mut [u8]) -> usize {
        let n = self.held.len().min(buf.len());
        buf[..n].copy_from_slice(&self.held[..n]);
        self.held.drain(..n);
        if self.held.is_empty() {
            self.held = Vec::new();
        }
        n
    }

    /// One call to rustls with everything received, its state acted on, the processed
    /// bytes discarded.
    fn step_reading(&mut self, room: Option<&mut [u8]>) -> Result<Step, rustls::Error> {
        let view = self.incoming.data_mut();
        let (discard, step) = match &mut self.conn {
            Conn::Server(c) => on_reading(c.process_tls_records(view), &mut self.outgoing, room),
            Conn::Client(c) => on_reading(c.process_tls_records(view), &mut self.outgoing, room),
        };
        self.incoming.consume(discard);
        self.capture_sni();
        let step = step?;
        self.record_waiting = matches!(step, Step::Held);
        self.seen = match step {
            // rustls went through every complete record there: what is left is what it holds
            // of a handshake message being joined, or the start of an incomplete record.
            Step::Settled => self.incoming.len(),
            // A data record or the peer's close: no handshake message is being joined (RFC
            // 8446 §5.1: none may be interleaved with other records), so nothing is held.
            _ => 0,
        };
        Ok(step)
    }

    /// On a server, keeps the name the client asked for once rustls has seen it.
    fn capture_sni(&mut self) {
        if self.sni.is_none() && matches!(self.conn, Conn::Server(_)) {
            self.sni = sni::take_recorded();
        }
    }

    /// Whether rustls holds decrypted bytes, a clean end, or received ciphertext not yet
    /// processed: a reader resuming should look.
    pub(crate) fn plaintext_waiting(&self) -> bool {
        self.record_waiting
            || !self.held.is_empty()
            || !self.incoming.is_empty()
            || self.peer_closed && !self.peer_close_told
    }

    /// What both sides share: handshake state, peer certificates, ALPN, version.
    fn common(&self) -> &CommonState {
        match &self.conn {
            Conn::Server(c) => c,
            Conn::Client(c) => c,
        }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Whether anything waits to be written: raw bytes from before `start_tls`, records
    /// made (handshake, alerts, encrypted data), or a `close_notify` asked for.
    pub(crate) fn has_output(&self) -> bool {
        !self.raw_prefix.is_empty()
            || !self.outgoing.is_empty()
            || self.close_notify == CloseNotify::Asked
    }

    /// Writes until the stream beneath would block or nothing is left: the raw prefix, then
    /// the plaintext of `queue` encrypted, a buffer's worth at a time (so the backlog stays in
    /// the queue, where the watermarks see it). Returns the bytes written beneath and whether
    /// output is still pending (the stream would block).
    pub(crate) fn flush(
        &mut self,
        queue: &mut WriteQueue,
        pool: &mut BufferPool,
    ) -> Result<(usize, bool), Fault> {
        let mut sent = 0;
        if !self.raw_prefix.is_empty() {
            sent += self.raw_prefix.write_to(&mut Raw(&mut self.inner), pool)?;
            if !self.raw_prefix.is_empty() {
                return Ok((sent, true));
            }
        }
        if self.close_notify != CloseNotify::NotAsked && !queue.is_empty() {
            // Written after the TLS stream ended (by id, from elsewhere): it cannot be sent,
            // and must not keep the close waiting.
            log::debug!("dropping {} bytes written after close_notify", queue.len());
            *queue = WriteQueue::default();
        }
        loop {
            self.fill(queue, pool)?;
            if self.outgoing.is_empty() {
                return Ok((sent, false));
            }
            match self.inner.write(self.outgoing.data()) {
                Ok(0) => return Err(Fault::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.outgoing.consume(n);
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((sent, true)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Io(e)),
            }
        }
    }

    /// Lets rustls make what it has to send, then (handshake complete) encrypts the queue
    /// into the outgoing buffer while it has room, then `close_notify` if asked for and the
    /// queue is empty. rustls sees only the prefix it has seen through: never a new record.
    fn fill(&mut self, queue: &mut WriteQueue, pool: &mut BufferPool) -> Result<(), Fault> {
        if self.close_notify == CloseNotify::Asked && self.is_handshaking() {
            // No close_notify before the handshake completes: the close goes ahead without.
            self.close_notify = CloseNotify::Done;
        }
        loop {
            let view: &mut [u8] = match self.seen {
                0 => &mut [],
                n => &mut self.incoming.data_mut()[..n],
            };
            let mut writing = Writing {
                outgoing: &mut self.outgoing,
                queue: &mut *queue,
                pool: &mut *pool,
                held: &mut self.held,
                close_notify: &mut self.close_notify,
            };
            let (discard, step) = match &mut self.conn {
                Conn::Server(c) => writing.on(c.process_tls_records(view)),
                Conn::Client(c) => writing.on(c.process_tls_records(view)),
            };
            self.incoming.consume(discard);
            self.seen = self.seen.saturating_sub(discard);
            self.capture_sni();
            if !self.held.is_empty() {
                self.record_waiting = false; // moved aside, for the reader
            }
            match step.map_err(|e| Fault::Tls(TlsError::from_rustls(e)))? {
                Step::Again => {}
                Step::PeerClosed => self.peer_closed = true,
                _ => return Ok(()),
            }
        }
    }

    /// After a TLS error: encodes the alert rustls made and writes what can be written
    /// without waiting, ignoring errors (the connection is being closed anyway).
    ///
    /// One call to rustls only: a failed rustls hands out the alert it queued before it
    /// looks at the received bytes again (which would fail again, and alert twice).
    pub(crate) fn flush_best_effort(&mut self) {
        let _ = self.step_reading(None);
        while !self.outgoing.is_empty() {
            match self.inner.write(self.outgoing.data()) {
                Ok(n) if n > 0 => self.outgoing.consume(n),
                _ => return,
            }
        }
    }

    /// Asks for the `close_notify` alert (once): the clean end of this side's TLS stream,
    /// sent after what is queued.
    pub(crate) fn send_close_notify(&mut self) {
        if self.close_notify == CloseNotify::NotAsked {
            self.close_notify = CloseNotify::Asked;
        }
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify != CloseNotify::NotAsked
    }

    /// Heap bytes the stage's buffers hold (not counting rustls's own state).
    #[cfg(test)]
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.held.capacity()
    }

    /// The peer's certificate chain, once the handshake has verified it (end entity first).
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    /// On a server, the name the client asked for with SNI.
    pub(crate) fn sni_name(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    pub(crate) fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.common().protocol_version()
    }
}

/// Acts on a state rustls returned while reading: decrypted records go into `room` (if
/// plaintext may be handed over now), handshake records into `outgoing`. Returns the bytes
/// to discard and the outcome.
fn on_reading<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    outgoing: &mut CipherBuffer,
    room: Option<&mut [u8]>,
) -> (usize, Result<Step, rustls::Error>) {
    let mut discard = status.discard;
    let step = match status.state {
        Err(e) => Err(e),
        Ok(ConnectionState::ReadTraffic(mut traffic)) => {
            let Some(room) = room else {
                return (discard, Ok(Step::Held));
            };
            let mut n = 0;
            while traffic
                .peek_len()
                .is_some_and(|len| len.get() <= room.len() - n)
            {
                match traffic.next_record() {
                    Some(Ok(record)) => {
                        room[n..n + record.payload.len()].copy_from_slice(record.payload);
                        n += record.payload.len();
                        discard += record.discard;
                    }
                    Some(Err(e)) => return (discard, Err(e)),
                    None => break,
                }
            }
            Ok(if n > 0 { Step::Read(n) } else { Step::Held })
        }
        Ok(state) => on_common(state, outgoing),
    };
    (discard, step)
}

/// Acts on the states reading and flushing handle alike.
fn on_common<Data>(
    state: ConnectionState<'_, '_, Data>,
    outgoing: &mut CipherBuffer,
) -> Result<Step, rustls::Error> {
    match state {
        ConnectionState::EncodeTlsData(mut data) => {
            encode(&mut data, outgoing).map(|_| Step::Again)
        }
        // The records are in `outgoing`, which the flush at the end of the turn sends (and
        // never twice); rustls need not wait for the socket.
        ConnectionState::TransmitTlsData(data) => {
            data.done();
            Ok(Step::Again)
        }
        ConnectionState::PeerClosed => Ok(Step::PeerClosed),
        ConnectionState::Closed => Ok(Step::Closed),
        ConnectionState::ReadEarlyData(_) => Err(rustls::Error::General(
            "TLS 1.3 early data (0-RTT) is not supported".into(),
        )),
        // BlockedHandshake, WriteTraffic, and whatever a later rustls adds.
        _ => Ok(Step::Settled),
    }
}

/// Encodes a handshake record into `outgoing`, making room if it does not fit.
fn encode<Data>(
    data: &mut EncodeTlsData<'_, Data>,
    outgoing: &mut CipherBuffer,
) -> Result<(), rustls::Error> {
    let mut need = 0;
    loop {
        let room = match need {
            0 => outgoing.room(),
            n => outgoing.spare(n),
        };
        match data.encode(room) {
            Ok(n) => {
                outgoing.filled(n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size }))
                if need == 0 =>
            {
                need = required_size
            }
            Err(e) => return Err(rustls::Error::General(e.to_string())),
        }
    }
}
