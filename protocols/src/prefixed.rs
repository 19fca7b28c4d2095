//! Length-prefixed frames: each frame is its length as a big-endian unsigned integer of 1, 2
//! or 4 bytes, then that many bytes. Twisted's `Int8StringReceiver`, `Int16StringReceiver`
//! and `Int32StringReceiver`.
//!
//! [`PrefixedFramer`] is the sans-I/O decoder, fed through the same kind of cursor as the
//! [line framer](crate::line): a frame wholly inside the chunk being fed is lent from it, a
//! frame split across reads is assembled (each byte copied once), and dropping the cursor early
//! keeps the rest for the next `feed`. [`Prefix::encode`] writes one. With the `reactor`
//! feature, [`FrameReceiver`] and [`FrameProtocol`] put it on a connection.
//!
//! ```
//! use torsion_protocols::prefixed::{FrameError, Prefix, PrefixedFramer};
//!
//! let mut wire = Prefix::U16.encode_to_vec(b"hello").unwrap();
//! assert_eq!(wire, b"\x00\x05hello");
//! wire.extend_from_slice(b"\xff\xff");
//!
//! let mut framer = PrefixedFramer::new(Prefix::U16).with_max_frame_length(1024);
//! let mut frames = framer.feed(&wire);
//! assert_eq!(frames.next(), Some(Ok(&b"hello"[..])));
//! assert_eq!(
//!     frames.next(),
//!     Some(Err(FrameError::TooLong { length: 65535, max: 1024 }))
//! );
//! ```
//!
//! # Limits
//! A frame may hold at most [`max_frame_length`](PrefixedFramer::max_frame_length) bytes
//! (default [`DEFAULT_MAX_FRAME_LENGTH`], as Twisted's `IntNStringReceiver.MAX_LENGTH`). A
//! longer declared length is an error as soon as the prefix is read, before any of the frame
//! is buffered; it is final, since the framer will not read through a body it refused.

use std::error::Error;
use std::fmt;

use crate::framer::Framer;
use crate::input::{Backlog, Input};

#[cfg(feature = "reactor")]
mod receiver;
#[cfg(feature = "reactor")]
pub use receiver::{FrameContext, FrameProtocol, FrameReceiver};

/// Twisted's `IntNStringReceiver.MAX_LENGTH`: 99,999 bytes.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 99_999;

/// The size of the length prefix, which is big-endian (network order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// One byte: frames of up to 255 bytes.
    U8,
    /// Two bytes: frames of up to 65,535 bytes.
    U16,
    /// Four bytes: frames of up to 4 GiB - 1.
    U32,
}

impl Prefix {
    /// The prefix's size in bytes.
    pub fn size(self) -> usize {
        match self {
            Prefix::U8 => 1,
            Prefix::U16 => 2,
            Prefix::U32 => 4,
        }
    }

    /// The longest frame this prefix can announce.
    pub fn max_encodable(self) -> usize {
        match self {
            Prefix::U8 => u8::MAX.into(),
            Prefix::U16 => u16::MAX.into(),
            Prefix::U32 => usize::try_from(u32::MAX).unwrap_or(usize::MAX),
        }
    }

    /// Appends `payload` with its prefix to `out`, or fails (appending nothing) if the
    /// payload is longer than this prefix can announce.
    pub fn encode(self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let header = self.header(payload.len())?;
        out.extend_from_slice(&header[4 - self.size()..]);
        out.extend_from_slice(payload);
        Ok(())
    }

    /// `payload` with its prefix, or the error if it is too long for this prefix.
    pub fn encode_to_vec(self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.size() + payload.len());
        self.encode(payload, &mut out)?;
        Ok(out)
    }

    /// The prefix for a frame of `length` bytes: the last [`size`](Prefix::size) bytes of the
    /// returned big-endian `u32`.
    pub(crate) fn header(self, length: usize) -> Result<[u8; 4], FrameError> {
        if length > self.max_encodable() {
            return Err(FrameError::Unencodable {
                length,
                prefix: self,
            });
        }
        let length = u32::try_from(length).map_err(|_| FrameError::Unencodable {
            length,
            prefix: self,
        })?;
        Ok(length.to_be_bytes())
    }

    /// The length a prefix of [`size`](Prefix::size) bytes announces.
    fn decode(self, bytes: &[u8]) -> usize {
        let mut be = [0u8; 4];
        be[4 - bytes.len()..].copy_from_slice(bytes);
        usize::try_from(u32::from_be_bytes(be)).unwrap_or(usize::MAX)
    }
}

