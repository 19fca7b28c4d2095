//! The TLS stage's two ciphertext buffers (records received, records to send), and the pool
//! they come from and go back to. rustls's unbuffered API works on buffers its caller owns:
//! it decrypts received records in place in the one, and encrypts into the other.
//!
//! Every buffer is [`CIPHER_BUFFER_SIZE`] bytes, zeroed once when first made and reused from
//! then on. A connection holds one only while it has ciphertext in it: when a buffer empties
//! it goes back to the pool, so an idle TLS connection holds none. The pool lives per thread
//! (a reactor is single-threaded) rather than on the reactor because the flush path is given
//! only the connection and the write queue's pool; it keeps at most [`POOL_LIMIT`] spare
//! buffers, so a burst of busy connections leaves no more than that behind.

use std::cell::RefCell;

/// What a socket read may bring at once (the reactor reads plain TCP 64 KiB at a time too).
pub(crate) const READ_SIZE: usize = 64 * 1024;

/// The largest TLS record on the wire: a 5-byte header and at most 2^14 + 2048 bytes of
/// ciphertext (RFC 5246 §6.2.3; TLS 1.3 allows less, RFC 8446 §5.2).
pub(crate) const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

/// The size of every ciphertext buffer: one maximal record (an incomplete one waiting for its
/// end) plus a read's worth. The same size serves the outgoing side: a read's worth of
/// plaintext encrypted, with room to spare for the records' overhead.
pub(crate) const CIPHER_BUFFER_SIZE: usize = READ_SIZE + MAX_RECORD;

/// Spare buffers kept per thread.
pub(crate) const POOL_LIMIT: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from the pool, or a new one.
fn take() -> Vec<u8> {
    POOL.with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| vec![0; CIPHER_BUFFER_SIZE])
}

/// Gives a buffer back to the pool (or frees it if the pool is full or it grew past the
/// standard size).
fn give(buf: Vec<u8>) {
    if buf.len() != CIPHER_BUFFER_SIZE {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_LIMIT {
            pool.push(buf);
        }
    });
}

/// Ciphertext waiting in a buffer: `buf[start..end]`. Holds no heap memory while empty.
#[derive(Default)]
pub(crate) struct CipherBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl CipherBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    /// The ciphertext waiting (read, or to send).
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The ciphertext waiting, to decrypt in place.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Drops `n` bytes from the front (sent, or processed by rustls); an emptied buffer goes
    /// back to the pool.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
            give(std::mem::take(&mut self.buf));
        }
    }

    /// Room after the data, at least `at_least` bytes (taking a buffer from the pool, moving
    /// the data to the front, growing past the standard size only if that is not enough).
    pub(crate) fn spare(&mut self, at_least: usize) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = take();
        }
        if self.buf.len() - self.end < at_least && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < at_least {
            self.buf.resize(self.end + at_least, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Room after the data as it is (no move, no growth), taking a buffer if none is held.
    pub(crate) fn room(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = take();
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were written into the room given by `spare` or `room`.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
        if self.is_empty() {
            self.consume(0);
        }
    }

    /// Appends `bytes` (handed-back ciphertext).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Heap bytes held.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_buffer_holds_no_memory_and_is_reused() {
        let mut b = CipherBuffer::default();
        assert_eq!(b.capacity(), 0);
        b.extend(b"hello");
        assert_eq!(b.data(), b"hello");
        let room = b.room().len();
        assert_eq!(room, CIPHER_BUFFER_SIZE - 5);
        b.consume(2);
        assert_eq!(b.data(), b"llo");
        b.consume(3);
        assert_eq!(b.capacity(), 0, "back to the pool");
        b.extend(b"again");
        assert_eq!(b.data(), b"again");
    }

    #[test]
    fn asking_for_more_room_moves_the_data_to_the_front_then_grows() {
        let mut b = CipherBuffer::default();
        b.extend(&[1; 100]);
        b.consume(90);
        let room = b.spare(CIPHER_BUFFER_SIZE - 10).len();
        assert_eq!(room, CIPHER_BUFFER_SIZE - 10);
        assert_eq!(b.data(), &[1; 10]);
        assert!(b.spare(CIPHER_BUFFER_SIZE).len() >= CIPHER_BUFFER_SIZE);
        assert_eq!(b.data(), &[1; 10]);
    }
}
