//! Why a TLS handshake or session failed, and why a TLS configuration could not be built.
//! rustls's own error is classified here into the reasons a program acts on (an unknown CA,
//! a name mismatch, an expired certificate, ...), keeping the original where it says more.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError, InvalidMessage, PeerIncompatible};

/// Why TLS failed on a connection: handed to
/// [`ClientFactory::client_connection_failed`](crate::ClientFactory::client_connection_failed)
/// inside [`ConnectError::Tls`](crate::ConnectError::Tls) when a client's handshake fails, and to
/// [`Protocol::connection_lost`](crate::Protocol::connection_lost) inside
/// [`DisconnectReason::Tls`](crate::DisconnectReason::Tls) when an established session (or a
/// [`start_tls`](crate::Context::start_tls_server) handshake) fails. On a
/// [`listen_tls`](crate::Reactor::listen_tls) port, a failed handshake reaches
/// [`Factory::handshake_failed`](crate::Factory::handshake_failed).
///
/// The certificate variants say what this side refused; [`PeerRejected`](TlsError::PeerRejected)
/// says the peer refused us (its alert tells why: often our certificate).
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate is not signed by a certificate authority this side trusts.
    UnknownIssuer,
    /// The peer's certificate is valid, but not for the name this client asked for.
    NotValidForName,
    /// The peer's certificate has expired.
    Expired,
    /// The peer's certificate is not valid yet.
    NotValidYet,
    /// The peer's certificate was refused for another reason (bad signature, revoked, bad
    /// encoding, unsupported extension): the rustls error says which.
    BadCertificate(rustls::Error),
    /// This server requires a client certificate and the client sent none.
    CertificateRequired,
    /// The peer ended the handshake or session with a fatal alert: it refused something of
    /// ours (`BadCertificate`, `UnknownCA`, `CertificateRequired`, `HandshakeFailure`, ...).
    PeerRejected(AlertDescription),
    /// No TLS version both sides accept (e.g. a TLS 1.2-only peer and a TLS 1.3-only config).
    ProtocolVersion,
    /// The peer cannot agree with us on the handshake (no cipher suite, key exchange group or
    /// ALPN protocol in common): the rustls error says which.
    Incompatible(rustls::Error),
    /// The peer sent bytes that are not TLS at all (plaintext, e.g. HTTP sent to an HTTPS port).
    NotTls,
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout(Duration),
    /// The peer closed the connection before the handshake completed.
    ClosedDuringHandshake,
    /// The socket failed during the handshake (the peer reset the connection, ...): what
    /// [`Factory::handshake_failed`](crate::Factory::handshake_failed) hears then. (A client
    /// hears the [`ConnectError`](crate::ConnectError) for the socket error instead.)
    Io(io::Error),
    /// The server name given to `connect` (or taken from its target) or to
    /// `start_tls_client` is neither a DNS name nor an IP address.
    InvalidServerName(String),
    /// `start_tls` on a connection that cannot start TLS (already TLS, closing, or gone).
    CannotStartTls(&'static str),
    /// Any other TLS protocol error (a corrupt or misordered record, a failed decryption, ...).
    Protocol(rustls::Error),
}

impl TlsError {
    /// Classifies an error from rustls.
    pub(crate) fn from_rustls(error: rustls::Error) -> TlsError {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(ref cert) => match cert {
                CertificateError::UnknownIssuer => TlsError::UnknownIssuer,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsError::NotValidForName,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsError::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsError::NotValidYet
                }
                _ => TlsError::BadCertificate(error),
            },
            E::NoCertificatesPresented => TlsError::CertificateRequired,
            E::AlertReceived(AlertDescription::ProtocolVersion) => TlsError::ProtocolVersion,
            E::AlertReceived(alert) => TlsError::PeerRejected(alert),
            E::PeerIncompatible(ref why) if is_version_mismatch(why) => TlsError::ProtocolVersion,
            E::PeerIncompatible(_) | E::NoApplicationProtocol => TlsError::Incompatible(error),
            E::InvalidMessage(InvalidMessage::InvalidContentType)
            | E::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => TlsError::NotTls,
            _ => TlsError::Protocol(error),
        }
    }

    /// Whether the peer's certificate was refused by this side.
    pub fn is_certificate_error(&self) -> bool {
        matches!(
            self,
            TlsError::UnknownIssuer
                | TlsError::NotValidForName
                | TlsError::Expired
                | TlsError::NotValidYet
                | TlsError::BadCertificate(_)
                | TlsError::CertificateRequired
        )
    }
}

