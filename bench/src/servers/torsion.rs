//! torsion's echo server: a [`Protocol`] that writes back every chunk it receives, exactly as
//! `examples/echo_server.rs` does (without the flow-control hooks, which this load never
//! triggers).

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;

use torsion::{Context, Protocol, Reactor};

use crate::cpu::CpuTimes;

use super::{loopback_any_port, Meter, TICK};

/// The echo protocol: stateless, so a boxed one owns no heap memory. Also the protocol of
/// the TLS benchmark's torsion server (`src/tls/torsion.rs`).
pub struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
}

/// Serves until the meter is told to stop; returns the measured phase's CPU time.
pub fn serve(mut meter: Meter, addr_tx: mpsc::Sender<SocketAddr>) -> io::Result<CpuTimes> {
    let mut reactor = Reactor::new()?;
    let control = meter.control_arc();
    let port = reactor.listen_tcp(loopback_any_port(), move || {
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
