//! An HTTP/1.1 server on the reactor: [`HttpServer`] is the [`Factory`], each connection an
//! [`HttpConnection`] running the sans-I/O [codec](crate::http::codec), and applications
//! write [`Handler`]s, usually routed by a [`Router`].
//!
//! ```
//! use std::time::Duration;
//! use torsion_protocols::http::server::{HttpServer, Request, Responder, Router};
//! use torsion_protocols::http::{HeaderMap, StatusCode};
//! use torsion_reactor::testing::TestReactor;
//! use torsion_reactor::Reactor;
//!
//! let router = Router::new()
//!     .get("/plaintext", |_req: Request, res: Responder, reactor: &mut Reactor| {
//!         res.respond(reactor, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
//!     })
//!     // Answered later, from a timer: a long poll.
//!     .get("/later", |_req: Request, res: Responder, reactor: &mut Reactor| {
//!         reactor.call_later(Duration::from_secs(1), move |reactor| {
//!             res.respond(reactor, StatusCode::OK, &HeaderMap::new(), "at last")
//!         });
//!     });
//! let mut server = HttpServer::new(router);
//! // In a program: reactor.listen_tcp(addr, server). Here, in memory:
//! let mut test = TestReactor::new();
//! let client = test.connect_from(&mut server).unwrap();
//! test.feed(&client, b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
//! assert!(client.take_text().ends_with("\r\n\r\nHello, World!"));
//! ```
//!
//! # Handlers and responders
//! A [`Handler`] gets each [`Request`] with a [`Responder`]: the right to answer it. Answer at
//! once ([`Responder::respond`]), or keep the responder and answer from any callback that has
//! the reactor: a timer, another connection's `data_received`. The responder holds the
//! connection's id and its place in the connection's response order, so it needs nothing but
//! `&mut Reactor`. A body of unknown length is streamed with [`Responder::stream`]: its
//! [`BodyWriter::write`] returns false when the producer should pause (the client reads
//! slowly: the connection heard `pause_writing`, or its queue is past the high watermark), and
//! the call given to [`BodyWriter::on_resume`] runs when it may go on (`resume_writing`).
//!
//! Request bodies are read whole by default (up to [`Limits::max_body_len`], else 413); a
//! handler can ask for them streamed to a [`BodySink`] instead, or ignored
//! ([`Handler::body_mode`]).
//!
//! # Static files
//! [`StaticFiles`](crate::http::static_files::StaticFiles) is a [`Handler`]: it serves a
//! directory (GET and HEAD; content types by extension, `index.html` or an HTML listing for
//! a directory, 301 to add a directory's slash, `ETag`/`Last-Modified` with 304, a single
//! `Range` with 206/416, traversal refused: see [`static_files`](crate::http::static_files)
//! for what it answers and how paths are resolved). Mount it as a [`Router`]'s fallback so
//! the routes answer first:
//!
//! ```no_run
//! use torsion_protocols::http::server::{HttpServer, Router};
//! use torsion_protocols::http::static_files::StaticFiles;
//!
//! let router = Router::new().fallback(StaticFiles::new("/srv/www")?);
//! let server = HttpServer::new(router); // reactor.listen_tcp(addr, server)
//! # let _ = server;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Nothing of a static request that can wait for a disk runs on the reactor thread: the
//! common case is answered there with calls that fail rather than wait, anything else in the
//! reactor's thread pool, with the body's first window; a small file (up to
//! 64 KiB) is read whole there and goes out with its head in one write, a larger one is loaded
//! into the page cache a window (1 MiB) at a time and sent with `sendfile(2)` on plain TCP
//! (read and encrypted on TLS), the next window loaded while one is sent and queued when the
//! client has taken it, so a slow client holds no memory for the file ([`Responder::send_file`]
//! sends any open file that way). A read error in the middle of a file (it shrank, the disk
//! failed) closes the connection after what was sent, since the length was promised. A 304
//! carries no `Content-Length` (RFC 9110 §8.6); a `HEAD` carries the length `GET` would send.
//! Hidden paths (`/.git/config`) are 404 and listings can be turned off (see
//! [`StaticFiles`](crate::http::static_files::StaticFiles)).
//!
//! # The connection
//! - **Keep-alive** per RFC 9112 §9.3 (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive`); the connection closes once the last response is out.
//! - **Pipelining**: requests are read and handed to handlers as they arrive, and responses
//!   leave in request order whatever order they are made in (a later one waits in memory for
//!   earlier ones). At most [`ServerConfig::max_pipelined`] responses are pending: past that,
//!   the connection stops reading until one completes.
//! - **`Expect: 100-continue`**: `100 Continue` is sent (in its place in the response order)
//!   when the handler wants the body; a handler that ignores it answers without the 100 and the
//!   connection closes after.
//! - **`HEAD`**: the head of the `GET` response without its body (a `GET` route answers it);
//!   204 and 304 carry no body either (the codec's response encoder).
//! - **`Date`** on every response, formatted at most once a second and shared by the server.
//! - **Refused requests** (an [`HttpError`](crate::http::HttpError) from the decoder) are
//!   answered with the error's status and a short body, and the connection closes after it.
//! - **Timeouts** ([`ServerConfig`]): a head that does not arrive whole within the header
//!   timeout (slowloris) gets `408 Request Timeout` and a close; a connection with nothing in
//!   progress for the idle timeout is closed; a body with no byte for the body timeout gets
//!   408 too; a client that takes none of the bytes waiting for it for the send timeout
//!   (it stopped reading) is aborted.
//! - A half-close from the client: pending responses are sent, then the connection closes.
//! - **Upgrades**: [`Responder::switch_protocols`] answers `101 Switching Protocols` and
//!   hands the connection (and the bytes after the request) to another protocol, e.g. a
//!   WebSocket ([`websocket::accept`](crate::websocket::accept)); the HTTP timeouts stop.
//! - **Lingering close** ([`ServerConfig::lingering_close`]): a connection that closes while
//!   the client may still be sending (an error response, a body not read, requests after
//!   `Connection: close`, a graceful shutdown with input waiting) half-closes once its last
//!   response is out, then reads and discards input until the client's EOF, 5 s without
//!   input, or 30 s in all, so that closing never resets the connection under responses the
//!   client has not read yet.

