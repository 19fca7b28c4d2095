//! The public face of TLS on the context: STARTTLS, and what a protocol can learn about its
//! peer.

use std::io;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};

use crate::stream::Stream;
use crate::tls::stage::{server_name as parse_server_name, Session, TlsStream};
use crate::tls::TlsError;
use crate::Context;

impl Context<'_> {
    /// Upgrades this plain connection to TLS as the server (STARTTLS; Twisted's
    /// `startTLS`). Everything written before this call goes out in plaintext first;
    /// everything written after is encrypted, once the handshake is complete
    /// ([`Protocol::tls_handshake_completed`](crate::Protocol::tls_handshake_completed)
    /// says when). A failed handshake closes the connection, and the protocol hears why in
    /// `connection_lost`: [`DisconnectReason::Tls`](crate::DisconnectReason::Tls), or the
    /// socket's error. The factory of the port that accepted the connection is not told
    /// ([`Factory::handshake_failed`](crate::Factory::handshake_failed) is for `listen_tls` ports, whose protocols are not made
    /// yet). The handshake times out after
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::tls::DEFAULT_HANDSHAKE_TIMEOUT).
    ///
    /// `already_received` hands back bytes this protocol received but that belong to the
    /// TLS stream: a client may send its ClientHello right behind the STARTTLS command, in
    /// the same read. Pass whatever followed the command in the data received (an empty
    /// slice if nothing did); the reactor reads them before the socket.
    pub fn start_tls_server(
        &mut self,
        config: impl Into<Arc<ServerConfig>>,
        already_received: &[u8],
    ) -> Result<(), TlsError> {
        let session = Session::server(super::sni::recording(config.into()))?;
        let key = self.id().0;
        self.reactor().start_tls(key, session, already_received)
    }

    /// Upgrades this plain connection to TLS as the client, verifying the server's
    /// certificate for `server_name`; see [`start_tls_server`](Context::start_tls_server)
    /// for what goes out in plaintext and when the handshake ends.
    pub fn start_tls_client(
        &mut self,
        config: impl Into<Arc<ClientConfig>>,
        server_name: &str,
    ) -> Result<(), TlsError> {
        let session = Session::client(config.into(), parse_server_name(server_name)?)?;
        let key = self.id().0;
        self.reactor().start_tls(key, session, &[])
    }

    /// Whether this connection runs TLS (from `listen_tls`, a TLS `connect`, or `start_tls`).
    pub fn is_tls(&self) -> bool {
        self.tls().is_some()
    }

    /// The peer's certificate chain, end entity first, as verified during the handshake:
    /// the server's on a client; on a server, the client's if it sent one (mutual TLS).
    /// `None` before the handshake completes or on a plain connection.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls()?.peer_certificates()
    }

    /// On a TLS server, the host name the client asked for (SNI), if it sent one.
    pub fn sni_name(&self) -> Option<&str> {
        self.tls()?.sni_name()
    }

    /// The application protocol both sides agreed on with ALPN (`b"h2"`, `b"http/1.1"`),
    /// if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls()?.alpn_protocol()
    }

    /// The TLS version negotiated, once the handshake is complete.
    pub fn tls_protocol_version(&self) -> Option<ProtocolVersion> {
        self.tls()?.protocol_version()
    }

    fn tls(&self) -> Option<&TlsStream> {
        self.connection()?.stream.tls()
    }
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> io::Error {
        io::Error::other(e)
    }
}
