//! The byte-stream interface every connection reads from and writes to, written against once:
//! the reactor's read loop and flush (`connections/`) know only [`Stream`].
//!
//! A kind of stream is one implementation of the trait, in one file: plain TCP ([`tcp`]), the
//! test harness's in-memory peer (`testing.rs`), TLS ([`crate::tls`]), which is a *layer*: it
//! implements `Stream` over another stream, the way Twisted's `TLSMemoryBIOProtocol` wraps any
//! transport. Pipes and standard I/O ([`pipe`]) are one more; UNIX sockets another.
//!
//! A connection holds an [`AnyStream`]: plain TCP inline, as the hot path, a direct call;
//! anything else boxed behind the trait.

mod pipe;
mod tcp;
mod unix;

use std::cell::RefCell;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

use mio::net::TcpStream;
use mio::{Registry, Token};
use socket2::SockRef;

use crate::file_segment::FileSegment;
use crate::testing::MemoryPeer;
use crate::tls::stage::TlsStream;
use crate::tls::TlsError;
use crate::write_queue::{BufferPool, Sink, WriteQueue};
use crate::{Address, Credentials, DisconnectReason};

pub(crate) use pipe::Pipe;
pub(crate) use tcp::read_socket;
pub(crate) use unix::UnixSocketStream;
pub use unix::{MAX_FDS_PER_MESSAGE, MAX_HELD_FDS};

/// What a read of a stream brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// This many bytes for the protocol, at the start of the buffer.
    Data(usize),
    /// Nothing now: the next readiness edge brings more.
    Pending,
    /// More may be waiting, but this turn's read budget is spent: read again next turn (no
    /// edge will announce what is already there).
    Yield,
    /// The peer's stream ended cleanly (TCP's FIN; TLS's `close_notify`).
    Eof,
    /// The peer's stream ended without its clean close: what came may be cut short (TLS
    /// without `close_notify`).
    Truncated,
    /// A layer's handshake completed: the protocol is told before any data that follows.
    HandshakeDone,
    /// A layer handed over everything its last read of the socket gave, and the socket may
    /// have more: the moment, between two reads, for the reader to flush what a bulk transfer
    /// queued. Read again to go on (the next read goes to the socket).
    Refill,
}

/// Why a stream failed: the transport's error, or its TLS layer's.
#[derive(Debug)]
pub(crate) enum Fault {
    Io(io::Error),
    Tls(TlsError),
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Fault {
        Fault::Io(e)
    }
}

impl From<Fault> for DisconnectReason {
    fn from(fault: Fault) -> DisconnectReason {
        match fault {
            Fault::Io(e) => DisconnectReason::from_io(e),
            Fault::Tls(e) => DisconnectReason::Tls(e),
        }
    }
}

/// A connection's readiness and scheduling bits. Readiness is edge-triggered: a bit is set by
/// an event and cleared by the I/O that found the socket drained (or full); scheduling bits
/// say which of the reactor's lists the connection is on.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bits(u8);

impl Bits {
    /// The stream may have bytes to read (no WouldBlock since the last readable event).
    pub(crate) const READABLE: u8 = 1 << 0;
    /// The stream may take bytes (no WouldBlock since the last writable event).
    pub(crate) const WRITABLE: u8 = 1 << 1;
    /// The peer's FIN was seen in an event: keep reading past a short read to reach EOF.
    pub(crate) const READ_CLOSED: u8 = 1 << 2;
    /// On the connections' dirty list.
    pub(crate) const DIRTY: u8 = 1 << 3;
    /// On the reactor's ready list (more to read than one turn's budget, or reading resumed).
    pub(crate) const QUEUED_READ: u8 = 1 << 4;
    /// Woken and not yet told (and, once made, on the connections' woken list).
    pub(crate) const WOKEN: u8 = 1 << 5;

    pub(crate) fn new(bits: u8) -> Bits {
        Bits(bits)
    }

