//! An echo server: every byte a client sends comes back.
//!
//! Run:   cargo run --release --example echo_server [ENDPOINT] [--threads N]
//!        (default 127.0.0.1:8000, one thread; options before or after ENDPOINT)
//!        ENDPOINT: an IP:PORT, or an endpoint string: `tcp:8000:interface=127.0.0.1`,
//!        `tcp6:8000`, `tcp:8000:backlog=64`, `tls:8443:privateKey=key.pem:certKey=cert.pem`
//!        (see `docs/endpoints.md`)
//!        --max-connections N (anywhere): at most N connections open, the next wait in the backlog
//! Talk:  nc 127.0.0.1 8000
//! Logs:  RUST_LOG=debug cargo run --example echo_server
//! Stop:  Ctrl-C or SIGTERM: it stops accepting, lets every connection flush, exits 0.
//! Cores: `--threads N` runs N reactors on N threads, all accepting on one shared listening
//!        socket, which spreads even a burst of connects over them and works for every
//!        kind of endpoint (see `docs/deployment.md`, "Many cores").
//!
//! It holds bounded memory even under a client that sends without ever reading: when the
//! echoes back up past the write-buffer high watermark, it stops reading from that client
//! until they drain.

#[path = "shared/options.rs"]
mod options;

use std::error::Error;
use std::io;
use std::process::ExitCode;
use std::sync::OnceLock;

use torsion::{ConnectionLimits, Context, Protocol, Reactors, ServerEndpoint, SharedListener};

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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let max_connections = match options::take_max_connections(&mut args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::from(2);
        }
    };
    let (endpoint, threads) = match parse_args(args.into_iter()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!(
                "echo_server: {e} (usage: echo_server [ENDPOINT] [--threads N] [--max-connections N])"
            );
            return ExitCode::from(2);
        }
    };
    match serve(endpoint, threads, max_connections) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `[ENDPOINT] [--threads N]`, in either order.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(ServerEndpoint, usize), String> {
    let (mut arg, mut threads) = (None, 1);
    while let Some(next) = args.next() {
        match next.as_str() {
            "--threads" => threads = parse_threads(args.next())?,
            option if option.starts_with("--") => return Err(format!("unknown option {option}")),
            _ if arg.is_none() => arg = Some(next),
            _ => return Err(format!("unexpected argument {next:?}")),
        }
    }
    let arg = arg.unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let endpoint = arg
        .parse()
        .map_err(|e| format!("bad address {arg:?}: {e}"))?;
    Ok((endpoint, threads))
}

/// The value of `--threads`: a count from 1 up.
fn parse_threads(value: Option<String>) -> Result<usize, String> {
    match value.as_deref().map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => Err("--threads needs a number of threads, 1 or more".to_string()),
    }
}

/// Runs `threads` reactors: the first listens on `endpoint` and shares its socket with the
/// others, so every reactor accepts on the same port.
fn serve(
    endpoint: ServerEndpoint,
    threads: usize,
    max_connections: Option<usize>,
) -> io::Result<()> {
    let shared: OnceLock<SharedListener> = OnceLock::new();
    Reactors::new(threads)
        .handle_signals()
        .run(move |reactor, _index| {
            let port = match shared.get() {
                Some(socket) => reactor.listen_shared(socket, || Echo)?,
                None => {
                    let port = reactor.listen(endpoint.clone(), || Echo)?;
                    let address = port.address(reactor).expect("listening");
                    let _ = shared.set(port.share(reactor)?);
                    println!("echo server listening on {address}");
                    port
                }
            };
            if let Some(n) = max_connections {
                // Per reactor: each of the `threads` reactors holds at most `n`.
                port.set_limits(reactor, ConnectionLimits::new().max_connections(n));
            }
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        })
}
