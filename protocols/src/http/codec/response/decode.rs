//! [`ResponseDecoder`]: the client side's state machine, one response at a time. It shares
//! the request decoder's section gathering, chunked decoder, header checks and limits.

use http::{HeaderMap, Method, StatusCode};

use super::super::chunked::ChunkedBody;
use super::super::read::{read_chunked, read_head, take_some, Chunked};
use super::super::scan::SectionScan;
use super::super::{HttpError, Limits};
use super::head::{ResponseFraming, ResponseHead, ResponseParser};
use crate::input::{Backlog, Input};

/// One event out of a [`ResponseEvents`] cursor: one `Head`, any number of `Data`, one `End`.
/// Interim 1xx responses are skipped (never reported).
#[derive(Debug)]
pub enum ResponseEvent<'a> {
    /// The final response's status line and headers; its body (if any) follows.
    Head(ResponseHead),
    /// Body bytes, decoded (chunk framing removed), never empty.
    Data(&'a [u8]),
    /// The response is complete; `trailers` holds a chunked body's trailer fields.
    End {
        /// The trailer section of a chunked body (empty otherwise).
        trailers: HeaderMap,
    },
}

/// The decoder's state: RFC 9112's message parts, in the order they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a status line and its headers (interim 1xx heads are read and dropped).
    ReadingHead(SectionScan),
    /// A `Content-Length` body (§6.2): `remaining` bytes left.
    ReadingLength {
        /// Body bytes still to come.
        remaining: u64,
    },
    /// A chunked body (§7.1), trailers included.
    ReadingChunked(ChunkedBody),
    /// A body delimited by the close (§6.3 item 8): `received` bytes so far.
    ReadingUntilClose {
        /// Body bytes so far, against [`Limits::max_body_len`].
        received: u64,
    },
    /// The response ended. Bytes that came with its last part are kept unread; later ones are
    /// only counted ([`ResponseDecoder::buffered_len`]).
    Complete,
    /// The response was refused: nothing more is read.
    Failed,
}

/// Decodes the response to one request; see the [codec docs](super::super#the-response-decoder).
///
/// ```
/// use torsion_protocols::http::codec::{ResponseDecoder, ResponseEvent};
/// use http::Method;
///
/// let mut decoder = ResponseDecoder::new(&Method::GET);
/// let mut body = Vec::new();
/// let mut events = decoder.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nhello");
/// while let Some(event) = events.next() {
///     match event.expect("a valid response") {
///         ResponseEvent::Head(head) => assert_eq!(head.status, 200),
///         ResponseEvent::Data(data) => body.extend_from_slice(data),
///         ResponseEvent::End { .. } => unreachable!("the body ends with the connection"),
///     }
/// }
/// drop(events);
/// // The server closes: that ends the body.
/// let mut events = decoder.eof();
/// assert!(matches!(events.next(), Some(Ok(ResponseEvent::End { .. }))));
/// drop(events);
/// assert_eq!(body, b"hello");
/// assert!(decoder.is_complete());
/// ```
#[derive(Debug)]
pub struct ResponseDecoder {
    limits: Limits,
    state: State,
    parser: ResponseParser,
    /// The connection closed: what is buffered is all there is.
    eof: bool,
    /// Some byte of the response arrived.
    started: bool,
    /// Bytes of the interim (1xx) heads read so far, against [`Limits::max_head_len`].
    interim_len: usize,
    /// Bytes fed after the response was complete and dropped unread: they are only counted
    /// (a server may send without end), so the decoder's memory stays bounded.
    dropped_after_end: usize,
    backlog: Backlog,
}

impl ResponseDecoder {
    /// A decoder for the response to a `method` request (`HEAD`: no body), with the default
    /// [`Limits`].
    pub fn new(method: &Method) -> Self {
        Self::with_limits(method, Limits::default())
    }

    /// A decoder for the response to a `method` request, with these limits
    /// ([`max_body_len`](Limits::max_body_len) bounds the body whatever its framing).
    pub fn with_limits(method: &Method, limits: Limits) -> Self {
        ResponseDecoder {
            limits,
            state: State::ReadingHead(SectionScan::default()),
            parser: ResponseParser {
                head_request: method == Method::HEAD,
            },
            eof: false,
            started: false,
            interim_len: 0,
            dropped_after_end: 0,
            backlog: Backlog::default(),
        }
    }

    /// Whether not one byte of the response has arrived (a connection closed now never
    /// started answering: the request may be retried if it is idempotent).
    pub fn is_fresh(&self) -> bool {
        !self.started
    }

    /// Whether the response ended (its `End` was handed out).
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Whether the response was refused.
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Bytes received and not decoded: a partial head, input the consumer stopped before, or
    /// (once complete) bytes the server sent after the response, which make the connection
    /// unfit for another request. Bytes fed after the response ended are counted here but not
    /// kept: only those of the feed that completed it stay buffered.
    pub fn buffered_len(&self) -> usize {
        self.backlog.len().saturating_add(self.dropped_after_end)
    }

