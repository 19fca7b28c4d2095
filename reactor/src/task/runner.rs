//! The tasks part: the spawned futures, polled on the reactor's thread when woken, each at
//! most once per wake; and what tasks queue for the reactor (calls, new tasks), which the
//! reactor carries out after each poll.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use log::error;

use super::join::{Completion, JoinError};
use super::waker::{reactor_id, take_woken_here, TaskWaker};
use crate::remote::{Remote, WorkPanicked};
use crate::table::{Key, Table};
use crate::Reactor;

/// A call a task (or a future's drop) queued for the reactor.
pub(crate) type LocalCall = Box<dyn FnOnce(&mut Reactor)>;

/// A future as the reactor keeps it: its output goes to its slot.
pub(crate) type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A task not yet in the table: its future and its slot.
pub(crate) struct NewTask {
    pub(crate) future: TaskFuture,
    pub(crate) completion: Rc<dyn Completion>,
}

/// What tasks and futures on the reactor's thread queue for it: shared by every
/// [`LocalHandle`](super::LocalHandle).
#[derive(Default)]
pub(crate) struct LocalQueue {
    calls: RefCell<VecDeque<LocalCall>>,
    spawned: RefCell<Vec<NewTask>>,
    /// Something was queued since the reactor last emptied the queue: the one flag a turn
    /// without tasks reads.
    pending: Cell<bool>,
}

impl LocalQueue {
    /// Whether anything waits for the reactor.
    pub(crate) fn is_empty(&self) -> bool {
        !self.pending.get()
    }

    /// Queues a call for the reactor.
    pub(crate) fn push_call(&self, call: LocalCall) {
        self.calls.borrow_mut().push_back(call);
        self.pending.set(true);
    }

    /// Queues a new task for the reactor to adopt.
    pub(crate) fn push_task(&self, task: NewTask) {
        self.spawned.borrow_mut().push(task);
        self.pending.set(true);
    }

    /// The next call queued.
    pub(crate) fn pop_call(&self) -> Option<LocalCall> {
        self.calls.borrow_mut().pop_front()
    }

    /// The tasks spawned since the last look; the queue is then empty (the calls were
    /// popped before), so its flag goes down.
    pub(crate) fn take_spawned(&self) -> Vec<NewTask> {
        self.pending.set(false);
        std::mem::take(&mut *self.spawned.borrow_mut())
    }

    /// Drops every queued call.
    fn clear_calls(&self) {
        self.calls.borrow_mut().clear();
    }
}

/// A task in the table.
struct Task {
    future: TaskFuture,
    completion: Rc<dyn Completion>,
    waker: Arc<TaskWaker>,
    waker_std: Waker,
    /// Spawn order: tasks still pending when the reactor is dropped go in this order.
    seq: u64,
}

/// The tasks part.
pub(crate) struct Tasks {
    table: Table<Task>,
    /// Tasks to poll (new ones, and those woken), in order.
    run_queue: VecDeque<Key>,
    pub(crate) local: Rc<LocalQueue>,
    next_seq: u64,
    /// The reactor's id, as wakes on its thread name it.
    reactor: usize,
    remote: Arc<Remote>,
}

/// How one poll of a task went.
pub(crate) enum Polled {
    /// The task is not done; it waits for a wake.
    Pending,
    /// The task is done (or ended by a panic or an abort): it left the table.
    Ended,
}

impl Tasks {
    /// The tasks of the reactor that `remote` belongs to.
    pub(crate) fn new(remote: &Arc<Remote>) -> Tasks {
        Tasks {
            table: Table::default(),
            run_queue: VecDeque::new(),
            local: Rc::new(LocalQueue::default()),
            next_seq: 0,
            reactor: reactor_id(remote),
            remote: remote.clone(),
        }
    }

    /// Whether a task waits to be polled or a call waits to be run.
    pub(crate) fn has_work(&self) -> bool {
        !self.run_queue.is_empty() || !self.local.is_empty() || self.remote.woken_here()
    }

    /// Tasks alive.
    pub(crate) fn len(&self) -> usize {
        self.table.iter().count()
    }

    /// Puts a new task in the table and queues its first poll.
    pub(crate) fn insert(&mut self, task: NewTask, remote: &Arc<Remote>) {
        let Ok(key) = self.table.next_key() else {
            error!("too many tasks: a task was dropped unpolled");
            task.completion.ended(JoinError::cancelled());
            return;
        };
        let waker = TaskWaker::new(key, remote.clone());
        let waker_std = waker.waker();
        task.completion.set_task_waker(&waker_std);
        self.next_seq += 1;
        self.table.insert_at(
            key,
            Task {
                future: task.future,
                completion: task.completion,
                waker,
                waker_std,
                seq: self.next_seq,
            },
        );
        self.run_queue.push_back(key);
    }

    /// Queues the tasks woken (stale keys are skipped when polled).
    pub(crate) fn woken(&mut self, keys: Vec<Key>) {
        self.run_queue.extend(keys);
    }

    /// The next task to poll: the first queued, after adding those woken on this thread.
    pub(crate) fn next_queued(&mut self) -> Option<Key> {
        if self.remote.take_woken_here_flag() {
            take_woken_here(self.reactor, &mut self.run_queue);
        }
        self.run_queue.pop_front()
    }

    /// Puts `key` back at the front of the run queue (the turn's budget is spent).
    pub(crate) fn requeue_front(&mut self, key: Key) {
        self.run_queue.push_front(key);
    }

    /// Polls task `key` once (if it is still there), catching a panic.
    pub(crate) fn poll(&mut self, key: Key) -> Polled {
        let Some(task) = self.table.get_mut(key) else {
            return Polled::Pending;
        };
        // Cleared before the poll: a wake during it queues the task again.
        task.waker.queued.store(false, Ordering::Release);
        if task.completion.abort_requested() {
            return self.end(key, JoinError::cancelled());
        }
        let mut cx = Context::from_waker(&task.waker_std);
        let future = task.future.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Pending) => Polled::Pending,
            Ok(Poll::Ready(())) => {
                self.table.remove(key);
                Polled::Ended
            }
            Err(payload) => {
                let message = WorkPanicked::from_payload(payload).message().to_string();
                error!("a task panicked: {message}");
                self.end(key, JoinError::panicked(message))
            }
        }
    }

    /// Drops task `key`, its handle told why.
    fn end(&mut self, key: Key, error: JoinError) -> Polled {
        if let Some(task) = self.table.remove(key) {
            let completion = task.completion.clone();
            drop(task); // the future's own drop runs first
            completion.ended(error);
        }
        Polled::Ended
    }

    /// Drops every task, in the order they were spawned; their handles say cancelled.
    pub(crate) fn drop_all(&mut self) {
        let mut keys: Vec<(u64, Key)> = self.table.iter().map(|(k, t)| (t.seq, k)).collect();
        keys.sort_unstable_by_key(|(seq, _)| *seq);
        for (_, key) in keys {
            self.end(key, JoinError::cancelled());
        }
        self.local.clear_calls();
        take_woken_here(self.reactor, &mut VecDeque::new());
        let spawned = self.local.take_spawned();
        for task in spawned {
            let completion = task.completion.clone();
            drop(task);
            completion.ended(JoinError::cancelled());
        }
    }
}
