//! The running client: its handle and the state machine behind it (attempt, connection,
//! wait, attempt, ...), with every transition in one place.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{Backoff, BackoffState, ConnectFn, Hook, ReconnectEvent, ReconnectState, Target};
use crate::{
    ConnectError, ConnectOptions, ConnectionId, Connector, DelayedCall, DisconnectReason, Reactor,
    WorkPanicked,
};
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

/// The handle of a running [`ReconnectingClient`](super::ReconnectingClient): stops it and tells its state. Cheap to
/// clone (an `Rc`); every clone names the same client. Not `Send`: it lives on the reactor
/// thread, as the reactor does.
#[derive(Clone)]
pub struct ReconnectHandle {
    shared: Rc<RefCell<Shared>>,
}

impl ReconnectHandle {
    /// Makes the client's state, registers its stop for a graceful shutdown and starts the
    /// first attempt.
    pub(super) fn start(
        reactor: &mut Reactor,
        target: Target,
        options: ConnectOptions,
        backoff: BackoffState,
        connect: ConnectFn,
        hook: Option<Hook>,
    ) -> ReconnectHandle {
        let handle = ReconnectHandle {
            shared: Rc::new(RefCell::new(Shared {
                target,
                options,
                backoff,
                phase: Phase::Idle,
                ended: None,
                attempts: 0,
                addrs: VecDeque::new(),
                connect: Some(connect),
                hook,
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
        if reactor.is_shutting_down() {
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
            (connect, addr, s.attempts, s.options.clone())
        };
        debug!("reconnecting client: attempt {attempt}, connecting to {addr}");
        // `Reactor::connect` never calls the factory back from inside itself.
        let connector = connect(reactor, self, addr, attempt, options);
        if self.is_current(attempt) {
            self.shared.borrow_mut().phase = Phase::Connecting(connector);
        }
    }

    /// The attempt connected: the backoff starts over.
    pub(super) fn connected(&self, attempt: u32, peer: crate::Address) {
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

    pub(super) fn attempt_failed(&self, reactor: &mut Reactor, attempt: u32, error: ConnectError) {
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

    pub(super) fn connection_lost(
        &self,
        reactor: &mut Reactor,
        attempt: u32,
        reason: &DisconnectReason,
    ) {
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
        if cancelled || reactor.is_shutting_down() {
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
