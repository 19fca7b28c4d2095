//! Tasks spawned from other threads ([`ReactorHandle::spawn_task`](crate::ReactorHandle::spawn_task))
//! and their [`RemoteJoinHandle`], which any thread can await or block on.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use log::error;

use super::join::JoinError;
use crate::remote::WorkPanicked;

/// The output of a task spawned from another thread: `Send`, so the spawning thread can
/// [`wait`](RemoteJoinHandle::wait) for it, await it on any executor (its waker is called
/// from the reactor's thread), or [`abort`](RemoteJoinHandle::abort) the task.
pub struct RemoteJoinHandle<T> {
    slot: Arc<RemoteSlot<T>>,
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle").finish_non_exhaustive()
    }
}

pub(crate) struct RemoteSlot<T> {
    state: Mutex<RemoteState<T>>,
    done: Condvar,
}

struct RemoteState<T> {
    output: Option<Result<T, JoinError>>,
    ended: bool,
    abort: bool,
    waiter: Option<Waker>,
    /// The task's waker, to wake it for an abort.
    task: Option<Waker>,
}

impl<T> RemoteSlot<T> {
    pub(crate) fn new() -> Arc<RemoteSlot<T>> {
        Arc::new(RemoteSlot {
            state: Mutex::new(RemoteState {
                output: None,
                ended: false,
                abort: false,
                waiter: None,
                task: None,
            }),
            done: Condvar::new(),
        })
    }

    /// The state, even if a thread panicked holding the lock (every change is one store).
    fn state(&self) -> MutexGuard<'_, RemoteState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, output: Result<T, JoinError>) {
        let waiter = {
            let mut state = self.state();
            if state.ended {
                return;
            }
            state.output = Some(output);
            state.ended = true;
            state.task = None;
            state.waiter.take()
        };
        self.done.notify_all();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

/// A remote task's slot on its way to the reactor: if it is dropped before the task starts
/// (the reactor went away with the call queued), the handle hears `cancelled`.
pub(crate) struct Unstarted<T>(Option<Arc<RemoteSlot<T>>>);

impl<T> Unstarted<T> {
    pub(crate) fn new(slot: Arc<RemoteSlot<T>>) -> Unstarted<T> {
        Unstarted(Some(slot))
    }

    /// The task starts: from now on it tells the slot how it ends.
    pub(crate) fn start(mut self) -> Arc<RemoteSlot<T>> {
        self.0.take().expect("a slot starts once")
    }
}

impl<T> Drop for Unstarted<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.finish(Err(JoinError::cancelled()));
        }
    }
}

impl<T> RemoteJoinHandle<T> {
    pub(crate) fn new(slot: Arc<RemoteSlot<T>>) -> RemoteJoinHandle<T> {
        RemoteJoinHandle { slot }
    }

    /// Blocks this thread until the task ends. Never call it on the reactor's own thread:
    /// the task could not run.
    pub fn wait(self) -> Result<T, JoinError> {
        let mut state = self.slot.state();
        loop {
            if let Some(output) = state.output.take() {
                return output;
            }
            state = self
                .slot
                .done
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Asks the task to stop (see [`JoinHandle::abort`](super::JoinHandle::abort)).
    pub fn abort(&self) {
        let task = {
            let mut state = self.slot.state();
            if state.ended {
                return;
            }
            state.abort = true;
            state.task.clone()
        };
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state();
        if let Some(output) = state.output.take() {
            return Poll::Ready(output);
        }
        assert!(
            !state.ended,
            "a RemoteJoinHandle polled after it returned Ready"
        );
        state.waiter = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The task a remote spawn runs: the future, its output sent to the slot. It catches its own
/// panic (the slot must hear of it) and tells the slot `cancelled` if dropped unfinished.
pub(crate) struct RemoteTask<F: Future> {
    pub(crate) future: Pin<Box<F>>,
    pub(crate) slot: Arc<RemoteSlot<F::Output>>,
}

impl<F: Future> Future for RemoteTask<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut state = self.slot.state();
            if state.abort {
                drop(state);
                self.slot.finish(Err(JoinError::cancelled()));
                return Poll::Ready(());
            }
            state.task = Some(cx.waker().clone());
        }
        let future = self.future.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                self.slot.finish(Ok(output));
                Poll::Ready(())
            }
            Err(payload) => {
                let message = WorkPanicked::from_payload(payload).message().to_string();
                error!("a task panicked: {message}");
                self.slot.finish(Err(JoinError::panicked(message)));
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future> Drop for RemoteTask<F> {
    fn drop(&mut self) {
        self.slot.finish(Err(JoinError::cancelled()));
    }
}
