//! torsion's built-in protocols. Each is a sans-I/O core (a pure state machine fed bytes,
//! importing nothing from the reactor) plus, with the default `reactor` feature, a thin
//! [`Protocol`](torsion_reactor::Protocol) adapter over it.
//!
//! # The framers
//! - [`line`](mod@line): lines split on `\r\n`, `\n` or any delimiter, at most 16 KiB each by
//!   default, with a raw mode for bodies ([`LineFramer`]; Twisted's `LineReceiver`).
//! - [`netstring`]: `5:hello,` ([`NetstringFramer`]; Twisted's `NetstringReceiver`).
//! - [`prefixed`]: frames after a big-endian length of 1, 2 or 4 bytes ([`PrefixedFramer`];
//!   Twisted's `Int8/16/32StringReceiver`).
//!
//! They share one shape. `feed(bytes)` returns a cursor whose `next()` hands out the frames now
//! complete, one at a time, so the consumer can act between two frames of the same read
//! (switch a line framer to raw mode, or stop to pause). A frame lying wholly inside the bytes
//! fed is a slice of them, never a copy; only a frame split across reads is assembled, each
//! byte copied once, and no byte is searched twice, so framing is linear in the bytes received.
//! Short input is never an error: the cursor just runs dry. Every buffer a peer can fill has a
//! limit, and going over it is an error that says so.
//!
//! ```
//! use torsion_protocols::line::{LineFrame, LineFramer};
//!
//! let mut framer = LineFramer::new();
//! let mut lines = Vec::new();
//! for read in [&b"HELO exa"[..], b"mple.org\r\nQUIT\r\n"] {
//!     let mut frames = framer.feed(read);
//!     while let Some(Ok(LineFrame::Line(line))) = frames.next() {
//!         lines.push(String::from_utf8_lossy(line).into_owned());
//!     }
//! }
//! assert_eq!(lines, ["HELO example.org", "QUIT"]);
//! ```
//!
//! # The adapters (feature `reactor`)
//! Each framer has a handler trait in Twisted's words and an adapter that implements
//! [`Protocol`](torsion_reactor::Protocol) for any handler: [`LineReceiver`] in a
//! [`LineProtocol`], [`NetstringReceiver`] in a [`NetstringProtocol`], [`FrameReceiver`] in a
//! [`FrameProtocol`]. The handler gets a context that sends in the same framing
//! (`send_line`, `send_string`, `send_frame`), pauses and resumes delivery, and reaches the
//! connection's whole [`Context`](torsion_reactor::Context). The three adapters are one
//! generic adapter over their framer, [`framed::FramedProtocol`], with one generic context,
//! [`framed::FramedContext`]: what they share is written, and documented, there once.
//!
//! [`http`](mod@http) is HTTP/1.1, server and client: a sans-I/O codec ([`http::codec`]:
//! strict request and response decoders (`httparse`, the `http` crate's types, RFC 9112
//! framing, documented limits) and encoders that write into the caller's buffer), the logic
//! of serving a directory ([`http::static_files`]: traversal-proof paths, listings,
//! validators, ranges), and, with the `reactor` feature, a server with handlers, routing,
//! keep-alive and pipelining (`http::server`) and a client with a keep-alive pool, timeouts,
//! redirects and streamed bodies both ways (`http::client`).
//!
//! [`dns`] is a DNS message codec (sans-I/O, strict about compression pointers and counts)
//! and, with the `reactor` feature, a stub resolver on the reactor's UDP ([`dns::Resolver`]:
//! hosts file, TTL cache, random ids and ports, forged replies dropped, retries, TCP on
//! truncation) that can resolve a host name to connect to ([`dns::Resolver::connect`]).
//!
//! [`websocket`] is WebSocket (RFC 6455): a sans-I/O codec (frames, masking, fragments,
//! UTF-8, pings, the close handshake, a size limit) and the opening handshake, and, with the
//! `reactor` feature, a server reached by upgrading an HTTP request and a client.
//!
//! [`cred`] is authentication and authorisation in `twisted.cred`'s shape: credentials,
//! checkers (Argon2id password files, peer uids, client certificates), a portal into the
//! application's realm, one failure message and a growing delay per address.
//!
//! [`ftp`] is the start of FTP: its command lines parsed (RFC 959 and the later RFCs'
//! commands: `AUTH`, `PBSZ`, `PROT`, `FEAT`, `EPRT`, `EPSV`, `SIZE`, `MDTM`, `MLSD`, `REST`)
//! and its replies written, sans-I/O; `ftp::server` (feature `reactor`) serves a directory
//! with passive data connections, logging users in through a [`cred`] portal.
//!
//! [`wire`] holds the smallest protocols (echo, discard); [`chat`] the multi-user chat of the
//! `chat_server` example; [`terminal`] makes a peer's text safe to show on a terminal;
//! [`reflection`] says which datagrams an echo-like service must leave unanswered.
//!
//! Without the `reactor` feature the crate is only the sans-I/O framers, which is how CI
//! proves they import nothing from the reactor.

pub mod chat;
pub mod cred;
pub mod dns;
#[cfg(feature = "reactor")]
mod flow;
#[cfg(feature = "reactor")]
pub mod framed;
mod framer;
pub mod ftp;
pub mod http;
mod input;
pub mod line;
pub mod netstring;
pub mod prefixed;
pub mod reflection;
pub mod terminal;
pub mod websocket;

#[cfg(feature = "reactor")]
pub mod wire;

pub use line::{Delimiter, LineError, LineFrame, LineFramer};
#[cfg(feature = "reactor")]
pub use line::{LineContext, LineProtocol, LineReceiver};
#[cfg(feature = "reactor")]
pub use netstring::{NetstringContext, NetstringProtocol, NetstringReceiver};
pub use netstring::{NetstringError, NetstringFramer};
#[cfg(feature = "reactor")]
pub use prefixed::{FrameContext, FrameProtocol, FrameReceiver};
pub use prefixed::{FrameError, Prefix, PrefixedFramer};
