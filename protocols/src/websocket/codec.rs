//! [`WebSocket`]: one side of a WebSocket connection as a sans-I/O state machine: bytes in,
//! [`Event`]s out; messages in, bytes out.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{apply_mask, read_header, write_frame, Masking, Opcode};
use super::CloseCode;

/// Which side of the connection this is: it decides masking (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends frames masked with a fresh key each.
    Client,
}

/// What arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (fragments joined), valid UTF-8.
    Text(String),
    /// A whole binary message (fragments joined).
    Binary(Bytes),
    /// A ping; its pong has already been queued.
    Ping(Bytes),
    /// A pong (answering a ping, or unsolicited).
    Pong(Bytes),
    /// The peer's close frame: `code` is `None` when it carried none. If this side had not
    /// sent its close yet, the answering close has been queued; either way the handshake is
    /// over and the connection should close once the output is sent.
    Close {
        /// The peer's status code.
        code: Option<CloseCode>,
        /// The peer's reason (UTF-8, possibly empty).
        reason: String,
    },
}

/// The peer broke the protocol: a close with [`code`](ProtocolError::code) has been queued
/// (if this side had not closed yet) and nothing more is read; close the connection once the
/// output is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// The code sent: 1002 (framing), 1007 (invalid UTF-8) or 1009 (message too big).
    pub code: CloseCode,
    /// What was wrong.
    pub reason: &'static str,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebSocket protocol error ({}): {}",
            self.code.0, self.reason
        )
    }
}

impl std::error::Error for ProtocolError {}

/// Why a message could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// This side has sent its close frame: nothing may follow it (RFC 6455 §5.5.1).
    Closed,
    /// A control frame's payload (ping, pong, close reason with its code) is over 125 bytes.
    ControlTooLong,
    /// The close code may not be sent (1005, 1006, 1015, or outside the valid ranges).
    InvalidCloseCode,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the WebSocket's close frame was already sent",
            SendError::ControlTooLong => "a control frame's payload is limited to 125 bytes",
            SendError::InvalidCloseCode => "this close code may not be sent",
        })
    }
}

impl std::error::Error for SendError {}

/// Where the close handshake is (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// This side sent its close and waits for the peer's; incoming messages are still
    /// delivered.
    CloseSent,
    /// Both closes are exchanged, or the connection failed: close the transport once the
    /// output is sent.
    Closed,
}

/// The message being assembled from fragments.
struct Partial {
    text: bool,
    data: BytesMut,
    /// Bytes at the start of a text message known to be valid UTF-8: each fragment is checked
    /// as it arrives, a character split between fragments once both halves are in.
    validated: usize,
}

/// The data frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct DataFrame {
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes taken so far (where the mask stands).
    offset: usize,
}

/// The default [`WebSocket::max_message`]: 1 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

/// One side of a WebSocket connection, after the handshake.
///
/// Feed what the peer sends with [`receive`](WebSocket::receive), then take [`Event`]s with
/// [`next_event`](WebSocket::next_event) until it returns `None`; send with
/// [`send_text`](WebSocket::send_text) and the like, and write what
/// [`take_output`](WebSocket::take_output) returns to the peer. Pings are answered on their
/// own, a close frame is answered by one, and a peer breaking the protocol gets the close
/// code that says why.
///
/// Memory: the input held is at most a control frame (125 bytes) or a frame header, plus
/// what one [`receive`](WebSocket::receive) brought: a data frame's payload joins its
/// message as it arrives (so invalid text fails at the byte that breaks it); the message
/// being assembled is at most [`max_message`] bytes (a header announcing more is refused
/// with 1009 before its payload arrives).
///
/// [`max_message`]: WebSocket::max_message
pub struct WebSocket {
    role: Role,
    max_message: usize,
    state: State,
    input: BytesMut,
    message: Option<Partial>,
    frame: Option<DataFrame>,
    output: BytesMut,
    mask_keys: Box<dyn FnMut() -> [u8; 4]>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// The server's side.
    pub fn server() -> Self {
        Self::new(Role::Server, Box::new(|| [0; 4]))
    }

    /// The client's side, masking each frame with a key from [`random_mask_key`].
    pub fn client() -> Self {
        Self::client_with_mask_keys(random_mask_key)
    }

    /// The client's side, masking each frame with the next key from `mask_keys` (tests pass
    /// a fixed sequence; a real client needs keys an observer cannot predict, RFC 6455
    /// §10.3).
    pub fn client_with_mask_keys(mask_keys: impl FnMut() -> [u8; 4] + 'static) -> Self {
        Self::new(Role::Client, Box::new(mask_keys))
    }

    fn new(role: Role, mask_keys: Box<dyn FnMut() -> [u8; 4]>) -> Self {
        WebSocket {
            role,
            max_message: DEFAULT_MAX_MESSAGE,
            state: State::Open,
            input: BytesMut::new(),
            message: None,
            frame: None,
            output: BytesMut::new(),
            mask_keys,
        }
    }

