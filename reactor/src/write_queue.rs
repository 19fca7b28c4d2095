//! A connection's outgoing bytes: small writes coalesce into one buffer, large `Bytes` are
//! queued without a copy, and everything leaves in as few `writev` calls as the kernel allows.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes, BytesMut};

/// `Bytes` up to this size are copied into the coalescing buffer rather than queued as their
/// own chunk: copying a few hundred bytes is cheaper than an extra iovec and refcount.
const COPY_THRESHOLD: usize = 512;

/// Most iovecs handed to one `writev`; Linux allows 1024, and 64 already covers any queue that
/// fits in a socket buffer.
const MAX_IOVECS: usize = 64;

/// Bytes queued for one connection, in write order.
///
/// Invariant: every byte in `chunks` was written before every byte in `tail`. An empty queue
/// holds no heap memory, so an idle connection costs nothing here.
#[derive(Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Bytes>,
    chunk_bytes: usize,
    tail: BytesMut,
}

impl WriteQueue {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.chunk_bytes + self.tail.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a copy of `data`.
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
    }

    /// Queues `data` without copying it (unless it is small).
    pub(crate) fn push_bytes(&mut self, data: Bytes) {
        if data.len() <= COPY_THRESHOLD {
            self.push_slice(&data);
            return;
        }
        self.seal_tail();
        self.chunk_bytes += data.len();
        self.chunks.push_back(data);
    }

    /// Moves the coalescing buffer into the chunk list so later chunks follow it in order.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let sealed = self.tail.split().freeze();
            self.chunk_bytes += sealed.len();
            self.chunks.push_back(sealed);
        }
    }

    /// Writes as much as `sink` takes until it would block or the queue is empty. Returns the
    /// number of bytes written; `WouldBlock` is not an error here, `Interrupted` is retried.
    pub(crate) fn write_to<W: Write>(&mut self, sink: &mut W) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_empty() {
            let n = match self.write_once(sink) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.consume(n);
        }
        self.release_if_empty();
        Ok(total)
    }

    /// One `writev` of the queue's head.
    fn write_once<W: Write>(&self, sink: &mut W) -> io::Result<usize> {
        if self.chunks.is_empty() {
            return sink.write(&self.tail);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for chunk in self.chunks.iter().take(MAX_IOVECS) {
            slices[count] = IoSlice::new(chunk);
            count += 1;
        }
        if count < MAX_IOVECS && !self.tail.is_empty() {
            slices[count] = IoSlice::new(&self.tail);
            count += 1;
        }
        sink.write_vectored(&slices[..count])
    }

    /// Drops the first `n` queued bytes, which the kernel has taken.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail.advance(n);
                return;
            };
            let taken = n.min(front.len());
            front.advance(taken);
            self.chunk_bytes -= taken;
            n -= taken;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// Drops everything queued (an abort).
    pub(crate) fn clear(&mut self) {
        *self = WriteQueue::default();
    }

    /// Gives the buffers' memory back once drained, keeping idle connections free of heap
    /// memory. The cost is one allocation per burst of writes, small next to the syscalls.
    fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink taking at most `limit` bytes per call, then refusing with WouldBlock once
    /// `capacity` is used up.
    struct Sink {
        out: Vec<u8>,
        limit: usize,
        capacity: usize,
        calls: usize,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            let room = self.capacity - self.out.len();
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut budget = self.limit.min(room);
            let mut n = 0;
            for b in bufs {
                let take = budget.min(b.len());
                self.out.extend_from_slice(&b[..take]);
                budget -= take;
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink(limit: usize, capacity: usize) -> Sink {
        Sink {
            out: Vec::new(),
            limit,
            capacity,
            calls: 0,
        }
    }

    #[test]
    fn small_writes_coalesce_into_one_syscall() {
        let mut q = WriteQueue::default();
        for i in 0..10u8 {
            q.push_slice(&[i; 3]);
        }
        let mut s = sink(usize::MAX, usize::MAX);
        assert_eq!(q.write_to(&mut s).unwrap(), 30);
        assert_eq!(s.calls, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn order_is_kept_across_copies_and_chunks_with_partial_writes() {
        let mut q = WriteQueue::default();
        let mut expected = Vec::new();
        for i in 0..50u32 {
            let data: Vec<u8> = (0..(i * 97 % 1500)).map(|b| (b + i) as u8).collect();
            expected.extend_from_slice(&data);
            if i % 2 == 0 {
                q.push_slice(&data);
            } else {
                q.push_bytes(Bytes::from(data));
            }
        }
        assert_eq!(q.len(), expected.len());
        let mut s = sink(777, usize::MAX);
        q.write_to(&mut s).unwrap();
        assert_eq!(s.out, expected);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn would_block_keeps_the_rest_queued() {
        let mut q = WriteQueue::default();
        q.push_bytes(Bytes::from(vec![7u8; 10_000]));
        q.push_slice(b"tail");
        let mut s = sink(4096, 6000);
        assert_eq!(q.write_to(&mut s).unwrap(), 6000);
        assert_eq!(q.len(), 4004);
        s.capacity = usize::MAX;
        assert_eq!(q.write_to(&mut s).unwrap(), 4004);
        assert_eq!(&s.out[9_996..], &[7, 7, 7, 7, b't', b'a', b'i', b'l'][..]);
    }

    #[test]
    fn a_drained_queue_holds_no_memory() {
        let mut q = WriteQueue::default();
        q.push_slice(&[1; 100]);
        q.push_bytes(Bytes::from(vec![2u8; 4096]));
        q.write_to(&mut sink(usize::MAX, usize::MAX)).unwrap();
        assert_eq!(q.tail.capacity(), 0);
        assert_eq!(q.chunks.capacity(), 0);
    }
}
