//! An echo server: every byte a client sends comes back.
//!
//! Run:   cargo run --release --example echo_server [ENDPOINT]     (default 127.0.0.1:8000)
//!        ENDPOINT: an IP:PORT, or an endpoint string: `tcp:8000:interface=127.0.0.1`,
//!        `tcp6:8000`, `tcp:8000:backlog=64`, `tls:8443:privateKey=key.pem:certKey=cert.pem`
//!        (see `docs/endpoints.md`)
//! Talk:  nc 127.0.0.1 8000
//! Logs:  RUST_LOG=debug cargo run --example echo_server
//! Stop:  Ctrl-C or SIGTERM: it stops accepting, lets every connection flush, exits 0.
//!
//! It holds bounded memory even under a client that sends without ever reading: when the
//! echoes back up past the write-buffer high watermark, it stops reading from that client
//! until they drain.

use std::process::ExitCode;

use torsion::{Context, EndpointError, Protocol, Reactor, ServerEndpoint};

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
    let endpoint: ServerEndpoint = match arg.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("echo_server: bad address {arg:?}: {e} (usage: echo_server [ENDPOINT])");
            return ExitCode::from(2);
        }
    };
    match serve(endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(endpoint: ServerEndpoint) -> Result<(), EndpointError> {
    let io = |error| EndpointError::Io {
        endpoint: endpoint.to_string(),
        error,
    };
    let mut reactor = Reactor::new().map_err(io)?;
    reactor.handle_signals().map_err(io)?;
    let port = reactor.listen(endpoint.clone(), || Echo)?;
    println!(
        "echo server listening on {}",
        port.address(&reactor).expect("listening")
    );
    reactor.run().map_err(io)
}