    #[inline]
    pub(crate) fn has(self, bits: u8) -> bool {
        self.0 & bits != 0
    }

    #[inline]
    pub(crate) fn set(&mut self, bits: u8) {
        self.0 |= bits;
    }

    #[inline]
    pub(crate) fn clear(&mut self, bits: u8) {
        self.0 &= !bits;
    }
}

/// What a read may use: the connection's readiness bits (the bottom stream clears
/// `READABLE` once drained) and the bytes it may still read from the socket this turn (the
/// bottom stream charges what it reads; a layer's own buffered bytes cost nothing).
pub(crate) struct ReadState<'a> {
    pub(crate) bits: &'a mut Bits,
    pub(crate) budget: &'a mut usize,
}

impl ReadState<'_> {
    /// Charges `n` bytes read from the socket to this turn's budget.
    #[inline]
    pub(crate) fn charge(&mut self, n: usize) {
        *self.budget = self.budget.saturating_sub(n);
    }

    /// Whether this turn's budget is spent.
    #[inline]
    pub(crate) fn spent(&self) -> bool {
        *self.budget == 0
    }
}

/// A byte stream beneath a connection. Everything here is non-blocking and edge-triggered:
/// a read or write that would block clears the matching readiness bit and reports it, and
/// only a new event sets it again.
pub(crate) trait Stream {
    /// Reads what the stream has for the protocol into `buf` (reading its socket, if it has
    /// one, only while `READABLE` is set).
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault>;

    /// Writes bytes as they are, without any layer's processing (a layer writes its records
    /// through its inner stream with this).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Writes one buffer as it is: [`write_vectored`](Stream::write_vectored) of one slice,
    /// unless the stream has a cheaper call for it (a socket's `send`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Sends the next bytes of a queued file segment by itself, without copying them through
    /// user space (TCP: `sendfile(2)`), consuming nothing; `None` if the stream cannot (the
    /// default): the queue then reads the bytes and writes them.
    fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
        let _ = segment;
        None
    }

    /// Writes from `queue` until it is empty or the stream would block (then `WRITABLE` is
    /// cleared), with whatever the stream holds of its own first. Returns the bytes that left
    /// for the peer (a layer's records, for a layer).
    fn write_queue(
        &mut self,
        queue: &mut WriteQueue,
        pool: &mut BufferPool,
        bits: &mut Bits,
    ) -> Result<usize, Fault> {
        write_raw(self, queue, pool, bits)
    }

    /// Whether the stream holds bytes of its own still to write (a layer's records).
    fn has_output(&self) -> bool {
        false
    }

    /// Whether the stream holds input already read that no readiness edge will announce (a
    /// layer's buffered records): a reader that resumes must look.
    fn input_waiting(&self) -> bool {
        false
    }

    /// Ends this side's stream cleanly before the transport closes or half-closes (TLS sends
    /// `close_notify`): true once nothing of it is left to write.
    fn finish(&mut self, pool: &mut BufferPool, bits: &mut Bits) -> Result<bool, Fault> {
        let _ = (pool, bits);
        Ok(true)
    }

    /// Half-closes the transport: the peer reads EOF once what was written arrives.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// The error the transport reports (`SO_ERROR`), taken: asked when an event says error.
    fn take_error(&mut self) -> io::Result<Option<io::Error>>;

    /// Registers the stream's descriptors with the poll under `token`, once (edge-triggered:
    /// never re-registered): a socket for both interests; a stream of two descriptors (a
    /// read end and a write end) each for its own.
    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()>;

    /// Removes the stream's descriptors from the poll.
    fn deregister(&mut self, registry: &Registry) -> io::Result<()>;

    /// The peer's address.
    fn peer_addr(&self) -> io::Result<Address>;

    /// This end's address.
    fn local_addr(&self) -> io::Result<Address>;

    /// The socket beneath, for socket options (`None`: not a socket).
    fn socket(&self) -> Option<SockRef<'_>> {
        None
    }

    /// The TLS layer, if this stream is one.
    fn tls(&self) -> Option<&TlsStream> {
        None
    }

    /// The TLS layer, mutably.
    fn tls_mut(&mut self) -> Option<&mut TlsStream> {
        None
    }

    /// The test harness's peer beneath, if any.
    fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        None
    }

    /// The UNIX socket, if this stream is one (for its descriptors: a layer does not pass
    /// it on, since descriptors go with the bytes of the socket, not of the layer).
    fn unix(&self) -> Option<&UnixSocketStream> {
        None
    }

    /// The credentials of the peer process (`SO_PEERCRED`), for a UNIX socket or a layer
    /// over one; `None` for any other stream.
    fn peer_credentials(&self) -> Option<io::Result<Credentials>> {
        None
    }

    /// The UNIX socket, mutably.
    fn unix_mut(&mut self) -> Option<&mut UnixSocketStream> {
        None
    }
}

