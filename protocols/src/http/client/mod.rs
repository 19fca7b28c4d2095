//! An HTTP/1.1 client on the reactor, in the manner of Twisted's `Agent`: [`HttpClient`]
//! sends [`Request`]s over a keep-alive pool and hands each response to a callback on the
//! reactor thread, whole ([`HttpClient::send`]) or streamed with backpressure
//! ([`HttpClient::send_streaming`]). Responses are read by the sans-I/O
//! [`ResponseDecoder`](crate::http::codec::ResponseDecoder), as strict as the server.
//!
//! ```no_run
//! use torsion_protocols::http::client::{HttpClient, Request};
//! use torsion_reactor::Reactor;
//!
//! let mut reactor = Reactor::new()?;
//! let client = HttpClient::new();
//! client.send(&mut reactor, Request::get("http://127.0.0.1:8080/plaintext"), |result, reactor| {
//!     match result {
//!         Ok(response) => println!("{}: {:?}", response.status, response.body),
//!         Err(error) => eprintln!("{error}"),
//!     }
//!     reactor.stop();
//! });
//! reactor.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! From async code (a task on the reactor, [`Reactor::spawn_task`]), [`AsyncHttpClient`]
//! wraps the same client in futures: `client.get(url).await`.
//!
//! The guide's page (`docs/http-client.md`) covers the pool, timeouts, redirects, streaming
//! and errors; [`ClientConfig`] lists the knobs and their defaults.

mod connection;
mod error;
mod exchange;
mod future;
mod pool;
mod redirect;
mod request;
mod response;
mod target;
#[cfg(test)]
mod tests;
mod upload;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use torsion_reactor::{rustls, Reactor};

pub use connection::ClientConnection;
pub use error::{ClientError, TimeoutKind};
pub use exchange::PendingRequest;
pub use future::{AsyncHttpClient, ResponseFuture};
pub use request::Request;
pub use response::{Response, ResponseFlow, ResponseHandler, Resumer};
pub use upload::{BodySource, BodyWaker, Pull};

use crate::http::codec::Limits;
use exchange::{Exchange, Slot};
use pool::Pool;
use response::Collect;
use target::Target;

/// How an [`HttpClient`] behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// How long establishing a connection may take. Default 30 s.
    pub connect_timeout: Duration,
    /// How long sending a request may go without progress: while any of it (head and body,
    /// bytes or streamed) is still queued, the kernel taking none of it and the body source
    /// giving nothing for this long fails the request with
    /// [`TimeoutKind::Send`] and closes the connection (a server that stopped reading).
    /// Time the source spends in [`Pull::Wait`] with nothing queued does not count: the
    /// guard judges the server. `None`: no limit. Default 30 s.
    pub send_timeout: Option<Duration>,
    /// How long the response head may take once the request is written: from the moment
    /// the kernel took its last byte (for `https`, rustls took it; a streamed body: all of
    /// it). `None`: no limit. Default 30 s.
    pub head_timeout: Option<Duration>,
    /// How long a whole request may take, from [`send`](HttpClient::send) to the body's end,
    /// redirects and queueing included. `None` (the default): no limit.
    pub request_timeout: Option<Duration>,
    /// Connections per scheme, host and port (connecting, busy or idle); requests past it
    /// wait for one. Default 6, as browsers.
    pub max_per_host: usize,
    /// How long a connection stays idle in the pool before it is closed. Default 30 s
    /// (under the usual server keep-alive timeouts, so the server rarely closes first).
    pub idle_timeout: Duration,
    /// The longest body [`send`](HttpClient::send) reads whole. Default 16 MiB.
    pub max_body_len: u64,
    /// Whether 301, 302, 303, 307 and 308 are followed. Default false: the redirect is the
    /// response.
    pub follow_redirects: bool,
    /// The most redirects one request follows; one more fails it. Default 10.
    pub max_redirects: usize,
    /// The response decoder's limits on heads, interim (1xx) responses in all, and trailers
    /// (the body's is
    /// [`max_body_len`](ClientConfig::max_body_len) or the streaming handler's).
    pub limits: Limits,
    /// The TLS configuration of `https` connections. `None` (the default): the system's
    /// root certificates (loaded on the first `https` request), with the server's
    /// certificate and name verified. The server name checked, and sent as SNI, is the
    /// URL's host.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(30),
            send_timeout: Some(Duration::from_secs(30)),
            head_timeout: Some(Duration::from_secs(30)),
            request_timeout: None,
            max_per_host: 6,
            idle_timeout: Duration::from_secs(30),
            max_body_len: 16 * 1024 * 1024,
            follow_redirects: false,
            max_redirects: 10,
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl ClientConfig {
    /// Sets [`connect_timeout`](ClientConfig::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`send_timeout`](ClientConfig::send_timeout).
    pub fn with_send_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets [`head_timeout`](ClientConfig::head_timeout).
    pub fn with_head_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.head_timeout = timeout;
        self
    }

    /// Sets [`request_timeout`](ClientConfig::request_timeout).
    pub fn with_request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`max_per_host`](ClientConfig::max_per_host) (at least 1).
    pub fn with_max_per_host(mut self, max: usize) -> Self {
        self.max_per_host = max.max(1);
        self
    }

    /// Sets [`idle_timeout`](ClientConfig::idle_timeout).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`max_body_len`](ClientConfig::max_body_len).
    pub fn with_max_body_len(mut self, max: u64) -> Self {
        self.max_body_len = max;
        self
    }

    /// Follows redirects, at most `max` per request.
    pub fn with_redirects(mut self, max: usize) -> Self {
        self.follow_redirects = true;
        self.max_redirects = max;
        self
    }

    /// Sets [`limits`](ClientConfig::limits).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`tls`](ClientConfig::tls): `https` connections verify servers with `config`
    /// (built, say, with `torsion_reactor::tls::client_config` from a CA file).
    pub fn with_tls(mut self, config: impl Into<Arc<rustls::ClientConfig>>) -> Self {
        self.tls = Some(config.into());
        self
    }
}

