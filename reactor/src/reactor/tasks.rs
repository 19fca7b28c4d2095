//! Async tasks on the reactor: spawning them and polling the woken ones each turn.

use std::future::Future;

use crate::task::runner::Polled;
use crate::task::{
    new_task, JoinHandle, LocalHandle, RemoteJoinHandle, RemoteSlot, RemoteTask, Unstarted,
};
use crate::{Reactor, ReactorHandle};

/// Task polls one turn may make before the reactor polls for I/O again.
const TASK_POLLS_PER_TURN: usize = 128;

impl Reactor {
    /// Spawns `future` as a task on this reactor's thread: polled first in the next turn
    /// (or right after the current task yields, from a task), then each time its waker is
    /// called. Its output waits in the returned [`JoinHandle`]; drop the handle to let it run
    /// detached. The future need not be `Send`. See the [`task`](crate::task) module.
    pub fn spawn_task<F>(&mut self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, handle) = new_task(future);
        self.tasks.insert(task, &self.threads.remote);
        handle
    }

    /// A handle for async code on this reactor's thread: spawn, sleep, time out, call the
    /// reactor from a task.
    pub fn local_handle(&self) -> LocalHandle {
        LocalHandle::new(self.tasks.local.clone(), self.timers.clock())
    }

    /// Tasks spawned and not yet ended.
    pub fn tasks_alive(&self) -> usize {
        self.tasks.len()
    }

    /// Polls the tasks queued (new, or woken since the last look), in order, and after each
    /// poll runs what it asked of the reactor; tasks woken meanwhile (a call's answer, a task
    /// another one awaits) are polled in the same turn, up to [`TASK_POLLS_PER_TURN`] polls,
    /// so a task that keeps waking itself cannot hold the loop away from I/O.
    pub(crate) fn run_tasks(&mut self) {
        if self.threads.anything_sent() {
            self.run_remote_calls();
        }
        if !self.tasks.has_work() {
            return;
        }
        let mut budget = TASK_POLLS_PER_TURN;
        loop {
            self.run_local_calls();
            let Some(key) = self.tasks.next_queued() else {
                return;
            };
            if budget == 0 {
                return self.tasks.requeue_front(key);
            }
            budget -= 1;
            match self.tasks.poll(key) {
                Polled::Pending | Polled::Ended => {}
            }
            if self.threads.anything_sent() {
                self.run_remote_calls();
            }
        }
    }

    /// Runs the calls tasks queued and adopts the tasks they spawned.
    fn run_local_calls(&mut self) {
        if self.tasks.local.is_empty() {
            return;
        }
        loop {
            let call = self.tasks.local.pop_call();
            match call {
                Some(call) => call(self),
                None => break,
            }
        }
        let spawned = self.tasks.local.take_spawned();
        for task in spawned {
            self.tasks.insert(task, &self.threads.remote);
        }
    }
}

impl ReactorHandle {
    /// Spawns a task on the reactor from any thread: `make` runs on the reactor's thread with
    /// its [`LocalHandle`] and returns the future (which need not be `Send`; its output must
    /// be). Returns a [`RemoteJoinHandle`] to wait for the output; if the reactor is gone,
    /// the handle gives cancelled.
    pub fn spawn_task<M, F>(&self, make: M) -> RemoteJoinHandle<F::Output>
    where
        M: FnOnce(LocalHandle) -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let slot = RemoteSlot::new();
        let handle = RemoteJoinHandle::new(slot.clone());
        // Dropped unrun if the reactor is gone: the handle then hears `cancelled`.
        let unstarted = Unstarted::new(slot);
        let _ = self.call_from_thread(move |reactor| {
            let future = make(reactor.local_handle());
            let task = RemoteTask {
                future: Box::pin(future),
                slot: unstarted.start(),
            };
            drop(reactor.spawn_task(task));
        });
        handle
    }
}
