//! torsion: a Twisted-style event-loop framework for Rust.
//!
//! A [`Reactor`] waits for sockets to become ready and calls methods on objects you write: a
//! [`Protocol`] per connection (`connection_made`, `data_received`, `connection_lost`), a
//! [`Factory`] that builds them, and a transport ([`Context`]) to write to.
//!
//! This crate is a facade: it re-exports [`torsion_reactor`] (the event loop) and
//! [`torsion_protocols`] (built-in protocols), and holds the guide in [`guide`].
//!
//! ```no_run
//! use torsion::{Context, Protocol, Reactor};
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
//!     reactor.listen_tcp("127.0.0.1:8000".parse().unwrap(), || Echo)?;
//!     reactor.run()
//! }
//! ```

pub use torsion_protocols as protocols;
pub use torsion_reactor::*;

/// The guide: one page per topic, from `docs/`. Its code snippets compile as doctests.
pub mod guide {
    #[doc = include_str!("../docs/concepts.md")]
    pub mod concepts {}

    #[doc = include_str!("../docs/tcp.md")]
    pub mod tcp {}

    #[doc = include_str!("../docs/endpoints.md")]
    pub mod endpoints {}

    #[doc = include_str!("../docs/reconnect.md")]
    pub mod reconnect {}

    #[doc = include_str!("../docs/waking.md")]
    pub mod waking {}

    #[doc = include_str!("../docs/timers.md")]
    pub mod timers {}

    #[doc = include_str!("../docs/threads.md")]
    pub mod threads {}

    #[doc = include_str!("../docs/async.md")]
    pub mod async_code {}

    #[doc = include_str!("../docs/security.md")]
    pub mod security {}

    #[doc = include_str!("../docs/embedding.md")]
    pub mod embedding {}

    #[doc = include_str!("../docs/lines.md")]
    pub mod lines {}

    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}

    #[doc = include_str!("../docs/fuzzing.md")]
    pub mod fuzzing {}

    #[doc = include_str!("../docs/udp.md")]
    pub mod udp {}

    #[doc = include_str!("../docs/unix-sockets.md")]
    pub mod unix_sockets {}
    #[doc = include_str!("../docs/stdio.md")]
    pub mod stdio {}

    #[doc = include_str!("../docs/processes.md")]
    pub mod processes {}

    #[doc = include_str!("../docs/http-server.md")]
    pub mod http_server {}

    #[doc = include_str!("../docs/http-client.md")]
    pub mod http_client {}
    #[doc = include_str!("../docs/websocket.md")]
    pub mod websocket {}
    #[doc = include_str!("../docs/ftp-server.md")]
    pub mod ftp_server {}
    #[doc = include_str!("../docs/tls.md")]
    pub mod tls {}
    #[doc = include_str!("../docs/deployment.md")]
    pub mod deployment {}
}

/// Compiles the README's snippets under `cargo test --doc`, so the README cannot drift from
/// the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
