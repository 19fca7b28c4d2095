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
//! TLS (rustls, `ring` provider) is a layer between socket and protocol: see the [`tls`]
//! module, [`Reactor::listen_tls`], [`ConnectOptions::tls`] for [`Reactor::connect`], and
//! [`Context::start_tls_server`]; the protocol sees plaintext through the same [`Context`].
//! Code that waits for something outside its own socket is woken ([`Reactor::wake`],
//! [`Protocol::woken`]), and code that must know when its bytes leave watches its writes
//! ([`Context::watch_writes`], [`Protocol::write_progress`]).
//!
//! UNIX domain sockets ([`Reactor::listen_unix`], [`Target::Unix`] for `connect`,
//! [`Reactor::listen_unix_datagram`]) run the same protocols; factories and protocols see an
//! [`Address`] of either kind, and a UNIX connection adds the peer's credentials
//! ([`Context::peer_credentials`]) and passing descriptors ([`Context::write_with_fds`],
//! [`Context::take_received_fds`]).
//!
//! The guide (the `torsion` crate's `guide` module, from `docs/`) explains each part.
//!
//! # How the crate is built
//! The reactor is a thin coordinator over *parts* that own their state and keep their own
//! invariants; only the coordinator calls user code. Read the modules in this order: each uses
//! only those above it.
//!
//! | module | what it owns |
//! |---|---|
//! | `table` | generation-tagged tables (a slab and its generations) and the poll tokens that carry a table's kind, an index and a generation: the base of every part below |
//! | `file_segment`, `write_queue` | a range of a file to send (`sendfile`, or read and written), loaded into the page cache off the reactor thread; a connection's queued bytes and file segments, coalesced into pooled blocks and written with `writev` |
//! | `address` | [`Address`] (TCP or UNIX) and [`UnixAddress`]: what factories, protocols and datagram sockets see |
//! | `stream/` | the byte-stream interface every connection reads and writes through: `Stream`, `AnyStream` (TCP inline, anything else boxed), the readiness bits, what a read brings; `tcp.rs` is plain TCP, `unix.rs` UNIX stream sockets and the descriptors they carry, `pipe.rs` pipes and standard I/O |
//! | `tls/` | the TLS layer, a `Stream` over another stream: `stage.rs` (the only caller of rustls's connection API), `layer.rs` (the stage as a stream), its ciphertext buffers, configurations and errors |
//! | `connections/` | the connection table: a connection's struct and its lifecycle states (`connection.rs`), the dirty and woken lists, the buffer pool, the shared read buffer, the operations by id |
//! | `listeners`, `outgoing`, `connect` | listening ports and their accept state; connect attempts in progress; what `connect` takes |
//! | `endpoint/` | endpoint strings (`tcp:8000`, `tls:host=H:port=P`...) parsed, without I/O, into `ServerEndpoint` and `ClientEndpoint` |
//! | `timers/` | the timer queue (a hierarchical timing wheel) and the clocks; the timers part (whose timers a closing connection takes with it); the handles user code holds |
//! | `udp`, `reader` | datagram sockets (UDP and UNIX); descriptors watched for reading |
//! | `unix` | binding UNIX sockets (a stale file replaced, a live one refused, the mode), the socket file, peer credentials |
//! | `process` | child processes: `ProcessProtocol`, `ProcessBuilder`, `ProcessContext`, `ProcessExit`; a child's pipes are connections over `stream/pipe.rs` |
//! | `remote`, `shutdown` | what other threads reach the reactor through, the thread pool; graceful shutdown and signals |
//! | `task/` | async tasks: the runner, wakers, `JoinHandle`, `LocalHandle` and its futures, `AsyncConnection`, connect futures |
//! | `protocol`, `context`, `error` | what user code implements and is handed |
//! | `reactor/` | the coordinator: the turn and its dispatch (`mod.rs`), and every `impl Reactor`, one file per concern: driving connections (the read loop, the end-of-turn settle, closing, waking), listening, connecting, endpoints, pipes and standard I/O, child processes, TLS, timers, datagrams, readers, threads, shutdown, UNIX sockets |
//! | `testing/` | the in-memory harness: a real reactor whose connections lead to in-memory peers |
//!
//! `CONTRIBUTING.md` at the repository's root states each part's invariants and how a new
//! kind of stream is added.

mod address;
mod connect;
mod connections;
mod context;
mod endpoint;
mod error;
mod file_segment;
mod limits;
mod listeners;
mod metrics;
mod outgoing;
pub mod policies;
mod process;
mod protocol;
pub mod proxy;
mod reactor;
mod reactors;
mod reader;
mod reconnect;
mod remote;
mod shared_listener;
mod shutdown;
mod stream;
mod systemd;
mod table;
pub mod task;
pub mod testing;
mod timers;
pub mod tls;
mod udp;
mod unix;
mod write_queue;

pub use address::{Address, ParseUnixAddressError, UnixAddress};
pub use bytes::Bytes;
pub use connect::{
    ConnectOptions, Connector, Target, DEFAULT_ATTEMPT_DELAY, DEFAULT_CONNECT_TIMEOUT,
};
pub use connections::ConnectionId;
pub use context::{Context, WriteProgress};
pub use endpoint::{
    ClientEndpoint, EndpointError, ParseEndpointError, ServerEndpoint, SystemdDomain, SystemdSocket,
};
pub use error::{ConnectError, DisconnectReason};
pub use file_segment::FileSegment;
pub use limits::{ConnectionLimits, DEFAULT_MAX_TLS_HANDSHAKES};
pub use listeners::{ListenOptions, ListeningPort};
pub use metrics::Metrics;
pub use process::{
    ChildIo, ChildPipe, ProcessBuilder, ProcessContext, ProcessExit, ProcessId, ProcessProtocol,
};
pub use protocol::{ClientFactory, Factory, Protocol};
pub use reactor::Reactor;
pub use reactors::{Reactors, RunningReactors};
pub use reader::{FdReader, ReaderId};
pub use reconnect::{
    Backoff, BackoffState, ReconnectEvent, ReconnectHandle, ReconnectState, ReconnectingClient,
    DEFAULT_FACTOR, DEFAULT_INITIAL_DELAY, DEFAULT_JITTER, DEFAULT_MAX_DELAY,
};
pub use remote::{ReactorGone, ReactorHandle, WorkPanicked};
/// rustls, re-exported so configurations can be built with the very version torsion uses.
pub use rustls;
pub use shared_listener::SharedListener;
pub use shutdown::{Phase, DEFAULT_SHUTDOWN_TIMEOUT};
pub use stream::{MAX_FDS_PER_MESSAGE, MAX_HELD_FDS};
pub use timers::{DelayedCall, LoopingCall, ManualClock};
pub use tls::{TlsError, TlsOptions};
pub use udp::{DatagramContext, DatagramPort, DatagramProtocol, DEFAULT_MAX_DATAGRAM_SIZE};
pub use unix::{Credentials, UnixListenOptions};
