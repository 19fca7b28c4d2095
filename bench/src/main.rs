//! torsion's benchmarks, side by side with a hand-written mio loop and tokio, in one run.
//!
//! ```text
//! cargo run -p torsion-bench --release -- [echo|idle] [options]
//!   echo   server CPU time per echoed message (ping-pong and pipelined loads)
//!   idle   memory per idle connection
//!   (none) both
//! options:
//!   --rounds N        echo: rounds, each running every server under every load (7)
//!   --messages N      echo: messages per measured ping-pong run; pipelined: 10x (300000)
//!   --clients N       echo: client connections (50)
//!   --depth N         echo: messages in flight per connection when pipelined (16)
//!   --connections N   idle: connections held open (10000)
//!   --loads A,B       echo: which loads: ping-pong, pipelined (both)
//!   --servers A,B     which servers: torsion, mio, tokio (all)
//! ```
//!
//! See `bench/README.md` for what is measured and how.

mod alloc_counter;
mod cpu;
mod echo;
mod idle;
mod load;
mod mem;
mod servers;
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;

use echo::EchoConfig;
use idle::IdleConfig;
use servers::ServerKind;

/// Every allocation goes through the counter (counting only in `idle-server` processes).
#[global_allocator]
static ALLOCATOR: alloc_counter::CountingAlloc = alloc_counter::CountingAlloc;

/// What the command line asks for.
enum Command {
    /// Echo and/or idle benchmarks.
    Bench {
        echo: Option<EchoConfig>,
        idle: Option<IdleConfig>,
    },
    /// Hidden: one idle measurement, in a process of its own.
    IdleServer {
        kind: ServerKind,
        connections: usize,
    },
    /// Hidden: hold connections open for an idle measurement.
    Hold { addr: SocketAddr, count: usize },
}

const USAGE: &str = "usage: torsion-bench [echo|idle] [--rounds N] [--messages N] [--clients N] \
                     [--depth N] [--loads ping-pong,pipelined] [--connections N] \
                     [--servers torsion,mio,tokio]";

/// Parses a number argument, at least `min`.
fn number<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: Option<String>,
    min: T,
) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{name} needs a value"))?;
    match value.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("{name}: bad value {value:?}")),
    }
}

fn parse(args: Vec<String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    let what = match args.peek().map(String::as_str) {
        Some("echo" | "idle" | "all" | "idle-server" | "hold-connections") => args.next(),
        _ => None,
    };
    match what.as_deref() {
        Some("idle-server") => {
            let kind = args.next().and_then(|k| ServerKind::from_name(&k));
            let connections = number("connections", args.next(), 1usize)?;
            let kind = kind.ok_or("idle-server: bad server name")?;
            return Ok(Command::IdleServer { kind, connections });
        }
        Some("hold-connections") => {
            let addr: SocketAddr = args
                .next()
                .and_then(|a| a.parse().ok())
                .ok_or("hold-connections: bad address")?;
            if !addr.ip().is_loopback() {
                return Err("hold-connections: only loopback addresses".into());
            }
            let count = number("count", args.next(), 1usize)?;
            return Ok(Command::Hold { addr, count });
        }
        _ => {}
    }
    let mut echo = EchoConfig::default();
    let mut idle = IdleConfig::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => echo.rounds = number(&arg, args.next(), 1)?,
            "--messages" => echo.messages = number(&arg, args.next(), 1)?,
            "--clients" => echo.clients = number(&arg, args.next(), 1)?,
            "--depth" => echo.depth = number(&arg, args.next(), 1)?,
            "--connections" => idle.connections = number(&arg, args.next(), 1)?,
            "--loads" => {
                let list = args.next().ok_or("--loads needs a value")?;
                echo.ping_pong = false;
                echo.pipelined = false;
                for name in list.split(',') {
                    match name {
                        "ping-pong" => echo.ping_pong = true,
                        "pipelined" => echo.pipelined = true,
                        _ => return Err(format!("unknown load {name:?}")),
                    }
                }
            }
            "--servers" => {
                let list = args.next().ok_or("--servers needs a value")?;
                let kinds = list
                    .split(',')
                    .map(|name| {
                        ServerKind::from_name(name).ok_or(format!("unknown server {name:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                echo.servers = kinds.clone();
                idle.servers = kinds;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Bench {
        echo: (what.as_deref() != Some("idle")).then_some(echo),
        idle: (what.as_deref() != Some("echo")).then_some(idle),
    })
}

fn main() -> ExitCode {
    let command = match parse(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("torsion-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Bench { echo, idle } => echo
            .map_or(Ok(()), |c| echo::run(&c))
            .and_then(|()| idle.map_or(Ok(()), |c| idle::run(&c))),
        Command::IdleServer { kind, connections } => idle::serve_and_measure(kind, connections),
        Command::Hold { addr, count } => idle::hold_connections(addr, count),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torsion-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
