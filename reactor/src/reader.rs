//! Watching any readable file descriptor (stdin, a pipe, a tty, a character device) through
//! the reactor, as Twisted's `stdio` and `addReader` do: the reactor reads it when it is ready
//! and hands the bytes to an [`FdReader`].

use std::fs::File;
use std::io;

use socket2::SockRef;

use crate::table::Key;
use crate::Reactor;

/// Bytes read from one turn's worth of a descriptor before others get their go.
pub(crate) const READ_BUDGET_PER_TURN: usize = 256 * 1024;

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

/// A watched descriptor.
pub(crate) struct Reader {
    pub(crate) file: File,
    /// `None` while its callback runs.
    pub(crate) reader: Option<Box<dyn FdReader>>,
    /// Whether the descriptor was blocking before we made it non-blocking, to restore it.
    pub(crate) was_blocking: bool,
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
