//! Threads: a [`ReactorHandle`] other threads use to run code on the reactor thread, and a
//! small thread pool for blocking work ([`Reactor::call_in_thread`]).

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use log::{debug, error};
use mio::{Token, Waker};

use crate::Reactor;

/// The token of the reactor's waker; no slab key reaches it (indexes stay far below).
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Threads in the pool for [`Reactor::call_in_thread`]; blocking work beyond that waits in
/// the queue.
const THREAD_POOL_SIZE: usize = 4;

type RemoteCall = Box<dyn FnOnce(&mut Reactor) + Send>;
type Job = Box<dyn FnOnce() + Send>;

/// What the reactor shares with its handles.
pub(crate) struct Remote {
    calls: Mutex<Vec<RemoteCall>>,
    waker: Waker,
    /// Set when the reactor is dropped: calls sent after that would never run.
    gone: AtomicBool,
}

impl Remote {
    pub(crate) fn new(waker: Waker) -> Arc<Remote> {
        Arc::new(Remote {
            calls: Mutex::new(Vec::new()),
            waker,
            gone: AtomicBool::new(false),
        })
    }

    /// The queue, even if a thread panicked while holding the lock: a `Vec` push or swap
    /// cannot leave it half-changed.
    fn calls(&self) -> MutexGuard<'_, Vec<RemoteCall>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn take_calls(&self) -> Vec<RemoteCall> {
        std::mem::take(&mut *self.calls())
    }

    /// The reactor is dropped: refuse new calls and drop the queued ones (closing any reply
    /// channel they hold, so a thread waiting on one wakes up).
    pub(crate) fn mark_gone(&self) {
        let dropped = {
            let mut calls = self.calls();
            self.gone.store(true, Ordering::Release);
            std::mem::take(&mut *calls)
        };
        drop(dropped);
    }
}

/// A `Send + Clone` handle to a reactor, for other threads: run code on the reactor thread
/// ([`call_from_thread`](ReactorHandle::call_from_thread)) or stop it. Get one with
/// [`Reactor::handle`].
#[derive(Clone)]
pub struct ReactorHandle {
    remote: Arc<Remote>,
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
        let first = {
            let mut calls = self.remote.calls();
            // Checked under the lock the reactor's drop takes: no call slips in after it.
            if self.remote.gone.load(Ordering::Acquire) {
                return Err(ReactorGone);
            }
            calls.push(Box::new(f));
            calls.len() == 1
        };
        // Push first, then wake (mio #1470). Wakes coalesce and the reactor drains the whole
        // queue on each, so only the call that found the queue empty needs to wake it.
        if first {
            if let Err(e) = self.remote.waker.wake() {
                error!("waking the reactor: {e}");
            }
        }
        Ok(())
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
    fn from_payload(payload: Box<dyn Any + Send>) -> WorkPanicked {
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

/// The pool's threads, started on first use. Dropping it closes the job queue: the threads
/// finish the jobs already queued and exit (their results find the reactor gone).
#[derive(Default)]
pub(crate) struct ThreadPool {
    jobs: Option<mpsc::Sender<Job>>,
}

impl ThreadPool {
    fn submit(&mut self, job: Job) {
        let sender = self.jobs.get_or_insert_with(start_threads);
        if let Err(mpsc::SendError(job)) = sender.send(job) {
            // Every worker died (impossible short of a panic in the pool itself): run a
            // fresh pool rather than lose the job.
            let sender = self.jobs.insert(start_threads());
            let _ = sender.send(job);
        }
    }
}

fn start_threads() -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for n in 0..THREAD_POOL_SIZE {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("torsion-pool-{n}"))
            .spawn(move || loop {
                let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match job {
                    Ok(job) => job(),
                    Err(mpsc::RecvError) => return,
                }
            });
        if let Err(e) = spawned {
            error!("cannot start thread pool thread: {e}");
        }
    }
    debug!("thread pool started with {THREAD_POOL_SIZE} threads");
    sender
}

/// A finished job's result, boxed to cross back to the reactor thread.
type Finished = Box<dyn Any + Send>;

impl Reactor {
    /// A handle other threads use to reach this reactor.
    pub fn handle(&self) -> ReactorHandle {
        ReactorHandle {
            remote: self.remote.clone(),
        }
    }

    /// Runs blocking `work` on the reactor's thread pool (Twisted's `deferToThread`) and then
    /// `on_done` with its result on the reactor thread. A panic in `work` reaches `on_done`
    /// as [`WorkPanicked`]. The pool has 4 threads; more jobs wait their turn in order.
    pub fn call_in_thread<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        on_done: impl FnOnce(&mut Reactor, Result<T, WorkPanicked>) + 'static,
    ) {
        let job_id =
            self.pending_work
                .insert(Box::new(move |reactor: &mut Reactor, result: Finished| {
                    let result = match result.downcast::<std::thread::Result<T>>() {
                        Ok(result) => (*result).map_err(WorkPanicked::from_payload),
                        Err(_) => unreachable_result_type(),
                    };
                    on_done(reactor, result)
                }));
        let handle = self.handle();
        self.thread_pool.submit(Box::new(move || {
            let result: std::thread::Result<T> = catch_unwind(AssertUnwindSafe(work));
            let finished: Finished = Box::new(result);
            // If the reactor is gone, nobody waits for the result.
            let _ = handle.call_from_thread(move |reactor| reactor.finish_work(job_id, finished));
        }));
    }

    fn finish_work(&mut self, job_id: usize, result: Finished) {
        if let Some(on_done) = self.pending_work.try_remove(job_id) {
            on_done(self, result);
        }
    }

    /// Runs the calls other threads sent, in order.
    pub(crate) fn run_remote_calls(&mut self) {
        for call in self.remote.take_calls() {
            call(self);
        }
    }
}

/// The job closure boxes exactly `std::thread::Result<T>` for its own `T`.
fn unreachable_result_type<T>() -> Result<T, WorkPanicked> {
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
