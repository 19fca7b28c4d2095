//! Building rustls configurations for the common cases: a server from a certificate and key
//! (optionally requiring client certificates from a CA, optionally choosing its certificate
//! by SNI name), a client trusting the system's roots or a given CA (optionally presenting
//! its own certificate), and the loudly named client that verifies nothing. Every
//! configuration uses the `ring` provider explicitly, so no process-wide default provider is
//! needed. Anything else: build a `rustls` configuration yourself (`torsion::rustls`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ResolvesServerCertUsingSni, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::tls::TlsConfigError;

/// The `ring` crypto provider every configuration here uses.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain (end entity first) and its private key: what a server proves itself
/// with, or a client in mutual TLS.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        write!(f, "Identity({} certificates)", self.chain.len())
    }
}

impl Identity {
    /// An identity from DER certificates and key.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Identity {
        Identity { chain, key }
    }

    /// An identity from PEM text: every certificate in `chain_pem` (end entity first) and
    /// the first private key in `key_pem` (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsConfigError> {
        let chain = certificates_from_pem(chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey,
            e => TlsConfigError::Pem(e),
        })?;
        Ok(Identity { chain, key })
    }

    /// An identity from PEM files (`cert.pem` with the chain, `key.pem` with the key).
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Identity, TlsConfigError> {
        Identity::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }

    /// The certificate chain.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The chain and the key, to build a rustls configuration of your own.
    pub fn into_parts(self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain, self.key)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|error| TlsConfigError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Every certificate in PEM text; at least one.
fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsConfigError::Pem)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificates);
    }
    Ok(certs)
}

/// Trusted roots from PEM text (a CA file's contents): every certificate in it.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Trusted roots from a PEM file (a private CA, say).
pub fn roots_from_pem_file(path: impl AsRef<Path>) -> Result<RootCertStore, TlsConfigError> {
    roots_from_pem(&read(path.as_ref())?)
}

/// The operating system's trusted roots (through `rustls-native-certs`: on Linux the
/// distribution's CA bundle, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`). Certificates the
/// system holds but rustls cannot parse are skipped; none at all is an error.
pub fn system_roots() -> Result<RootCertStore, TlsConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the system has no CA certificates".to_string(),
        };
        return Err(TlsConfigError::NoRoots(why));
    }
    Ok(roots)
}

/// Whether a server asks clients for certificates (mutual TLS).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for (the usual web server).
    None,
    /// Every client must present a certificate signed by one of these roots; a client that
    /// presents none or another is refused during the handshake.
    Required(RootCertStore),
    /// Clients may present a certificate signed by one of these roots (it is then verified
    /// and visible through `Context::peer_certificates`), or none.
    Optional(RootCertStore),
}

/// A server configuration presenting `identity`, with `client_auth`. TLS 1.2 and 1.3; set
/// `alpn_protocols` on the result to offer ALPN (`vec![b"h2".to_vec(), b"http/1.1".to_vec()]`).
///
/// The server picks the cipher suite in its own order of preference (that of
/// [`crypto_provider`]: AES-256-GCM first), whatever order the client lists them in
/// (`ignore_client_order`), so a client cannot steer the session to its weakest suite.
pub fn server_config(
    identity: Identity,
    client_auth: ClientAuth,
) -> Result<ServerConfig, TlsConfigError> {
    let config = server_builder(client_auth)?.with_single_cert(identity.chain, identity.key)?;
    Ok(preferring_server_order(config))
}

/// A server configuration that picks its certificate by the name the client asks for (SNI):
/// one identity per DNS name. A client that asks for another name, or sends no SNI, is
/// refused during the handshake. Like [`server_config`], the server's cipher order wins.
pub fn server_config_with_sni<N: AsRef<str>>(
    identities: impl IntoIterator<Item = (N, Identity)>,
    client_auth: ClientAuth,
) -> Result<ServerConfig, TlsConfigError> {
    let provider = crypto_provider();
    let mut resolver = ResolvesServerCertUsingSni::new();
    for (name, identity) in identities {
        let key = CertifiedKey::from_der(identity.chain, identity.key, &provider)?;
        resolver.add(name.as_ref(), key)?;
    }
    let config = server_builder(client_auth)?.with_cert_resolver(Arc::new(resolver));
    Ok(preferring_server_order(config))
}

// Without this rustls takes the first suite in the client's list that it supports; scanners
// report that as "no server cipher order", and a client could pick the weakest suite on offer.
fn preferring_server_order(mut config: ServerConfig) -> ServerConfig {
    config.ignore_client_order = true;
    config
}

