//! The sans-I/O HTTP/1.1 codec, both directions: each message, request and response, has a
//! decoder (bytes in, events out) and an encoder (a head and its body's framing written into
//! a buffer the caller owns). The server decodes requests and encodes responses; the client
//! encodes requests and decodes responses. No sockets, no clocks (the `Date` is passed in),
//! nothing from the reactor. Request and status lines and headers are parsed by `httparse` in
//! its strict default configuration (no leniency enabled); methods, URIs, versions, headers
//! and statuses are the [`http`] crate's types.
//!
//! | | decode | parsed head | encode |
//! |---|---|---|---|
//! | request | [`RequestDecoder`] → [`RequestEvent`] | [`RequestHead`] | [`RequestEncoder`] → [`BodyEncoder`] |
//! | response | [`ResponseDecoder`] → [`ResponseEvent`] | [`ResponseHead`] | [`ResponseEncoder`] → [`BodyEncoder`] |
//!
//! The files follow the table: `request/` and `response/`, each with `head.rs` (the parsed
//! head and its parsing), `decode.rs` and `encode.rs`; what both directions share sits beside
//! them: `headers.rs` (the one header reader, holding the framing rules, and the header
//! writer), `body.rs` (a body's framing on the way out), `read.rs`, `scan.rs` and
//! `chunked.rs` (gathering heads and reading bodies on the way in).
//!
//! ```
//! use torsion_protocols::http::codec::{BodyKind, RequestDecoder, RequestEvent, ResponseEncoder};
//! use http::{HeaderMap, StatusCode};
//!
//! let mut decoder = RequestDecoder::new();
//! let mut out = Vec::new();
//! let wire = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
//!              5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
//! let mut events = decoder.feed(wire);
//! let mut body = Vec::new();
//! while let Some(event) = events.next() {
//!     match event.expect("a valid request") {
//!         RequestEvent::Head(head) => println!("{} {}", head.method, head.uri),
//!         RequestEvent::Data(data) => body.extend_from_slice(data),
//!         RequestEvent::End { .. } => {
//!             let response = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(body.len() as u64));
//!             let mut framing = response.write(&HeaderMap::new(), &mut out);
//!             framing.data(&body, &mut out).unwrap();
//!             framing.finish(&mut out).unwrap();
//!             body.clear();
//!         }
//!     }
//! }
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"));
//! assert!(out.ends_with(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
//! ```
//!
//! # The request decoder
//! Fed bytes, [`RequestDecoder::feed`] returns a cursor whose `next()` hands out events, one
//! at a time, as the other framers of this crate do: for each request one
//! [`Head`](RequestEvent::Head), its body as [`Data`](RequestEvent::Data) slices (lent from
//! the bytes fed when they lie there, never copied), then [`End`](RequestEvent::End) with the
//! trailers. Short input is never an error: the cursor runs dry. The consumer may stop
//! between two events (to pause, or to answer a request before reading the next); the rest is
//! kept for the next `feed`. Pipelined requests in the same bytes come out one after the other.
//!
//! ## The state machine
//! Named after RFC 9112's message parts; every transition is in `request/decode.rs`'s `next`:
//!
//! | State | On | Next |
//! |---|---|---|
//! | `ReadingHead` | a complete head, `Content-Length: n` or none | `ReadingLength { remaining: n }` (0: no body) |
//! | `ReadingHead` | a complete head, `Transfer-Encoding: chunked` | `ReadingChunked` |
//! | `ReadingLength` | `remaining` reaches 0, `End` out | `ReadingHead` if the request keeps the connection alive, else `Closed` |
//! | `ReadingChunked` | `Size` → (`SizeSpace` →) `Extension` → `SizeLf` → `Data` → `DataCr` → `DataLf` → `Size`; size 0 → `Trailers` → `End` out | as for `ReadingLength` |
//! | any | a refused request: the error out, once | `Failed` |
//!
//! `Closed` and `Failed` read nothing more: bytes fed are dropped. After an error, answer
//! [`HttpError::status`] and close; after `Closed`, answer the request and close.
//!
//! A head that arrives in pieces is gathered in the decoder's buffer and each byte scanned
//! once for where it may end (the end of the request line, an empty line); httparse runs only
//! there, so a peer sending a byte at a time costs linear time, not quadratic.
//!
//! ## Keep-alive (RFC 9112 §9.3)
//! HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 persists only with
//! `Connection: keep-alive` (and no `close`). [`RequestHead::keep_alive`] says which, and the
//! response encoder honours it.
//!
//! ## What is refused, and with which status
//! Each refusal is an [`HttpError`] whose [`status`](HttpError::status) is the answer; then
//! the connection closes. Ambiguity that could let two parsers see different requests
//! (request smuggling) is always refused:
//!
//! - 400: `Content-Length` with `Transfer-Encoding`; `Content-Length` values that disagree
//!   (across lines or in a comma list), are empty, signed, not digits or overflow a `u64`;
//!   `Transfer-Encoding` in an HTTP/1.0 request; a `Transfer-Encoding` whose last coding is not
//!   `chunked`, or with `chunked` twice or with parameters, or a malformed coding; obs-fold,
//!   whitespace before a colon, a bare CR, NUL or other control byte in a header (httparse);
//!   a malformed request line or target; a target in a form its method does not allow
//!   (RFC 9112 §3.2: origin-form and absolute-form with `http` or `https` for any method but
//!   `CONNECT`, authority-form for `CONNECT` only, `*` for `OPTIONS` only: `GET index.txt`,
//!   `GET evil.com:80`, `GET http:` are refused); a missing `Host` in HTTP/1.1, more than one
//!   `Host`, an invalid `Host`; a chunk size that is not hex, has more than 16 digits or overflows; a chunk
//!   line or chunk data not ended by CRLF (the chunked framing accepts no bare LF); chunk
//!   extensions over their limit; malformed trailers.
//! - 501: a transfer coding other than `chunked` before a final `chunked`
//!   (`gzip, chunked`): the framing is clear but this codec decodes only `chunked`. When the
//!   last coding is not `chunked` the framing itself is unknown, so that is 400 first
//!   (RFC 9112 §6.3), whatever the codings.
//! - 505: a version other than HTTP/1.0 and HTTP/1.1 (`HTTP/1.2`, `HTTP/2.0`, or none:
//!   HTTP/0.9).
//! - 414: a target over [`Limits::max_target_len`].
//! - 431: a head over [`Limits::max_head_len`] (counting the empty lines before the request
//!   line, which RFC 9112 §2.2 lets a server skip) or with more than [`Limits::max_headers`]
//!   lines; the same for trailers.
//! - 413: a body over [`Limits::max_body_len`]: at the head for `Content-Length`, at the chunk
//!   size that passes it for chunked bodies.
//!
//! httparse accepts a bare LF as the end of a head line (RFC 9112 §2.2 allows it); that is not
//! ambiguous, since nothing treats the LF as part of a field.
//!
//! # Limits
//! Every buffer a peer can fill is bounded by a [`Limits`] field; going over it is the error
//! named there. The defaults, next to nginx's and hyper's (hyper 1.x, from its source as
//! remembered: treat those as approximate):
//!
//! | Limit | torsion | nginx | hyper |
//! |---|---|---|---|
//! | head (request line + headers) | 32 KiB (431) | 4 buffers of 8 KiB = 32 KiB (`large_client_header_buffers 4 8k`; 400, or 494 logged) | ~408 KiB read buffer (`max_buf_size`, 8 KiB + 100 × 4 KiB) |
//! | request target | 8 KiB (414) | 8 KiB: the request line must fit one buffer (414) | none of its own; the `http` crate's 65,534-byte URI (414) |
//! | header lines | 100 (431) | none (bounded by the 32 KiB) | 100 (`max_headers`; 431) |
//! | body | 1 MiB (413) | 1 MiB (`client_max_body_size 1m`; 413) | none (the application's job) |
//! | chunk extensions, whole body | 16 KiB (400) | not applicable (nginx has no limit; lines must fit its buffer) | 16 KiB |
//! | trailers | as the head | as the head | 16 KiB |
//!
//! # The encoders
//! [`ResponseEncoder`] writes the status line and headers, choosing `Content-Length` or
//! `Transfer-Encoding: chunked` from the [`BodyKind`], writing `Date` if given, no body for
//! `HEAD`, 1xx, 204 and 304, and `Connection: close` when the connection will not persist.
//! [`RequestEncoder`] writes the request line and headers with the framing header its body
//! needs. Both return a [`BodyEncoder`] that frames the body's pieces (chunks when chunked),
//! refuses to go past a `Content-Length` announced, and ends the body (the last chunk).
//! [`write_continue`] writes the interim `100 Continue`. The framing headers are the
//! encoders' own: a `Content-Length` or `Transfer-Encoding` among the caller's headers is
//! dropped (and a response's `Connection`, and its `Date` when one is given).
//!
//! Every header name goes on the wire lower-case: the caller's are the `http` crate's
//! `HeaderName`s, which are lower-case, and the encoders write their own (`content-length`,
//! `transfer-encoding`, `connection`, `date`) the same way, so no message mixes cases. Names
//! are case-insensitive (RFC 9110 §5.1); HTTP/2 and HTTP/3 require lower case, and hyper
//! writes it.
//!
//! # The response decoder
//! The client side: [`ResponseDecoder`] reads the response to one request (told its method:
//! a response to `HEAD` has no body), with the same cursor and events (`Head`, `Data`, `End`).
//! Interim 1xx responses are read and dropped, together at most [`Limits::max_head_len`]
//! bytes of them ([`HttpError::InterimResponsesTooLarge`]: each is small, and a server could
//! send them without end); a `101 Switching Protocols` nobody asked for is refused
//! ([`HttpError::UnexpectedSwitchingProtocols`]). The body is framed by RFC 9112
//! §6.3 ([`ResponseFraming`]): none for `HEAD`, 1xx, 204 and 304 whatever the headers say,
//! chunked, `Content-Length`, or else until the server closes:
//! [`eof`](ResponseDecoder::eof) says so, and its cursor ends such a body or reports
//! [`HttpError::Incomplete`] for a response cut short. The request side's refusals apply
//! (the same header reader, `headers.rs`, enforces them):
//! `Content-Length` with `Transfer-Encoding`, a `Content-Length` that is negative, not digits
//! or conflicting, a transfer coding other than a final `chunked`, `Transfer-Encoding` in
//! HTTP/1.0, obs-fold and bad bytes in headers, chunk lines without CRLF, heads and trailers
//! over [`Limits`], and bodies over [`Limits::max_body_len`] (counted for every framing).
//! A malformed status line is [`HttpError::MalformedHead`]; another HTTP version
//! [`HttpError::UnsupportedVersion`].
//!
//! # Costs
//! Encoding writes only into the caller's buffer: given a `HeaderMap` it reuses, a small
//! fixed response allocates nothing but the buffer's growth. Parsing a head allocates:
//! - one copy of the head's bytes, into one shared buffer the URI and every header value are
//!   slices of (so values are not copied one by one; `http`'s types need owned bytes);
//! - the `HeaderMap`'s tables (one allocation for up to its initial capacity);
//! - each header name that is not one of `http`'s standard names (a custom name is owned);
//! - the header slots for httparse, when [`Limits::max_headers`] is over 100 (on the stack up to
//!   100);
//! - the decoder's buffer, only when a head or trailer section arrives in pieces or the consumer
//!   stops early.
//!
//! Trailers allocate their slots (`max_headers` of them) when a body has any.

