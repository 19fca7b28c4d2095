//! [`RequestDecoder`]: the server side's state machine, reading the requests of one
//! connection. Its states and transitions are described in the
//! [codec docs](super::super#the-request-decoder).

use http::HeaderMap;

use super::super::chunked::ChunkedBody;
use super::super::read::{read_chunked, read_head, take_some, Chunked};
use super::super::scan::SectionScan;
use super::super::{BodyKind, HttpError, Limits};
use super::head::{RequestHead, RequestParser};
use crate::input::{Backlog, Input};

/// One event out of a [`RequestEvents`] cursor. For each request: one `Head`, any number of
/// `Data`, one `End`.
#[derive(Debug)]
pub enum RequestEvent<'a> {
    /// A request's line and headers; its body (if any) follows.
    Head(RequestHead),
    /// Body bytes, decoded (chunk framing removed), never empty. Split wherever reads split
    /// them: collect them or stream them.
    Data(&'a [u8]),
    /// The request is complete. `trailers` holds a chunked body's trailer fields (empty
    /// otherwise); they are not merged into the head, and the ones RFC 9110 §6.5.1 forbids
    /// in trailers (framing, routing, authentication...) are reported as they came.
    End {
        /// The trailer section of a chunked body.
        trailers: HeaderMap,
    },
}

/// The decoder's state: RFC 9112's message parts, in the order they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a request line and its header section (§2.1), skipping empty lines before
    /// it (§2.2).
    ReadingHead(SectionScan),
    /// Reading a body framed by `Content-Length` (§6.2): `remaining` bytes left (0 for no body,
    /// whose `End` comes at once).
    ReadingLength {
        /// Body bytes still to come.
        remaining: u64,
    },
    /// Reading a chunked body (§7.1), trailers included.
    ReadingChunked(ChunkedBody),
    /// The last request did not keep the connection alive (§9.3): nothing after it is read.
    Closed,
    /// A request was refused: nothing after it is read; answer the error's status and close.
    Failed,
}

/// Decodes the requests arriving on one connection; see the [codec docs](super::super).
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
    /// Whether the request being read keeps the connection alive.
    keep_alive: bool,
    backlog: Backlog,
    parser: RequestParser,
    /// Whether bytes after the last request were dropped unread.
    dropped_input: bool,
}

impl Default for RequestDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A decoder with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            state: State::ReadingHead(SectionScan::default()),
            keep_alive: true,
            backlog: Backlog::default(),
            parser: RequestParser::default(),
            dropped_input: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the decoder waits for a new request with no byte of it buffered: the
    /// connection is idle (the server's keep-alive timeout applies, not the header timeout).
    pub fn is_idle(&self) -> bool {
        self.state == State::ReadingHead(SectionScan::default()) && self.backlog.is_empty()
    }

    /// Whether bytes that came after the last request (one that closes the connection, or a
    /// refused one) were dropped unread: the client sent more than the server will answer, so
    /// closing at once could make the kernel reset the connection under responses the client
    /// has not read yet.
    pub fn has_dropped_input(&self) -> bool {
        self.dropped_input
    }

    /// Whether a request was refused (after which nothing more is decoded).
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Whether the last request ended without keeping the connection alive (after which
    /// nothing more is decoded: the connection closes once it is answered).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The spare room of the arena heads are copied into (for tests: none while idle).
    #[cfg(test)]
    pub(crate) fn parser_room(&self) -> usize {
        self.parser.room()
    }

    /// Bytes received and not decoded yet (a partial head, or input the consumer stopped
    /// before).
    pub fn buffered_len(&self) -> usize {
        self.backlog.len()
    }

    /// Takes the bytes received and not decoded: what follows the request after which the
    /// connection switched protocols (`101 Switching Protocols`). The decoder is not to be
    /// fed again.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.backlog.take()
    }

    /// Feeds `data`, which follows the bytes fed before, and returns the cursor over the events
    /// now complete. Bytes the cursor does not reach are kept for the next `feed`; feeding an
    /// empty slice resumes a cursor dropped early.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8]) -> RequestEvents<'f, 'd> {
        let mut input = Input::new(&mut self.backlog, data);
        if matches!(self.state, State::Closed | State::Failed) {
            self.dropped_input |= input.discard();
        }
        RequestEvents {
            limits: &self.limits,
            state: &mut self.state,
            keep_alive: &mut self.keep_alive,
            parser: &mut self.parser,
            dropped_input: &mut self.dropped_input,
            input,
        }
    }
}

/// The events of one [`RequestDecoder::feed`]: call [`next`](RequestEvents::next) until it
/// returns `None`. Dropping it early keeps the bytes not yet decoded for the next `feed`.
#[derive(Debug)]
pub struct RequestEvents<'f, 'd> {
    limits: &'f Limits,
    state: &'f mut State,
    keep_alive: &'f mut bool,
    parser: &'f mut RequestParser,
    dropped_input: &'f mut bool,
    input: Input<'f, 'd>,
}

impl RequestEvents<'_, '_> {
    /// The next event, or the error that refuses the request (reported once; then `None` for
    /// good), or `None` when the bytes fed so far hold no further event.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: Data borrows the cursor, which Iterator cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<RequestEvent<'_>, HttpError>> {
        let state = &mut *self.state;
        match state {
            State::Closed | State::Failed => None,
            State::ReadingHead(scan) => {
                match read_head(self.parser, scan, &mut self.input, self.limits)? {
                    Ok((head, _)) => {
                        *self.keep_alive = head.keep_alive;
                        *state = match head.body {
                            BodyKind::Length(remaining) => State::ReadingLength { remaining },
                            BodyKind::Chunked => State::ReadingChunked(ChunkedBody::new()),
                        };
                        Some(Ok(RequestEvent::Head(head)))
                    }
                    Err(error) => Some(Err(fail(state, error))),
                }
            }
            State::ReadingLength { remaining: 0 } => {
                Some(Ok(end(state, *self.keep_alive, HeaderMap::new())))
            }
            State::ReadingLength { remaining } => {
                let data = take_some(&mut self.input, *remaining)?;
                *remaining -= data.len() as u64;
                Some(Ok(RequestEvent::Data(data)))
            }
            State::ReadingChunked(body) => {
                match read_chunked(body, &mut self.input, self.limits)? {
                    Ok(Chunked::Data(data)) => Some(Ok(RequestEvent::Data(data))),
                    Ok(Chunked::End(trailers)) => Some(Ok(end(state, *self.keep_alive, trailers))),
                    Err(error) => Some(Err(fail(state, error))),
                }
            }
        }
    }
}

/// The request ended: the next one is read if the connection persists. (In `Closed`, the
/// bytes after it are dropped with the cursor.)
fn end(state: &mut State, keep_alive: bool, trailers: HeaderMap) -> RequestEvent<'static> {
    *state = if keep_alive {
        State::ReadingHead(SectionScan::default())
    } else {
        State::Closed
    };
    RequestEvent::End { trailers }
}

/// A request was refused: nothing more is read (the bytes are dropped with the cursor).
fn fail(state: &mut State, error: HttpError) -> HttpError {
    *state = State::Failed;
    error
}

impl Drop for RequestEvents<'_, '_> {
    fn drop(&mut self) {
        // Nothing is read after the end: keep none of it.
        if matches!(self.state, State::Closed | State::Failed) {
            *self.dropped_input |= self.input.discard();
        }
        // Between requests: the arena's room is not kept across reads (an idle connection
        // holds none).
        if matches!(
            self.state,
            State::ReadingHead(_) | State::Closed | State::Failed
        ) {
            self.parser.release();
        }
    }
}
