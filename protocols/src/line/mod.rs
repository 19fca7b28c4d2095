//! Line-oriented protocols, Twisted's `LineReceiver`: a sans-I/O [`LineFramer`] that splits a
//! byte stream into lines (with a raw mode for bodies), and, with the `reactor` feature, the
//! [`LineReceiver`] handler trait and its [`LineProtocol`] adapter.

mod framer;

pub use framer::{
    Delimiter, LineError, LineFrame, LineFramer, LineFrames, DEFAULT_MAX_LINE_LENGTH,
};
