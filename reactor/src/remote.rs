//! Threads: a [`ReactorHandle`] other threads use to run code on the reactor thread, and a
//! small thread pool for blocking work ([`Reactor::call_in_thread`]).

use std::any::Any;
use std::collections::HashSet;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use log::{debug, error};
use mio::{Token, Waker};

use crate::connections::ConnectionId;
use crate::table::{internal_token, Key};
use crate::Reactor;

/// The token of the reactor's waker.
pub(crate) const WAKER_TOKEN: Token = internal_token(0);

/// Threads in the pool for [`Reactor::call_in_thread`]; blocking work beyond that waits in
/// the queue.
const THREAD_POOL_SIZE: usize = 4;

pub(crate) type RemoteCall = Box<dyn FnOnce(&mut Reactor) + Send>;
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// What other threads sent: calls to run, connections to wake (each once: a thread that wakes
/// a connection in a loop while the reactor is busy cannot grow the queue past one entry per
/// connection).
#[derive(Default)]
pub(crate) struct Sent {
    pub(crate) calls: Vec<RemoteCall>,
    pub(crate) wakes: HashSet<Key>,
    /// Tasks woken (each at most once until it is polled: its waker keeps a flag).
    pub(crate) tasks: Vec<Key>,
}

impl Sent {
    fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.wakes.is_empty() && self.tasks.is_empty()
    }
}

/// What the reactor shares with its handles.
pub(crate) struct Remote {
    sent: Mutex<Sent>,
    waker: Waker,
    /// Something was sent and not yet taken: the reactor's next poll must not sleep (the
    /// waker's event says so too, but only to a poll; this says it to `next_timeout`).
    pending: AtomicBool,
    /// Set when the reactor is dropped: calls sent after that would never run.
    gone: AtomicBool,
    /// A task was woken on the reactor's own thread (into that thread's list): the flag a
    /// turn reads instead of the list.
    tasks_woken_here: AtomicBool,
}

impl Remote {
    fn new(waker: Waker) -> Arc<Remote> {
        Arc::new(Remote {
            sent: Mutex::new(Sent::default()),
            waker,
            pending: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            tasks_woken_here: AtomicBool::new(false),
        })
    }

    /// What was sent, even if a thread panicked while holding the lock: a `Vec` push or swap
    /// cannot leave it half-changed.
    fn sent(&self) -> MutexGuard<'_, Sent> {
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes everything sent so far.
    fn take(&self) -> Sent {
        let mut sent = self.sent();
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut *sent)
    }

    /// Notes that a task was woken on the reactor's thread.
    pub(crate) fn mark_woken_here(&self) {
        self.tasks_woken_here.store(true, Ordering::Relaxed);
    }

    /// Whether a task was woken on the reactor's thread since the flag was last taken.
    pub(crate) fn woken_here(&self) -> bool {
        self.tasks_woken_here.load(Ordering::Relaxed)
    }

    /// Takes the flag of [`woken_here`](Remote::woken_here). Only the reactor's thread sets
    /// and takes it, so a load and a store do (no locked exchange).
    pub(crate) fn take_woken_here_flag(&self) -> bool {
        let woken = self.tasks_woken_here.load(Ordering::Relaxed);
        if woken {
            self.tasks_woken_here.store(false, Ordering::Relaxed);
        }
        woken
    }

    /// Queues task `key` to be polled (woken from another thread).
    pub(crate) fn send_task_wake(&self, key: Key) -> Result<(), ReactorGone> {
        self.send(|sent| sent.tasks.push(key))
    }

    /// Queues something with `push` and wakes the reactor, unless it is gone.
    fn send(&self, push: impl FnOnce(&mut Sent)) -> Result<(), ReactorGone> {
        let first = {
            let mut sent = self.sent();
            // Checked under the lock the reactor's drop takes: nothing slips in after it.
            if self.gone.load(Ordering::Acquire) {
                return Err(ReactorGone);
            }
            let first = sent.is_empty();
            push(&mut sent);
            self.pending.store(true, Ordering::Relaxed);
            first
        };
        // Push first, then wake (mio #1470). Wakes coalesce and the reactor takes everything
        // sent on each, so only the send that found the queue empty needs to wake it.
        if first {
            if let Err(e) = self.waker.wake() {
                error!("waking the reactor: {e}");
            }
        }
        Ok(())
    }

    /// The reactor is dropped: refuse new sends and drop the queued calls (closing any reply
    /// channel they hold, so a thread waiting on one wakes up).
    fn mark_gone(&self) {
        let dropped = {
            let mut sent = self.sent();
            self.gone.store(true, Ordering::Release);
            std::mem::take(&mut *sent)
        };
        drop(dropped);
    }
}

/// A `Send + Clone` handle to a reactor, for other threads: run code on the reactor thread
/// ([`call_from_thread`](ReactorHandle::call_from_thread)) or stop it. Get one with
/// [`Reactor::handle`].
#[derive(Clone)]
pub struct ReactorHandle {
    pub(crate) remote: Arc<Remote>,
}

impl fmt::Debug for ReactorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorHandle").finish_non_exhaustive()
    }
}

/// The reactor behind a [`ReactorHandle`] was dropped; the call was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorGone;

impl fmt::Display for ReactorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor is gone")
    }
}

impl std::error::Error for ReactorGone {}

