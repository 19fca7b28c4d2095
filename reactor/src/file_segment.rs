//! A range of a file queued on a connection like bytes: sent by the kernel from the page cache
//! (`sendfile(2)`) on plain TCP, read into a pooled block and written on every other stream
//! (TLS must encrypt it; the in-memory test peer copies it).
//!
//! A file read can block on a slow disk, which would stall every connection of the reactor, so
//! the bytes of a segment should be in the page cache before it is queued:
//! [`FileSegment::is_cached`] asks, without waiting, and [`FileSegment::load`] puts them there,
//! blocking; both are meant for the thread pool
//! ([`Reactor::call_in_thread`](crate::Reactor::call_in_thread)). It asks the kernel to send
//! the range to `/dev/null`: the kernel reads the pages into its cache, waits for the disk,
//! and discards nothing but page references, so loading copies no byte in user space.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

/// Bytes `offset..offset + len` of a file, to queue on a connection
/// ([`Context::write_file`](crate::Context::write_file),
/// [`Reactor::write_file_to`](crate::Reactor::write_file_to)). Cheap to clone: the file is
/// shared, so a server can queue one window of a file while the thread pool loads the next.
///
/// The queue counts a segment's bytes as queued (watermarks, `queued_bytes`, write progress
/// see them as any others) although they take no memory until they are sent. Each flush
/// sends a segment until the socket would block: queue a large file in windows (the HTTP
/// server's static files use 1 MiB) so that one fast reader cannot hold the reactor's turn
/// for a whole file.
///
/// If the file shrinks below the segment before it is sent, the connection fails (its
/// protocol hears `connection_lost` with the error): the bytes promised cannot be sent.
#[derive(Debug, Clone)]
pub struct FileSegment {
    file: Arc<File>,
    offset: u64,
    len: u64,
}

