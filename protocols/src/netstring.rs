//! Netstrings (D. J. Bernstein, <https://cr.yp.to/proto/netstrings.txt>): each string is sent
//! as its length in decimal, a colon, the bytes, and a comma: `5:hello,`. Twisted's
//! `NetstringReceiver`.
//!
//! [`NetstringFramer`] is the sans-I/O decoder, fed bytes through the same kind of cursor as
//! the [line framer](crate::line): a string lying wholly inside the chunk being fed is lent
//! from it, only a string split across reads is assembled (each byte copied once), and
//! dropping the cursor early keeps the rest for the next `feed`. [`encode`] writes one.
//! With the `reactor` feature, [`NetstringReceiver`] and [`NetstringProtocol`] put it on a
//! connection.
//!
//! ```
//! use torsion_protocols::netstring::{self, NetstringError, NetstringFramer};
//!
//! let mut framer = NetstringFramer::new();
//! let mut strings = framer.feed(b"5:hello,0:,3:abc;");
//! assert_eq!(strings.next(), Some(Ok(&b"hello"[..])));
//! assert_eq!(strings.next(), Some(Ok(&b""[..])));
//! assert_eq!(strings.next(), Some(Err(NetstringError::MissingComma { found: b';' })));
//! assert_eq!(strings.next(), None); // the stream is unusable after an error
//!
//! assert_eq!(netstring::encode_to_vec(b"hi"), b"2:hi,");
//! ```
//!
//! # Limits
//! A string may hold at most [`max_length`](NetstringFramer::max_length) bytes (default
//! [`DEFAULT_MAX_LENGTH`], as Twisted). A longer declared length is an error as soon as its
//! digits pass the maximum, before any of the string is buffered. Every error is final: the
//! framer cannot find the next string's start in a stream it failed to parse.

use std::error::Error;
use std::fmt;

use crate::framer::Framer;
use crate::input::{Backlog, Input};

#[cfg(feature = "reactor")]
mod receiver;
#[cfg(feature = "reactor")]
pub use receiver::{NetstringContext, NetstringProtocol, NetstringReceiver};

/// Twisted's `NetstringReceiver.MAX_LENGTH`: 99,999 bytes.
pub const DEFAULT_MAX_LENGTH: usize = 99_999;

/// What was wrong with a netstring the peer sent. Every variant is the peer's fault, and final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringError {
    /// A byte other than a digit or the colon where the length goes.
    BadLengthByte(u8),
    /// A colon with no digits before it.
    EmptyLength,
    /// The length has a leading zero (the spec allows `0` only as the whole length of an empty
    /// string).
    LeadingZero,
    /// The length does not fit in a `usize`.
    LengthOverflow,
    /// The declared length is over the maximum. `length` is the length as far as it was read
    /// when it passed `max` (the full declaration may be longer still).
    TooLong {
        /// The declared length, as far as it was read.
        length: usize,
        /// The maximum it went over.
        max: usize,
    },
    /// The byte after the string is not a comma.
    MissingComma {
        /// The byte found instead.
        found: u8,
    },
}

impl fmt::Display for NetstringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bad netstring: ")?;
        match self {
            NetstringError::BadLengthByte(byte) => write!(
                f,
                "expected a digit or ':' in the length, got {:?}",
                char::from(*byte)
            ),
            NetstringError::EmptyLength => f.write_str("empty length before ':'"),
            NetstringError::LeadingZero => f.write_str("length with a leading zero"),
            NetstringError::LengthOverflow => f.write_str("length too large to represent"),
            NetstringError::TooLong { length, max } => {
                write!(
                    f,
                    "declared length {length} or more is over the maximum {max}"
                )
            }
            NetstringError::MissingComma { found } => {
                write!(
                    f,
                    "expected ',' after the string, got {:?}",
                    char::from(*found)
                )
            }
        }
    }
}

impl Error for NetstringError {}

/// The decoder's state machine, after the spec's grammar: `[len] ":" [string] ","`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the length's digits: their value so far and how many.
    Length { value: usize, digits: usize },
    /// Waiting for the string's `length` bytes and the comma after them.
    Body { length: usize },
    /// A framing error was reported; nothing more is read.
    Failed,
}

impl State {
    const START: State = State::Length {
        value: 0,
        digits: 0,
    };
}

/// Decodes a stream of netstrings; see the [module docs](self).
#[derive(Debug)]
pub struct NetstringFramer {
    state: State,
    max_length: usize,
    backlog: Backlog,
}

