//! A file as a response body, with no file I/O on the reactor thread that could wait for a
//! disk: [`Responder::send_file`], and what [`StaticFiles`](crate::http::static_files::StaticFiles)
//! sends its files with.
//!
//! The body goes in *windows*, each fetched at once if it is in the page cache
//! ([`Source::fetch_now`]: reads and probes that fail rather than wait), else by the thread
//! pool: a small body (at most
//! [`SMALL_BODY`]) or a file that is not a regular one (a pipe) is read into memory; a window
//! of a regular file ([`WINDOW`]) is loaded into the page cache unless it is there already
//! ([`FileSegment::is_cached`], then [`FileSegment::load`]: the kernel reads it and waits for
//! the disk, with no user-space copy). The reactor then queues
//! the window: bytes as bytes, a loaded window as a [`FileSegment`], which plain TCP sends
//! with `sendfile(2)` and TLS reads and encrypts, from the page cache in both cases. While
//! one window is being sent the pool fetches the next, and that one is queued once the
//! connection has room again (the writer's backpressure), so a slow client holds no memory
//! for the file and one window of it in the page cache.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use torsion_reactor::{FileSegment, Reactor};

use super::{BodyWriter, Responder};

/// Bodies up to this length are read whole into memory in the thread pool and sent with
/// their head in one write: for a small file a copy costs less than a `sendfile` call.
pub(super) const SMALL_BODY: u64 = 64 * 1024;

/// A window of a regular file, loaded into the page cache and queued at once.
const WINDOW: u64 = 1024 * 1024;

/// A window of a file that is not regular (read into memory, since the kernel cannot send
/// it by offset).
const READ_WINDOW: u64 = 64 * 1024;

/// A window of the body, fetched in the thread pool.
pub(super) enum Window {
    /// Bytes read into memory.
    Read(Bytes),
    /// A range loaded into the page cache.
    Loaded(FileSegment),
}

/// The file behind a body: where the next window starts and where the body ends.
pub(super) struct Source {
    file: Arc<File>,
    /// A regular file: read by offset and loaded into the page cache; anything else (a pipe)
    /// is read in order.
    regular: bool,
    next: u64,
    end: u64,
}

impl Source {
    /// Bytes `offset..offset + len` of `file`. Asks the file's type (`fstat`): call it in the
    /// thread pool.
    pub(super) fn new(file: File, offset: u64, len: u64) -> io::Result<Source> {
        let regular = file.metadata()?.is_file();
        Ok(Source::of(file, regular, offset, len))
    }

    /// As [`new`](Source::new) for a file already known to be regular or not.
    pub(super) fn of(file: File, regular: bool, offset: u64, len: u64) -> Source {
        Source {
            file: Arc::new(file),
            regular,
            next: offset,
            end: offset.saturating_add(len),
        }
    }

    /// Fetches the next window: **blocking**, for the thread pool.
    pub(super) fn fetch(&mut self) -> io::Result<Window> {
        let left = self.end - self.next;
        let window = if left <= SMALL_BODY {
            left
        } else if self.regular {
            WINDOW.min(left)
        } else {
            READ_WINDOW.min(left)
        };
        let offset = self.next;
        self.next += window;
        if window <= SMALL_BODY || !self.regular {
            return self.read(offset, window as usize).map(Window::Read);
        }
        let segment = FileSegment::new(self.file.clone(), offset, window);
        if !segment.is_cached() {
            segment.load()?;
        }
        Ok(Window::Loaded(segment))
    }

    /// Fetches the next window only if that needs no disk: a small body read with reads
    /// that fail rather than wait (`preadv2(RWF_NOWAIT)`), or a window of a regular file
    /// whose pages the cache probes find ([`FileSegment::is_cached`]). `None` (nothing
    /// consumed) otherwise: [`fetch`](Source::fetch) it in the thread pool.
    pub(super) fn fetch_now(&mut self) -> Option<Window> {
        if !self.regular {
            return None;
        }
        let left = self.end - self.next;
        let offset = self.next;
        let window = if left <= SMALL_BODY {
            Window::Read(self.read_now(offset, left as usize)?)
        } else {
            let segment = FileSegment::new(self.file.clone(), offset, WINDOW.min(left));
            if !segment.is_cached() {
                return None;
            }
            Window::Loaded(segment)
        };
        self.next += match &window {
            Window::Read(bytes) => bytes.len() as u64,
            Window::Loaded(segment) => segment.len(),
        };
        Some(window)
    }

    /// Reads `len` bytes at `offset` from the page cache, or `None` if some are not there.
    fn read_now(&self, offset: u64, len: usize) -> Option<Bytes> {
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < len {
            let mut bufs = [std::io::IoSliceMut::new(&mut buf[filled..])];
            let at = offset + filled as u64;
            let nowait = rustix::io::ReadWriteFlags::NOWAIT;
            match rustix::io::preadv2(&*self.file, &mut bufs, at, nowait) {
                Ok(0) => return None, // shrank: the pool's read reports it
                Ok(n) => filled += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return None,
            }
        }
        Some(Bytes::from(buf))
    }

