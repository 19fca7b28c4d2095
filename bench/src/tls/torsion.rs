//! torsion's TLS echo server: THE ONE PLACE TO FILL IN once torsion's TLS stage
//! (`Reactor::listen_tls`) is in the tree.
//!
//! Until then [`AVAILABLE`] is false, `--servers torsion` is refused with a message, and the
//! default server list leaves torsion out. To add it, set [`AVAILABLE`] to true and replace
//! the body of [`serve`] with the plain-TCP server's loop (`src/servers/torsion.rs`) listening
//! through TLS, that is:
//!
//! ```text
//! let mut reactor = Reactor::new()?;
//! let control = meter.control_arc();
//! let port = reactor.listen_tls(loopback_any_port(), config, move || {
//!     control.count_accept();
//!     Echo
//! })?;
//! let _ = addr_tx.send(port.local_addr());
//! loop {
//!     reactor.iterate(Some(TICK))?;
//!     if let Some(used) = meter.check()? {
//!         return Ok(used);
//!     }
//! }
//! ```
//!
//! (imports: `torsion::Reactor`, `crate::servers::torsion::Echo`,
//! `crate::servers::{loopback_any_port, TICK}`). Nothing else in the benchmark changes: the
//! clients, the tables and the torsion/tokio-rustls ratios already handle it. Check that
//! torsion's rustls is the bench's (`cargo tree -p torsion-bench -d rustls` shows no
//! duplicate), or the `ServerConfig` type will not match.

use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use rustls::ServerConfig;

use crate::cpu::CpuTimes;
use crate::servers::Meter;

/// Whether this build has torsion's TLS server.
pub const AVAILABLE: bool = false;

/// Serves TLS echo until the meter is told to stop; returns the measured phase's CPU time.
/// (Not yet: see the module documentation.)
pub fn serve(
    _meter: Meter,
    _addr_tx: mpsc::Sender<SocketAddr>,
    _config: Arc<ServerConfig>,
) -> io::Result<CpuTimes> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "torsion's TLS stage (Reactor::listen_tls) is not in this tree yet: \
         see bench/src/tls/torsion.rs",
    ))
}
