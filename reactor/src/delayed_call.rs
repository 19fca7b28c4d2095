//! Calls scheduled for later: [`Reactor::call_later`], [`Context::call_later`] (scoped to a
//! connection, reaching its protocol) and the [`DelayedCall`] handle that cancels, resets or
//! delays them.

use std::any::Any;
use std::time::{Duration, Instant};

use log::error;

use crate::context::Context;
use crate::looping_call::LoopKey;
use crate::protocol::Protocol;
use crate::slot::{ConnectionId, Key};
use crate::time::TimerKey;
use crate::Reactor;

/// A call that gets the reactor.
pub(crate) type ReactorCall = Box<dyn FnOnce(&mut Reactor)>;

/// A call on a connection's protocol, type-erased; it downcasts to the concrete protocol.
pub(crate) type ConnectionCallback = Box<dyn FnOnce(&mut dyn Protocol, &mut Context<'_>)>;

/// What a due timer does.
pub(crate) enum TimerAction {
    /// A user call from [`Reactor::call_later`].
    Call(ReactorCall),
    /// A user call on a connection's protocol from [`Context::call_later`].
    ConnectionCall(Key, ConnectionCallback),
    /// A user call on a datagram protocol from `DatagramContext::call_later`.
    DatagramCall(Key, crate::udp::DatagramCallback),
    /// The next run of a looping call.
    Loop(LoopKey),
    /// Fail the connection attempt at `Key` if it is still connecting.
    ConnectTimeout(Key),
    /// Try accepting again on the listener at `Key` after a resource error.
    AcceptRetry(Key),
    /// A graceful shutdown ran out of time: abort what is left.
    ShutdownDeadline,
    /// Fail the TLS handshake of the connection at `Key` if it is still going (after the
    /// given timeout).
    TlsHandshakeTimeout(Key, Duration),
}

/// A scheduled call (Twisted's `DelayedCall`), returned by [`Reactor::call_later`],
/// [`Reactor::call_at`] and [`Context::call_later`]. It is a small `Copy` handle: the call
/// itself lives in the reactor, so each operation takes the reactor.
///
/// Once the call has fired or been cancelled the handle is inert: `active` is false and
/// `cancel`, `reset` and `delay` return false and do nothing. In particular a call cannot
/// cancel or reset itself while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DelayedCall(pub(crate) TimerKey);

impl DelayedCall {
    /// Cancels the call so it never runs. False if it already ran or was cancelled.
    pub fn cancel(self, reactor: &mut Reactor) -> bool {
        reactor.cancel_timer(self.0)
    }

    /// Reschedules the call to run `delay` from now. It then runs after calls already
    /// scheduled for the same instant. False if it already ran or was cancelled.
    pub fn reset(self, reactor: &mut Reactor, delay: Duration) -> bool {
        let deadline = reactor.now() + delay;
        reactor.timers.reschedule(self.0, deadline)
    }

    /// Pushes the call back by `by` from its current deadline (Twisted's `delay`). False if it
    /// already ran or was cancelled.
    pub fn delay(self, reactor: &mut Reactor, by: Duration) -> bool {
        match reactor.timers.deadline(self.0) {
            Some(deadline) => reactor.timers.reschedule(self.0, deadline + by),
            None => false,
        }
    }

    /// Whether the call is still pending.
    pub fn active(self, reactor: &Reactor) -> bool {
        reactor.timers.deadline(self.0).is_some()
    }

    /// When the call is due, if it is still pending.
    pub fn deadline(self, reactor: &Reactor) -> Option<Instant> {
        reactor.timers.deadline(self.0)
    }
}

impl Reactor {
    /// The reactor's current time: the monotonic clock, or the manual clock given to
    /// [`Reactor::with_clock`].
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Runs `f` on the reactor thread once `delay` has passed (Twisted's `callLater`).
    ///
    /// Due calls run after the turn's poll and dispatch (the poll sleeps at most until the
    /// earliest deadline), in deadline order, calls due at the same instant in the order
    /// they were scheduled. A call scheduled from inside a firing call runs on a
    /// later turn even when already due, so a call that reschedules itself cannot hold the
    /// loop. The reactor's poll sleeps until the next deadline: no busy waiting.
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut Reactor) + 'static,
    ) -> DelayedCall {
        let deadline = self.now() + delay;
        self.call_at(deadline, f)
    }

    /// Runs `f` at `deadline` (a past deadline means on the next turn); see
    /// [`call_later`](Reactor::call_later).
    pub fn call_at(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut Reactor) + 'static,
    ) -> DelayedCall {
        DelayedCall(
            self.timers
                .schedule(deadline, TimerAction::Call(Box::new(f))),
        )
    }

    /// Runs `f` on connection `id`'s protocol (of type `P`) with a context for that
    /// connection, once `delay` has passed (`Duration::ZERO`: on this or the next turn):
    /// how code that holds only the reactor (a timer, another connection, a call from a
    /// thread) reaches a connection's state, e.g. to resume its reading or hand it a result.
    /// Cancelled if the connection closes first; `None` if `id` is stale already.
    pub fn call_later_on<P: Protocol>(
        &mut self,
        id: ConnectionId,
        delay: Duration,
        f: impl FnOnce(&mut P, &mut Context<'_>) + 'static,
    ) -> Option<DelayedCall> {
        let deadline = self.now() + delay;
        self.connection_call_at(id, deadline, f)
    }

    /// Schedules a call on connection `id`'s protocol, which must be of type `P`; see
    /// [`Context::call_later`]. `None` if `id` is stale.
    pub(crate) fn connection_call_at<P: Protocol>(
        &mut self,
        id: ConnectionId,
        deadline: Instant,
        f: impl FnOnce(&mut P, &mut Context<'_>) + 'static,
    ) -> Option<DelayedCall> {
        self.connection(id.0)?;
        let call: ConnectionCallback = Box::new(move |protocol, cx| {
            let protocol: &mut dyn Any = protocol;
            match protocol.downcast_mut::<P>() {
                Some(protocol) => f(protocol, cx),
                None => error!(
                    "timer on connection {} expected protocol {}: dropped",
                    cx.id(),
                    std::any::type_name::<P>()
                ),
            }
        });
        let timer = self
            .timers
            .schedule(deadline, TimerAction::ConnectionCall(id.0, call));
        self.connection_timers.entry(id.0).or_default().push(timer);
        Some(DelayedCall(timer))
    }

    /// Cancels a timer, forgetting it in its connection's list if it has one.
    pub(crate) fn cancel_timer(&mut self, timer: TimerKey) -> bool {
        match self.timers.cancel(timer) {
            Some(
                TimerAction::ConnectionCall(key, _) | TimerAction::TlsHandshakeTimeout(key, _),
            ) => {
                self.forget_connection_timer(key, timer);
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    pub(crate) fn forget_connection_timer(&mut self, key: Key, timer: TimerKey) {
        if let Some(timers) = self.connection_timers.get_mut(&key) {
            timers.retain(|t| *t != timer);
            if timers.is_empty() {
                self.connection_timers.remove(&key);
            }
        }
    }

    /// Cancels every timer of a closing connection.
    pub(crate) fn cancel_connection_timers(&mut self, key: Key) {
        for timer in self.connection_timers.remove(&key).unwrap_or_default() {
            self.timers.cancel(timer);
        }
    }

    /// Runs every timer due now, in order; timers scheduled meanwhile wait for the next turn.
    pub(crate) fn run_due_timers(&mut self) {
        if self.timers.len() == 0 {
            return; // spare the clock read on the hot path of a timer-free loop
        }
        let now = self.now();
        let mark = self.timers.mark();
        while let Some((timer, action)) = self.timers.pop_due(now, mark) {
            self.fire(timer, action);
        }
    }

    fn fire(&mut self, timer: TimerKey, action: TimerAction) {
        match action {
            TimerAction::Call(f) => f(self),
            TimerAction::ConnectionCall(key, f) => {
                self.forget_connection_timer(key, timer);
                self.callback(key, f);
            }
            TimerAction::DatagramCall(key, f) => {
                self.forget_connection_timer(key, timer);
                self.udp_timer(key, f);
            }
            TimerAction::Loop(key) => self.run_loop(key),
            TimerAction::ConnectTimeout(key) => self.connect_timed_out(key),
            TimerAction::AcceptRetry(key) => self.retry_accept(key),
            TimerAction::ShutdownDeadline => self.shutdown_deadline_passed(),
            TimerAction::TlsHandshakeTimeout(key, timeout) => {
                self.forget_connection_timer(key, timer);
                self.tls_handshake_timed_out(key, timeout);
            }
        }
    }
}

impl Context<'_> {
    /// Runs `f` on this connection's protocol once `delay` has passed, with a context for
    /// the connection, e.g. an idle timeout that closes it. `P` is this connection's protocol
    /// type (usually written as `|this: &mut Self, cx| ...`).
    ///
    /// The call is cancelled when the connection closes, so it never runs on a closed
    /// connection. Returns `None` (scheduling nothing) when called from `connection_lost`.
    pub fn call_later<P: Protocol>(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut P, &mut Context<'_>) + 'static,
    ) -> Option<DelayedCall> {
        let id = self.id();
        let reactor = self.reactor();
        let deadline = reactor.now() + delay;
        reactor.connection_call_at(id, deadline, f)
    }
}
