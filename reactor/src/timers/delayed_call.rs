//! Calls scheduled for later: [`Reactor::call_later`], [`Context::call_later`] (scoped to a
//! connection, reaching its protocol) and the [`DelayedCall`] handle that cancels, resets or
//! delays them.

use std::time::{Duration, Instant};

use super::TimerKey;
use crate::context::Context;
use crate::protocol::Protocol;
use crate::Reactor;

/// A call that gets the reactor.
pub(crate) type ReactorCall = Box<dyn FnOnce(&mut Reactor)>;

/// A call on a connection's protocol, type-erased; it downcasts to the concrete protocol.
pub(crate) type ConnectionCallback = Box<dyn FnOnce(&mut dyn Protocol, &mut Context<'_>)>;

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
        reactor.timers().cancel(self.0)
    }

    /// Reschedules the call to run `delay` from now. It then runs after calls already
    /// scheduled for the same instant. False if it already ran or was cancelled.
    pub fn reset(self, reactor: &mut Reactor, delay: Duration) -> bool {
        let deadline = reactor.now() + delay;
        reactor.timers().reschedule(self.0, deadline)
    }

    /// Pushes the call back by `by` from its current deadline (Twisted's `delay`). False if it
    /// already ran or was cancelled.
    pub fn delay(self, reactor: &mut Reactor, by: Duration) -> bool {
        let timers = reactor.timers();
        match timers.deadline(self.0) {
            Some(deadline) => timers.reschedule(self.0, deadline + by),
            None => false,
        }
    }

    /// Whether the call is still pending.
    pub fn active(self, reactor: &Reactor) -> bool {
        reactor.timers_ref().deadline(self.0).is_some()
    }

    /// When the call is due, if it is still pending.
    pub fn deadline(self, reactor: &Reactor) -> Option<Instant> {
        reactor.timers_ref().deadline(self.0)
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
