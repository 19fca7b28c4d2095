//! The name a TLS client asked for (SNI), on the server side. rustls 0.23's unbuffered server
//! connection does not expose it (its buffered one does), but it hands it to the certificate
//! resolver, during the handshake, inside the reactor's call to rustls for that connection.
//! So every server configuration the reactor uses gets its resolver wrapped in one that notes
//! the name on the calling thread; the stage takes it right after the call.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

thread_local! {
    /// The name the last resolved ClientHello asked for, until the stage takes it.
    static RECORDED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `config` with its certificate resolver wrapped to note the client's SNI name (a copy of
/// the configuration: its session cache and ticketer are shared with the original), and
/// early data (0-RTT) turned off: the stage hands the protocol nothing before the handshake
/// completes, and a client refused 0-RTT sends its data again after the handshake.
pub(crate) fn recording(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = Arc::unwrap_or_clone(config);
    config.cert_resolver = Arc::new(Recorder(config.cert_resolver.clone()));
    config.max_early_data_size = 0;
    Arc::new(config)
}

/// The name noted during the last call to rustls on this thread, if any (then forgotten).
pub(crate) fn take_recorded() -> Option<String> {
    RECORDED.with(|name| name.borrow_mut().take())
}

/// A certificate resolver that notes the SNI name before asking the one it wraps.
#[derive(Debug)]
struct Recorder(Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for Recorder {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().map(str::to_owned);
        RECORDED.with(|recorded| *recorded.borrow_mut() = name);
        self.0.resolve(client_hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}
