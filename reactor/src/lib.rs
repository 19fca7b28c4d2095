//! torsion's reactor: a hand-written, edge-triggered [mio] event loop that calls your
//! protocol objects, in the style of Python's Twisted.
//!
//! # The model
//! A [`Reactor`] owns every socket. It waits until some are ready, does the I/O itself, and
//! calls methods on objects you write: one [`Protocol`] per connection, built by a
//! [`Factory`] (for a listening port) or a [`ClientFactory`] (for an outgoing connection).
//! A protocol never touches a socket: it receives bytes in
//! [`data_received`](Protocol::data_received) and writes through the [`Context`] it is handed,
//! which is its connection's transport and reaches the rest of the reactor.
//!
//! What a callback asks for (a write, a close, a pause) is recorded and carried out when it
//! returns: all writes of a turn leave together, one `writev` per connection, and a protocol is
//! never re-entered. Connections are named by [`ConnectionId`]s that carry a generation, so an
//! id kept after its connection closed is a harmless no-op, never a write to a stranger.
//!
//! # Example: an echo server
//! ```no_run
//! use torsion_reactor::{Context, Protocol, Reactor};
//!
//! struct Echo;
//!
//! impl Protocol for Echo {
//!     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
//!         cx.write(data);
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new()?;
//!     let port = reactor.listen_tcp("127.0.0.1:8000".parse().unwrap(), || Echo)?;
//!     println!("echo server on {}", port.local_addr());
//!     reactor.run()
//! }
//! ```
//!
//! TLS (rustls, `ring` provider) is a stage between socket and protocol: see the [`tls`]
//! module, [`Reactor::listen_tls`], [`ConnectOptions::tls`] for [`Reactor::connect`], and
//! [`Context::start_tls_server`]; the protocol sees plaintext through the same [`Context`].
//!
//! The guide (the `torsion` crate's `guide` module, from `docs/`) explains each part.

mod connect;
mod connections;
mod context;
mod delayed_call;
mod error;
mod listeners;
mod looping_call;
mod outgoing;
mod protocol;
mod reactor;
mod reader;
mod reconnect;
mod remote;
mod shutdown;
mod stream;
mod table;
pub mod testing;
mod time;
mod timers;
pub mod tls;
mod udp;
mod write_queue;

pub use bytes::Bytes;
pub use connect::{ConnectOptions, Connector, Target, DEFAULT_CONNECT_TIMEOUT};
pub use connections::ConnectionId;
pub use context::{Context, WriteProgress};
pub use delayed_call::DelayedCall;
pub use error::{ConnectError, DisconnectReason};
pub use listeners::ListeningPort;
pub use looping_call::LoopingCall;
pub use protocol::{ClientFactory, Factory, Protocol};
pub use reactor::Reactor;
pub use reader::{FdReader, ReaderId};
pub use reconnect::{
    Backoff, BackoffState, ReconnectEvent, ReconnectHandle, ReconnectState, ReconnectingClient,
    DEFAULT_FACTOR, DEFAULT_INITIAL_DELAY, DEFAULT_JITTER, DEFAULT_MAX_DELAY,
};
pub use remote::{ReactorGone, ReactorHandle, WorkPanicked};
/// rustls, re-exported so configurations can be built with the very version torsion uses.
pub use rustls;
pub use shutdown::{Phase, DEFAULT_SHUTDOWN_TIMEOUT};
pub use time::ManualClock;
pub use tls::{TlsError, TlsOptions};
pub use udp::{DatagramContext, DatagramPort, DatagramProtocol, DEFAULT_MAX_DATAGRAM_SIZE};
