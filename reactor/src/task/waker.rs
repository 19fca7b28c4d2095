//! A task's [`Waker`]: marks the task ready on its reactor, from any thread. On the reactor's
//! own thread (a protocol callback waking the task that waits for its bytes, another task,
//! the common case) it only queues the task in a per-thread list; from another thread it
//! goes through the reactor's handle and wakes its poll, as
//! [`ReactorHandle::wake`](crate::ReactorHandle::wake) does for a connection.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::{self, ThreadId};

use crate::remote::Remote;
use crate::table::Key;

/// Per thread: its id, and the tasks woken on it with the id of their reactor (a wake from
/// the reactor's own thread takes no lock and no system call). One thread-local, so a wake
/// reads one.
struct Here {
    /// This thread's id, read without `thread::current()`'s reference count.
    thread: ThreadId,
    woken: RefCell<Vec<(usize, Key)>>,
}

thread_local! {
    static HERE: Here = Here {
        thread: thread::current().id(),
        woken: RefCell::new(Vec::new()),
    };
}

/// The id of the reactor that `remote` belongs to, as the wakes on its thread name it.
pub(crate) fn reactor_id(remote: &Arc<Remote>) -> usize {
    Arc::as_ptr(remote) as usize
}

/// Moves the tasks of reactor `id` woken on this thread into `into`.
pub(crate) fn take_woken_here(id: usize, into: &mut VecDeque<Key>) {
    HERE.with(|here| {
        let mut woken = here.woken.borrow_mut();
        if woken.iter().all(|&(reactor, _)| reactor == id) {
            // One reactor on this thread, the usual case.
            into.extend(woken.drain(..).map(|(_, key)| key));
            return;
        }
        woken.retain(|&(reactor, key)| {
            if reactor == id {
                into.push_back(key);
            }
            reactor != id
        });
    });
}

/// What a task's waker holds.
pub(crate) struct TaskWaker {
    key: Key,
    remote: Arc<Remote>,
    reactor: usize,
    reactor_thread: ThreadId,
    /// Queued and not yet polled: later wakes add nothing (a task is queued at most once).
    pub(crate) queued: AtomicBool,
}

impl TaskWaker {
    /// The waker of task `key`, queued already (a new task is polled once without a wake).
    pub(crate) fn new(key: Key, remote: Arc<Remote>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            key,
            reactor: reactor_id(&remote),
            remote,
            reactor_thread: HERE.with(|here| here.thread),
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
        let here = HERE.with(|here| {
            if here.thread != self.reactor_thread {
                return false;
            }
            // The reactor looks at this list before it polls again (and while it runs
            // tasks): nothing to wake it from.
            here.woken.borrow_mut().push((self.reactor, self.key));
            true
        });
        if here {
            self.remote.mark_woken_here();
            return;
        }
        // A reactor that is gone drops its tasks: nothing is left to wake.
        let _ = self.remote.send_task_wake(self.key);
    }
}
