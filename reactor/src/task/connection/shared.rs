//! What a connection's protocol adapter and the task's [`AsyncConnection`](super::AsyncConnection)
//! share: the bytes received and not yet read, how the connection ended, the write side's
//! state, and the wakers of the futures waiting on them.

use std::io;
use std::task::Waker;

use bytes::BytesMut;

use crate::{Address, ConnectionId, DisconnectReason};

/// Unread bytes an [`AsyncConnection`](super::AsyncConnection) keeps before it stops reading
/// the socket, unless a read waits for more (a long line, a big `read_exact`).
pub const DEFAULT_READ_LIMIT: usize = 64 * 1024;

/// The write queue's high watermark: `write_all` waits while more is queued.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The write queue's low watermark: waiting writers go on once the queue is down to it.
pub(crate) const WRITE_LOW_WATER: usize = 16 * 1024;

/// How the connection ended, kept so every later read and write can say it.
#[derive(Debug, Clone)]
pub(crate) enum Ended {
    /// Closed cleanly (a local close that flushed, or the peer's close after its EOF).
    Clean,
    /// Lost for a reason worth an error: its kind and words.
    Failed(io::ErrorKind, String),
}

impl Ended {
    pub(crate) fn from_reason(reason: &DisconnectReason) -> Ended {
        let kind = match reason {
            DisconnectReason::Closed => return Ended::Clean,
            DisconnectReason::Reset(_) => io::ErrorKind::ConnectionReset,
            DisconnectReason::TimedOut(_) => io::ErrorKind::TimedOut,
            DisconnectReason::Aborted => io::ErrorKind::ConnectionAborted,
            DisconnectReason::Error(e) => e.kind(),
            DisconnectReason::Truncated => io::ErrorKind::UnexpectedEof,
            DisconnectReason::Tls(_) => io::ErrorKind::InvalidData,
        };
        Ended::Failed(kind, reason.to_string())
    }

    /// The error a read or write past this end gets (`NotConnected` for a clean close).
    pub(crate) fn error(&self) -> io::Error {
        match self {
            Ended::Clean => io::Error::new(io::ErrorKind::NotConnected, "connection closed"),
            Ended::Failed(kind, words) => io::Error::new(*kind, words.clone()),
        }
    }
}

/// The state of one connection, between its adapter (on the reactor) and its task.
pub(crate) struct Shared {
    /// Set once the connection is made.
    pub(crate) id: ConnectionId,
    pub(crate) peer: Address,
    /// Received and not yet read.
    pub(crate) buffer: BytesMut,
    /// The buffer's first bytes already searched for a line's end.
    pub(crate) scanned: usize,
    /// Unread bytes past which reading pauses when no read asks for more.
    pub(crate) read_limit: usize,
    /// Unread bytes the pending read needs (a long line), which the limit yields to.
    pub(crate) wanted: usize,
    pub(crate) reading_paused: bool,
    /// The peer sent EOF (it sends nothing more).
    pub(crate) eof: bool,
    /// The connection is gone.
    pub(crate) ended: Option<Ended>,
    /// The task asked to close (or abort): writes are refused from then on.
    pub(crate) closing: bool,
    /// The task shut the write side (EOF sent once the queue is out).
    pub(crate) write_shut: bool,
    pub(crate) reader: Option<Waker>,
    pub(crate) writers: Vec<Waker>,
    /// Above the high watermark, from the reactor's `pause_writing` until `resume_writing`
    /// (set early by the write that crossed it, before the reactor says so).
    pub(crate) writing_paused: bool,
    /// Writes the task asked for, and those the reactor has queued: a writer waits for its
    /// own to be queued before judging the watermark.
    pub(crate) writes_asked: u64,
    pub(crate) writes_queued: u64,
    /// A write the reactor refused (the connection half-closed or gone).
    pub(crate) write_refused: bool,
    /// Times the write queue drained; a flush waits for the next.
    pub(crate) drains: u64,
}

impl Shared {
    pub(crate) fn new(peer: Address) -> Shared {
        Shared {
            id: ConnectionId(crate::table::Key::STALE),
            peer,
            buffer: BytesMut::new(),
            scanned: 0,
            read_limit: DEFAULT_READ_LIMIT,
            wanted: 0,
            reading_paused: false,
            eof: false,
            ended: None,
            closing: false,
            write_shut: false,
            reader: None,
            writers: Vec::new(),
            writing_paused: false,
            writes_asked: 0,
            writes_queued: 0,
            write_refused: false,
            drains: 0,
        }
    }

    /// Unread bytes at which reading pauses.
    pub(crate) fn pause_at(&self) -> usize {
        self.read_limit.max(self.wanted)
    }

    pub(crate) fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    pub(crate) fn wake_writers(&mut self) {
        for waker in self.writers.drain(..) {
            waker.wake();
        }
    }

    /// Remembers a writer to wake (once, however often it polls).
    pub(crate) fn add_writer(&mut self, waker: &Waker) {
        if !self.writers.iter().any(|w| w.will_wake(waker)) {
            self.writers.push(waker.clone());
        }
    }

    /// The error a write gets now, if it cannot go out.
    pub(crate) fn write_error(&self) -> Option<io::Error> {
        if let Some(ended) = &self.ended {
            return Some(ended.error());
        }
        if self.closing || self.write_shut || self.write_refused {
            return Some(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection closing or its write side shut: no more writes",
            ));
        }
        None
    }
}
