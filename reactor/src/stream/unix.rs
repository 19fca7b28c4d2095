//! A UNIX domain stream socket as a [`Stream`], with descriptors passed both ways
//! (`SCM_RIGHTS`).
//!
//! Descriptors to send wait here, each batch tagged with the offset in the connection's
//! outgoing byte stream of the first byte written with it. Writes stop short of a batch's
//! offset, and the write that starts there is a `sendmsg` carrying the batch: so the
//! descriptors leave exactly with their bytes, in order with everything queued around them,
//! and the write queue itself knows nothing of them.
//!
//! Reads are `recvmsg` with room for [`MAX_FDS_PER_MESSAGE`] descriptors; received ones are
//! held (at most [`MAX_HELD_FDS`]) until the protocol takes them. The kernel closes what does
//! not fit the control buffer; extras past the held limit are closed here, and logged. Every
//! descriptor is an `OwnedFd`, received with `MSG_CMSG_CLOEXEC`: none leaks, into this
//! process or a child.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use log::warn;
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use super::{read_socket, Bits, Fault, Input, ReadState, Stream};
use crate::{Address, Credentials, UnixAddress};

/// Most descriptors one message may carry, sent or received (a batch of more is refused
/// when queued; the kernel closes received ones past it and the read notes the truncation).
pub const MAX_FDS_PER_MESSAGE: usize = 16;

/// Most received descriptors held for a protocol that has not taken them; more are closed
/// as they arrive (logged).
pub const MAX_HELD_FDS: usize = 64;

/// A connected UNIX stream socket.
pub(crate) struct UnixSocketStream {
    socket: UnixStream,
    /// Bytes written so far: the offset in the outgoing stream of the next byte to leave.
    written: u64,
    /// Descriptors to send, each with the offset of the byte they leave with (ascending).
    outgoing: VecDeque<(u64, Vec<OwnedFd>)>,
    /// Descriptors received and not yet taken by the protocol.
    received: Vec<OwnedFd>,
}

impl UnixSocketStream {
    pub(crate) fn new(socket: UnixStream) -> UnixSocketStream {
        UnixSocketStream {
            socket,
            written: 0,
            outgoing: VecDeque::new(),
            received: Vec::new(),
        }
    }

    /// Sends `fds` with the byte `queued` bytes past what has been written (the first byte
    /// of the data queued with them).
    pub(crate) fn send_fds_at(&mut self, queued: usize, fds: Vec<OwnedFd>) {
        let at = self.written + queued as u64;
        self.outgoing.push_back((at, fds));
    }

    /// The descriptors received so far, taken.
    pub(crate) fn take_received(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.received)
    }

    /// How many of the next bytes may go in one write, and the descriptors that go with
    /// them: up to the next batch's byte (none with them), or, from a batch's byte, up to the
    /// batch after it (with the batch).
    ///
    /// A batch's byte is never behind what was written (writes stop at it), so the limits
    /// are at least one byte; they are kept so even if that broke, and every write moves on.
    fn next_write(&self) -> (Option<u64>, bool) {
        let mut batches = self.outgoing.iter().map(|(at, _)| *at);
        let ahead = |at: u64| at.saturating_sub(self.written).max(1);
        match batches.next() {
            None => (None, false),
            Some(at) if at > self.written => (Some(ahead(at)), false),
            Some(_) => (batches.next().map(ahead), true),
        }
    }

    /// `sendmsg` of `bufs` with the front batch of descriptors.
    fn send_with_fds(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some((_, fds)) = self.outgoing.front() else {
            return Ok(0);
        };
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        let mut space =
            [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
            return Err(io::Error::other("too many descriptors for one message"));
        }
        let n = sendmsg(&self.socket, bufs, &mut control, SendFlags::NOSIGNAL)?;
        // The kernel took the descriptors with the first byte: ours close now.
        self.outgoing.pop_front();
        Ok(n)
    }
}

/// At most `limit` bytes of `bufs` (a new list: only when descriptors wait to be sent).
fn truncated<'b>(bufs: &'b [IoSlice<'_>], mut limit: usize) -> Vec<IoSlice<'b>> {
    let mut out = Vec::new();
    for buf in bufs {
        if limit == 0 {
            break;
        }
        let n = buf.len().min(limit);
        out.push(IoSlice::new(&buf[..n]));
        limit -= n;
    }
    out
}

/// The socket as [`Read`]: a `recvmsg` that keeps the descriptors that came with the bytes.
struct Receiving<'a> {
    socket: &'a UnixStream,
    received: &'a mut Vec<OwnedFd>,
}

