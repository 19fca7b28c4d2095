//! A TCP socket as a [`Stream`], and the edge-triggered read every socket-like stream shares.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use socket2::SockRef;

use super::{Bits, Fault, Input, ReadState, Stream};
use crate::file_segment::FileSegment;
use crate::Address;

/// One read of a socket-like `source`, edge-triggered: only while `READABLE` is set, clearing
/// it once the socket is drained (WouldBlock, or a short read: the next byte brings a new
/// edge, unless the peer's FIN is in, which no edge follows, so the reader reads on to EOF);
/// and only while the turn's budget lasts (`Input::Yield` once it is spent).
#[inline]
pub(crate) fn read_socket(
    source: &mut impl Read,
    buf: &mut [u8],
    state: &mut ReadState<'_>,
) -> Result<Input, Fault> {
    if !state.bits.has(Bits::READABLE) {
        return Ok(Input::Pending);
    }
    if state.spent() {
        return Ok(Input::Yield);
    }
    loop {
        return match source.read(buf) {
            Ok(0) => {
                state.bits.clear(Bits::READABLE);
                Ok(Input::Eof)
            }
            Ok(n) => {
                if n < buf.len() && !state.bits.has(Bits::READ_CLOSED) {
                    state.bits.clear(Bits::READABLE);
                }
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

impl Stream for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        read_socket(self, buf, state)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(self, bufs)
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    /// `sendfile(2)` from the page cache to the socket.
    fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
        segment.send_to(&*self)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        TcpStream::take_error(self)
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(self, token, Interest::READABLE | Interest::WRITABLE)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(self)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        TcpStream::peer_addr(self).map(Address::Tcp)
    }

    fn local_addr(&self) -> io::Result<Address> {
        TcpStream::local_addr(self).map(Address::Tcp)
    }

    fn socket(&self) -> Option<SockRef<'_>> {
        Some(SockRef::from(self))
    }
}
