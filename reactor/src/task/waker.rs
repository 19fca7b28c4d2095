//! A task's [`Waker`]: marks the task ready on its reactor, from any thread. On the reactor's
//! own thread (a protocol callback waking the task that waits for its bytes, the common case)
//! it only queues the task; from another thread it also wakes the reactor's poll, as
//! [`ReactorHandle::wake`](crate::ReactorHandle::wake) does for a connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::{self, ThreadId};

use crate::remote::Remote;
use crate::table::Key;

/// What a task's waker holds.
pub(crate) struct TaskWaker {
    key: Key,
    remote: Arc<Remote>,
    reactor_thread: ThreadId,
    /// Queued and not yet polled: later wakes add nothing (a task is queued at most once).
    pub(crate) queued: AtomicBool,
}

impl TaskWaker {
    /// The waker of task `key`, queued already (a new task is polled once without a wake).
    pub(crate) fn new(key: Key, remote: Arc<Remote>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            key,
            remote,
            reactor_thread: thread::current().id(),
            queued: AtomicBool::new(true),
        })
    }

    /// As a std `Waker`.
    pub(crate) fn waker(self: &Arc<TaskWaker>) -> Waker {
        Waker::from(self.clone())
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let from_another_thread = thread::current().id() != self.reactor_thread;
        // A reactor that is gone drops its tasks: nothing is left to wake.
        let _ = self.remote.send_task_wake(self.key, from_another_thread);
    }
}
