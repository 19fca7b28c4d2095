//! A client that keeps itself connected (Twisted's `ReconnectingClientFactory`): when a
//! connection attempt fails or an established connection is lost, it connects again after a
//! delay that grows exponentially with each consecutive failure ([`Backoff`]), until it is
//! stopped or runs out of retries.
//!
//! The choices, against Twisted's:
//! - **Reset on connect.** The delay and the failure count go back to the start as soon as a
//!   connection is established (just before the protocol's `connection_made`), where Twisted
//!   leaves it to the user to call `resetDelay`. A server that accepts and at once hangs up
//!   thus sees one attempt per `initial_delay`, never a busy loop.
//! - **`stop` stops trying** (Twisted's `stopTrying`): it cancels a pending retry, abandons
//!   an attempt in progress (or a host name lookup), and no further attempt is made; an
//!   established connection stays up until its protocol or the user closes it.
//! - **A graceful shutdown** of the reactor stops every reconnecting client first, so none
//!   reconnects while the reactor drains.
//! - **Host names** are resolved again for every attempt (on the thread pool, as
//!   [`Reactor::connect`] does for a [`Target::Host`](crate::Target::Host)), and each of
//!   their addresses is tried in turn: a failure counts once the last address failed.

mod backoff;

pub use backoff::{
    Backoff, BackoffState, DEFAULT_FACTOR, DEFAULT_INITIAL_DELAY, DEFAULT_JITTER, DEFAULT_MAX_DELAY,
};

mod handle;

pub use handle::ReconnectHandle;

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    rustls, ClientFactory, ConnectError, ConnectOptions, ConnectionId, Connector, DisconnectReason,
    Protocol, Reactor,
};

