//! The chunked transfer coding's lines (RFC 9112 §7.1), a byte at a time: the chunk-size line
//! with its extensions, and the CRLF after each chunk's data. The data itself and the trailer
//! section are read by the decoder, which lends the data out and gathers the trailers whole.

use super::scan::SectionScan;
use super::{HttpError, Limits};

/// A chunk size has at most this many hex digits (a `u64`).
const MAX_SIZE_DIGITS: u8 = 16;

/// Where in the chunked body the decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// `chunk-size`: the hex digits read so far.
    Size {
        /// The value of the digits so far.
        size: u64,
        /// How many digits.
        digits: u8,
    },
    /// `BWS` after the size, which must lead to a `;`.
    SizeSpace {
        /// The chunk's size.
        size: u64,
    },
    /// `chunk-ext`: skipped up to the CR, counted against the limit.
    Extension {
        /// The chunk's size.
        size: u64,
    },
    /// The CR ending the size line was read; its LF must follow.
    SizeLf {
        /// The chunk's size.
        size: u64,
    },
    /// `chunk-data`: this many bytes left.
    Data {
        /// Bytes of the chunk still to come.
        remaining: u64,
    },
    /// After the data: a CR must follow.
    DataCr,
    /// After the data's CR: an LF must follow.
    DataLf,
    /// After `last-chunk`: the trailer section, gathered whole until its empty line.
    Trailers(SectionScan),
}

/// A chunked body being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkedBody {
    pub(super) chunk: Chunk,
    /// Data bytes announced so far, against [`Limits::max_body_len`].
    total: u64,
    /// Extension bytes so far, against [`Limits::max_chunk_extensions_len`].
    extensions: usize,
}

impl ChunkedBody {
    pub(super) fn new() -> Self {
        ChunkedBody {
            chunk: Chunk::Size { size: 0, digits: 0 },
            total: 0,
            extensions: 0,
        }
    }

    /// Reads one byte of a chunk-size line or of a chunk's CRLF (never called in
    /// [`Chunk::Data`] or [`Chunk::Trailers`]).
    pub(super) fn byte(&mut self, byte: u8, limits: &Limits) -> Result<(), HttpError> {
        self.chunk = match (self.chunk, byte) {
            (Chunk::Size { size, digits }, _) if hex(byte).is_some() => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(HttpError::InvalidChunkSize);
                }
                let value = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(hex(byte).map_or(0, u64::from)))
                    .ok_or(HttpError::InvalidChunkSize)?;
                Chunk::Size {
                    size: value,
                    digits: digits + 1,
                }
            }
            (Chunk::Size { digits: 0, .. }, _) => return Err(HttpError::InvalidChunkSize),
            (Chunk::Size { size, .. } | Chunk::SizeSpace { size }, b' ' | b'\t') => {
                Chunk::SizeSpace { size }
            }
            (Chunk::Size { size, .. } | Chunk::SizeSpace { size }, b';') => {
                self.extension_byte(limits)?;
                Chunk::Extension { size }
            }
            (Chunk::Size { size, .. } | Chunk::Extension { size }, b'\r') => Chunk::SizeLf { size },
            (Chunk::Extension { size }, _) if byte == b'\t' || byte >= b' ' && byte != 0x7f => {
                self.extension_byte(limits)?;
                Chunk::Extension { size }
            }
            (Chunk::SizeLf { size }, b'\n') => self.chunk_starts(size, limits)?,
            (Chunk::SizeLf { .. }, _) => return Err(HttpError::BadChunkTerminator),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
            (Chunk::DataCr | Chunk::DataLf, _) => return Err(HttpError::BadChunkTerminator),
            _ => return Err(HttpError::InvalidChunkSize),
        };
        Ok(())
    }

    /// Counts one byte of chunk extensions (RFC 9112 §7.1.1: ignored, but bounded, as hyper
    /// bounds them, so a body of tiny chunks cannot carry unbounded extensions).
    fn extension_byte(&mut self, limits: &Limits) -> Result<(), HttpError> {
        self.extensions += 1;
        if self.extensions > limits.max_chunk_extensions_len {
            return Err(HttpError::ChunkExtensionsTooLong {
                max: limits.max_chunk_extensions_len,
            });
        }
        Ok(())
    }

    /// A size line ended: the chunk's data follows, or for size 0 the trailer section.
    fn chunk_starts(&mut self, size: u64, limits: &Limits) -> Result<Chunk, HttpError> {
        if size == 0 {
            return Ok(Chunk::Trailers(SectionScan::default()));
        }
        self.total = self.total.saturating_add(size);
        if self.total > limits.max_body_len {
            return Err(HttpError::BodyTooLarge {
                max: limits.max_body_len,
            });
        }
        Ok(Chunk::Data { remaining: size })
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