/// The default `write_queue`: the queue's bytes as they are, with one `writev` per call.
fn write_raw<S: Stream + ?Sized>(
    stream: &mut S,
    queue: &mut WriteQueue,
    pool: &mut BufferPool,
    bits: &mut Bits,
) -> Result<usize, Fault> {
    if queue.is_empty() || !bits.has(Bits::WRITABLE) {
        return Ok(0);
    }
    let written = queue.write_to(&mut Raw(stream), pool)?;
    if !queue.is_empty() {
        bits.clear(Bits::WRITABLE);
    }
    Ok(written)
}

/// A stream's raw writes as [`Write`], for the write queue.
pub(crate) struct Raw<'a, S: ?Sized>(pub(crate) &'a mut S);

impl<S: Stream + ?Sized> Write for Raw<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::write(self.0, buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Stream + ?Sized> Sink for Raw<'_, S> {
    fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
        self.0.send_file(segment)
    }
}

/// The stream a connection holds. Plain TCP sits inline: it is the hot path, and matching on
/// this enum keeps its calls direct. Every other stream is boxed behind the trait, twice so
/// that the pointer is thin: the enum stays the size of two words, as small as the socket's
/// place in an idle connection allows.
pub(crate) enum AnyStream {
    Tcp(TcpStream),
    Boxed(Box<Box<dyn Stream>>),
}

impl AnyStream {
    /// Boxes any other stream.
    pub(crate) fn boxed(stream: impl Stream + 'static) -> AnyStream {
        AnyStream::Boxed(Box::new(Box::new(stream)))
    }

    /// No stream yet (a connection whose target is being resolved), or none any more (the
    /// moment a stream moves beneath a new layer).
    pub(crate) fn detached() -> AnyStream {
        AnyStream::boxed(Detached)
    }

    /// Puts `make`'s layer over this stream, in place.
    pub(crate) fn wrap(&mut self, make: impl FnOnce(AnyStream) -> AnyStream) {
        let inner = std::mem::replace(self, AnyStream::detached());
        *self = make(inner);
    }

    #[inline]
    fn get(&self) -> &dyn Stream {
        match self {
            AnyStream::Tcp(socket) => socket,
            AnyStream::Boxed(stream) => &***stream,
        }
    }

    #[inline]
    fn get_mut(&mut self) -> &mut dyn Stream {
        match self {
            AnyStream::Tcp(socket) => socket,
            AnyStream::Boxed(stream) => &mut ***stream,
        }
    }
}

