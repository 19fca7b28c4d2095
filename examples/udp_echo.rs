//! A UDP echo server: every datagram goes back to its sender.
//!
//! Run:   cargo run --release --example udp_echo [ADDR]      (default 127.0.0.1:9000)
//! Talk:  nc -u 127.0.0.1 9000
//! Stop:  Ctrl-C or SIGTERM (exits 0).
//!
//! Safe to expose: it never answers a datagram that could start a loop
//! (`torsion::protocols::reflection`): one from its own port (a spoofed datagram "from"
//! itself would make it echo to itself forever), from port 0, from another service that
//! answers everything (ports 7, 13, 17, 19, 37), or from a multicast or broadcast source.
//! Those are dropped, logged at debug level (not warn: a flood of them must not become a
//! flood of log lines).

use std::net::SocketAddr;
use std::process::ExitCode;

use log::{debug, warn};
use torsion::protocols::reflection::refusal;
use torsion::{Address, DatagramContext, DatagramProtocol, Reactor};

struct UdpEcho;

impl DatagramProtocol for UdpEcho {
    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        if let (Some(source), Ok(local)) = (from.as_tcp(), cx.local_addr()) {
            if let Some(why) = refusal(source, local) {
                return debug!("not echoing to {from}: {why}");
            }
        }
        if let Err(e) = cx.send_to(data, &from) {
            warn!("echo to {from}: {e}");
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_string());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("udp_echo: bad address {arg:?}: {e} (usage: udp_echo [ADDR])");
            return ExitCode::from(2);
        }
    };
    let served = (|| {
        let mut reactor = Reactor::new()?;
        reactor.handle_signals()?;
        let port = reactor.listen_udp(addr, UdpEcho)?;
        println!("udp echo on {}", port.local_addr());
        reactor.run()
    })();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
