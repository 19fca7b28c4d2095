//! A connection's outgoing bytes: small writes coalesce into one buffer, large `Bytes` are
//! queued without a copy, and everything leaves in as few `writev` calls as the kernel allows.
//!
//! Copied bytes go into *blocks* of at most [`BLOCK_CAPACITY`] (the size of one read from the
//! reactor's read buffer): a coalescing buffer grows up to a block and then a new one is
//! started, rather than one buffer growing (and being copied by `realloc`) to whatever a turn
//! queued. Drained blocks go back to a bounded reactor-wide [`BufferPool`], so neither a busy
//! connection nor a bulk transfer allocates per write, while an idle connection holds no heap
//! memory.
//!
//! A [`FileSegment`] is queued as one more chunk, in order with the bytes around it: a sink
//! that can send a file by itself (a TCP socket, with `sendfile`) is handed it; for any other
//! sink the queue reads the segment's next bytes into a pooled block just before writing them.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

use crate::file_segment::FileSegment;

/// Where a queue is written: bytes with `write`/`write_vectored`, and a file segment by the
/// sink itself if it can.
pub(crate) trait Sink: Write {
    /// Sends the next bytes of `segment` without copying them into user space (consuming
    /// nothing: the queue advances the segment by what this returns). `None`: the sink
    /// cannot, and the queue copies the bytes into a block and writes that instead.
    fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
        let _ = segment;
        None
    }
}

/// `Bytes` up to this size are copied into the coalescing buffer rather than queued as their
/// own chunk: copying a few hundred bytes is cheaper than an extra iovec and refcount.
const COPY_THRESHOLD: usize = 512;

/// Most iovecs handed to one `writev`; Linux allows 1024, and 64 already covers any queue that
/// fits in a socket buffer.
const MAX_IOVECS: usize = 64;

/// The largest coalescing buffer: one full read of the reactor's read buffer, so an echo of
/// bulk data copies each read into one block.
const BLOCK_CAPACITY: usize = crate::connections::READ_BUFFER_SIZE;

/// Buffers kept for reuse. With blocks of at most [`BLOCK_CAPACITY`], the pool holds at most
/// 64 × 64 KiB = 4 MiB per reactor (and holds it only after a burst needed that many).
const POOLED_BUFFERS: usize = 64;

/// Drained coalescing buffers, shared by all the connections of a reactor.
///
/// A turn fills one buffer per connection that writes and drains most of them at its end;
/// reusing them spares an allocation and a free per write (about a third of the reactor's
/// user-space instructions per echoed message, measured with callgrind). For bulk transfers
/// reuse matters more: a 64 KiB block freed after every flush is memory glibc returns to the
/// kernel (`madvise(MADV_DONTNEED)` when it trims the thread's heap) and the next turn faults
/// back in, page by page (see `docs/performance.md`).
#[derive(Default)]
pub(crate) struct BufferPool {
    buffers: Vec<Vec<u8>>,
}

impl BufferPool {
    fn take(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    fn give(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() <= BLOCK_CAPACITY && self.buffers.len() < POOLED_BUFFERS {
            buffer.clear();
            self.buffers.push(buffer);
        }
    }
}

/// One queued piece, in write order.
enum Chunk {
    /// A full coalescing buffer whose first `sent` bytes are written; back to the pool once
    /// drained.
    Block { buf: Vec<u8>, sent: usize },
    /// Bytes queued without a copy.
    Shared(Bytes),
    /// A range of a file, not yet read.
    File(FileSegment),
}

impl Chunk {
    /// The unsent bytes in memory (none for a file segment).
    fn unsent(&self) -> &[u8] {
        match self {
            Chunk::Block { buf, sent } => &buf[*sent..],
            Chunk::Shared(bytes) => bytes,
            Chunk::File(_) => &[],
        }
    }

