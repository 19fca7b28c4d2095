//! [`LocalHandle`]: how async code on the reactor's thread reaches the reactor, and the
//! futures it makes: [`Sleep`], [`Timeout`], [`CallResult`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::join::{JoinHandle, Slot};
use super::runner::{LocalQueue, NewTask};
use crate::timers::{Clock, DelayedCall};
use crate::Reactor;

/// A handle to the reactor for async code on its thread: spawn tasks, sleep, time out, and
/// run any reactor code from a task ([`call`](LocalHandle::call)). Get one with
/// [`Reactor::local_handle`]; clones are cheap and share the reactor.
///
/// A task never holds `&mut Reactor` (a future cannot borrow what polls it): what it asks of
/// the reactor is queued here and carried out right after the task's poll returns, in the
/// order asked. So `handle.call(|r| ...)` resolves once the task yields, in the same turn.
///
/// Not `Send`: it is for the reactor's own thread. Other threads use
/// [`ReactorHandle`](crate::ReactorHandle).
#[derive(Clone)]
pub struct LocalHandle {
    queue: Rc<LocalQueue>,
    clock: Clock,
}

impl fmt::Debug for LocalHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalHandle").finish_non_exhaustive()
    }
}

impl LocalHandle {
    pub(crate) fn new(queue: Rc<LocalQueue>, clock: Clock) -> LocalHandle {
        LocalHandle { queue, clock }
    }

    /// Spawns `future` as a task on the reactor (see [`Reactor::spawn_task`]); it is first polled
    /// right after the current task yields (or, from outside a task, in the reactor's next
    /// turn).
    pub fn spawn_task<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, handle) = new_task(future);
        self.queue.push_task(task);
        handle
    }

    /// Runs `f` with the reactor once the task yields, and resolves to what it returns: the
    /// way from a task to any reactor method (listen, connect, `call_in_thread`, a
    /// connection's write). Lazy, as futures are: nothing is queued until it is first polled.
    pub fn call<R, F>(&self, f: F) -> CallResult<R>
    where
        R: 'static,
        F: FnOnce(&mut Reactor) -> R + 'static,
    {
        CallResult {
            queue: self.queue.clone(),
            f: Some(Box::new(f)),
            result: Rc::new(ResultCell::default()),
        }
    }

    /// Queues `f` to run with the reactor once the current task yields, without waiting for
    /// it: for what must happen but needs no answer (a write, a cancel from a `Drop`).
    pub fn defer(&self, f: impl FnOnce(&mut Reactor) + 'static) {
        self.queue.push_call(Box::new(f));
    }

    /// The reactor's time (its manual clock under test).
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A future that completes once `duration` has passed on the reactor's clock (counted
    /// from this call), through the reactor's timers: a manual clock makes it wait for the
    /// test to advance.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(self.now() + duration)
    }

    /// A future that completes at `deadline` on the reactor's clock.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            handle: self.clone(),
            deadline,
            timer: None,
        }
    }

    /// Runs `future` for at most `duration`: its output, or [`Elapsed`] (and `future` is
    /// dropped) if the time ran out first.
    pub fn timeout<F: Future>(&self, duration: Duration, future: F) -> Timeout<F> {
        Timeout {
            future: Box::pin(future),
            sleep: self.sleep(duration),
        }
    }
}

/// Builds the task for `future` and the handle to its output.
pub(crate) fn new_task<F>(future: F) -> (NewTask, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let slot = Slot::new();
    let output = slot.clone();
    let task = NewTask {
        future: Box::pin(async move {
            let value = future.await;
            output.finish(Ok(value));
        }),
        completion: slot.clone(),
    };
    (task, JoinHandle::new(slot))
}

/// Where a value made on the reactor waits for the future that asked for it.
struct ResultCell<R> {
    value: RefCell<Option<R>>,
    waker: RefCell<Option<Waker>>,
}

impl<R> Default for ResultCell<R> {
    fn default() -> Self {
        ResultCell {
            value: RefCell::new(None),
            waker: RefCell::new(None),
        }
    }
}

impl<R> ResultCell<R> {
    fn set(&self, value: R) {
        *self.value.borrow_mut() = Some(value);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// A call for the reactor that answers.
type ReactorFn<R> = Box<dyn FnOnce(&mut Reactor) -> R>;

/// The future of [`LocalHandle::call`]: resolves to what the call returned.
#[must_use = "futures do nothing unless awaited"]
pub struct CallResult<R> {
    queue: Rc<LocalQueue>,
    f: Option<ReactorFn<R>>,
    result: Rc<ResultCell<R>>,
}

impl<R> fmt::Debug for CallResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallResult").finish_non_exhaustive()
    }
}

impl<R: 'static> Future for CallResult<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        if let Some(value) = self.result.value.borrow_mut().take() {
            return Poll::Ready(value);
        }
        *self.result.waker.borrow_mut() = Some(cx.waker().clone());
        if let Some(f) = self.f.take() {
            let result = self.result.clone();
            self.queue
                .push_call(Box::new(move |reactor| result.set(f(reactor))));
        }
        Poll::Pending
    }
}

/// The future of [`LocalHandle::sleep`]. Dropping it before it completes cancels its timer.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    handle: LocalHandle,
    deadline: Instant,
    /// Set once the timer is asked for.
    timer: Option<Rc<SleepTimer>>,
}

/// A sleep's timer, as the reactor and the future share it.
#[derive(Default)]
struct SleepTimer {
    fired: Cell<bool>,
    call: Cell<Option<DelayedCall>>,
    waker: RefCell<Option<Waker>>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(timer) = &self.timer {
            if timer.fired.get() {
                return Poll::Ready(());
            }
            *timer.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let timer = Rc::new(SleepTimer::default());
        *timer.waker.borrow_mut() = Some(cx.waker().clone());
        let (shared, deadline) = (timer.clone(), self.deadline);
        self.handle.defer(move |reactor| {
            let fired = shared.clone();
            let call = reactor.call_at(deadline, move |_| {
                fired.fired.set(true);
                if let Some(waker) = fired.waker.borrow_mut().take() {
                    waker.wake();
                }
            });
            shared.call.set(Some(call));
        });
        self.timer = Some(timer);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        if !timer.fired.get() {
            self.handle.defer(move |reactor| {
                if let Some(call) = timer.call.take() {
                    call.cancel(reactor);
                }
            });
        }
    }
}

/// The future of [`LocalHandle::timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Sleep,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("deadline", &self.sleep.deadline)
            .finish_non_exhaustive()
    }
}

/// A [`Timeout`] ran out before its future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(output) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}
