//! Timers on the reactor: scheduling calls (on the reactor, on a connection's protocol),
//! looping calls, and firing what is due, each action to the part it concerns.

use std::any::Any;
use std::time::{Duration, Instant};

use log::error;

use crate::context::Context;
use crate::protocol::Protocol;
use crate::table::Kind;
use crate::timers::TimerKey;
use crate::timers::{ConnectionCallback, DelayedCall};
use crate::timers::{LoopKey, LoopingCall};
use crate::timers::{TimerAction, Timers};
use crate::{ConnectionId, Reactor};

impl Reactor {
    /// The reactor's current time: the monotonic clock, or the manual clock given to
    /// [`Reactor::with_clock`].
    pub fn now(&self) -> Instant {
        self.timers.now()
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
    /// ([`Reactor::wake`] is the lighter way to prod a connection: no allocation, no
    /// downcast, coalesced.)
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
        self.connections.get(id.0)?;
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
        let owner = id.0.token(Kind::Connection);
        let action = TimerAction::ConnectionCall(id.0, call);
        Some(DelayedCall(
            self.timers.schedule_owned(owner, deadline, action),
        ))
    }

    /// The timers part, for the handles that reach it (delayed and looping calls).
    pub(crate) fn timers(&mut self) -> &mut Timers {
        &mut self.timers
    }

    /// The timers part, read-only.
    pub(crate) fn timers_ref(&self) -> &Timers {
        &self.timers
    }

    /// Runs every timer due now, in order; timers scheduled meanwhile wait for the next turn.
    pub(crate) fn run_due_timers(&mut self) {
        let Some(due) = self.timers.due() else {
            return;
        };
        while let Some((timer, action)) = self.timers.pop_due(&due) {
            self.fire(timer, action);
        }
    }

    /// Hands a due timer's action to the part it concerns.
    fn fire(&mut self, timer: TimerKey, action: TimerAction) {
        self.counters.timers_fired += 1;
        match action {
            TimerAction::Call(f) => f(self),
            TimerAction::ConnectionCall(key, f) => {
                self.timers.forget(key.token(Kind::Connection), timer);
                self.call(key, f);
            }
            TimerAction::DatagramCall(key, f) => {
                self.timers.forget(key.token(Kind::Udp), timer);
                self.udp_callback(key, f);
            }
            TimerAction::Loop(key) => self.run_loop(key),
            TimerAction::ConnectTimeout(key) => self.connect_timed_out(key),
            TimerAction::NextConnectAttempt(key) => self.attempt_delay_passed(key),
            TimerAction::AcceptRetry(key) => self.retry_accept(key),
            TimerAction::ShutdownDeadline => self.shutdown_deadline_passed(),
            TimerAction::TlsHandshakeTimeout(key, timeout) => {
                self.timers.forget(key.token(Kind::Connection), timer);
                self.tls_handshake_timed_out(key, timeout);
            }
        }
    }
    /// Starts calling `f` every `interval`; the first run is on the next turn if `now`, else
    /// one interval from now. `f` gets the reactor and the number of intervals since its
    /// previous run (see [`LoopingCall`]). An interval of zero runs `f` once per turn.
    pub fn start_looping_call(
        &mut self,
        interval: Duration,
        now: bool,
        f: impl FnMut(&mut Reactor, u64) + 'static,
    ) -> LoopingCall {
        let started = self.now();
        let timers = self.timers();
        let key = timers.loops.insert(interval, started, now, Box::new(f));
        let first = if now { started } else { started + interval };
        let timer = timers.schedule(first, TimerAction::Loop(key));
        timers.loops.set_timer(key, timer);
        LoopingCall(key)
    }

    /// A loop's timer fired: run its function with the count of intervals, then schedule the
    /// next run at the next interval boundary after now.
    fn run_loop(&mut self, key: LoopKey) {
        let now = self.now();
        let Some((mut f, count)) = self.timers().loops.take_due(key, now) else {
            return;
        };
        f(self, count);
        let now = self.now();
        let timers = self.timers();
        if let Some(next) = timers.loops.put_back(key, f, now) {
            let timer = timers.schedule(next, TimerAction::Loop(key));
            timers.loops.set_timer(key, timer);
        }
    }
}
