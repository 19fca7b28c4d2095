//! Threads and the reactor: the handle other threads reach it through, what they send
//! (calls, wakes), and the thread pool for blocking work.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::remote::{unreachable_result_type, Finished, WorkPanicked};
use crate::{Reactor, ReactorHandle};

impl Reactor {
    /// A handle other threads use to reach this reactor.
    pub fn handle(&self) -> ReactorHandle {
        ReactorHandle {
            remote: self.threads.remote.clone(),
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
        let job_id = self.threads.pending.insert(Box::new(
            move |reactor: &mut Reactor, result: Finished| {
                let result = match result.downcast::<std::thread::Result<T>>() {
                    Ok(result) => (*result).map_err(WorkPanicked::from_payload),
                    Err(_) => unreachable_result_type(),
                };
                on_done(reactor, result)
            },
        ));
        let handle = self.handle();
        self.threads.pool.submit(Box::new(move || {
            let result: std::thread::Result<T> = catch_unwind(AssertUnwindSafe(work));
            let finished: Finished = Box::new(result);
            // If the reactor is gone, nobody waits for the result.
            let _ = handle.call_from_thread(move |reactor| reactor.finish_work(job_id, finished));
        }));
    }

    /// Jobs handed to the thread pool whose results have not come back yet.
    pub(crate) fn work_in_threads(&self) -> usize {
        self.threads.pending.len()
    }

    fn finish_work(&mut self, job_id: usize, result: Finished) {
        if let Some(on_done) = self.threads.pending.try_remove(job_id) {
            on_done(self, result);
        }
    }

    /// Runs the calls other threads sent, in order, and queues the wakes they sent.
    pub(crate) fn run_remote_calls(&mut self) {
        let sent = self.threads.take_sent();
        self.tasks.woken(sent.tasks);
        for key in sent.wakes {
            self.connections.wake(key);
        }
        for call in sent.calls {
            call(self);
        }
    }
}
