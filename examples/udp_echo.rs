//! A UDP echo server: every datagram goes back to its sender.
//!
//! Run:   cargo run --release --example udp_echo [ADDR] [--threads N]
//!        (default 127.0.0.1:9000, one thread; options before or after ADDR)
//!        --threads N: N reactors on N threads, each with its own socket on the port
//!        (`SO_REUSEPORT`: the kernel sends each peer's datagrams to one of them)
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
use std::sync::Mutex;

use log::{debug, warn};
use torsion::protocols::reflection::refusal;
use torsion::{Address, DatagramContext, DatagramProtocol, Reactors};

/// Echoes datagrams; `local` is the socket's own address, asked once when it starts.
#[derive(Default)]
struct UdpEcho {
    local: Option<SocketAddr>,
}

impl DatagramProtocol for UdpEcho {
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        self.local = cx.local_addr().ok();
    }

    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        if let (Some(source), Some(local)) = (from.as_tcp(), self.local) {
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
    let (addr, threads) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("udp_echo: {e} (usage: udp_echo [ADDR] [--threads N])");
            return ExitCode::from(2);
        }
    };
    match serve(addr, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `[ADDR] [--threads N]`, in either order.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, usize), String> {
    let (mut arg, mut threads) = (None, 1);
    while let Some(next) = args.next() {
        match next.as_str() {
            "--threads" => {
                threads = match args.next().map(|n| n.parse::<usize>()) {
                    Some(Ok(n)) if n > 0 => n,
                    _ => return Err("--threads needs a number of threads, 1 or more".into()),
                }
            }
            option if option.starts_with("--") => return Err(format!("unknown option {option}")),
            _ if arg.is_none() => arg = Some(next),
            _ => return Err(format!("unexpected argument {next:?}")),
        }
    }
    let arg = arg.unwrap_or_else(|| "127.0.0.1:9000".to_string());
    let addr = arg
        .parse()
        .map_err(|e| format!("bad address {arg:?}: {e}"))?;
    Ok((addr, threads))
}

/// Runs `threads` reactors, each with its own socket on the port the first one bound.
fn serve(addr: SocketAddr, threads: usize) -> std::io::Result<()> {
    let bound = Mutex::new(addr);
    Reactors::new(threads)
        .handle_signals()
        .run(move |reactor, index| {
            let mut addr = bound.lock().unwrap();
            let port = match threads {
                1 => reactor.listen_udp(*addr, UdpEcho::default())?,
                _ => reactor.listen_udp_reuse_port(*addr, UdpEcho::default())?,
            };
            *addr = port.local_addr();
            if index == 0 {
                println!("udp echo on {}", port.local_addr());
            }
            Ok::<(), std::io::Error>(())
        })
}
