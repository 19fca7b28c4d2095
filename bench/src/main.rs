//! torsion's benchmarks, side by side with a hand-written mio loop and tokio, in one run.
//!
//! ```text
//! cargo run -p torsion-bench --release -- [echo|idle|timers] [options]
//!   echo   server CPU time per echoed message (ping-pong and pipelined loads)
//!   idle   memory per idle connection
//!   timers 1,000,000 timers scheduled, half cancelled, half fired
//!   (none) all three
//!   chat   one message fanned out to N chat users: `chat [--users N (1000)] [--messages N (20)]`
//!   http   GET /plaintext, torsion's HttpServer against hyper, under wrk (not in "all"):
//!          `http [--duration S (5)] [--connections N (50)] [--threads N (1)] [--depth N (16)]
//!          [--rounds N (5)] [--servers torsion,hyper,hyper-flush] [--loads plain,pipelined]
//!          [--pin] [--processes hyper-flush,torsion|none] [--external NAME=COMMAND]...`
//!   tls    TLS echo throughput and handshake rate, torsion's TLS stage against tokio-rustls,
//!          with plain-TCP references (not in "all"): `tls [--rounds N (7)] [--bytes N (1G)]
//!          [--clients N (10)] [--handshakes N (5000)] [--loads throughput,handshake]
//!          [--servers torsion,tokio-rustls,torsion-tcp,tokio-tcp] [--external NAME=COMMAND]...`
//!   tasks  async tasks spawned and woken, torsion against tokio's current-thread runtime
//!          (not in "all"): `tasks [--rounds N (7)] [--tasks N (200000)] [--wakes N (1000000)]`
//!   static a 1 MiB and a 4 KiB file from torsion's StaticFiles against nginx (one worker,
//!          sendfile on), under wrk (not in "all"): `static [--duration S (5)]
//!          [--connections N (50)] [--threads N (1)] [--rounds N (5)]`
//! options:
//!   --rounds N        echo: rounds, each running every server under every load (7);
//!                     timers: rounds, each running every implementation (5)
//!   --messages N      echo: messages per measured ping-pong run; pipelined: 10x (300000)
//!   --clients N       echo: client connections (50)
//!   --depth N         echo: messages in flight per connection when pipelined (16)
//!   --connections N   idle: connections held open (10000)
//!   --loads A,B       echo: which loads: ping-pong, pipelined (both)
//!   --servers A,B     which servers: torsion, mio, tokio (all); `none` for none
//!   --external NAME=COMMAND
//!                     echo, idle (and http, tls): also measure a server process started
//!                     from COMMAND, e.g. `after=target/release/examples/echo_server`
//!                     (repeatable; `{addr}` in COMMAND places the address, else it is
//!                     appended; see bench/README.md)
//!   --timers N        timers: timers per sample, every other one cancelled (1000000)
//!   --lead MS         timers: the shortest delay, longer than scheduling and cancelling
//!                     take (100 + 0.002 x timers)
//!   --window MS       timers: the delays spread over lead .. lead + window (100)
//!   --sorted          timers: delays in scheduling order (default: scrambled)
//!   --live            timers: fire as the deadlines come due (default: all due first)
//!   --impls A,B       timers: torsion, tokio, delay-queue (all)
//!   --no-memory       timers: skip the heap-per-timer samples
//!   --fresh           timers: a new reactor/runtime for every sample (default: one each,
//!                     kept from sample to sample after a first, cold one)
//! ```
//!
//! See `bench/README.md` for what is measured and how.

mod alloc_counter;
mod chat;
mod cpu;
mod echo;
mod external;
mod http;
mod idle;
mod load;
mod mem;
mod multicore;
mod servers;
mod static_files;
mod stats;
mod tasks;
mod timers;
mod tls;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use echo::EchoConfig;
use external::ExternalSpec;
use idle::IdleConfig;
use servers::ServerKind;
use timers::{TimerKind, TimersConfig};

