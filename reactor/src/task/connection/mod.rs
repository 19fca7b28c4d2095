//! [`AsyncConnection`]: a connection driven from a task, as a stream of bytes or lines to
//! read and write, with the same backpressure as a protocol has.
//!
//! Behind it is a [`TaskProtocol`] on the reactor, sharing its state with the handle
//! (the reactor is single-threaded, so an `Rc<RefCell<_>>` suffices). The protocol keeps
//! what arrives until the task reads it, up to a limit, and then pauses reading the socket
//! until the task has read some: so a peer that sends faster than the task reads costs a
//! bounded amount of memory. Writes go to the connection's write queue through the task's
//! [`LocalHandle`], and [`AsyncConnection::write_all`] waits while that queue is above its
//! high watermark, as a protocol's `pause_writing` asks it to.

mod protocol;
mod read;
mod shared;

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;

use super::LocalHandle;
use crate::{Address, ConnectionId};
pub use protocol::TaskProtocol;
use shared::Shared;
pub use shared::DEFAULT_READ_LIMIT;

/// A connection driven from a task: read bytes or lines, write with backpressure, wait for
/// EOF, close. Get one from [`LocalHandle::connect`] (or
/// [`connect_endpoint`](LocalHandle::connect_endpoint)), or have a listening port hand each
/// accepted connection to a task with [`serve_tasks`](crate::task::serve_tasks).
///
/// - Reads take `&mut self` (one reader at a time); what arrived before an error or EOF is
///   read first, then the error or the end (`Ok(None)`).
/// - At most [`read_limit`](AsyncConnection::set_read_limit) unread bytes (64 KiB by
///   default, plus the last read's worth) are kept: then reading the socket pauses until the
///   task reads. A read that needs more (a line up to its `max_len`, `read_exact(n)`) raises
///   the limit to what it needs while it waits.
/// - [`write`](AsyncConnection::write) queues without waiting;
///   [`write_all`](AsyncConnection::write_all) queues and then waits while the connection's
///   write queue is over its high watermark (64 KiB; it goes on at 16 KiB);
///   [`flush`](AsyncConnection::flush) waits until everything written has left.
/// - A peer's EOF does not close the connection: the task may still write, then
///   [`close`](AsyncConnection::close). Dropping the handle closes it too (once what was
///   written has been sent). [`shutdown_write`](AsyncConnection::shutdown_write) sends this
///   side's EOF and goes on reading.
pub struct AsyncConnection {
    shared: Rc<RefCell<Shared>>,
    handle: LocalHandle,
    writer: ConnectionWriter,
}

impl fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared.borrow();
        f.debug_struct("AsyncConnection")
            .field("id", &shared.id)
            .field("peer", &shared.peer)
            .field("buffered", &shared.buffer.len())
            .field("eof", &shared.eof)
            .field("ended", &shared.ended)
            .finish_non_exhaustive()
    }
}

impl AsyncConnection {
    pub(crate) fn new(shared: Rc<RefCell<Shared>>, handle: LocalHandle) -> AsyncConnection {
        let writer = ConnectionWriter {
            shared: shared.clone(),
            handle: handle.clone(),
        };
        AsyncConnection {
            shared,
            handle,
            writer,
        }
    }

    /// The connection's id on the reactor (for its by-id methods, e.g.
    /// [`Reactor::queued_bytes`](crate::Reactor::queued_bytes) through
    /// [`LocalHandle::call`]).
    pub fn id(&self) -> ConnectionId {
        self.shared.borrow().id
    }

    /// The peer's address, as the connection was made to (or accepted from).
    pub fn peer(&self) -> Address {
        self.shared.borrow().peer.clone()
    }

    /// Bytes received and not yet read.
    pub fn buffered(&self) -> usize {
        self.shared.borrow().buffer.len()
    }

    /// Whether reading the socket is paused because the unread bytes reached the limit.
    pub fn is_reading_paused(&self) -> bool {
        self.shared.borrow().reading_paused
    }