    /// Feeds `data`, which follows the bytes fed before, and returns the cursor over the events
    /// now complete. Bytes the cursor does not reach are kept for the next `feed`.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8]) -> ResponseEvents<'f, 'd> {
        self.started |= !data.is_empty();
        let data = if self.state == State::Complete {
            self.dropped_after_end = self.dropped_after_end.saturating_add(data.len());
            &[]
        } else {
            data
        };
        let mut input = Input::new(&mut self.backlog, data);
        if self.state == State::Failed {
            input.discard();
        }
        ResponseEvents {
            limits: &self.limits,
            state: &mut self.state,
            parser: self.parser,
            eof: self.eof,
            interim_len: &mut self.interim_len,
            input,
        }
    }

    /// The connection closed: the cursor hands out what is still buffered, then the `End` of
    /// a body delimited by the close, or [`HttpError::Incomplete`] for a response cut short
    /// (nothing at all, a partial head, a `Content-Length` or chunked body not finished).
    pub fn eof(&mut self) -> ResponseEvents<'_, 'static> {
        self.eof = true;
        self.feed(&[])
    }
}

/// The events of one [`ResponseDecoder::feed`] (or [`eof`](ResponseDecoder::eof)): call
/// [`next`](ResponseEvents::next) until it returns `None`.
#[derive(Debug)]
pub struct ResponseEvents<'f, 'd> {
    limits: &'f Limits,
    state: &'f mut State,
    parser: ResponseParser,
    eof: bool,
    interim_len: &'f mut usize,
    input: Input<'f, 'd>,
}

impl ResponseEvents<'_, '_> {
    /// The next event, or the error that refuses the response (reported once; then `None`),
    /// or `None` when the bytes so far hold no further event.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: Data borrows the cursor, which Iterator cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<ResponseEvent<'_>, HttpError>> {
        if let State::ReadingHead(_) = self.state {
            return match self.head()? {
                Ok(head) => {
                    *self.state = match head.framing {
                        ResponseFraming::Length(remaining) => State::ReadingLength { remaining },
                        ResponseFraming::Chunked => State::ReadingChunked(ChunkedBody::new()),
                        ResponseFraming::UntilClose => State::ReadingUntilClose { received: 0 },
                    };
                    Some(Ok(ResponseEvent::Head(head)))
                }
                Err(error) => Some(Err(fail(self.state, error))),
            };
        }
        let eof = self.eof;
        let max = self.limits.max_body_len;
        match &mut *self.state {
            State::Complete | State::Failed | State::ReadingHead(_) => None,
            State::ReadingLength { remaining: 0 } => Some(Ok(end(self.state, HeaderMap::new()))),
            State::ReadingLength { remaining } => match take_some(&mut self.input, *remaining) {
                Some(data) => {
                    *remaining -= data.len() as u64;
                    Some(Ok(ResponseEvent::Data(data)))
                }
                None if eof => Some(Err(fail(self.state, cut_short("response body")))),
                None => None,
            },
            State::ReadingChunked(body) => match read_chunked(body, &mut self.input, self.limits) {
                Some(Ok(Chunked::Data(data))) => Some(Ok(ResponseEvent::Data(data))),
                Some(Ok(Chunked::End(trailers))) => Some(Ok(end(self.state, trailers))),
                Some(Err(error)) => Some(Err(fail(self.state, error))),
                None if eof => Some(Err(fail(self.state, cut_short("chunked response body")))),
                None => None,
            },
            State::ReadingUntilClose { received } => {
                // The bytes up to the limit are handed out, then the error: the same events
                // however the reads split the body.
                let room = max - *received;
                let more = !self.input.backlog.is_empty() || !self.input.rest().is_empty();
                if room == 0 && more {
                    return Some(Err(fail(self.state, HttpError::BodyTooLarge { max })));
                }
                match take_some(&mut self.input, room) {
                    Some(data) => {
                        *received += data.len() as u64;
                        Some(Ok(ResponseEvent::Data(data)))
                    }
                    None if eof => Some(Ok(end(self.state, HeaderMap::new()))),
                    None => None,
                }
            }
        }
    }

    /// The final response's head: interim 1xx heads are dropped (RFC 9110 §15.2), an
    /// unasked-for 101 is refused. The interim heads together may be as long as one head
    /// ([`Limits::max_head_len`]): a server sending them without end (each one small) would
    /// otherwise keep the client reading for ever.
    fn head(&mut self) -> Option<Result<ResponseHead, HttpError>> {
        loop {
            let State::ReadingHead(scan) = self.state else {
                return None;
            };
            match read_head(&mut self.parser, scan, &mut self.input, self.limits) {
                None if self.eof => return Some(Err(cut_short("response head"))),
                None => return None,
                Some(Ok((head, _))) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                    return Some(Err(HttpError::UnexpectedSwitchingProtocols))
                }
                Some(Ok((head, len))) if head.status.is_informational() => {
                    *self.interim_len = self.interim_len.saturating_add(len);
                    let max = self.limits.max_head_len;
                    if *self.interim_len > max {
                        return Some(Err(HttpError::InterimResponsesTooLarge { max }));
                    }
                    *self.state = State::ReadingHead(SectionScan::default());
                }
                Some(Ok((head, _))) => return Some(Ok(head)),
                Some(Err(error)) => return Some(Err(error)),
            }
        }
    }
}

fn cut_short(what: &'static str) -> HttpError {
    HttpError::Incomplete { what }
}

fn end(state: &mut State, trailers: HeaderMap) -> ResponseEvent<'static> {
    *state = State::Complete;
    ResponseEvent::End { trailers }
}

fn fail(state: &mut State, error: HttpError) -> HttpError {
    *state = State::Failed;
    error
}

impl Drop for ResponseEvents<'_, '_> {
    fn drop(&mut self) {
        if *self.state == State::Failed {
            self.input.discard();
        }
    }
}