// Every method matches rather than going through `get`: the TCP arm is then a static call
// the compiler can inline into the read loop and the flush.
impl Stream for AnyStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        match self {
            AnyStream::Tcp(socket) => socket.read(buf, state),
            AnyStream::Boxed(stream) => stream.read(buf, state),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            AnyStream::Tcp(socket) => io::Write::write_vectored(socket, bufs),
            AnyStream::Boxed(stream) => stream.write_vectored(bufs),
        }
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            AnyStream::Tcp(socket) => io::Write::write(socket, buf),
            AnyStream::Boxed(stream) => Stream::write(&mut ***stream, buf),
        }
    }

    fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
        match self {
            AnyStream::Tcp(socket) => socket.send_file(segment),
            AnyStream::Boxed(stream) => stream.send_file(segment),
        }
    }

    #[inline]
    fn write_queue(
        &mut self,
        queue: &mut WriteQueue,
        pool: &mut BufferPool,
        bits: &mut Bits,
    ) -> Result<usize, Fault> {
        match self {
            AnyStream::Tcp(socket) => write_raw(socket, queue, pool, bits),
            AnyStream::Boxed(stream) => stream.write_queue(queue, pool, bits),
        }
    }

    #[inline]
    fn has_output(&self) -> bool {
        match self {
            AnyStream::Tcp(_) => false,
            AnyStream::Boxed(stream) => stream.has_output(),
        }
    }

    #[inline]
    fn input_waiting(&self) -> bool {
        match self {
            AnyStream::Tcp(_) => false,
            AnyStream::Boxed(stream) => stream.input_waiting(),
        }
    }

    fn finish(&mut self, pool: &mut BufferPool, bits: &mut Bits) -> Result<bool, Fault> {
        match self {
            AnyStream::Tcp(_) => Ok(true),
            AnyStream::Boxed(stream) => stream.finish(pool, bits),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.get_mut().shutdown_write()
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.get_mut().take_error()
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.get_mut().register(registry, token)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.get_mut().deregister(registry)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        self.get().peer_addr()
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.get().local_addr()
    }

    fn socket(&self) -> Option<SockRef<'_>> {
        self.get().socket()
    }

    #[inline]
    fn tls(&self) -> Option<&TlsStream> {
        match self {
            AnyStream::Tcp(_) => None,
            AnyStream::Boxed(stream) => stream.tls(),
        }
    }

    #[inline]
    fn tls_mut(&mut self) -> Option<&mut TlsStream> {
        match self {
            AnyStream::Tcp(_) => None,
            AnyStream::Boxed(stream) => stream.tls_mut(),
        }
    }

    fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        self.get().memory_peer()
    }

    fn unix(&self) -> Option<&UnixSocketStream> {
        self.get().unix()
    }

    fn peer_credentials(&self) -> Option<io::Result<Credentials>> {
        self.get().peer_credentials()
    }

    fn unix_mut(&mut self) -> Option<&mut UnixSocketStream> {
        self.get_mut().unix_mut()
    }
}

/// The stream of a connection that has none: every operation fails as not connected.
struct Detached;

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "no stream")
}

impl Stream for Detached {
    fn read(&mut self, _buf: &mut [u8], _state: &mut ReadState<'_>) -> Result<Input, Fault> {
        Ok(Input::Pending)
    }

    fn write_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(not_connected())
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        Err(not_connected())
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    fn register(&mut self, _registry: &Registry, _token: Token) -> io::Result<()> {
        Ok(())
    }

    fn deregister(&mut self, _registry: &Registry) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<Address> {
        Err(not_connected())
    }

    fn local_addr(&self) -> io::Result<Address> {
        Err(not_connected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_takes_two_words_in_a_connection() {
        assert_eq!(std::mem::size_of::<AnyStream>(), 16);
    }

    #[test]
    fn a_layer_failure_reaches_the_protocol_as_tls_and_a_socket_failure_as_its_kind() {
        let tls = DisconnectReason::from(Fault::Tls(TlsError::NotTls));
        assert!(
            matches!(tls, DisconnectReason::Tls(TlsError::NotTls)),
            "{tls:?}"
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let reset = DisconnectReason::from(Fault::Io(reset));
        assert!(matches!(reset, DisconnectReason::Reset(_)), "{reset:?}");
    }
}
