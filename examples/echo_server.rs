//! An echo server: every byte a client sends comes back.
//!
//! Run:   cargo run --release --example echo_server [ADDR]     (default 127.0.0.1:8000)
//! Talk:  nc 127.0.0.1 8000
//! Logs:  RUST_LOG=debug cargo run --example echo_server
//! Stop:  Ctrl-C or SIGTERM: it stops accepting, lets every connection flush, exits 0.
//!
//! It holds bounded memory even under a client that sends without ever reading: when the
//! echoes back up past the write-buffer high watermark, it stops reading from that client
//! until they drain.

use std::net::SocketAddr;
use std::process::ExitCode;

use torsion::{Context, Protocol, Reactor};

struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.resume_reading();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("echo_server: bad address {arg:?}: {e} (usage: echo_server [ADDR])");
            return ExitCode::from(2);
        }
    };
    match serve(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let mut reactor = Reactor::new()?;
    reactor.handle_signals()?;
    let port = reactor.listen_tcp(addr, || Echo)?;
    println!("echo server listening on {}", port.local_addr());
    reactor.run()
}