/// The user's hook, told of each failure, loss and giving up.
type Hook = Box<dyn FnMut(&mut Reactor, &ReconnectHandle, &ReconnectEvent<'_>)>;

/// Starts one connect with a fresh [`Attempt`]: the part of the client that knows the
/// builder's type, so that the rest is not generic.
type ConnectFn =
    Rc<dyn Fn(&mut Reactor, &ReconnectHandle, SocketAddr, u32, ConnectOptions) -> Connector>;

/// What to connect to.
#[derive(Debug, Clone)]
enum Target {
    Addr(SocketAddr),
    Host(String, u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// A reconnecting client, being configured; [`start`](ReconnectingClient::start) starts it
/// and returns its [`ReconnectHandle`].
///
/// `builder` builds the protocol of each connection, once it is established; it gets the
/// client's handle, so a protocol can keep one and give up (`handle.stop(cx.reactor())`) on
/// an error no retry will cure, such as refused credentials.
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::{Backoff, Context, Protocol, Reactor, ReconnectEvent, ReconnectingClient};
///
/// struct Feed;
///
/// impl Protocol for Feed {
///     fn connection_made(&mut self, cx: &mut Context<'_>) {
///         cx.write(b"SUBSCRIBE prices\n");
///     }
///     fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
///         println!("{}", String::from_utf8_lossy(data));
///     }
/// }
///
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new()?;
/// let client = ReconnectingClient::new("127.0.0.1:7000".parse().unwrap(), |_| Feed)
///     .backoff(Backoff::default().with_max_delay(Duration::from_secs(60)))
///     .on_event(|_reactor, handle, event| {
///         eprintln!("feed: {event} ({} failures in a row)", handle.failures());
///     })
///     .start(&mut reactor);
/// assert!(client.is_trying());
/// client.stop(&mut reactor);
/// # Ok(())
/// # }
/// ```
pub struct ReconnectingClient<B> {
    target: Target,
    builder: B,
    backoff: Backoff,
    options: ConnectOptions,
    hook: Option<Hook>,
    seed: Option<u64>,
    /// TLS for every connection: the configuration and the server name verified.
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
}

impl<B> ReconnectingClient<B> {
    /// A client for `addr`, with the default [`Backoff`] and [`ConnectOptions`].
    pub fn new<P>(addr: SocketAddr, builder: B) -> Self
    where
        B: FnMut(&ReconnectHandle) -> P + 'static,
        P: Protocol,
    {
        ReconnectingClient::with_target(Target::Addr(addr), builder)
    }

    /// A client for `host` (a name or an address literal) on `port`. The name is resolved
    /// on the thread pool for every attempt, and its addresses tried in turn.
    pub fn new_host<P>(host: impl Into<String>, port: u16, builder: B) -> Self
    where
        B: FnMut(&ReconnectHandle) -> P + 'static,
        P: Protocol,
    {
        ReconnectingClient::with_target(Target::Host(host.into(), port), builder)
    }

    fn with_target(target: Target, builder: B) -> Self {
        ReconnectingClient {
            target,
            builder,
            backoff: Backoff::default(),
            options: ConnectOptions::default(),
            hook: None,
            seed: None,
            tls: None,
        }
    }

    /// The backoff policy (default: Twisted's, retrying forever).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The options of each connection attempt, as for [`Reactor::connect`]: its timeouts,
    /// TLS, the local address. With TLS and no server name, the certificate is verified for
    /// the host name of a client made with [`new_host`](ReconnectingClient::new_host), for
    /// the address otherwise.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// Makes every connection TLS (as [`ConnectOptions::tls`] does for
    /// [`Reactor::connect`]): each handshakes with `config` and verifies the server's
    /// certificate for `server_name`, whatever [`connect_options`](Self::connect_options)
    /// say of either. A handshake that fails is a failed attempt like a refused connect
    /// ([`ConnectError::Tls`] in [`ReconnectEvent::ConnectFailed`]), retried after the
    /// backoff's delay.
    pub fn tls(
        mut self,
        config: impl Into<Arc<rustls::ClientConfig>>,
        server_name: impl Into<String>,
    ) -> Self {
        self.tls = Some((config.into(), server_name.into()));
        self
    }

    /// Fixes the jitter's random sequence, for reproducible tests (by default each client
    /// draws a random seed, so that clients started together drift apart).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `hook` on each failed attempt, each lost connection and on giving up, once the
    /// next retry (if any) is scheduled: to log, or to give up early with
    /// [`handle.stop(reactor)`](ReconnectHandle::stop), which then cancels that retry.
    /// Without a hook, failures are only logged (`debug!`) and giving up at `warn!`.
    ///
    /// The hook is never called from inside [`start`](ReconnectingClient::start) or
    /// [`stop`](ReconnectHandle::stop), and never after the client stopped or gave up; it is
    /// dropped then. It gets the handle as an argument: a hook that captured a handle of its
    /// own would keep the client alive in a cycle until it stops.
    pub fn on_event(
        mut self,
        hook: impl FnMut(&mut Reactor, &ReconnectHandle, &ReconnectEvent<'_>) + 'static,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Starts the first connection attempt at once (its outcome arrives from the reactor
    /// loop, as for [`Reactor::connect`]) and returns the client's handle.
    pub fn start<P>(self, reactor: &mut Reactor) -> ReconnectHandle
    where
        B: FnMut(&ReconnectHandle) -> P + 'static,
        P: Protocol,
    {
        let builder = Rc::new(RefCell::new(self.builder));
        let mut options = self.options;
        if let Some((config, name)) = self.tls {
            options = options.tls(config).server_name(name);
        }
        // Each attempt connects to one resolved address at a time: the host's name, not the
        // address, is the one a certificate is issued for.
        if let (Target::Host(host, _), None) = (&self.target, &options.server_name) {
            options.server_name = Some(host.clone());
        }
        let connect: ConnectFn = Rc::new(move |reactor, handle, addr, attempt, options| {
            let factory = Attempt {
                builder: builder.clone(),
                handle: handle.clone(),
                attempt,
            };
            reactor.connect(addr, factory, options)
        });
        let backoff = match self.seed {
            Some(seed) => BackoffState::with_seed(self.backoff, seed),
            None => BackoffState::new(self.backoff),
        };
        ReconnectHandle::start(reactor, self.target, options, backoff, connect, self.hook)
    }
}

/// What a reconnecting client is doing, from [`ReconnectHandle::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectState {
    /// Resolving the host name or connecting.
    Connecting,
    /// Connected, as this connection (which stays up after a `stop`, until it closes).
    Connected(ConnectionId),
    /// Waiting to retry at this instant (of the reactor's clock).
    Waiting {
        /// When the next attempt starts.
        retry_at: Instant,
    },
    /// [`stop`](ReconnectHandle::stop) was called (or the reactor shut down) and nothing is
    /// in flight.
    Stopped,
    /// `max_retries` consecutive failures: no further attempt.
    GaveUp,
}

/// What a reconnecting client tells its [`on_event`](ReconnectingClient::on_event) hook.
/// `Display` gives a line fit for a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReconnectEvent<'a> {
    /// A connection attempt failed (for a host name: its last address failed).
    ConnectFailed {
        /// Why.
        error: &'a ConnectError,
        /// When the next attempt starts; `None` if there will be none (giving up, or the
        /// reactor is shutting down).
        retry_in: Option<Duration>,
    },
    /// An established connection was lost (after its protocol's `connection_lost`).
    ConnectionLost {
        /// Why.
        reason: &'a DisconnectReason,
        /// When the next attempt starts; `None` if there will be none.
        retry_in: Option<Duration>,
    },
    /// The client gave up after `failures` consecutive failures (`max_retries` + 1); follows
    /// the event of the last one.
    GaveUp {
        /// Consecutive failures, the last one included.
        failures: u32,
    },
}

impl fmt::Display for ReconnectEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, retry_in) = match self {
            ReconnectEvent::ConnectFailed { error, retry_in } => {
                (format!("connection failed: {error}"), retry_in)
            }
            ReconnectEvent::ConnectionLost { reason, retry_in } => {
                (format!("connection lost: {reason}"), retry_in)
            }
            ReconnectEvent::GaveUp { failures } => {
                return write!(f, "giving up after {failures} failures in a row")
            }
        };
        match retry_in {
            Some(delay) => write!(f, "{what}; retrying in {delay:.3?}"),
            None => write!(f, "{what}; not retrying"),
        }
    }
}

/// The client factory of one attempt: builds the user's protocol and reports back.
struct Attempt<B> {
    builder: Rc<RefCell<B>>,
    handle: ReconnectHandle,
    attempt: u32,
}

impl<B, P> ClientFactory for Attempt<B>
where
    B: FnMut(&ReconnectHandle) -> P + 'static,
    P: Protocol,
{
    type Protocol = P;

    fn build_protocol(&mut self, peer: crate::Address) -> P {
        self.handle.connected(self.attempt, peer);
        let mut build = self.builder.borrow_mut();
        build(&self.handle)
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        self.handle.attempt_failed(reactor, self.attempt, error);
    }

    fn client_connection_lost(&mut self, reactor: &mut Reactor, reason: &DisconnectReason) {
        self.handle.connection_lost(reactor, self.attempt, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_display_as_log_lines() {
        let cancelled = ConnectError::Cancelled;
        let failed = ReconnectEvent::ConnectFailed {
            error: &cancelled,
            retry_in: Some(Duration::from_micros(9672)),
        };
        assert_eq!(
            failed.to_string(),
            "connection failed: connection attempt cancelled; retrying in 9.672ms"
        );
        let lost = ReconnectEvent::ConnectionLost {
            reason: &DisconnectReason::Closed,
            retry_in: None,
        };
        assert_eq!(
            lost.to_string(),
            "connection lost: connection closed cleanly; not retrying"
        );
        let gave_up = ReconnectEvent::GaveUp { failures: 4 };
        assert_eq!(gave_up.to_string(), "giving up after 4 failures in a row");
    }
}
