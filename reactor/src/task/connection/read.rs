//! Reading an [`AsyncConnection`]: some bytes, an exact count, a line, everything up to EOF,
//! or nothing but the end. Each read is one step function over the shared state, retried
//! when the adapter wakes the reader; after a step that consumed bytes, reading the socket
//! resumes if it had paused for room.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::task::Poll;

use bytes::Bytes;

use super::shared::{Ended, Shared};
use super::AsyncConnection;

/// What one look at the unread bytes gives a read.
enum Step<R> {
    /// The read is done.
    Done(R),
    /// It needs more bytes: this many unread bytes must fit before reading pauses.
    Need(usize),
}

/// The end the reads report once the bytes before it are read: `None` for a clean one.
fn end_error(shared: &Shared) -> Option<io::Error> {
    match &shared.ended {
        Some(failed @ Ended::Failed(..)) => Some(failed.error()),
        _ => None,
    }
}

/// Whether nothing more will arrive.
fn at_end(shared: &Shared) -> bool {
    shared.eof || shared.ended.is_some()
}

fn too_long(what: &str, max_len: usize) -> io::Error {
    let message = format!("{what} longer than {max_len} bytes");
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Takes the first `len` bytes of the buffer.
fn take(shared: &mut Shared, len: usize) -> Bytes {
    shared.scanned = 0;
    shared.buffer.split_to(len).freeze()
}

impl AsyncConnection {
    /// Waits until one step of a read is done, parking the task's waker with the adapter
    /// in between.
    async fn read_with<R>(&mut self, mut step: impl FnMut(&mut Shared) -> Step<R>) -> R {
        let pending = PendingRead(&self.shared);
        let result = poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            match step(&mut shared) {
                Step::Done(result) => Poll::Ready(result),
                Step::Need(wanted) => {
                    shared.wanted = wanted;
                    shared.reader = Some(cx.waker().clone());
                    drop(shared);
                    self.resume_reading_if_room();
                    Poll::Pending
                }
            }
        })
        .await;
        drop(pending);
        self.resume_reading_if_room();
        result
    }

    /// Reads what has arrived (at least one byte, waiting for it if need be): `Ok(None)` at
    /// EOF or once closed cleanly, the connection's error if it was lost otherwise.
    pub async fn read(&mut self) -> io::Result<Option<Bytes>> {
        self.read_with(|shared| {
            if !shared.buffer.is_empty() {
                let len = shared.buffer.len();
                return Step::Done(Ok(Some(take(shared, len))));
            }
            if let Some(error) = end_error(shared) {
                return Step::Done(Err(error));
            }
            match at_end(shared) {
                true => Step::Done(Ok(None)),
                false => Step::Need(1),
            }
        })
        .await
    }

    /// Reads exactly `len` bytes. If the connection ends first, fails with
    /// `UnexpectedEof` (or its error) and leaves the bytes that did come unread.
    pub async fn read_exact(&mut self, len: usize) -> io::Result<Bytes> {
        self.read_with(|shared| {
            if shared.buffer.len() >= len {
                return Step::Done(Ok(take(shared, len)));
            }
            if let Some(error) = end_error(shared) {
                return Step::Done(Err(error));
            }
            if at_end(shared) {
                let message = format!("connection ended before {len} bytes came");
                return Step::Done(Err(io::Error::new(io::ErrorKind::UnexpectedEof, message)));
            }
            Step::Need(len)
        })
        .await
    }

    /// Reads one line, ended by `\n` or `\r\n`, and returns it without its end: `Ok(None)`
    /// at EOF with nothing unread; a last line without an end is returned as it is. A line
    /// longer than `max_len` bytes (its end not counted) is an `InvalidData` error, found as
    /// soon as `max_len + 2` bytes come without a line's end; the bytes stay unread (take them
    /// with [`read`](AsyncConnection::read)). So at most about `max_len` bytes wait for a
    /// line, however long the peer makes it.
    pub async fn read_line_bytes(&mut self, max_len: usize) -> io::Result<Option<Bytes>> {
        self.read_with(|shared| line_step(shared, max_len)).await
    }

    /// [`read_line_bytes`](AsyncConnection::read_line_bytes) as text: a line that is not
    /// UTF-8 is an `InvalidData` error (and is consumed).
    pub async fn read_line(&mut self, max_len: usize) -> io::Result<Option<String>> {
        let Some(line) = self.read_line_bytes(max_len).await? else {
            return Ok(None);
        };
        match String::from_utf8(line.to_vec()) {
            Ok(line) => Ok(Some(line)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Reads everything up to EOF (or a clean close). More than `max_len` bytes is an
    /// `InvalidData` error, the bytes left unread; the connection's error if it was lost.
    pub async fn read_to_end(&mut self, max_len: usize) -> io::Result<Bytes> {
        self.read_with(|shared| {
            if shared.buffer.len() > max_len {
                return Step::Done(Err(too_long("data before EOF", max_len)));
            }
            if let Some(error) = end_error(shared) {
                return Step::Done(Err(error));
            }
            if at_end(shared) {
                let len = shared.buffer.len();
                return Step::Done(Ok(take(shared, len)));
            }
            Step::Need(max_len.saturating_add(1))
        })
        .await
    }

    /// Waits until the connection has ended, dropping whatever arrives meanwhile unread: `Ok`
    /// for a clean end (after [`close`](AsyncConnection::close)), its error otherwise (a
    /// reset, an [`abort`](AsyncConnection::abort)). A peer's EOF alone does not end the
    /// connection (the task may still write): close it, then wait.
    pub async fn wait_closed(&mut self) -> io::Result<()> {
        self.read_with(|shared| {
            shared.buffer.clear();
            shared.scanned = 0;
            match &shared.ended {
                Some(Ended::Clean) => Step::Done(Ok(())),
                Some(failed) => Step::Done(Err(failed.error())),
                None => Step::Need(0),
            }
        })
        .await
    }
}

/// A read in progress: when it ends, or its future is dropped (a timeout), its need no
/// longer holds reading open past the limit.
struct PendingRead<'a>(&'a RefCell<Shared>);

impl Drop for PendingRead<'_> {
    fn drop(&mut self) {
        let mut shared = self.0.borrow_mut();
        shared.wanted = 0;
        shared.reader = None;
    }
}

/// One look for a line of at most `max_len` bytes.
fn line_step(shared: &mut Shared, max_len: usize) -> Step<io::Result<Option<Bytes>>> {
    // A line and its `\r\n` fit in this window; past it without a `\n`, the line is too long.
    let window = max_len.saturating_add(2).min(shared.buffer.len());
    let found = shared.buffer[shared.scanned.min(window)..window]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| i + shared.scanned.min(window));
    if let Some(newline) = found {
        let content = match newline > 0 && shared.buffer[newline - 1] == b'\r' {
            true => newline - 1,
            false => newline,
        };
        if content > max_len {
            return Step::Done(Err(too_long("line", max_len)));
        }
        let mut line = take(shared, newline + 1);
        line.truncate(content);
        return Step::Done(Ok(Some(line)));
    }
    shared.scanned = window;
    if shared.buffer.len() > max_len.saturating_add(1) {
        return Step::Done(Err(too_long("line", max_len)));
    }
    if let Some(error) = end_error(shared) {
        return Step::Done(Err(error));
    }
    if at_end(shared) {
        if shared.buffer.len() > max_len {
            return Step::Done(Err(too_long("line", max_len)));
        }
        let len = shared.buffer.len();
        return Step::Done(Ok((len > 0).then(|| take(shared, len))));
    }
    Step::Need(max_len.saturating_add(2))
}