    /// Sets how many unread bytes are kept before reading the socket pauses
    /// ([`DEFAULT_READ_LIMIT`] by default; at least 1).
    pub fn set_read_limit(&mut self, limit: usize) {
        self.shared.borrow_mut().read_limit = limit.max(1);
        self.resume_reading_if_room();
    }

    /// Whether the peer sent EOF or the connection ended.
    pub fn is_closed_for_reading(&self) -> bool {
        let shared = self.shared.borrow();
        shared.eof || shared.ended.is_some()
    }

    /// Queues `data` to be written, without waiting (see [`ConnectionWriter::write`]).
    pub fn write(&self, data: impl Into<Bytes>) -> io::Result<()> {
        self.writer.write(data)
    }

    /// Queues `data` and waits while the write queue is over its high watermark (see
    /// [`ConnectionWriter::write_all`]).
    pub async fn write_all(&self, data: impl Into<Bytes>) -> io::Result<()> {
        self.writer.write_all(data).await
    }

    /// Waits until everything written so far has left (see [`ConnectionWriter::flush`]).
    pub async fn flush(&self) -> io::Result<()> {
        self.writer.flush().await
    }

    /// Closes the connection once what was written has been sent (see
    /// [`ConnectionWriter::close`]).
    pub fn close(&self) {
        self.writer.close();
    }

    /// Sends EOF and goes on reading (see [`ConnectionWriter::shutdown_write`]).
    pub fn shutdown_write(&self) {
        self.writer.shutdown_write();
    }

    /// Closes the connection now, dropping what is queued (see [`ConnectionWriter::abort`]).
    pub fn abort(&self) {
        self.writer.abort();
    }

    /// A writer for this connection that another task can hold (clones share it): one task
    /// reads while another writes. Writers do not keep the connection open: dropping the
    /// `AsyncConnection` closes it, and their writes then fail.
    pub fn writer(&self) -> ConnectionWriter {
        self.writer.clone()
    }

    /// Resumes reading the socket if the task has made room below the pause mark.
    fn resume_reading_if_room(&self) {
        let id = {
            let mut shared = self.shared.borrow_mut();
            let room = shared.buffer.len() < shared.pause_at();
            if !shared.reading_paused || !room || shared.ended.is_some() {
                return;
            }
            shared.reading_paused = false;
            shared.id
        };
        self.handle.defer(move |reactor| reactor.resume_reading(id));
    }
}

/// The writing side of an [`AsyncConnection`], for a task other than the one reading (see
/// [`AsyncConnection::writer`]). Cheap to clone.
#[derive(Clone)]
pub struct ConnectionWriter {
    shared: Rc<RefCell<Shared>>,
    handle: LocalHandle,
}

impl fmt::Debug for ConnectionWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionWriter")
            .field("id", &self.shared.borrow().id)
            .finish_non_exhaustive()
    }
}

impl ConnectionWriter {
    /// Queues `data` to be written, without waiting; the reactor sends it at the end of the
    /// turn. Fails with the connection's end (`NotConnected` once closed, the reset that
    /// ended it, ...) or `BrokenPipe` after [`close`](ConnectionWriter::close). Ignores the
    /// watermark: a task that writes much should use [`write_all`](ConnectionWriter::write_all).
    pub fn write(&self, data: impl Into<Bytes>) -> io::Result<()> {
        self.queue_write(data.into()).map(|_| ())
    }

