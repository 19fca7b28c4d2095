//! torsion's TLS echo server: the plain-TCP benchmark's [`Echo`] protocol behind
//! `Reactor::listen_tls`, so the only difference from `torsion-tcp` is the TLS stage.

use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use rustls::ServerConfig;
use torsion::Reactor;

use crate::cpu::CpuTimes;
use crate::servers::torsion::Echo;
use crate::servers::{loopback_any_port, Meter, TICK};

/// Serves TLS echo until the meter is told to stop; returns the measured phase's CPU time.
pub fn serve(
    mut meter: Meter,
    addr_tx: mpsc::Sender<SocketAddr>,
    config: Arc<ServerConfig>,
) -> io::Result<CpuTimes> {
    let mut reactor = Reactor::new()?;
    let control = meter.control_arc();
    let port = reactor.listen_tls(loopback_any_port(), config, move || {
        control.count_accept();
        Echo
    })?;
    let _ = addr_tx.send(port.local_addr());
    loop {
        reactor.iterate(Some(TICK))?;
        if let Some(used) = meter.check()? {
            return Ok(used);
        }
    }
}