/// Every allocation goes through the counter (counting only in `idle-server` processes).
#[global_allocator]
static ALLOCATOR: alloc_counter::CountingAlloc = alloc_counter::CountingAlloc;

/// What the command line asks for.
enum Command {
    /// Echo, idle and/or timer benchmarks.
    Bench {
        echo: Option<EchoConfig>,
        idle: Option<IdleConfig>,
        timers: Option<TimersConfig>,
    },
    /// The chat fan-out benchmark (`src/chat.rs`).
    Chat(chat::ChatConfig),
    /// N reactors against tokio's multi-thread runtime and hyper (`src/multicore.rs`).
    Multicore(multicore::MulticoreConfig),
    /// The HTTP benchmark against hyper (`src/http.rs`).
    Http(http::HttpConfig),
    /// The TLS benchmark against tokio-rustls (`src/tls/`).
    Tls(tls::TlsConfig),
    /// The static-files benchmark against nginx (`src/static_files.rs`).
    Static(static_files::StaticConfig),
    /// Async tasks against tokio's current-thread runtime (`src/tasks.rs`).
    Tasks(tasks::TasksConfig),
    /// Hidden: one idle measurement, in a process of its own.
    IdleServer {
        kind: ServerKind,
        connections: usize,
    },
    /// Hidden: hold connections open for an idle measurement.
    Hold { addr: SocketAddr, count: usize },
    /// Hidden: tokio's echo or hyper on a multi-thread runtime, as a process, until SIGTERM.
    ServeMulticore {
        http: bool,
        threads: usize,
        addr: SocketAddr,
    },
    /// Hidden: hyper's HTTP server as a process of its own, until SIGTERM.
    ServeHttp {
        kind: http::HttpKind,
        addr: SocketAddr,
    },
}

