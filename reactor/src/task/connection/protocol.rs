//! [`TaskProtocol`]: the [`Protocol`] behind an [`AsyncConnection`]. It keeps what arrives
//! for the task (up to a limit, then it pauses reading), and tells the task's futures of
//! EOF, the end, and the write queue's watermarks and drains.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::shared::{Ended, Shared, WRITE_HIGH_WATER, WRITE_LOW_WATER};
use super::AsyncConnection;
use crate::{Address, Context, DisconnectReason, Protocol, Reactor, WriteProgress};

/// What to do with the [`AsyncConnection`] once the connection is made: hand it to the
/// future that connected, or to a new task.
pub(crate) type OnMade = Box<dyn FnOnce(&mut Reactor, AsyncConnection)>;

/// The protocol of a connection driven from a task through an [`AsyncConnection`]: made
/// by [`LocalHandle::connect`](crate::task::LocalHandle::connect) and by
/// [`serve_tasks`](crate::task::serve_tasks), never by hand.
pub struct TaskProtocol {
    shared: Rc<RefCell<Shared>>,
    on_made: Option<OnMade>,
}

impl fmt::Debug for TaskProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskProtocol")
            .field("peer", &self.shared.borrow().peer)
            .finish_non_exhaustive()
    }
}

impl TaskProtocol {
    pub(crate) fn new(peer: Address, on_made: OnMade) -> TaskProtocol {
        TaskProtocol {
            shared: Rc::new(RefCell::new(Shared::new(peer))),
            on_made: Some(on_made),
        }
    }
}

impl Protocol for TaskProtocol {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.shared.borrow_mut().id = cx.id();
        cx.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER);
        cx.watch_writes(true);
        let reactor = cx.reactor();
        let connection = AsyncConnection::new(self.shared.clone(), reactor.local_handle());
        if let Some(on_made) = self.on_made.take() {
            on_made(reactor, connection);
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut shared = self.shared.borrow_mut();
        shared.buffer.extend_from_slice(data);
        // Bounded: one read past the limit at most, then the socket waits for the task.
        if shared.buffer.len() >= shared.pause_at() && !shared.reading_paused {
            shared.reading_paused = true;
            cx.pause_reading();
        }
        shared.wake_reader();
    }

    fn eof_received(&mut self, _cx: &mut Context<'_>) {
        // The write side stays open: the task may still answer, then close (or drop).
        let mut shared = self.shared.borrow_mut();
        shared.eof = true;
        shared.wake_reader();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        let mut shared = self.shared.borrow_mut();
        shared.ended = Some(Ended::from_reason(reason));
        shared.wake_reader();
        shared.wake_writers();
    }

    fn pause_writing(&mut self, _cx: &mut Context<'_>) {
        self.shared.borrow_mut().writing_paused = true;
    }

    fn resume_writing(&mut self, _cx: &mut Context<'_>) {
        let mut shared = self.shared.borrow_mut();
        shared.writing_paused = false;
        shared.wake_writers();
    }

    fn write_progress(&mut self, _cx: &mut Context<'_>, progress: WriteProgress) {
        if progress.drained {
            let mut shared = self.shared.borrow_mut();
            shared.drains += 1;
            shared.wake_writers();
        }
    }
}