    /// How many bytes are left to send.
    fn unsent_len(&self) -> usize {
        match self {
            Chunk::File(segment) => len_of(segment),
            other => other.unsent().len(),
        }
    }
}

/// A segment's length as queue bytes (a segment longer than the address space is already
/// past any watermark).
fn len_of(segment: &FileSegment) -> usize {
    usize::try_from(segment.len()).unwrap_or(usize::MAX)
}

/// Bytes queued for one connection, in write order.
///
/// Invariant: every byte in `chunks` was written before every byte in `tail`. An empty queue
/// holds no heap memory, so an idle connection costs nothing here.
#[derive(Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Chunk>,
    chunk_bytes: usize,
    /// The coalescing buffer (at most [`BLOCK_CAPACITY`]); its first `tail_sent` bytes are
    /// already written.
    tail: Vec<u8>,
    tail_sent: usize,
}

impl WriteQueue {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.chunk_bytes + self.tail.len() - self.tail_sent
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a copy of `data`, filling the coalescing buffer up to a block and continuing in
    /// new blocks from the pool.
    #[inline]
    pub(crate) fn push_slice(&mut self, data: &[u8], pool: &mut BufferPool) {
        if self.tail.capacity() == 0 {
            self.tail = pool.take();
        }
        // The common case, a small write into a buffer with room, stays inline.
        if self.tail.capacity() - self.tail.len() >= data.len() {
            self.tail.extend_from_slice(data);
        } else {
            self.push_slice_in_blocks(data, pool);
        }
    }

