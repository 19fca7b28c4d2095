//! Embedding, way (a): the host program owns the loop. It ticks at 10 Hz, prints its tick
//! count once a second, and between ticks gives the reactor the rest of the tick to serve
//! echo on ADDR.
//!
//! Run:  cargo run --example embed_host_loop [ENDPOINT]      (default 127.0.0.1:8000)
//!       ENDPOINT: an IP:PORT or an endpoint string (`tcp:8000:interface=127.0.0.1`...)
//! Talk: nc 127.0.0.1 8000
//! Stop: Ctrl-C or SIGTERM (a graceful shutdown; exits 0).

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use torsion::protocols::wire::Echo;
use torsion::{Reactor, ServerEndpoint};

const TICK: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let Ok(addr) = arg.parse::<ServerEndpoint>() else {
        eprintln!("embed_host_loop: bad address {arg:?} (usage: embed_host_loop [ENDPOINT])");
        return ExitCode::from(2);
    };
    match host_loop(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed_host_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn host_loop(addr: ServerEndpoint) -> io::Result<()> {
    let mut reactor = Reactor::new()?;
    reactor.handle_signals()?;
    let port = reactor.listen(addr, || Echo).map_err(io::Error::other)?;
    println!(
        "host loop serving echo on {}",
        port.address(&reactor).expect("listening")
    );
    let mut ticks: u64 = 0;
    let mut next_tick = Instant::now() + TICK;
    loop {
        // The host's own work for this tick.
        ticks += 1;
        if ticks.is_multiple_of(10) {
            println!("tick {ticks}");
        }
        // The reactor gets the rest of the tick; it returns early, true, once a signal has
        // shut it down.
        if reactor.run_until(next_tick)? {
            return Ok(());
        }
        next_tick += TICK;
    }
}