mod body;
mod chunked;
mod date;
mod error;
mod headers;
mod read;
mod request;
mod response;
mod scan;

pub use body::{BodyEncoder, BodyKind};
pub use date::HttpDate;
pub use error::HttpError;
pub use request::{RequestDecoder, RequestEncoder, RequestEvent, RequestEvents, RequestHead};
pub use response::{
    write_continue, ResponseDecoder, ResponseEncoder, ResponseEvent, ResponseEvents,
    ResponseFraming, ResponseHead,
};

/// The parsed response head's former name.
#[deprecated(note = "renamed `ResponseHead` (the parsed head); the writer is `ResponseEncoder`")]
pub type StatusHead = ResponseHead;

/// Bounds on what a peer can make the decoder hold or read; see the
/// [table of defaults](self#limits).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The request (or status) line and header section together, in bytes, with any empty
    /// lines before the request line; also the trailer section's bound. Over it: 431
    /// ([`HttpError::HeadTooLarge`]).
    pub max_head_len: usize,
    /// The request target, in bytes (at most 65,534, the `http` crate's limit). Over it: 414
    /// ([`HttpError::TargetTooLong`]).
    pub max_target_len: usize,
    /// Header lines (and trailer lines). Over it: 431 ([`HttpError::TooManyHeaders`]).
    pub max_headers: usize,
    /// A request body, in bytes. Over it: 413 ([`HttpError::BodyTooLarge`]). `u64::MAX`
    /// lifts it (for a server that streams bodies through).
    pub max_body_len: u64,
    /// All chunk extensions of one body together, in bytes. Over it: 400
    /// ([`HttpError::ChunkExtensionsTooLong`]).
    pub max_chunk_extensions_len: usize,
}

