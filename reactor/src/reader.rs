//! Watching any readable file descriptor (stdin, a pipe, a tty, a character device) through
//! the reactor, as Twisted's `stdio` and `addReader` do: the reactor reads it when it is ready
//! and hands the bytes to an [`FdReader`].

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};

use log::debug;
use mio::unix::SourceFd;
use mio::Interest;
use socket2::SockRef;

use crate::slot::{Key, SlotKind};
use crate::Reactor;

/// Bytes read from one turn's worth of a descriptor before others get their go.
const READ_BUDGET_PER_TURN: usize = 256 * 1024;

/// What a watched descriptor's bytes are handed to. Any `FnMut(&mut Reactor, &[u8])` closure
/// is one (it ignores EOF and errors, which are logged).
pub trait FdReader: 'static {
    /// Bytes were read from the descriptor.
    fn data_received(&mut self, reactor: &mut Reactor, data: &[u8]);

    /// The descriptor reached end of file; it is no longer watched.
    fn eof_received(&mut self, reactor: &mut Reactor) {
        let _ = reactor;
    }

    /// Reading failed with `error`; the descriptor is no longer watched.
    fn read_failed(&mut self, reactor: &mut Reactor, error: io::Error) {
        let _ = reactor;
        log::warn!("reading a watched descriptor: {error}");
    }
}

impl<F: FnMut(&mut Reactor, &[u8]) + 'static> FdReader for F {
    fn data_received(&mut self, reactor: &mut Reactor, data: &[u8]) {
        self(reactor, data)
    }
}

/// Names a descriptor watched with [`Reactor::add_reader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReaderId(pub(crate) Key);

pub(crate) struct Reader {
    file: File,
    /// `None` while its callback runs.
    reader: Option<Box<dyn FdReader>>,
    /// Whether the descriptor was blocking before we made it non-blocking, to restore it.
    was_blocking: bool,
}

impl Drop for Reader {
    /// The watch ends however it ends (removal, EOF, an error, the reactor dropped): the
    /// descriptor is made blocking again if it was, so a shell does not inherit a
    /// non-blocking terminal.
    fn drop(&mut self) {
        if self.was_blocking {
            let _ = SockRef::from(&self.file).set_nonblocking(false);
        }
    }
}

impl Reactor {
    /// Watches `fd` for reading: whenever it has bytes, the reactor reads them and calls
    /// `reader`, until end of file, an error, or [`remove_reader`](Reactor::remove_reader).
    /// For stdin: `std::io::stdin().as_fd().try_clone_to_owned()?`.
    ///
    /// The descriptor is made non-blocking while watched (for a duplicated descriptor that
    /// includes the original: they share one open file) and made blocking again when the
    /// watch ends, so a shell does not inherit a non-blocking terminal. Regular files cannot
    /// be watched (epoll refuses them: `EPERM`).
    pub fn add_reader(&mut self, fd: OwnedFd, reader: impl FdReader) -> io::Result<ReaderId> {
        let file = File::from(fd);
        // fcntl(O_NONBLOCK) works on any descriptor; socket2 is how this crate reaches it
        // without unsafe code.
        let socket = SockRef::from(&file);
        let was_blocking = !socket.nonblocking()?;
        socket.set_nonblocking(true)?;
        let key = self.next_key()?;
        let raw = file.as_raw_fd();
        let registered =
            self.poll
                .registry()
                .register(&mut SourceFd(&raw), key.token(), Interest::READABLE);
        if let Err(e) = registered {
            if was_blocking {
                let _ = socket.set_nonblocking(false);
            }
            return Err(e);
        }
        let reader = Reader {
            file,
            reader: Some(Box::new(reader)),
            was_blocking,
        };
        self.insert_at(key, SlotKind::Reader(reader));
        Ok(ReaderId(key))
    }

    /// Stops watching a descriptor (and closes it). False if it was not watched any more.
    pub fn remove_reader(&mut self, id: ReaderId) -> bool {
        self.remove_reader_slot(id.0).is_some()
    }

    fn remove_reader_slot(&mut self, key: Key) -> Option<Reader> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation != key.generation || !matches!(slot.kind, SlotKind::Reader(_)) {
            return None;
        }
        let SlotKind::Reader(reader) = self.slots.remove(key.index as usize).kind else {
            return None;
        };
        let raw = reader.file.as_raw_fd();
        if let Err(e) = self.poll.registry().deregister(&mut SourceFd(&raw)) {
            debug!("deregistering a watched descriptor: {e}");
        }
        Some(reader)
    }

    /// A watched descriptor is readable: read it dry (edge-triggered), up to this turn's
    /// budget, handing each chunk over.
    pub(crate) fn reader_ready(&mut self, key: Key) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let mut budget = READ_BUDGET_PER_TURN;
        while let Some(reader) = self.reader_mut(key) {
            match reader.file.read(&mut buf) {
                Ok(0) => {
                    self.end_reader(key, None);
                    break;
                }
                Ok(n) => {
                    self.with_reader(key, |r, reactor| r.data_received(reactor, &buf[..n]));
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.ready.push_back(key);
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end_reader(key, Some(e));
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    fn reader_mut(&mut self, key: Key) -> Option<&mut Reader> {
        match self.slots.get_mut(key.index as usize) {
            Some(slot) if slot.generation == key.generation => match &mut slot.kind {
                SlotKind::Reader(reader) if reader.reader.is_some() => Some(reader),
                _ => None,
            },
            _ => None,
        }
    }

    /// Calls the reader with the reactor; the reader is out of its slot meanwhile.
    fn with_reader(&mut self, key: Key, f: impl FnOnce(&mut dyn FdReader, &mut Reactor)) {
        let Some(mut reader) = self.reader_mut(key).and_then(|r| r.reader.take()) else {
            return;
        };
        f(&mut *reader, self);
        if let Some(SlotKind::Reader(slot)) = self
            .slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
            .map(|s| &mut s.kind)
        {
            slot.reader = Some(reader);
        }
    }

    /// EOF or an error: stop watching, then tell the reader.
    fn end_reader(&mut self, key: Key, error: Option<io::Error>) {
        let Some(mut slot) = self.remove_reader_slot(key) else {
            return;
        };
        let Some(mut reader) = slot.reader.take() else {
            return;
        };
        match error {
            None => reader.eof_received(self),
            Some(e) => reader.read_failed(self, e),
        }
    }
}
