//! Line-oriented protocols, Twisted's `LineReceiver`: a sans-I/O [`LineFramer`] that splits a
//! byte stream into lines (with a raw mode for bodies), and, with the `reactor` feature, the
//! [`LineReceiver`] handler trait and its [`LineProtocol`] adapter.
//!
//! # Why a cursor
//! [`LineFramer::feed`] returns a [`LineFrames`] cursor; each [`next`](LineFrames::next)
//! yields one line, one run of raw data, or a too-long-line error, and the cursor itself takes
//! [`set_raw_mode`](LineFrames::set_raw_mode) and
//! [`set_line_mode`](LineFrames::set_line_mode). So a consumer acts *between two frames of the
//! same chunk*: switch to raw mode after a header line, go back to lines after a body, or stop
//! (to pause) and pick up later, all with its own state in plain local variables:
//!
//! ```
//! use torsion_protocols::line::{LineFrame, LineFramer};
//!
//! let mut framer = LineFramer::new();
//! let mut frames = framer.feed(b"BODY\r\n12345\r\nnext\r\n");
//! let mut got = Vec::new();
//! while let Some(frame) = frames.next() {
//!     match frame {
//!         Ok(LineFrame::Line(line)) => {
//!             let body_follows = line == b"BODY";
//!             got.push(String::from_utf8_lossy(line).into_owned());
//!             if body_follows {
//!                 frames.set_raw_mode();
//!             }
//!         }
//!         Ok(LineFrame::Raw(data)) => {
//!             // The body is 5 bytes; give back the rest, to be framed as lines again.
//!             let body = &data[..5.min(data.len())];
//!             let extra = data.len() - body.len();
//!             got.push(format!("raw {}", String::from_utf8_lossy(body)));
//!             frames.set_line_mode_with_extra(extra);
//!         }
//!         Err(too_long) => panic!("{too_long}"),
//!     }
//! }
//! assert_eq!(got, ["BODY", "raw 12345", "", "next"]);
//! ```
//!
//! A callback (visitor) design would have the framer call the consumer, which would then have
//! to answer each call with a control value (continue, switch, stop) and could not hold a
//! borrow of the framer; an iterator of owned lines would copy every line. The cursor is a
//! *lending* iterator (each frame borrows the cursor, so it is a `while let` loop rather than a
//! `std::iter::Iterator`): a line lying wholly inside the fed chunk is a slice of that chunk,
//! and only a trailing partial line is copied into the framer. Dropping the cursor before it is
//! exhausted keeps the unread bytes, in order, for the next `feed` (`feed(&[])` continues with
//! just those): that is how a consumer pauses.
//!
//! # Cost
//! Linear in the bytes received. The framer remembers where its delimiter search stopped, so
//! a partial line is never searched again when more of it arrives (only the last
//! `delimiter length - 1` bytes, which may start a delimiter split across reads), and each byte
//! is copied at most once, when it is part of a line split across reads.
//!
//! # Limits
//! A line may hold at most [`max_line_length`](LineFramer::max_line_length) bytes (delimiter
//! excluded; default [`DEFAULT_MAX_LINE_LENGTH`], as Twisted's `LineReceiver.MAX_LENGTH`).
//! A longer line yields [`LineError::TooLong`] as soon as the framer knows the line is too long
//! (without waiting for its end), carrying the first `max_line_length + 1` bytes; the rest of
//! that line, through its delimiter, is then skipped and framing goes on with the next line.
//! So the framer never holds more than about one maximal line of a peer's bytes.
//!
//! # On a connection
//! A [`LineProtocol`] runs the framer under a [`LineReceiver`] handler, which gets
//! `line_received`, `raw_data_received` and `line_length_exceeded` (default: close) and sends
//! with [`send_line`](LineContext::send_line). A mode switch or pause asked for in a callback
//! applies from the next byte, even inside the same read; pausing holds back lines already
//! received (and the peer's EOF behind them) until resumed.

mod framer;
#[cfg(feature = "reactor")]
mod receiver;

pub use framer::{
    Delimiter, LineError, LineFrame, LineFramer, LineFrames, DEFAULT_MAX_LINE_LENGTH,
};
#[cfg(feature = "reactor")]
pub use receiver::{LineContext, LineProtocol, LineReceiver};