mod basic_auth;
mod connection;
mod date;
mod file_body;
mod handler;
#[cfg(feature = "json")]
mod json;
mod linger;
#[cfg(test)]
mod linger_tests;
pub mod middleware;
mod params;
mod pipeline;
mod responder;
mod router;
#[cfg(test)]
mod router_tests;
mod send_guard;
#[cfg(test)]
mod send_tests;
mod static_handler;
#[cfg(test)]
mod static_tests;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::{Address, Factory};

pub use connection::HttpConnection;
use date::DateCache;
pub use handler::{BodyMode, BodySink, Handler, Request};
#[cfg(feature = "json")]
pub use json::JsonError;
pub use params::{Params, MAX_PARAMS};
pub use responder::{BodyWriter, Responder, ResponseHook};
pub use router::Router;

use crate::http::codec::Limits;

/// How a server's connections behave.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The decoder's limits (head size, body size...).
    pub limits: Limits,
    /// Responses a connection may have pending (pipelined requests read ahead) before it
    /// stops reading. Default 16.
    pub max_pipelined: usize,
    /// The write queue's high and low watermarks (see `Context::set_write_buffer_limits`):
    /// a streaming producer is told to pause above the first and to resume at the second.
    /// Default 64 KiB and 16 KiB.
    pub write_buffer_limits: (usize, usize),
    /// How long a request head may take to arrive once its first byte has (slowloris);
    /// past it: `408 Request Timeout` and a close. `None`: no limit. Default 30 s.
    pub header_timeout: Option<Duration>,
    /// How long a request body may go without a byte arriving (nginx's
    /// `client_body_timeout`); past it: `408 Request Timeout` and a close. `None`: no limit.
    /// Default 30 s.
    pub body_timeout: Option<Duration>,
    /// How long a connection may sit with no request in progress and no response pending;
    /// past it, it is closed. `None`: no limit. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// How long the client may take none of a response's bytes while some wait in the
    /// connection's queue (nginx's `send_timeout`: the time between two writes that make
    /// progress, not for the whole response); past it, the connection is aborted (what is
    /// queued is dropped: a client that does not read would never take it). It runs only while
    /// bytes wait, noticed when the queue passes the high watermark, when a request arrives
    /// while bytes wait, or when the idle timeout finds some (which then does not close the
    /// connection). `None`: no limit (a client that stops reading holds its connection).
    /// Default 60 s.
    pub send_timeout: Option<Duration>,
    /// Whether a connection that closes while the client may still be sending (after an
    /// error response, a body it did not read, pipelined requests after `Connection: close`,
    /// a graceful shutdown) closes lingering: once its last response is out it half-closes,
    /// then reads and discards what the client sends until the client's EOF, or
    /// [`lingering_timeout`](ServerConfig::lingering_timeout) with nothing arriving, or
    /// [`lingering_time`](ServerConfig::lingering_time) in all (nginx's `lingering_close`).
    /// Without it, such a close can reset the connection and the client loses the responses
    /// it had not read yet. A connection closing after the client's EOF, or idle with nothing
    /// in progress, closes at once either way. Default `true`.
    pub lingering_close: bool,
    /// The longest a lingering close lasts, however much the client still sends (nginx's
    /// `lingering_time`). Default 30 s.
    pub lingering_time: Duration,
    /// How long a lingering close waits for more input before closing (nginx's
    /// `lingering_timeout`). Default 5 s.
    pub lingering_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            max_pipelined: 16,
            write_buffer_limits: (64 * 1024, 16 * 1024),
            header_timeout: Some(Duration::from_secs(30)),
            body_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(60)),
            send_timeout: Some(Duration::from_secs(60)),
            lingering_close: true,
            lingering_time: Duration::from_secs(30),
            lingering_timeout: Duration::from_secs(5),
        }
    }
}