    /// Queues `data` and waits until the write queue is at or below its high watermark (it
    /// may be at once): the way to write much without holding much. Fails as
    /// [`write`](ConnectionWriter::write) does, or if the connection ends while waiting.
    pub async fn write_all(&self, data: impl Into<Bytes>) -> io::Result<()> {
        let write = self.queue_write(data.into())?;
        poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            if shared.writes_queued >= write && !shared.writing_paused {
                return Poll::Ready(match shared.write_refused {
                    true => shared.write_error().map_or(Ok(()), Err),
                    false => Ok(()),
                });
            }
            if let Some(ended) = &shared.ended {
                return Poll::Ready(Err(ended.error()));
            }
            shared.add_writer(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Waits until everything written so far has been handed to the kernel (or the TLS
    /// layer has sent it). Fails if the connection ends first.
    pub async fn flush(&self) -> io::Result<()> {
        let shared = self.shared.clone();
        let drains = self
            .handle
            .call(move |reactor| {
                let (id, drains) = {
                    let shared = shared.borrow();
                    (shared.id, shared.drains)
                };
                // The writes asked before this call are queued by now; at the turn's end
                // the queue is flushed and, once empty, counts a drain.
                (reactor.queued_bytes(id) > 0).then_some(drains)
            })
            .await;
        let Some(drains) = drains else {
            return self
                .shared
                .borrow()
                .ended
                .as_ref()
                .map_or(Ok(()), |e| match e {
                    shared::Ended::Clean => Ok(()),
                    failed => Err(failed.error()),
                });
        };
        poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            if shared.drains > drains {
                return Poll::Ready(Ok(()));
            }
            if let Some(ended) = &shared.ended {
                return Poll::Ready(Err(ended.error()));
            }
            shared.add_writer(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Closes the connection once what was written has been sent (Twisted's
    /// `loseConnection`); writes fail from now on, reads go on until the end.
    pub fn close(&self) {
        let id = {
            let mut shared = self.shared.borrow_mut();
            if shared.closing || shared.ended.is_some() {
                return;
            }
            shared.closing = true;
            shared.id
        };
        self.handle
            .defer(move |reactor| reactor.lose_connection(id));
    }

    /// Sends EOF once what was written has been sent (a half-close: the peer reads to its
    /// end, as after `shutdown(SHUT_WR)`), and goes on reading: how a client says "that was
    /// the whole request" to a server that answers at EOF. Writes fail from now on;
    /// [`close`](ConnectionWriter::close) (or the drop) still closes the connection.
    pub fn shutdown_write(&self) {
        let id = {
            let mut shared = self.shared.borrow_mut();
            if shared.write_shut || shared.closing || shared.ended.is_some() {
                return;
            }
            shared.write_shut = true;
            shared.id
        };
        self.handle
            .defer(move |reactor| crate::Context::new(reactor, id).shutdown_write());
    }

    /// Closes the connection now, dropping what is queued to write (Twisted's
    /// `abortConnection`).
    pub fn abort(&self) {
        let id = {
            let mut shared = self.shared.borrow_mut();
            if shared.ended.is_some() {
                return;
            }
            shared.closing = true;
            shared.id
        };
        self.handle
            .defer(move |reactor| reactor.abort_connection(id));
    }

    /// Queues a write through the reactor; returns its number (writes are queued in order).
    fn queue_write(&self, data: Bytes) -> io::Result<u64> {
        let (id, write) = {
            let mut shared = self.shared.borrow_mut();
            if let Some(error) = shared.write_error() {
                return Err(error);
            }
            shared.writes_asked += 1;
            (shared.id, shared.writes_asked)
        };
        let shared = self.shared.clone();
        self.handle.defer(move |reactor| {
            let accepted = data.is_empty() || reactor.write_bytes_to(id, data);
            let over_high_water = reactor.queued_bytes(id) > shared::WRITE_HIGH_WATER;
            let mut shared = shared.borrow_mut();
            shared.writes_queued = write;
            shared.write_refused |= !accepted;
            // The reactor says `pause_writing` at the turn's end; a writer must not go on
            // before it does.
            shared.writing_paused |= over_high_water;
            shared.wake_writers();
        });
        Ok(write)
    }
}

impl Drop for AsyncConnection {
    fn drop(&mut self) {
        self.close();
    }
}