    #[inline(never)]
    fn push_slice_in_blocks(&mut self, mut data: &[u8], pool: &mut BufferPool) {
        while !data.is_empty() {
            if self.tail.len() == BLOCK_CAPACITY {
                self.seal_tail();
            }
            if self.tail.capacity() == 0 {
                self.tail = pool.take();
            }
            let n = data.len().min(BLOCK_CAPACITY - self.tail.len());
            self.reserve_in_block(n);
            self.tail.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// Makes room for `n` more bytes in the tail, growing it by doubling but never past a
    /// block (`n` fits in the block).
    fn reserve_in_block(&mut self, n: usize) {
        let len = self.tail.len();
        if self.tail.capacity() - len < n {
            let grown = (len + n).max(2 * self.tail.capacity()).min(BLOCK_CAPACITY);
            self.tail.reserve_exact(grown - len);
        }
    }

    /// Queues `data` without copying it (unless it is small).
    pub(crate) fn push_bytes(&mut self, data: Bytes, pool: &mut BufferPool) {
        if data.len() <= COPY_THRESHOLD {
            self.push_slice(&data, pool);
            return;
        }
        self.seal_tail();
        self.chunk_bytes += data.len();
        self.chunks.push_back(Chunk::Shared(data));
    }

    /// Queues a file segment after everything queued before it.
    pub(crate) fn push_file(&mut self, segment: FileSegment) {
        if segment.is_empty() {
            return;
        }
        self.seal_tail();
        self.chunk_bytes = self.chunk_bytes.saturating_add(len_of(&segment));
        self.chunks.push_back(Chunk::File(segment));
    }

    /// Moves the coalescing buffer into the chunk list so later bytes follow it in order (a
    /// tail already written is just emptied for reuse).
    fn seal_tail(&mut self) {
        if self.tail.len() == self.tail_sent {
            self.tail.clear();
            self.tail_sent = 0;
            return;
        }
        let sent = std::mem::take(&mut self.tail_sent);
        let buf = std::mem::take(&mut self.tail);
        self.chunk_bytes += buf.len() - sent;
        self.chunks.push_back(Chunk::Block { buf, sent });
    }

    /// Writes as much as `sink` takes until it would block or the queue is empty. Returns the
    /// number of bytes written; `WouldBlock` is not an error here, `Interrupted` is retried.
    /// Drained blocks, and the buffer of a drained queue, go back to `pool`.
    pub(crate) fn write_to<W: Sink>(
        &mut self,
        sink: &mut W,
        pool: &mut BufferPool,
    ) -> io::Result<usize> {
        let mut total = 0;
        while !self.is_empty() {
            let written = match self.chunks.front() {
                Some(Chunk::File(segment)) => match sink.send_file(segment) {
                    Some(sent) => sent,
                    None => {
                        self.read_front_file(pool)?;
                        continue;
                    }
                },
                _ => self.write_once(sink),
            };
            let n = match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.consume(n, pool);
        }
        if self.is_empty() {
            self.release(pool);
        }
        Ok(total)
    }

    /// Reads the next bytes of the file segment at the front into a block from the pool,
    /// queued before the rest of the segment: the copy a sink without `sendfile` writes.
    #[inline(never)]
    fn read_front_file(&mut self, pool: &mut BufferPool) -> io::Result<()> {
        let Some(Chunk::File(segment)) = self.chunks.front_mut() else {
            return Ok(());
        };
        let mut buf = pool.take();
        buf.resize(len_of(segment).min(BLOCK_CAPACITY), 0);
        let n = match segment.read_into(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                pool.give(buf);
                return Err(e);
            }
        };
        buf.truncate(n);
        segment.advance(n);
        if segment.is_empty() {
            self.chunks.pop_front();
        }
        self.chunks.push_front(Chunk::Block { buf, sent: 0 });
        Ok(())
    }

    /// One `writev` (or `write`) of the queue's head, up to the first file segment.
    fn write_once<W: Write>(&self, sink: &mut W) -> io::Result<usize> {
        let tail = &self.tail[self.tail_sent..];
        if self.chunks.is_empty() {
            return sink.write(tail);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        let mut before_file = true;
        for chunk in self.chunks.iter().take(MAX_IOVECS) {
            if let Chunk::File(_) = chunk {
                before_file = false;
                break;
            }
            slices[count] = IoSlice::new(chunk.unsent());
            count += 1;
        }
        if before_file && count < MAX_IOVECS && !tail.is_empty() {
            slices[count] = IoSlice::new(tail);
            count += 1;
        }
        sink.write_vectored(&slices[..count])
    }

    /// Drops the first `n` queued bytes, which the kernel has taken; drained blocks go back
    /// to the pool.
    #[inline]
    fn consume(&mut self, n: usize, pool: &mut BufferPool) {
        if self.chunks.is_empty() {
            self.tail_sent += n; // the common case: only the coalescing buffer is queued
        } else {
            self.consume_chunks(n, pool);
        }
    }

    #[inline(never)]
    fn consume_chunks(&mut self, mut n: usize, pool: &mut BufferPool) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail_sent += n;
                return;
            };
            let taken = n.min(front.unsent_len());
            match front {
                Chunk::Block { sent, .. } => *sent += taken,
                Chunk::Shared(bytes) => bytes.advance(taken),
                Chunk::File(segment) => segment.advance(taken),
            }
            self.chunk_bytes -= taken;
            n -= taken;
            if front.unsent_len() == 0 {
                if let Some(Chunk::Block { buf, .. }) = self.chunks.pop_front() {
                    pool.give(buf);
                }
            }
        }
    }

    /// Hands an emptied queue's memory back (the coalescing buffer to the pool), keeping
    /// idle connections free of heap memory.
    fn release(&mut self, pool: &mut BufferPool) {
        self.tail_sent = 0;
        if self.tail.capacity() > 0 {
            pool.give(std::mem::take(&mut self.tail));
        }
        if self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A sink taking at most `limit` bytes per call, then refusing with WouldBlock once
    /// `capacity` is used up; it fails its next calls with `faults` first, and counts calls
    /// and the most slices one call was handed.
    struct Sink {
        out: Vec<u8>,
        limit: usize,
        capacity: usize,
        faults: VecDeque<io::ErrorKind>,
        calls: usize,
        most_slices: usize,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            self.most_slices = self.most_slices.max(bufs.len());
            if let Some(fault) = self.faults.pop_front() {
                return Err(fault.into());
            }
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

    impl super::Sink for Sink {}

    fn sink(limit: usize, capacity: usize) -> Sink {
        Sink {
            out: Vec::new(),
            limit,
            capacity,
            faults: VecDeque::new(),
            calls: 0,
            most_slices: 0,
        }
    }

    #[test]
    fn small_writes_coalesce_into_one_syscall() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        for i in 0..10u8 {
            q.push_slice(&[i; 3], &mut pool);
        }
        let mut s = sink(usize::MAX, usize::MAX);
        assert_eq!(q.write_to(&mut s, &mut pool).unwrap(), 30);
        assert_eq!(s.calls, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn order_is_kept_across_copies_and_chunks_with_partial_writes() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        let mut expected = Vec::new();
        let mut s = sink(777, usize::MAX);
        for i in 0..50u32 {
            let data: Vec<u8> = (0..(i * 97 % 1500)).map(|b| (b + i) as u8).collect();
            expected.extend_from_slice(&data);
            if i % 2 == 0 {
                q.push_slice(&data, &mut pool);
            } else {
                q.push_bytes(Bytes::from(data), &mut pool);
            }
            if i % 7 == 0 {
                // A partial flush in the middle leaves part of the tail written.
                s.capacity = s.out.len() + 1000;
                q.write_to(&mut s, &mut pool).unwrap();
                s.capacity = usize::MAX;
            }
        }
        assert_eq!(q.len(), expected.len() - s.out.len());
        q.write_to(&mut s, &mut pool).unwrap();
        assert_eq!(s.out, expected);
        assert_eq!(q.len(), 0);
    }

    /// More chunks than one `writev` takes, then a tail: the first call carries the first
    /// [`MAX_IOVECS`] chunks and not the tail (which must stay behind the chunks left out), the
    /// second the rest; every byte arrives in order.
    #[test]
    fn a_queue_longer_than_one_writev_keeps_its_tail_behind_every_chunk() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        let mut expected = Vec::new();
        for i in 0..MAX_IOVECS + 6 {
            let data = vec![i as u8; COPY_THRESHOLD + 1];
            expected.extend_from_slice(&data);
            q.push_bytes(Bytes::from(data), &mut pool);
        }
        q.push_slice(b"tail", &mut pool);
        expected.extend_from_slice(b"tail");
        let mut s = sink(usize::MAX, usize::MAX);
        assert_eq!(q.write_to(&mut s, &mut pool).unwrap(), expected.len());
        assert_eq!(s.out, expected);
        assert_eq!((s.calls, s.most_slices), (2, MAX_IOVECS));
    }

    /// `Interrupted` is retried at once; any other error but `WouldBlock` goes to the caller,
    /// with nothing unwritten dropped.
    #[test]
    fn interrupted_is_retried_and_other_errors_are_returned() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_slice(b"hello", &mut pool);
        let mut s = sink(usize::MAX, usize::MAX);
        s.faults = [io::ErrorKind::Interrupted; 2].into();
        assert_eq!(q.write_to(&mut s, &mut pool).unwrap(), 5);
        assert_eq!((&s.out[..], s.calls), (&b"hello"[..], 3));
        q.push_slice(b"kept", &mut pool);
        s.faults = [io::ErrorKind::BrokenPipe].into();
        let error = q.write_to(&mut s, &mut pool).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(q.len(), 4, "nothing unwritten is dropped");
    }

    #[test]
    fn would_block_keeps_the_rest_queued() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_bytes(Bytes::from(vec![7u8; 10_000]), &mut pool);
        q.push_slice(b"tail", &mut pool);
        let mut s = sink(4096, 6000);
        assert_eq!(q.write_to(&mut s, &mut pool).unwrap(), 6000);
        assert_eq!(q.len(), 4004);
        s.capacity = usize::MAX;
        assert_eq!(q.write_to(&mut s, &mut pool).unwrap(), 4004);
        assert_eq!(&s.out[9_996..], &[7, 7, 7, 7, b't', b'a', b'i', b'l'][..]);
    }

    #[test]
    fn a_drained_queue_holds_no_memory_and_its_buffer_is_reused() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_slice(&[1; 100], &mut pool);
        q.push_bytes(Bytes::from(vec![2u8; 4096]), &mut pool);
        q.push_slice(&[3; 100], &mut pool);
        q.write_to(&mut sink(usize::MAX, usize::MAX), &mut pool)
            .unwrap();
        assert_eq!(q.tail.capacity(), 0);
        assert_eq!(q.chunks.capacity(), 0);
        assert_eq!(
            pool.buffers.len(),
            2,
            "the sealed block and the tail went to the pool"
        );
        q.push_slice(b"again", &mut pool);
        assert_eq!(pool.buffers.len(), 1, "and came back from it");
    }

    /// A queue that never copied holds no buffer, and draining it gives the pool nothing: an
    /// empty `Vec` there would take a slot and be handed out in place of a real block.
    #[test]
    fn a_queue_that_never_copied_gives_the_pool_nothing() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_bytes(Bytes::from(vec![5u8; COPY_THRESHOLD + 1]), &mut pool);
        q.write_to(&mut sink(usize::MAX, usize::MAX), &mut pool)
            .unwrap();
        assert!(q.is_empty());
        assert!(pool.buffers.is_empty());
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_size() {
        let mut pool = BufferPool::default();
        pool.give(Vec::with_capacity(BLOCK_CAPACITY + 1));
        assert!(pool.buffers.is_empty(), "large buffers are freed, not kept");
        for _ in 0..POOLED_BUFFERS * 2 {
            pool.give(Vec::with_capacity(64));
        }
        assert_eq!(pool.buffers.len(), POOLED_BUFFERS);
    }

    #[test]
    fn copies_fill_blocks_that_never_grow_past_their_capacity() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        let data: Vec<u8> = (0..3 * BLOCK_CAPACITY + 100).map(|i| i as u8).collect();
        q.push_slice(&data[..1000], &mut pool);
        q.push_slice(&data[1000..], &mut pool);
        assert_eq!(q.chunks.len(), 3, "three full blocks sealed");
        for chunk in &q.chunks {
            assert!(matches!(chunk, Chunk::Block { buf, .. } if buf.capacity() == BLOCK_CAPACITY));
        }
        assert_eq!((q.tail.len(), q.len()), (100, data.len()));
        let mut s = sink(10_000, usize::MAX);
        q.write_to(&mut s, &mut pool).unwrap();
        assert_eq!(s.out, data);
        assert_eq!(pool.buffers.len(), 4, "every block went back to the pool");
    }

    /// The coalescing buffer grows by doubling (so a run of small writes reallocates only a
    /// few times) but never past a block, where doubling would take it: a larger buffer
    /// would not go back to the pool.
    #[test]
    fn a_coalescing_buffer_doubles_up_to_a_block_and_no_further() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_slice(&[1; 100], &mut pool);
        q.push_slice(&[2; 10], &mut pool);
        assert_eq!(
            q.tail.capacity(),
            200,
            "doubled, not grown by the 10 bytes asked"
        );
        // More than double: just what is needed, 5/8 of a block.
        q.push_slice(&vec![3; BLOCK_CAPACITY * 5 / 8 - 110], &mut pool);
        assert_eq!(q.tail.capacity(), BLOCK_CAPACITY * 5 / 8);
        // Doubling would make 10/8 of a block; a block is enough for 7/8.
        q.push_slice(&vec![4; BLOCK_CAPACITY / 4], &mut pool);
        assert_eq!(q.tail.capacity(), BLOCK_CAPACITY);
        q.write_to(&mut sink(usize::MAX, usize::MAX), &mut pool)
            .unwrap();
        assert_eq!(pool.buffers.len(), 1, "the block went back to the pool");
    }

    #[test]
    fn a_bulk_stream_reuses_its_blocks_from_the_pool() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        let read = vec![9u8; BLOCK_CAPACITY];
        let mut s = sink(usize::MAX, usize::MAX);
        for _ in 0..3 {
            for _ in 0..4 {
                q.push_slice(&read, &mut pool);
            }
            q.write_to(&mut s, &mut pool).unwrap();
        }
        assert_eq!(s.out.len(), 12 * BLOCK_CAPACITY);
        assert_eq!(pool.buffers.len(), 4, "four blocks, allocated once, reused");
        assert!(pool.buffers.iter().all(|b| b.capacity() == BLOCK_CAPACITY));
    }

    /// A file of `len` pattern bytes, shared.
    fn pattern_file(
        name: &str,
        len: usize,
    ) -> (std::path::PathBuf, std::sync::Arc<std::fs::File>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let path =
            std::env::temp_dir().join(format!("torsion-write-queue-{}-{name}", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let file = std::sync::Arc::new(std::fs::File::open(&path).unwrap());
        (path, file, data)
    }

    /// A sink that sends file segments "by itself" (reading them), `limit` bytes a call.
    struct FileSink(Sink);

    impl Write for FileSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.0.write_vectored(bufs)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl super::Sink for FileSink {
        fn send_file(&mut self, segment: &FileSegment) -> Option<io::Result<usize>> {
            let mut buf = vec![0; segment.len().min(self.0.limit as u64) as usize];
            let n = segment.read_into(&mut buf).unwrap();
            Some(self.0.write(&buf[..n]))
        }
    }

    #[test]
    fn a_file_segment_goes_out_in_order_between_bytes_by_copy_or_by_the_sink() {
        let (path, file, data) = pattern_file("order", 3 * BLOCK_CAPACITY + 1234);
        for by_sink in [false, true] {
            let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
            q.push_slice(b"head", &mut pool);
            q.push_file(FileSegment::new(
                file.clone(),
                100,
                (data.len() - 200) as u64,
            ));
            q.push_slice(b"tail", &mut pool);
            q.push_file(FileSegment::new(file.clone(), 0, 0));
            assert_eq!(
                q.len(),
                data.len() - 200 + 8,
                "a segment counts as queued bytes"
            );
            let mut out = sink(10_000, 25_000);
            let mut sink = FileSink(sink(10_000, 25_000));
            // Partial flushes: the kernel takes 25,000 bytes at a time.
            for _ in 0..100 {
                let written = if by_sink {
                    q.write_to(&mut sink, &mut pool).unwrap()
                } else {
                    q.write_to(&mut out, &mut pool).unwrap()
                };
                let got = if by_sink { &mut sink.0 } else { &mut out };
                assert!(written > 0 || q.is_empty());
                got.capacity = got.out.len() + 25_000;
                if q.is_empty() {
                    break;
                }
            }
            let got = if by_sink { &sink.0.out } else { &out.out };
            let mut expected = b"head".to_vec();
            expected.extend_from_slice(&data[100..data.len() - 100]);
            expected.extend_from_slice(b"tail");
            assert!(
                *got == expected,
                "by_sink {by_sink}: the bytes arrive in order"
            );
            assert!(q.is_empty());
            assert!(
                pool.buffers.len() <= 2,
                "copies use pooled blocks, one at a time"
            );
        }
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_file_shorter_than_its_segment_fails_the_write() {
        let (path, file, _) = pattern_file("short", 1000);
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_file(FileSegment::new(file, 500, 1000));
        let error = q
            .write_to(&mut sink(usize::MAX, usize::MAX), &mut pool)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_partly_written_block_keeps_its_place_before_later_bytes() {
        let (mut q, mut pool) = (WriteQueue::default(), BufferPool::default());
        q.push_slice(&vec![1u8; BLOCK_CAPACITY], &mut pool);
        let mut s = sink(usize::MAX, 1000);
        q.write_to(&mut s, &mut pool).unwrap();
        q.push_slice(&[2u8; 10], &mut pool);
        q.push_bytes(Bytes::from(vec![3u8; 1000]), &mut pool);
        q.push_slice(&[4u8; 10], &mut pool);
        assert_eq!(q.len(), BLOCK_CAPACITY - 1000 + 1020);
        s.capacity = usize::MAX;
        q.write_to(&mut s, &mut pool).unwrap();
        let mut expected = vec![1u8; BLOCK_CAPACITY];
        expected.extend([2u8; 10]);
        expected.extend([3u8; 1000]);
        expected.extend([4u8; 10]);
        assert_eq!(s.out, expected);
    }
}
