//! Pipes as a [`Stream`]: an optional read end and an optional write end, each its own
//! descriptor (standard input and output; a child process's stdin, stdout or stderr).
//!
//! Each end is non-blocking and registered with the poll for its own interest, under the
//! connection's one token. Some descriptors cannot be polled: epoll refuses regular files and
//! some character devices (`/dev/null`) with `EPERM`. Such an end is *always ready*: it is
//! read without waiting for an edge, one budget per turn, until EOF (a read of a regular file
//! never blocks), and written at once (a write to one never blocks either).
//!
//! Standard I/O ([`Pipe::standard_io`]) does not share its descriptors' flags with the rest of
//! the process or with the shell: a terminal or a pipe is *reopened* through
//! `/proc/self/fd/N`, a new open file description whose `O_NONBLOCK` is this stream's alone,
//! so the shell's terminal is never left non-blocking, even if the process is killed. Where
//! that fails (no `/proc`; a socket, which cannot be reopened), the descriptor is duplicated
//! and made non-blocking, and its original flags are restored when the stream is dropped.
//! A regular file is duplicated as it is (reopening it would lose its offset: `< file` read
//! in part by the shell before).

use crate::Address;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::fs::{FileType, Mode, OFlags};

use super::{Bits, Fault, Input, ReadState, Stream};

/// One end of a pipe (or any descriptor used as one).
struct End {
    file: File,
    /// Whether the poll watches it; false for a descriptor epoll refuses (always ready).
    polled: bool,
    /// The flags to put back when dropped, if this end changed a shared descriptor's.
    restore: Option<OFlags>,
}

#[allow(
    dead_code,
    reason = "the pipes to a child process use it; they come next"
)]
impl End {
    /// An end over a descriptor this stream owns alone (a pipe it made): made non-blocking.
    fn owned(fd: OwnedFd) -> io::Result<End> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
        Ok(End {
            file: File::from(fd),
            polled: true,
            restore: None,
        })
    }

    /// An end reading or writing `fd`, a descriptor the process shares (0, 1): see the module
    /// docs for why a terminal or pipe is reopened and a regular file duplicated.
    fn shared(fd: BorrowedFd<'_>, access: OFlags) -> io::Result<End> {
        let kind = FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode);
        let dup = || -> io::Result<File> { Ok(File::from(fd.try_clone_to_owned()?)) };
        if matches!(kind, FileType::RegularFile | FileType::BlockDevice) {
            return Ok(End {
                file: dup()?,
                polled: true,
                restore: None,
            });
        }
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let flags = access | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        if let Ok(reopened) = rustix::fs::open(path.as_str(), flags, Mode::empty()) {
            return Ok(End {
                file: File::from(reopened),
                polled: true,
                restore: None,
            });
        }
        let file = dup()?;
        let original = rustix::fs::fcntl_getfl(&file)?;
        rustix::fs::fcntl_setfl(&file, original | OFlags::NONBLOCK)?;
        Ok(End {
            file,
            polled: true,
            restore: Some(original),
        })
    }

    /// Registers the end for `interest`; an end epoll refuses becomes always ready.
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let raw = self.file.as_raw_fd();
        match registry.register(&mut SourceFd(&raw), token, interest) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
                self.polled = false;
                Ok(())
            }
            other => other,
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        if !self.polled {
            return Ok(());
        }
        registry.deregister(&mut SourceFd(&self.file.as_raw_fd()))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        if let Some(flags) = self.restore {
            let _ = rustix::fs::fcntl_setfl(&self.file, flags);
        }
    }
}

/// A stream over a read end, a write end, or both.
pub(crate) struct Pipe {
    read: Option<End>,
    write: Option<End>,
    /// The read end reached EOF (an always-ready end has nothing more to offer).
    read_ended: bool,
}

#[allow(
    dead_code,
    reason = "the pipes to a child process use them; they come next"
)]
impl Pipe {
    /// Standard input and output as one stream (see the module docs for how they are
    /// opened).
    pub(crate) fn standard_io() -> io::Result<Pipe> {
        Ok(Pipe {
            read: Some(End::shared(io::stdin().as_fd(), OFlags::RDONLY)?),
            write: Some(End::shared(io::stdout().as_fd(), OFlags::WRONLY)?),
            read_ended: false,
        })
    }

