//! Timers: the queue of everything scheduled (user calls, looping calls, the reactor's own
//! deadlines), which of them belong to a connection or a UDP socket (cancelled when it
//! closes), the looping calls' state, and the clock they all follow; and the handles user code
//! holds ([`DelayedCall`], [`LoopingCall`]).
//!
//! - `queue.rs`, `wheel.rs`, `slots.rs`: [`TimerQueue`], a hierarchical timing wheel whose
//!   buckets are sorted exactly when they come due;
//! - `clock.rs`: the monotonic clock and [`ManualClock`];
//! - `delayed_call.rs`, `looping_call.rs`: the handles, and the looping calls' state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mio::Token;

use crate::table::Key;

mod clock;
mod delayed_call;
mod looping_call;
mod queue;
#[cfg(test)]
mod queue_tests;
mod slots;
mod wheel;

pub(crate) use clock::Clock;
pub use clock::ManualClock;
pub use delayed_call::DelayedCall;
pub(crate) use delayed_call::{ConnectionCallback, ReactorCall};
pub use looping_call::LoopingCall;
pub(crate) use looping_call::{LoopKey, Loops};
pub(crate) use queue::{TimerKey, TimerQueue};

/// What a due timer does.
pub(crate) enum TimerAction {
    /// A user call from [`Reactor::call_later`](crate::Reactor::call_later).
    Call(ReactorCall),
    /// A user call on a connection's protocol from
    /// [`Context::call_later`](crate::Context::call_later).
    ConnectionCall(Key, ConnectionCallback),
    /// A user call on a datagram protocol from `DatagramContext::call_later`.
    DatagramCall(Key, crate::udp::DatagramCallback),
    /// The next run of a looping call.
    Loop(LoopKey),
    /// Fail the connection attempt at `Key` if it is still connecting.
    ConnectTimeout(Key),
    /// Happy Eyeballs: start connecting to the next address of the attempt at `Key`
    /// alongside those still connecting.
    NextConnectAttempt(Key),
    /// Try accepting again on the listener at `Key` after a resource error.
    AcceptRetry(Key),
    /// A graceful shutdown ran out of time: abort what is left.
    ShutdownDeadline,
    /// Fail the TLS handshake of the connection at `Key` if it is still going (after the
    /// given timeout).
    TlsHandshakeTimeout(Key, Duration),
}

/// Every pending timer, and whose.
pub(crate) struct Timers {
    queue: TimerQueue<TimerAction>,
    /// The pending timers of each source that has had any (by its poll token: connections
    /// and UDP sockets), cancelled when it closes. A source's list stays, empty, until it
    /// closes: a connection that re-arms one timer per request costs no allocation.
    owned: HashMap<Token, Vec<TimerKey>, BuildTokenHasher>,
    clock: Clock,
    pub(crate) loops: Loops,
}

impl Timers {
    pub(crate) fn new(clock: Clock) -> Timers {
        Timers {
            queue: TimerQueue::default(),
            owned: HashMap::default(),
            clock,
            loops: Loops::default(),
        }
    }

    /// The clock the timers follow.
    pub(crate) fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The current time on the reactor's clock.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether time moves only when a test advances it.
    pub(crate) fn is_manual(&self) -> bool {
        self.clock.is_manual()
    }

    /// Schedules `action` for `deadline`.
    pub(crate) fn schedule(&mut self, deadline: Instant, action: TimerAction) -> TimerKey {
        self.queue.schedule(deadline, action)
    }

    /// Schedules `action` for `deadline` on behalf of `owner`, whose closing cancels it.
    pub(crate) fn schedule_owned(
        &mut self,
        owner: Token,
        deadline: Instant,
        action: TimerAction,
    ) -> TimerKey {
        let timer = self.queue.schedule(deadline, action);
        self.owned.entry(owner).or_default().push(timer);
        timer
    }

    /// Cancels a timer (forgetting it in its owner's list); false if it already fired or
    /// was cancelled.
    pub(crate) fn cancel(&mut self, timer: TimerKey) -> bool {
        match self.queue.cancel(timer) {
            Some(action) => {
                if let Some(owner) = action.owner() {
                    self.forget(owner, timer);
                }
                true
            }
            None => false,
        }
    }

    /// Forgets a timer of `owner` that fired.
    pub(crate) fn forget(&mut self, owner: Token, timer: TimerKey) {
        if let Some(timers) = self.owned.get_mut(&owner) {
            timers.retain(|t| *t != timer);
        }
    }

    /// Cancels every timer of a closing source.
    pub(crate) fn cancel_owned(&mut self, owner: Token) {
        for timer in self.owned.remove(&owner).unwrap_or_default() {
            self.queue.cancel(timer);
        }
    }

    /// Moves a pending timer to `deadline`; false if it is no longer pending.
    pub(crate) fn reschedule(&mut self, timer: TimerKey, deadline: Instant) -> bool {
        self.queue.reschedule(timer, deadline)
    }

    /// When a pending timer is due.
    pub(crate) fn deadline(&self, timer: TimerKey) -> Option<Instant> {
        self.queue.deadline(timer)
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.queue.next_deadline()
    }

    /// The timers due now, one at a time, in order; those scheduled while they run wait for
    /// the next turn (Twisted's `runUntilCurrent`). `None` when the queue is empty, sparing
    /// the clock read on the hot path of a timer-free loop.
    pub(crate) fn due(&self) -> Option<Due> {
        if self.queue.len() == 0 {
            return None;
        }
        Some(Due {
            now: self.now(),
            mark: self.queue.mark(),
        })
    }

    /// The next timer due in the pass `due` began.
    pub(crate) fn pop_due(&mut self, due: &Due) -> Option<(TimerKey, TimerAction)> {
        self.queue.pop_due(due.now, due.mark)
    }
}

/// Hashes the poll tokens that key [`Timers::owned`]: the reactor makes them (no peer
/// chooses one), so a multiply-and-fold does, where SipHash's resistance to chosen keys
/// would cost more than the rest of re-arming a timer.
#[derive(Default, Clone, Copy)]
struct BuildTokenHasher;

impl std::hash::BuildHasher for BuildTokenHasher {
    type Hasher = TokenHasher;

    fn build_hasher(&self) -> TokenHasher {
        TokenHasher(0)
    }
}

/// See [`BuildTokenHasher`].
#[derive(Default)]
struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        // Fibonacci hashing, folded so that both the low bits (the bucket) and the top
        // seven (hashbrown's tag) depend on every bit of the token.
        let h = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

/// One pass over the due timers: the time it fires for, and the mark of what it may fire.
pub(crate) struct Due {
    now: Instant,
    mark: u64,
}

impl TimerAction {
    /// The source whose closing cancels this timer, if it has one.
    fn owner(&self) -> Option<Token> {
        use crate::table::Kind;
        match self {
            TimerAction::ConnectionCall(key, _) | TimerAction::TlsHandshakeTimeout(key, _) => {
                Some(key.token(Kind::Connection))
            }
            TimerAction::DatagramCall(key, _) => Some(key.token(Kind::Udp)),
            _ => None,
        }
    }
}