impl Limits {
    /// 32 KiB, as nginx's `large_client_header_buffers 4 8k`.
    pub const DEFAULT_MAX_HEAD_LEN: usize = 32 * 1024;
    /// 8 KiB, as nginx (the request line must fit one 8 KiB buffer).
    pub const DEFAULT_MAX_TARGET_LEN: usize = 8 * 1024;
    /// 100, as hyper.
    pub const DEFAULT_MAX_HEADERS: usize = 100;
    /// 1 MiB, as nginx's `client_max_body_size`.
    pub const DEFAULT_MAX_BODY_LEN: u64 = 1024 * 1024;
    /// 16 KiB, as hyper.
    pub const DEFAULT_MAX_CHUNK_EXTENSIONS_LEN: usize = 16 * 1024;

    /// Sets [`max_head_len`](Limits::max_head_len).
    pub fn with_max_head_len(mut self, max: usize) -> Self {
        self.max_head_len = max;
        self
    }

    /// Sets [`max_target_len`](Limits::max_target_len).
    pub fn with_max_target_len(mut self, max: usize) -> Self {
        self.max_target_len = max;
        self
    }

    /// Sets [`max_headers`](Limits::max_headers).
    pub fn with_max_headers(mut self, max: usize) -> Self {
        self.max_headers = max;
        self
    }

    /// Sets [`max_body_len`](Limits::max_body_len).
    pub fn with_max_body_len(mut self, max: u64) -> Self {
        self.max_body_len = max;
        self
    }

    /// Sets [`max_chunk_extensions_len`](Limits::max_chunk_extensions_len).
    pub fn with_max_chunk_extensions_len(mut self, max: usize) -> Self {
        self.max_chunk_extensions_len = max;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_len: Self::DEFAULT_MAX_HEAD_LEN,
            max_target_len: Self::DEFAULT_MAX_TARGET_LEN,
            max_headers: Self::DEFAULT_MAX_HEADERS,
            max_body_len: Self::DEFAULT_MAX_BODY_LEN,
            max_chunk_extensions_len: Self::DEFAULT_MAX_CHUNK_EXTENSIONS_LEN,
        }
    }
}

#[cfg(test)]
mod tests;
