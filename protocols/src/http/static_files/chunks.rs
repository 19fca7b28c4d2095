//! Reading a file, or a range of it, in bounded chunks on demand.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

/// A file's bytes `start..start + len`, handed out in chunks of at most
/// [`chunk_size`](FileChunks::with_chunk_size) bytes, one per
/// [`next_chunk`](FileChunks::next_chunk) call. Nothing is read ahead: memory held is one
/// chunk at a time, however large the file, so the server can pull a chunk whenever the
/// connection has room for more (backpressure) and stop when it has not.
///
/// The reads are ordinary blocking file reads on the calling thread: call it off a reactor's
/// thread. (The HTTP server does not pull chunks: it takes the range whole with
/// [`into_range`](FileChunks::into_range) and sends it with `sendfile`.) Each read names its
/// offset, so the file's own position does not matter.
#[derive(Debug)]
pub struct FileChunks {
    file: File,
    offset: u64,
    remaining: u64,
    chunk_size: usize,
}

impl FileChunks {
    /// The chunk size unless [`with_chunk_size`](FileChunks::with_chunk_size) says otherwise:
    /// 64 KiB.
    pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;

    /// Reads `len` bytes of `file` from offset `start`.
    pub fn new(file: File, start: u64, len: u64) -> FileChunks {
        FileChunks {
            file,
            offset: start,
            remaining: len,
            chunk_size: Self::DEFAULT_CHUNK_SIZE,
        }
    }

    /// The file, where the bytes not yet handed out start, and how many they are.
    pub fn into_range(self) -> (File, u64, u64) {
        (self.file, self.offset, self.remaining)
    }

    /// Sets the largest chunk (at least 1 byte).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> FileChunks {
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// The bytes not yet handed out.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk: `Ok(Some(bytes))` with 1 to `chunk_size` bytes (full chunks but
    /// possibly the last), `Ok(None)` once all `len` bytes were handed out.
    ///
    /// An error is an I/O error, or `UnexpectedEof` if the file shrank below the length
    /// promised: the response's `Content-Length` can no longer be honoured, so the server
    /// must close the connection.
    pub fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = self.remaining.min(self.chunk_size as u64) as usize;
        let mut buf = vec![0; want];
        let mut filled = 0;
        while filled < want {
            match self
                .file
                .read_at(&mut buf[filled..], self.offset + filled as u64)
            {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while being sent",
                    ))
                }
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.remaining -= want as u64;
        self.offset += want as u64;
        Ok(Some(Bytes::from(buf)))
    }
}
