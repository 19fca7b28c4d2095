//! The benchmark's certificate and rustls configurations, made at start.
//!
//! One self-signed certificate for `localhost` (rcgen's default key: ECDSA P-256 with
//! SHA-256), made once per run with rcgen's `ring` backend. Every configuration is built with
//! `builder_with_provider` and ring's default provider, so no other crypto provider is ever
//! linked or picked by accident, and every server gets the same protocol versions and cipher
//! suites.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The name the certificate is issued for, and that the clients verify.
pub const SERVER_NAME: &str = "localhost";

/// The certificate and key every server presents.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// The certificate, PEM, for an external server's `--cert`.
    cert_pem: String,
    /// The key, PEM, for an external server's `--key`.
    key_pem: String,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn tls_error(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

impl Identity {
    /// A fresh self-signed certificate for [`SERVER_NAME`].
    pub fn generate() -> io::Result<Identity> {
        let certified =
            rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()]).map_err(tls_error)?;
        Ok(Identity {
            cert: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        })
    }

    /// Writes the certificate and key as PEM files into a fresh directory of their own, for
    /// external servers (`tls_echo_server --cert PEM --key PEM`): the same identity as the
    /// in-process servers present, so the clients trust it.
    pub fn write_files(&self) -> io::Result<CertFiles> {
        let dir = std::env::temp_dir().join(format!("torsion-bench-tls-{}", std::process::id()));
        // A fresh directory only this process uses (fails if it exists: nothing planted in a
        // shared /tmp is written through).
        fs::create_dir(&dir)?;
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        write_new(&files.cert, self.cert_pem.as_bytes())?;
        write_new(&files.key, self.key_pem.as_bytes())?;
        Ok(files)
    }

    /// A server configuration with rustls's defaults (TLS 1.3 and 1.2, ring's cipher suites,
    /// its in-memory session cache). Built once per server, so no server inherits another's
    /// session cache.
    pub fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .map_err(tls_error)?;
        Ok(Arc::new(config))
    }

    /// A client configuration trusting only this certificate. With `resume` false, session
    /// resumption is off, so every connection makes a full handshake.
    pub fn client_config(&self, resume: bool) -> io::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).map_err(tls_error)?;
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = Resumption::disabled();
        }
        Ok(Arc::new(config))
    }
}

/// The PEM files of an [`Identity`], removed (with their directory) when dropped.
pub struct CertFiles {
    dir: PathBuf,
    /// The certificate.
    pub cert: PathBuf,
    /// The private key (readable by the owner only).
    pub key: PathBuf,
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.cert);
        let _ = fs::remove_file(&self.key);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Creates `path` (which must not exist), owner-only, and writes `bytes`.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// [`SERVER_NAME`] as rustls wants it.
pub fn server_name() -> io::Result<ServerName<'static>> {
    ServerName::try_from(SERVER_NAME).map_err(tls_error)
}
