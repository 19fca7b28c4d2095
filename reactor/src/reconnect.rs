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
//!   [`Reactor::connect_tcp_host`] does), and each of their addresses is tried in turn: a
//!   failure counts once the last address failed.

mod backoff;

pub use backoff::{
    Backoff, BackoffState, DEFAULT_FACTOR, DEFAULT_INITIAL_DELAY, DEFAULT_JITTER, DEFAULT_MAX_DELAY,
};

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::{
    ClientFactory, ConnectError, ConnectOptions, ConnectionId, Connector, DelayedCall,
    DisconnectReason, Protocol, Reactor, WorkPanicked,
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
        }
    }

    /// The backoff policy (default: Twisted's, retrying forever).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The options of each connection attempt (its connect timeout).
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
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
    /// loop, as for [`Reactor::connect_tcp`]) and returns the client's handle.
    pub fn start<P>(self, reactor: &mut Reactor) -> ReconnectHandle
    where
        B: FnMut(&ReconnectHandle) -> P + 'static,
        P: Protocol,
    {
        let builder = Rc::new(RefCell::new(self.builder));
        let connect: ConnectFn = Rc::new(move |reactor, handle, addr, attempt, options| {
            let factory = Attempt {
                builder: builder.clone(),
                handle: handle.clone(),
                attempt,
            };
            reactor.connect_tcp_with(addr, factory, options)
        });
        let backoff = match self.seed {
            Some(seed) => BackoffState::with_seed(self.backoff, seed),
            None => BackoffState::new(self.backoff),
        };
        let handle = ReconnectHandle {
            shared: Rc::new(RefCell::new(Shared {
                target: self.target,
                options: self.options,
                backoff,
                phase: Phase::Idle,
                ended: None,
                attempts: 0,
                addrs: VecDeque::new(),
                connect: Some(connect),
                hook: self.hook,
            })),
        };
        // Weak: a client stopped and forgotten is not kept alive by the reactor's triggers.
        let weak = Rc::downgrade(&handle.shared);
        reactor.add_shutdown_trigger(crate::Phase::Before, move |reactor| {
            if let Some(shared) = weak.upgrade() {
                ReconnectHandle { shared }.stop(reactor);
            }
        });
        handle.begin_attempt(reactor);
        handle
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

/// The client's state, shared by its handles, its pending retry and its attempt in flight.
struct Shared {
    target: Target,
    options: ConnectOptions,
    backoff: BackoffState,
    phase: Phase,
    ended: Option<Ended>,
    /// Attempts started so far; the current one's number.
    attempts: u32,
    /// Addresses of the current attempt still to try.
    addrs: VecDeque<SocketAddr>,
    /// `None` once ended: no attempt will start again.
    connect: Option<ConnectFn>,
    hook: Option<Hook>,
}

/// Where the client is in its cycle: attempt, connection, wait, attempt, ...
enum Phase {
    Resolving,
    Connecting(Connector),
    Connected(ConnectionId),
    Waiting {
        call: DelayedCall,
        retry_at: Instant,
    },
    /// Nothing in flight: before the first attempt, or ended.
    Idle,
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    Stopped,
    GaveUp,
}

/// What ended an attempt or a connection.
#[derive(Clone, Copy)]
enum Failure<'a> {
    Connect(&'a ConnectError),
    Lost(&'a DisconnectReason),
}

impl<'a> Failure<'a> {
    fn event(self, retry_in: Option<Duration>) -> ReconnectEvent<'a> {
        match self {
            Failure::Connect(error) => ReconnectEvent::ConnectFailed { error, retry_in },
            Failure::Lost(reason) => ReconnectEvent::ConnectionLost { reason, retry_in },
        }
    }
}

/// The handle of a running [`ReconnectingClient`]: stops it and tells its state. Cheap to
/// clone (an `Rc`); every clone names the same client. Not `Send`: it lives on the reactor
/// thread, as the reactor does.
#[derive(Clone)]
pub struct ReconnectHandle {
    shared: Rc<RefCell<Shared>>,
}

impl ReconnectHandle {
    /// Stops trying: cancels the pending retry, or abandons the attempt in progress (its
    /// socket closed at once, the hook not told), and makes no further attempt. An
    /// established connection stays up (close it with
    /// [`reactor.lose_connection(id)`](Reactor::lose_connection) if that is what you want);
    /// when it ends, nothing reconnects. Returns false if the client had already stopped or
    /// given up.
    pub fn stop(&self, reactor: &mut Reactor) -> bool {
        let (phase, dropped) = {
            let mut s = self.shared.borrow_mut();
            if s.ended.is_some() {
                return false;
            }
            s.ended = Some(Ended::Stopped);
            s.addrs.clear();
            let phase = match s.phase {
                Phase::Connected(_) => Phase::Idle, // the connection stays: leave it be
                _ => std::mem::replace(&mut s.phase, Phase::Idle),
            };
            (phase, (s.hook.take(), s.connect.take()))
        };
        drop(dropped); // the user's closures, dropped outside the borrow
        match phase {
            Phase::Waiting { call, .. } => {
                call.cancel(reactor);
            }
            Phase::Connecting(connector) => {
                connector.stop_connecting(reactor);
            }
            // A lookup in progress finds the client stopped and connects to nothing.
            Phase::Resolving | Phase::Connected(_) | Phase::Idle => {}
        }
        debug!("reconnecting client for {}: stopped", self.target());
        true
    }

    /// What the client is doing now.
    pub fn state(&self) -> ReconnectState {
        let s = self.shared.borrow();
        match (&s.phase, s.ended) {
            (Phase::Connected(id), _) => ReconnectState::Connected(*id),
            (_, Some(Ended::Stopped)) => ReconnectState::Stopped,
            (_, Some(Ended::GaveUp)) => ReconnectState::GaveUp,
            (Phase::Waiting { retry_at, .. }, None) => ReconnectState::Waiting {
                retry_at: *retry_at,
            },
            (Phase::Resolving | Phase::Connecting(_) | Phase::Idle, None) => {
                ReconnectState::Connecting
            }
        }
    }

    /// Whether a connection is established now.
    pub fn is_connected(&self) -> bool {
        self.connection_id().is_some()
    }

    /// The established connection's id, to write to it from outside its protocol
    /// ([`Reactor::write_to`]).
    pub fn connection_id(&self) -> Option<ConnectionId> {
        match self.shared.borrow().phase {
            Phase::Connected(id) => Some(id),
            _ => None,
        }
    }

    /// False once the client stopped or gave up: no further attempt will be made.
    pub fn is_trying(&self) -> bool {
        self.shared.borrow().ended.is_none()
    }

    /// Connection attempts started so far, the first included (a host name's addresses
    /// tried in one attempt count once).
    pub fn attempts(&self) -> u32 {
        self.shared.borrow().attempts
    }

    /// Consecutive failures (failed attempts and lost connections) since the last
    /// established connection: what `max_retries` limits.
    pub fn failures(&self) -> u32 {
        self.shared.borrow().backoff.retries()
    }

    /// The delay chosen before the latest retry (jitter included); `None` before any failure
    /// and after a connection is established (the delay is reset) or once given up.
    pub fn current_delay(&self) -> Option<Duration> {
        self.shared.borrow().backoff.last_delay()
    }

    /// The backoff policy.
    pub fn backoff(&self) -> Backoff {
        *self.shared.borrow().backoff.policy()
    }

    fn target(&self) -> Target {
        self.shared.borrow().target.clone()
    }

    /// Whether `attempt` is the attempt in flight of a client still trying.
    fn is_current(&self, attempt: u32) -> bool {
        let s = self.shared.borrow();
        s.attempts == attempt && s.ended.is_none()
    }

    /// Starts the next attempt: a lookup for a host name, else a connect.
    fn begin_attempt(&self, reactor: &mut Reactor) {
        if reactor.shutdown.draining {
            self.end(Ended::Stopped);
            return;
        }
        let (attempt, target) = {
            let mut s = self.shared.borrow_mut();
            s.attempts = s.attempts.saturating_add(1);
            (s.attempts, s.target.clone())
        };
        match target {
            Target::Addr(addr) => {
                self.shared.borrow_mut().addrs = VecDeque::from([addr]);
                self.connect_next(reactor);
            }
            Target::Host(host, port) => {
                self.shared.borrow_mut().phase = Phase::Resolving;
                self.resolve(reactor, attempt, host, port);
            }
        }
    }

    /// Resolves on the thread pool: getaddrinfo blocks.
    fn resolve(&self, reactor: &mut Reactor, attempt: u32, host: String, port: u16) {
        let handle = self.clone();
        let lookup = move || -> io::Result<VecDeque<SocketAddr>> {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        };
        reactor.call_in_thread(lookup, move |reactor, result| {
            handle.resolved(reactor, attempt, result)
        });
    }

    fn resolved(
        &self,
        reactor: &mut Reactor,
        attempt: u32,
        result: Result<io::Result<VecDeque<SocketAddr>>, WorkPanicked>,
    ) {
        if !self.is_current(attempt) {
            return; // stopped meanwhile
        }
        let error = match result {
            Ok(Ok(addrs)) if !addrs.is_empty() => {
                self.shared.borrow_mut().addrs = addrs;
                return self.connect_next(reactor);
            }
            Ok(Ok(_)) => io::Error::new(io::ErrorKind::NotFound, "no address for host"),
            Ok(Err(e)) => e,
            Err(panicked) => io::Error::other(panicked.to_string()),
        };
        self.shared.borrow_mut().phase = Phase::Idle;
        let error = ConnectError::Resolve(error);
        self.retry_or_give_up(reactor, Failure::Connect(&error));
    }

    /// Connects to the current attempt's next address.
    fn connect_next(&self, reactor: &mut Reactor) {
        let (connect, addr, attempt, options) = {
            let mut s = self.shared.borrow_mut();
            let (Some(connect), Some(addr)) = (s.connect.clone(), s.addrs.pop_front()) else {
                return;
            };
            (connect, addr, s.attempts, s.options)
        };
        debug!("reconnecting client: attempt {attempt}, connecting to {addr}");
        // `connect_tcp_with` never calls the factory back from inside itself.
        let connector = connect(reactor, self, addr, attempt, options);
        if self.is_current(attempt) {
            self.shared.borrow_mut().phase = Phase::Connecting(connector);
        }
    }

    /// The attempt connected: the backoff starts over.
    fn connected(&self, attempt: u32, peer: SocketAddr) {
        let mut s = self.shared.borrow_mut();
        if s.attempts != attempt {
            return;
        }
        if let Phase::Connecting(connector) = s.phase {
            s.phase = Phase::Connected(connector.id());
        }
        s.addrs.clear();
        s.backoff.reset();
        debug!("reconnecting client: connected to {peer} (attempt {attempt})");
    }

    fn attempt_failed(&self, reactor: &mut Reactor, attempt: u32, error: ConnectError) {
        if !self.is_current(attempt) {
            return; // abandoned by `stop`
        }
        let more = !self.shared.borrow().addrs.is_empty();
        if more && !matches!(error, ConnectError::Cancelled) {
            debug!("reconnecting client: {error}; trying the next address");
            return self.connect_next(reactor);
        }
        self.shared.borrow_mut().phase = Phase::Idle;
        self.retry_or_give_up(reactor, Failure::Connect(&error));
    }

    fn connection_lost(&self, reactor: &mut Reactor, attempt: u32, reason: &DisconnectReason) {
        {
            let mut s = self.shared.borrow_mut();
            if s.attempts != attempt {
                return;
            }
            s.phase = Phase::Idle;
            if s.ended.is_some() {
                return; // stopped while connected: the connection was the last
            }
        }
        self.retry_or_give_up(reactor, Failure::Lost(reason));
    }

    /// After a failure: schedule the next attempt, or give up; then tell the hook.
    fn retry_or_give_up(&self, reactor: &mut Reactor, failure: Failure<'_>) {
        let target = self.target();
        let cancelled = matches!(failure, Failure::Connect(ConnectError::Cancelled));
        if cancelled || reactor.shutdown.draining {
            // Only the reactor cancels an attempt behind our back: it is shutting down.
            self.end(Ended::Stopped);
            return self.emit(reactor, &[failure.event(None)]);
        }
        let next = self.shared.borrow_mut().backoff.next_delay();
        let Some(delay) = next else {
            let failures = self.failures();
            warn!("reconnecting client for {target}: giving up after {failures} failures");
            self.end(Ended::GaveUp);
            let gave_up = ReconnectEvent::GaveUp { failures };
            return self.emit(reactor, &[failure.event(None), gave_up]);
        };
        let handle = self.clone();
        let call = reactor.call_later(delay, move |reactor| handle.retry_due(reactor));
        let retry_at = reactor.now() + delay;
        self.shared.borrow_mut().phase = Phase::Waiting { call, retry_at };
        let event = failure.event(Some(delay));
        debug!("reconnecting client for {target}: {event}");
        self.emit(reactor, &[event]);
    }

    fn retry_due(&self, reactor: &mut Reactor) {
        if self.is_trying() {
            self.begin_attempt(reactor);
        }
    }

    /// No further attempt; an established connection stays.
    fn end(&self, ended: Ended) {
        let dropped = {
            let mut s = self.shared.borrow_mut();
            s.ended = Some(ended);
            if !matches!(s.phase, Phase::Connected(_)) {
                s.phase = Phase::Idle;
            }
            s.connect.take()
        };
        drop(dropped);
    }

    /// Tells the hook, taken out of the shared state while it runs (it may call the handle);
    /// it goes back unless the client ended meanwhile.
    fn emit(&self, reactor: &mut Reactor, events: &[ReconnectEvent<'_>]) {
        let Some(mut hook) = self.shared.borrow_mut().hook.take() else {
            return;
        };
        for event in events {
            hook(reactor, self, event);
        }
        let mut s = self.shared.borrow_mut();
        if s.ended.is_none() && s.hook.is_none() {
            s.hook = Some(hook);
        }
    }
}

impl fmt::Debug for ReconnectHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ReconnectHandle");
        if let Ok(s) = self.shared.try_borrow() {
            d.field("target", &format_args!("{}", s.target))
                .field("attempts", &s.attempts)
                .field("failures", &s.backoff.retries());
        }
        d.finish_non_exhaustive()
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

    fn build_protocol(&mut self, peer: SocketAddr) -> P {
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