impl ReactorHandle {
    /// Runs `f` on the reactor thread, soon: it wakes the reactor if it is waiting. Calls run
    /// in the order they were sent (calls from one thread keep that thread's order), each
    /// exactly once, during the reactor's next dispatch. Calls still queued when the reactor
    /// is dropped are dropped unrun.
    pub fn call_from_thread(
        &self,
        f: impl FnOnce(&mut Reactor) + Send + 'static,
    ) -> Result<(), ReactorGone> {
        self.remote.send(|sent| sent.calls.push(Box::new(f)))
    }

    /// Wakes connection `id` on the reactor thread, from any thread: its protocol's
    /// [`woken`](crate::Protocol::woken) runs soon (see [`Reactor::wake`]). Cheaper than a
    /// call: nothing is boxed, and wakes coalesce. A stale `id` is ignored there.
    pub fn wake(&self, id: ConnectionId) -> Result<(), ReactorGone> {
        self.remote.send(|sent| {
            sent.wakes.insert(id.0);
        })
    }

    /// Asks the reactor's [`run`](Reactor::run) to return, from any thread.
    pub fn stop(&self) -> Result<(), ReactorGone> {
        self.call_from_thread(Reactor::stop)
    }
}

/// Why a [`Reactor::call_in_thread`] job produced no value: it panicked.
#[derive(Debug)]
pub struct WorkPanicked {
    message: String,
}

impl fmt::Display for WorkPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "work in the thread pool panicked: {}", self.message)
    }
}

impl std::error::Error for WorkPanicked {}

impl WorkPanicked {
    /// The panic's message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn from_payload(payload: Box<dyn Any + Send>) -> WorkPanicked {
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => (*message).to_string(),
                Err(_) => "(no message)".to_string(),
            },
        };
        WorkPanicked { message }
    }
}

/// The threads part: what the reactor shares with its handles, the thread pool, and the
/// results it waits for.
pub(crate) struct Threads {
    pub(crate) remote: Arc<Remote>,
    pub(crate) pending: PendingWork,
    pub(crate) pool: ThreadPool,
}

impl Threads {
    pub(crate) fn new(waker: Waker) -> Threads {
        Threads {
            remote: Remote::new(waker),
            pending: PendingWork::new(),
            pool: ThreadPool::default(),
        }
    }

    /// What other threads sent since the last look.
    pub(crate) fn take_sent(&self) -> Sent {
        self.remote.take()
    }

    /// Whether other threads (or a handle on this thread) sent something not yet taken.
    pub(crate) fn anything_sent(&self) -> bool {
        self.remote.pending.load(Ordering::Relaxed)
    }

    /// The reactor is being dropped.
    pub(crate) fn reactor_dropped(&self) {
        self.remote.mark_gone();
    }
}

/// The pool's threads, started on first use. Dropping it closes the job queue: the threads
/// finish the jobs already queued and exit (their results find the reactor gone).
///
/// A queue under a mutex with a condition variable, rather than a channel whose receiver the
/// threads share behind a mutex: a job wakes exactly one idle thread, where the shared
/// receiver woke two (the thread blocked in `recv`, then, as it let the mutex go, the next
/// one waiting for the mutex): both showed, with the mutex's contention, in a profile of
/// the HTTP server's static files, which hand the pool a job per request.
#[derive(Default)]
pub(crate) struct ThreadPool {
    queue: Option<Arc<JobQueue>>,
}

/// The jobs waiting for a thread, and what idle threads wait on.
#[derive(Default)]
struct JobQueue {
    state: Mutex<QueueState>,
    available: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// The pool was dropped: threads exit once the queue is empty.
    closed: bool,
}

impl JobQueue {
    /// The state, even if a thread panicked holding the lock (a push or pop cannot leave the
    /// queue half-changed; jobs run outside the lock).
    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next job, waiting for one; `None` once the pool is closed and drained.
    fn next(&self) -> Option<Job> {
        let mut state = self.state();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl ThreadPool {
    pub(crate) fn submit(&mut self, job: Job) {
        let queue = self.queue.get_or_insert_with(start_threads);
        queue.state().jobs.push_back(job);
        queue.available.notify_one();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            queue.state().closed = true;
            queue.available.notify_all();
        }
    }
}

fn start_threads() -> Arc<JobQueue> {
    let queue = Arc::new(JobQueue::default());
    for n in 0..THREAD_POOL_SIZE {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("torsion-pool-{n}"))
            .spawn(move || {
                while let Some(job) = queue.next() {
                    job();
                }
            });
        if let Err(e) = spawned {
            error!("cannot start thread pool thread: {e}");
        }
    }
    debug!("thread pool started with {THREAD_POOL_SIZE} threads");
    queue
}

/// A finished job's result, boxed to cross back to the reactor thread.
pub(crate) type Finished = Box<dyn Any + Send>;

/// The job closure boxes exactly `std::thread::Result<T>` for its own `T`.
pub(crate) fn unreachable_result_type<T>() -> Result<T, WorkPanicked> {
    Err(WorkPanicked {
        message: "internal error: result of unexpected type".to_string(),
    })
}

/// `on_done` callbacks waiting for their job, by job id.
pub(crate) type PendingWork = slab::Slab<Box<dyn FnOnce(&mut Reactor, Finished)>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_crosses_threads() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<ReactorHandle>();
    }

    #[test]
    fn a_panic_message_survives_the_trip() {
        let payload = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert!(WorkPanicked::from_payload(payload)
            .to_string()
            .ends_with("boom 7"));
        let payload = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert!(WorkPanicked::from_payload(payload)
            .to_string()
            .ends_with("static"));
    }
}