    /// A stream reading `fd` only (a child's stdout or stderr), made non-blocking.
    pub(crate) fn reader(fd: OwnedFd) -> io::Result<Pipe> {
        Ok(Pipe {
            read: Some(End::owned(fd)?),
            write: None,
            read_ended: false,
        })
    }

    /// A stream writing `fd` only (a child's stdin), made non-blocking.
    pub(crate) fn writer(fd: OwnedFd) -> io::Result<Pipe> {
        Ok(Pipe {
            read: None,
            write: Some(End::owned(fd)?),
            read_ended: true,
        })
    }

    /// Whether the read end is one epoll refused, with input left that no edge announces.
    fn always_ready_input(&self) -> bool {
        !self.read_ended && self.read.as_ref().is_some_and(|end| !end.polled)
    }

    fn write_end(&mut self) -> io::Result<&mut File> {
        match self.write.as_mut() {
            Some(end) => Ok(&mut end.file),
            None => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this pipe has no write end (or it was closed)",
            )),
        }
    }
}

/// Reads a polled end, edge-triggered: only while `READABLE` is set, clearing it only at
/// `WouldBlock`. Unlike a socket's read, a short read does not prove the descriptor drained:
/// a terminal hands out one line per read (and an end of input, `^D`, typed after it comes as
/// a read of its own), with no new edge for what was already there when the last one came.
fn read_polled(file: &mut File, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
    if !state.bits.has(Bits::READABLE) {
        return Ok(Input::Pending);
    }
    if state.spent() {
        return Ok(Input::Yield);
    }
    loop {
        return match file.read(buf) {
            Ok(0) => {
                state.bits.clear(Bits::READABLE);
                Ok(Input::Eof)
            }
            Ok(n) => {
                state.charge(n);
                Ok(Input::Data(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                state.bits.clear(Bits::READABLE);
                Ok(Input::Pending)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(Fault::Io(e)),
        };
    }
}

/// Reads a descriptor that cannot be polled: until EOF, within the turn's budget.
fn read_always_ready(
    file: &mut File,
    buf: &mut [u8],
    state: &mut ReadState<'_>,
) -> Result<Input, Fault> {
    if state.spent() {
        return Ok(Input::Yield);
    }
    loop {
        return match file.read(buf) {
            Ok(0) => Ok(Input::Eof),
            Ok(n) => {
                state.charge(n);
                Ok(Input::Data(n))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Not expected of a regular file; a device could: try again next turn.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Input::Yield),
            Err(e) => Err(Fault::Io(e)),
        };
    }
}

impl Stream for Pipe {
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        let Some(end) = self.read.as_mut() else {
            return Ok(Input::Pending);
        };
        let input = if end.polled {
            read_polled(&mut end.file, buf, state)?
        } else {
            read_always_ready(&mut end.file, buf, state)?
        };
        if input == Input::Eof {
            self.read_ended = true;
        }
        Ok(input)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_end()?.write_vectored(bufs)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_end()?.write(buf)
    }

    fn input_waiting(&self) -> bool {
        self.always_ready_input()
    }

    /// Closes the write end: the reader sees EOF once it has read what was written (unless
    /// another descriptor of that pipe is still open: the process's own fd 1, for standard
    /// output, until it exits).
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.write = None;
        Ok(())
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        if let Some(end) = self.read.as_mut() {
            end.register(registry, token, Interest::READABLE)?;
        }
        if let Some(end) = self.write.as_mut() {
            end.register(registry, token, Interest::WRITABLE)?;
        }
        Ok(())
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        let read = self
            .read
            .as_mut()
            .map_or(Ok(()), |end| end.deregister(registry));
        let write = self
            .write
            .as_mut()
            .map_or(Ok(()), |end| end.deregister(registry));
        read.and(write)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        Err(no_address())
    }

    fn local_addr(&self) -> io::Result<Address> {
        Err(no_address())
    }
}

fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a pipe has no socket address")
}