fn is_version_mismatch(why: &PeerIncompatible) -> bool {
    matches!(
        why,
        PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
    )
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::UnknownIssuer => {
                f.write_str("peer certificate refused: signed by an unknown certificate authority")
            }
            TlsError::NotValidForName => {
                f.write_str("peer certificate refused: not valid for the requested name")
            }
            TlsError::Expired => f.write_str("peer certificate refused: expired"),
            TlsError::NotValidYet => f.write_str("peer certificate refused: not valid yet"),
            TlsError::BadCertificate(e) => write!(f, "peer certificate refused: {e}"),
            TlsError::CertificateRequired => {
                f.write_str("a client certificate is required and the peer sent none")
            }
            TlsError::PeerRejected(alert) => write!(f, "peer refused the TLS session: {alert:?}"),
            TlsError::ProtocolVersion => f.write_str("no TLS protocol version in common"),
            TlsError::Incompatible(e) => write!(f, "TLS handshake impossible: {e}"),
            TlsError::NotTls => f.write_str("peer does not speak TLS (sent plaintext?)"),
            TlsError::HandshakeTimeout(after) => {
                write!(f, "TLS handshake not complete within {after:?}")
            }
            TlsError::ClosedDuringHandshake => {
                f.write_str("peer closed the connection during the TLS handshake")
            }
            TlsError::Io(e) => write!(f, "socket error during the TLS handshake: {e}"),
            TlsError::InvalidServerName(name) => write!(f, "invalid TLS server name {name:?}"),
            TlsError::CannotStartTls(why) => write!(f, "cannot start TLS: {why}"),
            TlsError::Protocol(e) => write!(f, "TLS error: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::BadCertificate(e) | TlsError::Incompatible(e) | TlsError::Protocol(e) => {
                Some(e)
            }
            TlsError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a TLS configuration could not be built from certificates and keys.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// PEM text could not be parsed.
    Pem(rustls::pki_types::pem::Error),
    /// The PEM input held no certificate.
    NoCertificates,
    /// The PEM input held no private key.
    NoPrivateKey,
    /// No trusted root certificate could be loaded (none in the file, or none on the system).
    NoRoots(String),
    /// rustls refused the configuration (a key that does not match its certificate, an
    /// unsupported key type, ...).
    Rustls(rustls::Error),
    /// The client-certificate verifier could not be built.
    Verifier(rustls::server::VerifierBuilderError),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            TlsConfigError::Pem(e) => write!(f, "bad PEM: {e}"),
            TlsConfigError::NoCertificates => f.write_str("no certificate in the PEM input"),
            TlsConfigError::NoPrivateKey => f.write_str("no private key in the PEM input"),
            TlsConfigError::NoRoots(why) => write!(f, "no trusted root certificate: {why}"),
            TlsConfigError::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
            TlsConfigError::Verifier(e) => write!(f, "client certificate verifier: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Io { error, .. } => Some(error),
            TlsConfigError::Rustls(e) => Some(e),
            TlsConfigError::Verifier(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsConfigError {
    fn from(e: rustls::Error) -> Self {
        TlsConfigError::Rustls(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_map_to_the_reason_they_mean() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(matches!(
            TlsError::from_rustls(unknown),
            TlsError::UnknownIssuer
        ));
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(matches!(TlsError::from_rustls(expired), TlsError::Expired));
        let plaintext = rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType);
        assert!(matches!(TlsError::from_rustls(plaintext), TlsError::NotTls));
        let version = rustls::Error::AlertReceived(AlertDescription::ProtocolVersion);
        assert!(matches!(
            TlsError::from_rustls(version),
            TlsError::ProtocolVersion
        ));
        let refused = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert!(matches!(
            TlsError::from_rustls(refused),
            TlsError::PeerRejected(AlertDescription::UnknownCA)
        ));
        assert!(
            TlsError::from_rustls(rustls::Error::NoCertificatesPresented).is_certificate_error()
        );
    }
}