type ServerBuilder = rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>;

fn server_builder(client_auth: ClientAuth) -> Result<ServerBuilder, TlsConfigError> {
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let (roots, optional) = match client_auth {
        ClientAuth::None => return Ok(builder.with_no_client_auth()),
        ClientAuth::Required(roots) => (roots, false),
        ClientAuth::Optional(roots) => (roots, true),
    };
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if optional {
        verifier = verifier.allow_unauthenticated();
    }
    let verifier = verifier.build().map_err(TlsConfigError::Verifier)?;
    Ok(builder.with_client_cert_verifier(verifier))
}

/// A client configuration that verifies servers against `roots` (from [`system_roots`] or
/// [`roots_from_pem_file`]) and the server name of the connection. TLS 1.2 and 1.3; set
/// `alpn_protocols` on the result to offer ALPN.
pub fn client_config(roots: RootCertStore) -> Result<ClientConfig, TlsConfigError> {
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A client configuration as [`client_config`] that also presents `identity` to servers
/// asking for a client certificate (mutual TLS).
pub fn client_config_with_identity(
    roots: RootCertStore,
    identity: Identity,
) -> Result<ClientConfig, TlsConfigError> {
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(identity.chain, identity.key)?)
}

/// **Dangerous**: a client configuration that accepts *any* server certificate, for any
/// name, expired or self-signed, so anyone on the path can impersonate the server. The
/// session is encrypted but not authenticated. Only for tests and for talking to a device
/// whose certificate cannot be known in advance; never for the internet.
pub fn dangerous_client_config_accepting_any_server_certificate(
) -> Result<ClientConfig, TlsConfigError> {
    log::warn!("TLS client configured to accept any server certificate: no authentication");
    let provider = crypto_provider();
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(provider)))
        .with_no_client_auth())
}

/// Accepts every certificate, yet still checks the handshake signatures (so the session
/// keys are bound to the certificate's key, whatever that certificate is).
#[derive(Debug)]
struct AcceptAnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::version::{TLS12, TLS13};
    use rustls::{
        ClientConnection, ServerConnection, SupportedCipherSuite, SupportedProtocolVersion,
    };

    fn identity() -> Identity {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Identity::new(
            vec![certified.cert.der().clone()],
            PrivateKeyDer::Pkcs8(key),
        )
    }

    /// A client listing the provider's suites in the opposite order, for one TLS version.
    fn reversed_client(version: &'static SupportedProtocolVersion) -> ClientConnection {
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites.reverse();
        let provider = Arc::new(provider);
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(provider)))
            .with_no_client_auth();
        ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap()
    }

    fn negotiated(
        server: ServerConfig,
        version: &'static SupportedProtocolVersion,
    ) -> SupportedCipherSuite {
        let mut server = ServerConnection::new(Arc::new(server)).unwrap();
        let mut client = reversed_client(version);
        let mut wire = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            wire.clear();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            wire.clear();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut wire.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        server.negotiated_cipher_suite().unwrap()
    }

    /// The first suite of the server's own list for `version` that fits its ECDSA key.
    fn servers_choice(version: &'static SupportedProtocolVersion) -> SupportedCipherSuite {
        *crypto_provider()
            .cipher_suites
            .iter()
            .find(|suite| {
                suite.version() == version
                    && match suite {
                        SupportedCipherSuite::Tls12(s) => {
                            s.sign.contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
                        }
                        SupportedCipherSuite::Tls13(_) => true,
                    }
            })
            .unwrap()
    }

    #[test]
    fn a_client_listing_suites_backwards_gets_the_servers_first_choice() {
        for version in [&TLS13, &TLS12] {
            let config = server_config(identity(), ClientAuth::None).unwrap();
            let suite = negotiated(config, version);
            assert_eq!(
                suite.suite(),
                servers_choice(version).suite(),
                "{version:?}"
            );
        }
    }

    #[test]
    fn the_sni_server_prefers_its_own_order_too() {
        let config = server_config_with_sni([("localhost", identity())], ClientAuth::None).unwrap();
        assert!(config.ignore_client_order);
        let suite = negotiated(config, &TLS13);
        assert_eq!(suite.suite(), servers_choice(&TLS13).suite());
    }

    #[test]
    fn without_the_servers_order_the_client_would_choose() {
        // Proves the test above can fail: rustls's default follows the client's list.
        let mut config = server_config(identity(), ClientAuth::None).unwrap();
        config.ignore_client_order = false;
        let suite = negotiated(config, &TLS13);
        assert_ne!(suite.suite(), servers_choice(&TLS13).suite());
    }
}
