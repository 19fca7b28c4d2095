//! The one buffer every framer keeps: bytes received but not yet handed out, and the cursor
//! over "those bytes, then the chunk being fed" that the framers read through.
//!
//! Why it exists: a frame wholly inside the chunk being fed is handed out as a slice of that
//! chunk (no copy); only what cannot be handed out yet (a trailing partial frame, or the rest of
//! a chunk whose consumer stopped early) is copied here, once. Consumed bytes are dropped from
//! the front lazily, so handing out many buffered frames never shifts the buffer per frame.

/// Above this capacity an emptied buffer gives its memory back, so a connection that once
/// buffered a long frame does not keep that memory while idle.
const KEEP_CAPACITY: usize = 8 * 1024;

/// Bytes received and not yet consumed, oldest first: `buf[start..]`.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    buf: Vec<u8>,
    /// Bytes before this were consumed. They stay until the next `reclaim` or `append`, so a
    /// slice handed out from them stays valid until the consumer asks for the next frame.
    start: usize,
    /// Bytes copied into (or moved inside) the buffer since it was created, for the tests that
    /// prove copying is linear.
    #[cfg(test)]
    pub(crate) copied: usize,
}

impl Backlog {
    /// The unconsumed bytes.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// Index in [`raw`](Backlog::raw) of the first unconsumed byte, so a consumer can name a
    /// range that stays valid after it consumes those bytes.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// The whole storage, consumed bytes included (see [`start`](Backlog::start)).
    pub(crate) fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// Marks `n` more bytes consumed. They stay readable through `raw` until the next
    /// `reclaim` or `append`.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
    }

    /// Takes back the last `n` consumed bytes (they are still stored: no `reclaim` or `append`
    /// may have happened since they were consumed).
    pub(crate) fn unconsume(&mut self, n: usize) {
        self.start -= n.min(self.start);
    }

    /// Drops the consumed bytes if nothing else is left.
    pub(crate) fn reclaim(&mut self) {
        if self.is_empty() {
            self.clear();
        }
    }

    /// Drops everything, consumed or not.
    pub(crate) fn clear(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.start = 0;
    }

    /// Takes every unconsumed byte out.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let rest = self.pending().to_vec();
        self.clear();
        rest
    }

    /// Appends `data` after the unconsumed bytes. The consumed prefix is dropped first when it
    /// is at least as long as what must move, so each byte moves at most once per byte consumed
    /// before it: amortised linear, never a shift per frame.
    pub(crate) fn append(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.is_empty() {
            self.clear();
        } else if self.start > 0 && self.start >= self.len() {
            #[cfg(test)]
            {
                self.copied += self.len();
            }
            self.buf.drain(..self.start);
            self.start = 0;
        }
        #[cfg(test)]
        {
            self.copied += data.len();
        }
        self.buf.extend_from_slice(data);
    }
}

/// What a framer reads from during one `feed`: its backlog first, then the new chunk.
/// Dropping it copies the part of the chunk not read yet into the backlog, so a consumer that
/// stops early (to pause) loses nothing and the next `feed` starts there.
#[derive(Debug)]
pub(crate) struct Input<'b, 'd> {
    pub(crate) backlog: &'b mut Backlog,
    pub(crate) chunk: &'d [u8],
    /// Bytes of `chunk` before this were read.
    pub(crate) pos: usize,
}

impl<'b, 'd> Input<'b, 'd> {
    pub(crate) fn new(backlog: &'b mut Backlog, chunk: &'d [u8]) -> Self {
        Input {
            backlog,
            chunk,
            pos: 0,
        }
    }

    /// The part of the chunk not read yet.
    pub(crate) fn rest(&self) -> &'d [u8] {
        &self.chunk[self.pos..]
    }

    /// The next byte.
    pub(crate) fn next_byte(&mut self) -> Option<u8> {
        if let Some(&byte) = self.backlog.pending().first() {
            self.backlog.consume(1);
            return Some(byte);
        }
        let byte = *self.chunk.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    /// The next `n` bytes as one slice, or `None` if fewer have arrived (then everything
    /// available is kept in the backlog, so the next call after more bytes arrive resumes
    /// without re-reading). The slice is borrowed from the chunk when the bytes all lie there,
    /// else it is assembled in the backlog (each byte copied once).
    pub(crate) fn take(&mut self, n: usize) -> Option<&[u8]> {
        let buffered = self.backlog.len();
        let rest = self.rest();
        if buffered == 0 && rest.len() >= n {
            self.pos += n;
            return Some(&self.chunk[self.pos - n..self.pos]);
        }
        if buffered < n {
            let wanted = (n - buffered).min(rest.len());
            self.backlog.append(&rest[..wanted]);
            self.pos += wanted;
            if self.backlog.len() < n {
                return None;
            }
        }
        let from = self.backlog.start();
        self.backlog.consume(n);
        Some(&self.backlog.raw()[from..from + n])
    }

    /// Drops everything not read yet: after a fatal framing error nothing more is wanted.
    /// Returns whether there was anything to drop.
    pub(crate) fn discard(&mut self) -> bool {
        let any = !self.backlog.is_empty() || self.pos < self.chunk.len();
        self.backlog.clear();
        self.pos = self.chunk.len();
        any
    }
}

impl Drop for Input<'_, '_> {
    fn drop(&mut self) {
        let rest = self.rest();
        self.backlog.append(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_lends_from_the_chunk_when_it_can() {
        let mut backlog = Backlog::default();
        let chunk = b"abcdef";
        let mut input = Input::new(&mut backlog, chunk);
        let got = input.take(4).unwrap();
        assert_eq!(got, b"abcd");
        assert!(std::ptr::eq(got.as_ptr(), chunk.as_ptr()));
        assert_eq!(input.take(3), None);
        drop(input);
        assert_eq!(backlog.pending(), b"ef");
        assert_eq!(backlog.copied, 2);
    }

    #[test]
    fn take_assembles_across_chunks_copying_each_byte_once() {
        let mut backlog = Backlog::default();
        for byte in b"abcd" {
            let mut input = Input::new(&mut backlog, std::slice::from_ref(byte));
            assert_eq!(input.take(5).map(<[u8]>::to_vec), None);
        }
        let mut input = Input::new(&mut backlog, b"ef");
        assert_eq!(input.take(5).unwrap(), b"abcde");
        assert_eq!(input.take(1).unwrap(), b"f");
        drop(input);
        assert_eq!(backlog.copied, 5);
        assert!(backlog.is_empty());
    }

    #[test]
    fn dropping_early_keeps_the_unread_rest_in_order() {
        let mut backlog = Backlog::default();
        let mut input = Input::new(&mut backlog, b"xyz");
        assert_eq!(input.next_byte(), Some(b'x'));
        drop(input);
        let mut input = Input::new(&mut backlog, b"!");
        let bytes: Vec<u8> = std::iter::from_fn(|| input.next_byte()).collect();
        assert_eq!(bytes, b"yz!");
    }

    #[test]
    fn unconsume_restores_bytes_until_the_next_append() {
        let mut backlog = Backlog::default();
        backlog.append(b"hello");
        backlog.consume(5);
        backlog.unconsume(2);
        assert_eq!(backlog.pending(), b"lo");
        backlog.consume(2);
        backlog.reclaim();
        assert_eq!(backlog.raw(), b"");
    }
}
