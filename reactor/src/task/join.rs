//! A spawned task's result: the [`JoinHandle`] that awaits or aborts it, and [`JoinError`],
//! why it may end without one.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The output of a task spawned with [`Reactor::spawn_task`](crate::Reactor::spawn_task) or
/// [`LocalHandle::spawn_task`](crate::task::LocalHandle::spawn_task): await it for the task's output,
/// or [`abort`](JoinHandle::abort) the task. Dropping the handle detaches the task: it runs
/// on, and its output is dropped.
///
/// Not `Send`: it is awaited on the reactor's thread, by another task (or polled by hand).
/// From another thread, [`ReactorHandle::spawn_task`](crate::ReactorHandle::spawn_task) returns a
/// [`RemoteJoinHandle`](crate::task::RemoteJoinHandle) instead.
pub struct JoinHandle<T> {
    slot: Rc<Slot<T>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(slot: Rc<Slot<T>>) -> JoinHandle<T> {
        JoinHandle { slot }
    }

    /// Asks the task to stop: it is dropped (at its next `.await`, or before its first poll)
    /// the next time the reactor runs tasks, and the handle then gives
    /// [`JoinError::is_cancelled`]. A task that already finished keeps its output.
    pub fn abort(&self) {
        let mut state = self.slot.state.borrow_mut();
        if state.output.is_some() || state.ended {
            return;
        }
        state.abort = true;
        if let Some(task) = &state.task {
            task.wake_by_ref();
        }
    }

    /// Whether the task has ended (finished, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        let state = self.slot.state.borrow();
        state.output.is_some() || state.ended
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.borrow_mut();
        if let Some(output) = state.output.take() {
            return Poll::Ready(output);
        }
        assert!(!state.ended, "a JoinHandle polled after it returned Ready");
        match &mut state.waiter {
            Some(waiter) if waiter.will_wake(cx.waker()) => {}
            waiter => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Why a task gave no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    Cancelled,
    Panicked(String),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            why: Why::Cancelled,
        }
    }

    pub(crate) fn panicked(message: String) -> JoinError {
        JoinError {
            why: Why::Panicked(message),
        }
    }

    /// The task was aborted ([`JoinHandle::abort`]) or dropped with its reactor.
    pub fn is_cancelled(&self) -> bool {
        self.why == Why::Cancelled
    }

    /// The task panicked; the reactor caught the panic, logged it, dropped the task and went
    /// on.
    pub fn is_panic(&self) -> bool {
        matches!(self.why, Why::Panicked(_))
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Why::Cancelled => f.write_str("the task was cancelled"),
            Why::Panicked(message) => write!(f, "the task panicked: {message}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Where a task's output waits for its handle, and the handle's requests wait for the task.
pub(crate) struct Slot<T> {
    state: RefCell<SlotState<T>>,
}

struct SlotState<T> {
    output: Option<Result<T, JoinError>>,
    /// The task ended and its output (if any) was taken or dropped.
    ended: bool,
    /// The handle asked the task to stop.
    abort: bool,
    /// Who awaits the handle.
    waiter: Option<Waker>,
    /// The task's own waker, to wake it for an abort.
    task: Option<Waker>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Rc<Slot<T>> {
        Rc::new(Slot {
            state: RefCell::new(SlotState {
                output: None,
                ended: false,
                abort: false,
                waiter: None,
                task: None,
            }),
        })
    }

    /// The task's output: kept for the handle, whose awaiter is woken.
    pub(crate) fn finish(&self, output: Result<T, JoinError>) {
        let waiter = {
            let mut state = self.state.borrow_mut();
            state.output = Some(output);
            state.ended = true;
            state.task = None;
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

/// A task's slot, whatever its output type: what the reactor asks and tells it.
pub(crate) trait Completion {
    /// Records the task's waker, for an abort to wake it.
    fn set_task_waker(&self, waker: &Waker);
    /// Whether the handle asked the task to stop.
    fn abort_requested(&self) -> bool;
    /// The task ended without output.
    fn ended(&self, error: JoinError);
}

impl<T> Completion for Slot<T> {
    fn set_task_waker(&self, waker: &Waker) {
        self.state.borrow_mut().task = Some(waker.clone());
    }

    fn abort_requested(&self) -> bool {
        self.state.borrow().abort
    }

    fn ended(&self, error: JoinError) {
        if !self.state.borrow().ended {
            self.finish(Err(error));
        }
    }
}
