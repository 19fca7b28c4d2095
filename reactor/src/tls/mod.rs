//! TLS with rustls (its `ring` provider): TLS ports ([`Reactor::listen_tls`]), TLS clients
//! ([`Reactor::connect`] with [`ConnectOptions::tls`]), and upgrading a plain connection in
//! place ([`Context::start_tls_server`], [`Context::start_tls_client`]), as Twisted's
//! `listenSSL`, `connectSSL` and `startTLS`.
//!
//! TLS is a layer between the socket and the protocol, not a second transport: the protocol
//! reads and writes plaintext through the same [`Context`] (writes, `lose_connection`,
//! half-close, watermarks, pause and resume all work on plaintext bytes). Underneath, the
//! reactor reads ciphertext into the stage's buffer, where rustls (its unbuffered API)
//! decrypts it in place, and hands the protocol the plaintext; at the end of a turn it
//! encrypts the connection's write queue into the stage's bounded outgoing buffer and writes
//! that to the socket, so the backlog stays in the queue. The stage's buffers come from a
//! pool and go back to it when empty: an idle TLS connection holds none.
//!
//! - A `listen_tls` or TLS `connect` connection is *made* (`connection_made`) only once its
//!   handshake is complete, so the protocol can read the peer's certificate, SNI name and ALPN
//!   protocol there. A client whose handshake fails hears it in
//!   [`client_connection_failed`](crate::ClientFactory::client_connection_failed) as
//!   [`ConnectError::Tls`](crate::ConnectError::Tls); on a server, the port's factory hears
//!   it in [`handshake_failed`](crate::Factory::handshake_failed) (which logs it by default)
//!   and the protocol is dropped unheard. After `start_tls`, the protocol hears it in
//!   `connection_lost`. Handshakes time out after [`DEFAULT_HANDSHAKE_TIMEOUT`].
//! - `lose_connection` sends `close_notify` once the queue is written, then closes; a peer's
//!   `close_notify` is `eof_received`; a peer that closes TCP without it ends the connection
//!   with [`DisconnectReason::Truncated`](crate::DisconnectReason::Truncated).
//! - Clients verify the server's certificate and name; the helpers here build configurations
//!   for the common cases ([`client_config`], [`server_config`], [`ClientAuth`] for mutual
//!   TLS, [`server_config_with_sni`]), and rustls itself is re-exported as
//!   [`rustls`] to build any other (the one torsion is built with).
//!
//! The guide's TLS page (`torsion::guide::tls`) walks through it all.
//!
//! [`Context`]: crate::Context
//! [`Context::start_tls_server`]: crate::Context::start_tls_server
//! [`Context::start_tls_client`]: crate::Context::start_tls_client
//! [`Reactor::listen_tls`]: crate::Reactor::listen_tls
//! [`Reactor::connect`]: crate::Reactor::connect
//! [`ConnectOptions::tls`]: crate::ConnectOptions::tls

mod api;
mod buffers;
mod config;
mod error;
mod layer;
mod sni;
pub(crate) mod stage;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

pub use config::{
    client_config, client_config_with_identity, crypto_provider,
    dangerous_client_config_accepting_any_server_certificate, roots_from_pem, roots_from_pem_file,
    server_config, server_config_with_sni, system_roots, ClientAuth, Identity,
};
pub use error::{TlsConfigError, TlsError};

/// How long a TLS handshake may take by default before the connection is dropped: long
/// enough for a slow link, short enough that idle half-open handshakes do not pile up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for [`Reactor::listen_tls_with`](crate::Reactor::listen_tls_with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// How long a client may take to complete its handshake before it is dropped (the
    /// factory's [`handshake_failed`](crate::Factory::handshake_failed) hears
    /// [`TlsError::HandshakeTimeout`]).
    /// Default: [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl TlsOptions {
    /// Options with the given handshake timeout.
    pub fn with_handshake_timeout(handshake_timeout: Duration) -> Self {
        TlsOptions { handshake_timeout }
    }
}

/// Which TLS port accepted a connection, and from whom: kept in the connection's TLS layer,
/// so that the port's factory can hear of a failed handshake.
#[derive(Clone)]
pub(crate) struct Accepted {
    /// The listener's key; stale once the port stops listening.
    pub(crate) listener: crate::table::Key,
    pub(crate) peer: crate::Address,
}

/// What a TLS listener keeps: the configuration every accepted connection handshakes with.
pub(crate) struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) options: TlsOptions,
}

impl ServerTls {
    /// What a listener keeps for `config`.
    pub(crate) fn new(config: Arc<ServerConfig>, options: TlsOptions) -> ServerTls {
        ServerTls {
            config: sni::recording(config),
            options,
        }
    }

    /// A session for one accepted connection, and its handshake timeout.
    pub(crate) fn session(&self) -> Result<(stage::Session, Duration), TlsError> {
        let session = stage::Session::server(self.config.clone())?;
        Ok((session, self.options.handshake_timeout))
    }
}