impl Default for NetstringFramer {
    fn default() -> Self {
        NetstringFramer {
            state: State::START,
            max_length: DEFAULT_MAX_LENGTH,
            backlog: Backlog::default(),
        }
    }
}

impl NetstringFramer {
    /// A decoder accepting strings of at most [`DEFAULT_MAX_LENGTH`] bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts strings of at most `max` bytes instead.
    pub fn with_max_length(mut self, max: usize) -> Self {
        self.max_length = max;
        self
    }

    /// The longest string accepted, in bytes.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether a framing error was reported (after which nothing more is decoded).
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Feeds `data`, which follows the bytes fed before, and returns the cursor over the
    /// strings now complete. Bytes the cursor does not reach are kept for the next `feed`.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8]) -> Netstrings<'f, 'd> {
        let mut input = Input::new(&mut self.backlog, data);
        if self.state == State::Failed {
            input.discard();
        }
        Netstrings {
            state: &mut self.state,
            max_length: self.max_length,
            input,
        }
    }
}

impl Framer for NetstringFramer {
    type Frames<'s> = Netstrings<'s, 's>;
    type Frame<'x> = Result<&'x [u8], NetstringError>;

    fn feed<'s>(&'s mut self, data: &'s [u8]) -> Netstrings<'s, 's> {
        self.feed(data)
    }

    fn next<'x>(frames: &'x mut Netstrings<'_, '_>) -> Option<Self::Frame<'x>> {
        frames.next()
    }
}

/// The strings of one [`NetstringFramer::feed`]: call [`next`](Netstrings::next) until it
/// returns `None`. Dropping it early keeps the bytes not yet decoded for the next `feed`.
#[derive(Debug)]
pub struct Netstrings<'f, 'd> {
    state: &'f mut State,
    max_length: usize,
    input: Input<'f, 'd>,
}

impl Netstrings<'_, '_> {
    /// The next string, or the framing error (reported once; then `None` for good), or `None`
    /// when no complete string is left.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: each string borrows the cursor, which Iterator cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<&[u8], NetstringError>> {
        loop {
            match *self.state {
                State::Failed => return None,
                State::Length { value, digits } => {
                    let byte = self.input.next_byte()?;
                    match self.length_byte(value, digits, byte) {
                        Ok(next) => *self.state = next,
                        Err(error) => return Some(Err(self.fail(error))),
                    }
                }
                State::Body { length } => {
                    let Some(with_comma) = length.checked_add(1) else {
                        return Some(Err(self.fail(NetstringError::LengthOverflow)));
                    };
                    let framed = self.input.take(with_comma)?;
                    let (string, comma) = framed.split_at(length);
                    if comma[0] != b',' {
                        let found = comma[0];
                        *self.state = State::Failed;
                        return Some(Err(NetstringError::MissingComma { found }));
                    }
                    *self.state = State::START;
                    return Some(Ok(string));
                }
            }
        }
    }

    /// The state after `byte` in the length, which so far is `value` over `digits` digits.
    fn length_byte(&self, value: usize, digits: usize, byte: u8) -> Result<State, NetstringError> {
        match byte {
            b':' if digits == 0 => Err(NetstringError::EmptyLength),
            b':' => Ok(State::Body { length: value }),
            b'0'..=b'9' if digits == 1 && value == 0 => Err(NetstringError::LeadingZero),
            b'0'..=b'9' => {
                let value = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(usize::from(byte - b'0')))
                    .ok_or(NetstringError::LengthOverflow)?;
                if value > self.max_length {
                    return Err(NetstringError::TooLong {
                        length: value,
                        max: self.max_length,
                    });
                }
                Ok(State::Length {
                    value,
                    digits: digits + 1,
                })
            }
            _ => Err(NetstringError::BadLengthByte(byte)),
        }
    }

    fn fail(&mut self, error: NetstringError) -> NetstringError {
        *self.state = State::Failed;
        error
    }
}

impl Drop for Netstrings<'_, '_> {
    fn drop(&mut self) {
        // After an error nothing is read again: keep none of it.
        if *self.state == State::Failed {
            self.input.discard();
        }
    }
}

/// Appends `string` as a netstring to `out`.
pub fn encode(string: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(string.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(string);
    out.push(b',');
}

/// `string` as a netstring.
pub fn encode_to_vec(string: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(string.len() + 22);
    encode(string, &mut out);
    out
}

#[cfg(test)]
mod tests;
