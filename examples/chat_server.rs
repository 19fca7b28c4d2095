//! A multi-user chat server whose line protocol is exact, so any client can script it.
//!
//! Run:   cargo run --release --example chat_server [ENDPOINT]     (default 127.0.0.1:8000)
//!        ENDPOINT: an IP:PORT, or an endpoint string such as `tcp:8000:interface=127.0.0.1`
//!        or `tls:8443:privateKey=key.pem:certKey=cert.pem` (see `docs/endpoints.md`)
//!        --max-connections N (anywhere): at most N connections open, the next wait in the backlog
//!        --web ADDR (anywhere): the same room for browsers too, on an HTTP port: the page at
//!        `http://ADDR/`, its WebSocket at `/ws` (one line of the protocol per text message);
//!        it prints `web chat listening on ADDR` after the chat port's line
//! Talk:  nc -C 127.0.0.1 8000      or      cargo run --example chat_client 127.0.0.1:8000
//!        or a browser at http://ADDR/ with --web ADDR
//! Stop:  Ctrl-C or SIGTERM (a graceful shutdown; exits 0).
//!
//! The protocol (lines end with `\r\n` from the server; `\n` or `\r\n` from clients):
//! - On connect the server asks for a name; the first line is the name (1 to 32 of
//!   `A-Z a-z 0-9 _ -`, unique ignoring case). A bad or taken name gets a line starting with
//!   `ERR`; a good one `Welcome, NAME!`, and everyone else `* NAME has joined`.
//! - Every further line goes to everyone else as `<NAME> text`.
//! - `/me action`, `/msg OTHER text`, `/who`, `/nick NEW`, `/quit`; anything else starting with
//!   `/` is an `ERR`. Everyone hears `* NAME has left` when a named user leaves.
//! - A line over 4096 bytes: `ERR line too long`, then the connection closes. A client that
//!   stops reading is disconnected once more than 1 MiB is queued for it.
//!
//! The rules live in `torsion::protocols::chat` (sans-I/O, unit-tested); this file only
//! serves them.

#[path = "shared/options.rs"]
mod options;

use std::process::ExitCode;

use torsion::protocols::chat::ChatServer;
use torsion::protocols::http::server::HttpServer;
use torsion::{ConnectionLimits, EndpointError, Reactor, ServerEndpoint};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let max_connections = match options::take_max_connections(&mut args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("chat_server: {e}");
            return ExitCode::from(2);
        }
    };
    let web = match options::take_option(&mut args, "--web").and_then(parse_web) {
        Ok(web) => web,
        Err(e) => {
            eprintln!("chat_server: {e}");
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
            eprintln!("chat_server: bad address {arg:?}: {e} (usage: chat_server [ENDPOINT] [--web ADDR] [--max-connections N])");
            return ExitCode::from(2);
        }
    };
    match serve(endpoint, web, max_connections) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `--web` endpoint, if given.
fn parse_web(value: Option<String>) -> Result<Option<ServerEndpoint>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    value
        .parse()
        .map(Some)
        .map_err(|e| format!("--web: bad address {value:?}: {e}"))
}

fn serve(
    endpoint: ServerEndpoint,
    web: Option<ServerEndpoint>,
    max_connections: Option<usize>,
) -> Result<(), EndpointError> {
    let io = |error| EndpointError::Io {
        endpoint: endpoint.to_string(),
        error,
    };
    let mut reactor = Reactor::new().map_err(io)?;
    reactor.handle_signals().map_err(io)?;
    let chat = ChatServer::new();
    let door = chat.web();
    let port = reactor.listen(endpoint.clone(), chat)?;
    if let Some(n) = max_connections {
        port.set_limits(&mut reactor, ConnectionLimits::new().max_connections(n));
    }
    println!(
        "chat server listening on {}",
        port.address(&reactor).expect("listening")
    );
    if let Some(web) = web {
        let port = reactor.listen(web, HttpServer::new(door.router()))?;
        if let Some(n) = max_connections {
            port.set_limits(&mut reactor, ConnectionLimits::new().max_connections(n));
        }
        println!(
            "web chat listening on {}",
            port.address(&reactor).expect("listening")
        );
    }
    reactor.run().map_err(io)
}