/// Builds an [`HttpConnection`] for each accepted connection, all sharing one handler, one
/// configuration and one `Date` cache.
pub struct HttpServer<H: Handler> {
    handler: Rc<H>,
    config: Rc<ServerConfig>,
    date: Rc<RefCell<DateCache>>,
}

impl<H: Handler> HttpServer<H> {
    /// A server answering every request with `handler` (often a [`Router`]).
    pub fn new(handler: H) -> Self {
        HttpServer {
            handler: Rc::new(handler),
            config: Rc::new(ServerConfig::default()),
            date: Rc::default(),
        }
    }

    /// Uses `config` for connections built from now on.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = Rc::new(config);
        self
    }

    /// Uses these decoder limits for connections built from now on.
    pub fn with_limits(self, limits: Limits) -> Self {
        let config = ServerConfig {
            limits,
            ..(*self.config).clone()
        };
        self.with_config(config)
    }

    /// Lets a connection have `max` responses pending (at least 1) before it stops reading.
    pub fn with_max_pipelined(self, max: usize) -> Self {
        let config = ServerConfig {
            max_pipelined: max.max(1),
            ..(*self.config).clone()
        };
        self.with_config(config)
    }

    /// Sets [`ServerConfig::send_timeout`] for connections built from now on (`None`: no
    /// limit).
    pub fn with_send_timeout(self, timeout: Option<Duration>) -> Self {
        let config = ServerConfig {
            send_timeout: timeout,
            ..(*self.config).clone()
        };
        self.with_config(config)
    }

    /// Turns [`ServerConfig::lingering_close`] on or off for connections built from now on.
    pub fn with_lingering_close(self, on: bool) -> Self {
        let config = ServerConfig {
            lingering_close: on,
            ..(*self.config).clone()
        };
        self.with_config(config)
    }

    /// Sets [`ServerConfig::lingering_time`] (the whole lingering close at most) and
    /// [`ServerConfig::lingering_timeout`] (at most this long without input) for connections
    /// built from now on.
    pub fn with_lingering_times(self, time: Duration, timeout: Duration) -> Self {
        let config = ServerConfig {
            lingering_time: time,
            lingering_timeout: timeout,
            ..(*self.config).clone()
        };
        self.with_config(config)
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The protocol for one more connection (what `build_protocol` returns), e.g. for a
    /// [`Harness`](torsion_reactor::testing::Harness).
    pub fn connection(&self) -> HttpConnection<H> {
        HttpConnection::new(self.handler.clone(), self.config.clone(), self.date.clone())
    }
}

impl<H: Handler> Factory for HttpServer<H> {
    type Protocol = HttpConnection<H>;

    fn build_protocol(&mut self, _peer: Address) -> Option<HttpConnection<H>> {
        Some(self.connection())
    }
}
