//! The flush side of the stage: acting on the state rustls returns while the reactor flushes,
//! and encrypting the write queue into the outgoing buffer. Part of the stage module (its
//! rustls calls belong with `stage.rs`'s), split off so neither file passes ~600 lines.

use std::io::{self, IoSlice, Write};

use rustls::unbuffered::{ConnectionState, EncryptError, UnbufferedStatus, WriteTraffic};

use super::{on_common, CloseNotify, Step, MAX_PLAINTEXT, RECORD_OVERHEAD};
use crate::tls::buffers::CipherBuffer;
use crate::write_queue::{BufferPool, Sink, WriteQueue};

/// What a flush hands the state rustls returns.
pub(super) struct Writing<'a> {
    pub(super) outgoing: &'a mut CipherBuffer,
    pub(super) queue: &'a mut WriteQueue,
    pub(super) pool: &'a mut BufferPool,
    pub(super) held: &'a mut Vec<u8>,
    pub(super) close_notify: &'a mut CloseNotify,
}

impl Writing<'_> {
    pub(super) fn on<Data>(
        &mut self,
        status: UnbufferedStatus<'_, '_, Data>,
    ) -> (usize, Result<Step, rustls::Error>) {
        let discard = status.discard;
        let step = match status.state {
            Err(e) => Err(e),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => self.encrypt(&mut traffic),
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                // A record decrypted by the read that completed the handshake, which the
                // protocol (pausing in `connection_made`) has not taken: rustls will not let
                // anything be encrypted before it is, so it waits here for the reader.
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(record) => self.held.extend_from_slice(record.payload),
                        Err(e) => return (discard, Err(e)),
                    }
                }
                Ok(Step::Again)
            }
            Ok(state) => on_common(state, self.outgoing),
        };
        (discard, step)
    }

    /// Encrypts the queue into the outgoing buffer while it has room, then `close_notify`
    /// if asked for and nothing is left before it.
    fn encrypt<Data>(
        &mut self,
        traffic: &mut WriteTraffic<'_, Data>,
    ) -> Result<Step, rustls::Error> {
        if !self.queue.is_empty() {
            let mut sink = EncryptSink {
                traffic,
                outgoing: self.outgoing,
            };
            if let Err(e) = self.queue.write_to(&mut sink, self.pool) {
                return Err(rustls::Error::General(e.to_string()));
            }
        }
        if *self.close_notify == CloseNotify::Asked && self.queue.is_empty() {
            let n = match traffic.queue_close_notify(self.outgoing.room()) {
                Ok(n) => n,
                Err(EncryptError::InsufficientSize(s)) => {
                    let room = self.outgoing.spare(s.required_size);
                    traffic
                        .queue_close_notify(room)
                        .map_err(|e| rustls::Error::General(e.to_string()))?
                }
                Err(e) => return Err(rustls::Error::General(e.to_string())),
            };
            self.outgoing.filled(n);
            *self.close_notify = CloseNotify::Done;
        }
        Ok(Step::Settled)
    }
}

/// rustls's encryption as a sink for the write queue: a full outgoing buffer reads as
/// `WouldBlock`, so the queue keeps the rest.
struct EncryptSink<'a, 'c, Data> {
    traffic: &'a mut WriteTraffic<'c, Data>,
    outgoing: &'a mut CipherBuffer,
}

impl<Data> EncryptSink<'_, '_, Data> {
    /// Encrypts as much of `data` as fits in the room left.
    fn encrypt_some(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.outgoing.room();
        let records = room.len() / (MAX_PLAINTEXT + RECORD_OVERHEAD) + 1;
        let mut take = data
            .len()
            .min(room.len().saturating_sub(records * RECORD_OVERHEAD));
        while take > 0 {
            match self.traffic.encrypt(&data[..take], room) {
                Ok(n) => {
                    self.outgoing.filled(n);
                    return Ok(take);
                }
                Err(EncryptError::InsufficientSize(_)) => take /= 2,
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        Ok(0)
    }
}

/// A file segment is read into a block and encrypted from there.
impl<Data> Sink for EncryptSink<'_, '_, Data> {}

impl<Data> Write for EncryptSink<'_, '_, Data> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut total = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            let n = self.encrypt_some(buf)?;
            total += n;
            if n < buf.len() {
                break;
            }
        }
        match total {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