    /// Reads `len` bytes at `offset` (in order, for a file that is not regular).
    fn read(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < len {
            let read = if self.regular {
                self.file
                    .read_at(&mut buf[filled..], offset + filled as u64)
            } else {
                (&*self.file).read(&mut buf[filled..])
            };
            match read {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while being sent",
                    ))
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Bytes::from(buf))
    }

    fn is_done(&self) -> bool {
        self.next >= self.end
    }

    /// The body's length from where it started.
    fn len_from(&self, start: u64) -> u64 {
        self.end - start
    }
}

impl Responder {
    /// Answers with `len` bytes of `file` from `offset` as the body, `Content-Length`
    /// framed, without any file I/O on the reactor thread that could wait for a disk: the
    /// thread pool reads a small body (up to 64 KiB) whole, or loads a larger one into the
    /// page cache a window (1 MiB) at a time, which plain TCP then sends with `sendfile(2)`
    /// and TLS reads and encrypts. The next window is fetched while one is being sent, and
    /// queued when the client has taken it (backpressure), so a slow client costs no memory
    /// for the file. A file that is not regular (a pipe) is read in order, 64 KiB at a time.
    ///
    /// If the first window cannot be read, the answer is `500 Internal Server Error`; a
    /// failure later (the file shrank, the disk failed) closes the connection after what was
    /// sent, since the length was promised. For `HEAD` the length is announced and nothing
    /// is sent. The file is closed once the body is sent or the connection is gone.
    pub fn send_file(
        self,
        reactor: &mut Reactor,
        status: StatusCode,
        headers: &HeaderMap,
        file: File,
        offset: u64,
        len: u64,
    ) {
        let headers = headers.clone();
        let fetch = move || -> io::Result<(Source, Window)> {
            let mut source = Source::new(file, offset, len)?;
            let window = source.fetch()?;
            Ok((source, window))
        };
        reactor.call_in_thread(fetch, move |reactor, fetched| match fetched {
            Ok(Ok((source, window))) => {
                send_body(self, reactor, status, &headers, source, offset, window)
            }
            Ok(Err(error)) => {
                log::warn!("send_file: the file could not be read ({error})");
                self.respond_status(reactor, StatusCode::INTERNAL_SERVER_ERROR);
            }
            Err(panic) => {
                log::warn!("send_file: {panic}");
                self.respond_status(reactor, StatusCode::INTERNAL_SERVER_ERROR);
            }
        });
    }
}

/// Sends the head and the body whose first window (starting at `start`) was fetched: a small
/// body read whole in one write with its head; anything else a window at a time.
pub(super) fn send_body(
    responder: Responder,
    reactor: &mut Reactor,
    status: StatusCode,
    headers: &HeaderMap,
    source: Source,
    start: u64,
    first: Window,
) {
    let length = source.len_from(start);
    match first {
        Window::Read(bytes) if source.is_done() => {
            responder.respond(reactor, status, headers, bytes);
        }
        first => {
            let writer = responder.stream_with_length(reactor, status, headers, length);
            deliver(Transfer { writer, source }, first, reactor);
        }
    }
}

/// A body being sent a window at a time.
struct Transfer {
    writer: BodyWriter,
    source: Source,
}

/// Queues `window`, then fetches the next one (at once if it is in the page cache, else in
/// the pool while this one is sent), or finishes the body.
fn deliver(mut transfer: Transfer, window: Window, reactor: &mut Reactor) {
    match window {
        Window::Read(bytes) => transfer.writer.write(reactor, bytes),
        Window::Loaded(segment) => transfer.writer.write_file(reactor, segment),
    };
    if transfer.source.is_done() {
        transfer.writer.finish(reactor);
        return;
    }
    if !transfer.writer.is_connected() {
        return; // the client left: dropping the writer and the file is all there is to do
    }
    if let Some(window) = transfer.source.fetch_now() {
        return when_room(transfer, window, reactor);
    }
    let Transfer { writer, mut source } = transfer;
    reactor.call_in_thread(
        move || {
            let window = source.fetch();
            (source, window)
        },
        move |reactor, fetched| match fetched {
            Ok((source, Ok(window))) => when_room(Transfer { writer, source }, window, reactor),
            Ok((_, Err(error))) => {
                log::warn!("a file failed mid-body ({error}): closing");
                writer.abort(reactor);
            }
            Err(panic) => {
                log::warn!("a file failed mid-body ({panic}): closing");
                writer.abort(reactor);
            }
        },
    );
}

/// Delivers `window` now if the connection has room, else once it has (the writer's resume
/// call, which owns the transfer: dropped with it if the connection closes first).
fn when_room(mut transfer: Transfer, window: Window, reactor: &mut Reactor) {
    if !transfer.writer.should_pause(reactor) {
        return deliver(transfer, window, reactor);
    }
    if !transfer.writer.is_connected() {
        return;
    }
    let parked = std::rc::Rc::new(std::cell::Cell::new(None));
    let taken = parked.clone();
    transfer.writer.on_resume(move |reactor| {
        if let Some((transfer, window)) = taken.take() {
            deliver(transfer, window, reactor);
        }
    });
    parked.set(Some((transfer, window)));
}