impl Read for Receiving<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut space =
            [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg(self.socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
        let mut closed = 0;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    if self.received.len() < MAX_HELD_FDS {
                        self.received.push(fd);
                    } else {
                        closed += 1; // dropped: closed
                    }
                }
            }
        }
        if closed > 0 {
            warn!("unix socket: {closed} received descriptors closed: {MAX_HELD_FDS} already held");
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            warn!("unix socket: a message carried more than {MAX_FDS_PER_MESSAGE} descriptors: the kernel closed the rest");
        }
        Ok(msg.bytes)
    }
}

impl Stream for UnixSocketStream {
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        let mut receiving = Receiving {
            socket: &self.socket,
            received: &mut self.received,
        };
        let readable = state.bits.has(Bits::READABLE);
        let input = read_socket(&mut receiving, buf, state)?;
        // A short read does not mean the socket is drained here: the kernel ends a read after
        // bytes that carried descriptors, and before bytes from another writer (a forked
        // peer), with more queued behind them and no new edge to come. Read on until
        // WouldBlock says it is drained.
        if readable && matches!(input, Input::Data(_)) {
            state.bits.set(Bits::READABLE);
        }
        Ok(input)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = match self.next_write() {
            (None, false) => io::Write::write_vectored(&mut self.socket, bufs)?,
            (None, true) => self.send_with_fds(bufs)?,
            (Some(limit), with_fds) => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let bufs = truncated(bufs, limit);
                match with_fds {
                    true => self.send_with_fds(&bufs)?,
                    false => io::Write::write_vectored(&mut self.socket, &bufs)?,
                }
            }
        };
        self.written += n as u64;
        Ok(n)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Write)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.socket.take_error()
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        let addr = self.socket.peer_addr()?;
        Ok(Address::Unix(UnixAddress::from_std(&addr)))
    }

    fn local_addr(&self) -> io::Result<Address> {
        let addr = self.socket.local_addr()?;
        Ok(Address::Unix(UnixAddress::from_std(&addr)))
    }

    fn unix(&self) -> Option<&UnixSocketStream> {
        Some(self)
    }

    fn peer_credentials(&self) -> Option<io::Result<Credentials>> {
        Some(crate::unix::peer_credentials(&self.socket))
    }

    fn unix_mut(&mut self) -> Option<&mut UnixSocketStream> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_with_batches(at: &[u64]) -> UnixSocketStream {
        let (socket, _peer) = UnixStream::pair().unwrap();
        let mut stream = UnixSocketStream::new(socket);
        for &at in at {
            stream.outgoing.push_back((at, Vec::new()));
        }
        stream
    }

    #[test]
    fn writes_stop_short_of_a_batch_and_a_batch_goes_with_the_bytes_up_to_the_next() {
        assert_eq!(stream_with_batches(&[]).next_write(), (None, false));
        assert_eq!(stream_with_batches(&[10]).next_write(), (Some(10), false));
        assert_eq!(stream_with_batches(&[0]).next_write(), (None, true));
        assert_eq!(stream_with_batches(&[0, 5]).next_write(), (Some(5), true));
        let mut later = stream_with_batches(&[7, 9]);
        later.written = 7;
        assert_eq!(later.next_write(), (Some(2), true));
    }

    #[test]
    fn truncation_keeps_the_first_bytes_across_slices() {
        let (a, b) = (b"abc".as_slice(), b"defg".as_slice());
        let bufs = [IoSlice::new(a), IoSlice::new(b)];
        let cut = truncated(&bufs, 5);
        let lens: Vec<usize> = cut.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [3, 2]);
        assert_eq!(&*cut[1], b"de");
        assert!(truncated(&bufs, 0).is_empty());
        assert_eq!(truncated(&bufs, 100).len(), 2);
    }

    #[test]
    fn descriptors_queued_with_bytes_are_placed_after_what_was_written() {
        let mut stream = stream_with_batches(&[]);
        stream.written = 100;
        stream.send_fds_at(20, Vec::new());
        assert_eq!(stream.outgoing.front().map(|(at, _)| *at), Some(120));
    }
}