const USAGE: &str = "usage: torsion-bench [echo|idle|timers] [--rounds N] [--messages N] \
                     [--clients N] [--depth N] [--loads ping-pong,pipelined] [--connections N] \
                     [--servers torsion,mio,tokio|none] [--external NAME=COMMAND]... \
                     [--timers N] [--lead MS] [--window MS] \
                     [--sorted] [--live] [--fresh] [--impls torsion,tokio,delay-queue] \
                     [--no-memory]
       torsion-bench chat [--users N] [--messages N]
       torsion-bench multicore [--threads 1,2] [--duration S] [--connections N] [--loads echo,http] \
                     [--rounds N] [--modes in-process,processes] [--server-cpus LIST]
       torsion-bench http [--duration S] [--connections N] [--threads N] [--depth N] \
                     [--rounds N] [--servers torsion,hyper,hyper-flush|none] [--loads plain,pipelined] [--pin] \
                     [--processes hyper-flush,torsion|none] [--external NAME=COMMAND]...
       torsion-bench tls [--rounds N] [--bytes N] [--clients N] [--handshakes N] \
                     [--loads throughput,handshake] [--servers torsion,tokio-rustls,torsion-tcp,tokio-tcp|none] \
                     [--external NAME=COMMAND]...
       torsion-bench static [--duration S] [--connections N] [--threads N] [--rounds N]
       torsion-bench tasks [--rounds N] [--tasks N] [--wakes N]";

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
    if args.first().map(String::as_str) == Some("multicore") {
        return multicore::parse(args.into_iter().skip(1)).map(Command::Multicore);
    }
    if args.first().map(String::as_str) == Some("chat") {
        return chat::parse(args.into_iter().skip(1)).map(Command::Chat);
    }
    if args.first().map(String::as_str) == Some("http") {
        return http::parse(args.into_iter().skip(1)).map(Command::Http);
    }
    if args.first().map(String::as_str) == Some("serve-multicore") {
        let http = match args.get(1).map(String::as_str) {
            Some("echo") => Some(false),
            Some("http") => Some(true),
            _ => None,
        };
        let threads = args
            .get(2)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0);
        let addr = args.get(3).and_then(|a| a.parse::<SocketAddr>().ok());
        return match (http, threads, addr) {
            (Some(http), Some(threads), Some(addr)) if addr.ip().is_loopback() => {
                Ok(Command::ServeMulticore {
                    http,
                    threads,
                    addr,
                })
            }
            _ => Err(
                "serve-multicore: expected echo|http, a thread count and a loopback address".into(),
            ),
        };
    }
    if args.first().map(String::as_str) == Some("serve-http") {
        let kind = args.get(1).and_then(|k| http::HttpKind::from_name(k));
        let addr = args.get(2).and_then(|a| a.parse::<SocketAddr>().ok());
        return match (kind, addr) {
            (Some(kind), Some(addr)) if addr.ip().is_loopback() => {
                Ok(Command::ServeHttp { kind, addr })
            }
            _ => Err("serve-http: expected hyper|hyper-flush and a loopback address".into()),
        };
    }
    if args.first().map(String::as_str) == Some("tasks") {
        return tasks::parse(args.into_iter().skip(1)).map(Command::Tasks);
    }
    if args.first().map(String::as_str) == Some("static") {
        return static_files::parse(args.into_iter().skip(1)).map(Command::Static);
    }
    if args.first().map(String::as_str) == Some("tls") {
        return tls::parse(args.into_iter().skip(1)).map(Command::Tls);
    }
    let mut args = args.into_iter().peekable();
    let what = match args.peek().map(String::as_str) {
        Some("echo" | "idle" | "timers" | "all" | "idle-server" | "hold-connections") => {
            args.next()
        }
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
    let mut timers = TimersConfig::default();
    let mut builtins = ServerKind::ALL.to_vec();
    let mut externals = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => {
                echo.rounds = number(&arg, args.next(), 1)?;
                timers.rounds = echo.rounds;
            }
            "--timers" => timers.timers = number(&arg, args.next(), 2)?,
            "--lead" => timers.lead = Duration::from_millis(number(&arg, args.next(), 1)?),
            "--window" => timers.window = Duration::from_millis(number(&arg, args.next(), 0)?),
            "--sorted" => timers.sorted = true,
            "--live" => timers.live = true,
            "--no-memory" => timers.memory = false,
            "--fresh" => timers.fresh = true,
            "--impls" => {
                let list = args.next().ok_or("--impls needs a value")?;
                timers.kinds = list
                    .split(',')
                    .map(|name| {
                        TimerKind::from_name(name).ok_or(format!("unknown timer kind {name:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            }
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
                builtins = external::parse_builtins(&list, ServerKind::from_name)?;
            }
            "--external" => {
                let spec = args.next().ok_or("--external needs NAME=COMMAND")?;
                externals.push(ExternalSpec::parse(&spec)?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    echo.servers = external::targets(&builtins, &externals)?;
    idle.servers = echo.servers.clone();
    let all = !matches!(what.as_deref(), Some("echo" | "idle" | "timers"));
    let only = |name: &str| all || what.as_deref() == Some(name);
    Ok(Command::Bench {
        echo: only("echo").then_some(echo),
        idle: only("idle").then_some(idle),
        timers: only("timers").then_some(timers),
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
        Command::Bench { echo, idle, timers } => echo
            .map_or(Ok(()), |c| echo::run(&c))
            .and_then(|()| idle.map_or(Ok(()), |c| idle::run(&c)))
            .and_then(|()| timers.map_or(Ok(()), |c| timers::run(&c))),
        Command::Chat(config) => chat::run(&config),
        Command::Multicore(config) => multicore::run(&config),
        Command::Http(config) => http::run(&config),
        Command::Tls(config) => tls::run(&config),
        Command::Static(config) => static_files::run(&config),
        Command::Tasks(config) => {
            tasks::run(&config);
            Ok(())
        }
        Command::IdleServer { kind, connections } => idle::serve_and_measure(kind, connections),
        Command::Hold { addr, count } => idle::hold_connections(addr, count),
        Command::ServeHttp { kind, addr } => http::serve_process(kind, addr),
        Command::ServeMulticore {
            http,
            threads,
            addr,
        } => multicore::serve_process(http, threads, addr),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torsion-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
