//! Watched descriptors on the reactor ([`Reactor::add_reader`]): reading them dry when they
//! are readable and handing the bytes to their [`FdReader`].

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};

use log::debug;
use mio::unix::SourceFd;
use mio::Interest;
use socket2::SockRef;

use crate::reader::{FdReader, Reader, ReaderId, READ_BUDGET_PER_TURN};
use crate::table::{Key, Kind};
use crate::Reactor;

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
        let key = self.readers.next_key()?;
        let raw = file.as_raw_fd();
        let registered = self.poll.registry().register(
            &mut SourceFd(&raw),
            key.token(Kind::Reader),
            Interest::READABLE,
        );
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
        self.readers.insert_at(key, reader);
        Ok(ReaderId(key))
    }

    /// Stops watching a descriptor (and closes it). False if it was not watched any more.
    pub fn remove_reader(&mut self, id: ReaderId) -> bool {
        self.remove_reader_slot(id.0).is_some()
    }

    fn remove_reader_slot(&mut self, key: Key) -> Option<Reader> {
        let reader = self.readers.remove(key)?;
        let raw = reader.file.as_raw_fd();
        if let Err(e) = self.poll.registry().deregister(&mut SourceFd(&raw)) {
            debug!("deregistering a watched descriptor: {e}");
        }
        Some(reader)
    }

    /// A watched descriptor is readable: read it dry (edge-triggered), up to this turn's
    /// budget, handing each chunk over.
    pub(crate) fn reader_ready(&mut self, key: Key) {
        let mut buf = self.connections.take_read_buf();
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
                        self.push_ready(Kind::Reader, key);
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
        self.connections.put_read_buf(buf);
    }

    fn reader_mut(&mut self, key: Key) -> Option<&mut Reader> {
        self.readers.get_mut(key).filter(|r| r.reader.is_some())
    }

    /// Calls the reader with the reactor; the reader is out of its slot meanwhile.
    fn with_reader(&mut self, key: Key, f: impl FnOnce(&mut dyn FdReader, &mut Reactor)) {
        let Some(mut reader) = self.reader_mut(key).and_then(|r| r.reader.take()) else {
            return;
        };
        f(&mut *reader, self);
        if let Some(slot) = self.readers.get_mut(key) {
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
