//! An echo server: every byte a client sends comes back.
//!
//! Run:   cargo run --release --example echo_server [ENDPOINT]     (default 127.0.0.1:8000)
//!        ENDPOINT: an IP:PORT, or an endpoint string: `tcp:8000:interface=127.0.0.1`,
//!        `tcp6:8000`, `tcp:8000:backlog=64`, `tls:8443:privateKey=key.pem:certKey=cert.pem`
//!        (see `docs/endpoints.md`)
//!        --max-connections N (anywhere): at most N connections open, the next wait in the backlog
//! Talk:  nc 127.0.0.1 8000
//! Logs:  RUST_LOG=debug cargo run --example echo_server
//! Stop:  Ctrl-C or SIGTERM: it stops accepting, lets every connection flush, exits 0.
//!
//! It holds bounded memory even under a client that sends without ever reading: when the
//! echoes back up past the write-buffer high watermark, it stops reading from that client
//! until they drain.

use std::process::ExitCode;

use torsion::{ConnectionLimits, Context, EndpointError, Protocol, Reactor, ServerEndpoint};

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
    let max_connections = match take_max_connections(&mut args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::from(2);
        }
    };
    let arg = args
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let endpoint: ServerEndpoint = match arg.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("echo_server: bad address {arg:?}: {e} (usage: echo_server [ENDPOINT] [--max-connections N])");
            return ExitCode::from(2);
        }
    };
    match serve(endpoint, max_connections) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(endpoint: ServerEndpoint, max_connections: Option<usize>) -> Result<(), EndpointError> {
    let io = |error| EndpointError::Io {
        endpoint: endpoint.to_string(),
        error,
    };
    let mut reactor = Reactor::new().map_err(io)?;
    reactor.handle_signals().map_err(io)?;
    let port = reactor.listen(endpoint.clone(), || Echo)?;
    if let Some(n) = max_connections {
        port.set_limits(&mut reactor, ConnectionLimits::new().max_connections(n));
    }
    println!(
        "echo server listening on {}",
        port.address(&reactor).expect("listening")
    );
    reactor.run().map_err(io)
}

/// Takes `--max-connections N` (or `--max-connections=N`) out of `args`, wherever it is: at
/// most N connections open at once, the next clients waiting in the kernel's backlog.
fn take_max_connections(args: &mut Vec<String>) -> Result<Option<usize>, String> {
    let Some(at) = args.iter().position(|a| a.starts_with("--max-connections")) else {
        return Ok(None);
    };
    let option = args.remove(at);
    let value = match option.strip_prefix("--max-connections=") {
        Some(value) => value.to_string(),
        None if option == "--max-connections" && at < args.len() => args.remove(at),
        None => return Err(format!("{option} needs a number")),
    };
    match value.parse() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(format!(
            "--max-connections: {value:?} is not a positive number"
        )),
    }
}