impl FileSegment {
    /// Bytes `offset..offset + len` of `file`. The file's own position is neither used nor
    /// moved: every read and `sendfile` names its offset.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> FileSegment {
        FileSegment { file, offset, len }
    }

    /// The file.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Where the bytes not yet sent start in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes not yet sent.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether every byte was sent (or the segment was empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the segment's bytes into the page cache and waits until they are there, so
    /// that sending them later does not wait for the disk. **Blocking**: call it in the
    /// thread pool, never on the reactor thread.
    ///
    /// The kernel sends the range to `/dev/null` (`sendfile(2)`): no copy in user space.
    /// Where it cannot (a file system without that support), the bytes are read into a
    /// scratch buffer and dropped, which loads them all the same. An error is the file's:
    /// it could not be read, or it is shorter than the segment (`UnexpectedEof`).
    pub fn load(&self) -> io::Result<()> {
        let (mut offset, end) = (self.offset, self.offset + self.len);
        if let Some(null) = dev_null() {
            while offset < end {
                let want = chunk(end - offset);
                match rustix::fs::sendfile(null, &*self.file, Some(&mut offset), want) {
                    Ok(0) => return Err(shrank()),
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut scratch = vec![0; chunk(end - offset).min(LOAD_BUFFER)];
        while offset < end {
            let want = chunk(end - offset).min(scratch.len());
            match self.file.read_at(&mut scratch[..want], offset) {
                Ok(0) => return Err(shrank()),
                Ok(n) => offset += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the segment's bytes look to be in the page cache already, asked without
    /// waiting: a one-byte read that may not wait for the disk (`preadv2(RWF_NOWAIT)`) at
    /// its first byte, every 128 KiB after it, and its last byte. Cheap (a system
    /// call per 128 KiB, no copy to speak of), where [`load`](FileSegment::load) walks every
    /// page: call it first, and load only a segment that is not cached. Not a guarantee: a
    /// page evicted between two probes (under memory pressure) is not seen.
    pub fn is_cached(&self) -> bool {
        if self.len == 0 {
            return true;
        }
        let last = self.offset + self.len - 1;
        let mut at = self.offset;
        loop {
            if !cached_at(&self.file, at.min(last)) {
                return false;
            }
            if at >= last {
                return true;
            }
            at += PROBE_STRIDE;
        }
    }

    /// Drops the first `n` bytes, which were sent.
    pub(crate) fn advance(&mut self, n: usize) {
        let n = (n as u64).min(self.len);
        self.offset += n;
        self.len -= n;
    }

    /// Reads the next bytes of the segment into `buf` (as many as fit), without consuming
    /// them: the copy that a stream without `sendfile` writes.
    pub(crate) fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        let want = chunk(self.len).min(buf.len());
        loop {
            return match self.file.read_at(&mut buf[..want], self.offset) {
                Ok(0) if want > 0 => Err(shrank()),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Sends the next bytes of the segment to `socket` with `sendfile(2)`, without consuming
    /// them. `None` if the kernel cannot send this file that way (the caller copies instead).
    pub(crate) fn send_to(&self, socket: impl std::os::fd::AsFd) -> Option<io::Result<usize>> {
        let mut offset = self.offset;
        loop {
            return match rustix::fs::sendfile(
                &socket,
                &*self.file,
                Some(&mut offset),
                chunk(self.len),
            ) {
                Ok(0) if self.len > 0 => Some(Err(shrank())),
                Ok(n) => Some(Ok(n)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => None,
                Err(e) => Some(Err(e.into())),
            };
        }
    }
}

/// How far apart [`FileSegment::is_cached`] probes: Linux's default read-ahead (128 KiB), the
/// least unit in which a file read in order comes into the cache together. (A stride of
/// 64 KiB made 17 system calls per cached MiB where nginx's worker makes 6 in all.)
const PROBE_STRIDE: u64 = 128 * 1024;

/// Whether the byte at `offset` of `file` is in the page cache (a read that may not wait).
fn cached_at(file: &File, offset: u64) -> bool {
    let mut byte = [0u8; 1];
    let mut bufs = [std::io::IoSliceMut::new(&mut byte)];
    matches!(
        rustix::io::preadv2(file, &mut bufs, offset, rustix::io::ReadWriteFlags::NOWAIT),
        Ok(1)
    )
}

/// The scratch buffer of [`FileSegment::load`] where the kernel cannot load by itself.
const LOAD_BUFFER: usize = 64 * 1024;

/// The most one `sendfile` or read is asked for (Linux sends at most about 2 GiB a call).
fn chunk(len: u64) -> usize {
    len.min(1 << 30) as usize
}

fn shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file shrank while being sent",
    )
}

/// `/dev/null`, opened once for the process (`None` if it cannot be).
fn dev_null() -> Option<&'static File> {
    static NULL: OnceLock<Option<File>> = OnceLock::new();
    NULL.get_or_init(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .ok()
    })
    .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, Arc<File>) {
        let path = std::env::temp_dir().join(format!(
            "torsion-file-segment-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        (path, file)
    }

    #[test]
    fn load_reads_the_range_and_tells_a_short_file() {
        let (path, file) = temp_file("load", &[7u8; 100_000]);
        FileSegment::new(file.clone(), 10, 99_990).load().unwrap();
        let error = FileSegment::new(file, 50_000, 50_001).load().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_segment_just_written_is_cached_and_one_past_the_end_is_not() {
        let (path, file) = temp_file("cached", &[1u8; 300_000]);
        assert!(FileSegment::new(file.clone(), 0, 300_000).is_cached());
        assert!(FileSegment::new(file.clone(), 1000, 0).is_cached());
        assert!(!FileSegment::new(file, 200_000, 100_001).is_cached());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn load_brings_evicted_pages_back_into_the_cache() {
        let (path, file) = temp_file("evicted", &[3u8; 1 << 20]);
        file.sync_all().unwrap();
        let whole = std::num::NonZeroU64::new(1 << 20);
        rustix::fs::fadvise(&*file, 0, whole, rustix::fs::Advice::DontNeed).unwrap();
        let segment = FileSegment::new(file, 0, 1 << 20);
        if segment.is_cached() {
            // tmpfs and some others keep their pages: nothing to evict, nothing to show.
            eprintln!("skipped: this file system did not evict the file's pages");
        } else {
            segment.load().unwrap();
            assert!(segment.is_cached());
        }
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn reads_start_at_the_offset_and_advance_consumes() {
        let data: Vec<u8> = (0..=255).collect();
        let (path, file) = temp_file("read", &data);
        let mut segment = FileSegment::new(file, 10, 20);
        let mut buf = [0u8; 8];
        assert_eq!(segment.read_into(&mut buf).unwrap(), 8);
        assert_eq!(buf, [10, 11, 12, 13, 14, 15, 16, 17]);
        segment.advance(15);
        assert_eq!((segment.offset(), segment.len()), (25, 5));
        let mut buf = [0u8; 64];
        assert_eq!(segment.read_into(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], &[25, 26, 27, 28, 29]);
        segment.advance(5);
        assert!(segment.is_empty());
        let _ = std::fs::remove_file(path);
    }
}
