//! The TLS stage as a [`Stream`]: a layer over any other stream. The connection's read loop and
//! flush treat it as they treat a socket; beneath, it reads ciphertext from its inner stream
//! into the stage, where rustls decrypts it in place, and writes the records it makes to the
//! inner stream. Nothing here calls rustls: the stage (`stage.rs`) does.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::rc::Rc;

use mio::{Registry, Token};
use socket2::SockRef;

use crate::stream::{Bits, Fault, Input, ReadState, Stream};
use crate::testing::MemoryPeer;
use crate::tls::stage::{Plaintext, TlsStream};
use crate::tls::TlsError;
use crate::write_queue::{BufferPool, WriteQueue};
use crate::Address;

impl TlsStream {
    /// What one pass of rustls over the received ciphertext gave, as the reader is told it:
    /// `None` when it gave nothing and more ciphertext is needed.
    fn next_input(&mut self, buf: &mut [u8]) -> Result<Option<Input>, Fault> {
        if let Some(input) = self.after_handshake.take() {
            return Ok(Some(input));
        }
        let plaintext = match self.read_plaintext(buf) {
            Ok(plaintext) => plaintext,
            Err(e) => {
                self.flush_best_effort(); // the alert rustls made, if the socket takes it
                return Err(Fault::Tls(e));
            }
        };
        let input = match plaintext {
            Plaintext::Data(n) => {
                self.delivered = true;
                Some(Input::Data(n))
            }
            Plaintext::CloseNotify => Some(Input::Eof),
            Plaintext::Truncated => Some(Input::Truncated),
            Plaintext::Empty => None,
        };
        if !self.handshake_reported && !self.is_handshaking() {
            // The protocol hears of the handshake's end before anything that came with it.
            self.handshake_reported = true;
            self.after_handshake = input;
            return Ok(Some(Input::HandshakeDone));
        }
        Ok(input)
    }
}

impl Stream for TlsStream {
    /// Processes the ciphertext already received first (handed back by `start_tls`, kept
    /// while reading was paused, or the rest of the last read), then reads the stream
    /// beneath, one read at a time, until rustls has something to tell.
    fn read(&mut self, buf: &mut [u8], state: &mut ReadState<'_>) -> Result<Input, Fault> {
        loop {
            if let Some(input) = self.next_input(buf)? {
                return Ok(input);
            }
            if self.saw_eof() {
                // Everything after EOF is processed and rustls never said how it ended.
                return Ok(Input::Truncated);
            }
            if self.delivered && state.bits.has(Bits::READABLE) {
                // All of the last read is handed over; the reader may flush before the next.
                self.delivered = false;
                return Ok(Input::Refill);
            }
            match self.read_inner(state)? {
                Input::Data(_) => {}
                Input::Eof if self.is_handshaking() || !self.handshake_reported => {
                    return Err(Fault::Tls(TlsError::ClosedDuringHandshake));
                }
                Input::Eof => self.feed_eof(),
                other => return Ok(other),
            }
        }
    }

    fn write_vectored(&mut self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // A layer over a TLS layer would write through this; none is built.
        Err(io::Error::other("raw write to a TLS layer"))
    }

    fn write_queue(
        &mut self,
        queue: &mut WriteQueue,
        pool: &mut BufferPool,
        bits: &mut Bits,
    ) -> Result<usize, Fault> {
        if !bits.has(Bits::WRITABLE) {
            return Ok(0);
        }
        let (sent, blocked) = self.flush(queue, pool)?;
        if blocked {
            bits.clear(Bits::WRITABLE);
        }
        Ok(sent)
    }

    fn has_output(&self) -> bool {
        TlsStream::has_output(self)
    }

    fn input_waiting(&self) -> bool {
        self.after_handshake.is_some() || self.plaintext_waiting()
    }

    /// Sends `close_notify` (once), after everything queued before it.
    fn finish(&mut self, pool: &mut BufferPool, bits: &mut Bits) -> Result<bool, Fault> {
        if !self.close_notify_sent() {
            self.send_close_notify();
            self.write_queue(&mut WriteQueue::default(), pool, bits)?;
        }
        Ok(!TlsStream::has_output(self))
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.inner.register(registry, token)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }

    fn peer_addr(&self) -> io::Result<Address> {
        self.inner.peer_addr()
    }

    fn local_addr(&self) -> io::Result<Address> {
        self.inner.local_addr()
    }

    fn peer_credentials(&self) -> Option<io::Result<crate::Credentials>> {
        self.inner.peer_credentials()
    }

    fn socket(&self) -> Option<SockRef<'_>> {
        self.inner.socket()
    }

    fn tls(&self) -> Option<&TlsStream> {
        Some(self)
    }

    fn tls_mut(&mut self) -> Option<&mut TlsStream> {
        Some(self)
    }

    fn memory_peer(&self) -> Option<Rc<RefCell<MemoryPeer>>> {
        self.inner.memory_peer()
    }
}