    /// Limits an incoming message (all its fragments) to `max` bytes; a larger one fails the
    /// connection with 1009 as soon as a frame header announces it.
    pub fn with_max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// The largest message accepted (default [`DEFAULT_MAX_MESSAGE`]).
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the close handshake is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Bytes to send to the peer (empty when there are none).
    pub fn take_output(&mut self) -> Bytes {
        self.output.split().freeze()
    }

    /// Appends bytes from the peer (ignored once [`State::Closed`]).
    pub fn receive(&mut self, data: &[u8]) {
        if self.state != State::Closed {
            self.input.extend_from_slice(data);
        }
    }

    /// Sends a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_frame(true, Opcode::Text, text.as_bytes())
    }

    /// Sends a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_frame(true, Opcode::Binary, data)
    }

    /// Sends one fragment of a message: the first with `first`, the last with `fin`
    /// (RFC 6455 §5.4). The caller keeps the order; other messages must not come between.
    pub fn send_fragment(
        &mut self,
        text: bool,
        first: bool,
        fin: bool,
        data: &[u8],
    ) -> Result<(), SendError> {
        let opcode = match (first, text) {
            (false, _) => Opcode::Continuation,
            (true, true) => Opcode::Text,
            (true, false) => Opcode::Binary,
        };
        self.send_frame(fin, opcode, data)
    }

    /// Sends a ping carrying `data` (at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(Opcode::Ping, data)
    }

    /// Sends an unsolicited pong (a heartbeat; at most 125 bytes).
    pub fn send_pong(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_control(Opcode::Pong, data)
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes); the
    /// connection is over when the peer's close arrives ([`Event::Close`]).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.may_be_sent() {
            return Err(SendError::InvalidCloseCode);
        }
        if reason.len() > 123 {
            return Err(SendError::ControlTooLong);
        }
        let mut payload = code.0.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send_frame(true, Opcode::Close, &payload)?;
        self.state = State::CloseSent;
        Ok(())
    }

    fn send_control(&mut self, opcode: Opcode, data: &[u8]) -> Result<(), SendError> {
        if data.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        self.send_frame(true, opcode, data)
    }

    fn send_frame(&mut self, fin: bool, opcode: Opcode, data: &[u8]) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let mask = match self.role {
            Role::Client => Some((self.mask_keys)()),
            Role::Server => None,
        };
        write_frame(&mut self.output, fin, opcode, mask, data);
        Ok(())
    }

    /// The next event from the input received, `None` when the input holds no more (or the
    /// connection is closed), or the error that failed the connection (reported once).
    pub fn next_event(&mut self) -> Option<Result<Event, ProtocolError>> {
        loop {
            if self.state == State::Closed {
                self.input.clear();
                return None;
            }
            let masking = match self.role {
                Role::Server => Masking::Required,
                Role::Client => Masking::Forbidden,
            };
            if let Some(frame) = self.frame {
                match self.data_frame(frame) {
                    Ok(Some(event)) => return Some(Ok(event)),
                    Ok(None) if self.frame.is_some() => return None,
                    Ok(None) => continue,
                    Err((code, reason)) => return Some(Err(self.fail(code, reason))),
                }
            }
            let header = match read_header(&self.input, masking) {
                Ok(Some(header)) => header,
                Ok(None) => return None,
                Err((code, reason)) => return Some(Err(self.fail(code, reason))),
            };
            if let Err((code, reason)) = self.check_sequence(header.opcode, header.len) {
                return Some(Err(self.fail(code, reason)));
            }
            if !header.opcode.is_control() {
                // A data frame's payload is taken as it arrives, so that invalid text fails
                // at the byte, not when the frame is whole.
                self.input.advance(header.size);
                self.message.get_or_insert_with(|| Partial {
                    text: header.opcode == Opcode::Text,
                    data: BytesMut::new(),
                    validated: 0,
                });
                self.frame = Some(DataFrame {
                    fin: header.fin,
                    mask: header.mask,
                    remaining: header.len,
                    offset: 0,
                });
                continue;
            }
            // A control frame is at most 125 bytes: handled whole.
            let len = header.len as usize;
            if self.input.len() < header.size + len {
                return None;
            }
            self.input.advance(header.size);
            let mut payload = self.input.split_to(len);
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            let event = match header.opcode {
                Opcode::Ping => Ok(self.ping(payload.freeze())),
                Opcode::Pong => Ok(Event::Pong(payload.freeze())),
                _ => self.close_received(&payload),
            };
            return Some(event.map_err(|(code, reason)| self.fail(code, reason)));
        }
    }

    /// A frame's place in the message sequence (§5.4) and its size against the limit.
    fn check_sequence(&self, opcode: Opcode, len: u64) -> Result<(), (CloseCode, &'static str)> {
        let assembled = match (&self.message, opcode) {
            (_, op) if op.is_control() => return Ok(()),
            (None, Opcode::Continuation) => {
                return Err((CloseCode::PROTOCOL_ERROR, "continuation with no message"))
            }
            (Some(_), Opcode::Text | Opcode::Binary) => {
                return Err((
                    CloseCode::PROTOCOL_ERROR,
                    "new message inside a fragmented one",
                ))
            }
            (Some(partial), _) => partial.data.len() as u64,
            (None, _) => 0,
        };
        if assembled + len > self.max_message as u64 {
            return Err((CloseCode::MESSAGE_TOO_BIG, "message over the size limit"));
        }
        Ok(())
    }

    fn ping(&mut self, payload: Bytes) -> Event {
        if self.state == State::Open {
            let mask = self.mask_for_control();
            write_frame(&mut self.output, true, Opcode::Pong, mask, &payload);
        }
        Event::Ping(payload)
    }

    fn mask_for_control(&mut self) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(|| (self.mask_keys)())
    }

    /// The peer's close (§5.5.1): validated, answered if this side had not closed.
    fn close_received(&mut self, payload: &[u8]) -> Result<Event, (CloseCode, &'static str)> {
        let (code, reason) = match payload {
            [] => (None, ""),
            [_] => return Err((CloseCode::PROTOCOL_ERROR, "close payload of one byte")),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.may_be_sent() {
                    return Err((CloseCode::PROTOCOL_ERROR, "invalid close code"));
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| (CloseCode::INVALID_PAYLOAD, "close reason not UTF-8"))?;
                (Some(code), reason)
            }
        };
        if self.state == State::Open {
            // The answer echoes the code (§5.5.1); a close without one is answered without.
            let echo = code.map(|c| c.0.to_be_bytes()).unwrap_or_default();
            let echo = if code.is_some() { &echo[..] } else { &[] };
            let mask = self.mask_for_control();
            write_frame(&mut self.output, true, Opcode::Close, mask, echo);
        }
        self.state = State::Closed;
        self.message = None;
        Ok(Event::Close {
            code,
            reason: reason.to_owned(),
        })
    }

    /// A data frame: appended to its message; the message when it is whole.
    /// Takes what has arrived of the data frame being read into its message; the message
    /// when the frame was its last and is whole.
    fn data_frame(&mut self, frame: DataFrame) -> Result<Option<Event>, (CloseCode, &'static str)> {
        // Fits in usize: the size limit bounds `remaining`.
        let n = (frame.remaining as usize).min(self.input.len());
        let mut chunk = self.input.split_to(n);
        if let Some(key) = frame.mask {
            apply_mask(&mut chunk, key, frame.offset);
        }
        let whole = n as u64 == frame.remaining;
        self.frame = (!whole).then_some(DataFrame {
            remaining: frame.remaining - n as u64,
            offset: frame.offset + n,
            ..frame
        });
        self.data(frame.fin && whole, &chunk)
    }

    /// Appends payload bytes to the message; `end`: they are its last.
    fn data(
        &mut self,
        end: bool,
        payload: &[u8],
    ) -> Result<Option<Event>, (CloseCode, &'static str)> {
        let partial = self.message.as_mut().expect("a data frame has its message");
        partial.data.extend_from_slice(payload);
        if partial.text {
            match std::str::from_utf8(&partial.data[partial.validated..]) {
                Ok(_) => partial.validated = partial.data.len(),
                // A character cut at the end: the next bytes complete it, or the end of the
                // message finds it cut.
                Err(e) if e.error_len().is_none() && !end => partial.validated += e.valid_up_to(),
                Err(_) => return Err((CloseCode::INVALID_PAYLOAD, "text not UTF-8")),
            }
        }
        if !end {
            return Ok(None);
        }
        let message = self.message.take().expect("set above");
        Ok(Some(if message.text {
            let text = String::from_utf8(message.data.to_vec()).expect("validated");
            Event::Text(text)
        } else {
            Event::Binary(message.data.freeze())
        }))
    }

    /// Fails the connection (§7.1.7): a close with `code` if this side had not sent one,
    /// and nothing more is read.
    fn fail(&mut self, code: CloseCode, reason: &'static str) -> ProtocolError {
        if self.state == State::Open {
            let mask = self.mask_for_control();
            write_frame(
                &mut self.output,
                true,
                Opcode::Close,
                mask,
                &code.0.to_be_bytes(),
            );
        }
        self.state = State::Closed;
        self.input.clear();
        self.message = None;
        self.frame = None;
        ProtocolError { code, reason }
    }
}

/// A masking key an observer cannot predict: SipHash, keyed from the operating system's
/// randomness by std's `RandomState`, over a per-thread counter (std offers no random bytes
/// directly, and this avoids a dependency).
pub fn random_mask_key() -> [u8; 4] {
    thread_local! {
        static STATE: (std::collections::hash_map::RandomState, std::cell::Cell<u64>) =
            Default::default();
    }
    STATE.with(|(keyed, counter)| {
        counter.set(counter.get().wrapping_add(1));
        let mut hasher = keyed.build_hasher();
        hasher.write_u64(counter.get());
        let bits = hasher.finish();
        [
            bits as u8,
            (bits >> 8) as u8,
            (bits >> 16) as u8,
            (bits >> 24) as u8,
        ]
    })
}