/// What went wrong framing: [`TooLong`](FrameError::TooLong) is the peer's fault (and final),
/// [`Unencodable`](FrameError::Unencodable) is a local one (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame longer than the maximum.
    TooLong {
        /// The announced length.
        length: usize,
        /// The maximum it is over.
        max: usize,
    },
    /// A frame to send is longer than its prefix can announce.
    Unencodable {
        /// The frame's length.
        length: usize,
        /// The prefix that cannot hold it.
        prefix: Prefix,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { length, max } => {
                write!(
                    f,
                    "peer announced a frame of {length} bytes, over the maximum {max}"
                )
            }
            FrameError::Unencodable { length, prefix } => write!(
                f,
                "a frame of {length} bytes is too long for a {}-byte length prefix (at most {})",
                prefix.size(),
                prefix.max_encodable()
            ),
        }
    }
}

impl Error for FrameError {}

/// The decoder's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a length prefix.
    Prefix,
    /// Waiting for a frame's `length` bytes.
    Body { length: usize },
    /// A frame over the maximum was announced; nothing more is read.
    Failed,
}

/// Decodes a stream of length-prefixed frames; see the [module docs](self).
#[derive(Debug)]
pub struct PrefixedFramer {
    prefix: Prefix,
    max_frame_length: usize,
    state: State,
    backlog: Backlog,
}

impl PrefixedFramer {
    /// A decoder of frames prefixed by `prefix`, of at most [`DEFAULT_MAX_FRAME_LENGTH`] bytes.
    pub fn new(prefix: Prefix) -> Self {
        PrefixedFramer {
            prefix,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            state: State::Prefix,
            backlog: Backlog::default(),
        }
    }

    /// Accepts frames of at most `max` bytes instead.
    pub fn with_max_frame_length(mut self, max: usize) -> Self {
        self.max_frame_length = max;
        self
    }

    /// The length prefix.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The longest frame accepted, in bytes.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }

    /// Whether a framing error was reported (after which nothing more is decoded).
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Feeds `data`, which follows the bytes fed before, and returns the cursor over the
    /// frames now complete. Bytes the cursor does not reach are kept for the next `feed`.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8]) -> PrefixedFrames<'f, 'd> {
        let mut input = Input::new(&mut self.backlog, data);
        if self.state == State::Failed {
            input.discard();
        }
        PrefixedFrames {
            prefix: self.prefix,
            max_frame_length: self.max_frame_length,
            state: &mut self.state,
            input,
        }
    }
}

impl Framer for PrefixedFramer {
    type Frames<'s> = PrefixedFrames<'s, 's>;
    type Frame<'x> = Result<&'x [u8], FrameError>;

    fn feed<'s>(&'s mut self, data: &'s [u8]) -> PrefixedFrames<'s, 's> {
        self.feed(data)
    }

    fn next<'x>(frames: &'x mut PrefixedFrames<'_, '_>) -> Option<Self::Frame<'x>> {
        frames.next()
    }
}

/// The frames of one [`PrefixedFramer::feed`]: call [`next`](PrefixedFrames::next) until it
/// returns `None`. Dropping it early keeps the bytes not yet decoded for the next `feed`.
#[derive(Debug)]
pub struct PrefixedFrames<'f, 'd> {
    prefix: Prefix,
    max_frame_length: usize,
    state: &'f mut State,
    input: Input<'f, 'd>,
}

impl PrefixedFrames<'_, '_> {
    /// The next frame, or the framing error (reported once; then `None` for good), or `None`
    /// when no complete frame is left.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: each frame borrows the cursor, which Iterator cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<&[u8], FrameError>> {
        loop {
            match *self.state {
                State::Failed => return None,
                State::Prefix => {
                    let length = self.prefix.decode(self.input.take(self.prefix.size())?);
                    if length > self.max_frame_length {
                        *self.state = State::Failed;
                        let max = self.max_frame_length;
                        return Some(Err(FrameError::TooLong { length, max }));
                    }
                    *self.state = State::Body { length };
                }
                State::Body { length } => {
                    let frame = self.input.take(length)?;
                    *self.state = State::Prefix;
                    return Some(Ok(frame));
                }
            }
        }
    }
}

impl Drop for PrefixedFrames<'_, '_> {
    fn drop(&mut self) {
        // After an error nothing is read again: keep none of it.
        if *self.state == State::Failed {
            self.input.discard();
        }
    }
}

#[cfg(test)]
mod tests;