/// What every clone of a client shares.
struct Inner {
    config: ClientConfig,
    pool: RefCell<Pool>,
    /// The TLS configuration of `https` connections, once known: the configured one, or
    /// one with the system's roots made on the first `https` request.
    tls: RefCell<Option<Arc<rustls::ClientConfig>>>,
}

/// An HTTP/1.1 client: a configuration and a keep-alive pool, living on the reactor thread.
/// Cheap to clone (the clones share the pool): keep one in a protocol or a handler and send
/// from any callback that has the reactor (`cx.reactor()` inside a protocol).
#[derive(Clone)]
pub struct HttpClient {
    inner: Rc<Inner>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

impl HttpClient {
    /// A client with the default [`ClientConfig`].
    pub fn new() -> Self {
        Self::with_config(ClientConfig::default())
    }

    /// A client with `config`.
    pub fn with_config(config: ClientConfig) -> Self {
        HttpClient {
            inner: Rc::new(Inner {
                tls: RefCell::new(config.tls.clone()),
                config,
                pool: RefCell::default(),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends `request` and calls `callback` once, on the reactor thread, with the response
    /// and its whole body (at most [`ClientConfig::max_body_len`]) or the error. Never calls
    /// it from inside `send`: at the earliest on the next reactor turn.
    pub fn send<F>(&self, reactor: &mut Reactor, request: Request, callback: F) -> PendingRequest
    where
        F: FnOnce(Result<Response, ClientError>, &mut Reactor) + 'static,
    {
        let handler = Collect::new(callback, self.inner.config.max_body_len);
        self.send_streaming(reactor, request, handler)
    }

    /// [`send`](HttpClient::send)s a `GET` for `url`.
    pub fn get<F>(&self, reactor: &mut Reactor, url: &str, callback: F) -> PendingRequest
    where
        F: FnOnce(Result<Response, ClientError>, &mut Reactor) + 'static,
    {
        self.send(reactor, Request::get(url), callback)
    }

    /// Sends `request` and hands the response to `handler` as it arrives (see
    /// [`ResponseHandler`] for the order of calls). Never calls it from inside this call.
    pub fn send_streaming(
        &self,
        reactor: &mut Reactor,
        request: Request,
        handler: impl ResponseHandler,
    ) -> PendingRequest {
        let slot = Slot::new(Box::new(handler));
        let pending = PendingRequest { slot: slot.clone() };
        let (method, url, headers, body) = request.into_parts();
        let target = match Target::parse(&url) {
            Ok(target) => target,
            Err(error) => {
                reactor.call_later(Duration::ZERO, move |reactor| slot.fail(reactor, error));
                return pending;
            }
        };
        if let Some(after) = self.inner.config.request_timeout {
            let timed = slot.clone();
            let timer = reactor.call_later(after, move |reactor| {
                let which = TimeoutKind::Request;
                timed.fail_and_abort(reactor, ClientError::Timeout { which, after })
            });
            slot.timer.set(Some(timer));
        }
        let exchange = Exchange {
            method,
            target,
            headers,
            body,
            slot,
            redirects: 0,
            retried: false,
        };
        let client = self.clone();
        reactor.call_later(Duration::ZERO, move |reactor| {
            client.dispatch(reactor, exchange)
        });
        pending
    }

    /// Connections in the pool waiting for a request.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.borrow().idle()
    }

    /// Connections open (connecting, busy or idle).
    pub fn open_connections(&self) -> usize {
        self.inner.pool.borrow().open()
    }
}
