//! LAN discovery: announces itself every second on a multicast group (or by broadcast) and
//! prints the beacons of others.
//!
//! Run:   cargo run --example udp_beacon -- [--group GROUP:PORT | --broadcast ADDR:PORT]
//!            [--interface IPV4] [--name NAME]
//!        default: --group 239.255.42.42:4242 on --interface 127.0.0.1 (this host only; give
//!        your LAN interface's address to announce on the LAN)
//! Try:   two of them in two terminals: each prints the other's beacons.
//! Stop:  Ctrl-C or SIGTERM (exits 0).
//!
//! A beacon is one datagram: `torsion-beacon NAME`. Its own beacons come back to it (multicast
//! loop) and are not printed. Anyone on the LAN can send one, so a name is printed escaped
//! (control characters in caret notation: ESC as `^[`, so no escape sequence reaches the
//! terminal) and cut to 64 characters (the last one `…`): `torsion::protocols::terminal`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use log::warn;
use torsion::protocols::terminal::escape_bounded;
use torsion::{Address, DatagramContext, DatagramProtocol, Reactor};

const BEACON_PREFIX: &str = "torsion-beacon ";

/// The most characters of an announced name printed.
const SHOWN_NAME_CHARS: usize = 64;

/// How to announce: to a multicast group, or to a broadcast address.
#[derive(Clone, Copy)]
enum Mode {
    Group(SocketAddrV4),
    Broadcast(SocketAddrV4),
}

struct Options {
    mode: Mode,
    interface: Ipv4Addr,
    name: String,
}

struct Beacon {
    options: Options,
}

impl Beacon {
    fn target(&self) -> SocketAddr {
        match self.options.mode {
            Mode::Group(addr) | Mode::Broadcast(addr) => SocketAddr::V4(addr),
        }
    }

    fn announce(&mut self, cx: &mut DatagramContext<'_>) {
        let beacon = format!("{BEACON_PREFIX}{}", self.options.name);
        if let Err(e) = cx.send_to(beacon.as_bytes(), self.target()) {
            warn!("beacon to {}: {e}", self.target());
        }
        cx.call_later(Duration::from_secs(1), |this: &mut Beacon, cx| {
            this.announce(cx)
        });
    }

    fn set_up(&mut self, cx: &mut DatagramContext<'_>) -> std::io::Result<()> {
        match self.options.mode {
            Mode::Group(group) => {
                cx.join_multicast_v4(*group.ip(), self.options.interface)?;
                cx.set_multicast_interface_v4(self.options.interface)?;
                cx.set_multicast_loop_v4(true)?;
            }
            Mode::Broadcast(_) => cx.set_broadcast(true)?,
        }
        Ok(())
    }
}

impl DatagramProtocol for Beacon {
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        if let Err(e) = self.set_up(cx) {
            eprintln!("udp_beacon: cannot set up the socket: {e}");
            cx.reactor().stop();
            return;
        }
        println!("announcing as {:?} to {}", self.options.name, self.target());
        self.announce(cx);
    }

    fn datagram_received(&mut self, _cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        let text = String::from_utf8_lossy(data);
        match text.strip_prefix(BEACON_PREFIX) {
            Some(name) if name != self.options.name => {
                let name = escape_bounded(name, SHOWN_NAME_CHARS);
                println!("beacon from {name} at {from}")
            }
            _ => {}
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        mode: Mode::Group(SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 42), 4242)),
        interface: Ipv4Addr::LOCALHOST,
        name: format!("torsion-{}", std::process::id()),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--group" => options.mode = Mode::Group(parse_addr(&value()?)?),
            "--broadcast" => options.mode = Mode::Broadcast(parse_addr(&value()?)?),
            "--interface" => {
                options.interface = value()?.parse().map_err(|e| format!("--interface: {e}"))?
            }
            "--name" => options.name = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn parse_addr(text: &str) -> Result<SocketAddrV4, String> {
    text.parse().map_err(|e| format!("{text:?}: {e}"))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("udp_beacon: {e}\nusage: udp_beacon [--group ADDR:PORT | --broadcast ADDR:PORT] [--interface IPV4] [--name NAME]");
            return ExitCode::from(2);
        }
    };
    // Listen where the beacons arrive: the group's (or broadcast) address and port, so that
    // nothing else sent to this host's port is heard.
    let bind = match options.mode {
        Mode::Group(addr) | Mode::Broadcast(addr) => SocketAddr::V4(addr),
    };
    let run = (|| {
        let mut reactor = Reactor::new()?;
        reactor.handle_signals()?;
        reactor.listen_multicast(bind, Beacon { options })?;
        reactor.run()
    })();
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_beacon: {bind}: {e}");
            ExitCode::FAILURE
        }
    }
}
